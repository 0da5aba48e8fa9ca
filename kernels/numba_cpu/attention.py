"""Masked softmax, forward and backward: one row of the attention scores per loop iteration.

x: (R, L) rows (every leading axis flattened; softmax over the last). NumPy does the masked
softmax in about eight whole-array passes (where, max, where, subtract, exp, sum, where,
divide), each through memory; here a row of L values stays in cache for its three passes:

    forward:  m = max of the allowed x;  e_j = exp(x_j - m) if allowed else 0 (our vectorisable
              exp of a non-positive argument, _math.py);  y = e / sum e;  a row with nothing
              allowed is all 0
    backward: y (g - sum(g y))

The mask broadcasts to (..., L) in many ways (a causal (L, L), a padding (N, 1, 1, L)); rather
than materialising it at the scores' full size, ``mask_rows`` keeps its distinct rows once,
(R', L), and an index (R,) saying which one each score row uses: R integers instead of R L bools.
It also gives each mask row the span [start, stop) from its first to its last allowed entry;
outside it the row is simply 0, so a causal mask's row i computes i + 1 exponentials, not L.
"""
from __future__ import annotations

import math

import numpy as np
from numba import prange

from scratchgen.backend import register_kernel
from scratchgen.ops import attention as reference

from . import _math
from ._jit import host_float_arrays, inline, jit


def mask_rows(mask, shape):
    """``(rows (R', L) bool, index (R,), start (R',), stop (R',))``: the mask broadcast to ``shape`` has
    row r = rows[index[r]], whose allowed entries all lie in [start, stop) (an empty span if none)."""
    length = shape[-1]
    mask = mask.reshape((1,) * (len(shape) - mask.ndim) + mask.shape)
    rows = np.ascontiguousarray(np.broadcast_to(mask, mask.shape[:-1] + (length,))).reshape(-1, length)
    lead = mask.shape[:-1]
    index = np.broadcast_to(np.arange(math.prod(lead), dtype=np.int64).reshape(lead), tuple(shape[:-1]))
    some = rows.any(axis=1)
    start = np.where(some, rows.argmax(axis=1), 0)
    stop = np.where(some, length - rows[:, ::-1].argmax(axis=1), 0)
    return rows, np.ascontiguousarray(index).reshape(-1), start, stop


@inline
def _row_max(row, allowed, minus_inf):
    """max of row over the allowed entries (-inf if none), as eight independent running maxima:
    one would be a chain of dependent compares, a few cycles each, per element."""
    length = row.size
    m0 = m1 = m2 = m3 = m4 = m5 = m6 = m7 = minus_inf
    j = 0
    while j + 8 <= length:
        m0 = max(m0, row[j] if allowed[j] else minus_inf)
        m1 = max(m1, row[j + 1] if allowed[j + 1] else minus_inf)
        m2 = max(m2, row[j + 2] if allowed[j + 2] else minus_inf)
        m3 = max(m3, row[j + 3] if allowed[j + 3] else minus_inf)
        m4 = max(m4, row[j + 4] if allowed[j + 4] else minus_inf)
        m5 = max(m5, row[j + 5] if allowed[j + 5] else minus_inf)
        m6 = max(m6, row[j + 6] if allowed[j + 6] else minus_inf)
        m7 = max(m7, row[j + 7] if allowed[j + 7] else minus_inf)
        j += 8
    while j < length:
        m0 = max(m0, row[j] if allowed[j] else minus_inf)
        j += 1
    return max(max(max(m0, m1), max(m2, m3)), max(max(m4, m5), max(m6, m7)))


@inline
def _softmax_row(row, allowed, start, stop, one, minus_inf):
    """row := softmax of row over its allowed entries, 0 elsewhere; all 0 if nothing is allowed.

    Only [start, stop) can hold allowed entries. ``one``, ``minus_inf``: in the data's dtype
    (Numba types a bare ``0.0`` or ``1.0 / float32`` as float64, which would sum and scale a
    float32 row at half the vector width). Inside the span every entry goes through exp and a
    select, not a branch, so the loop vectorises whatever the mask.
    """
    zero = one - one
    row[:start] = zero
    row[stop:] = zero
    span, ok = row[start:stop], allowed[start:stop]
    m = _row_max(span, ok, minus_inf)
    if m == minus_inf:
        span[:] = zero
        return
    total = zero
    for j in range(span.size):
        e = _math.exp_nonpositive(span[j] - m)
        e = e if ok[j] else zero
        span[j] = e
        total += e
    scale = one / total
    for j in range(span.size):
        span[j] *= scale


@jit(fma=True, reassociate=True)
def _masked_softmax_rows(x, mask, mask_index, start, stop, one, minus_inf):
    """In place on x: (R, L); row r uses mask row mask_index[r] and its span."""
    for r in prange(x.shape[0]):
        i = mask_index[r]
        _softmax_row(x[r], mask[i], start[i], stop[i], one, minus_inf)


@inline
def _row_max_unmasked(row):
    length = row.size
    m0 = m1 = m2 = m3 = m4 = m5 = m6 = m7 = row[0]
    j = 0
    while j + 8 <= length:
        m0, m1, m2, m3 = max(m0, row[j]), max(m1, row[j + 1]), max(m2, row[j + 2]), max(m3, row[j + 3])
        m4, m5, m6, m7 = max(m4, row[j + 4]), max(m5, row[j + 5]), max(m6, row[j + 6]), max(m7, row[j + 7])
        j += 8
    while j < length:
        m0 = max(m0, row[j])
        j += 1
    return max(max(max(m0, m1), max(m2, m3)), max(max(m4, m5), max(m6, m7)))


@jit(fma=True, reassociate=True)
def _softmax_rows(x, one):
    """The same without a mask (no selects: about 20% faster), in place on x: (R, L)."""
    for r in prange(x.shape[0]):
        row = x[r]
        m = _row_max_unmasked(row)
        total = one - one
        for j in range(row.size):
            e = _math.exp_nonpositive(row[j] - m)
            row[j] = e
            total += e
        scale = one / total
        for j in range(row.size):
            row[j] *= scale


@jit(reassociate=True)
def _softmax_backward_rows(grad, y, one):
    """grad := y (grad - sum(grad y)) per row, in place."""
    rows, length = grad.shape
    for r in prange(rows):
        dot = one - one
        for j in range(length):
            dot += grad[r, j] * y[r, j]
        for j in range(length):
            grad[r, j] = (grad[r, j] - dot) * y[r, j]


def _output(out, like):
    """A C-contiguous array of like's shape and dtype holding like's values: ``out`` itself when it
    qualifies (and is like, or gets like copied in), else a copy of like. The loops then work in
    place on one array: given an input and an output that *may* alias, LLVM guards its vector loop
    with an overlap check, and an in-place call (attention's) would fail it and run scalar."""
    if type(out) is np.ndarray and out.shape == like.shape and out.dtype == like.dtype and out.flags.c_contiguous:
        if out is not like:
            np.copyto(out, like)
        return out
    return np.array(like, order="C")


@register_kernel("masked_softmax_forward", backend="numba")
def masked_softmax_forward(x, mask, out=None):
    if (not host_float_arrays(x) or x.ndim == 0 or x.size == 0
            or (mask is not None and (type(mask) is not np.ndarray or mask.dtype != np.bool_))):
        return reference.masked_softmax_forward(x, mask, out)
    result = _output(out, x)
    rows = result.reshape(-1, x.shape[-1])
    if mask is None:
        _softmax_rows(rows, x.dtype.type(1))
    else:
        _masked_softmax_rows(rows, *mask_rows(mask, x.shape), x.dtype.type(1), x.dtype.type(-np.inf))
    return result


@register_kernel("masked_softmax_backward", backend="numba")
def masked_softmax_backward(grad, y, out=None):
    if not host_float_arrays(grad, y) or grad.shape != y.shape or grad.ndim == 0 or grad.size == 0:
        return reference.masked_softmax_backward(grad, y, out)
    length = grad.shape[-1]
    result = _output(out, grad)
    _softmax_backward_rows(result.reshape(-1, length), np.ascontiguousarray(y).reshape(-1, length), grad.dtype.type(1))
    return result
