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

Where the time goes, and the choices made for it (batch 64, float32, 1 thread: the three
GEMMs are 55-70% of a layer's forward + backward; the rest is moving memory):

* Rows of ``cols`` are (c, i, j), so ``W.reshape`` is a GEMM factor with no copy, and every
  GEMM is one BLAS call on contiguous operands (``cols.T`` is a transposed *view*, which BLAS
  reads as it is).
* The columns are ordered (n, a, b) as above (*channel-major*) or (a, b, n) (*batch-last*),
  whichever moves memory faster for the layer. That memory-layout machinery, its choice rule
  and its measurements are in ``conv_layout.py``; ``im2col`` and ``col2im``, the kernels that
  other backends implement too, are the channel-major case.
* The weight gradient needs im2col(x) again: it is *recomputed* in the backward (one gather,
  5-10% of the layer's time) rather than kept from the forward, where it would hold kH kW
  times the memory of x (9x, 16x) per layer between the two passes.
"""
from __future__ import annotations

import numbers

from ..backend import kernel, register_kernel
from ..function import Function
from ..gradcheck import register_case
from ..tensor import Tensor
# The memory-layout helpers; the kernels below call them by these names (see conv_layout.py).
from .conv_layout import Pair, _batch_last_pays, _columns, _image, _matrix, _times_transpose, _unmatrix

__all__ = ["conv2d", "conv_transpose2d", "conv_output_size", "conv_transpose_output_size"]


def conv_output_size(size: int, kernel_size: int, stride: int, padding: int) -> int:
    """Output length of a convolution along one axis: (size + 2 padding - kernel) // stride + 1."""
    return (size + 2 * padding - kernel_size) // stride + 1


def conv_transpose_output_size(size: int, kernel_size: int, stride: int, padding: int, output_padding: int = 0) -> int:
    """Output length of a transposed convolution: (size - 1) stride - 2 padding + kernel + output_padding."""
    return (size - 1) * stride - 2 * padding + kernel_size + output_padding


# ---- NumPy reference kernels -----------------------------------------------------------------


@register_kernel("im2col")
def im2col(x, kernel_size: Pair, stride: Pair, padding: Pair):
    """Gather every receptive field of ``x`` into a column.

    x: (N, C, H, W) -> cols: (C kH kW, N OH OW), C-contiguous, dtype of x, with
        cols[(c kH + i) kW + j, (n OH + a) OW + b] = xpad[n, c, a sH + i, b sW + j]
    where xpad is x zero-padded by pH rows and pW columns on each side.
    (This is the channel-major layout; the conv kernels below may use the batch-last one.)
    """
    return _columns(x, kernel_size, stride, padding, batch_last=False)


@register_kernel("col2im")
def col2im(cols, x_shape, kernel_size: Pair, stride: Pair, padding: Pair):
    """The adjoint of ``im2col``: add every column back onto the pixels it was gathered from.

    cols: (C kH kW, N OH OW) -> x: x_shape = (N, C, H, W), C-contiguous, dtype of cols, with
        x[n, c, h, w] = sum of cols[(c kH + i) kW + j, (n OH + a) OW + b]
                        over all (i, j, a, b) with a sH + i = h + pH and b sW + j = w + pW.
    OH, OW are ``conv_output_size`` of H, W. Pixels no window covers (the bottom rows that a
    stride leaves out) get 0. <im2col(x), cols> == <x, col2im(cols)> for all x and cols.
    """
    (kh, kw), (sh, sw), (ph, pw) = kernel_size, stride, padding
    n, c, h, w = x_shape
    oh, ow = conv_output_size(h, kh, sh, ph), conv_output_size(w, kw, sw, pw)
    if cols.shape != (c * kh * kw, n * oh * ow):
        raise ValueError(f"col2im: cols has shape {cols.shape}, expected {(c * kh * kw, n * oh * ow)} for x_shape {tuple(x_shape)}")
    return _image(cols, x_shape, kernel_size, stride, padding, batch_last=False)


def _conv2d_input_grad(grad_mat, weight, x_shape, stride: Pair, padding: Pair, batch_last: bool):
    """conv2d's dL/dx = col2im(W_mat^T @ G). grad_mat: (C_out, N1 OH OW N2) -> (N, C_in, H, W).

    This is also the whole forward of ``conv_transpose2d``.
    """
    c_out, _, kh, kw = weight.shape
    grad_cols = weight.reshape(c_out, -1).T @ grad_mat  # (C_in kH kW, N1 OH OW N2)
    return _image(grad_cols, x_shape, (kh, kw), stride, padding, batch_last)


@register_kernel("conv2d_forward")
def conv2d_forward(x, weight, bias, stride: Pair, padding: Pair):
    """y = conv2d(x, W) + bias.

    x: (N, C_in, H, W), weight: (C_out, C_in, kH, kW), bias: (C_out,) or None
    -> y: (N, C_out, OH, OW), C-contiguous, OH = (H + 2 pH - kH) // sH + 1.
    Inputs are already validated by the op; any strides (non-contiguous views) are accepted.
    """
    n, c_in, h, w = x.shape
    c_out, _, kh, kw = weight.shape
    oh, ow = conv_output_size(h, kh, stride[0], padding[0]), conv_output_size(w, kw, stride[1], padding[1])
    batch_last = _batch_last_pays(c_in * kh * kw, c_out)
    cols = _columns(x, (kh, kw), stride, padding, batch_last)  # (C_in kH kW, N1 OH OW N2)
    y = weight.reshape(c_out, -1) @ cols  # (C_out, N1 OH OW N2): the one big GEMM
    if bias is not None:
        y += bias[:, None]
    return _unmatrix(y, n, oh, ow, batch_last)


@register_kernel("conv2d_backward")
def conv2d_backward(grad, x, weight, stride: Pair, padding: Pair,
                    needs_input_grad: bool = True, needs_weight_grad: bool = True, needs_bias_grad: bool = True):
    """Gradients of y = conv2d(x, W) + bias given grad = dL/dy.

    grad: (N, C_out, OH, OW), x: (N, C_in, H, W), weight: (C_out, C_in, kH, kW)
    -> (grad_x: (N, C_in, H, W) or None, grad_weight: weight.shape or None, grad_bias: (C_out,) or None);
    each is None when its ``needs_*`` flag is False, and its work is skipped (the input
    gradient of a first layer, whose input is data, costs nothing).
        grad_weight = G @ im2col(x)^T     grad_x = col2im(W_mat^T @ G)     grad_bias = sum_{n,a,b} grad
    with G = grad as (C_out, N1 OH OW N2).
    """
    c_out, c_in, kh, kw = weight.shape
    grad_x = grad_w = grad_b = None
    if needs_bias_grad:
        grad_b = grad.sum(axis=(0, 2, 3))
    if needs_weight_grad or needs_input_grad:
        batch_last = _batch_last_pays(c_in * kh * kw, c_out)
        g = _matrix(grad, batch_last)  # (C_out, N1 OH OW N2)
        if needs_weight_grad:
            cols = _columns(x, (kh, kw), stride, padding, batch_last)  # recomputed, see the top
            grad_w = _times_transpose(g, cols).reshape(weight.shape)
        if needs_input_grad:
            grad_x = _conv2d_input_grad(g, weight, x.shape, stride, padding, batch_last)
    return grad_x, grad_w, grad_b


@register_kernel("conv_transpose2d_forward")
def conv_transpose2d_forward(x, weight, bias, stride: Pair, padding: Pair, output_padding: Pair):
    """y = conv_transpose2d(x, W) + bias, which is conv2d's input gradient: col2im(W_mat^T @ X).

    x: (N, C_in, H, W), weight: (C_in, C_out, kH, kW), bias: (C_out,) or None
    -> y: (N, C_out, H_out, W_out), C-contiguous, H_out = (H - 1) sH - 2 pH + kH + opH.
    Equivalently: y = conv2d_backward(grad=x, x=<any (N, C_out, H_out, W_out) array>, weight)[0] + bias.
    """
    n, c_in, h, w = x.shape
    _, c_out, kh, kw = weight.shape
    h_out = conv_transpose_output_size(h, kh, stride[0], padding[0], output_padding[0])
    w_out = conv_transpose_output_size(w, kw, stride[1], padding[1], output_padding[1])
    batch_last = _batch_last_pays(c_out * kh * kw, c_in)
    y = _conv2d_input_grad(_matrix(x, batch_last), weight, (n, c_out, h_out, w_out), stride, padding, batch_last)
    if bias is not None:
        y += bias[:, None, None]
    return y


@register_kernel("conv_transpose2d_backward")
def conv_transpose2d_backward(grad, x, weight, stride: Pair, padding: Pair,
                              needs_input_grad: bool = True, needs_weight_grad: bool = True, needs_bias_grad: bool = True):
    """Gradients of y = conv_transpose2d(x, W) + bias given grad = dL/dy: conv2d run forwards.

    grad: (N, C_out, H_out, W_out), x: (N, C_in, H, W), weight: (C_in, C_out, kH, kW)
    -> (grad_x: (N, C_in, H, W) or None, grad_weight: weight.shape or None, grad_bias: (C_out,) or None).
        grad_x      = conv2d(grad, W)                         = W_mat @ im2col(grad)
        grad_weight = conv2d's weight gradient for input grad
                      and output gradient x                   = X @ im2col(grad)^T
        grad_bias   = sum_{n,h,w} grad
    with W_mat = W.reshape(C_in, C_out kH kW) and X = x as (C_in, N1 H W N2). output_padding is
    not needed: it only decides the size of grad, which is given.
    """
    n, c_in, h, w = x.shape
    _, c_out, kh, kw = weight.shape
    grad_x = grad_w = grad_b = None
    if needs_bias_grad:
        grad_b = grad.sum(axis=(0, 2, 3))
    if needs_input_grad or needs_weight_grad:
        batch_last = _batch_last_pays(c_out * kh * kw, c_in)
        cols = _columns(grad, (kh, kw), stride, padding, batch_last)  # (C_out kH kW, N1 H W N2), shared by both
        if needs_input_grad:
            grad_x = _unmatrix(weight.reshape(c_in, -1) @ cols, n, h, w, batch_last)
        if needs_weight_grad:
            grad_w = _times_transpose(_matrix(x, batch_last), cols).reshape(weight.shape)
    return grad_x, grad_w, grad_b


# ---- argument checking -----------------------------------------------------------------------
def _pair(value, op: str, name: str, minimum: int) -> Pair:
    """An int or a pair of ints -> (int, int), each >= minimum."""
    pair = (value, value) if isinstance(value, numbers.Integral) else tuple(value)
    if len(pair) != 2 or not all(isinstance(v, numbers.Integral) for v in pair):
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


# ---- ops -------------------------------------------------------------------------------------
class Conv2d(Function):
    op_name = "conv2d"

    @staticmethod
    def forward(ctx, x, weight, bias=None, stride=1, padding=0):
        op = "conv2d"
        _check_arrays(op, x, weight, bias, in_axis=1, out_axis=0, layout="(C_out, C_in, kH, kW)")
        stride, padding = _pair(stride, op, "stride", 1), _pair(padding, op, "padding", 0)
        kh, kw = weight.shape[2:]
        out = (conv_output_size(x.shape[2], kh, stride[0], padding[0]), conv_output_size(x.shape[3], kw, stride[1], padding[1]))
        if min(out) <= 0:
            raise ValueError(f"{op}: output size would be {out} for input {x.shape[2]}x{x.shape[3]}, kernel {kh}x{kw}, "
                             f"stride {stride}, padding {padding}; the padded input must be at least as large as the kernel")
        ctx.save_for_backward(x, weight)
        ctx.stride, ctx.padding = stride, padding
        return kernel("conv2d_forward")(x, weight, bias, stride, padding)

    @staticmethod
    def backward(ctx, grad):
        x, weight = ctx.saved_arrays
        needs = ctx.needs_input_grad
        return kernel("conv2d_backward")(grad, x, weight, ctx.stride, ctx.padding,
                                         needs_input_grad=needs[0], needs_weight_grad=needs[1], needs_bias_grad=needs[2])


class ConvTranspose2d(Function):
    op_name = "conv_transpose2d"

    @staticmethod
    def forward(ctx, x, weight, bias=None, stride=1, padding=0, output_padding=0):
        op = "conv_transpose2d"
        _check_arrays(op, x, weight, bias, in_axis=0, out_axis=1, layout="(C_in, C_out, kH, kW)")
        stride, padding = _pair(stride, op, "stride", 1), _pair(padding, op, "padding", 0)
        output_padding = _pair(output_padding, op, "output_padding", 0)
        if output_padding[0] >= stride[0] or output_padding[1] >= stride[1]:
            raise ValueError(f"{op}: output_padding {output_padding} must be smaller than stride {stride}")
        kh, kw = weight.shape[2:]
        out = tuple(conv_transpose_output_size(x.shape[2 + a], (kh, kw)[a], stride[a], padding[a], output_padding[a]) for a in (0, 1))
        if min(out) <= 0:
            raise ValueError(f"{op}: output size would be {out} for input {x.shape[2]}x{x.shape[3]}, kernel {kh}x{kw}, "
                             f"stride {stride}, padding {padding}, output_padding {output_padding}")
        ctx.save_for_backward(x, weight)
        ctx.stride, ctx.padding = stride, padding
        return kernel("conv_transpose2d_forward")(x, weight, bias, stride, padding, output_padding)

    @staticmethod
    def backward(ctx, grad):
        x, weight = ctx.saved_arrays
        needs = ctx.needs_input_grad
        return kernel("conv_transpose2d_backward")(grad, x, weight, ctx.stride, ctx.padding,
                                                   needs_input_grad=needs[0], needs_weight_grad=needs[1], needs_bias_grad=needs[2])


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
register_case("conv2d")(lambda rng: (
    conv2d, [rng.standard_normal((2, 2, 5, 5)), rng.standard_normal((3, 2, 3, 3)), rng.standard_normal(3)]))
register_case("conv2d_stride2_pad1")(lambda rng: (
    lambda x, w, b: conv2d(x, w, b, stride=2, padding=1),
    [rng.standard_normal((2, 2, 6, 5)), rng.standard_normal((3, 2, 3, 3)), rng.standard_normal(3)]))
register_case("conv2d_nonsquare_nobias")(lambda rng: (
    lambda x, w: conv2d(x, w, stride=(2, 1), padding=(0, 1)),
    [rng.standard_normal((2, 3, 6, 4)), rng.standard_normal((2, 3, 2, 3))]))
register_case("conv_transpose2d")(lambda rng: (
    conv_transpose2d, [rng.standard_normal((2, 3, 3, 3)), rng.standard_normal((3, 2, 3, 3)), rng.standard_normal(2)]))
register_case("conv_transpose2d_s2_p1_outpad1")(lambda rng: (
    lambda x, w, b: conv_transpose2d(x, w, b, stride=2, padding=1, output_padding=1),
    [rng.standard_normal((2, 3, 3, 3)), rng.standard_normal((3, 2, 4, 4)), rng.standard_normal(2)]))
register_case("conv_transpose2d_nonsquare_nobias")(lambda rng: (
    lambda x, w: conv_transpose2d(x, w, stride=(1, 2), padding=(1, 0), output_padding=(0, 1)),
    [rng.standard_normal((2, 2, 3, 4)), rng.standard_normal((2, 3, 3, 2))]))
