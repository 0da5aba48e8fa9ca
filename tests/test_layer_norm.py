"""layer_norm and nn.LayerNorm: closed form, gradchecks on hypothesis shapes, torch cross-check, errors."""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import scratchgen as sg
from scratchgen import Tensor, gradcheck, nn

TORCH_REASON = "the PyTorch cross-checks need torch (pip install torch); scratchgen itself never imports it"


@st.composite
def layer_norm_config(draw):
    shape = tuple(draw(st.lists(st.integers(1, 4), min_size=1, max_size=3)))
    return shape, draw(st.sampled_from(["both", "weight", "none"])), draw(st.booleans()), draw(st.integers(0, 2**16))


@settings(max_examples=15, deadline=None)
@given(layer_norm_config())
def test_layer_norm_gradchecks(config):
    shape, affine, transposed, seed = config
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(shape[::-1]).T if transposed else rng.standard_normal(shape)  # also non-contiguous
    x = x * 2 + 0.5
    d = shape[-1]
    inputs = [x]
    if affine in ("both", "weight"):
        inputs.append(rng.uniform(0.5, 2.0, d))
    if affine == "both":
        inputs.append(rng.standard_normal(d))
    gradcheck(lambda *t: sg.layer_norm(*t, eps=1e-3), inputs)


def test_layer_norm_forward_closed_form():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((3, 4, 7)) * 3 + 2
    w, b = rng.uniform(0.5, 2, 7), rng.standard_normal(7)
    y = sg.layer_norm(Tensor(x), Tensor(w), Tensor(b)).data
    expected = (x - x.mean(-1, keepdims=True)) / np.sqrt(x.var(-1, keepdims=True) + 1e-5) * w + b
    np.testing.assert_allclose(y, expected, rtol=1e-12, atol=1e-12)
    plain = sg.layer_norm(Tensor(x), eps=1e-12).data
    np.testing.assert_allclose(plain.mean(-1), 0, atol=1e-12)
    np.testing.assert_allclose(plain.var(-1), 1, rtol=1e-9)


def test_layer_norm_float32_and_needs():
    rng = np.random.default_rng(1)
    x = Tensor(rng.standard_normal((5, 6)).astype(np.float32), requires_grad=True)
    w = Tensor(np.ones(6, np.float32))  # a constant weight: no weight gradient is computed
    b = Tensor(np.zeros(6, np.float32), requires_grad=True)
    y = sg.layer_norm(x, w, b)
    y.backward(rng.standard_normal((5, 6)).astype(np.float32))
    assert y.dtype == x.grad.dtype == b.grad.dtype == np.float32 and w.grad is None
    np.testing.assert_allclose(x.grad.sum(-1), 0, atol=1e-5)  # the mean is removed: gradients sum to 0 per row


@pytest.mark.parametrize("affine", [True, False])
def test_layer_norm_matches_torch(affine):
    torch = pytest.importorskip("torch", reason=TORCH_REASON)
    rng = np.random.default_rng(2)
    x, w, b = rng.standard_normal((4, 3, 8)) * 2 + 1, rng.uniform(0.5, 2, 8), rng.standard_normal(8)
    grad = rng.standard_normal(x.shape)
    ours = [Tensor(a, requires_grad=True) for a in ((x, w, b) if affine else (x,))]
    y = sg.layer_norm(*ours, eps=1e-4)
    y.backward(grad)
    theirs = [torch.tensor(a, requires_grad=True) for a in ((x, w, b) if affine else (x,))]
    ty = torch.nn.functional.layer_norm(theirs[0], (8,), *theirs[1:], eps=1e-4)
    ty.backward(torch.tensor(grad))
    np.testing.assert_allclose(y.data, ty.detach().numpy(), rtol=1e-10, atol=1e-10)
    for a, t in zip(ours, theirs):
        np.testing.assert_allclose(a.grad, t.grad.numpy(), rtol=1e-10, atol=1e-10)


def test_layer_norm_module():
    ln = nn.LayerNorm(5, dtype=np.float64)
    assert [name for name, _ in ln.named_parameters()] == ["weight", "bias"]
    x = np.random.default_rng(3).standard_normal((2, 3, 5))
    gradcheck(lambda t, w, b: ln(t), [x, ln.weight, ln.bias])
    assert not nn.LayerNorm((5,), elementwise_affine=False).parameters()
    assert [n for n, _ in nn.LayerNorm(5, bias=False).named_parameters()] == ["weight"]


def test_layer_norm_errors():
    with pytest.raises(ValueError, match=r"^layer_norm: weight has shape \(4,\), expected \(5,\) for input shape \(2, 5\)$"):
        sg.layer_norm(Tensor(np.zeros((2, 5))), Tensor(np.ones(4)))
    with pytest.raises(ValueError, match=r"layer_norm: eps must be positive, got 0"):
        sg.layer_norm(Tensor(np.zeros((2, 5))), eps=0)
    with pytest.raises(ValueError, match=r"^LayerNorm\(5\): expected a last axis of size 5, got input shape \(2, 4\)$"):
        nn.LayerNorm(5)(Tensor(np.zeros((2, 4), np.float32)))
    with pytest.raises(ValueError, match=r"LayerNorm: only the last axis is normalised"):
        nn.LayerNorm((3, 5))
