"""Fused sigmoid binary cross-entropy from logits on the GPU: one kernel each way.

    loss = max(z, 0) - z x + log1p(exp(-|z|))        dloss/dz = grad (sigmoid(z) - x)

Map kernels (``_launch.py``): four elements per thread, all loads before the arithmetic.
"""
from __future__ import annotations

import math

from numba import cuda

from scratchgen.backend import register_kernel
from scratchgen.ops import losses as reference

from ._launch import binary_map, run_elementwise, ternary_map
from .activations import sigmoid


@cuda.jit(device=True, inline=True)
def bce_element(z, x):
    return max(z, 0.0) - z * x + math.log1p(math.exp(-abs(z)))


@cuda.jit(device=True, inline=True)
def bce_backward_element(g, z, x):
    return g * (sigmoid(z) - x)


_bce_forward = binary_map(bce_element)  # (logits, target, out)
_bce_backward = ternary_map(bce_backward_element)  # (grad, logits, target, out)


@register_kernel("sigmoid_bce_with_logits_forward", backend="numba-cuda")
def sigmoid_bce_with_logits_forward(logits, target):
    return run_elementwise(_bce_forward, reference.sigmoid_bce_with_logits_forward, logits, target)


@register_kernel("sigmoid_bce_with_logits_backward", backend="numba-cuda")
def sigmoid_bce_with_logits_backward(grad, logits, target):
    return run_elementwise(_bce_backward, reference.sigmoid_bce_with_logits_backward, grad, logits, target)
