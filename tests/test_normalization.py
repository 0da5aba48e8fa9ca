"""dropout and batch_norm: closed forms, running statistics, gradchecks, errors."""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from scratchgen import Tensor, batch_norm, dropout, gradcheck
from scratchgen.ops import normalization

SETTINGS = settings(max_examples=15, deadline=None)


# ---- batch_norm ------------------------------------------------------------------------------
@st.composite
def bn_config(draw):
    four_d = draw(st.booleans())
    shape = (draw(st.integers(2, 4)), draw(st.integers(1, 3)))
    if four_d:
        shape += (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    return shape, draw(st.booleans()), draw(st.integers(0, 2**16))


def noncontiguous(rng, shape):
    """A transposed view of ``shape`` (non-contiguous whenever two trailing axes differ)."""
    return rng.standard_normal(shape[::-1]).transpose() * 2 + 0.5


@SETTINGS
@given(bn_config())
def test_batch_norm_gradchecks(config):
    shape, training, seed = config
    rng = np.random.default_rng(seed)
    c = shape[1]
    running_mean, running_var = rng.standard_normal(c), rng.uniform(0.5, 2.0, c)
    x, gamma, beta = noncontiguous(rng, shape), rng.uniform(0.5, 2.0, c), rng.standard_normal(c)
    gradcheck(lambda x, g, b: batch_norm(x, g, b, running_mean.copy(), running_var.copy(), training=training), [x, gamma, beta])


def test_batch_norm_forward_closed_form_and_running_stats():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((8, 3, 4, 5)) * 3 + 2
    gamma, beta = rng.uniform(0.5, 2, 3), rng.standard_normal(3)
    running_mean, running_var = np.zeros(3), np.ones(3)
    y = batch_norm(Tensor(x), Tensor(gamma), Tensor(beta), running_mean, running_var, momentum=0.1)
    mean, var = x.mean(axis=(0, 2, 3)), x.var(axis=(0, 2, 3))
    expected = (x - mean[:, None, None]) / np.sqrt(var[:, None, None] + 1e-5) * gamma[:, None, None] + beta[:, None, None]
    np.testing.assert_allclose(y.data, expected, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(running_mean, 0.1 * mean)
    np.testing.assert_allclose(running_var, 0.9 + 0.1 * x.var(axis=(0, 2, 3), ddof=1))  # unbiased, like PyTorch


def test_batch_norm_train_vs_eval():
    rng = np.random.default_rng(1)
    x = rng.standard_normal((16, 4)) * 2 - 1
    # Training normalises with batch statistics: mean 0, (biased) variance ~1 per channel.
    y = batch_norm(Tensor(x), None, None, eps=0.0).data
    np.testing.assert_allclose(y.mean(axis=0), 0, atol=1e-12)
    np.testing.assert_allclose(y.var(axis=0), 1, rtol=1e-12)
    # Evaluation with running statistics equal to the batch's (biased) ones gives the same output ...
    mean, var = x.mean(axis=0), x.var(axis=0)
    y_eval = batch_norm(Tensor(x), None, None, mean.copy(), var.copy(), training=False, eps=0.0).data
    np.testing.assert_allclose(y_eval, y, rtol=1e-12, atol=1e-12)
    # ... leaves the running statistics alone, and does not depend on the rest of the batch.
    rm, rv = mean.copy(), var.copy()
    one = batch_norm(Tensor(x[:1]), None, None, rm, rv, training=False, eps=0.0).data
    np.testing.assert_allclose(one, y[:1], rtol=1e-12, atol=1e-12)
    np.testing.assert_array_equal(rm, mean)
    np.testing.assert_array_equal(rv, var)


def test_batch_norm_float32_and_running_average_converges():
    rng = np.random.default_rng(2)
    c = 3
    running_mean, running_var = np.zeros(c, np.float32), np.ones(c, np.float32)
    gamma = Tensor(np.ones(c, np.float32), requires_grad=True)
    beta = Tensor(np.zeros(c, np.float32), requires_grad=True)
    for _ in range(60):
        x = Tensor((rng.standard_normal((64, c, 2, 2)) * 2 + 5).astype(np.float32), requires_grad=True)
        y = batch_norm(x, gamma, beta, running_mean, running_var, momentum=0.1)
    assert y.dtype == running_mean.dtype == running_var.dtype == np.float32
    np.testing.assert_allclose(running_mean, 5, atol=0.1)
    np.testing.assert_allclose(running_var, 4, rtol=0.1)
    y.backward(np.ones(y.shape, np.float32))
    assert x.grad.dtype == gamma.grad.dtype == np.float32
    np.testing.assert_allclose(x.grad, 0, atol=1e-5)  # sum over a channel of a normalised output is constant


def test_batch_norm_errors():
    x = Tensor(np.zeros((4, 3)))
    with pytest.raises(ValueError, match=r"batch_norm: input must be \(N, C\) or \(N, C, H, W\), got shape \(4, 3, 2\)"):
        batch_norm(Tensor(np.zeros((4, 3, 2))))
    with pytest.raises(ValueError, match=r"batch_norm: gamma has shape \(4,\), expected \(3,\)"):
        batch_norm(x, Tensor(np.ones(4)), Tensor(np.zeros(3)))
    with pytest.raises(ValueError, match=r"batch_norm: evaluation \(training=False\) needs running_mean"):
        batch_norm(x, training=False)
    with pytest.raises(ValueError, match=r"batch_norm: training needs more than 1 value per channel"):
        batch_norm(Tensor(np.zeros((1, 3))))
    with pytest.raises(TypeError, match=r"batch_norm: running_mean is float64 but the input is float32"):
        batch_norm(Tensor(np.zeros((4, 3), np.float32)), running_mean=np.zeros(3), running_var=np.ones(3, np.float32))


def test_batch_norm_matches_torch():
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(3)
    x, gamma, beta = rng.standard_normal((5, 3, 2, 4)), rng.uniform(0.5, 2, 3), rng.standard_normal(3)
    g = rng.standard_normal(x.shape)
    rm, rv = np.zeros(3), np.ones(3)
    sx, sg, sb = (Tensor(a, requires_grad=True) for a in (x, gamma, beta))
    y = batch_norm(sx, sg, sb, rm, rv, momentum=0.2)
    y.backward(g)
    trm, trv = torch.zeros(3, dtype=torch.float64), torch.ones(3, dtype=torch.float64)
    tx, tg, tb = (torch.tensor(a, requires_grad=True) for a in (x, gamma, beta))
    ty = torch.nn.functional.batch_norm(tx, trm, trv, tg, tb, training=True, momentum=0.2)
    ty.backward(torch.tensor(g))
    np.testing.assert_allclose(y.data, ty.detach().numpy(), rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(rm, trm.numpy(), rtol=1e-12)
    np.testing.assert_allclose(rv, trv.numpy(), rtol=1e-12)
    for ours, theirs in ((sx, tx), (sg, tg), (sb, tb)):
        np.testing.assert_allclose(ours.grad, theirs.grad.numpy(), rtol=1e-9, atol=1e-10)


# ---- dropout ---------------------------------------------------------------------------------
def test_dropout_with_mask_is_deterministic_and_gradchecks():
    rng = np.random.default_rng(4)
    x = noncontiguous(rng, (4, 3, 2))
    mask = rng.random(x.shape) >= 0.4
    y1 = dropout(Tensor(x), p=0.4, mask=mask).data
    y2 = dropout(Tensor(x), p=0.4, mask=mask).data
    np.testing.assert_array_equal(y1, y2)
    np.testing.assert_allclose(y1, x * mask / 0.6)
    gradcheck(lambda t: dropout(t, p=0.4, mask=mask), [x])
    # A broadcastable mask drops whole channels.
    channel_mask = np.array([True, False, True])[None, :, None]
    gradcheck(lambda t: dropout(t, p=0.5, mask=channel_mask), [x])
    np.testing.assert_array_equal(dropout(Tensor(x), p=0.5, mask=channel_mask).data[:, 1], 0)


def test_dropout_draws_masks():
    x = Tensor(np.ones((200, 50), np.float32))
    y = dropout(x, p=0.3, rng=np.random.default_rng(5))
    assert y.dtype == np.float32
    kept = y.data != 0
    assert abs(kept.mean() - 0.7) < 0.02
    np.testing.assert_allclose(y.data[kept], 1 / 0.7, rtol=1e-6)
    np.testing.assert_array_equal(dropout(x, p=0.3, rng=np.random.default_rng(5)).data, y.data)  # same seed, same mask
    normalization.default_generator = np.random.default_rng(6)
    a = dropout(x, p=0.3).data
    normalization.default_generator = np.random.default_rng(6)
    np.testing.assert_array_equal(dropout(x, p=0.3).data, a)


def test_dropout_identity_and_edge_cases():
    x = Tensor(np.arange(6.0).reshape(2, 3), requires_grad=True)
    assert dropout(x, p=0.5, training=False) is x
    assert dropout(x, p=0.0) is x
    np.testing.assert_array_equal(dropout(x, p=1.0).data, 0)
    with pytest.raises(ValueError, match=r"dropout: p must be in \[0, 1\], got 1.5"):
        dropout(x, p=1.5)
    with pytest.raises(ValueError, match=r"dropout: mask of shape \(3, 2\) does not broadcast to input shape \(2, 3\)"):
        dropout(x, mask=np.ones((3, 2), bool))
