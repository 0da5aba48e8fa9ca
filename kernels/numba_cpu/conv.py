"""The memory movements of im2col + GEMM convolutions, compiled: im2col, col2im and the layout changes.

The convolutions themselves (which GEMM meets which movement, for conv2d and conv_transpose2d,
forward and backward) are written once, in scratchgen/ops/conv.py; they call these kernels by
name on the numba backend.

The GEMMs stay with BLAS (NumPy's ``@``: the same calls as the reference, so the same
numbers). What Numba replaces is the memory shuffling around them, which NumPy does with
several full copies:

* both use one small gather table per geometry (``window_offsets``): for kernel tap (i, j) and
  output position (a, b), the flat index in the image plane of the pixel it reads, or -1
  for padding. Then a row of the columns is a plain indexed copy, ``OH OW`` long.
* ``im2col``: the reference pads x into a new array, then lets ``reshape`` copy a strided
  window view; here each row (c, i, j) of the columns is written once, straight from x
  (no padded copy).
* ``col2im``: the reference adds kH kW strided slices into a padded (C, N, H, W) buffer,
  then copies it transposed; here every (n, c) image plane is accumulated directly in its
  final place (planes are independent, so threads never write the same pixel). Each pixel
  receives its contributions in the reference's (i, j) order, so the sums are identical.
* ``(N, C, H, W) <-> (C, N H W)`` transposes (with the bias added on the way) are one pass.

The reference switches some layers to a batch-last column order so that NumPy's copies move
longer runs (``conv_layout.py``); compiled loops pay nothing per run, so ``conv_batch_last`` is
False here and the channel-major order serves every layer.

Shapes (see scratchgen/ops/conv.py): x (N, C, H, W), cols (C kH kW, N OH OW),
conv2d weight (C_out, C_in, kH, kW), conv_transpose2d weight (C_in, C_out, kH, kW).
"""
from __future__ import annotations

import functools

import numpy as np
from numba import prange

from scratchgen.backend import register_kernel
from scratchgen.ops import conv as reference
from scratchgen.ops.conv import conv_output_size

from ._jit import host_float_arrays, jit


@functools.lru_cache(maxsize=64)
def window_offsets(kernel_size, stride, padding, in_size, out_size):
    """The gather table of im2col: offsets[i kW + j, a OW + b] = h W + w, the flat index in an
    (H, W) image plane of the pixel that output position (a, b) of kernel tap (i, j) reads,
    h = a sH + i - pH, w = b sW + j - pW; or -1 where that pixel is padding.

    Shape (kH kW, OH OW); computed once per geometry (cached) with NumPy broadcasting.
    """
    (kh, kw), (sh, sw), (ph, pw), (height, width), (oh, ow) = kernel_size, stride, padding, in_size, out_size
    i, j = np.arange(kh)[:, None, None, None], np.arange(kw)[None, :, None, None]
    a, b = np.arange(oh)[None, None, :, None], np.arange(ow)[None, None, None, :]
    h, w = a * sh + i - ph, b * sw + j - pw
    inside = (h >= 0) & (h < height) & (w >= 0) & (w < width)
    offsets = np.where(inside, h * width + w, -1).reshape(kh * kw, oh * ow)
    offsets.flags.writeable = False
    return offsets


@jit
def _im2col(x, offsets, cols):
    """cols[(c, tap), (n, t)] = x[n, c, offsets[tap, t]] (0 where the offset is -1). x: (N, C, H W)."""
    n_images, channels, _ = x.shape
    taps, positions = offsets.shape
    for row in prange(channels * taps):
        c, tap = row // taps, row % taps
        for n in range(n_images):
            base = n * positions
            for t in range(positions):
                o = offsets[tap, t]
                cols[row, base + t] = x[n, c, o] if o >= 0 else 0.0


@jit
def _col2im(cols, offsets, x):
    """x[n, c, offsets[tap, t]] += cols[(c, tap), (n, t)], taps in order. x: (N, C, H W), written whole."""
    n_images, channels, _ = x.shape
    taps, positions = offsets.shape
    # Planes in (c, n) order: consecutive planes then read consecutive stretches of the same
    # kH kW rows of cols (streaming), rather than jumping between rows.
    for plane in prange(channels * n_images):
        c, n = plane // n_images, plane % n_images
        x[n, c, :] = 0.0
        base = n * positions
        for tap in range(taps):
            row = c * taps + tap
            for t in range(positions):
                o = offsets[tap, t]
                if o >= 0:  # within one tap the offsets are distinct: no two t write one pixel
                    x[n, c, o] += cols[row, base + t]


@jit
def _channels_first(y, out):
    """y (N, C, P) -> out (C, N P): each image plane is one contiguous run in both."""
    n_images, channels, plane = y.shape
    for c in prange(channels):
        for n in range(n_images):
            start = n * plane
            for p in range(plane):
                out[c, start + p] = y[n, c, p]


@jit
def _batch_first(y_mat, bias, has_bias, out):
    """y_mat (C, N P) -> out (N, C, P), plus bias[c] when has_bias."""
    n_images, channels, plane = out.shape
    for nc in prange(n_images * channels):
        n, c = nc // channels, nc % channels
        start = n * plane
        offset = bias[c] if has_bias else y_mat.dtype.type(0)
        for p in range(plane):
            out[n, c, p] = y_mat[c, start + p] + offset


def _geometry(x_shape, kernel_size, stride, padding):
    (kh, kw), (sh, sw), (ph, pw) = (tuple(int(v) for v in pair) for pair in (kernel_size, stride, padding))
    n, c, h, w = x_shape
    oh, ow = conv_output_size(h, kh, sh, ph), conv_output_size(w, kw, sw, pw)
    return window_offsets((kh, kw), (sh, sw), (ph, pw), (h, w), (oh, ow)), n * oh * ow


# ---- registered kernels (names and signatures of scratchgen/ops/conv.py) -----------------------
@register_kernel("im2col", backend="numba")
def im2col(x, kernel_size, stride, padding, batch_last=False):
    if batch_last or not host_float_arrays(x):
        return reference.im2col(x, kernel_size, stride, padding, batch_last)
    n, c, h, w = x.shape
    offsets, n_cols = _geometry(x.shape, kernel_size, stride, padding)
    cols = np.empty((c * offsets.shape[0], n_cols), dtype=x.dtype)
    _im2col(np.ascontiguousarray(x).reshape(n, c, h * w), offsets, cols)
    return cols


@register_kernel("col2im", backend="numba")
def col2im(cols, x_shape, kernel_size, stride, padding, batch_last=False):
    if batch_last or not host_float_arrays(cols):
        return reference.col2im(cols, x_shape, kernel_size, stride, padding, batch_last)
    n, c, h, w = x_shape
    reference.col2im_output_grid(cols, x_shape, kernel_size, stride, padding)
    offsets, _ = _geometry(x_shape, kernel_size, stride, padding)
    x = np.empty((n, c, h * w), dtype=cols.dtype)
    _col2im(np.ascontiguousarray(cols), offsets, x)
    return x.reshape(n, c, h, w)


@register_kernel("conv_to_columns", backend="numba")
def conv_to_columns(y, batch_last=False):
    if batch_last or not host_float_arrays(y):
        return reference.conv_to_columns(y, batch_last)
    n, c, h, w = y.shape
    out = np.empty((c, n * h * w), dtype=y.dtype)
    _channels_first(np.ascontiguousarray(y).reshape(n, c, h * w), out)
    return out


@register_kernel("conv_from_columns", backend="numba")
def conv_from_columns(y_mat, bias, shape, batch_last=False):
    if batch_last or not host_float_arrays(y_mat, *(() if bias is None else (bias,))):
        return reference.conv_from_columns(y_mat, bias, shape, batch_last)
    n, c, h, w = shape
    out = np.empty((n, c, h * w), dtype=y_mat.dtype)
    has_bias = bias is not None
    _batch_first(np.ascontiguousarray(y_mat), bias if has_bias else np.empty(0, y_mat.dtype), has_bias, out)
    return out.reshape(n, c, h, w)


@register_kernel("conv_batch_last", backend="numba")
def conv_batch_last(window_rows, other_rows):
    """Compiled copies pay nothing per run: the channel-major column order for every layer."""
    return False
