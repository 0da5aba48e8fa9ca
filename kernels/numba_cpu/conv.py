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


# ---- Winograd F(2x2, 3x3) transforms (scratchgen/ops/conv_winograd.py) ---------------------------
# Tile-major, channels last: every transform is, for each tile, the same few additions on 16
# runs of C numbers (the innermost loops), which LLVM turns into SIMD. Images go to (and come
# back from) a zero-padded channels-last copy first: one pass over x or dx, then no bounds tests.
from scratchgen.ops import conv_winograd as winograd_reference  # noqa: E402


@jit
def _to_padded_nhwc(x, padding, out):
    """out (N, Hp, Wp, C), zero outside the image: x (N, C, H, W) placed at (padding, padding)."""
    n_images, channels, height, width = x.shape
    _, tall, wide, _ = out.shape
    for nh in prange(n_images * tall):
        n, hp = nh // tall, nh % tall
        h = hp - padding
        for wp in range(wide):
            w = wp - padding
            if 0 <= h < height and 0 <= w < width:
                for c in range(channels):
                    out[n, hp, wp, c] = x[n, c, h, w]
            else:
                for c in range(channels):
                    out[n, hp, wp, c] = 0.0


@jit
def _from_nhwc(y, offset, out):
    """out (N, C, H, W) = y[:, offset:offset + H, offset:offset + W, :] (channels last to first)."""
    n_images, channels, height, width = out.shape
    for nc in prange(n_images * channels):
        n, c = nc // channels, nc % channels
        for h in range(height):
            for w in range(width):
                out[n, c, h, w] = y[n, h + offset, w + offset, c]


@jit
def _winograd_input(xpad, tiles_h, tiles_w, v):
    """v[xi, t, :] = (B^T d B)[xi] for the 4x4 tile d = xpad[n, 2 ty : 2 ty + 4, 2 tx : 2 tx + 4, :]."""
    n_images, _, _, channels = xpad.shape
    per_image = tiles_h * tiles_w
    for t in prange(n_images * per_image):
        n, rest = t // per_image, t % per_image
        top, left = 2 * (rest // tiles_w), 2 * (rest % tiles_w)
        for j in range(4):  # rows: B^T d, column j of the tile, into v's four planes j, 4 + j, 8 + j, 12 + j
            for c in range(channels):
                d0, d1 = xpad[n, top, left + j, c], xpad[n, top + 1, left + j, c]
                d2, d3 = xpad[n, top + 2, left + j, c], xpad[n, top + 3, left + j, c]
                v[j, t, c] = d0 - d2
                v[4 + j, t, c] = d1 + d2
                v[8 + j, t, c] = d2 - d1
                v[12 + j, t, c] = d1 - d3
        for k in range(4):  # then columns: (B^T d) B, in place
            for c in range(channels):
                a, b, e, f = v[4 * k, t, c], v[4 * k + 1, t, c], v[4 * k + 2, t, c], v[4 * k + 3, t, c]
                v[4 * k, t, c] = a - e
                v[4 * k + 1, t, c] = b + e
                v[4 * k + 2, t, c] = e - b
                v[4 * k + 3, t, c] = b - f


@jit
def _winograd_output(m, bias, has_bias, y):
    """y[n, 2 ty + a, 2 tx + b, :] = (A^T M A)[a, b] + bias, y channels last and (2 th, 2 tw) tall."""
    n_images, tall, wide, c_out = y.shape
    tiles_h, tiles_w = tall // 2, wide // 2
    per_image = tiles_h * tiles_w
    zero = y.dtype.type(0)
    for t in prange(n_images * per_image):
        n, rest = t // per_image, t % per_image
        h, w = 2 * (rest // tiles_w), 2 * (rest % tiles_w)
        for o in range(c_out):
            s0 = m[0, t, o] + m[4, t, o] + m[8, t, o]
            s1 = m[1, t, o] + m[5, t, o] + m[9, t, o]
            s2 = m[2, t, o] + m[6, t, o] + m[10, t, o]
            s3 = m[3, t, o] + m[7, t, o] + m[11, t, o]
            q0 = m[4, t, o] - m[8, t, o] - m[12, t, o]
            q1 = m[5, t, o] - m[9, t, o] - m[13, t, o]
            q2 = m[6, t, o] - m[10, t, o] - m[14, t, o]
            q3 = m[7, t, o] - m[11, t, o] - m[15, t, o]
            offset = bias[o] if has_bias else zero
            y[n, h, w, o] = s0 + s1 + s2 + offset
            y[n, h, w + 1, o] = s1 - s2 - s3 + offset
            y[n, h + 1, w, o] = q0 + q1 + q2 + offset
            y[n, h + 1, w + 1, o] = q1 - q2 - q3 + offset


@jit
def _winograd_output_adjoint(grad, tiles_h, tiles_w, dm):
    """dm[t, xi, :] = (A g A^T)[xi] for the 2x2 tile g of grad (channels last, zero past OH, OW).

    Tile-major (T, 16, C_out): each tile's 16 results are one contiguous block (written to 16
    planes 800 KB apart, the same stores ran 4-5x slower); the GEMMs read it through a
    (16, T, C_out) view with a row stride, which BLAS takes as it is."""
    n_images = grad.shape[0]
    c_out = grad.shape[3]
    per_image = tiles_h * tiles_w
    for t in prange(n_images * per_image):
        n, rest = t // per_image, t % per_image
        h, w = 2 * (rest // tiles_w), 2 * (rest % tiles_w)
        for o in range(c_out):
            g00, g01, g10, g11 = grad[n, h, w, o], grad[n, h, w + 1, o], grad[n, h + 1, w, o], grad[n, h + 1, w + 1, o]
            # A = [[1, 0], [1, 1], [1, -1], [0, -1]]: rows A g = (a_k, b_k), then (a_k, a_k + b_k, a_k - b_k, -b_k)
            a1, b1 = g00 + g10, g01 + g11
            a2, b2 = g00 - g10, g01 - g11
            dm[t, 0, o] = g00
            dm[t, 1, o] = g00 + g01
            dm[t, 2, o] = g00 - g01
            dm[t, 3, o] = -g01
            dm[t, 4, o] = a1
            dm[t, 5, o] = a1 + b1
            dm[t, 6, o] = a1 - b1
            dm[t, 7, o] = -b1
            dm[t, 8, o] = a2
            dm[t, 9, o] = a2 + b2
            dm[t, 10, o] = a2 - b2
            dm[t, 11, o] = -b2
            dm[t, 12, o] = -g10
            dm[t, 13, o] = -g10 - g11
            dm[t, 14, o] = g11 - g10
            dm[t, 15, o] = g11


@jit
def _winograd_input_adjoint(dv, tiles_h, tiles_w, dxpad):
    """dxpad[n, 2 ty + i, 2 tx + j, :] += (B dV B^T)[i, j] over the tiles (images in parallel)."""
    n_images, _, _, channels = dxpad.shape
    per_image = tiles_h * tiles_w
    for n in prange(n_images):
        dxpad[n] = 0.0
        d = np.empty((4, 4, channels), dtype=dv.dtype)  # D = dV B^T of one tile
        for rest in range(per_image):
            t = n * per_image + rest
            top, left = 2 * (rest // tiles_w), 2 * (rest % tiles_w)
            for i in range(4):  # D's row i from dV's: B^T's columns are (1,0,0,0), (0,1,-1,1), (-1,1,1,0), (0,0,0,-1)
                for c in range(channels):
                    v0, v1, v2, v3 = dv[4 * i, t, c], dv[4 * i + 1, t, c], dv[4 * i + 2, t, c], dv[4 * i + 3, t, c]
                    d[i, 0, c] = v0
                    d[i, 1, c] = v1 - v2 + v3
                    d[i, 2, c] = v1 + v2 - v0
                    d[i, 3, c] = -v3
            for j in range(4):  # B D, column j: rows D0, D1 - D2 + D3, D1 + D2 - D0, -D3, added where read
                for c in range(channels):
                    dxpad[n, top, left + j, c] += d[0, j, c]
                    dxpad[n, top + 1, left + j, c] += d[1, j, c] - d[2, j, c] + d[3, j, c]
                    dxpad[n, top + 2, left + j, c] += d[1, j, c] + d[2, j, c] - d[0, j, c]
                    dxpad[n, top + 3, left + j, c] -= d[3, j, c]


@register_kernel("winograd_input", backend="numba")
def winograd_input(x, padding, tiles_h, tiles_w):
    if not host_float_arrays(x):
        return winograd_reference.winograd_input(x, padding, tiles_h, tiles_w)
    n, c = x.shape[:2]
    xpad = np.empty((n, 2 * tiles_h + 2, 2 * tiles_w + 2, c), dtype=x.dtype)
    _to_padded_nhwc(np.ascontiguousarray(x), int(padding), xpad)
    v = np.empty((16, n * tiles_h * tiles_w, c), dtype=x.dtype)
    _winograd_input(xpad, int(tiles_h), int(tiles_w), v)
    return v


@register_kernel("winograd_output", backend="numba")
def winograd_output(m, bias, shape):
    if not host_float_arrays(m, *(() if bias is None else (bias,))):
        return winograd_reference.winograd_output(m, bias, shape)
    n, c_out, oh, ow = shape
    y = np.empty((n, 2 * ((oh + 1) // 2), 2 * ((ow + 1) // 2), c_out), dtype=m.dtype)
    has_bias = bias is not None
    _winograd_output(np.ascontiguousarray(m), bias if has_bias else np.empty(0, m.dtype), has_bias, y)
    out = np.empty(shape, dtype=m.dtype)
    _from_nhwc(y, 0, out)
    return out


@register_kernel("winograd_output_adjoint", backend="numba")
def winograd_output_adjoint(grad):
    if not host_float_arrays(grad):
        return winograd_reference.winograd_output_adjoint(grad)
    n, c_out, oh, ow = grad.shape
    th, tw = (oh + 1) // 2, (ow + 1) // 2
    padded = np.empty((n, 2 * th + 2, 2 * tw + 2, c_out), dtype=grad.dtype)  # zero past OH, OW (and one spare row)
    _to_padded_nhwc(np.ascontiguousarray(grad), 0, padded)
    dm = np.empty((n * th * tw, 16, c_out), dtype=grad.dtype)
    _winograd_output_adjoint(padded, th, tw, dm)
    return dm.transpose(1, 0, 2)  # (16, T, C_out), as the reference


@register_kernel("winograd_input_adjoint", backend="numba")
def winograd_input_adjoint(dv, x_shape, padding):
    if not host_float_arrays(dv):
        return winograd_reference.winograd_input_adjoint(dv, x_shape, padding)
    n, c, h, w = x_shape
    th, tw = winograd_reference.tiles(h, padding), winograd_reference.tiles(w, padding)
    dxpad = np.empty((n, max(2 * th + 2, h + padding), max(2 * tw + 2, w + padding), c), dtype=dv.dtype)
    _winograd_input_adjoint(np.ascontiguousarray(dv), th, tw, dxpad)
    dx = np.empty(x_shape, dtype=dv.dtype)
    _from_nhwc(dxpad, int(padding), dx)
    return dx


# Winograd for 3x3 stride-1 layers with enough channels on both sides: measured (64 x 32 x 14 x 14
# -> 64, forward + backward, 1 thread) ... see docs/kernels.md. Fewer channels leave the 16 GEMMs
# too thin (K = C_in) to beat im2col's one GEMM.
WINOGRAD_MIN_CHANNELS = 16


@register_kernel("conv_algorithm", backend="numba")
def conv_algorithm(c_in, c_out, kernel_size, stride, padding):
    if (tuple(kernel_size) == (3, 3) and tuple(stride) == (1, 1) and padding[0] == padding[1] <= 2
            and min(c_in, c_out) >= WINOGRAD_MIN_CHANNELS):
        return "winograd"
    return "im2col"
