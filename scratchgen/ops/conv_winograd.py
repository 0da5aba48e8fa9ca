"""Winograd's minimal filtering F(2x2, 3x3): a 3x3 stride-1 convolution in 2.25x fewer multiplications.

conv.py computes every convolution as im2col + one GEMM. For a 3x3 kernel at stride 1 Winograd's
algorithm (Lavin and Gray 2016, "Fast algorithms for convolutional neural networks") does the same
sums with fewer products: each 2x2 tile of the output comes from a 4x4 tile d of the (padded)
input and the 3x3 filter g as

    Y = A^T [ (G g G^T) (.) (B^T d B) ] A          (.) elementwise over the 4x4 = 16 positions

    B^T = [[1, 0, -1, 0],     G = [[1,    0,    0  ],     A^T = [[1, 1,  1,  0],
           [0, 1,  1, 0],          [1/2,  1/2,  1/2],            [0, 1, -1, -1]]
           [0, -1, 1, 0],          [1/2, -1/2,  1/2],
           [0, 1,  0, -1]]         [0,    0,    1  ]]

Summed over the input channels, position by position, the elementwise product is a matrix
product: with U[xi] = (G g G^T)[xi] (C_out, C_in) and V[xi] = (B^T d B)[xi] (T, C_in) for the
T = N * tiles tiles, M[xi] = V[xi] @ U[xi]^T is 16 GEMMs of (T, C_in) x (C_in, C_out), 16 C_out C_in T
multiply-adds against im2col's 36 C_out C_in T (four output positions per tile, nine taps each).
Channels are the *last* axis of V and M (tile-major): the transforms then work on runs of
channels, which the compiled kernels turn into SIMD lanes (with channels first a transform
reads 16 scattered values per output, and costs more than the GEMMs it saves).

The backward is the adjoint of that bilinear map, written with the same transforms (no second
Winograd convolution, and the same tiling):

    dM[xi] = (A dY_tile A^T)[xi]                      (output transform, adjoint)   (T, C_out)
    dU[xi] = dM[xi]^T @ V[xi]    -> dW = G^T dU G     (16 GEMMs (C_out, T) x (T, C_in))
    dV[xi] = dM[xi] @ U[xi]      -> dX += B dV B^T    (16 GEMMs (T, C_out) x (C_out, C_in); each
                                                       4x4 tile added back where it was read)

Tiles: OH = H + 2p - 2 outputs need ceil(OH / 2) tiles per column; tile (ty, tx) reads the input
rows 2 ty - p ... 2 ty - p + 3 (zero outside the image) and writes output rows 2 ty, 2 ty + 1
(the second dropped past OH). Columns alike.

Accuracy: the transforms' entries are 0, +-1 and +-1/2, so the float32 result differs from the
im2col one by a few ulp times the usual sum; tests compare both to 1e-5 of the output's scale.

These are the NumPy references of the four transforms (kernels ``winograd_input``,
``winograd_output``, ``winograd_output_adjoint``, ``winograd_input_adjoint``); conv.py runs the
algorithm where a backend's ``conv_algorithm`` kernel chooses it for a layer (the NumPy backend
never does: its numbers stay im2col's).
"""
from __future__ import annotations

from ..backend import get_array_module, register_kernel

__all__ = []  # used by conv.py; not ops of their own

# F(2x2, 3x3) as 4x4 / 4x3 / 2x4 matrices (written out in the loops of the compiled kernels)
B_T = ((1, 0, -1, 0), (0, 1, 1, 0), (0, -1, 1, 0), (0, 1, 0, -1))
G = ((1.0, 0.0, 0.0), (0.5, 0.5, 0.5), (0.5, -0.5, 0.5), (0.0, 0.0, 1.0))
A_T = ((1, 1, 1, 0), (0, 1, -1, -1))


def tiles(size: int, padding: int) -> int:
    """Tiles along one axis: ceil(OH / 2) for OH = size + 2 padding - 2."""
    return (size + 2 * padding - 2 + 1) // 2


def _matrix(xp, rows, dtype):
    return xp.asarray(rows, dtype=dtype)


def _g_rows(k0, k1, k2):
    """G's rows applied to three arrays (one per filter tap): the four transformed ones."""
    half = (k0 + k2) * 0.5
    return k0, half + k1 * 0.5, half - k1 * 0.5, k2


def _g_t_rows(u0, u1, u2, u3):
    """G^T applied to four arrays: the three filter taps (the adjoint of ``_g_rows``)."""
    return u0 + (u1 + u2) * 0.5, (u1 - u2) * 0.5, (u1 + u2) * 0.5 + u3


def weight_transform(weight):
    """U = G g G^T for every (o, c): weight (C_out, C_in, 3, 3) -> (16, C_out, C_in).

    Written as G's combinations of whole (C_out, C_in) slices (the same sums as ``G @ g @ G.T``)."""
    xp = get_array_module(weight)
    rows = [_g_rows(weight[:, :, 0, j], weight[:, :, 1, j], weight[:, :, 2, j]) for j in range(3)]  # [j][i]
    u = xp.empty((16,) + weight.shape[:2], dtype=weight.dtype)
    for i in range(4):
        for j, value in enumerate(_g_rows(rows[0][i], rows[1][i], rows[2][i])):
            u[4 * i + j] = value
    return u


def weight_transform_adjoint(du):
    """dW = G^T dU G: (16, C_out, C_in) -> (C_out, C_in, 3, 3), the adjoint of ``weight_transform``."""
    xp = get_array_module(du)
    rows = [_g_t_rows(du[4 * i], du[4 * i + 1], du[4 * i + 2], du[4 * i + 3]) for i in range(4)]  # [i][j]
    dw = xp.empty(du.shape[1:] + (3, 3), dtype=du.dtype)
    for j in range(3):
        for i, value in enumerate(_g_t_rows(rows[0][j], rows[1][j], rows[2][j], rows[3][j])):
            dw[:, :, i, j] = value
    return dw


def _padded_tiles(x, padding, tiles_h, tiles_w):
    """x (N, C, H, W) -> its 4x4 input tiles (N, C, tiles_h, tiles_w, 4, 4), zero outside the image."""
    xp = get_array_module(x)
    n, c, h, w = x.shape
    rows, cols = 2 * tiles_h + 2, 2 * tiles_w + 2  # every row and column some tile reads
    xpad = xp.zeros((n, c, rows, cols), dtype=x.dtype)
    keep_h, keep_w = min(h, rows - padding), min(w, cols - padding)
    xpad[:, :, padding:padding + keep_h, padding:padding + keep_w] = x[:, :, :keep_h, :keep_w]
    windows = xp.lib.stride_tricks.sliding_window_view(xpad, (4, 4), axis=(2, 3))
    return windows[:, :, ::2, ::2]


@register_kernel("winograd_input")
def winograd_input(x, padding, tiles_h, tiles_w):
    """V = B^T d B for every input tile: x (N, C, H, W) -> (16, N tiles_h tiles_w, C), tiles in (n, ty, tx) order."""
    xp = get_array_module(x)
    b_t = _matrix(xp, B_T, x.dtype)
    d = _padded_tiles(x, padding, tiles_h, tiles_w)
    v = b_t @ d @ b_t.T  # (N, C, th, tw, 4, 4)
    n, c = x.shape[:2]
    return xp.ascontiguousarray(v.transpose(4, 5, 0, 2, 3, 1).reshape(16, n * tiles_h * tiles_w, c))


@register_kernel("winograd_output")
def winograd_output(m, bias, shape):
    """Y = A^T M A per tile, plus bias: m (16, N th tw, C_out) -> y ``shape`` = (N, C_out, OH, OW)."""
    xp = get_array_module(m)
    n, c_out, oh, ow = shape
    th, tw = (oh + 1) // 2, (ow + 1) // 2
    a_t = _matrix(xp, A_T, m.dtype)
    tiles_4x4 = m.reshape(4, 4, n, th, tw, c_out).transpose(2, 5, 3, 4, 0, 1)  # (N, C_out, th, tw, 4, 4)
    y_tiles = a_t @ tiles_4x4 @ a_t.T  # (N, C_out, th, tw, 2, 2)
    y = y_tiles.transpose(0, 1, 2, 4, 3, 5).reshape(n, c_out, 2 * th, 2 * tw)[:, :, :oh, :ow]
    y = xp.ascontiguousarray(y)
    if bias is not None:
        y += bias[:, None, None]
    return y


@register_kernel("winograd_output_adjoint")
def winograd_output_adjoint(grad):
    """dM = A dY A^T per tile: grad (N, C_out, OH, OW) -> (16, N th tw, C_out) (outputs past OH count 0)."""
    xp = get_array_module(grad)
    n, c_out, oh, ow = grad.shape
    th, tw = (oh + 1) // 2, (ow + 1) // 2
    g = xp.zeros((n, c_out, 2 * th, 2 * tw), dtype=grad.dtype)
    g[:, :, :oh, :ow] = grad
    a_t = _matrix(xp, A_T, grad.dtype)
    g_tiles = g.reshape(n, c_out, th, 2, tw, 2).transpose(0, 1, 2, 4, 3, 5)  # (N, C_out, th, tw, 2, 2)
    dm = a_t.T @ g_tiles @ a_t  # (N, C_out, th, tw, 4, 4)
    return xp.ascontiguousarray(dm.transpose(4, 5, 0, 2, 3, 1).reshape(16, n * th * tw, c_out))


@register_kernel("winograd_input_adjoint")
def winograd_input_adjoint(dv, x_shape, padding):
    """dX: every tile's B dV B^T added back onto the input pixels it was read from (the adjoint of
    ``winograd_input``): dv (16, N th tw, C) -> (N, C, H, W)."""
    xp = get_array_module(dv)
    n, c, h, w = x_shape
    th, tw = tiles(h, padding), tiles(w, padding)
    b_t = _matrix(xp, B_T, dv.dtype)
    dv = dv.reshape(4, 4, n, th, tw, c).transpose(2, 5, 3, 4, 0, 1)  # (N, C, th, tw, 4, 4)
    dd = b_t.T @ dv @ b_t  # (N, C, th, tw, 4, 4): d(loss)/d(input tile)
    rows, cols = 2 * th + 2, 2 * tw + 2
    xpad = xp.zeros((n, c, rows, cols), dtype=dv.dtype)
    for i in range(4):  # tiles overlap by two rows and columns: one strided add per tile position
        for j in range(4):
            xpad[:, :, i:i + 2 * th:2, j:j + 2 * tw:2] += dd[..., i, j]
    keep_h, keep_w = min(h, rows - padding), min(w, cols - padding)
    out = xp.zeros(x_shape, dtype=dv.dtype)
    out[:, :, :keep_h, :keep_w] = xpad[:, :, padding:padding + keep_h, padding:padding + keep_w]
    return out


def conv2d_forward(x, weight, bias, padding):
    """y = conv2d(x, weight, bias, stride 1, padding) for a 3x3 weight; returns (y, U) (U kept for the backward)."""
    n, c_in, h, w = x.shape
    c_out = weight.shape[0]
    ph, pw = padding
    th, tw = tiles(h, ph), tiles(w, pw)
    if ph != pw:
        raise ValueError(f"winograd: padding must be equal along both axes, got {padding}")
    u = weight_transform(weight)  # (16, C_out, C_in)
    v = _kernel("winograd_input")(x, ph, th, tw)  # (16, T, C_in)
    m = v @ u.transpose(0, 2, 1)  # 16 GEMMs (T, C_in) x (C_in, C_out)
    oh, ow = h + 2 * ph - 2, w + 2 * pw - 2
    return _kernel("winograd_output")(m, bias, (n, c_out, oh, ow)), u


def conv2d_backward(grad, x, weight, u, padding, needs):
    """(grad_x, grad_weight) of ``conv2d_forward`` (None where not needed)."""
    ph, pw = padding
    n, c_in, h, w = x.shape
    dm = _kernel("winograd_output_adjoint")(grad)  # (16, T, C_out)
    grad_x = grad_w = None
    if needs[1]:
        v = _kernel("winograd_input")(x, ph, tiles(h, ph), tiles(w, pw))  # recomputed, as im2col is
        du = dm.transpose(0, 2, 1) @ v  # 16 GEMMs (C_out, T) x (T, C_in)
        grad_w = weight_transform_adjoint(du)
    if needs[0]:
        dv = dm @ u  # 16 GEMMs (T, C_out) x (C_out, C_in)
        grad_x = _kernel("winograd_input_adjoint")(dv, x.shape, ph)
    return grad_x, grad_w


def _kernel(name):
    from ..backend import kernel

    return kernel(name)
