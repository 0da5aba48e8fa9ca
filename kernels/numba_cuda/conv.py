"""Convolutions on the GPU: im2col / col2im kernels around cuBLAS GEMMs.

* ``im2col``: one thread per element of the column matrix cols (C kH kW, N OH OW); it reads
  the one input pixel it copies (or writes the padding 0). Neighbouring threads write
  neighbouring columns, so the writes coalesce.
* ``col2im``: one thread per *input* pixel, which gathers the (at most kH kW) column entries
  that came from it: no two threads write the same pixel, so no atomics, and the sum runs in
  the reference's (i, j) order, so it is reproducible run to run (an atomicAdd scatter is not).
  Pixel (h, w) received cols[(c, i, j), (n, a, b)] when a sH + i = h + pH, i.e. for each i
  with (h + pH - i) divisible by sH and a = (h + pH - i) / sH inside [0, OH).
* ``(N, C, H, W) <-> (C, N H W)`` layout changes (bias added on the way) are one kernel each.

The GEMMs are CuPy's ``@`` (cuBLAS). In the simulator the same code runs on host arrays.
The convolutions themselves (which GEMM meets which movement) are written once, in
scratchgen/ops/conv.py; they call these kernels by name on the numba-cuda backend. The
channel-major column order serves every layer (``conv_batch_last`` is False).
"""
from __future__ import annotations

from numba import cuda

from scratchgen.backend import get_array_module, register_kernel
from scratchgen.ops import conv as reference
from scratchgen.ops.conv import conv_output_size

from ._launch import device_float_arrays, launch


@cuda.jit
def _im2col(x, kh, kw, sh, sw, ph, pw, oh, ow, cols):
    n_images, channels, height, width = x.shape
    n_cols = n_images * oh * ow
    for index in range(cuda.grid(1), cols.shape[0] * n_cols, cuda.gridsize(1)):
        row, col = index // n_cols, index % n_cols
        c, i, j = row // (kh * kw), (row // kw) % kh, row % kw
        n, a, b = col // (oh * ow), (col // ow) % oh, col % ow
        h, w = a * sh + i - ph, b * sw + j - pw
        if 0 <= h < height and 0 <= w < width:
            cols[row, col] = x[n, c, h, w]
        else:
            cols[row, col] = 0.0


@cuda.jit
def _col2im(cols, kh, kw, sh, sw, ph, pw, oh, ow, x):
    n_images, channels, height, width = x.shape
    for index in range(cuda.grid(1), x.size, cuda.gridsize(1)):
        n, c = index // (channels * height * width), (index // (height * width)) % channels
        h, w = (index // width) % height, index % width
        total = 0.0
        for i in range(kh):
            da = h + ph - i
            if da < 0 or da % sh != 0 or da // sh >= oh:
                continue
            a = da // sh
            for j in range(kw):
                db = w + pw - j
                if db < 0 or db % sw != 0 or db // sw >= ow:
                    continue
                total += cols[(c * kh + i) * kw + j, (n * oh + a) * ow + db // sw]
        x[n, c, h, w] = total


@cuda.jit
def _channels_first(y, out):
    """y (N, C, H, W) -> out (C, N H W)."""
    n_images, channels, height, width = y.shape
    plane = height * width
    for index in range(cuda.grid(1), out.size, cuda.gridsize(1)):
        c, rest = index // (n_images * plane), index % (n_images * plane)
        n, p = rest // plane, rest % plane
        out[c, rest] = y[n, c, p // width, p % width]


@cuda.jit
def _batch_first(y_mat, bias, has_bias, out):
    """y_mat (C, N H W) -> out (N, C, H, W) (+ bias[c])."""
    n_images, channels, height, width = out.shape
    plane = height * width
    for index in range(cuda.grid(1), out.size, cuda.gridsize(1)):
        n, c, p = index // (channels * plane), (index // plane) % channels, index % plane
        value = y_mat[c, n * plane + p]
        if has_bias:
            value += bias[c]
        out[n, c, p // width, p % width] = value


# ---- registered kernels (names and signatures of scratchgen/ops/conv.py) -----------------------
@register_kernel("im2col", backend="numba-cuda")
def im2col(x, kernel_size, stride, padding, batch_last=False):
    if batch_last or not device_float_arrays(x):
        return reference.im2col(x, kernel_size, stride, padding, batch_last)
    xp = get_array_module(x)
    (kh, kw), (sh, sw), (ph, pw) = kernel_size, stride, padding
    n, c, h, w = x.shape
    oh, ow = conv_output_size(h, kh, sh, ph), conv_output_size(w, kw, sw, pw)
    cols = xp.empty((c * kh * kw, n * oh * ow), dtype=x.dtype)
    if cols.size:
        launch(_im2col, cols.size)(xp.ascontiguousarray(x), kh, kw, sh, sw, ph, pw, oh, ow, cols)
    return cols


@register_kernel("col2im", backend="numba-cuda")
def col2im(cols, x_shape, kernel_size, stride, padding, batch_last=False):
    if batch_last or not device_float_arrays(cols):
        return reference.col2im(cols, x_shape, kernel_size, stride, padding, batch_last)
    xp = get_array_module(cols)
    (kh, kw), (sh, sw), (ph, pw) = kernel_size, stride, padding
    n, c, h, w = x_shape
    oh, ow = reference.col2im_output_grid(cols, x_shape, kernel_size, stride, padding)
    x = xp.empty((n, c, h, w), dtype=cols.dtype)
    if x.size:
        launch(_col2im, x.size)(xp.ascontiguousarray(cols), kh, kw, sh, sw, ph, pw, oh, ow, x)
    return x


@register_kernel("conv_to_columns", backend="numba-cuda")
def conv_to_columns(y, batch_last=False):
    if batch_last or not device_float_arrays(y):
        return reference.conv_to_columns(y, batch_last)
    xp = get_array_module(y)
    n, c, h, w = y.shape
    out = xp.empty((c, n * h * w), dtype=y.dtype)
    if out.size:
        launch(_channels_first, out.size)(xp.ascontiguousarray(y), out)
    return out


@register_kernel("conv_from_columns", backend="numba-cuda")
def conv_from_columns(y_mat, bias, shape, batch_last=False):
    if batch_last or not device_float_arrays(y_mat, *(() if bias is None else (bias,))):
        return reference.conv_from_columns(y_mat, bias, shape, batch_last)
    xp = get_array_module(y_mat)
    out = xp.empty(shape, dtype=y_mat.dtype)
    has_bias = bias is not None
    if out.size:
        launch(_batch_first, out.size)(xp.ascontiguousarray(y_mat), bias if has_bias else xp.empty(0, y_mat.dtype),
                                       has_bias, out)
    return out


@register_kernel("conv_batch_last", backend="numba-cuda")
def conv_batch_last(window_rows, other_rows):
    """The kernels index freely: the channel-major column order for every layer."""
    return False
