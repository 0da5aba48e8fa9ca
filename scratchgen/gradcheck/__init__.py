"""Finite-difference gradient checking, in float64.

``gradcheck(fn, inputs)`` compares the gradient that backward computes with central
differences of ``fn``:

    numeric_i = (f(x + e_i h) - f(x - e_i h)) / (2 h),   h = eps * max(1, |x_i|)

If ``fn`` returns a non-scalar, it is reduced to the scalar ``f = sum(fn(x) * r)`` with a fixed
random ``r``, so the whole vector-Jacobian product is checked, not only the gradient of a sum.

Two modes:
* ``"elements"``: every element of every input (2 evaluations per element) - for small inputs;
* ``"directions"``: directional derivatives along random unit vectors v (Chainer's
  check_backward, HIPS autograd's check_grads): analytic ``<grad, v>`` against
  ``(f(x + h v) - f(x - h v)) / 2h`` - 2 evaluations per direction whatever the size.
``"auto"`` (default) uses elements when an input has at most ``max_elements`` elements.

A pair (analytic a, numeric n) passes when ``|a - n| <= atol + rtol |n| + noise``, where
``noise = 64 * machine_eps * (|f(x+h)| + |f(x-h)|) / (2 h)`` is the rounding error that the
difference quotient itself carries (so a large ``f`` does not fail a correct gradient).
The reported error is ``|a - n| / (|n| + (atol + noise) / rtol)``: the relative error with an
absolute floor, so that a check passes exactly when its reported error is at most ``rtol``.

On failure ``GradcheckError`` names the input, the element (or direction), both values and
the relative error ``|a - n| / max(|a|, |n|)``. Stochastic functions must take their noise as an
argument: ``fn`` has to be deterministic.

Every op file registers small examples with ``@register_case`` beside the op, and every model
family its losses; ``scratchgen gradcheck [NAME ...]`` (or ``python -m scratchgen.gradcheck``)
runs them all and prints a table.
"""
from __future__ import annotations

import dataclasses
import sys
from typing import Callable, Dict, List, Optional, Sequence

import numpy as np

from ..grad_mode import no_grad
from ..tensor import Tensor


class GradcheckError(AssertionError):
    """The analytic and numeric gradients disagree."""


@dataclasses.dataclass
class GradcheckResult:
    passed: bool
    max_relative_error: float
    checks: int
    worst: str  # description of the worst element or direction

    def __bool__(self) -> bool:
        return self.passed


def _relative_error(a: float, n: float) -> float:
    scale = max(abs(a), abs(n))
    return 0.0 if scale == 0 else abs(a - n) / scale


def gradcheck(
    fn: Callable[..., Tensor],
    inputs: Sequence,
    eps: float = 1e-6,
    atol: float = 1e-8,
    rtol: float = 1e-6,
    mode: str = "auto",
    max_elements: int = 300,
    directions: int = 8,
    seed: int = 0,
    raise_on_failure: bool = True,
) -> GradcheckResult:
    """Check ``fn``'s backward against central differences.

    ``inputs``: Tensors (those with ``requires_grad`` are checked; others are held fixed) or
    arrays (made float64 leaves that require grad). Every checked input must be float64.
    Returns a ``GradcheckResult``; raises ``GradcheckError`` on a mismatch unless
    ``raise_on_failure=False``.
    """
    if mode not in ("auto", "elements", "directions"):
        raise ValueError(f"gradcheck: mode must be 'auto', 'elements' or 'directions', got {mode!r}")
    tensors = [x if isinstance(x, Tensor) else Tensor(np.asarray(x, dtype=np.float64), requires_grad=True) for x in inputs]
    checked = [i for i, t in enumerate(tensors) if t.requires_grad]
    if not checked:
        raise ValueError("gradcheck: no input requires grad")
    for i in checked:
        if tensors[i].dtype != np.float64:
            raise TypeError(f"gradcheck: input {i} is {tensors[i].dtype}; gradcheck needs float64 (rounding in float32 hides bugs)")

    rng = np.random.default_rng(seed)
    with no_grad():
        probe = fn(*tensors)
    projection = None
    if probe.size != 1:
        projection = rng.standard_normal(probe.shape)

    def scalar_value() -> float:
        with no_grad():
            out = fn(*tensors)
        if projection is None:
            return float(out.data.reshape(()))
        return float((out.data * projection).sum())

    # Analytic gradients.
    for t in tensors:
        t.grad = None
    out = fn(*tensors)
    if not out.requires_grad:
        raise ValueError("gradcheck: fn's output does not depend on any input that requires grad")
    out.backward(None if projection is None else projection.astype(out.dtype))
    analytic = {i: (tensors[i].grad if tensors[i].grad is not None else np.zeros(tensors[i].shape)) for i in checked}

    machine_eps = np.finfo(np.float64).eps
    worst = (0.0, "none")
    count = 0
    failures: List[str] = []

    def compare(a: float, plus: float, minus: float, h: float, where: str) -> None:
        nonlocal worst, count
        numeric = (plus - minus) / (2 * h)
        noise = 64 * machine_eps * (abs(plus) + abs(minus)) / (2 * h)
        # The error relative to |n| with an absolute floor: passing <=> error <= rtol exactly.
        error = abs(a - numeric) / (abs(numeric) + (atol + noise) / rtol)
        count += 1
        if error > rtol:
            failures.append(f"{where}: analytic {a:.10g}, numeric {numeric:.10g}, relative error {_relative_error(a, numeric):.3g}")
        if error >= worst[0]:
            worst = (error, where)

    for i in checked:
        data = tensors[i].data
        grad = np.asarray(analytic[i], dtype=np.float64)
        use_elements = mode == "elements" or (mode == "auto" and data.size <= max_elements)
        if use_elements:
            for index in np.ndindex(*data.shape):
                original = data[index]
                h = eps * max(1.0, abs(float(original)))
                data[index] = original + h
                plus = scalar_value()
                data[index] = original - h
                minus = scalar_value()
                data[index] = original
                compare(float(grad[index]), plus, minus, h, f"input {i} element {index}")
        else:
            original = data.copy()
            h = eps * max(1.0, float(np.abs(original).max()))
            for d in range(directions):
                v = rng.standard_normal(data.shape)
                v /= np.linalg.norm(v)
                data[...] = original + h * v
                plus = scalar_value()
                data[...] = original - h * v
                minus = scalar_value()
                data[...] = original
                compare(float((grad * v).sum()), plus, minus, h, f"input {i} direction {d}")

    result = GradcheckResult(passed=not failures, max_relative_error=worst[0], checks=count, worst=worst[1])
    if failures and raise_on_failure:
        shown = "\n  ".join(failures[:10])
        more = f"\n  ... and {len(failures) - 10} more" if len(failures) > 10 else ""
        raise GradcheckError(f"gradcheck failed on {len(failures)} of {count} checks:\n  {shown}{more}")
    return result


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


def run_cases(names: Optional[Sequence[str]] = None, seed: int = 0, stream=None) -> bool:
    """Run the registered cases (all, or those named) and print a table; True if all pass."""
    stream = stream or sys.stdout
    cases = registered_cases()
    names = list(names) if names else list(cases)
    unknown = [n for n in names if n not in cases]
    if unknown:
        raise KeyError(f"gradcheck: unknown case(s) {unknown}; known: {', '.join(cases)}")
    width = max(len(n) for n in names)
    print(f"{'case':<{width}}  {'checks':>6}  {'max rel. error':>14}  result", file=stream)
    all_passed = True
    for name in names:
        built = cases[name](np.random.default_rng(seed))
        fn, inputs = built[0], built[1]
        options = built[2] if len(built) > 2 else {}
        try:
            result = gradcheck(fn, inputs, raise_on_failure=False, **options)
            verdict = "ok" if result.passed else f"FAIL ({result.worst})"
            line = f"{name:<{width}}  {result.checks:>6}  {result.max_relative_error:>14.2e}  {verdict}"
        except Exception as error:  # report, keep going
            result = GradcheckResult(False, float("nan"), 0, str(error))
            line = f"{name:<{width}}  {'-':>6}  {'-':>14}  ERROR {type(error).__name__}: {error}"
        all_passed &= result.passed
        print(line, file=stream)
    return all_passed
