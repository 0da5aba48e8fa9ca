"""Elementwise activations as ``cupy.ElementwiseKernel``: one fused kernel per formula.

Each body is the reference's formula for one element in CUDA C++ (``T`` is the dtype). CuPy
broadcasts the arguments and allocates the outputs. GELU's normal CDF is CUDA's own erfc:
Phi(x) = erfc(-x / sqrt 2) / 2, accurate in both tails.
"""
from __future__ import annotations

from scratchgen.backend import register_kernel
from scratchgen.ops import activations as reference

from ._elementwise import Kernel, cupy_float_arrays

# exp(-|x|) never overflows; 1/(1+e) or e/(1+e) keeps tiny outputs' precision.
SIGMOID = "T e = exp(-fabs(x)); y = (x >= (T)0 ? (T)1 : e) / ((T)1 + e);"

_sigmoid_forward = Kernel("T x", "T y", SIGMOID, "sg_sigmoid_forward")
_sigmoid_backward = Kernel("T g, T y", "T out", "out = g * y * ((T)1 - y);", "sg_sigmoid_backward")
_tanh_backward = Kernel("T g, T y", "T out", "out = g * ((T)1 - y * y);", "sg_tanh_backward")
_relu_forward = Kernel("T x", "T y", "y = (x > (T)0 || x != x) ? x : (T)0;", "sg_relu_forward")
_relu_backward = Kernel("T g, T x", "T out", "out = g * (x > (T)0 ? (T)1 : (T)0);", "sg_relu_backward")
_leaky_forward = Kernel("T x, T slope", "T y", "y = x > (T)0 ? x : slope * x;", "sg_leaky_relu_forward")
_leaky_backward = Kernel("T g, T x, T slope", "T out", "out = x > (T)0 ? g : slope * g;",
                                         "sg_leaky_relu_backward")
_softplus_forward = Kernel(
    "T x", "T y", "y = (x > (T)0 ? x : (T)0) + log1p(exp(-fabs(x)));", "sg_softplus_forward")
_softplus_backward = Kernel(
    "T g, T x", "T out", "T e = exp(-fabs(x)); out = g * ((x >= (T)0 ? (T)1 : e) / ((T)1 + e));",
    "sg_softplus_backward")

# GELU: Phi(x) = erfc(-x / sqrt 2) / 2, phi(x) = exp(-x^2 / 2) / sqrt(2 pi); the tanh form as x sigmoid(2u).
_gelu_forward = Kernel(
    "T x", "T y", "y = x * ((T)0.5 * erfc(-x * (T)0.7071067811865476));", "sg_gelu_forward")
_gelu_backward = Kernel(
    "T g, T x", "T out",
    "out = g * ((T)0.5 * erfc(-x * (T)0.7071067811865476) + x * (T)0.3989422804014327 * exp((T)-0.5 * x * x));",
    "sg_gelu_backward")
GELU_TANH_GATE = ("T u2 = (T)1.5957691216057308 * (x + (T)0.044715 * x * x * x); T e = exp(-fabs(u2));"
                  "T s = (u2 >= (T)0 ? (T)1 : e) / ((T)1 + e);")  # s = sigmoid(2u), 2 sqrt(2/pi) = 1.5957...
_gelu_tanh_forward = Kernel("T x", "T y", GELU_TANH_GATE + "y = x * s;", "sg_gelu_tanh_forward")
_gelu_tanh_backward = Kernel(
    "T g, T x", "T out",
    GELU_TANH_GATE + "out = g * (s + (T)1.5957691216057308 * x * s * ((T)1 - s) * ((T)1 + (T)0.134145 * x * x));",
    "sg_gelu_tanh_backward")


def _run(kernel, reference_fn, *arrays, scalars=()):
    if not cupy_float_arrays(*arrays):
        return reference_fn(*arrays, *scalars)
    dtype = arrays[0].dtype.type
    return kernel(*arrays, *(dtype(s) for s in scalars))


@register_kernel("sigmoid_forward", backend="cupy")
def sigmoid_forward(x):
    return _run(_sigmoid_forward, reference.sigmoid_forward, x)


@register_kernel("sigmoid_backward", backend="cupy")
def sigmoid_backward(grad, y):
    return _run(_sigmoid_backward, reference.sigmoid_backward, grad, y)


@register_kernel("tanh_backward", backend="cupy")
def tanh_backward(grad, y):
    return _run(_tanh_backward, reference.tanh_backward, grad, y)


@register_kernel("relu_forward", backend="cupy")
def relu_forward(x):
    return _run(_relu_forward, reference.relu_forward, x)


@register_kernel("relu_backward", backend="cupy")
def relu_backward(grad, x):
    return _run(_relu_backward, reference.relu_backward, grad, x)


@register_kernel("leaky_relu_forward", backend="cupy")
def leaky_relu_forward(x, slope):
    return _run(_leaky_forward, reference.leaky_relu_forward, x, scalars=(slope,))


@register_kernel("leaky_relu_backward", backend="cupy")
def leaky_relu_backward(grad, x, slope):
    return _run(_leaky_backward, reference.leaky_relu_backward, grad, x, scalars=(slope,))


@register_kernel("softplus_forward", backend="cupy")
def softplus_forward(x):
    return _run(_softplus_forward, reference.softplus_forward, x)


@register_kernel("softplus_backward", backend="cupy")
def softplus_backward(grad, x):
    return _run(_softplus_backward, reference.softplus_backward, grad, x)


@register_kernel("gelu_forward", backend="cupy")
def gelu_forward(x):
    return _run(_gelu_forward, reference.gelu_forward, x)


@register_kernel("gelu_backward", backend="cupy")
def gelu_backward(grad, x):
    return _run(_gelu_backward, reference.gelu_backward, grad, x)


@register_kernel("gelu_tanh_forward", backend="cupy")
def gelu_tanh_forward(x):
    return _run(_gelu_tanh_forward, reference.gelu_tanh_forward, x)


@register_kernel("gelu_tanh_backward", backend="cupy")
def gelu_tanh_backward(grad, x):
    return _run(_gelu_tanh_backward, reference.gelu_tanh_backward, grad, x)
