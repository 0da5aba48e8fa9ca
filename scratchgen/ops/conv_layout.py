"""The batch-last column order of conv.py's GEMMs: a NumPy memory-layout optimisation.

conv.py writes every convolution as im2col + one GEMM (+ col2im). With batch 64, float32 and
one thread, the GEMMs are 55-70% of a layer's forward + backward; the rest is copying images
into column matrices and back, and NumPy pays per contiguous run it copies. conv.py's
reference kernels order the GEMM columns (n, a, b) ("channel-major"); for some layers the
order (a, b, n) ("batch-last") gives NumPy longer runs. The products are the same numbers in
another column order, so the choice is invisible to the algebra: this file holds it, so
conv.py can read as im2col + GEMM.

Batch-last, an image batch is held as (C, H, W, N) (channel-major: (C, N, H, W)), and a GEMM
operand is its reshape (C, H W N). The layout only decides where NumPy finds long contiguous
runs. A window gather or scatter moves one strided slice per kernel offset:

  channel-major: a slice is contiguous for one image row only (OW = 7 to 28 numbers, every
                 s-th one), but NCHW <-> (C, N, H W) swaps whole H x W blocks (cheap);
  batch-last:    a slice moves runs of N numbers (N OW for stride 1), but NCHW <-> (C, H W, N)
                 moves numbers one at a time.

For 64 channels, 14x14, k4 s2 p1 batch-last makes the gather 1.5x and the scatter 2.5x
faster, layout changes included. ``batch_last_pays`` picks per layer (measurements there); it
is the NumPy backend's ``conv_batch_last`` kernel. Compiled backends (Numba, CUDA) pay nothing
per run and always use the channel-major order.

Not done, measured against the above:

* A sub-pixel split of the stride-2 transposed convolution into s^2 stride-1 convolutions
  (no scatter-add). It gathers the *input* kH kW times, and in DCGAN's generator the input
  has twice the channels of the output, so it moves more memory than the scatter it removes
  (measured, 128 -> 64 channels 7x7 -> 14x14 forward: 29 ms against 21 ms).
* A "wide" im2col whose junk columns would make every copy and add one contiguous block: it
  makes the GEMMs 14-31% larger.

Every function takes the pair-valued hyper-parameters already normalised: kernel_size (kH, kW),
stride (sH, sW), padding (pH, pW), all Python ints.
"""
from __future__ import annotations

from typing import Tuple

from ..backend import get_array_module

__all__ = ["batch_last_pays", "im2col_batch_last", "col2im_batch_last", "to_columns_batch_last",
           "from_columns_batch_last"]  # used by conv.py's kernels; not re-exported by scratchgen.ops

Pair = Tuple[int, int]

def batch_last_pays(window_rows: int, other_rows: int) -> bool:
    """Batch-last or channel-major for a layer whose column matrix has ``window_rows`` rows.

    window_rows = C kH kW of the image the windows slide over; other_rows = the channels on the
    other side of the GEMM. Batch-last speeds up the window copies, which grow with the first,
    and slows down the NCHW conversions, which grow with the channels on both sides. For the 17
    layer shapes measured (this project's models, batch 64) comparing the two counts picks the
    faster layout or, where the counts are close, one within 5% of it. Fwd + bwd ms, 1 thread,
    channel-major vs batch-last:
        conv  64->128 14x14 k4 s2 (1024 vs 128 rows)   73 vs 61   -> batch-last
        convT 128->64  7x7  k4 s2 (1024 vs 128)        54 vs 46   -> batch-last
        conv  32->64  14x14 k3 s1  (288 vs 64)         47 vs 44   -> batch-last
        conv   2->64  28x28 k3 s1   (18 vs 64)         24 vs 29   -> channel-major
        convT 64->1   14x14 k4 s2   (16 vs 64)        5.7 vs 6.3  -> channel-major
    """
    return window_rows > other_rows


# _to_nchw copies batch-last images in blocks of this many bytes (see there).
_TRANSPOSE_BLOCK_BYTES = 1 << 16


def _to_batch_last(x, padding: Pair = (0, 0)):
    """(N, C, H, W), any strides -> (C, H + 2 pH, W + 2 pW, N), zero-padded, C-contiguous."""
    xp = get_array_module(x)
    n, c, h, w = x.shape
    ph, pw = padding
    shape = (c, h + 2 * ph, w + 2 * pw, n)
    out = xp.zeros(shape, dtype=x.dtype) if ph or pw else xp.empty(shape, dtype=x.dtype)
    out[:, ph : ph + h, pw : pw + w] = x.transpose(1, 2, 3, 0)
    return out


def _to_nchw(image):
    """(C, H, W, N), any strides -> (N, C, H, W), C-contiguous.

    This reads with a stride of N numbers, and with a power-of-two N those reads land on few
    cache sets, so a whole-array copy keeps evicting lines it is about to reuse: copied a few
    channels at a time instead (measured 5.1 -> 0.5 ms for (64, 64, 14, 14)).
    """
    xp = get_array_module(image)
    c, h, w, n = image.shape
    out = xp.empty((n, c, h, w), dtype=image.dtype)
    step = max(1, _TRANSPOSE_BLOCK_BYTES // max(1, h * w * n * image.itemsize))  # (an empty batch: any step)
    for c0 in range(0, c, step):
        out[:, c0 : c0 + step] = image[c0 : c0 + step].transpose(3, 0, 1, 2)
    return out


def im2col_batch_last(x, kernel_size: Pair, stride: Pair, padding: Pair):
    """conv.im2col with columns ordered (a, b, n): (N, C, H, W) -> (C kH kW, OH OW N), in one copy
    after the layout change: cols[(c kH + i) kW + j, (a OW + b) N + n] = xpad[c, a sH + i, b sW + j, n]."""
    xp = get_array_module(x)
    (kh, kw), (sh, sw) = kernel_size, stride
    xpad = _to_batch_last(x, padding)
    c, hp, wp, n = xpad.shape
    oh, ow = (hp - kh) // sh + 1, (wp - kw) // sw + 1
    windows = xp.lib.stride_tricks.sliding_window_view(xpad, (kh, kw), axis=(1, 2))
    windows = windows[:, : (oh - 1) * sh + 1 : sh, : (ow - 1) * sw + 1 : sw]  # (C, OH, OW, N, kH, kW)
    return windows.transpose(0, 4, 5, 1, 2, 3).reshape(c * kh * kw, oh * ow * n)


def col2im_batch_last(cols, x_shape, kernel_size: Pair, stride: Pair, padding: Pair):
    """conv.col2im of columns ordered (a, b, n): (C kH kW, OH OW N) -> x_shape = (N, C, H, W)."""
    xp = get_array_module(cols)
    (kh, kw), (sh, sw), (ph, pw) = kernel_size, stride, padding
    n, c, h, w = x_shape
    hp, wp = h + 2 * ph, w + 2 * pw
    oh, ow = (hp - kh) // sh + 1, (wp - kw) // sw + 1
    cols = cols.reshape(c, kh, kw, oh, ow, n)
    xpad = xp.zeros((c, hp, wp, n), dtype=cols.dtype)
    for i in range(kh):  # one whole-array add per kernel tap: each moves runs of N (N OW for stride 1)
        for j in range(kw):
            xpad[:, i : i + sh * oh : sh, j : j + sw * ow : sw] += cols[:, i, j]
    return _to_nchw(xpad[:, ph : ph + h, pw : pw + w])


def to_columns_batch_last(y):
    """conv.conv_to_columns ordered (h, w, n): (N, C, H, W) -> (C, H W N) (a copy)."""
    return _to_batch_last(y).reshape(y.shape[1], -1)


def from_columns_batch_last(y_mat, shape):
    """The inverse of ``to_columns_batch_last``: (C, H W N) -> shape = (N, C, H, W), C-contiguous."""
    n, c, h, w = shape
    return _to_nchw(y_mat.reshape(c, h, w, n))
