"""The sigmoid binary cross-entropy from logits as two fused CuPy kernels (CuPy broadcasts z and x)."""
from __future__ import annotations

from scratchgen.backend import register_kernel
from scratchgen.ops import losses as reference

from ._elementwise import Kernel, cupy_float_arrays

_bce_forward = Kernel(
    "T z, T x", "T loss", "loss = (z > (T)0 ? z : (T)0) - z * x + log1p(exp(-fabs(z)));", "sg_bce_forward")
_bce_backward = Kernel(
    "T g, T z, T x", "T out",
    "T e = exp(-fabs(z)); out = g * ((z >= (T)0 ? (T)1 : e) / ((T)1 + e) - x);", "sg_bce_backward")


@register_kernel("sigmoid_bce_with_logits_forward", backend="cupy")
def sigmoid_bce_with_logits_forward(logits, target):
    if not cupy_float_arrays(logits, target):
        return reference.sigmoid_bce_with_logits_forward(logits, target)
    return _bce_forward(logits, target)


@register_kernel("sigmoid_bce_with_logits_backward", backend="cupy")
def sigmoid_bce_with_logits_backward(grad, logits, target):
    if not cupy_float_arrays(grad, logits, target):
        return reference.sigmoid_bce_with_logits_backward(grad, logits, target)
    return _bce_backward(grad, logits, target)
