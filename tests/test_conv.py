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


def naive_conv2d_weight_grad(x, grad, w_shape, stride, padding):
    """dL/dW of conv2d for dL/dy = grad: every output pixel adds grad x its input patch."""
    (sh, sw), (ph, pw) = stride, padding
    n, c, h, width = x.shape
    kh, kw = w_shape[2:]
    xpad = np.zeros((n, c, h + 2 * ph, width + 2 * pw))
    xpad[:, :, ph : ph + h, pw : pw + width] = x
    dw = np.zeros(w_shape)
    for a in range(grad.shape[2]):
        for bb in range(grad.shape[3]):
            dw += np.einsum("no,ncij->ocij", grad[:, :, a, bb], xpad[:, :, a * sh : a * sh + kh, bb * sw : bb * sw + kw])
    return dw


def naive_conv_transpose2d_weight_grad(x, grad, w_shape, stride, padding):
    """dL/dW of conv_transpose2d for dL/dy = grad: every input pixel meets the grad patch it wrote to."""
    (sh, sw), (ph, pw) = stride, padding
    n, c_out, h_out, w_out = grad.shape
    kh, kw = w_shape[2:]
    gpad = np.zeros((n, c_out, h_out + 2 * ph + kh, w_out + 2 * pw + kw))
    gpad[:, :, ph : ph + h_out, pw : pw + w_out] = grad
    dw = np.zeros(w_shape)
    for i in range(x.shape[2]):
        for j in range(x.shape[3]):
            dw += np.einsum("nc,nokl->cokl", x[:, :, i, j], gpad[:, :, i * sh : i * sh + kh, j * sw : j * sw + kw])
    return dw


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


def test_conv2d_skips_input_grad_when_not_needed(monkeypatch):
    from scratchgen.ops import conv as conv_module

    rng = np.random.default_rng(1)
    x, w = rng.standard_normal((2, 1, 5, 5)), rng.standard_normal((3, 1, 3, 3))
    grad = rng.standard_normal((2, 3, 3, 3))
    used = []
    monkeypatch.setattr(conv_module, "kernel", lambda name: used.append(name) or kernel(name))
    xt, wt = Tensor(x), Tensor(w, requires_grad=True)
    (conv2d(xt, wt) * grad).sum().backward()
    assert xt.grad is None and "col2im" not in used  # the first layer's input gradient costs nothing
    np.testing.assert_allclose(wt.grad, naive_conv2d_weight_grad(x, grad, w.shape, (1, 1), (0, 0)), rtol=1e-12)
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
    """The NumPy backend picks channel-major or batch-last columns per layer (conv_layout.batch_last_pays);
    force each in turn, with strides, padding, output_padding and non-contiguous inputs."""
    from scratchgen.ops import conv_layout

    monkeypatch.setattr(conv_layout, "batch_last_pays", lambda window_rows, other_rows: batch_last)
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
    tensors = [Tensor(a, requires_grad=True) for a in (x, w, b, xt, wt)]
    (conv2d(*tensors[:3], stride=(2, 1), padding=(1, 1)) * rng.standard_normal((3, 4, 4, 7))).sum().backward()
    (conv_transpose2d(tensors[3], tensors[4], stride=2, padding=1, output_padding=(1, 0)) * rng.standard_normal(y.shape)).sum().backward()
    assert all(t.grad.flags.c_contiguous for t in tensors)
    # C_out > C_in kH kW: the weight gradient takes the other branch of weight_gradient.
    gradcheck(lambda *t: conv2d(*t, padding=1), [rng.standard_normal((2, 1, 4, 3)), rng.standard_normal((5, 1, 2, 1))])


# ---- model-size layers, every layout and backend, against the naive loops (no torch needed) ---------
DCGAN_LAYERS = [  # (kind, x shape, weight shape, stride, padding): the DCGAN generator/discriminator layers, batch 8
    ("conv", (8, 64, 14, 14), (128, 64, 4, 4), 2, 1),
    ("conv", (8, 32, 14, 14), (64, 32, 3, 3), 1, 1),
    ("conv", (8, 1, 28, 28), (64, 1, 4, 4), 2, 1),
    ("convT", (8, 128, 7, 7), (128, 64, 4, 4), 2, 1),
    ("convT", (8, 64, 14, 14), (64, 1, 4, 4), 2, 1),
]


@pytest.mark.parametrize("layout", ["channel-major", "batch-last"])
@pytest.mark.parametrize("backend_name", ["numpy", "numba"])
@pytest.mark.parametrize("layer", DCGAN_LAYERS, ids=lambda l: f"{l[0]}{l[1][1]}-{l[2][0 if l[0] == 'conv' else 1]}k{l[2][2]}s{l[3]}")
def test_dcgan_size_layers_match_the_naive_loops_forward_and_backward(layer, backend_name, layout, monkeypatch):
    """Model-size layers engage what tiny ones do not (the blocked batch-last copies over 64 KiB, the
    compiled loops' tiling): forward and all three gradients against float64 naive loops."""
    import scratchgen as sg
    from scratchgen.ops import conv_layout

    if backend_name == "numba":
        pytest.importorskip("numba", reason="the numba backend needs Numba")
    monkeypatch.setattr(conv_layout, "batch_last_pays", lambda window_rows, other_rows: layout == "batch-last")
    kind, x_shape, w_shape, s, p = layer
    rng = np.random.default_rng(7)
    x, w = rng.standard_normal(x_shape), rng.standard_normal(w_shape) * 0.1
    b = rng.standard_normal(w_shape[0] if kind == "conv" else w_shape[1])
    with sg.use_backend(backend_name):
        tensors = [Tensor(a, requires_grad=True) for a in (x, w, b)]
        op = conv2d if kind == "conv" else conv_transpose2d
        y = op(*tensors, stride=s, padding=p)
        grad = rng.standard_normal(y.shape)
        (y * grad).sum().backward()
    if kind == "conv":
        expected_y = naive_conv2d(x, w, b, (s, s), (p, p))
        expected_dx = naive_conv_transpose2d(grad, w, None, (s, s), (p, p), (0, 0))[:, :, : x_shape[2], : x_shape[3]]
        expected_dw = naive_conv2d_weight_grad(x, grad, w_shape, (s, s), (p, p))
    else:
        expected_y = naive_conv_transpose2d(x, w, b, (s, s), (p, p), (0, 0))
        expected_dx = naive_conv2d(grad, w, None, (s, s), (p, p))
        expected_dw = naive_conv_transpose2d_weight_grad(x, grad, w_shape, (s, s), (p, p))
    for got, expected, what in ((y.data, expected_y, "y"), (tensors[0].grad, expected_dx, "dx"),
                                (tensors[1].grad, expected_dw, "dw"), (tensors[2].grad, grad.sum(axis=(0, 2, 3)), "db")):
        np.testing.assert_allclose(got, expected, rtol=1e-10, atol=1e-10 * np.abs(expected).max(), err_msg=what)


# ---- clear errors ----------------------------------------------------------------------------
def test_errors():
    x = Tensor(np.zeros((2, 3, 8, 8)))
    for bad in (1.5, "2", (1,), (1, 2.0), True):
        with pytest.raises(TypeError, match=r"conv2d: stride must be an int or a pair of ints, got"):
            conv2d(x, Tensor(np.zeros((4, 3, 3, 3))), stride=bad)
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


# ---- Winograd F(2x2, 3x3): the same convolution, fewer products (scratchgen/ops/conv_winograd.py) ----
@pytest.mark.parametrize("dtype, tolerance", [(np.float64, 1e-12), (np.float32, 2e-6)], ids=["float64", "float32"])
@pytest.mark.parametrize("shape, padding", [((2, 3, 6, 6), 1), ((2, 3, 7, 5), 1), ((1, 2, 5, 5), 0), ((2, 2, 4, 6), 2),
                                            ((3, 16, 14, 14), 1)])
def test_winograd_equals_im2col_forward_and_backward(dtype, tolerance, shape, padding):
    from scratchgen.ops.conv import use_conv_algorithm

    rng = np.random.default_rng(0)
    x = rng.standard_normal(shape).astype(dtype)
    w = (rng.standard_normal((5, shape[1], 3, 3)) / 3).astype(dtype)
    b = rng.standard_normal(5).astype(dtype)
    results = []
    for algorithm in ("im2col", "winograd"):
        tensors = [Tensor(a.copy(), requires_grad=True) for a in (x, w, b)]
        with use_conv_algorithm(algorithm):
            y = conv2d(*tensors, padding=padding)
        y.backward(np.random.default_rng(1).standard_normal(y.shape).astype(dtype))
        results.append([y.data] + [t.grad for t in tensors])
    for got, expected in zip(results[1], results[0]):
        assert got.dtype == dtype
        assert np.abs(got - expected).max() <= tolerance * np.abs(expected).max()


def test_numba_picks_winograd_for_wide_3x3_layers_only():
    numba = pytest.importorskip("numba")  # noqa: F841
    import scratchgen
    from scratchgen.backend import kernel

    with scratchgen.use_backend("numba"):
        choose = kernel("conv_algorithm")
        assert choose(32, 64, (3, 3), (1, 1), (1, 1)) == "winograd"
        assert choose(1, 32, (3, 3), (1, 1), (1, 1)) == "im2col"  # one input channel: 16 GEMMs with K = 1
        assert choose(64, 128, (4, 4), (2, 2), (1, 1)) == "im2col"
        assert choose(32, 64, (3, 3), (2, 2), (1, 1)) == "im2col"
    assert kernel("conv_algorithm")(32, 64, (3, 3), (1, 1), (1, 1)) == "im2col"  # numpy keeps the reference
