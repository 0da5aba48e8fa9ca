"""Elementwise activations as CUDA kernels: each byte read once and written once.

Each activation is the scalar formula of the reference as a device function (``*_element``),
turned into a kernel by ``unary_map`` / ``binary_map`` (``_launch.py``: a grid-stride loop with
four elements per thread, loaded before any is used). On the GPU the transcendentals come from
CUDA's libdevice (``math.exp`` compiles to ``__nv_exp``), accurate to an ulp or two; these
kernels are limited by memory bandwidth, not arithmetic, so what matters for speed is touching
each byte once with enough loads in flight.

GELU's normal CDF is libdevice's erfc: Phi(x) = 0.5 erfc(-x / sqrt 2), accurate in both tails
(erfc of a negative argument is 2 - erfc(|x| / sqrt 2) without cancellation); the CPU backends
need their own erfc (``scratchgen/ops/activations.py``), the GPU has one.
"""
from __future__ import annotations

import math

from numba import cuda

from scratchgen.backend import register_kernel
from scratchgen.ops import activations as reference
from scratchgen.ops.activations import GELU_TANH_CUBIC, GELU_TANH_SCALE, INV_SQRT_2PI, SQRT_HALF

from ._launch import binary_map, run_elementwise, unary_map


@cuda.jit(device=True, inline=True)
def sigmoid(x):
    """1 / (1 + e^-x) without overflow: with e = e^-|x|, 1/(1+e) for x >= 0, e/(1+e) below."""
    e = math.exp(-abs(x))
    numerator = 1.0 if x >= 0 else e
    return numerator / (1.0 + e)


@cuda.jit(device=True, inline=True)
def softplus(x):
    """log(1 + e^x) = max(x, 0) + log1p(e^-|x|)."""
    return max(x, 0.0) + math.log1p(math.exp(-abs(x)))


# ---- the element formulas (device functions), and the map kernels built from them -------------------
@cuda.jit(device=True, inline=True)
def sigmoid_backward_element(g, y):
    return g * y * (1.0 - y)


@cuda.jit(device=True, inline=True)
def tanh_element(x):
    return math.tanh(x)


@cuda.jit(device=True, inline=True)
def tanh_backward_element(g, y):
    return g * (1.0 - y * y)


@cuda.jit(device=True, inline=True)
def relu_element(v):
    return v if (v > 0 or v != v) else 0.0  # NaN passes through, as in the reference


@cuda.jit(device=True, inline=True)
def relu_backward_element(g, x):
    return g * (1.0 if x > 0 else 0.0)


@cuda.jit(device=True, inline=True)
def softplus_backward_element(g, x):
    return g * sigmoid(x)


@cuda.jit(device=True, inline=True)
def gelu_element(v):
    return v * (0.5 * math.erfc(-v * SQRT_HALF))


@cuda.jit(device=True, inline=True)
def gelu_backward_element(g, v):
    return g * (0.5 * math.erfc(-v * SQRT_HALF) + v * INV_SQRT_2PI * math.exp(-0.5 * v * v))


@cuda.jit(device=True, inline=True)
def gelu_tanh_gate(x):
    """sigmoid(2u) = (1 + tanh u) / 2, u = sqrt(2/pi) (x + 0.044715 x^3)."""
    return sigmoid(2.0 * GELU_TANH_SCALE * (x + GELU_TANH_CUBIC * x * x * x))


@cuda.jit(device=True, inline=True)
def gelu_tanh_element(v):
    return v * gelu_tanh_gate(v)


@cuda.jit(device=True, inline=True)
def gelu_tanh_backward_element(g, v):
    s = gelu_tanh_gate(v)
    return g * (s + 2.0 * GELU_TANH_SCALE * v * s * (1.0 - s) * (1.0 + 3.0 * GELU_TANH_CUBIC * v * v))


_sigmoid_forward = unary_map(sigmoid)
_sigmoid_backward = binary_map(sigmoid_backward_element)
_tanh_forward = unary_map(tanh_element)
_tanh_backward = binary_map(tanh_backward_element)
_relu_forward = unary_map(relu_element)
_relu_backward = binary_map(relu_backward_element)
_softplus_forward = unary_map(softplus)
_softplus_backward = binary_map(softplus_backward_element)
_gelu_forward = unary_map(gelu_element)
_gelu_backward = binary_map(gelu_backward_element)
_gelu_tanh_forward = unary_map(gelu_tanh_element)
_gelu_tanh_backward = binary_map(gelu_tanh_backward_element)


# Leaky ReLU takes its slope as an argument: a plain grid-stride loop (one element per trip).
@cuda.jit
def _leaky_relu_forward(x, slope, out):
    for i in range(cuda.grid(1), x.size, cuda.gridsize(1)):
        v = x[i]
        out[i] = v if v > 0 else slope * v


@cuda.jit
def _leaky_relu_backward(grad, x, slope, out):
    for i in range(cuda.grid(1), grad.size, cuda.gridsize(1)):
        out[i] = grad[i] if x[i] > 0 else slope * grad[i]


@register_kernel("sigmoid_forward", backend="numba-cuda")
def sigmoid_forward(x):
    return run_elementwise(_sigmoid_forward, reference.sigmoid_forward, x)


@register_kernel("sigmoid_backward", backend="numba-cuda")
def sigmoid_backward(grad, y):
    return run_elementwise(_sigmoid_backward, reference.sigmoid_backward, grad, y)


@register_kernel("tanh_forward", backend="numba-cuda")
def tanh_forward(x):
    return run_elementwise(_tanh_forward, reference.tanh_forward, x)


@register_kernel("tanh_backward", backend="numba-cuda")
def tanh_backward(grad, y):
    return run_elementwise(_tanh_backward, reference.tanh_backward, grad, y)


@register_kernel("relu_forward", backend="numba-cuda")
def relu_forward(x):
    return run_elementwise(_relu_forward, reference.relu_forward, x)


@register_kernel("relu_backward", backend="numba-cuda")
def relu_backward(grad, x):
    return run_elementwise(_relu_backward, reference.relu_backward, grad, x)


@register_kernel("leaky_relu_forward", backend="numba-cuda")
def leaky_relu_forward(x, slope):
    return run_elementwise(_leaky_relu_forward, reference.leaky_relu_forward, x, scalars=(float(slope),))


@register_kernel("leaky_relu_backward", backend="numba-cuda")
def leaky_relu_backward(grad, x, slope):
    return run_elementwise(_leaky_relu_backward, reference.leaky_relu_backward, grad, x, scalars=(float(slope),))


@register_kernel("softplus_forward", backend="numba-cuda")
def softplus_forward(x):
    return run_elementwise(_softplus_forward, reference.softplus_forward, x)


@register_kernel("softplus_backward", backend="numba-cuda")
def softplus_backward(grad, x):
    return run_elementwise(_softplus_backward, reference.softplus_backward, grad, x)


@register_kernel("gelu_forward", backend="numba-cuda")
def gelu_forward(x):
    return run_elementwise(_gelu_forward, reference.gelu_forward, x)


@register_kernel("gelu_backward", backend="numba-cuda")
def gelu_backward(grad, x):
    return run_elementwise(_gelu_backward, reference.gelu_backward, grad, x)


@register_kernel("gelu_tanh_forward", backend="numba-cuda")
def gelu_tanh_forward(x):
    return run_elementwise(_gelu_tanh_forward, reference.gelu_tanh_forward, x)


@register_kernel("gelu_tanh_backward", backend="numba-cuda")
def gelu_tanh_backward(grad, x):
    return run_elementwise(_gelu_tanh_backward, reference.gelu_tanh_backward, grad, x)
