"""Activations: sigmoid, tanh, relu, leaky_relu, softplus, log_sigmoid, softmax, log_softmax, gelu.

The elementwise ones are *kernels*: plain functions on arrays registered as the ``numpy``
implementation (``kernels/`` adds Numba and GPU versions of the same names). Their backward
kernels take what is cheapest to keep: sigmoid and tanh keep their *output* y, because
    sigmoid'(x) = y (1 - y)        tanh'(x) = 1 - y^2
relu, leaky_relu and softplus keep their *input* x.

Stability (why the formulas look the way they do):
    sigmoid(x)  = 1 / (1 + e^-|x|)       for x >= 0,   e^-|x| / (1 + e^-|x|)   for x < 0
                  (exp never overflows and tiny outputs keep their relative precision;
                  ``0.5 (1 + tanh(x/2))`` rounds sigmoid(-40) to exactly 0)
    softplus(x) = max(x, 0) + log1p(e^-|x|)   (never log(1 + e^x), which overflows at x = 710)
    log_sigmoid(x) = -softplus(-x)
    log_softmax(x) = x - max(x) - log(sum(exp(x - max(x))))

GELU (Hendrycks & Gimpel 2016), x times the standard normal CDF Phi, and its tanh approximation:
    gelu(x)      = x Phi(x),                 Phi(x) = 0.5 erfc(-x / sqrt 2)
    gelu'(x)     = Phi(x) + x phi(x),        phi(x) = exp(-x^2 / 2) / sqrt(2 pi)
    gelu_tanh(x) = 0.5 x (1 + tanh(u)) = x s,          u = sqrt(2/pi) (x + 0.044715 x^3),  s = sigmoid(2u)
    gelu_tanh'(x) = s + x 2 s (1 - s) sqrt(2/pi) (1 + 3 0.044715 x^2)
(1 + tanh(u) = 2 sigmoid(2u) and 1 - tanh(u)^2 = 4 s (1 - s): the sigmoid form does not cancel
for negative x, where 1 + tanh(u) rounds to 0.)

NumPy has no erf. Phi is computed from erfc of a non-negative argument only, so that neither
tail cancels: Phi(x) = 0.5 erfc(|x|/sqrt 2) for x < 0 (tiny, full relative precision) and
1 - 0.5 erfc(x/sqrt 2) for x >= 0 (in [0.5, 1]). ``erfc_nonnegative`` uses one formula for every
z >= 0 (the form of Numerical Recipes' ``erfccheb``, with our own coefficients):

    erfc(z) = t exp(-z^2 + P(2t - 1)),    t = 2 / (2 + z)  in (0, 1]

P smooths out everything that is hard about erfc (P(y) = log(erfc(z) e^{z^2} / t) is analytic on
[-1, 1], including z -> infinity where t -> 0), so a polynomial fits it: ``ERFC_POLY_64`` is the
degree-25 Chebyshev interpolant of P at 26 Chebyshev nodes, computed in 50-digit arithmetic
(mpmath) and rewritten in powers of y for Horner's rule (its coefficients stay below 0.7, so
Horner is stable; ``tests/test_gelu.py`` regenerates them). Measured relative error of
erfc in float64: below 6e-16 for z in [0, 26] (past 26.5 erfc underflows). ``ERFC_POLY_32``
(12 terms) does the same to 4e-7 for float32 inputs. z^2 is split as zh^2 + (z - zh)(z + zh)
with zh = floor(256 z) / 256, so that zh^2 is exact and the large exponent carries no rounding
error (a plain exp(-z^2) at z = 5 would be off by 25 ulp of 1). Phi(x) itself also inherits the
rounding of z = |x| / sqrt 2, amplified by erfc's condition number 2 z^2: about x^2 ulp in the
far lower tail (1e-13 relative at x = -30, where Phi = 5e-198), as any erfc-based Phi does.

Why not ``np.vectorize(math.erf)``: a Python call per element (~100 ns) against a few
nanoseconds for the 26 Horner passes; and 1 + erf(x) loses every digit of Phi(x) below -8.
"""
from __future__ import annotations

import numpy as np

from ..backend import get_array_module, kernel, register_kernel
from ..function import Function
from ..gradcheck import register_case
from ..tensor import Tensor

__all__ = ["sigmoid", "tanh", "relu", "leaky_relu", "softplus", "log_sigmoid", "softmax", "log_softmax", "gelu"]


# ---- NumPy reference kernels -----------------------------------------------------------------
@register_kernel("sigmoid_forward")
def sigmoid_forward(x):
    """y = sigmoid(x), stable for any x. x: any shape."""
    xp = get_array_module(x)
    e = xp.exp(-xp.abs(x))
    return xp.where(x >= 0, 1 / (1 + e), e / (1 + e))


@register_kernel("sigmoid_backward")
def sigmoid_backward(grad, y):
    return grad * y * (1 - y)


@register_kernel("tanh_forward")
def tanh_forward(x):
    return get_array_module(x).tanh(x)


@register_kernel("tanh_backward")
def tanh_backward(grad, y):
    return grad * (1 - y * y)


@register_kernel("relu_forward")
def relu_forward(x):
    return get_array_module(x).maximum(x, 0)


@register_kernel("relu_backward")
def relu_backward(grad, x):
    return grad * (x > 0)


@register_kernel("leaky_relu_forward")
def leaky_relu_forward(x, slope):
    return get_array_module(x).where(x > 0, x, slope * x)


@register_kernel("leaky_relu_backward")
def leaky_relu_backward(grad, x, slope):
    return get_array_module(x).where(x > 0, grad, slope * grad)


@register_kernel("softplus_forward")
def softplus_forward(x):
    xp = get_array_module(x)
    return xp.maximum(x, 0) + xp.log1p(xp.exp(-xp.abs(x)))


@register_kernel("softplus_backward")
def softplus_backward(grad, x):
    return grad * sigmoid_forward(x)


# ---- the normal CDF and GELU -------------------------------------------------------------------
# P(y) of erfc(z) = t exp(-z^2 + P(y)), y = 2t - 1, t = 2/(2 + z): coefficients of y^0, y^1, ...
ERFC_POLY_64 = (
    -0.6717940840566922, 0.6726432239776567, 0.047343306841863754, -0.046895610231160824,
    -0.00987268936410846, 0.00882493855611383, 0.0017589335075480397, -0.0023458124784660516,
    -0.00014624628859718252, 0.0006736785371369921, -9.373894209180262e-05, -0.00017430116360991256,
    7.141808767204543e-05, 3.1737328155349395e-05, -3.023780825572967e-05, 1.6080205095439494e-07,
    8.662494482986981e-06, -2.994294118363313e-06, -1.4094127307024207e-06, 1.3137199073509803e-06,
    -4.1484920834124593e-08, -3.086559820402206e-07, 7.746001345360312e-08, 3.675878538183882e-08,
    -1.2776506237493277e-08, -1.1141466421901909e-09,
)
ERFC_POLY_32 = (
    -0.671794092775805, 0.6726432124855481, 0.04734394039462034, -0.046894781015071704,
    -0.009880431637582687, 0.008815156956125787, 0.0017952014937328141, -0.0023031434654053823,
    -0.00022919226001198893, 0.0005880716887598385, 8.508316609820583e-06, -9.246457795633103e-05,
)
ERFC_Z_MAX = 40.0  # erfc(z) is 0 in float64 beyond 27; clamping keeps inf out of (z - zh)(z + zh)
SQRT_HALF = 0.7071067811865476  # 1 / sqrt(2)
INV_SQRT_2PI = 0.3989422804014327  # 1 / sqrt(2 pi)
GELU_TANH_SCALE = 0.7978845608028654  # sqrt(2 / pi)
GELU_TANH_CUBIC = 0.044715


def erfc_nonnegative(z):
    """erfc(z) for z >= 0 (any shape, float32 or float64), to about 1 ulp; see the module docstring."""
    xp = get_array_module(z)
    coefficients = ERFC_POLY_32 if z.dtype == np.float32 else ERFC_POLY_64
    z = xp.minimum(z, ERFC_Z_MAX)
    t = 2.0 / (2.0 + z)
    y = 2.0 * t - 1.0
    poly = xp.full_like(y, coefficients[-1])
    for c in coefficients[-2::-1]:  # Horner's rule, in place
        poly *= y
        poly += c
    high = xp.floor(z * 256.0) / 256.0  # z^2 = high^2 (exact) + (z - high)(z + high)
    poly -= (z - high) * (z + high)
    return t * xp.exp(-high * high) * xp.exp(poly)


def normal_cdf(x):
    """Phi(x) = P(N(0, 1) <= x), with full relative precision in the lower tail."""
    xp = get_array_module(x)
    half_tail = 0.5 * erfc_nonnegative(xp.abs(x) * SQRT_HALF)  # Phi(-|x|)
    return xp.where(x < 0, half_tail, 1.0 - half_tail)


# Host arrays go through erfc's ~60 array passes in blocks of this many elements, which stay in
# the CPU cache: 4x faster than whole-array passes at a million elements (each pass would stream
# the array through memory). Device arrays go whole (one kernel launch per pass).
BLOCK = 1 << 14


def _in_blocks(fn, *arrays):
    """``fn(*arrays)`` for elementwise ``fn`` on same-shape arrays, computed block by block on the host."""
    first = arrays[0]
    if get_array_module(*arrays) is not np or first.size <= BLOCK or any(a.shape != first.shape for a in arrays):
        return fn(*arrays)
    flats = [np.ascontiguousarray(a).reshape(-1) for a in arrays]
    out = np.empty(first.shape, np.result_type(*arrays))
    flat_out = out.reshape(-1)
    for start in range(0, first.size, BLOCK):
        block = slice(start, start + BLOCK)
        flat_out[block] = fn(*(f[block] for f in flats))
    return out


def _gelu(x):
    return x * normal_cdf(x)


def _gelu_grad(grad, x):
    xp = get_array_module(x)
    return grad * (normal_cdf(x) + x * (INV_SQRT_2PI * xp.exp(-0.5 * x * x)))


@register_kernel("gelu_forward")
def gelu_forward(x):
    """y = x Phi(x) (the exact GELU). x: any shape, float32 or float64."""
    return _in_blocks(_gelu, x)


@register_kernel("gelu_backward")
def gelu_backward(grad, x):
    """grad (Phi(x) + x phi(x)), phi the standard normal density. grad, x: the same shape."""
    return _in_blocks(_gelu_grad, grad, x)


def _gelu_tanh_gate(x):
    """s = sigmoid(2u) = (1 + tanh u) / 2 with u = sqrt(2/pi) (x + 0.044715 x^3)."""
    return sigmoid_forward(2.0 * GELU_TANH_SCALE * (x + GELU_TANH_CUBIC * x * x * x))


@register_kernel("gelu_tanh_forward")
def gelu_tanh_forward(x):
    """y = 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))) = x sigmoid(2u), the tanh approximation."""
    return x * _gelu_tanh_gate(x)


@register_kernel("gelu_tanh_backward")
def gelu_tanh_backward(grad, x):
    """grad (s + 2 x s (1 - s) sqrt(2/pi) (1 + 3 0.044715 x^2)), s = sigmoid(2u)."""
    s = _gelu_tanh_gate(x)
    return grad * (s + 2.0 * GELU_TANH_SCALE * x * s * (1.0 - s) * (1.0 + 3.0 * GELU_TANH_CUBIC * x * x))


# ---- ops -------------------------------------------------------------------------------------
class Sigmoid(Function):
    @staticmethod
    def forward(ctx, x):
        y = kernel("sigmoid_forward")(x)
        ctx.save_for_backward(y)
        return y

    @staticmethod
    def backward(ctx, grad):
        (y,) = ctx.saved_arrays
        return kernel("sigmoid_backward")(grad, y)


class Tanh(Function):
    @staticmethod
    def forward(ctx, x):
        y = kernel("tanh_forward")(x)
        ctx.save_for_backward(y)
        return y

    @staticmethod
    def backward(ctx, grad):
        (y,) = ctx.saved_arrays
        return kernel("tanh_backward")(grad, y)


class ReLU(Function):
    op_name = "relu"

    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return kernel("relu_forward")(x)

    @staticmethod
    def backward(ctx, grad):
        (x,) = ctx.saved_arrays
        return kernel("relu_backward")(grad, x)


class LeakyReLU(Function):
    op_name = "leaky_relu"

    @staticmethod
    def forward(ctx, x, slope=0.01):
        ctx.save_for_backward(x)
        ctx.slope = slope
        return kernel("leaky_relu_forward")(x, slope)

    @staticmethod
    def backward(ctx, grad):
        (x,) = ctx.saved_arrays
        return kernel("leaky_relu_backward")(grad, x, ctx.slope)


class Softplus(Function):
    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return kernel("softplus_forward")(x)

    @staticmethod
    def backward(ctx, grad):
        (x,) = ctx.saved_arrays
        return kernel("softplus_backward")(grad, x)


class LogSigmoid(Function):
    op_name = "log_sigmoid"

    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return -kernel("softplus_forward")(-x)

    @staticmethod
    def backward(ctx, grad):
        (x,) = ctx.saved_arrays
        # d/dx log sigmoid(x) = 1 - sigmoid(x) = sigmoid(-x)
        return grad * kernel("sigmoid_forward")(-x)


class Softmax(Function):
    @staticmethod
    def forward(ctx, x, axis=-1):
        xp = get_array_module(x)
        e = xp.exp(x - x.max(axis=axis, keepdims=True))
        y = e / e.sum(axis=axis, keepdims=True)
        ctx.save_for_backward(y)
        ctx.axis = axis
        return y

    @staticmethod
    def backward(ctx, grad):
        # dL/dx = y * (g - sum(g * y))   (the Jacobian diag(y) - y y^T applied to g)
        (y,) = ctx.saved_arrays
        return y * (grad - (grad * y).sum(axis=ctx.axis, keepdims=True))


class LogSoftmax(Function):
    op_name = "log_softmax"

    @staticmethod
    def forward(ctx, x, axis=-1):
        xp = get_array_module(x)
        shifted = x - x.max(axis=axis, keepdims=True)
        y = shifted - xp.log(xp.exp(shifted).sum(axis=axis, keepdims=True))
        ctx.save_for_backward(y)
        ctx.axis = axis
        return y

    @staticmethod
    def backward(ctx, grad):
        # dL/dx = g - softmax(x) * sum(g)
        (y,) = ctx.saved_arrays
        xp = get_array_module(y)
        return grad - xp.exp(y) * grad.sum(axis=ctx.axis, keepdims=True)


class GELU(Function):
    op_name = "gelu"

    @staticmethod
    def forward(ctx, x, approximate="none"):
        ctx.save_for_backward(x)
        ctx.prefix = "gelu_tanh" if approximate == "tanh" else "gelu"
        return kernel(f"{ctx.prefix}_forward")(x)

    @staticmethod
    def backward(ctx, grad):
        (x,) = ctx.saved_arrays
        return kernel(f"{ctx.prefix}_backward")(grad, x)


def sigmoid(x: Tensor) -> Tensor:
    """1 / (1 + exp(-x)), computed stably."""
    return Sigmoid.apply(x)


def tanh(x: Tensor) -> Tensor:
    return Tanh.apply(x)


def relu(x: Tensor) -> Tensor:
    """max(x, 0); the gradient at exactly 0 is taken as 0."""
    return ReLU.apply(x)


def leaky_relu(x: Tensor, slope: float = 0.01) -> Tensor:
    """x for x > 0, slope * x otherwise."""
    return LeakyReLU.apply(x, slope=slope)


def softplus(x: Tensor) -> Tensor:
    """log(1 + exp(x)), computed stably."""
    return Softplus.apply(x)


def log_sigmoid(x: Tensor) -> Tensor:
    """log(sigmoid(x)) = -softplus(-x), finite for any x."""
    return LogSigmoid.apply(x)


def softmax(x: Tensor, axis: int = -1) -> Tensor:
    return Softmax.apply(x, axis=axis)


def log_softmax(x: Tensor, axis: int = -1) -> Tensor:
    return LogSoftmax.apply(x, axis=axis)


def gelu(x: Tensor, approximate: str = "none") -> Tensor:
    """x Phi(x) (``approximate="none"``, the exact form through erfc) or its tanh approximation
    0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))) (``approximate="tanh"``), as torch's F.gelu."""
    if approximate not in ("none", "tanh"):
        raise ValueError(f"gelu: approximate must be 'none' or 'tanh', got {approximate!r}")
    return GELU.apply(x, approximate=approximate)


# ---- gradcheck cases (python -m scratchgen.gradcheck) ------------------------------------------
def _away_from_zero(rng, shape):
    """Inputs at least 0.1 away from 0, where relu and leaky_relu have a kink."""
    x = rng.standard_normal(shape)
    return x + 0.1 * (2 * (x >= 0) - 1)


for _name, _fn in [("sigmoid", sigmoid), ("tanh", tanh), ("softplus", softplus), ("log_sigmoid", log_sigmoid)]:
    register_case(_name)(lambda rng, f=_fn: (f, [rng.standard_normal((3, 5)) * 3]))
register_case("relu")(lambda rng: (relu, [_away_from_zero(rng, (3, 5))]))
register_case("leaky_relu")(lambda rng: (lambda x: leaky_relu(x, 0.2), [_away_from_zero(rng, (3, 5))]))
register_case("softmax")(lambda rng: (lambda x: softmax(x, axis=1), [rng.standard_normal((3, 5))]))
register_case("log_softmax")(lambda rng: (lambda x: log_softmax(x, axis=0), [rng.standard_normal((4, 3))]))
register_case("gelu")(lambda rng: (gelu, [rng.standard_normal((3, 5)) * 3]))
register_case("gelu_tanh")(lambda rng: (lambda x: gelu(x, approximate="tanh"), [rng.standard_normal((3, 5)) * 3]))
