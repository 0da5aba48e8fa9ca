"""The attention family's kernels beyond the parity tables: extremes, in-place outputs, blocked attention.

(The parity tables in test_kernels_*.py draw small shapes from kernels/testing.py; these add the
inputs where a fast kernel is most likely to differ: NaN, infinities, huge scores, fully
masked rows, outputs that alias inputs, and attention split into many blocks of heads.)
"""
import numpy as np
import pytest

import scratchgen as sg
from scratchgen import Tensor, backend
from scratchgen.ops import attention

numba = pytest.importorskip("numba", reason="the numba backend needs Numba (pip install scratchgen[numba])")
backend.set_backend("numba")
backend.set_backend("numpy")
from scratchgen.kernels.numba_cpu import _jit  # noqa: E402


@pytest.fixture(autouse=True)
def run_the_loops_even_on_tiny_inputs(monkeypatch):
    monkeypatch.setattr(_jit, "SMALL_INPUT", 0)


def both(name, *args):
    with np.errstate(all="ignore"):
        return backend.implementation(name, "numba")(*args), backend.implementation(name, "numpy")(*args)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_gelu_kernels_keep_nan_inf_and_extremes(dtype):
    x = np.array([np.nan, np.inf, -np.inf, 0.0, -0.0, 1e-30, 8.0, -8.0, 40.0, -40.0, 1e4, -1e4, 3.0, -3.0], dtype)
    for name in ("gelu_forward", "gelu_tanh_forward"):
        got, expected = both(name, x)
        # float32: the Numba erfc skips the split of z^2 (z^2 ulp relative in the tail, where gelu < 1e-14)
        np.testing.assert_allclose(got, expected, rtol=3e-7 if dtype == np.float32 else 1e-14,
                                   atol=1e-12 if dtype == np.float32 else 0, err_msg=name)
    for name in ("gelu_backward", "gelu_tanh_backward"):
        finite = np.isfinite(x)
        got, expected = both(name, np.ones_like(x[finite]), x[finite])
        np.testing.assert_allclose(got, expected, rtol=3e-6 if dtype == np.float32 else 1e-13, atol=1e-30, err_msg=name)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_masked_softmax_kernels_on_extremes(dtype):
    x = np.array([[1e4, -1e4, 0.0, 5.0], [np.nan, 1.0, 2.0, 3.0], [-np.inf, 0.0, 1.0, 2.0], [3.0, 1.0, 2.0, 0.0]], dtype)
    mask = np.array([[True, True, True, False], [True, True, True, True], [True, True, False, True], [False] * 4])
    for m in (None, mask):
        got, expected = both("masked_softmax_forward", x, m)
        np.testing.assert_allclose(got, expected, rtol=1e-6 if dtype == np.float32 else 1e-14, atol=1e-30)
    got, _ = both("masked_softmax_forward", x, mask)
    np.testing.assert_array_equal(got[3], 0)  # the fully masked row
    assert np.isnan(got[1]).all()  # a NaN score poisons its row, as in NumPy


@pytest.mark.parametrize("backend_name", ["numpy", "numba"])
def test_masked_softmax_kernels_write_in_place_or_into_out(backend_name):
    rng = np.random.default_rng(0)
    x = rng.standard_normal((3, 4, 9))
    mask = rng.random((4, 9)) < 0.7
    forward = backend.implementation("masked_softmax_forward", backend_name)
    backward = backend.implementation("masked_softmax_backward", backend_name)
    expected = forward(x.copy(), mask)
    inplace = x.copy()
    assert forward(inplace, mask, out=inplace) is inplace
    np.testing.assert_allclose(inplace, expected, rtol=1e-14, atol=1e-300)
    separate = np.empty_like(x)
    assert forward(x, mask, out=separate) is separate
    np.testing.assert_allclose(separate, expected, rtol=1e-14, atol=1e-300)
    grad = rng.standard_normal(x.shape)
    expected_grad = backward(grad.copy(), expected)
    grad_inplace = grad.copy()
    assert backward(grad_inplace, expected, out=grad_inplace) is grad_inplace
    np.testing.assert_allclose(grad_inplace, expected_grad, rtol=1e-13, atol=1e-15)
    strided = np.empty((3, 4, 18))[:, :, ::2]  # an ``out`` the loops cannot take: a fresh array instead
    result = forward(x, mask, out=strided)
    np.testing.assert_allclose(result, expected, rtol=1e-14, atol=1e-300)


def test_masked_softmax_numba_matches_numpy_on_every_mask_layout():
    rng = np.random.default_rng(1)
    x = (rng.standard_normal((3, 2, 5, 33)) * 5).astype(np.float32)
    for mask in (rng.random(33) < 0.5, rng.random((5, 33)) < 0.5, rng.random((3, 1, 1, 33)) < 0.5,
                 rng.random((3, 2, 5, 1)) < 0.5, rng.random((1, 2, 5, 33)) < 0.5, np.zeros((5, 33), bool)):
        got, expected = both("masked_softmax_forward", x, mask)
        assert np.abs(got - expected).max() < 1e-6


@pytest.mark.parametrize("backend_name", ["numpy", "numba"])
@pytest.mark.parametrize("case", ["none", "causal", "padding", "per_head"])
def test_attention_in_many_blocks_equals_one_block(monkeypatch, backend_name, case):
    """The blocked host path (many blocks of heads) computes exactly what the whole-array path does."""
    rng = np.random.default_rng(2)
    q, k, v = rng.standard_normal((3, 4, 6, 5)), rng.standard_normal((3, 4, 7, 5)), rng.standard_normal((3, 4, 7, 2))
    grad = rng.standard_normal((3, 4, 6, 2))
    mask = {"none": None, "causal": sg.causal_mask(6, 7), "padding": sg.padding_mask(np.array([7, 3, 0]), 7),
            "per_head": rng.random((3, 4, 6, 7)) < 0.6}[case]
    results = []
    with backend.use_backend(backend_name):
        for block in (attention.BLOCK_SCORES, 6 * 7 * 2 + 1):  # everything in one block, then blocks of 2 heads
            monkeypatch.setattr(attention, "BLOCK_SCORES", block)
            tensors = [Tensor(a, requires_grad=True) for a in (q, k, v)]
            out = sg.scaled_dot_product_attention(*tensors, mask=mask)
            out.backward(grad)
            results.append([out.data] + [t.grad for t in tensors])
        # and the whole-array path (taken with dropout): a dropout mask of ones changes nothing
        tensors = [Tensor(a, requires_grad=True) for a in (q, k, v)]
        out = sg.scaled_dot_product_attention(*tensors, mask=mask, dropout_mask=np.ones((6, 7)))
        out.backward(grad)
        results.append([out.data] + [t.grad for t in tensors])
    for other in results[1:]:
        for a, b in zip(results[0], other):
            np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-14)


def test_layer_norm_numba_float32_against_float64():
    rng = np.random.default_rng(3)
    x = (rng.standard_normal((50, 300)) * 10 + 100).astype(np.float32)  # a large mean: cancellation-prone
    w, b = rng.standard_normal(300).astype(np.float32), rng.standard_normal(300).astype(np.float32)
    with backend.use_backend("numba"):
        y32 = sg.layer_norm(Tensor(x), Tensor(w), Tensor(b)).data
    y64 = sg.layer_norm(Tensor(x.astype(np.float64)), Tensor(w.astype(np.float64)), Tensor(b.astype(np.float64))).data
    assert y32.dtype == np.float32
    np.testing.assert_allclose(y32, y64, rtol=0, atol=2e-4)
