"""Elementwise activations, forward and backward: one fused ``prange`` loop per kernel.

NumPy evaluates ``sigmoid`` as eight array passes (abs, negate, exp, add, divide, divide,
compare, where), each writing a temporary; the loops below read the input once and write the
output once. The transcendental parts use the vectorisable ``exp``/``expm1``/``log1p_unit``
of ``_math.py``, so the loops keep NumPy's SIMD width as well, in the data's own precision.

tanh is the exception: NumPy's own AVX-512 ``tanh`` is a single pass already, and our expm1
route (tanh|x| = -t / (2 + t), t = expm1(-2|x|)) cannot beat it, so the numba backend keeps
NumPy's ``tanh_forward`` (the version here stays for benchmarks and parity tests).

GELU is where fusing pays most: the exact form's erfc is ~60 array passes in NumPy (a
26-term polynomial and two exps) and one pass here, with ``_math.normal_cdf`` inlined.
"""
from __future__ import annotations

import numpy as np
from numba import prange

from scratchgen.backend import kernel, register_kernel
from scratchgen.ops import activations as reference
from scratchgen.ops import linalg as linalg_reference

from . import _math
from ._jit import host_float_arrays, jit, run_elementwise

TWO = np.float32(2)  # a float32 constant keeps float32 loops in float32 (and float64 ones in float64)

# ---- the compiled loops: flat 1-D inputs, then scalars, then flat outputs ---------------------


@jit(fma=True)
def _sigmoid_forward(x, out):
    for i in prange(x.size):
        out[i] = _math.sigmoid(x[i])


@jit
def _sigmoid_backward(grad, y, out):
    for i in prange(grad.size):
        out[i] = grad[i] * y[i] * (1.0 - y[i])


@jit(fma=True)
def _tanh_forward(x, out):
    for i in prange(x.size):
        v = abs(x[i])
        t = _math.expm1(-(v + v))
        magnitude = -t / (t + TWO)  # tanh|x| = (1 - e^{-2|x|}) / (1 + e^{-2|x|}) = -t / (2 + t)
        out[i] = magnitude if x[i] >= 0 else -magnitude


@jit
def _tanh_backward(grad, y, out):
    for i in prange(grad.size):
        out[i] = grad[i] * (1.0 - y[i] * y[i])


@jit
def _relu_forward(x, out):
    for i in prange(x.size):
        v = x[i]
        out[i] = v if (v > 0 or v != v) else 0.0  # NaN passes through, as in np.maximum


@jit
def _relu_backward(grad, x, out):
    for i in prange(grad.size):
        out[i] = grad[i] * (1.0 if x[i] > 0 else 0.0)


@jit
def _leaky_relu_forward(x, slope, out):
    for i in prange(x.size):
        v = x[i]
        out[i] = v if v > 0 else slope * v


@jit
def _leaky_relu_backward(grad, x, slope, out):
    for i in prange(grad.size):
        out[i] = grad[i] if x[i] > 0 else slope * grad[i]


@jit(fma=True)
def _softplus_forward(x, out):
    for i in prange(x.size):
        out[i] = _math.softplus(x[i])


@jit(fma=True)
def _softplus_backward(grad, x, out):
    for i in prange(grad.size):
        out[i] = grad[i] * _math.sigmoid(x[i])


@jit(fma=True)
def _gelu_forward(x, out):
    for i in prange(x.size):
        v = x[i]
        out[i] = v * _math.normal_cdf(v)


@jit(fma=True)
def _gelu_backward(grad, x, out):
    for i in prange(grad.size):
        v = x[i]
        out[i] = grad[i] * (_math.normal_cdf(v) + v * _math.normal_pdf(v))


@jit(fma=True)
def _gelu_tanh_forward(x, out):
    for i in prange(x.size):
        v = x[i]
        out[i] = v * _math.gelu_tanh_gate(v)


@jit(fma=True)
def _gelu_tanh_backward(grad, x, out):
    for i in prange(grad.size):
        out[i] = grad[i] * _math.gelu_tanh_grad(x[i])


# ---- a Linear layer's bias and activation, fused (scratchgen/ops/linalg.py) -------------------
RELU, SIGMOID, TANH, LEAKY_RELU, IDENTITY = 1, 2, 3, 4, 0
_KINDS = {"relu": RELU, "sigmoid": SIGMOID, "tanh": TANH, "leaky_relu": LEAKY_RELU}


@jit(fma=True)
def _bias_activation(y, bias, has_bias, kind, slope):
    """y (N, O) := f(y + bias) in place, one pass (tanh: the bias only; NumPy's tanh follows)."""
    n, o = y.shape
    zero = y.dtype.type(0)
    for r in prange(n):
        for j in range(o):
            v = y[r, j] + bias[j] if has_bias else y[r, j]
            if kind == RELU:
                v = v if (v > zero or v != v) else zero  # NaN passes through, as in np.maximum
            elif kind == SIGMOID:
                v = _math.sigmoid(v)
            elif kind == LEAKY_RELU:
                v = v if v > zero else slope * v
            y[r, j] = v


@jit
def _activation_backward_sums(grad, h, kind, slope, out, sums):
    """out = grad f'(from the output h), and its column sums (row by row: NumPy's order for axis 0)."""
    n, o = grad.shape
    one, zero = h.dtype.type(1), h.dtype.type(0)
    for j in range(o):
        sums[j] = zero
    for r in range(n):
        for j in range(o):
            g, y = grad[r, j], h[r, j]
            if kind == RELU:
                d = g * (one if y > zero else zero)
            elif kind == SIGMOID:
                d = g * y * (one - y)
            elif kind == TANH:
                d = g * (one - y * y)
            else:
                d = g if y > zero else slope * g
            out[r, j] = d
            sums[j] += d


@register_kernel("bias_activation_forward", backend="numba")
def bias_activation_forward(y, bias, activation, slope=0.01):
    kind = _KINDS.get(activation)
    if kind is None or y.ndim != 2 or not host_float_arrays(y, *(() if bias is None else (bias,))) \
            or not y.flags.c_contiguous:
        return linalg_reference.bias_activation_forward(y, bias, activation, slope)
    has_bias = bias is not None
    _bias_activation(y, bias if has_bias else y[0, :0], has_bias, IDENTITY if kind == TANH else kind, y.dtype.type(slope))
    if kind == TANH:
        y[...] = kernel("tanh_forward")(y)
    return y


@register_kernel("bias_activation_backward", backend="numba")
def bias_activation_backward(grad, h, activation, slope=0.01, need_bias=True):
    kind = _KINDS.get(activation)
    if kind is None or h.ndim != 2 or grad.shape != h.shape or not host_float_arrays(grad, h):
        return linalg_reference.bias_activation_backward(grad, h, activation, slope, need_bias)
    out = np.empty(h.shape, h.dtype)
    sums = np.empty(h.shape[1], h.dtype)
    _activation_backward_sums(np.ascontiguousarray(grad), np.ascontiguousarray(h), kind, h.dtype.type(slope), out, sums)
    return out, (sums if need_bias else None)


# ---- the registered kernels: same signatures as scratchgen/ops/activations.py ---------------


@register_kernel("sigmoid_forward", backend="numba")
def sigmoid_forward(x):
    return run_elementwise(_sigmoid_forward, reference.sigmoid_forward, x)


@register_kernel("sigmoid_backward", backend="numba")
def sigmoid_backward(grad, y):
    return run_elementwise(_sigmoid_backward, reference.sigmoid_backward, grad, y)


@register_kernel("tanh_forward", backend="numba", active=False,
                 note="NumPy's AVX-512 tanh is one SIMD pass already; the expm1-based loop is slower")
def tanh_forward(x):
    return run_elementwise(_tanh_forward, reference.tanh_forward, x)


@register_kernel("tanh_backward", backend="numba")
def tanh_backward(grad, y):
    return run_elementwise(_tanh_backward, reference.tanh_backward, grad, y)


@register_kernel("relu_forward", backend="numba")
def relu_forward(x):
    return run_elementwise(_relu_forward, reference.relu_forward, x)


@register_kernel("relu_backward", backend="numba")
def relu_backward(grad, x):
    return run_elementwise(_relu_backward, reference.relu_backward, grad, x)


@register_kernel("leaky_relu_forward", backend="numba")
def leaky_relu_forward(x, slope):
    return run_elementwise(_leaky_relu_forward, reference.leaky_relu_forward, x, scalars=(float(slope),))


@register_kernel("leaky_relu_backward", backend="numba")
def leaky_relu_backward(grad, x, slope):
    return run_elementwise(_leaky_relu_backward, reference.leaky_relu_backward, grad, x, scalars=(float(slope),))


@register_kernel("softplus_forward", backend="numba")
def softplus_forward(x):
    return run_elementwise(_softplus_forward, reference.softplus_forward, x)


@register_kernel("softplus_backward", backend="numba")
def softplus_backward(grad, x):
    return run_elementwise(_softplus_backward, reference.softplus_backward, grad, x)


@register_kernel("gelu_forward", backend="numba")
def gelu_forward(x):
    return run_elementwise(_gelu_forward, reference.gelu_forward, x)


@register_kernel("gelu_backward", backend="numba")
def gelu_backward(grad, x):
    return run_elementwise(_gelu_backward, reference.gelu_backward, grad, x)


@register_kernel("gelu_tanh_forward", backend="numba")
def gelu_tanh_forward(x):
    return run_elementwise(_gelu_tanh_forward, reference.gelu_tanh_forward, x)


@register_kernel("gelu_tanh_backward", backend="numba")
def gelu_tanh_backward(grad, x):
    return run_elementwise(_gelu_tanh_backward, reference.gelu_tanh_backward, grad, x)
