"""Fused sigmoid binary cross-entropy from logits on the GPU: one kernel each way.

    loss = max(z, 0) - z x + log1p(exp(-|z|))        dloss/dz = grad (sigmoid(z) - x)
"""
from __future__ import annotations

import math

from numba import cuda

from scratchgen.backend import register_kernel
from scratchgen.ops import losses as reference

from ._launch import run_elementwise
from .activations import sigmoid


@cuda.jit
def _bce_forward(logits, target, out):
    for i in range(cuda.grid(1), logits.size, cuda.gridsize(1)):
        z = logits[i]
        out[i] = max(z, 0.0) - z * target[i] + math.log1p(math.exp(-abs(z)))


@cuda.jit
def _bce_backward(grad, logits, target, out):
    for i in range(cuda.grid(1), grad.size, cuda.gridsize(1)):
        out[i] = grad[i] * (sigmoid(logits[i]) - target[i])


@register_kernel("sigmoid_bce_with_logits_forward", backend="numba-cuda")
def sigmoid_bce_with_logits_forward(logits, target):
    return run_elementwise(_bce_forward, reference.sigmoid_bce_with_logits_forward, logits, target)


@register_kernel("sigmoid_bce_with_logits_backward", backend="numba-cuda")
def sigmoid_bce_with_logits_backward(grad, logits, target):
    return run_elementwise(_bce_backward, reference.sigmoid_bce_with_logits_backward, grad, logits, target)
