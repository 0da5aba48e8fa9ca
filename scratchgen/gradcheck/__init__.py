"""Finite-difference gradient checking, in float64.

``gradcheck(fn, inputs)`` compares the gradient that backward computes with a numerical
derivative of ``fn``. If ``fn`` returns a non-scalar, it is reduced to the scalar
``f = sum(fn(x) * r)`` with a fixed random ``r``, so the whole vector-Jacobian product is checked,
not only the gradient of a sum.

What is perturbed (``mode``):
* ``"elements"``: every element of every input, ``u = e_i`` - for small inputs;
* ``"directions"``: random unit vectors ``u`` (Chainer's check_backward, HIPS autograd's
  check_grads): analytic ``<grad, u>`` against the derivative of ``f`` along ``u`` - a fixed
  number of checks whatever the size.
``"auto"`` (default) uses elements when an input has at most ``max_elements`` elements.

How the derivative along ``u`` is computed (``method``; ``scratchgen gradcheck --mode``), with
``h = eps * max(1, |x|)`` and the cost counted in evaluations of ``fn`` per element or direction:

``"fast"`` (default)  central difference, eps = 1e-6, 2 evaluations, pass limit rtol = 1e-6:
    D(h) = (f(x + h u) - f(x - h u)) / 2h = f' + h^2 f'''/6 + O(h^4)  (+ rounding ~ eps_mach |f| / h).
    Its error (~1e-9 relative) forces the limit to 1e-6: it catches a backward that is wrong by
    a relative 2e-6 and misses 1e-6 (measured on the registered cases: tests/test_gradcheck_modes.py).
    Enough for a wrong formula, a missing term, a transposed matrix, a wrong sign.

``"richardson"``  Richardson extrapolation, eps = 1e-3, 6 evaluations (3.1x fast's time), rtol = 1e-8:
    R1(h) = (4 D(h/2) - D(h)) / 3      removes the h^2 term:  error O(h^4)
    R2(h) = (16 R1(h/2) - R1(h)) / 15  removes the h^4 term:  error O(h^6)
          = (64 D(h/4) - 20 D(h/2) + D(h)) / 45.
    With the h^2 term gone, h can be 1000 times larger, so the rounding error eps_mach |f| / h
    is 1000 times smaller (~1e-13). ``|R2 - R1(h/2)|`` (the error of the lower level) is a free,
    pessimistic estimate of R2's truncation error and is added to the allowance, so a function
    that is not smooth at scale h (a kink within h) is not failed - it is checked less sharply
    there. Catches a relative error of 2e-8 (on every registered case). The larger step must stay
    inside fn's domain (log near 0): a numeric derivative that is not finite fails, and says so.

``"complex"``  complex step, eps = 1e-30, 1 complex evaluation (0.75x fast's time), rtol = 1e-9:
    f(x + i h u) = f(x) + i h f'(x) u - h^2 f''/2 + ...,  so  f' u = Im f(x + i h u) / h
    with no subtraction, hence no cancellation: exact to rounding for any h (Squire & Trapp
    1998). It needs a forward that accepts complex input and is complex-analytic: abs, sign,
    ``x >= 0`` choosing a formula (the stable sigmoid), a cast to float - all break it. This is
    detected per case, never assumed. The forward is first tried on complex input: an exception or
    a ComplexWarning (some ops refuse complex input on purpose) or a real output means "not
    applicable". Then a check that would fail is confirmed first: its complex-step value must agree
    with Richardson's (6 real evaluations, only for failing checks) within Richardson's allowance;
    if it does not, the forward is not analytic and the complex step not applicable. A not-applicable
    case is checked with ``"richardson"`` and the result says why (``GradcheckResult.method``,
    ``.note``). Catches 2e-9 where it applies (33 of the 70 registered cases). The one blind
    spot: a forward that is not analytic by less than Richardson's allowance (~1e-8 relative)
    fails as if its backward were wrong.

A pair (analytic a, numeric n) passes when ``|a - n| <= atol + rtol |n| + noise + truncation``:
``noise = 64 * eps_mach * sum_k |w_k| m_k`` is the rounding error that the combination
``n = sum_k w_k f(x + s_k u)`` itself carries, with ``m_k = sum |fn(x + s_k u) * r|`` the scale of
the rounding in each evaluation (so a large ``f`` does not fail a correct gradient);
``truncation`` is Richardson's estimate above (0 for the other methods). The reported error is
``|a - n| / (|n| + (atol + noise + truncation) / rtol)``: the relative error with an absolute
floor, so that a check passes exactly when its reported error is at most ``rtol``.

On failure ``GradcheckError`` names the input, the element (or direction), both values and
the relative error ``|a - n| / max(|a|, |n|)``. Stochastic functions must take their noise as an
argument: ``fn`` has to be deterministic. ``compare_gradients`` returns every pair (analytic,
numeric, allowance, error) for a table or a plot (``scratchgen gradcheck NAME --plot out.png``).

Every op file registers small examples with ``@register_case`` beside the op, and every model
family its losses; ``scratchgen gradcheck [NAME ...]`` (or ``python -m scratchgen.gradcheck``)
runs them all and prints a table.
"""
from __future__ import annotations

import dataclasses
import os
import sys
import warnings
from typing import Callable, Dict, List, Optional, Sequence

import numpy as np

from ..grad_mode import no_grad
from ..tensor import Tensor

MACHINE_EPS = float(np.finfo(np.float64).eps)

# Per method: the step (relative to max(1, |x|)), the pass limit and the absolute floor.
METHODS: Dict[str, Dict[str, float]] = {
    "fast": {"eps": 1e-6, "rtol": 1e-6, "atol": 1e-8},
    "richardson": {"eps": 1e-3, "rtol": 1e-8, "atol": 1e-12},
    "complex": {"eps": 1e-30, "rtol": 1e-9, "atol": 1e-13},
}


class GradcheckError(AssertionError):
    """The analytic and numeric gradients disagree."""


class _NotApplicable(Exception):
    """The complex step cannot be used on this function (the message says why)."""


@dataclasses.dataclass
class GradcheckResult:
    passed: bool
    max_relative_error: float
    checks: int
    worst: str  # description of the worst element or direction
    method: str = "fast"  # the method that produced the numbers (complex may fall back to richardson)
    note: str = ""  # why the method asked for was not used, if it was not

    def __bool__(self) -> bool:
        return self.passed


@dataclasses.dataclass
class GradientComparison:
    """Every check of one gradcheck, in order: where (``"input 0 element (1, 2)"``), which input,
    the analytic and numeric derivatives, the allowed ``|a - n|`` and the reported error
    (passing <=> ``error <= rtol``)."""

    where: List[str]
    input_index: np.ndarray  # (checks,) int
    analytic: np.ndarray  # (checks,)
    numeric: np.ndarray  # (checks,)
    allowed: np.ndarray  # (checks,) atol + rtol |n| + noise + truncation
    error: np.ndarray  # (checks,)
    rtol: float
    method: str  # the method used
    note: str = ""

    @property
    def failed(self) -> np.ndarray:
        return self.error > self.rtol

    def result(self) -> GradcheckResult:
        worst = int(np.argmax(self.error)) if len(self.error) else None
        return GradcheckResult(
            passed=not bool(self.failed.any()),
            max_relative_error=float(self.error[worst]) if worst is not None else 0.0,
            checks=len(self.error),
            worst=self.where[worst] if worst is not None else "none",
            method=self.method,
            note=self.note,
        )


def _relative_error(a: float, n: float) -> float:
    scale = max(abs(a), abs(n))
    return 0.0 if scale == 0 else abs(a - n) / scale


def gradcheck(
    fn: Callable[..., Tensor],
    inputs: Sequence,
    eps: Optional[float] = None,
    atol: Optional[float] = None,
    rtol: Optional[float] = None,
    mode: str = "auto",
    max_elements: int = 300,
    directions: int = 8,
    seed: int = 0,
    raise_on_failure: bool = True,
    method: str = "fast",
) -> GradcheckResult:
    """Check ``fn``'s backward against a numerical derivative.

    ``inputs``: Tensors (those with ``requires_grad`` are checked; others are held fixed) or
    arrays (made float64 leaves that require grad). Every checked input must be float64.
    ``method``: "fast", "richardson" or "complex" (see the module docstring); ``eps``, ``atol``,
    ``rtol`` default to the method's (``METHODS``). Returns a ``GradcheckResult``; raises
    ``GradcheckError`` on a mismatch unless ``raise_on_failure=False``.
    """
    comparison = compare_gradients(fn, inputs, method=method, eps=eps, atol=atol, rtol=rtol, mode=mode,
                                   max_elements=max_elements, directions=directions, seed=seed)
    result = comparison.result()
    failures = [
        f"{comparison.where[k]}: analytic {comparison.analytic[k]:.10g}, numeric {comparison.numeric[k]:.10g}, "
        f"relative error {_relative_error(comparison.analytic[k], comparison.numeric[k]):.3g}"
        for k in np.flatnonzero(comparison.failed)
    ]
    if failures and raise_on_failure:
        shown = "\n  ".join(failures[:10])
        more = f"\n  ... and {len(failures) - 10} more" if len(failures) > 10 else ""
        if not np.isfinite(comparison.numeric).all():
            more += (f"\n  (a numeric derivative is not finite: does the {result.method} step leave fn's domain? "
                     f"try a smaller eps, or another method)")
        how = f"{result.method}, rtol {comparison.rtol:g}" + (f"; {result.note}" if result.note else "")
        raise GradcheckError(f"gradcheck ({how}) failed on {len(failures)} of {result.checks} checks:\n  {shown}{more}")
    return result


def compare_gradients(
    fn: Callable[..., Tensor],
    inputs: Sequence,
    method: str = "fast",
    eps: Optional[float] = None,
    atol: Optional[float] = None,
    rtol: Optional[float] = None,
    mode: str = "auto",
    max_elements: int = 300,
    directions: int = 8,
    seed: int = 0,
) -> GradientComparison:
    """The data of ``gradcheck``: every (analytic, numeric) pair and its allowance, pass or fail.

    Same arguments as ``gradcheck``. With ``method="complex"`` on a function the complex step
    cannot differentiate, the comparison is made with "richardson" (``eps`` then being
    Richardson's default) and ``note`` says why.
    """
    if method not in METHODS:
        raise ValueError(f"gradcheck: method must be one of {', '.join(METHODS)}, got {method!r}")
    if mode not in ("auto", "elements", "directions"):
        raise ValueError(f"gradcheck: mode must be 'auto', 'elements' or 'directions', got {mode!r}")
    tensors = [x if isinstance(x, Tensor) else Tensor(np.asarray(x, dtype=np.float64), requires_grad=True) for x in inputs]
    checked = [i for i, t in enumerate(tensors) if t.requires_grad]
    if not checked:
        raise ValueError("gradcheck: no input requires grad")
    for i in checked:
        if tensors[i].dtype != np.float64:
            raise TypeError(f"gradcheck: input {i} is {tensors[i].dtype}; gradcheck needs float64 (rounding in float32 hides bugs)")

    # Not default_rng(seed): cases draw their inputs from that very stream, and a projection equal to
    # (an affine map of) the input can make a gradient vanish (layer norm's, exactly), hiding any bug.
    rng = np.random.default_rng([0x67726164, seed])
    with no_grad():
        probe = fn(*tensors)
    projection = None if probe.size == 1 else rng.standard_normal(probe.shape)

    # Analytic gradients.
    for t in tensors:
        t.grad = None
    out = fn(*tensors)
    if not out.requires_grad:
        raise ValueError("gradcheck: fn's output does not depend on any input that requires grad")
    out.backward(None if projection is None else projection.astype(out.dtype))
    analytic = {i: np.asarray(tensors[i].grad if tensors[i].grad is not None else np.zeros(tensors[i].shape), dtype=np.float64)
                for i in checked}

    # What to perturb: (input, label, an element's index or a unit direction), drawn once so
    # that a fallback from "complex" to "richardson" checks the same directions.
    probes = []
    for i in checked:
        data = tensors[i].data
        if mode == "elements" or (mode == "auto" and data.size <= max_elements):
            probes += [(i, f"input {i} element {index}", index) for index in np.ndindex(*data.shape)]
        else:
            for d in range(directions):
                v = rng.standard_normal(data.shape)
                probes.append((i, f"input {i} direction {d}", v / np.linalg.norm(v)))

    def run(name: str, step: Optional[float]) -> GradientComparison:
        settings = dict(METHODS[name])
        settings.update({k: v for k, v in (("eps", step), ("atol", atol), ("rtol", rtol)) if v is not None})
        estimate = {"fast": _central, "richardson": _richardson, "complex": _complex_step}[name]
        rows = []
        for i, where, u in probes:
            a = float(analytic[i][u]) if isinstance(u, tuple) else float((analytic[i] * u).sum())
            at = _Evaluator(fn, tensors, checked, projection, i, u, where)
            numeric, slack = estimate(at, settings["eps"])
            allowed = settings["atol"] + settings["rtol"] * abs(numeric) + slack
            # The error relative to |n| with an absolute floor: passing <=> error <= rtol exactly.
            error = abs(a - numeric) / (abs(numeric) + (allowed - settings["rtol"] * abs(numeric)) / settings["rtol"])
            if not np.isfinite(error):  # a NaN compares False with everything: it must fail, not pass
                error = np.inf
            if name == "complex" and error > settings["rtol"]:
                _confirm_complex_step(at, numeric)
            rows.append((i, a, numeric, allowed, error))
        columns = [np.array(c, dtype=float) for c in zip(*rows)] if rows else [np.zeros(0)] * 5
        return GradientComparison([p[1] for p in probes], columns[0].astype(int), columns[1], columns[2], columns[3],
                                  columns[4], settings["rtol"], name)

    if method != "complex":
        return run(method, eps)
    try:
        _complex_input_works(fn, tensors, projection, checked)
        return run("complex", eps)
    except _NotApplicable as reason:
        comparison = run("richardson", None)
        comparison.note = f"complex step not applicable: {reason}"
        return comparison


# ---- evaluating f(x + s u) ---------------------------------------------------------------------------
class _Evaluator:
    """``f`` along one element or direction ``u`` of input ``i``: ``real(s)`` evaluates at
    ``x + s u``, ``imaginary(s)`` at ``x + i s u``. Each returns ``(value, magnitude)``: the
    projected scalar ``sum(out * r)`` (for ``imaginary``, its imaginary part) and
    ``sum |out * r|``, the scale of the rounding error in that value. The input is restored
    afterwards, also when ``fn`` raises."""

    def __init__(self, fn, tensors, checked, projection, i, u, where: str):
        self.fn, self.tensors, self.checked, self.projection = fn, tensors, checked, projection
        self.tensor, self.u, self.where = tensors[i], u, where
        x = self.tensor.data
        # Steps are relative to the size of what is perturbed: h = eps * max(1, |x|).
        self.scale = max(1.0, abs(float(x[u])) if isinstance(u, tuple) else float(np.abs(x).max()))

    def _reduce(self, y):
        terms = y if self.projection is None else y * self.projection
        return float(np.sum(terms)), float(np.sum(np.abs(terms)))

    def real(self, s: float):
        data, u = self.tensor.data, self.u
        saved = data[u] if isinstance(u, tuple) else data.copy()
        try:
            if isinstance(u, tuple):
                data[u] = saved + s
            else:
                data[...] = saved + s * u
            with no_grad():
                return self._reduce(self.fn(*self.tensors).data)
        finally:
            data[u if isinstance(u, tuple) else ...] = saved

    def imaginary(self, s: float):
        # Every checked input becomes complex, not only the perturbed one: ``y += bias`` into a
        # real ``y`` cannot take a complex bias, and a real code path would drop the imaginary part.
        originals = [self.tensors[j].data for j in self.checked]
        for j in self.checked:
            self.tensors[j].data = self.tensors[j].data.astype(np.complex128)
        if isinstance(self.u, tuple):
            self.tensor.data[self.u] += 1j * s
        else:
            self.tensor.data += 1j * s * self.u
        try:
            with no_grad(), warnings.catch_warnings():
                warnings.simplefilter("error", np.exceptions.ComplexWarning)
                y = self.fn(*self.tensors).data
        except Exception as error:  # any refusal (some ops refuse complex input on purpose): not applicable
            raise _NotApplicable(f"fn refuses complex input ({type(error).__name__}: {error})") from None
        finally:
            for j, original in zip(self.checked, originals):
                self.tensors[j].data = original
        if not np.iscomplexobj(y):
            raise _NotApplicable("fn returns a real result for complex input (abs, a comparison or a cast dropped the imaginary part)")
        return self._reduce(np.imag(y))


def _central(at: _Evaluator, eps: float):
    """D(h) = (f(x + h u) - f(x - h u)) / 2h and its rounding noise."""
    h = eps * at.scale
    (plus, m_plus), (minus, m_minus) = at.real(h), at.real(-h)
    return (plus - minus) / (2 * h), 64 * MACHINE_EPS * (m_plus + m_minus) / (2 * h)


def _richardson(at: _Evaluator, eps: float):
    """R2 = (64 D(h/4) - 20 D(h/2) + D(h)) / 45, its rounding noise, and |R2 - R1(h/2)| as the
    estimate of what truncation error is left."""
    d, noise = zip(*(_central(at, s) for s in (eps, eps / 2, eps / 4)))
    r1_fine = (4 * d[2] - d[1]) / 3
    r1_coarse = (4 * d[1] - d[0]) / 3
    r2 = (16 * r1_fine - r1_coarse) / 15
    # noise[k] is 64 eps_mach sum|w||m| of D at step k; R2 weighs the three by 1/45, 20/45, 64/45.
    return r2, (noise[0] + 20 * noise[1] + 64 * noise[2]) / 45 + abs(r2 - r1_fine)


def _complex_step(at: _Evaluator, eps: float):
    """Im f(x + i h u) / h and its rounding noise."""
    h = eps * at.scale
    value, magnitude = at.imaginary(h)
    return value / h, 64 * MACHINE_EPS * magnitude / h


def _confirm_complex_step(at: _Evaluator, numeric: float) -> None:
    """Before a complex step fails a backward: is the complex step right? Raise ``_NotApplicable``
    unless it agrees with Richardson's derivative within Richardson's own allowance (a forward that
    is not complex-analytic gives a wrong complex step, usually wrong by O(1))."""
    settings = METHODS["richardson"]
    reference, slack = _richardson(at, settings["eps"])
    if not abs(numeric - reference) <= settings["atol"] + settings["rtol"] * abs(reference) + slack:
        raise _NotApplicable(
            f"the complex step disagrees with Richardson differences at {at.where} ({numeric:.10g} vs {reference:.10g}): "
            f"the forward is not complex-analytic (abs, sign or a comparison choosing a formula?)"
        )


def _complex_input_works(fn, tensors, projection, checked) -> None:
    """Raise ``_NotApplicable`` if ``fn`` refuses complex inputs (an exception, or a ComplexWarning:
    some ops refuse them on purpose) or drops their imaginary part: one evaluation."""
    for i in checked:
        if tensors[i].size:
            _Evaluator(fn, tensors, checked, projection, i, (0,) * tensors[i].ndim, f"input {i}").imaginary(0.0)
            return


# ---- registered cases: ``python -m scratchgen.gradcheck`` -----------------------------------

_CASES: Dict[str, Callable] = {}


def register_case(name: str):
    """Register a gradcheck example. The decorated function takes a ``numpy.random.Generator``
    and returns ``(fn, inputs)`` (optionally a dict of extra gradcheck keyword arguments third)."""

    def decorate(builder: Callable) -> Callable:
        _CASES[name] = builder
        return builder

    return decorate


def registered_cases() -> Dict[str, Callable]:
    """Every case registered so far, by name: the ops' (registered when ``scratchgen`` is imported),
    and the models' once ``scratchgen.models`` is imported (the command-line entry points do that)."""
    return dict(sorted(_CASES.items()))


def case_comparison(name: str, seed: int = 0, method: str = "fast") -> GradientComparison:
    """``compare_gradients`` on the registered case ``name`` (its own gradcheck options applied)."""
    cases = registered_cases()
    if name not in cases:
        raise KeyError(f"gradcheck: unknown case {name!r}; known: {', '.join(cases)}")
    built = cases[name](np.random.default_rng(seed))
    options = dict(built[2]) if len(built) > 2 else {}
    options.pop("raise_on_failure", None)
    return compare_gradients(built[0], built[1], **{"method": method, **options})


def plot_paths(names: Sequence[str], plot: str) -> Dict[str, str]:
    """Where ``--plot PLOT`` puts each case's picture: ``PLOT`` itself if it ends in .png (one case
    only), else ``PLOT/<case>.png`` (a directory, created if needed)."""
    if plot.lower().endswith(".png"):
        if len(names) != 1:
            raise ValueError(f"--plot {plot}: a .png file holds one case, and {len(names)} are checked; "
                             f"name one case, or give a directory to get one <case>.png per case")
        return {names[0]: plot}
    return {name: os.path.join(plot, f"{name}.png") for name in names}


def run_cases(names: Optional[Sequence[str]] = None, seed: int = 0, stream=None, method: str = "fast",
              plot: Optional[str] = None) -> bool:
    """Run the registered cases (all, or those named) and print a table; True if all pass.

    ``method``: "fast", "richardson" or "complex" (see the module docstring). ``plot``: a PNG path
    (one case) or a directory (one ``<case>.png`` each) for the per-element picture of each case
    (``plots.save_gradient_check``; needs matplotlib).
    """
    if method not in METHODS:
        raise ValueError(f"gradcheck: method must be one of {', '.join(METHODS)}, got {method!r}")
    stream = stream or sys.stdout
    cases = registered_cases()
    names = list(names) if names else list(cases)
    unknown = [n for n in names if n not in cases]
    if unknown:
        raise KeyError(f"gradcheck: unknown case(s) {unknown}; known: {', '.join(cases)}")
    paths = {}
    if plot is not None:
        from .. import plots

        paths = plot_paths(names, plot)
        plots._require("matplotlib")  # before the first case, not after it
    width = max(len(n) for n in names)
    print(f"{'case':<{width}}  {'method':<10}  {'checks':>6}  {'max rel. error':>14}  result", file=stream)
    all_passed = True
    for name in names:
        try:
            comparison = case_comparison(name, seed=seed, method=method)
            result = comparison.result()
            verdict = "ok" if result.passed else f"FAIL ({result.worst})"
            if result.note:
                verdict += f"  [{result.note}]"
            line = f"{name:<{width}}  {result.method:<10}  {result.checks:>6}  {result.max_relative_error:>14.2e}  {verdict}"
        except Exception as error:  # report, keep going
            comparison, result = None, GradcheckResult(False, float("nan"), 0, str(error), method)
            line = f"{name:<{width}}  {method:<10}  {'-':>6}  {'-':>14}  ERROR {type(error).__name__}: {error}"
        all_passed &= result.passed
        print(line, file=stream)
        if comparison is not None and name in paths:
            _plot(comparison, name, paths[name])
            print(f"{'':<{width}}  plot: {paths[name]}", file=stream)
    return all_passed


def _plot(comparison: GradientComparison, name: str, path: str) -> str:
    from ..plots import save_gradient_check

    result = comparison.result()
    title = (f"{name}: {comparison.method}, {result.checks} checks, max error {result.max_relative_error:.2e} "
             f"({'pass' if result.passed else 'FAIL'})")
    return save_gradient_check(comparison.analytic, comparison.numeric, comparison.error, comparison.rtol, path,
                               groups=comparison.input_index, title=title, note=comparison.note)
