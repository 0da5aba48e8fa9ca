"""The sharp gradcheck methods, proved by mutation: a backward wrong by a relative 1e-7 fails.

How a backward is made wrong, generically (``perturbed_backward``): the ``backward`` static
method of an op's ``Function`` class is wrapped for the duration of a ``with`` block, so that
every gradient it returns is multiplied by ``1 + delta * s``, with ``s`` a fixed random pattern
of signs (+-1, drawn from the gradient's shape): every element is off by exactly a relative
``delta``, some up and some down, so the error cannot hide as a uniform rescaling. The original
method is put back afterwards, also when the check raises.

What is proved, on every registered case (sampled only where said):
* every op case (the cases registered by ``scratchgen.ops``), for *each* op class in its graph
  separately: "richardson" passes the unperturbed op and fails it perturbed by 1e-7, and so does
  "complex" where the complex step applies to the case (else it reports "not applicable", falls
  back to richardson, and is not counted twice); every op class that any registered case uses
  is among them;
* every model-loss case, checked along 2 random directions per parameter (a sample, to keep the
  test at a few seconds): the same with the op that produces the loss (the root of the graph)
  perturbed - one op wrong by 1e-7, seen through the whole model;
* "fast" (the default) is not that sharp: on three cases it catches 2e-6 but passes 1e-6 (where
  a gradient element is small, its truncation error is relatively large, and it may notice less).

Measured smallest relative perturbation caught, on every op case (each op class alone):
fast 2e-6, richardson 2e-8, complex 2e-9 where it applies (33 of 70 cases); half that on sub. On
matmul and reparameterize each is 10 times smaller: their backward's output is summed over a
broadcast axis, where perturbations of opposite sign do not cancel the way the terms do.
"""
import contextlib
import io

import numpy as np
import pytest

import scratchgen as sg
import scratchgen.models  # noqa: F401  (registers the model-loss cases)
from scratchgen import Function, Tensor, gradcheck
from scratchgen.gradcheck import GradcheckError, METHODS, case_comparison, compare_gradients, registered_cases, run_cases


@contextlib.contextmanager
def perturbed_backward(classes, delta: float, seed: int = 0):
    """Within the block, ``cls.backward`` of each class returns its gradients times
    ``1 + delta * s`` (``s``: fixed random signs, one per element)."""
    saved = {cls: cls.__dict__.get("backward") for cls in classes}

    def wrap(original):
        def backward(ctx, grad):
            grads = original(ctx, grad)
            single = not isinstance(grads, tuple)
            perturbed = tuple(
                None if g is None else g * (1 + delta * np.random.default_rng([seed, *np.shape(g)]).choice([-1.0, 1.0], np.shape(g)))
                for g in ((grads,) if single else grads)
            )
            return perturbed[0] if single else perturbed

        return staticmethod(backward)

    try:
        for cls in classes:
            cls.backward = wrap(cls.backward)
        yield
    finally:
        for cls, original in saved.items():
            if original is None:
                del cls.backward  # it was inherited
            else:
                cls.backward = original


def build(name, seed=0):
    """The case's (fn, tensors, options), its inputs made Tensors as gradcheck makes them."""
    built = registered_cases()[name](np.random.default_rng(seed))
    tensors = [x if isinstance(x, Tensor) else Tensor(np.asarray(x, dtype=np.float64), requires_grad=True) for x in built[1]]
    return built[0], tensors, (built[2] if len(built) > 2 else {})


def op_classes(name):
    """The Function classes in the case's graph, root first (iterative walk over _node.inputs)."""
    fn, tensors, _ = build(name)
    found, stack, seen = [], [fn(*tensors)], set()
    while stack:
        tensor = stack.pop()
        if id(tensor) in seen or tensor._node is None:
            continue
        seen.add(id(tensor))
        if tensor._node.function not in found:
            found.append(tensor._node.function)
        stack.extend(x for x in tensor._node.inputs if isinstance(x, Tensor))
    return found


def passes(name, method, classes=(), delta=0.0, **options):
    fn, tensors, case_options = build(name)
    with perturbed_backward(classes, delta):
        return gradcheck(fn, tensors, raise_on_failure=False, **{"method": method, **case_options, **options})


OP_CASES = sorted(name for name, builder in registered_cases().items() if builder.__module__.startswith("scratchgen.ops"))
MODEL_CASES = sorted(set(registered_cases()) - set(OP_CASES))


def test_the_case_lists_are_what_the_mutation_tests_claim():
    assert len(OP_CASES) >= 40 and len(MODEL_CASES) >= 10
    assert {"sigmoid", "conv2d", "batch_norm_train_2d", "mse_loss"} <= set(OP_CASES)
    assert {"vae_gaussian_loss", "m2_loss"} <= set(MODEL_CASES)


def test_every_op_class_of_every_case_is_perturbed_alone_in_some_op_case():
    in_op_cases = {cls for name in OP_CASES for cls in op_classes(name)}
    in_model_cases = {cls for name in MODEL_CASES for cls in op_classes(name)}
    assert len(in_op_cases) >= 40 and in_model_cases <= in_op_cases, sorted(c.name() for c in in_model_cases - in_op_cases)


def test_the_perturbation_is_exactly_relative_and_is_undone():
    x = Tensor(np.linspace(0.5, 2.0, 8), requires_grad=True)
    original = sg.ops.arithmetic.Exp.__dict__["backward"]
    with perturbed_backward([sg.ops.arithmetic.Exp], 1e-3):
        sg.exp(x).sum().backward()
    ratio = x.grad / np.exp(x.data) - 1
    assert np.allclose(np.abs(ratio), 1e-3, rtol=1e-9) and (ratio > 0).any() and (ratio < 0).any()
    assert sg.ops.arithmetic.Exp.__dict__["backward"] is original


@pytest.mark.parametrize("name", OP_CASES)
def test_sharp_methods_catch_1e_7_in_each_op_of_every_op_case(name):
    classes = op_classes(name)
    for method in ("richardson", "complex"):
        clean = passes(name, method)
        assert clean.passed, f"{name} {method}: a correct backward failed: {clean}"
        if method == "complex" and clean.method != "complex":
            assert "not applicable" in clean.note  # fell back to richardson, already tested
            continue
        for cls in classes:
            result = passes(name, method, [cls], 1e-7)
            assert not result.passed, f"{name} {method}: {cls.name()}.backward wrong by 1e-7 passed ({result})"


@pytest.mark.parametrize("name", MODEL_CASES)
def test_richardson_catches_1e_7_in_the_loss_op_of_every_model_case(name):
    """Checked along 2 random directions per parameter (not every element): 5 times cheaper, and
    it shows that the directional checks are as sharp."""
    root = op_classes(name)[0]
    sampled = dict(mode="directions", directions=2)
    assert passes(name, "richardson", **sampled).passed
    assert not passes(name, "richardson", [root], 1e-7, **sampled).passed, f"{name}: {root.name()}.backward wrong by 1e-7 passed"


def test_fast_catches_2e_6_and_misses_1e_6():
    for name in ("sigmoid", "linear", "softmax_cross_entropy"):
        classes = op_classes(name)
        assert not passes(name, "fast", classes, 2e-6).passed
        assert passes(name, "fast", classes, 1e-6).passed


# ---- the complex step's applicability --------------------------------------------------------------
class RefusesComplex(Function):
    """x^2, whose forward refuses complex input on purpose (as the losses do)."""

    @staticmethod
    def forward(ctx, x):
        if np.iscomplexobj(x):
            raise TypeError("refuses complex input")
        ctx.save_for_backward(x)
        return x * x

    @staticmethod
    def backward(ctx, grad):
        (x,) = ctx.saved_arrays
        return 2 * x * grad


def test_complex_step_reports_not_applicable_and_falls_back():
    x = np.random.default_rng(0).uniform(0.5, 1.5, (2, 3))
    refused = gradcheck(RefusesComplex.apply, [x], method="complex")
    assert refused.passed and refused.method == "richardson"
    assert "not applicable" in refused.note and "refuses complex input" in refused.note
    analytic = gradcheck(sg.exp, [x], method="complex")
    assert analytic.passed and analytic.method == "complex" and not analytic.note
    real_output = gradcheck(sg.abs, [x], method="complex")  # |z| is real: the imaginary part is gone
    assert real_output.method == "richardson" and "real result" in real_output.note
    not_analytic = gradcheck(sg.softplus, [x], method="complex")  # uses exp(-|x|): complex but wrong
    assert not_analytic.method == "richardson" and "not complex-analytic" in not_analytic.note


def test_a_wrong_backward_still_fails_in_complex_mode_with_a_clear_message():
    x = np.random.default_rng(1).standard_normal((2, 3))
    with perturbed_backward([sg.ops.arithmetic.Exp], 1e-7), pytest.raises(GradcheckError, match=r"complex, rtol 1e-09"):
        gradcheck(sg.exp, [x], method="complex")


def test_compare_gradients_returns_every_pair_and_inputs_are_restored():
    x = np.random.default_rng(2).standard_normal((3, 4))
    t = Tensor(x.copy(), requires_grad=True)
    for method in METHODS:
        comparison = compare_gradients(sg.tanh, [t], method=method)
        assert len(comparison.where) == 12 and comparison.analytic.shape == comparison.numeric.shape == (12,)
        assert np.allclose(comparison.analytic, comparison.numeric, rtol=1e-8)
        assert not comparison.failed.any() and comparison.method == method
        assert t.data.dtype == np.float64 and np.array_equal(t.data, x)


def test_directions_mode_works_with_every_method():
    x = np.random.default_rng(3).standard_normal((20, 30))
    for method in METHODS:
        assert gradcheck(sg.tanh, [x], mode="directions", method=method).checks == 8
    with perturbed_backward([sg.ops.activations.Tanh], 1e-7), pytest.raises(GradcheckError, match="direction"):
        gradcheck(sg.tanh, [x], mode="directions", method="richardson")


def test_a_numeric_derivative_that_is_not_finite_fails():
    """Richardson's step (1e-3) leaves log's domain at x = 1e-4: NaN must fail, not pass."""
    x = np.array([1e-4, 0.5, 2.0])
    with pytest.warns(RuntimeWarning), pytest.raises(GradcheckError, match="not finite"):
        gradcheck(sg.log, [x], method="richardson")
    assert gradcheck(sg.log, [x], method="complex").method == "complex"  # no step leaves the domain


def test_unknown_method_is_refused():
    with pytest.raises(ValueError, match="method must be one of fast, richardson, complex"):
        gradcheck(sg.exp, [np.ones(2)], method="exact")


def test_run_cases_prints_the_method_used_and_why():
    stream = io.StringIO()
    assert run_cases(["exp", "sigmoid"], method="complex", stream=stream)
    lines = stream.getvalue().splitlines()
    assert "complex" in lines[1] and "richardson" in lines[2] and "not applicable" in lines[2]


def test_case_comparison_unknown_case():
    with pytest.raises(KeyError, match="unknown case"):
        case_comparison("no_such_op")


# ---- scratchgen gradcheck --mode / --plot --------------------------------------------------------
def test_cli_mode_and_plot_into_one_png(tmp_path, capsys):
    pytest.importorskip("matplotlib")
    from scratchgen.cli import main

    path = tmp_path / "sigmoid.png"
    assert main(["gradcheck", "sigmoid", "--mode", "richardson", "--plot", str(path)]) == 0
    assert open(path, "rb").read(4) == b"\x89PNG"
    out = capsys.readouterr().out
    assert "richardson" in out and f"plot: {path}" in out


def test_cli_plot_directory_gets_one_png_per_case_also_when_a_case_fails(tmp_path, capsys):
    pytest.importorskip("matplotlib")
    from scratchgen.cli import main

    with perturbed_backward([sg.ops.arithmetic.Log], 1e-3):
        assert main(["gradcheck", "exp", "log", "--plot", str(tmp_path / "plots")]) == 1
    assert sorted(p.name for p in (tmp_path / "plots").iterdir()) == ["exp.png", "log.png"]
    assert "FAIL" in capsys.readouterr().out


def test_cli_plot_refusals(tmp_path, capsys, monkeypatch):
    from scratchgen.cli import main

    assert main(["gradcheck", "exp", "log", "--plot", str(tmp_path / "one.png")]) == 2
    assert "a .png file holds one case" in capsys.readouterr().err
    assert main(["gradcheck", "exp", "--mode", "exact"]) == 2
    monkeypatch.setitem(__import__("sys").modules, "matplotlib", None)  # as if not installed
    assert main(["gradcheck", "exp", "--plot", str(tmp_path / "exp.png")]) == 2
    assert "pip install scratchgen[plot]" in capsys.readouterr().err
    assert not (tmp_path / "exp.png").exists()
