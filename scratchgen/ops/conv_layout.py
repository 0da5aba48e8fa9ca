"""How conv.py lays images out as GEMM operands, and why: memory movement, not arithmetic.

conv.py writes every convolution as im2col + one GEMM (+ col2im). With batch 64, float32 and
one thread, the GEMMs are 55-70% of a layer's forward + backward; the rest is copying images
into column matrices and back. This file holds that copying, so the kernels in conv.py can
read as the algebra they are.

An image is held as a 5-D array (C, N1, H, W, N2) with the batch in N1 or in N2 and a 1 in
the other:

    channel-major (C, N, H, W, 1)     GEMM columns ordered (n, a, b)
    batch-last    (C, 1, H, W, N)     GEMM columns ordered (a, b, n)

A GEMM operand is its reshape (C, N1 H W N2). One text serves both layouts; the layout only
decides where NumPy finds long contiguous runs, and NumPy pays per run. A window gather or
scatter moves one strided slice per kernel offset:

  channel-major: a slice is contiguous for one image row only (OW = 7 to 28 numbers, every
                 s-th one), but NCHW <-> (C, N, H W) swaps whole H x W blocks (cheap);
  batch-last:    a slice moves runs of N numbers (N OW for stride 1), but NCHW <-> (C, H W, N)
                 moves numbers one at a time.

For 64 channels, 14x14, k4 s2 p1 batch-last makes the gather 1.5x and the scatter 2.5x
faster, layout changes included. ``_batch_last_pays`` picks per layer (measurements there).
The kernels that other backends implement, ``im2col`` and ``col2im`` in conv.py, are the
channel-major case.

Not done, measured against the above:

* A sub-pixel split of the stride-2 transposed convolution into s^2 stride-1 convolutions
  (no scatter-add). It gathers the *input* kH kW times, and in DCGAN's generator the input
  has twice the channels of the output, so it moves more memory than the scatter it removes
  (measured, 128 -> 64 channels 7x7 -> 14x14 forward: 29 ms against 21 ms).
* A "wide" im2col whose junk columns would make every copy and add one contiguous block: it
  makes the GEMMs 14-31% larger.

Every helper takes the pair-valued hyper-parameters already normalised: kernel_size (kH, kW),
stride (sH, sW), padding (pH, pW), all Python ints. conv.py imports these helpers by name and
calls them from its kernels, so tests can replace ``conv._batch_last_pays`` to force a layout.
"""
from __future__ import annotations

from typing import Tuple

from ..backend import get_array_module

__all__ = []  # internal to the conv ops; nothing here is re-exported by scratchgen.ops

Pair = Tuple[int, int]

# _to_nchw copies batch-last images in blocks of this many bytes (see there).
_TRANSPOSE_BLOCK_BYTES = 1 << 16


def _batch_last_pays(window_rows: int, other_rows: int) -> bool:
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


def _times_transpose(a, b):
    """a @ b.T, (M, L) @ (L, K) -> (M, K), the weight gradients' long-L products.

    Computed as (b @ a.T).T when K > M: OpenBLAS runs these 5-12% faster with the larger of M, K
    as the rows of its result (measured: (128, 3136) @ (3136, 1024) 9.2 -> 8.2 ms; but
    (32, 50176) @ (50176, 9) 1.1 -> 1.3 ms the other way round). Returns a C-contiguous array
    (one small copy of the weight-sized result when transposed).
    """
    if a.shape[0] >= b.shape[0]:
        return a @ b.T
    return get_array_module(a).ascontiguousarray((b @ a.T).T)


def _layout_shape(n: int, c: int, h: int, w: int, batch_last: bool):
    """The 5-D shape of an (N, C, H, W) image in the kernels' layout."""
    return (c, 1, h, w, n) if batch_last else (c, n, h, w, 1)


def _to_layout(x, batch_last: bool, padding: Pair = (0, 0)):
    """(N, C, H, W), any strides -> (C, N1, H + 2 pH, W + 2 pW, N2), zero-padded, C-contiguous."""
    xp = get_array_module(x)
    n, c, h, w = x.shape
    ph, pw = padding
    shape = _layout_shape(n, c, h + 2 * ph, w + 2 * pw, batch_last)
    out = xp.zeros(shape, dtype=x.dtype) if ph or pw else xp.empty(shape, dtype=x.dtype)
    view = x.transpose(1, 2, 3, 0)[:, None] if batch_last else x.transpose(1, 0, 2, 3)[..., None]  # no copy
    out[:, :, ph : ph + h, pw : pw + w] = view
    return out


def _to_nchw(image):
    """(C, N1, H, W, N2), any strides -> (N, C, H, W), C-contiguous.

    Channel-major this is one swap of whole H x W blocks. Batch-last it reads with a stride of
    N numbers, and with a power-of-two N those reads land on few cache sets, so a whole-array
    copy keeps evicting lines it is about to reuse: copied a few channels at a time instead
    (measured 5.1 -> 0.5 ms for (64, 64, 14, 14)).
    """
    xp = get_array_module(image)
    c, n1, h, w, n2 = image.shape
    if n2 == 1:
        return xp.ascontiguousarray(image[..., 0].transpose(1, 0, 2, 3))
    image = image[:, 0]
    out = xp.empty((n2, c, h, w), dtype=image.dtype)
    step = max(1, _TRANSPOSE_BLOCK_BYTES // (h * w * n2 * image.itemsize))
    for c0 in range(0, c, step):
        out[:, c0 : c0 + step] = image[c0 : c0 + step].transpose(3, 0, 1, 2)
    return out


def _gather_windows(xpad, kernel_size: Pair, stride: Pair):
    """im2col on a padded image: every receptive field as a column, in one copy.

    xpad: (C, N1, Hp, Wp, N2) -> cols: (C kH kW, N1 OH OW N2), C-contiguous, OH = (Hp - kH) // sH + 1,
        cols[(c kH + i) kW + j, ((n1 OH + a) OW + b) N2 + n2] = xpad[c, n1, a sH + i, b sW + j, n2]
    """
    xp = get_array_module(xpad)
    (kh, kw), (sh, sw) = kernel_size, stride
    c, n1, hp, wp, n2 = xpad.shape
    oh, ow = (hp - kh) // sh + 1, (wp - kw) // sw + 1
    # A read-only view, no copy: windows[c, n1, a', b', n2, i, j] = xpad[c, n1, a' + i, b' + j, n2] ...
    windows = xp.lib.stride_tricks.sliding_window_view(xpad, (kh, kw), axis=(2, 3))
    # ... of which a stride-s convolution uses every s-th window position.
    windows = windows[:, :, : (oh - 1) * sh + 1 : sh, : (ow - 1) * sw + 1 : sw]  # (C, N1, OH, OW, N2, kH, kW)
    # Order the axes (c, i, j | n1, a, b, n2); reshape then makes the one copy.
    return windows.transpose(0, 5, 6, 1, 2, 3, 4).reshape(c * kh * kw, n1 * oh * ow * n2)


def _scatter_windows(cols, padded_shape, kernel_size: Pair, stride: Pair):
    """col2im, the adjoint of ``_gather_windows``: add every column back onto its pixels.

    cols: (C kH kW, N1 OH OW N2) -> xpad: padded_shape = (C, N1, Hp, Wp, N2), C-contiguous,
        xpad[c, n1, h, w, n2] = sum of cols[(c kH + i) kW + j, ((n1 OH + a) OW + b) N2 + n2]
                                over a sH + i = h, b sW + j = w.
    """
    xp = get_array_module(cols)
    (kh, kw), (sh, sw) = kernel_size, stride
    c, n1, hp, wp, n2 = padded_shape
    oh, ow = (hp - kh) // sh + 1, (wp - kw) // sw + 1
    cols = cols.reshape(c, kh, kw, n1, oh, ow, n2)
    xpad = xp.zeros(padded_shape, dtype=cols.dtype)
    # One whole-array add per kernel offset (9 or 16). Windows overlap, so not one add.
    for i in range(kh):
        for j in range(kw):
            xpad[:, :, i : i + sh * oh : sh, j : j + sw * ow : sw] += cols[:, i, j]
    return xpad


def _columns(x, kernel_size: Pair, stride: Pair, padding: Pair, batch_last: bool):
    """im2col(x) in the chosen layout: (N, C, H, W) -> (C kH kW, N1 OH OW N2)."""
    return _gather_windows(_to_layout(x, batch_last, padding), kernel_size, stride)


def _image(cols, x_shape, kernel_size: Pair, stride: Pair, padding: Pair, batch_last: bool):
    """col2im(cols) in the chosen layout: (C kH kW, N1 OH OW N2) -> (N, C, H, W)."""
    n, c, h, w = x_shape
    ph, pw = padding
    xpad = _scatter_windows(cols, _layout_shape(n, c, h + 2 * ph, w + 2 * pw, batch_last), kernel_size, stride)
    return _to_nchw(xpad[:, :, ph : ph + h, pw : pw + w])


def _matrix(y, batch_last: bool):
    """An output-sized array (N, C, H, W) as a GEMM operand (C, N1 H W N2) (a copy)."""
    return _to_layout(y, batch_last).reshape(y.shape[1], -1)


def _unmatrix(y_mat, n: int, h: int, w: int, batch_last: bool):
    """(C, N1 H W N2) -> (N, C, H, W), C-contiguous: the inverse of ``_matrix``."""
    return _to_nchw(y_mat.reshape(_layout_shape(n, y_mat.shape[0], h, w, batch_last)))
