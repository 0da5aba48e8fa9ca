"""conv2d and conv_transpose2d: naive-loop references, gradchecks, adjointness, errors."""
import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from scratchgen import Tensor, conv2d, conv_transpose2d, gradcheck, kernel
from scratchgen.ops.conv import col2im, conv_output_size, im2col

SETTINGS = settings(max_examples=15, deadline=None)


# ---- naive references: loops over every output (or input) pixel ------------------------------
def naive_conv2d(x, w, b, stride, padding):
    (sh, sw), (ph, pw) = stride, padding
    n, c, h, width = x.shape
    c_out, _, kh, kw = w.shape
    xpad = np.zeros((n, c, h + 2 * ph, width + 2 * pw))
    xpad[:, :, ph : ph + h, pw : pw + width] = x
    oh, ow = (h + 2 * ph - kh) // sh + 1, (width + 2 * pw - kw) // sw + 1
    y = np.zeros((n, c_out, oh, ow))
    for a in range(oh):
        for bb in range(ow):
            patch = xpad[:, :, a * sh : a * sh + kh, bb * sw : bb * sw + kw]  # (N, C, kH, kW)
            y[:, :, a, bb] = np.einsum("ncij,ocij->no", patch, w)
    return y if b is None else y + b[:, None, None]


def naive_conv_transpose2d(x, w, b, stride, padding, output_padding):
    """Every input pixel scatters weight * value onto a kH x kW patch of the (padded) output."""
    (sh, sw), (ph, pw), (oph, opw) = stride, padding, output_padding
    n, c_in, h, width = x.shape
    _, c_out, kh, kw = w.shape
    h_out, w_out = (h - 1) * sh - 2 * ph + kh + oph, (width - 1) * sw - 2 * pw + kw + opw
    ypad = np.zeros((n, c_out, h_out + 2 * ph, w_out + 2 * pw))
    for i in range(h):
        for j in range(width):
            ypad[:, :, i * sh : i * sh + kh, j * sw : j * sw + kw] += np.einsum("nc,cokl->nokl", x[:, :, i, j], w)
    y = ypad[:, :, ph : ph + h_out, pw : pw + w_out]
    return y if b is None else y + b[:, None, None]


def transposed_view(rng, shape):
    """A non-contiguous array of ``shape``: the transpose of a contiguous one."""
    return rng.standard_normal(shape[:2] + shape[2:][::-1]).transpose(0, 1, 3, 2)


@st.composite
def conv_config(draw):
    kh, kw = draw(st.integers(1, 3)), draw(st.integers(1, 3))
    stride = (draw(st.integers(1, 2)), draw(st.integers(1, 2)))
    padding = (draw(st.integers(0, 2)), draw(st.integers(0, 2)))
    h, w = draw(st.integers(1, 5)), draw(st.integers(1, 5))
    n, c_in, c_out = draw(st.integers(1, 2)), draw(st.integers(1, 3)), draw(st.integers(1, 3))
    assume(min(conv_output_size(h, kh, stride[0], padding[0]), conv_output_size(w, kw, stride[1], padding[1])) > 0)
    return dict(n=n, c_in=c_in, c_out=c_out, h=h, w=w, kh=kh, kw=kw, stride=stride, padding=padding,
                bias=draw(st.booleans()), seed=draw(st.integers(0, 2**16)))


@st.composite
def transpose_config(draw):
    config = draw(conv_config())
    config["output_padding"] = (draw(st.integers(0, config["stride"][0] - 1)), draw(st.integers(0, config["stride"][1] - 1)))
    out = [(s - 1) * st_ - 2 * p + k + op for s, st_, p, k, op in
           zip((config["h"], config["w"]), config["stride"], config["padding"], (config["kh"], config["kw"]), config["output_padding"])]
    assume(min(out) > 0)
    return config


# ---- conv2d --------------------------------------------------------------------------------
@SETTINGS
@given(conv_config())
def test_conv2d_matches_naive_and_gradchecks(cfg):
    rng = np.random.default_rng(cfg["seed"])
    x = transposed_view(rng, (cfg["n"], cfg["c_in"], cfg["h"], cfg["w"]))
    w = rng.standard_normal((cfg["c_out"], cfg["c_in"], cfg["kh"], cfg["kw"]))
    b = rng.standard_normal(cfg["c_out"]) if cfg["bias"] else None
    s, p = cfg["stride"], cfg["padding"]
    y = conv2d(Tensor(x), Tensor(w), None if b is None else Tensor(b), stride=s, padding=p)
    np.testing.assert_allclose(y.data, naive_conv2d(x, w, b, s, p), rtol=1e-12, atol=1e-12)
    inputs = [x, w] + ([b] if b is not None else [])
    gradcheck(lambda *t: conv2d(*t, stride=s, padding=p), inputs)


def test_conv2d_int_arguments_and_float32():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((2, 3, 7, 6)).astype(np.float32)
    w = rng.standard_normal((4, 3, 3, 3)).astype(np.float32)
    b = rng.standard_normal(4).astype(np.float32)
    xt, wt, bt = Tensor(x, requires_grad=True), Tensor(w, requires_grad=True), Tensor(b, requires_grad=True)
    y = conv2d(xt, wt, bt, stride=2, padding=1)
    assert y.shape == (2, 4, 4, 3) and y.dtype == np.float32 and y.data.flags.c_contiguous
    np.testing.assert_allclose(y.data, naive_conv2d(x.astype(float), w.astype(float), b.astype(float), (2, 2), (1, 1)), rtol=1e-4, atol=1e-4)
    y.backward(np.ones(y.shape, dtype=np.float32))
    assert xt.grad.dtype == wt.grad.dtype == bt.grad.dtype == np.float32


def test_conv2d_skips_input_grad_when_not_needed():
    rng = np.random.default_rng(1)
    x, w = rng.standard_normal((2, 1, 5, 5)), rng.standard_normal((3, 1, 3, 3))
    grad = rng.standard_normal((2, 3, 3, 3))
    gx, gw, gb = kernel("conv2d_backward")(grad, x, w, (1, 1), (0, 0), needs_input_grad=False, needs_bias_grad=False)
    assert gx is None and gb is None and gw.shape == w.shape
    xt, wt = Tensor(x), Tensor(w, requires_grad=True)
    (conv2d(xt, wt) * grad).sum().backward()
    assert xt.grad is None
    np.testing.assert_allclose(wt.grad, gw)
    gradcheck(lambda wt: conv2d(Tensor(x), wt), [w])


# ---- conv_transpose2d ------------------------------------------------------------------------
@SETTINGS
@given(transpose_config())
def test_conv_transpose2d_matches_naive_and_gradchecks(cfg):
    rng = np.random.default_rng(cfg["seed"])
    x = transposed_view(rng, (cfg["n"], cfg["c_in"], cfg["h"], cfg["w"]))
    w = rng.standard_normal((cfg["c_in"], cfg["c_out"], cfg["kh"], cfg["kw"]))
    b = rng.standard_normal(cfg["c_out"]) if cfg["bias"] else None
    s, p, op = cfg["stride"], cfg["padding"], cfg["output_padding"]
    y = conv_transpose2d(Tensor(x), Tensor(w), None if b is None else Tensor(b), stride=s, padding=p, output_padding=op)
    np.testing.assert_allclose(y.data, naive_conv_transpose2d(x, w, b, s, p, op), rtol=1e-12, atol=1e-12)
    inputs = [x, w] + ([b] if b is not None else [])
    gradcheck(lambda *t: conv_transpose2d(*t, stride=s, padding=p, output_padding=op), inputs)


@SETTINGS
@given(conv_config())
def test_conv_transpose2d_is_the_adjoint_of_conv2d(cfg):
    """<conv2d(x, W), y> == <x, conv_transpose2d(y, W)> with the same W and the output_padding
    that gives conv_transpose2d the size of x back."""
    rng = np.random.default_rng(cfg["seed"])
    s, p = cfg["stride"], cfg["padding"]
    x = rng.standard_normal((cfg["n"], cfg["c_in"], cfg["h"], cfg["w"]))
    w = rng.standard_normal((cfg["c_out"], cfg["c_in"], cfg["kh"], cfg["kw"]))
    conv = conv2d(Tensor(x), Tensor(w), stride=s, padding=p).data
    y = rng.standard_normal(conv.shape)
    op = tuple((size + 2 * pad - k) % stride for size, pad, k, stride in zip(x.shape[2:], p, w.shape[2:], s))
    back = conv_transpose2d(Tensor(y), Tensor(w), stride=s, padding=p, output_padding=op).data
    assert back.shape == x.shape
    np.testing.assert_allclose((conv * y).sum(), (x * back).sum(), rtol=1e-10)


@SETTINGS
@given(conv_config())
def test_col2im_is_the_adjoint_of_im2col(cfg):
    rng = np.random.default_rng(cfg["seed"])
    k, s, p = (cfg["kh"], cfg["kw"]), cfg["stride"], cfg["padding"]
    x = rng.standard_normal((cfg["n"], cfg["c_in"], cfg["h"], cfg["w"]))
    cols = im2col(x, k, s, p)
    other = rng.standard_normal(cols.shape)
    np.testing.assert_allclose((cols * other).sum(), (x * col2im(other, x.shape, k, s, p)).sum(), rtol=1e-10)


def test_dcgan_shapes():
    rng = np.random.default_rng(2)
    x = Tensor(rng.standard_normal((2, 8, 7, 7)).astype(np.float32))
    w = Tensor(rng.standard_normal((8, 4, 4, 4)).astype(np.float32))
    y = conv_transpose2d(x, w, stride=2, padding=1)
    assert y.shape == (2, 4, 14, 14) and y.dtype == np.float32
    z = conv_transpose2d(y, Tensor(rng.standard_normal((4, 1, 4, 4)).astype(np.float32)), stride=2, padding=1)
    assert z.shape == (2, 1, 28, 28)


# ---- both memory layouts ----------------------------------------------------------------------
@pytest.mark.parametrize("batch_last", [False, True], ids=["channel-major", "batch-last"])
def test_both_layouts_match_naive_and_gradcheck(batch_last, monkeypatch):
    """The kernels pick channel-major or batch-last columns per layer (_batch_last_pays); force
    each in turn, with strides, padding, output_padding and non-contiguous inputs."""
    from scratchgen.ops import conv as conv_module

    monkeypatch.setattr(conv_module, "_batch_last_pays", lambda window_rows, other_rows: batch_last)
    rng = np.random.default_rng(4)
    x, w, b = transposed_view(rng, (3, 2, 7, 6)), rng.standard_normal((4, 2, 3, 2)), rng.standard_normal(4)
    y = conv2d(Tensor(x), Tensor(w), Tensor(b), stride=(2, 1), padding=(1, 1))
    assert y.data.flags.c_contiguous
    np.testing.assert_allclose(y.data, naive_conv2d(x, w, b, (2, 1), (1, 1)), rtol=1e-12, atol=1e-12)
    gradcheck(lambda *t: conv2d(*t, stride=(2, 1), padding=(1, 1)), [x, w, b])
    xt, wt = transposed_view(rng, (2, 4, 3, 4)), rng.standard_normal((4, 3, 4, 3))
    y = conv_transpose2d(Tensor(xt), Tensor(wt), Tensor(b[:3]), stride=2, padding=1, output_padding=(1, 0))
    assert y.data.flags.c_contiguous
    np.testing.assert_allclose(y.data, naive_conv_transpose2d(xt, wt, b[:3], (2, 2), (1, 1), (1, 0)), rtol=1e-12, atol=1e-12)
    gradcheck(lambda *t: conv_transpose2d(*t, stride=2, padding=1, output_padding=(1, 0)), [xt, wt, b[:3]])
    grads = kernel("conv2d_backward")(rng.standard_normal((3, 4, 4, 7)), x, w, (2, 1), (1, 1))
    grads += kernel("conv_transpose2d_backward")(rng.standard_normal(y.shape), xt, wt, (2, 2), (1, 1))
    assert all(g.flags.c_contiguous for g in grads)
    # C_out > C_in kH kW: the weight gradient takes the other branch of _times_transpose.
    gradcheck(lambda *t: conv2d(*t, padding=1), [rng.standard_normal((2, 1, 4, 3)), rng.standard_normal((5, 1, 2, 1))])


# ---- clear errors ----------------------------------------------------------------------------
def test_errors():
    x = Tensor(np.zeros((2, 3, 8, 8)))
    with pytest.raises(ValueError, match=r"conv2d: input has 3 channels, weight expects 1 \(weight shape \(4, 1, 3, 3\)"):
        conv2d(x, Tensor(np.zeros((4, 1, 3, 3))))
    with pytest.raises(ValueError, match=r"conv2d: input must be 4-D \(N, C, H, W\), got shape \(3, 8, 8\)"):
        conv2d(Tensor(np.zeros((3, 8, 8))), Tensor(np.zeros((4, 3, 3, 3))))
    with pytest.raises(ValueError, match=r"conv2d: output size would be \(-1, -1\)"):
        conv2d(x, Tensor(np.zeros((4, 3, 10, 10))))
    with pytest.raises(ValueError, match=r"conv2d: bias has shape \(3,\), expected \(4,\)"):
        conv2d(x, Tensor(np.zeros((4, 3, 3, 3))), Tensor(np.zeros(3)))
    with pytest.raises(ValueError, match=r"conv2d: stride must be >= 1"):
        conv2d(x, Tensor(np.zeros((4, 3, 3, 3))), stride=0)
    with pytest.raises(TypeError, match=r"conv2d: padding must be an int or a pair of ints"):
        conv2d(x, Tensor(np.zeros((4, 3, 3, 3))), padding=(1, 1, 1))
    with pytest.raises(ValueError, match=r"conv_transpose2d: input has 3 channels, weight expects 4 \(weight shape \(4, 3, 3, 3\) is \(C_in, C_out"):
        conv_transpose2d(x, Tensor(np.zeros((4, 3, 3, 3))))
    with pytest.raises(ValueError, match=r"conv_transpose2d: output_padding \(2, 2\) must be smaller than stride \(2, 2\)"):
        conv_transpose2d(x, Tensor(np.zeros((3, 1, 4, 4))), stride=2, output_padding=2)
    with pytest.raises(ValueError, match=r"conv_transpose2d: output size would be \(-3, -3\)"):
        conv_transpose2d(Tensor(np.zeros((1, 3, 1, 1))), Tensor(np.zeros((3, 1, 1, 1))), padding=2)


# ---- PyTorch parity (skipped where torch is not installed) ------------------------------------
def test_matches_torch():
    torch = pytest.importorskip("torch")
    F = torch.nn.functional
    rng = np.random.default_rng(3)
    x, w, b = rng.standard_normal((2, 3, 9, 8)), rng.standard_normal((4, 3, 3, 2)), rng.standard_normal(4)
    tx, tw, tb = (torch.tensor(a, requires_grad=True) for a in (x, w, b))
    ty = F.conv2d(tx, tw, tb, stride=(2, 1), padding=(1, 0))
    g = rng.standard_normal(tuple(ty.shape))
    ty.backward(torch.tensor(g))
    sx, sw, sb = (Tensor(a, requires_grad=True) for a in (x, w, b))
    conv2d(sx, sw, sb, stride=(2, 1), padding=(1, 0)).backward(g)
    for ours, theirs in ((sx, tx), (sw, tw), (sb, tb)):
        np.testing.assert_allclose(ours.grad, theirs.grad.numpy(), rtol=1e-10, atol=1e-10)
    x, w = rng.standard_normal((2, 3, 4, 5)), rng.standard_normal((3, 2, 4, 3))
    tx, tw, tb = torch.tensor(x, requires_grad=True), torch.tensor(w, requires_grad=True), torch.tensor(b[:2], requires_grad=True)
    ty = F.conv_transpose2d(tx, tw, tb, stride=2, padding=1, output_padding=1)
    g = rng.standard_normal(tuple(ty.shape))
    ty.backward(torch.tensor(g))
    sx, sw, sb = Tensor(x, requires_grad=True), Tensor(w, requires_grad=True), Tensor(b[:2], requires_grad=True)
    sy = conv_transpose2d(sx, sw, sb, stride=2, padding=1, output_padding=1)
    np.testing.assert_allclose(sy.data, ty.detach().numpy(), rtol=1e-10, atol=1e-10)
    sy.backward(g)
    for ours, theirs in ((sx, tx), (sw, tw), (sb, tb)):
        np.testing.assert_allclose(ours.grad, theirs.grad.numpy(), rtol=1e-10, atol=1e-10)
