"""Masked softmax on the GPU: one block per row of scores, its reductions in shared memory.

x: (R, L), softmax over each row's L entries. A block of threads takes a row (blocks stride
over the rows): its threads stride over the L entries, and two tree reductions in shared memory
(``_block_max``, and ``_block_sum`` from normalization.py) give the row's maximum and sum:

    forward:  m = max of the allowed x;  e_j = exp(x_j - m) if allowed else 0;  y = e / sum e
              (a row with nothing allowed is all 0)
    backward: dot = sum g y;  dx = y (g - dot)

The mask is handed over as its distinct rows (R', L) and an index (R,) saying which row each
score row uses (as in the Numba CPU kernels), built with the arrays' own module, so a causal
(L, L) or padding (N, 1, 1, L) mask is never expanded to the scores' size.
"""
from __future__ import annotations

import math

import numpy as np
from numba import cuda, float64

from scratchgen.backend import get_array_module, register_kernel
from scratchgen.ops import attention as reference

from ._launch import MAX_BLOCKS, THREADS, configure, device_float_arrays
from .normalization import _block_sum

_BLOCK = THREADS  # threads per row; a power of two


@cuda.jit(device=True, inline=True)
def _block_max(partial, value):
    """The maximum of ``value`` over the block's threads (tree reduction); all threads get it."""
    t = cuda.threadIdx.x
    partial[t] = value
    cuda.syncthreads()
    stride = cuda.blockDim.x // 2
    while stride > 0:
        if t < stride and partial[t + stride] > partial[t]:
            partial[t] = partial[t + stride]
        cuda.syncthreads()
        stride //= 2
    result = partial[0]
    cuda.syncthreads()
    return result


@cuda.jit
def _masked_softmax_rows(x, mask, mask_index, has_mask, out):
    rows, length = x.shape
    partial = cuda.shared.array(_BLOCK, float64)
    t, step = cuda.threadIdx.x, cuda.blockDim.x
    for r in range(cuda.blockIdx.x, rows, cuda.gridDim.x):
        allowed = mask_index[r]
        local = -math.inf
        for j in range(t, length, step):
            if (not has_mask or mask[allowed, j]) and x[r, j] > local:
                local = x[r, j]
        m = _block_max(partial, local)  # the same for every thread of the block
        if m == -math.inf:
            for j in range(t, length, step):
                out[r, j] = 0.0
            continue
        local = 0.0
        for j in range(t, length, step):
            e = math.exp(x[r, j] - m) if (not has_mask or mask[allowed, j]) else 0.0
            out[r, j] = e  # out may be x itself: each thread reads and writes only its own entries
            local += e
        scale = 1.0 / _block_sum(partial, local)
        for j in range(t, length, step):
            out[r, j] = out[r, j] * scale


@cuda.jit
def _softmax_backward_rows(grad, y, out):
    rows, length = grad.shape
    partial = cuda.shared.array(_BLOCK, float64)
    t, step = cuda.threadIdx.x, cuda.blockDim.x
    for r in range(cuda.blockIdx.x, rows, cuda.gridDim.x):
        local = 0.0
        for j in range(t, length, step):
            local += grad[r, j] * y[r, j]
        dot = _block_sum(partial, local)
        for j in range(t, length, step):
            out[r, j] = (grad[r, j] - dot) * y[r, j]


def mask_rows(mask, shape, xp):
    """``(rows (R', L) bool, index (R,) int64)`` with mask broadcast to ``shape`` row r = rows[index[r]]."""
    length = shape[-1]
    mask = mask.reshape((1,) * (len(shape) - mask.ndim) + mask.shape)
    rows = xp.ascontiguousarray(xp.broadcast_to(mask, mask.shape[:-1] + (length,)))
    lead = rows.shape[:-1]
    index = xp.broadcast_to(xp.arange(math.prod(lead), dtype=np.int64).reshape(lead), tuple(shape[:-1]))
    return rows.reshape(-1, length), xp.ascontiguousarray(index).reshape(-1)


def _output(out, like, xp):
    if out is not None and out.shape == like.shape and out.dtype == like.dtype and out.flags.c_contiguous:
        return out
    return xp.empty(like.shape, like.dtype)


def _row_blocks(rows: int) -> int:
    return max(1, min(rows, MAX_BLOCKS))


@register_kernel("masked_softmax_forward", backend="numba-cuda")
def masked_softmax_forward(x, mask, out=None):
    if not device_float_arrays(x) or x.ndim == 0 or x.size == 0 or (mask is not None and mask.dtype != np.bool_):
        return reference.masked_softmax_forward(x, mask, out)
    xp = get_array_module(x)
    length = x.shape[-1]
    result = _output(out, x, xp)
    rows = xp.ascontiguousarray(x).reshape(-1, length)
    if mask is None:
        mask_table, index = xp.ones((1, 1), np.bool_), xp.zeros(rows.shape[0], np.int64)
    else:
        mask_table, index = mask_rows(xp.asarray(mask), x.shape, xp)
    configure(_masked_softmax_rows, _row_blocks(rows.shape[0]), _BLOCK)(rows, mask_table, index, mask is not None,
                                                                         result.reshape(-1, length))
    return result


@register_kernel("masked_softmax_backward", backend="numba-cuda")
def masked_softmax_backward(grad, y, out=None):
    if not device_float_arrays(grad, y) or grad.shape != y.shape or grad.ndim == 0 or grad.size == 0:
        return reference.masked_softmax_backward(grad, y, out)
    xp = get_array_module(grad)
    length = grad.shape[-1]
    result = _output(out, grad, xp)
    configure(_softmax_backward_rows, _row_blocks(grad.size // length), _BLOCK)(
        xp.ascontiguousarray(grad).reshape(-1, length), xp.ascontiguousarray(y).reshape(-1, length),
        result.reshape(-1, length))
    return result
