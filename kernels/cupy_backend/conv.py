"""im2col / col2im as CuPy kernels (gathers, one thread per output element); GEMMs on cuBLAS.

Both are ``ElementwiseKernel``s over their *output*, reading the input as a ``raw`` array
(indexed by hand): ``i`` is the output element's flat index.

* im2col: output cols[row, col], row = (c, i, j), col = (n, a, b); it copies
  x[n, c, a sH + i - pH, b sW + j - pW], or 0 in the padding.
* col2im: output x[n, c, h, w]; it sums the column entries that were copied from it, in the
  reference's (i, j) order (no atomics: deterministic).

The conv ops themselves are written once in ``scratchgen/ops/conv.py``; they call
``kernel("im2col")``/``kernel("col2im")``, which resolve to these on the cupy backend, and the
reference layout changes (CuPy transposes). The channel-major column order serves every layer.
"""
from __future__ import annotations

import cupy

from scratchgen.backend import register_kernel
from scratchgen.ops import conv as reference
from scratchgen.ops.conv import conv_output_size

from ._elementwise import Kernel, cupy_float_arrays

_GEOMETRY = "int64 n_, int64 c_, int64 h_, int64 w_, int64 kh, int64 kw, int64 sh, int64 sw, int64 ph, int64 pw, int64 oh, int64 ow"

_im2col = Kernel(
    "raw T x, " + _GEOMETRY, "T col",
    """
    long long n_cols = n_ * oh * ow;
    long long row = i / n_cols, k = i % n_cols;
    long long c = row / (kh * kw), ki = (row / kw) % kh, kj = row % kw;
    long long n = k / (oh * ow), a = (k / ow) % oh, b = k % ow;
    long long h = a * sh + ki - ph, w = b * sw + kj - pw;
    col = (h >= 0 && h < h_ && w >= 0 && w < w_) ? x[((n * c_ + c) * h_ + h) * w_ + w] : (T)0;
    """,
    "sg_im2col")

_col2im = Kernel(
    "raw T cols, " + _GEOMETRY, "T x",
    """
    long long w = i % w_, h = (i / w_) % h_, c = (i / (w_ * h_)) % c_, n = i / (w_ * h_ * c_);
    long long n_cols = n_ * oh * ow;
    T total = 0;
    for (long long ki = 0; ki < kh; ++ki) {
        long long da = h + ph - ki;
        if (da < 0 || da % sh != 0 || da / sh >= oh) continue;
        for (long long kj = 0; kj < kw; ++kj) {
            long long db = w + pw - kj;
            if (db < 0 || db % sw != 0 || db / sw >= ow) continue;
            total += cols[((c * kh + ki) * kw + kj) * n_cols + (n * oh + da / sh) * ow + db / sw];
        }
    }
    x = total;
    """,
    "sg_col2im")


@register_kernel("im2col", backend="cupy")
def im2col(x, kernel_size, stride, padding, batch_last=False):
    if batch_last or not cupy_float_arrays(x):
        return reference.im2col(x, kernel_size, stride, padding, batch_last)
    (kh, kw), (sh, sw), (ph, pw) = kernel_size, stride, padding
    n, c, h, w = x.shape
    oh, ow = conv_output_size(h, kh, sh, ph), conv_output_size(w, kw, sw, pw)
    cols = cupy.empty((c * kh * kw, n * oh * ow), dtype=x.dtype)
    return _im2col(cupy.ascontiguousarray(x), n, c, h, w, kh, kw, sh, sw, ph, pw, oh, ow, cols)


@register_kernel("col2im", backend="cupy")
def col2im(cols, x_shape, kernel_size, stride, padding, batch_last=False):
    if batch_last or not cupy_float_arrays(cols):
        return reference.col2im(cols, x_shape, kernel_size, stride, padding, batch_last)
    (kh, kw), (sh, sw), (ph, pw) = kernel_size, stride, padding
    n, c, h, w = x_shape
    oh, ow = reference.col2im_output_grid(cols, x_shape, kernel_size, stride, padding)
    x = cupy.empty((n, c, h, w), dtype=cols.dtype)
    return _col2im(cupy.ascontiguousarray(cols), n, c, h, w, kh, kw, sh, sw, ph, pw, oh, ow, x)


@register_kernel("conv_batch_last", backend="cupy")
def conv_batch_last(window_rows, other_rows):
    """The kernels index freely: the channel-major column order for every layer."""
    return False
