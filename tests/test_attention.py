"""masked_softmax, scaled_dot_product_attention, masks, MultiHeadAttention, positional encodings, encoder block.

gradchecks in float64 on hypothesis-drawn shapes; the fully masked row (no NaN, zero gradient);
the causal mask against a loop; torch cross-checks (skipped without torch) to 1e-10.
"""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import scratchgen as sg
from scratchgen import Tensor, gradcheck
from scratchgen import nn

SETTINGS = settings(max_examples=10, deadline=None)
TORCH_REASON = "the PyTorch cross-checks need torch (pip install torch); scratchgen itself never imports it"


def torch_or_skip():
    return pytest.importorskip("torch", reason=TORCH_REASON)


def close(ours, theirs, tol=1e-10):
    theirs = theirs.detach().numpy() if hasattr(theirs, "detach") else theirs
    np.testing.assert_allclose(ours, theirs, rtol=tol, atol=tol)


# ---- masked_softmax --------------------------------------------------------------------------------
@st.composite
def softmax_config(draw):
    shape = tuple(draw(st.lists(st.integers(1, 4), min_size=1, max_size=3)))
    axis = draw(st.integers(-len(shape), len(shape) - 1))
    mask_shape = tuple(s if draw(st.booleans()) else 1 for s in shape)[draw(st.integers(0, len(shape))):]
    return shape, axis, mask_shape, draw(st.integers(0, 2**16))


@SETTINGS
@given(softmax_config())
def test_masked_softmax_gradchecks_and_sums_to_one(config):
    shape, axis, mask_shape, seed = config
    rng = np.random.default_rng(seed)
    mask = rng.random(mask_shape) < 0.7
    x = rng.standard_normal(shape) * 3
    gradcheck(lambda t: sg.masked_softmax(t, mask, axis=axis), [x])
    y = sg.masked_softmax(Tensor(x), mask, axis=axis).data
    full = np.broadcast_to(mask, shape)
    assert np.all(y[~full] == 0)
    sums = y.sum(axis=axis)
    any_allowed = full.any(axis=axis)
    np.testing.assert_allclose(sums[any_allowed], 1, rtol=1e-12)
    np.testing.assert_array_equal(sums[~any_allowed], 0)
    if mask.all():
        np.testing.assert_allclose(y, sg.softmax(Tensor(x), axis=axis).data, rtol=1e-12, atol=1e-15)


def test_masked_softmax_is_stable_for_large_inputs():
    x = np.array([[1000.0, 1001.0, -1000.0], [-1e4, -1e4 + 1, 5.0]])
    y = sg.masked_softmax(Tensor(x), np.array([True, True, False])).data
    assert np.isfinite(y).all()
    np.testing.assert_allclose(y[:, :2], np.tile([1 / (1 + np.e), np.e / (1 + np.e)], (2, 1)), rtol=1e-12)


def test_fully_masked_row_gives_zero_output_and_zero_gradient():
    rng = np.random.default_rng(0)
    x = Tensor(rng.standard_normal((3, 4)), requires_grad=True)
    mask = np.array([[True, False, True, True], [False] * 4, [True] * 4])
    with sg.detect_anomaly():  # any NaN/Inf in forward or backward raises
        y = sg.masked_softmax(x, mask)
        y.backward(rng.standard_normal((3, 4)))
    np.testing.assert_array_equal(y.data[1], 0)
    np.testing.assert_array_equal(x.grad[1], 0)
    np.testing.assert_array_equal(x.grad[0, 1], 0)
    # In attention: a query that may attend to nothing outputs 0, and q, k, v get finite gradients.
    q, k, v = (Tensor(rng.standard_normal((2, 3, 4)), requires_grad=True) for _ in range(3))
    attend = np.ones((2, 3, 3), bool)
    attend[0, 1] = False  # query 1 of example 0 sees no key
    with sg.detect_anomaly():
        out = sg.scaled_dot_product_attention(q, k, v, mask=attend)
        out.backward(rng.standard_normal(out.shape))
    np.testing.assert_array_equal(out.data[0, 1], 0)
    np.testing.assert_array_equal(q.grad[0, 1], 0)
    gradcheck(lambda a, b, c: sg.scaled_dot_product_attention(a, b, c, mask=attend), [q.data, k.data, v.data])


def test_masked_softmax_bad_input():
    with pytest.raises(ValueError, match=r"masked_softmax: mask of shape \(3,\) does not broadcast to the scores' shape \(2, 4\)"):
        sg.masked_softmax(Tensor(np.zeros((2, 4))), np.ones(3, bool))
    with pytest.raises(TypeError, match=r"masked_softmax: mask must be boolean \(True = attend\), got dtype float64"):
        sg.masked_softmax(Tensor(np.zeros((2, 4))), np.ones(4))
    with pytest.raises(ValueError, match=r"masked_softmax: axis 2 is out of range for input shape \(2, 4\)"):
        sg.masked_softmax(Tensor(np.zeros((2, 4))), None, axis=2)


# ---- scaled dot-product attention ----------------------------------------------------------------
@st.composite
def attention_config(draw):
    batch = tuple(draw(st.lists(st.integers(1, 3), min_size=0, max_size=2)))
    lq, lk, d, dv = (draw(st.integers(1, 4)) for _ in range(4))
    kind = draw(st.sampled_from(["none", "causal", "padding", "random", "dropout"]))
    return batch, lq, lk, d, dv, kind, draw(st.integers(0, 2**16))


def _mask_for(kind, rng, batch, lq, lk):
    if kind == "causal":
        return sg.causal_mask(lq, lk), None
    if kind == "padding":
        return rng.random(batch + (1, lk)) < 0.7, None
    if kind == "random":
        return rng.random(batch + (lq, lk)) < 0.6, None
    if kind == "dropout":
        return None, (rng.random(batch + (lq, lk)) >= 0.3) / 0.7
    return None, None


@SETTINGS
@given(attention_config())
def test_attention_gradchecks(config):
    batch, lq, lk, d, dv, kind, seed = config
    rng = np.random.default_rng(seed)
    mask, dropout_mask = _mask_for(kind, rng, batch, lq, lk)
    q, k, v = rng.standard_normal(batch + (lq, d)), rng.standard_normal(batch + (lk, d)), rng.standard_normal(batch + (lk, dv))
    gradcheck(lambda a, b, c: sg.scaled_dot_product_attention(a, b, c, mask=mask, dropout_mask=dropout_mask), [q, k, v])


def test_attention_broadcasts_leading_axes():
    rng = np.random.default_rng(1)
    q, k, v = rng.standard_normal((2, 3, 4, 5)), rng.standard_normal((1, 3, 6, 5)), rng.standard_normal((3, 6, 2))
    gradcheck(sg.scaled_dot_product_attention, [q, k, v])


def test_attention_matches_a_loop_reference():
    rng = np.random.default_rng(2)
    q, k, v = rng.standard_normal((2, 5, 3)), rng.standard_normal((2, 6, 3)), rng.standard_normal((2, 6, 4))
    mask = rng.random((2, 5, 6)) < 0.7
    out = sg.scaled_dot_product_attention(Tensor(q), Tensor(k), Tensor(v), mask=mask, scale=0.3).data
    for b in range(2):
        for i in range(5):
            allowed = [j for j in range(6) if mask[b, i, j]]
            scores = np.array([0.3 * q[b, i] @ k[b, j] for j in allowed])
            weights = np.exp(scores - scores.max()) / np.exp(scores - scores.max()).sum() if allowed else []
            expected = sum((w * v[b, j] for w, j in zip(weights, allowed)), np.zeros(4))
            np.testing.assert_allclose(out[b, i], expected, rtol=1e-12, atol=1e-14)


def test_causal_mask_equals_a_loop_and_blocks_the_future():
    for lq, lk in [(1, 1), (4, 4), (3, 5), (5, 3)]:
        expected = np.array([[j <= i for j in range(lk)] for i in range(lq)], dtype=bool).reshape(lq, lk)
        np.testing.assert_array_equal(sg.causal_mask(lq, lk), expected)
    # Changing a future key or value never changes an earlier output.
    rng = np.random.default_rng(3)
    q, k, v = rng.standard_normal((6, 4)), rng.standard_normal((6, 4)), rng.standard_normal((6, 4))
    out = sg.scaled_dot_product_attention(Tensor(q), Tensor(k), Tensor(v), is_causal=True).data
    k2, v2 = k.copy(), v.copy()
    k2[4:] += 10
    v2[4:] -= 3
    out2 = sg.scaled_dot_product_attention(Tensor(q), Tensor(k2), Tensor(v2), mask=sg.causal_mask(6)).data
    np.testing.assert_allclose(out2[:4], out[:4], rtol=1e-13)
    assert not np.allclose(out2[4:], out[4:])


def test_padding_mask():
    mask = sg.padding_mask(np.array([2, 0, 3]), 3)
    assert mask.shape == (3, 1, 1, 3)
    np.testing.assert_array_equal(mask[:, 0, 0], [[1, 1, 0], [0, 0, 0], [1, 1, 1]])
    with pytest.raises(ValueError, match=r"padding_mask: lengths must lie in \[0, 3\], got values from 0 to 4"):
        sg.padding_mask(np.array([0, 4]), 3)
    with pytest.raises(TypeError, match="padding_mask: lengths must be a 1-D integer array"):
        sg.padding_mask(np.array([1.0]), 3)


def test_attention_bad_input():
    q, k, v = Tensor(np.zeros((2, 3, 4))), Tensor(np.zeros((2, 5, 4))), Tensor(np.zeros((2, 5, 6)))
    with pytest.raises(ValueError, match=r"^scaled_dot_product_attention: mask of shape \(3, 3\) does not broadcast to "
                                         r"the scores' shape \(2, 3, 5\)$"):
        sg.scaled_dot_product_attention(q, k, v, mask=np.ones((3, 3), bool))
    with pytest.raises(TypeError, match="scaled_dot_product_attention: mask must be boolean"):
        sg.scaled_dot_product_attention(q, k, v, mask=np.zeros((3, 5)))
    with pytest.raises(ValueError, match=r"dropout_mask of shape \(2, 3\) does not broadcast"):
        sg.scaled_dot_product_attention(q, k, v, dropout_mask=np.ones((2, 3)))
    with pytest.raises(ValueError, match="q has width 4 and k width 3"):
        sg.scaled_dot_product_attention(q, Tensor(np.zeros((2, 5, 3))), v)
    with pytest.raises(ValueError, match="k has 5 keys and v 4 values"):
        sg.scaled_dot_product_attention(q, k, Tensor(np.zeros((2, 4, 6))))
    with pytest.raises(ValueError, match=r"q must be \(\.\.\., L, d\)"):
        sg.scaled_dot_product_attention(Tensor(np.zeros(4)), k, v)


def test_attention_float32_stays_float32():
    rng = np.random.default_rng(4)
    q, k, v = (Tensor(rng.standard_normal((2, 3, 4)).astype(np.float32), requires_grad=True) for _ in range(3))
    out = sg.scaled_dot_product_attention(q, k, v, mask=sg.causal_mask(3), dropout_mask=np.ones((3, 3)))
    out.backward(np.ones(out.shape, np.float32))
    assert out.dtype == q.grad.dtype == k.grad.dtype == v.grad.dtype == np.float32


# ---- torch cross-checks ------------------------------------------------------------------------------
@pytest.mark.parametrize("kind", ["none", "causal", "padding", "random", "scale"])
def test_attention_matches_torch(kind):
    torch = torch_or_skip()
    F = torch.nn.functional
    rng = np.random.default_rng(5)
    q, k, v = rng.standard_normal((2, 3, 5, 4)), rng.standard_normal((2, 3, 6, 4)), rng.standard_normal((2, 3, 6, 7))
    grad = rng.standard_normal((2, 3, 5, 7))
    mask = {"causal": sg.causal_mask(5, 6), "padding": sg.padding_mask(np.array([4, 6]), 6),
            "random": (rng.random((2, 3, 5, 6)) < 0.7) | np.eye(5, 6, dtype=bool)}.get(kind)
    scale = 0.37 if kind == "scale" else None
    ours = [Tensor(a, requires_grad=True) for a in (q, k, v)]
    out = sg.scaled_dot_product_attention(*ours, mask=mask, scale=scale)
    out.backward(grad)
    theirs = [torch.tensor(a, requires_grad=True) for a in (q, k, v)]
    tmask = None if mask is None else torch.tensor(mask)
    tout = F.scaled_dot_product_attention(*theirs, attn_mask=tmask, scale=scale)
    tout.backward(torch.tensor(grad))
    close(out.data, tout)
    for a, b in zip(ours, theirs):
        close(a.grad, b.grad)


def test_multi_head_attention_matches_torch_with_copied_weights():
    torch = torch_or_skip()
    rng = np.random.default_rng(6)
    e, h = 8, 2
    theirs = torch.nn.MultiheadAttention(e, h, batch_first=True, dtype=torch.float64)
    with torch.no_grad():
        theirs.in_proj_bias.normal_()
        theirs.out_proj.bias.normal_()
    ours = nn.MultiHeadAttention(e, h, dtype=np.float64)
    ours.load_state_dict({name: value.detach().numpy() for name, value in theirs.state_dict().items()})
    query, memory = rng.standard_normal((3, 4, e)), rng.standard_normal((3, 5, e))
    grad = rng.standard_normal((3, 4, e))
    allowed = (rng.random((4, 5)) < 0.7) | np.eye(4, 5, dtype=bool)
    for key in (None, memory):  # self-attention, then cross-attention
        x = Tensor(query, requires_grad=True)
        out = ours(x, None if key is None else Tensor(key), mask=None if key is None else allowed)
        out.backward(grad)
        tx = torch.tensor(query, requires_grad=True)
        tkey = tx if key is None else torch.tensor(key)
        tmask = None if key is None else torch.tensor(~allowed)  # torch: True = masked out
        tout, _ = theirs(tx, tkey, tkey, attn_mask=tmask, need_weights=False)
        tout.backward(torch.tensor(grad))
        close(out.data, tout)
        close(x.grad, tx.grad)
        for name, param in ours.named_parameters():
            close(param.grad, dict(theirs.named_parameters())[name].grad)
        ours.zero_grad()
        theirs.zero_grad()


@pytest.mark.parametrize("norm_first", [True, False])
def test_encoder_block_matches_torch_encoder_layer(norm_first):
    torch = torch_or_skip()
    rng = np.random.default_rng(7)
    theirs = torch.nn.TransformerEncoderLayer(8, 2, dim_feedforward=16, dropout=0.0, activation="gelu",
                                              batch_first=True, norm_first=norm_first, dtype=torch.float64)
    with torch.no_grad():
        for p in theirs.parameters():
            p.add_(0.1 * torch.randn_like(p))  # non-trivial biases and norm weights
    ours = nn.TransformerEncoderBlock(8, 2, dim_feedforward=16, dropout=0.0, norm_first=norm_first, dtype=np.float64)
    ours.load_state_dict({name: value.detach().numpy() for name, value in theirs.state_dict().items()})
    x_np, grad = rng.standard_normal((2, 5, 8)), rng.standard_normal((2, 5, 8))
    x = Tensor(x_np, requires_grad=True)
    out = ours(x, mask=sg.causal_mask(5))
    out.backward(grad)
    tx = torch.tensor(x_np, requires_grad=True)
    tout = theirs(tx, src_mask=torch.tensor(~sg.causal_mask(5)))
    tout.backward(torch.tensor(grad))
    close(out.data, tout)
    close(x.grad, tx.grad)
    named = dict(theirs.named_parameters())
    for name, param in ours.named_parameters():
        close(param.grad, named[name].grad)


# ---- modules -----------------------------------------------------------------------------------------
def _module_gradcheck(module, x, **kwargs):
    params = module.parameters()
    return gradcheck(lambda t, *_: module(t, **kwargs), [x] + params, mode="directions", directions=6)


@settings(max_examples=5, deadline=None)
@given(st.integers(1, 2), st.integers(1, 4), st.sampled_from([(4, 1), (4, 2), (6, 3)]), st.booleans(), st.integers(0, 2**16))
def test_multi_head_attention_gradchecks(n, length, dims, causal, seed):
    e, h = dims
    rng = np.random.default_rng(seed)
    mha = nn.MultiHeadAttention(e, h, rng=seed, dtype=np.float64)
    for p in mha.parameters():
        p.data += 0.1 * rng.standard_normal(p.shape)
    _module_gradcheck(mha, rng.standard_normal((n, length, e)), is_causal=causal)


@settings(max_examples=4, deadline=None)
@given(st.booleans(), st.sampled_from(["gelu", "gelu_tanh", "relu"]), st.integers(1, 4), st.integers(0, 2**16))
def test_encoder_block_gradchecks(norm_first, activation, length, seed):
    rng = np.random.default_rng(seed)
    block = nn.TransformerEncoderBlock(4, 2, dim_feedforward=6, dropout=0.0, norm_first=norm_first,
                                       activation=activation, rng=seed, dtype=np.float64)
    for p in block.parameters():
        p.data += 0.1 * rng.standard_normal(p.shape)
    _module_gradcheck(block, rng.standard_normal((2, length, 4)), mask=sg.causal_mask(length))


def test_encoder_block_dropout_trains_and_evaluates():
    block = nn.TransformerEncoderBlock(8, 2, dropout=0.5, rng=0)
    x = np.random.default_rng(8).standard_normal((2, 5, 8)).astype(np.float32)
    block.eval()
    np.testing.assert_array_equal(block(x).data, block(x).data)  # no dropout in evaluation
    block.train()
    a, b = block(x).data, block(x).data
    assert a.dtype == np.float32 and not np.array_equal(a, b)  # fresh masks every call


def test_positional_encodings():
    pe = nn.SinusoidalPositionalEncoding(6, max_len=10, dtype=np.float64)
    table = pe.pe
    for pos in range(10):
        for i in range(3):
            angle = pos / 10000 ** (2 * i / 6)
            assert table[pos, 2 * i] == pytest.approx(np.sin(angle), abs=1e-15)
            assert table[pos, 2 * i + 1] == pytest.approx(np.cos(angle), abs=1e-15)
    x = np.random.default_rng(9).standard_normal((2, 4, 6))
    np.testing.assert_allclose(pe(Tensor(x)).data, x + table[:4])
    assert nn.SinusoidalPositionalEncoding(5, max_len=3).pe.shape == (3, 5)  # odd width
    assert "pe" in dict(pe.named_buffers()) and not pe.parameters()
    learned = nn.LearnedPositionalEncoding(7, 6, rng=0, dtype=np.float64)
    gradcheck(lambda t, w: learned(t), [x, learned.weight])
    learned.zero_grad()
    y = learned(Tensor(x))
    y.backward(np.ones(y.shape))
    np.testing.assert_array_equal(learned.weight.grad[4:], 0)
    np.testing.assert_array_equal(learned.weight.grad[:4], 2)


def test_modules_name_themselves_in_errors():
    with pytest.raises(ValueError, match=r"^SinusoidalPositionalEncoding: sequence length 12 exceeds max_len 10"):
        nn.SinusoidalPositionalEncoding(4, max_len=10)(np.zeros((2, 12, 4)))
    with pytest.raises(ValueError, match=r"^LearnedPositionalEncoding: sequence length 9 exceeds max_len 8"):
        nn.LearnedPositionalEncoding(8, 4)(np.zeros((9, 4)))
    with pytest.raises(ValueError, match=r"MultiHeadAttention: embed_dim 6 is not divisible by num_heads 4"):
        nn.MultiHeadAttention(6, 4)
    with pytest.raises(ValueError, match=r"MultiHeadAttention\(embed_dim=4, num_heads=2\): expected query of shape \(N, L, 4\), got \(2, 3\)"):
        nn.MultiHeadAttention(4, 2)(np.zeros((2, 3), np.float32))
    with pytest.raises(ValueError, match=r"TransformerEncoderBlock\(d_model=4\): expected input \(N, L, 4\), got \(2, 3, 5\)"):
        nn.TransformerEncoderBlock(4, 2)(np.zeros((2, 3, 5), np.float32))
    mha = nn.MultiHeadAttention(4, 2)
    with pytest.raises(ValueError, match=r"scaled_dot_product_attention: mask of shape \(2, 2\) does not broadcast to the scores' shape \(1, 2, 3, 3\)"):
        mha(np.zeros((1, 3, 4), np.float32), mask=np.ones((2, 2), bool))
