"""gelu (exact and tanh) and the erfc behind it: accuracy, gradchecks, torch cross-check, extremes."""
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import scratchgen as sg
from scratchgen import Tensor, gradcheck
from scratchgen.ops import activations

TORCH_REASON = "the PyTorch cross-checks need torch (pip install torch); scratchgen itself never imports it"


def test_erfc_is_accurate_to_an_ulp_or_so():
    z = np.concatenate([np.linspace(0, 26, 20001), np.geomspace(1e-300, 1, 200)])
    expected = np.array([math.erfc(v) for v in z])
    np.testing.assert_allclose(activations.erfc_nonnegative(z), expected, rtol=1.5e-15, atol=0)
    z32 = np.linspace(0, 9, 5001).astype(np.float32)
    got = activations.erfc_nonnegative(z32)
    assert got.dtype == np.float32
    np.testing.assert_allclose(got, [math.erfc(float(v)) for v in z32], rtol=1e-6, atol=0)
    assert activations.erfc_nonnegative(np.array([np.inf]))[0] == 0
    assert np.isnan(activations.erfc_nonnegative(np.array([np.nan]))[0])


def test_normal_cdf_keeps_the_lower_tail():
    x = np.array([-30.0, -10.0, -5.0, 0.0, 5.0])
    # (the same rounded argument |x| / sqrt 2 on both sides: its rounding alone moves Phi(-30) by 1e-13)
    expected = [0.5 * math.erfc(abs(v) * activations.SQRT_HALF) for v in x]
    expected[-1] = 1 - expected[-1]
    np.testing.assert_allclose(activations.normal_cdf(x), expected, rtol=2e-15, atol=0)
    assert activations.normal_cdf(np.array([-30.0]))[0] > 0  # 4.9e-198, where 1 + erf(x) would give 0


def test_erfc_coefficients_are_reproducible():
    """Regenerate ERFC_POLY_64 (the Chebyshev interpolant of log(erfc(z) e^{z^2} / t)) with mpmath."""
    mp = pytest.importorskip("mpmath", reason="regenerating the coefficients needs mpmath").mp
    mp.dps = 40
    n = len(activations.ERFC_POLY_64)

    def target(t):
        z = 2 / t - 2
        return mp.log(mp.erfc(z) * mp.exp(z * z) / t)

    nodes = [mp.cos(mp.pi * (k + mp.mpf(1) / 2) / n) for k in range(n)]
    values = [target((y + 1) / 2) for y in nodes]
    cheb = [2 * mp.fsum(values[k] * mp.cos(mp.pi * j * (k + mp.mpf(1) / 2) / n) for k in range(n)) / n for j in range(n)]
    cheb[0] /= 2
    powers = [[mp.mpf(1)], [mp.mpf(0), mp.mpf(1)]]  # T_j in powers of y
    for j in range(2, n):
        nxt = [mp.mpf(0)] * (j + 1)
        for i, a in enumerate(powers[-1]):
            nxt[i + 1] += 2 * a
        for i, a in enumerate(powers[-2]):
            nxt[i] -= a
        powers.append(nxt)
    monomial = [mp.fsum(cheb[j] * powers[j][i] for j in range(i, n) if i < len(powers[j])) for i in range(n)]
    np.testing.assert_allclose([float(c) for c in monomial], activations.ERFC_POLY_64, rtol=0, atol=1e-16)


@settings(max_examples=15, deadline=None)
@given(st.lists(st.integers(1, 4), min_size=1, max_size=3), st.sampled_from(["none", "tanh"]), st.integers(0, 2**16))
def test_gelu_gradchecks(shape, approximate, seed):
    x = np.random.default_rng(seed).standard_normal(shape) * 4
    gradcheck(lambda t: sg.gelu(t, approximate=approximate), [x])


@pytest.mark.parametrize("approximate", ["none", "tanh"])
def test_gelu_matches_torch(approximate):
    torch = pytest.importorskip("torch", reason=TORCH_REASON)
    x = np.concatenate([np.linspace(-12, 12, 2001), np.random.default_rng(0).standard_normal(100_000) * 3])
    grad = np.random.default_rng(1).standard_normal(x.shape)
    t = Tensor(x, requires_grad=True)
    y = sg.gelu(t, approximate=approximate)  # large enough to go through the blocked path
    y.backward(grad)
    tx = torch.tensor(x, requires_grad=True)
    ty = torch.nn.functional.gelu(tx, approximate=approximate)
    ty.backward(torch.tensor(grad))
    np.testing.assert_allclose(y.data, ty.detach().numpy(), rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(t.grad, tx.grad.numpy(), rtol=1e-10, atol=1e-10)


def test_gelu_extremes_and_float32():
    x = np.array([-1e4, -40.0, -8.0, 0.0, 8.0, 40.0, 1e4])
    for approximate in ("none", "tanh"):
        t = Tensor(x, requires_grad=True)
        with sg.detect_anomaly():
            y = sg.gelu(t, approximate=approximate)
            y.backward(np.ones_like(x))
        np.testing.assert_allclose(y.data[[0, 1, 3]], 0, atol=1e-300)
        np.testing.assert_allclose(y.data[[5, 6]], x[[5, 6]], rtol=1e-15)
        np.testing.assert_allclose(t.grad[[0, 1, 5, 6]], [0, 0, 1, 1], atol=1e-300)
        assert t.grad[3] == pytest.approx(0.5)
    x32 = Tensor(np.linspace(-5, 5, 50).astype(np.float32), requires_grad=True)
    y32 = sg.gelu(x32)
    y32.backward(np.ones(50, np.float32))
    assert y32.dtype == x32.grad.dtype == np.float32
    np.testing.assert_allclose(y32.data, sg.gelu(Tensor(x32.data.astype(np.float64))).data, rtol=1e-6, atol=1e-7)


def test_gelu_rejects_unknown_approximation():
    with pytest.raises(ValueError, match=r"gelu: approximate must be 'none' or 'tanh', got 'erf'"):
        sg.gelu(Tensor(np.zeros(3)), approximate="erf")
