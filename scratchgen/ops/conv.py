"""2-D convolution and transposed convolution (NCHW), as im2col + one GEMM.

Convolution (cross-correlation, as in every deep learning library), stride s, zero padding p:

    y[n, o, a, b] = bias[o] + sum_{c, i, j} W[o, c, i, j] * xpad[n, c, a*s + i, b*s + j]
    x: (N, C_in, H, W)   W: (C_out, C_in, kH, kW)   bias: (C_out,)   y: (N, C_out, OH, OW)
    OH = (H + 2 p - kH) // s + 1          (likewise OW)

im2col gathers every receptive field into one column of a matrix, so the whole layer is a
single matrix product (one big BLAS call):

    cols = im2col(x)                    (C_in kH kW, N OH OW)
    Y    = W_mat @ cols                 (C_out, N OH OW)     W_mat = W.reshape(C_out, C_in kH kW)

and, with G = dL/dy arranged the same way as Y (C_out, N OH OW), the backward is

    dL/dW = G @ cols^T                  (C_out, C_in kH kW)
    dL/dx = col2im(W_mat^T @ G)         col2im, the adjoint of im2col, scatter-adds each
                                        column back onto the pixels it was gathered from
    dL/db = sum of G over (N, OH, OW)

Transposed convolution is the same linear map run backwards: ``conv_transpose2d(x, W)`` is
exactly conv2d's input gradient ``col2im(W_mat^T @ X)`` (with W in PyTorch's (C_in, C_out,
kH, kW) layout, which is conv2d's (C_out, C_in, ...) layout read from the other side), so its
output size is the input size conv2d maps back from:

    H_out = (H - 1) s - 2 p + kH + output_padding     (output_padding < s picks among the
                                                       sizes that a stride-s conv2d maps to H)

and its backward is conv2d's forward: dL/dx = conv2d(G, W), dL/dW = conv2d's weight gradient
with the roles of input and output gradient swapped.

The ops below are that algebra, written once for every backend. What a backend supplies are
the four memory movements around the GEMMs, as kernels (NumPy references here; Numba CPU,
Numba CUDA and CuPy versions in ``kernels/``):

    im2col(x)             (N, C, H, W)  -> (C kH kW, N OH OW)   gather the receptive fields
    col2im(cols)          (C kH kW, N OH OW) -> (N, C, H, W)    its adjoint: scatter-add them back
    conv_to_columns(y)    (N, C, H, W)  -> (C, N H W)           an image batch as a GEMM operand
    conv_from_columns(Y)  (C, N H W)    -> (N, C, H, W) + bias  and back

Where the time goes, and the choices made for it (batch 64, float32, 1 thread: the three
GEMMs are 55-70% of a layer's forward + backward; the rest is moving memory):

* Rows of ``cols`` are (c, i, j), so ``W.reshape`` is a GEMM factor with no copy, and every
  GEMM is one BLAS call on contiguous operands (``cols.T`` is a transposed *view*, which BLAS
  reads as it is).
* The columns may be ordered (a, b, n) instead of (n, a, b) (*batch-last*): the products are
  the same numbers in another column order, but NumPy's copies then move longer runs. Each
  backend's ``conv_batch_last`` kernel decides per layer (NumPy: ``conv_layout.py``, which
  holds that machinery and its measurements; compiled backends always use (n, a, b)). The
  references below read as the (n, a, b) case and hand the other to ``conv_layout.py``.
* The weight gradient needs im2col(x) again: it is *recomputed* in the backward (one gather,
  5-10% of the layer's time) rather than kept from the forward, where it would hold kH kW
  times the memory of x (9x, 16x) per layer between the two passes.
"""
from __future__ import annotations

import contextlib
import numbers
from typing import Tuple

from ..backend import get_array_module, kernel, register_kernel
from ..function import Function
from ..gradcheck import register_case
from ..tensor import Tensor
from . import conv_layout, conv_winograd

__all__ = ["conv2d", "conv_transpose2d", "conv_output_size", "conv_transpose_output_size"]

Pair = Tuple[int, int]


def conv_output_size(size: int, kernel_size: int, stride: int, padding: int) -> int:
    """Output length of a convolution along one axis: (size + 2 padding - kernel) // stride + 1."""
    return (size + 2 * padding - kernel_size) // stride + 1


def conv_transpose_output_size(size: int, kernel_size: int, stride: int, padding: int, output_padding: int = 0) -> int:
    """Output length of a transposed convolution: (size - 1) stride - 2 padding + kernel + output_padding."""
    return (size - 1) * stride - 2 * padding + kernel_size + output_padding


# ---- NumPy reference kernels: the memory movements around the GEMMs ------------------------------
@register_kernel("im2col")
def im2col(x, kernel_size: Pair, stride: Pair, padding: Pair, batch_last: bool = False):
    """Gather every receptive field of ``x`` into a column.

    x: (N, C, H, W) -> cols: (C kH kW, N OH OW), C-contiguous, dtype of x, with
        cols[(c kH + i) kW + j, (n OH + a) OW + b] = xpad[n, c, a sH + i, b sW + j]
    where xpad is x zero-padded by pH rows and pW columns on each side. ``batch_last``: the
    same columns ordered (a, b, n) instead (``conv_layout.py``).
    """
    if batch_last:
        return conv_layout.im2col_batch_last(x, kernel_size, stride, padding)
    xp = get_array_module(x)
    (kh, kw), (sh, sw), (ph, pw) = kernel_size, stride, padding
    n, c, h, w = x.shape
    oh, ow = conv_output_size(h, kh, sh, ph), conv_output_size(w, kw, sw, pw)
    xpad = xp.zeros((c, n, h + 2 * ph, w + 2 * pw), dtype=x.dtype)  # channels first: cols' rows start with c
    xpad[:, :, ph : ph + h, pw : pw + w] = x.transpose(1, 0, 2, 3)
    # A read-only view, no copy: windows[c, n, a', b', i, j] = xpad[c, n, a' + i, b' + j] ...
    windows = xp.lib.stride_tricks.sliding_window_view(xpad, (kh, kw), axis=(2, 3))
    # ... of which a stride-s convolution uses every s-th position.
    windows = windows[:, :, : (oh - 1) * sh + 1 : sh, : (ow - 1) * sw + 1 : sw]  # (C, N, OH, OW, kH, kW)
    # Axes in the order (c, i, j | n, a, b); reshape makes the one copy.
    return windows.transpose(0, 4, 5, 1, 2, 3).reshape(c * kh * kw, n * oh * ow)


@register_kernel("col2im")
def col2im(cols, x_shape, kernel_size: Pair, stride: Pair, padding: Pair, batch_last: bool = False):
    """The adjoint of ``im2col``: add every column back onto the pixels it was gathered from.

    cols: (C kH kW, N OH OW) -> x: x_shape = (N, C, H, W), C-contiguous, dtype of cols, with
        x[n, c, h, w] = sum of cols[(c kH + i) kW + j, (n OH + a) OW + b]
                        over all (i, j, a, b) with a sH + i = h + pH and b sW + j = w + pW.
    OH, OW are ``conv_output_size`` of H, W. Pixels no window covers (the bottom rows that a
    stride leaves out) get 0. <im2col(x), cols> == <x, col2im(cols)> for all x and cols.
    """
    xp = get_array_module(cols)
    (kh, kw), (sh, sw), (ph, pw) = kernel_size, stride, padding
    n, c, h, w = x_shape
    oh, ow = col2im_output_grid(cols, x_shape, kernel_size, stride, padding)
    if batch_last:
        return conv_layout.col2im_batch_last(cols, x_shape, kernel_size, stride, padding)
    cols = cols.reshape(c, kh, kw, n, oh, ow)
    xpad = xp.zeros((c, n, h + 2 * ph, w + 2 * pw), dtype=cols.dtype)
    # One whole-array add per kernel tap (9 or 16): windows overlap, so not one add.
    for i in range(kh):
        for j in range(kw):
            xpad[:, :, i : i + sh * oh : sh, j : j + sw * ow : sw] += cols[:, i, j]
    return xp.ascontiguousarray(xpad[:, :, ph : ph + h, pw : pw + w].transpose(1, 0, 2, 3))


def col2im_output_grid(cols, x_shape, kernel_size: Pair, stride: Pair, padding: Pair) -> Pair:
    """(OH, OW) of the convolution whose columns ``cols`` are; a clear error if cols does not fit x_shape."""
    (kh, kw), (sh, sw), (ph, pw) = kernel_size, stride, padding
    n, c, h, w = x_shape
    oh, ow = conv_output_size(h, kh, sh, ph), conv_output_size(w, kw, sw, pw)
    if cols.shape != (c * kh * kw, n * oh * ow):
        raise ValueError(f"col2im: cols has shape {tuple(cols.shape)}, expected {(c * kh * kw, n * oh * ow)} "
                         f"for x_shape {tuple(x_shape)}")
    return oh, ow


@register_kernel("conv_to_columns")
def conv_to_columns(y, batch_last: bool = False):
    """An image batch as a GEMM operand: (N, C, H, W) -> (C, N H W) (a copy), columns ordered
    (n, h, w) like im2col's, or (h, w, n) with ``batch_last``."""
    if batch_last:
        return conv_layout.to_columns_batch_last(y)
    n, c, h, w = y.shape
    return get_array_module(y).ascontiguousarray(y.transpose(1, 0, 2, 3)).reshape(c, n * h * w)


@register_kernel("conv_from_columns")
def conv_from_columns(y_mat, bias, shape, batch_last: bool = False):
    """The inverse of ``conv_to_columns``, plus ``bias`` per channel: (C, N H W) -> shape = (N, C, H, W)."""
    n, c, h, w = shape
    if batch_last:
        y = conv_layout.from_columns_batch_last(y_mat, shape)
    else:
        y = get_array_module(y_mat).empty(shape, dtype=y_mat.dtype)  # always a fresh array: the bias is added in place
        y[...] = y_mat.reshape(c, n, h, w).transpose(1, 0, 2, 3)
    if bias is not None:
        y += bias[:, None, None]
    return y


@register_kernel("conv_algorithm")
def conv_algorithm(c_in: int, c_out: int, kernel_size: Pair, stride: Pair, padding: Pair) -> str:
    """Which algorithm computes a conv2d layer: "im2col" (the reading above) or "winograd"
    (F(2x2, 3x3), conv_winograd.py: 3x3 kernels, stride 1, equal padding <= 2). NumPy: always
    im2col, so that its numbers stay the reference's; a compiled backend registers its own choice
    (``use_conv_algorithm`` overrides it, for tests and comparisons)."""
    return "im2col"


_forced_algorithm = None


@contextlib.contextmanager
def use_conv_algorithm(name: str):
    """Run the block with every conv2d layer that Winograd can compute on ``name`` ("im2col" or
    "winograd"), whatever the backend would choose (other layers keep im2col)."""
    global _forced_algorithm
    if name not in ("im2col", "winograd"):
        raise ValueError(f"use_conv_algorithm: choose 'im2col' or 'winograd', got {name!r}")
    previous, _forced_algorithm = _forced_algorithm, name
    try:
        yield name
    finally:
        _forced_algorithm = previous


def _algorithm(c_in, c_out, kernel_size, stride, padding) -> str:
    if _forced_algorithm is not None:
        fits = tuple(kernel_size) == (3, 3) and tuple(stride) == (1, 1) and padding[0] == padding[1] <= 2
        return _forced_algorithm if fits else "im2col"
    return kernel("conv_algorithm")(c_in, c_out, kernel_size, stride, padding)


@register_kernel("conv_batch_last")
def conv_batch_last(window_rows: int, other_rows: int) -> bool:
    """Order a layer's GEMM columns batch-last? NumPy: when its copies then run faster (``conv_layout.py``)."""
    return conv_layout.batch_last_pays(window_rows, other_rows)


def weight_gradient(g, cols):
    """G @ cols^T, the weight gradient's long-K product: (M, L) @ (L, K) -> (M, K), C-contiguous.

    Computed as (cols @ G^T)^T when K > M: OpenBLAS runs these 5-12% faster with the larger of
    M, K as the rows of its result (measured: (128, 3136) @ (3136, 1024) 9.2 -> 8.2 ms; but
    (32, 50176) @ (50176, 9) 1.1 -> 1.3 ms the other way round). cuBLAS takes either as it is.
    """
    if g.shape[0] >= cols.shape[0]:
        return g @ cols.T
    return get_array_module(g).ascontiguousarray((cols @ g.T).T)


# ---- argument checking -----------------------------------------------------------------------
def _pair(value, op: str, name: str, minimum: int) -> Pair:
    """An int or a pair of ints -> (int, int), each >= minimum."""
    if isinstance(value, numbers.Integral):
        pair = (value, value)
    elif isinstance(value, (tuple, list)):
        pair = tuple(value)
    else:
        pair = ()  # a float, a string, ...: refused below, naming the value
    if len(pair) != 2 or not all(isinstance(v, numbers.Integral) and not isinstance(v, bool) for v in pair):
        raise TypeError(f"{op}: {name} must be an int or a pair of ints, got {value!r}")
    pair = (int(pair[0]), int(pair[1]))
    if min(pair) < minimum:
        raise ValueError(f"{op}: {name} must be >= {minimum}, got {value!r}")
    return pair


def _check_arrays(op: str, x, weight, bias, in_axis: int, out_axis: int, layout: str) -> None:
    """Shapes of x, weight and bias; in_axis/out_axis: where weight keeps its input/output channels."""
    if x.ndim != 4:
        raise ValueError(f"{op}: input must be 4-D (N, C, H, W), got shape {x.shape}")
    if weight.ndim != 4:
        raise ValueError(f"{op}: weight must be 4-D {layout}, got shape {weight.shape}")
    if x.shape[1] != weight.shape[in_axis]:
        raise ValueError(f"{op}: input has {x.shape[1]} channels, weight expects {weight.shape[in_axis]} "
                         f"(weight shape {weight.shape} is {layout})")
    if bias is not None and bias.shape != (weight.shape[out_axis],):
        raise ValueError(f"{op}: bias has shape {bias.shape}, expected ({weight.shape[out_axis]},) for weight shape {weight.shape}")


# ---- ops: the algebra, once for every backend ---------------------------------------------------
class Conv2d(Function):
    op_name = "conv2d"

    @staticmethod
    def forward(ctx, x, weight, bias=None, stride=1, padding=0):
        op = "conv2d"
        _check_arrays(op, x, weight, bias, in_axis=1, out_axis=0, layout="(C_out, C_in, kH, kW)")
        stride, padding = _pair(stride, op, "stride", 1), _pair(padding, op, "padding", 0)
        n, c_in, h, w = x.shape
        c_out, _, kh, kw = weight.shape
        oh, ow = conv_output_size(h, kh, stride[0], padding[0]), conv_output_size(w, kw, stride[1], padding[1])
        if min(oh, ow) <= 0:
            raise ValueError(f"{op}: output size would be {(oh, ow)} for input {h}x{w}, kernel {kh}x{kw}, "
                             f"stride {stride}, padding {padding}; the padded input must be at least as large as the kernel")
        ctx.stride, ctx.padding, ctx.algorithm = stride, padding, _algorithm(c_in, c_out, (kh, kw), stride, padding)
        if ctx.algorithm == "winograd":  # the same sums in fewer products (conv_winograd.py)
            y, u = conv_winograd.conv2d_forward(x, weight, bias, padding)
            ctx.save_for_backward(x, weight, u)
            return y
        batch_last = kernel("conv_batch_last")(c_in * kh * kw, c_out)  # a column order, not a different result
        cols = kernel("im2col")(x, (kh, kw), stride, padding, batch_last)  # (C_in kH kW, N OH OW)
        y = weight.reshape(c_out, -1) @ cols  # (C_out, N OH OW): the one big GEMM
        ctx.save_for_backward(x, weight)
        ctx.batch_last = batch_last
        return kernel("conv_from_columns")(y, bias, (n, c_out, oh, ow), batch_last)

    @staticmethod
    def backward(ctx, grad):
        need_x, need_w, need_b = ctx.needs_input_grad
        if ctx.algorithm == "winograd":
            x, weight, u = ctx.saved_arrays
            grad_x, grad_w = conv_winograd.conv2d_backward(grad, x, weight, u, ctx.padding, (need_x, need_w)) \
                if need_x or need_w else (None, None)
            return grad_x, grad_w, grad.sum(axis=(0, 2, 3)) if need_b else None
        x, weight = ctx.saved_arrays
        (kh, kw), batch_last = weight.shape[2:], ctx.batch_last
        grad_x = grad_w = grad_b = None
        if need_x or need_w:
            g = kernel("conv_to_columns")(grad, batch_last)  # G: (C_out, N OH OW)
            if need_w:  # dL/dW = G @ im2col(x)^T, with im2col(x) recomputed (see the module docstring)
                cols = kernel("im2col")(x, (kh, kw), ctx.stride, ctx.padding, batch_last)
                grad_w = weight_gradient(g, cols).reshape(weight.shape)
            if need_x:  # dL/dx = col2im(W_mat^T @ G); skipped for a first layer, whose input is data
                grad_cols = weight.reshape(weight.shape[0], -1).T @ g
                grad_x = kernel("col2im")(grad_cols, x.shape, (kh, kw), ctx.stride, ctx.padding, batch_last)
        if need_b:
            grad_b = grad.sum(axis=(0, 2, 3))
        return grad_x, grad_w, grad_b


class ConvTranspose2d(Function):
    """conv2d's input gradient as a forward, and conv2d's forward as its input gradient."""

    op_name = "conv_transpose2d"

    @staticmethod
    def forward(ctx, x, weight, bias=None, stride=1, padding=0, output_padding=0):
        op = "conv_transpose2d"
        _check_arrays(op, x, weight, bias, in_axis=0, out_axis=1, layout="(C_in, C_out, kH, kW)")
        stride, padding = _pair(stride, op, "stride", 1), _pair(padding, op, "padding", 0)
        output_padding = _pair(output_padding, op, "output_padding", 0)
        if output_padding[0] >= stride[0] or output_padding[1] >= stride[1]:
            raise ValueError(f"{op}: output_padding {output_padding} must be smaller than stride {stride}")
        n, c_in, h, w = x.shape
        _, c_out, kh, kw = weight.shape
        out = tuple(conv_transpose_output_size(x.shape[2 + a], (kh, kw)[a], stride[a], padding[a], output_padding[a]) for a in (0, 1))
        if min(out) <= 0:
            raise ValueError(f"{op}: output size would be {out} for input {h}x{w}, kernel {kh}x{kw}, "
                             f"stride {stride}, padding {padding}, output_padding {output_padding}")
        batch_last = kernel("conv_batch_last")(c_out * kh * kw, c_in)
        x_mat = kernel("conv_to_columns")(x, batch_last)  # X: (C_in, N H W)
        y = kernel("col2im")(weight.reshape(c_in, -1).T @ x_mat, (n, c_out) + out, (kh, kw), stride, padding, batch_last)
        if bias is not None:
            y += bias[:, None, None]
        ctx.save_for_backward(x, weight)
        ctx.stride, ctx.padding, ctx.batch_last = stride, padding, batch_last
        return y

    @staticmethod
    def backward(ctx, grad):
        x, weight = ctx.saved_arrays
        need_x, need_w, need_b = ctx.needs_input_grad
        n, c_in, h, w = x.shape
        (kh, kw), batch_last = weight.shape[2:], ctx.batch_last
        grad_x = grad_w = grad_b = None
        if need_x or need_w:  # output_padding only decided the size of grad, which is given
            cols = kernel("im2col")(grad, (kh, kw), ctx.stride, ctx.padding, batch_last)  # (C_out kH kW, N H W), shared
            if need_x:  # conv2d(grad, W) = W_mat @ im2col(grad)
                grad_x = kernel("conv_from_columns")(weight.reshape(c_in, -1) @ cols, None, (n, c_in, h, w), batch_last)
            if need_w:  # conv2d's weight gradient with input grad and output gradient x
                grad_w = weight_gradient(kernel("conv_to_columns")(x, batch_last), cols).reshape(weight.shape)
        if need_b:
            grad_b = grad.sum(axis=(0, 2, 3))
        return grad_x, grad_w, grad_b


def conv2d(x: Tensor, weight: Tensor, bias: Tensor = None, stride=1, padding=0) -> Tensor:
    """2-D convolution (cross-correlation) with zero padding.

    x: (N, C_in, H, W), weight: (C_out, C_in, kH, kW), bias: (C_out,) or None
    -> (N, C_out, (H + 2 pH - kH) // sH + 1, (W + 2 pW - kW) // sW + 1).
    stride, padding: int or (rows, columns).
    """
    return Conv2d.apply(x, weight, bias, stride=stride, padding=padding)


def conv_transpose2d(x: Tensor, weight: Tensor, bias: Tensor = None, stride=1, padding=0, output_padding=0) -> Tensor:
    """2-D transposed convolution: the adjoint of ``conv2d`` with the same weight (PyTorch semantics).

    x: (N, C_in, H, W), weight: (C_in, C_out, kH, kW), bias: (C_out,) or None
    -> (N, C_out, (H - 1) sH - 2 pH + kH + opH, (W - 1) sW - 2 pW + kW + opW).
    stride, padding, output_padding: int or (rows, columns); output_padding < stride.
    """
    return ConvTranspose2d.apply(x, weight, bias, stride=stride, padding=padding, output_padding=output_padding)


# ---- gradcheck cases (python -m scratchgen.gradcheck) ------------------------------------------
def _winograd_conv(x, w, b, padding):
    with use_conv_algorithm("winograd"):
        return conv2d(x, w, b, padding=padding)



register_case("conv2d")(lambda rng: (
    conv2d, [rng.standard_normal((2, 2, 5, 5)), rng.standard_normal((3, 2, 3, 3)), rng.standard_normal(3)]))
register_case("conv2d_stride2_pad1")(lambda rng: (
    lambda x, w, b: conv2d(x, w, b, stride=2, padding=1),
    [rng.standard_normal((2, 2, 6, 5)), rng.standard_normal((3, 2, 3, 3)), rng.standard_normal(3)]))
register_case("conv2d_nonsquare_nobias")(lambda rng: (
    lambda x, w: conv2d(x, w, stride=(2, 1), padding=(0, 1)),
    [rng.standard_normal((2, 3, 6, 4)), rng.standard_normal((2, 3, 2, 3))]))
register_case("conv2d_winograd")(lambda rng: (
    lambda x, w, b: _winograd_conv(x, w, b, 1),
    [rng.standard_normal((2, 3, 5, 6)), rng.standard_normal((4, 3, 3, 3)), rng.standard_normal(4)]))
register_case("conv2d_winograd_pad0_odd")(lambda rng: (
    lambda x, w, b: _winograd_conv(x, w, b, 0),
    [rng.standard_normal((2, 2, 7, 5)), rng.standard_normal((3, 2, 3, 3)), rng.standard_normal(3)]))
register_case("conv_transpose2d")(lambda rng: (
    conv_transpose2d, [rng.standard_normal((2, 3, 3, 3)), rng.standard_normal((3, 2, 3, 3)), rng.standard_normal(2)]))
register_case("conv_transpose2d_s2_p1_outpad1")(lambda rng: (
    lambda x, w, b: conv_transpose2d(x, w, b, stride=2, padding=1, output_padding=1),
    [rng.standard_normal((2, 3, 3, 3)), rng.standard_normal((3, 2, 4, 4)), rng.standard_normal(2)]))
register_case("conv_transpose2d_nonsquare_nobias")(lambda rng: (
    lambda x, w: conv_transpose2d(x, w, stride=(1, 2), padding=(1, 0), output_padding=(0, 1)),
    [rng.standard_normal((2, 2, 3, 4)), rng.standard_normal((2, 3, 3, 2))]))
