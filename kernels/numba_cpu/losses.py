"""The sigmoid binary cross-entropy from logits, forward and backward, each one fused loop.

    loss(z, x) = max(z, 0) - z x + log1p(exp(-|z|))      dloss/dz = sigmoid(z) - x

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
from ._jit import jit, run_elementwise

ZERO = np.float32(0)  # a float32 constant keeps float32 loops in float32 (and float64 ones in float64)


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
