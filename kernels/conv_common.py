"""Convolutions as im2col + GEMM, composed once for every backend that compiles the data movement.

The Numba CPU and Numba CUDA backends differ only in *how* they move memory around the GEMMs
(compiled loops vs CUDA kernels) and in which arrays they accept (host vs device). The algebra
that strings those moves together is the same, so it lives here, written once; each backend
builds a ``GemmConvolutions`` from its own primitives and registers its methods.

Shapes (see scratchgen/ops/conv.py): x (N, C, H, W), cols (C kH kW, N OH OW),
conv2d weight (C_out, C_in, kH, kW), conv_transpose2d weight (C_in, C_out, kH, kW),
G = grad as the (C_out, N OH OW) matrix ("channels first").

    conv2d            y       = batch_first(W_mat @ im2col(x)) + bias
                      dL/dW   = G @ im2col(x)^T
                      dL/dx   = col2im(W_mat^T @ G)
                      dL/db   = sum_{n,a,b} grad
    conv_transpose2d  y       = col2im(W_mat^T @ channels_first(x)) + bias   (conv2d's dL/dx)
                      dL/dx   = batch_first(W_mat @ im2col(grad))           (conv2d's forward)
                      dL/dW   = channels_first(x) @ im2col(grad)^T
                      dL/db   = sum_{n,a,b} grad

The primitives a backend supplies (all on that backend's arrays):

    accepts(*arrays) -> bool                      can this backend run on these arrays? (None ignored)
    im2col(x, kernel_size, stride, padding)       -> cols (C kH kW, N OH OW)
    col2im(cols, x_shape, kernel_size, stride, padding) -> x (N, C, H, W)
    channels_first(y)                             (N, C, H, W) -> (C, N H W)
    batch_first(y_mat, bias, n, h, w)             (C, N H W) -> (N, C, H, W), + bias[c] unless None
    times_transpose(a, b)                         a @ b.T (a backend may pick the faster GEMM order)

Arrays a backend does not accept go to the NumPy/CuPy reference in scratchgen/ops/conv.py.
"""
from __future__ import annotations

from typing import Callable

from scratchgen.backend import register_kernel
from scratchgen.ops import conv as reference
from scratchgen.ops.conv import conv_output_size, conv_transpose_output_size


class GemmConvolutions:
    """The six conv kernels (names and signatures of scratchgen/ops/conv.py) over one backend's primitives."""

    KERNELS = ("im2col", "col2im", "conv2d_forward", "conv2d_backward",
               "conv_transpose2d_forward", "conv_transpose2d_backward")

    def __init__(self, *, accepts: Callable, im2col: Callable, col2im: Callable,
                 channels_first: Callable, batch_first: Callable, times_transpose: Callable):
        self._accepts = accepts
        self._im2col = im2col
        self._col2im = col2im
        self._channels_first = channels_first
        self._batch_first = batch_first
        self._times_transpose = times_transpose

    def register(self, backend: str) -> None:
        """Register every kernel in ``KERNELS`` as the ``backend`` implementation."""
        for name in self.KERNELS:
            register_kernel(name, backend=backend)(getattr(self, name))

    def accepts(self, *arrays) -> bool:
        return self._accepts(*(a for a in arrays if a is not None))

    # ---- the layout kernels themselves --------------------------------------------------------
    def im2col(self, x, kernel_size, stride, padding):
        if not self.accepts(x):
            return reference.im2col(x, kernel_size, stride, padding)
        return self._im2col(x, kernel_size, stride, padding)

    def col2im(self, cols, x_shape, kernel_size, stride, padding):
        if not self.accepts(cols):
            return reference.col2im(cols, x_shape, kernel_size, stride, padding)
        return self._col2im(cols, x_shape, kernel_size, stride, padding)

    # ---- conv2d --------------------------------------------------------------------------------
    def _input_grad(self, grad_mat, weight, x_shape, stride, padding):
        """conv2d's dL/dx = col2im(W_mat^T @ G), G: (C_out, N OH OW); also conv_transpose2d's output."""
        c_out, _, kh, kw = weight.shape
        return self._col2im(weight.reshape(c_out, -1).T @ grad_mat, x_shape, (kh, kw), stride, padding)

    def conv2d_forward(self, x, weight, bias, stride, padding):
        if not self.accepts(x, weight, bias):
            return reference.conv2d_forward(x, weight, bias, stride, padding)
        n, _, h, w = x.shape
        c_out, _, kh, kw = weight.shape
        oh, ow = conv_output_size(h, kh, stride[0], padding[0]), conv_output_size(w, kw, stride[1], padding[1])
        cols = self._im2col(x, (kh, kw), stride, padding)
        return self._batch_first(weight.reshape(c_out, -1) @ cols, bias, n, oh, ow)

    def conv2d_backward(self, grad, x, weight, stride, padding,
                        needs_input_grad=True, needs_weight_grad=True, needs_bias_grad=True):
        if not self.accepts(grad, x, weight):
            return reference.conv2d_backward(grad, x, weight, stride, padding,
                                             needs_input_grad, needs_weight_grad, needs_bias_grad)
        grad_x = grad_w = grad_b = None
        if needs_bias_grad:
            grad_b = grad.sum(axis=(0, 2, 3))
        if needs_weight_grad or needs_input_grad:
            g = self._channels_first(grad)  # (C_out, N OH OW)
            if needs_weight_grad:
                cols = self._im2col(x, weight.shape[2:], stride, padding)
                grad_w = self._times_transpose(g, cols).reshape(weight.shape)
            if needs_input_grad:
                grad_x = self._input_grad(g, weight, x.shape, stride, padding)
        return grad_x, grad_w, grad_b

    # ---- conv_transpose2d: conv2d's backward and forward, swapped -----------------------------
    def conv_transpose2d_forward(self, x, weight, bias, stride, padding, output_padding):
        if not self.accepts(x, weight, bias):
            return reference.conv_transpose2d_forward(x, weight, bias, stride, padding, output_padding)
        n, _, h, w = x.shape
        _, c_out, kh, kw = weight.shape
        h_out = conv_transpose_output_size(h, kh, stride[0], padding[0], output_padding[0])
        w_out = conv_transpose_output_size(w, kw, stride[1], padding[1], output_padding[1])
        y = self._input_grad(self._channels_first(x), weight, (n, c_out, h_out, w_out), stride, padding)
        if bias is not None:
            y += bias[:, None, None]
        return y

    def conv_transpose2d_backward(self, grad, x, weight, stride, padding,
                                  needs_input_grad=True, needs_weight_grad=True, needs_bias_grad=True):
        if not self.accepts(grad, x, weight):
            return reference.conv_transpose2d_backward(grad, x, weight, stride, padding,
                                                       needs_input_grad, needs_weight_grad, needs_bias_grad)
        n, c_in, h, w = x.shape
        kh, kw = weight.shape[2:]
        grad_x = grad_w = grad_b = None
        if needs_bias_grad:
            grad_b = grad.sum(axis=(0, 2, 3))
        if needs_input_grad or needs_weight_grad:
            cols = self._im2col(grad, (kh, kw), stride, padding)
            if needs_input_grad:
                grad_x = self._batch_first(weight.reshape(c_in, -1) @ cols, None, n, h, w)
            if needs_weight_grad:
                grad_w = self._times_transpose(self._channels_first(x), cols).reshape(weight.shape)
        return grad_x, grad_w, grad_b
