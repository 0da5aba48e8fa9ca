"""The sigmoid binary cross-entropy from logits, forward and backward, each one fused loop.

    loss(z, x) = max(z, 0) - z x + log1p(exp(-|z|))      dloss/dz = sigmoid(z) - x

``sigmoid_bce_with_logits_reduced`` (what training calls: the loss summed over a batch) does
both in one pass: with e = exp(-|z|) computed once, it adds the loss to a float64 sum and
writes (sigmoid(z) - x) / divisor, the gradient the backward will hand on as it is.

NumPy needs six array passes for the forward (maximum, multiply, subtract, abs, exp, log1p)
and five for the backward; each loop below reads its inputs once. exp and log1p are the
vectorisable versions of ``_math.py``. Inputs broadcast like the reference's (a broadcast
target is expanded to the full shape first).
"""
from __future__ import annotations

import numpy as np
from numba import prange

from scratchgen.backend import register_kernel
from scratchgen.ops import losses as reference

from . import _math
from ._jit import flat_elementwise, jit, run_elementwise

ZERO = np.float32(0)  # a float32 constant keeps float32 loops in float32 (and float64 ones in float64)
ONE = np.float32(1)


@jit(fma=True)
def _bce_forward(logits, target, out):
    for i in prange(logits.size):
        z = logits[i]
        positive = z if z > 0 else ZERO
        # The reference's order: (max(z, 0) - z x) first, so that a confident right answer
        # (z = 30, x = 1) cancels exactly and keeps the tiny log1p term's precision.
        out[i] = (positive - z * target[i]) + _math.log1p_unit(_math.exp(-abs(z)))


@jit(fma=True)
def _bce_backward(grad, logits, target, out):
    for i in prange(grad.size):
        out[i] = grad[i] * (_math.sigmoid(logits[i]) - target[i])


@register_kernel("sigmoid_bce_with_logits_forward", backend="numba")
def sigmoid_bce_with_logits_forward(logits, target):
    return run_elementwise(_bce_forward, reference.sigmoid_bce_with_logits_forward, logits, target)


@register_kernel("sigmoid_bce_with_logits_backward", backend="numba")
def sigmoid_bce_with_logits_backward(grad, logits, target):
    return run_elementwise(_bce_backward, reference.sigmoid_bce_with_logits_backward, grad, logits, target)


@jit(fma=True, reassociate=True)
def _bce_reduced(logits, target, scale, grad, terms):
    """Returns sum_i loss_i (float64) and writes grad_i = scale (sigmoid(z_i) - x_i).

    Two loops, not one: the first writes each loss_i into ``terms`` (in the data's dtype), the
    second adds them up in float64. Accumulating the float64 sum inside the first loop made
    LLVM convert every float32 lane to float64 there, and the whole loop ran at half the vector
    width: 0.41 ms against 0.23 ms for the two loops (128 x 784 float32, one thread).
    """
    for i in prange(logits.size):
        z = logits[i]
        x = target[i]
        e = _math.exp(-abs(z))
        positive = z if z > 0 else ZERO
        terms[i] = (positive - z * x) + _math.log1p_unit(e)
        numerator = e if z < 0 else ONE
        grad[i] = scale * (numerator / (ONE + e) - x)
    total = 0.0
    for i in prange(terms.size):
        total += np.float64(terms[i])
    return total


@register_kernel("sigmoid_bce_with_logits_reduced", backend="numba")
def sigmoid_bce_with_logits_reduced(logits, target, divisor):
    prepared = flat_elementwise(logits, target)
    if prepared is None:
        return reference.sigmoid_bce_with_logits_reduced(logits, target, divisor)
    (z, x), shape, dtype = prepared
    grad = np.empty(shape, dtype)
    scale = dtype.type(1) / dtype.type(divisor)  # the reference's ones(()) / divisor, in the dtype
    total = _bce_reduced(z, x, scale, grad.reshape(-1), np.empty(z.size, dtype))
    return np.asarray(total / divisor).astype(dtype), grad
