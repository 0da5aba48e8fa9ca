"""The public gradcheck: catches wrong gradients, reports where, refuses float32."""
import io

import numpy as np
import pytest

import scratchgen as sg
from scratchgen import Function, Tensor, gradcheck
from scratchgen.gradcheck import GradcheckError, registered_cases, run_cases


class WrongSquare(Function):
    """x^2 with a deliberately wrong backward (2x + 0.001 at one element)."""

    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return x * x

    @staticmethod
    def backward(ctx, grad):
        (x,) = ctx.saved_arrays
        g = 2 * x * grad
        g.flat[3] += 1e-3
        return g


def test_gradcheck_passes_a_correct_op_and_reports_a_small_error():
    result = gradcheck(lambda x: (x * x).sum(), [np.random.default_rng(0).standard_normal((3, 4))])
    assert result.passed and result.max_relative_error < 1e-6 and result.checks == 12


def test_gradcheck_finds_the_wrong_element():
    with pytest.raises(GradcheckError, match=r"input 0 element \(1, 0\)"):
        gradcheck(WrongSquare.apply, [np.random.default_rng(0).standard_normal((3, 3))])


def test_directional_mode_catches_the_same_bug():
    x = np.random.default_rng(1).standard_normal((20, 30))
    with pytest.raises(GradcheckError, match="direction"):
        gradcheck(WrongSquare.apply, [x], mode="directions")
    assert gradcheck(lambda t: (t * t).sum(), [x], mode="directions").passed


def test_gradcheck_refuses_float32():
    x = Tensor(np.ones(3, np.float32), requires_grad=True)
    with pytest.raises(TypeError, match="float64"):
        gradcheck(lambda t: t.sum(), [x])


def test_inputs_without_requires_grad_are_held_fixed():
    a = Tensor(np.random.default_rng(2).standard_normal(4), requires_grad=True)
    b = Tensor(np.random.default_rng(3).standard_normal(4))
    assert gradcheck(lambda x, y: x * y, [a, b]).checks == 4


def test_every_registered_case_passes_and_the_table_prints():
    stream = io.StringIO()
    assert run_cases(stream=stream), stream.getvalue()
    assert "linear" in stream.getvalue() and "FAIL" not in stream.getvalue()
    assert len(registered_cases()) >= 25
