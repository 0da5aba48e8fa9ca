"""Elementwise activations as CUDA kernels: one thread per element (grid-stride), one read, one write.

Each kernel is the scalar formula of the reference inside a grid-stride loop. On the GPU the
transcendentals come from CUDA's libdevice (``math.exp`` compiles to ``__nv_exp``), accurate
to an ulp or two; these kernels are limited by memory bandwidth, not arithmetic, so the only
thing that matters for speed is touching each byte once.

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

from ._launch import run_elementwise


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


@cuda.jit
def _sigmoid_forward(x, out):
    for i in range(cuda.grid(1), x.size, cuda.gridsize(1)):
        out[i] = sigmoid(x[i])


@cuda.jit
def _sigmoid_backward(grad, y, out):
    for i in range(cuda.grid(1), grad.size, cuda.gridsize(1)):
        out[i] = grad[i] * y[i] * (1.0 - y[i])


@cuda.jit
def _tanh_forward(x, out):
    for i in range(cuda.grid(1), x.size, cuda.gridsize(1)):
        out[i] = math.tanh(x[i])


@cuda.jit
def _tanh_backward(grad, y, out):
    for i in range(cuda.grid(1), grad.size, cuda.gridsize(1)):
        out[i] = grad[i] * (1.0 - y[i] * y[i])


@cuda.jit
def _relu_forward(x, out):
    for i in range(cuda.grid(1), x.size, cuda.gridsize(1)):
        v = x[i]
        out[i] = v if (v > 0 or v != v) else 0.0


@cuda.jit
def _relu_backward(grad, x, out):
    for i in range(cuda.grid(1), grad.size, cuda.gridsize(1)):
        out[i] = grad[i] * (1.0 if x[i] > 0 else 0.0)


@cuda.jit
def _leaky_relu_forward(x, slope, out):
    for i in range(cuda.grid(1), x.size, cuda.gridsize(1)):
        v = x[i]
        out[i] = v if v > 0 else slope * v


@cuda.jit
def _leaky_relu_backward(grad, x, slope, out):
    for i in range(cuda.grid(1), grad.size, cuda.gridsize(1)):
        out[i] = grad[i] if x[i] > 0 else slope * grad[i]


@cuda.jit
def _softplus_forward(x, out):
    for i in range(cuda.grid(1), x.size, cuda.gridsize(1)):
        out[i] = softplus(x[i])


@cuda.jit
def _softplus_backward(grad, x, out):
    for i in range(cuda.grid(1), grad.size, cuda.gridsize(1)):
        out[i] = grad[i] * sigmoid(x[i])


@cuda.jit(device=True, inline=True)
def gelu_tanh_gate(x):
    """sigmoid(2u) = (1 + tanh u) / 2, u = sqrt(2/pi) (x + 0.044715 x^3)."""
    return sigmoid(2.0 * GELU_TANH_SCALE * (x + GELU_TANH_CUBIC * x * x * x))


@cuda.jit
def _gelu_forward(x, out):
    for i in range(cuda.grid(1), x.size, cuda.gridsize(1)):
        v = x[i]
        out[i] = v * (0.5 * math.erfc(-v * SQRT_HALF))


@cuda.jit
def _gelu_backward(grad, x, out):
    for i in range(cuda.grid(1), grad.size, cuda.gridsize(1)):
        v = x[i]
        out[i] = grad[i] * (0.5 * math.erfc(-v * SQRT_HALF) + v * INV_SQRT_2PI * math.exp(-0.5 * v * v))


@cuda.jit
def _gelu_tanh_forward(x, out):
    for i in range(cuda.grid(1), x.size, cuda.gridsize(1)):
        v = x[i]
        out[i] = v * gelu_tanh_gate(v)


@cuda.jit
def _gelu_tanh_backward(grad, x, out):
    for i in range(cuda.grid(1), grad.size, cuda.gridsize(1)):
        v = x[i]
        s = gelu_tanh_gate(v)
        out[i] = grad[i] * (s + 2.0 * GELU_TANH_SCALE * v * s * (1.0 - s) * (1.0 + 3.0 * GELU_TANH_CUBIC * v * v))


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
