"""Activations: sigmoid, tanh, relu, leaky_relu, softplus, log_sigmoid, softmax, log_softmax.

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
"""
from __future__ import annotations

from ..backend import get_array_module, kernel, register_kernel
from ..function import Function
from ..gradcheck import register_case
from ..tensor import Tensor

__all__ = ["sigmoid", "tanh", "relu", "leaky_relu", "softplus", "log_sigmoid", "softmax", "log_softmax"]


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
