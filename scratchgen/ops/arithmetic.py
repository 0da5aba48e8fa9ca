"""Elementwise arithmetic: add, sub, mul, div, neg, pow, square, exp, log, log1p, sqrt, abs, clip,
maximum, minimum, where.

Every op here broadcasts like NumPy. Their backward returns gradients of the *broadcast*
shape; the engine's ``unbroadcast`` sums them back to each input's shape (see function.py),
which is why none of these backward methods mentions shapes.

Derivatives, for a reader checking by hand (g is the incoming gradient dL/dy):
    y = a + b      dL/da = g                 dL/db = g
    y = a - b      dL/da = g                 dL/db = -g
    y = a * b      dL/da = g * b             dL/db = g * a
    y = a / b      dL/da = g / b             dL/db = -g * a / b^2
    y = a ** p     dL/da = g * p * a^(p-1)   (p a constant)
    y = a^2        dL/da = g * 2 a
    y = exp(a)     dL/da = g * y
    y = log(a)     dL/da = g / a
    y = log1p(a)   dL/da = g / (1 + a)       (log(1 + a), exact for tiny a where 1 + a rounds to 1)
    y = sqrt(a)    dL/da = g / (2 y)
    y = |a|        dL/da = g * sign(a)       (0 at a = 0, a subgradient)
    y = clip(a)    dL/da = g where low <= a <= high, else 0
    y = max(a, b)  dL/da = g where a > b, g / 2 where a = b, else 0      (and symmetrically for b)
    y = min(a, b)  dL/da = g where a < b, g / 2 where a = b, else 0
    y = where(c, a, b)   dL/da = g where c, else 0;   dL/db = g where not c, else 0   (c not differentiated)

Ties in maximum/minimum split the gradient equally (as PyTorch does, and as the ``max``
reduction does): the two gradients still add up to g, and it is a valid subgradient.
"""
from __future__ import annotations

import numpy as np

from ..backend import get_array_module
from ..function import Function
from ..tensor import Tensor

__all__ = ["add", "sub", "mul", "div", "neg", "pow", "square", "exp", "log", "log1p", "sqrt", "abs", "clip",
           "maximum", "minimum", "where"]


def _check_broadcast(op_name: str, a, b) -> None:
    shape_a, shape_b = getattr(a, "shape", ()), getattr(b, "shape", ())
    for size_a, size_b in zip(reversed(shape_a), reversed(shape_b)):
        if size_a != size_b and size_a != 1 and size_b != 1:
            raise ValueError(f"{op_name}: shapes {tuple(shape_a)} and {tuple(shape_b)} do not broadcast")


class Add(Function):
    @staticmethod
    def forward(ctx, a, b):
        _check_broadcast("add", a, b)
        return a + b

    @staticmethod
    def backward(ctx, grad):
        return grad, grad


class Sub(Function):
    @staticmethod
    def forward(ctx, a, b):
        _check_broadcast("sub", a, b)
        return a - b

    @staticmethod
    def backward(ctx, grad):
        return grad, -grad


class Mul(Function):
    @staticmethod
    def forward(ctx, a, b):
        _check_broadcast("mul", a, b)
        ctx.save_for_backward(a, b)
        return a * b

    @staticmethod
    def backward(ctx, grad):
        a, b = ctx.saved_arrays
        grad_a = grad * b if ctx.needs_input_grad[0] else None
        grad_b = grad * a if ctx.needs_input_grad[1] else None
        return grad_a, grad_b


class Div(Function):
    @staticmethod
    def forward(ctx, a, b):
        _check_broadcast("div", a, b)
        ctx.save_for_backward(a, b)
        return a / b

    @staticmethod
    def backward(ctx, grad):
        a, b = ctx.saved_arrays
        grad_a = grad / b if ctx.needs_input_grad[0] else None
        grad_b = -grad * a / (b * b) if ctx.needs_input_grad[1] else None
        return grad_a, grad_b


class Neg(Function):
    @staticmethod
    def forward(ctx, a):
        return -a

    @staticmethod
    def backward(ctx, grad):
        return -grad


class Pow(Function):
    """``a ** exponent`` for a constant (non-differentiated) exponent."""

    @staticmethod
    def forward(ctx, a, exponent):
        ctx.save_for_backward(a)
        ctx.exponent = exponent
        return a**exponent

    @staticmethod
    def backward(ctx, grad):
        (a,) = ctx.saved_arrays
        p = ctx.exponent
        return grad * p * a ** (p - 1), None


class Square(Function):
    @staticmethod
    def forward(ctx, a):
        ctx.save_for_backward(a)
        return a * a

    @staticmethod
    def backward(ctx, grad):
        (a,) = ctx.saved_arrays
        return grad * (2 * a)


class Exp(Function):
    @staticmethod
    def forward(ctx, a):
        y = get_array_module(a).exp(a)
        ctx.save_for_backward(y)
        return y

    @staticmethod
    def backward(ctx, grad):
        (y,) = ctx.saved_arrays
        return grad * y


class Log(Function):
    @staticmethod
    def forward(ctx, a):
        ctx.save_for_backward(a)
        return get_array_module(a).log(a)

    @staticmethod
    def backward(ctx, grad):
        (a,) = ctx.saved_arrays
        return grad / a


class Log1p(Function):
    op_name = "log1p"

    @staticmethod
    def forward(ctx, a):
        ctx.save_for_backward(a)
        return get_array_module(a).log1p(a)

    @staticmethod
    def backward(ctx, grad):
        (a,) = ctx.saved_arrays
        return grad / (1 + a)


class Sqrt(Function):
    @staticmethod
    def forward(ctx, a):
        y = get_array_module(a).sqrt(a)
        ctx.save_for_backward(y)
        return y

    @staticmethod
    def backward(ctx, grad):
        (y,) = ctx.saved_arrays
        return grad / (2 * y)


class Abs(Function):
    @staticmethod
    def forward(ctx, a):
        ctx.save_for_backward(a)
        return get_array_module(a).abs(a)

    @staticmethod
    def backward(ctx, grad):
        (a,) = ctx.saved_arrays
        return grad * get_array_module(a).sign(a)


class Clip(Function):
    """Clamp to [low, high]; the gradient passes only where the input was inside the range."""

    @staticmethod
    def forward(ctx, a, low=None, high=None):
        xp = get_array_module(a)
        inside = xp.ones(a.shape, dtype=bool)
        if low is not None:
            inside &= a >= low
        if high is not None:
            inside &= a <= high
        ctx.save_for_backward(inside)
        return xp.clip(a, low, high)

    @staticmethod
    def backward(ctx, grad):
        (inside,) = ctx.saved_arrays
        return grad * inside


def _tie_split(grad, wins, ties, xp):
    """The gradient share of one input of maximum/minimum: all of g where it won, half on a tie."""
    return xp.where(wins, grad, xp.where(ties, 0.5 * grad, 0))


class Maximum(Function):
    @staticmethod
    def forward(ctx, a, b):
        _check_broadcast("maximum", a, b)
        ctx.save_for_backward(a, b)
        return get_array_module(a, b).maximum(a, b)

    @staticmethod
    def backward(ctx, grad):
        a, b = ctx.saved_arrays
        xp = get_array_module(grad)
        grad_a = _tie_split(grad, a > b, a == b, xp) if ctx.needs_input_grad[0] else None
        grad_b = _tie_split(grad, b > a, a == b, xp) if ctx.needs_input_grad[1] else None
        return grad_a, grad_b


class Minimum(Function):
    @staticmethod
    def forward(ctx, a, b):
        _check_broadcast("minimum", a, b)
        ctx.save_for_backward(a, b)
        return get_array_module(a, b).minimum(a, b)

    @staticmethod
    def backward(ctx, grad):
        a, b = ctx.saved_arrays
        xp = get_array_module(grad)
        grad_a = _tie_split(grad, a < b, a == b, xp) if ctx.needs_input_grad[0] else None
        grad_b = _tie_split(grad, b < a, a == b, xp) if ctx.needs_input_grad[1] else None
        return grad_a, grad_b


class Where(Function):
    """``a`` where ``cond`` holds, else ``b``. ``cond`` is a keyword (a boolean array): never differentiated."""

    @staticmethod
    def forward(ctx, a, b, cond=None):
        shapes = [tuple(getattr(v, "shape", ())) for v in (cond, a, b)]
        try:
            np.broadcast_shapes(*shapes)
        except ValueError:
            raise ValueError(f"where: shapes cond {shapes[0]}, a {shapes[1]}, b {shapes[2]} do not broadcast") from None
        ctx.save_for_backward(cond)
        return get_array_module(a, b, cond).where(cond, a, b)

    @staticmethod
    def backward(ctx, grad):
        (cond,) = ctx.saved_arrays
        xp = get_array_module(grad)
        grad_a = xp.where(cond, grad, 0) if ctx.needs_input_grad[0] else None
        grad_b = xp.where(cond, 0, grad) if ctx.needs_input_grad[1] else None
        return grad_a, grad_b


def _pair(op_name, a, b):
    if not isinstance(a, Tensor) and not isinstance(b, Tensor):
        raise TypeError(f"{op_name}: at least one argument must be a Tensor")
    return a, b


def add(a, b) -> Tensor:
    """``a + b`` with broadcasting."""
    return Add.apply(*_pair("add", a, b))


def sub(a, b) -> Tensor:
    """``a - b`` with broadcasting."""
    return Sub.apply(*_pair("sub", a, b))


def mul(a, b) -> Tensor:
    """``a * b`` elementwise with broadcasting."""
    return Mul.apply(*_pair("mul", a, b))


def div(a, b) -> Tensor:
    """``a / b`` elementwise with broadcasting."""
    return Div.apply(*_pair("div", a, b))


def neg(a: Tensor) -> Tensor:
    return Neg.apply(a)


def pow(a: Tensor, exponent) -> Tensor:  # noqa: A001 - mirrors the operator name
    """``a ** exponent``; ``exponent`` is a constant number."""
    if isinstance(exponent, Tensor):
        raise TypeError("pow: the exponent must be a number, not a Tensor (use exp(b * log(a)))")
    return Pow.apply(a, exponent)


def square(a: Tensor) -> Tensor:
    """``a * a`` elementwise (one op: the backward is 2 a g, with no exponent to carry)."""
    return Square.apply(a)


def exp(a: Tensor) -> Tensor:
    return Exp.apply(a)


def log(a: Tensor) -> Tensor:
    """Natural log. For log(sigmoid) or log(1 + exp) use log_sigmoid / softplus, which are stable."""
    return Log.apply(a)


def log1p(a: Tensor) -> Tensor:
    """``log(1 + a)``, accurate for tiny ``a`` (where ``1 + a`` rounds to 1 and log gives 0)."""
    return Log1p.apply(a)


def sqrt(a: Tensor) -> Tensor:
    return Sqrt.apply(a)


def abs(a: Tensor) -> Tensor:  # noqa: A001
    return Abs.apply(a)


def clip(a: Tensor, low=None, high=None) -> Tensor:
    """Clamp ``a`` into ``[low, high]`` (either bound may be None)."""
    if low is None and high is None:
        raise ValueError("clip: give at least one of low, high")
    return Clip.apply(a, low=low, high=high)


def maximum(a, b) -> Tensor:
    """Elementwise ``max(a, b)`` with broadcasting. At a tie (a = b) each input gets half the gradient."""
    return Maximum.apply(*_pair("maximum", a, b))


def minimum(a, b) -> Tensor:
    """Elementwise ``min(a, b)`` with broadcasting. At a tie (a = b) each input gets half the gradient."""
    return Minimum.apply(*_pair("minimum", a, b))


def where(cond, a, b) -> Tensor:
    """``a`` where ``cond`` is True, else ``b`` (NumPy's ``where``; the three broadcast together).

    ``cond``: a boolean array or Tensor (e.g. ``x.data > 0``), not differentiated; ``a``, ``b``:
    Tensors, arrays or numbers. The gradient goes to ``a`` where cond holds, to ``b`` elsewhere.
    """
    if isinstance(cond, Tensor):
        cond = cond.data
    cond = get_array_module(cond).asarray(cond)
    if cond.dtype != bool:
        raise TypeError(f"where: cond must be a boolean array (e.g. x.data > 0), got dtype {cond.dtype}")
    return Where.apply(a, b, cond=cond)


# ---- gradcheck cases (python -m scratchgen.gradcheck) ------------------------------------------
from ..gradcheck import register_case  # noqa: E402


def _positive(rng, shape):
    return rng.uniform(0.5, 2.0, shape)


register_case("add")(lambda rng: (add, [rng.standard_normal((3, 4)), rng.standard_normal((4,))]))
register_case("sub")(lambda rng: (sub, [rng.standard_normal((2, 1, 4)), rng.standard_normal((3, 1))]))
register_case("mul")(lambda rng: (mul, [rng.standard_normal((3, 4)), rng.standard_normal((3, 1))]))
register_case("div")(lambda rng: (div, [rng.standard_normal((3, 4)), _positive(rng, (1, 4))]))
register_case("neg")(lambda rng: (neg, [rng.standard_normal((3, 4))]))
register_case("pow")(lambda rng: (lambda a: pow(a, 3.0), [_positive(rng, (3, 4))]))
register_case("exp")(lambda rng: (exp, [rng.standard_normal((3, 4))]))
register_case("log")(lambda rng: (log, [_positive(rng, (3, 4))]))
register_case("sqrt")(lambda rng: (sqrt, [_positive(rng, (3, 4))]))
register_case("abs")(lambda rng: (abs, [_positive(rng, (3, 4)) * rng.choice([-1, 1], (3, 4))]))
register_case("clip")(lambda rng: (lambda a: clip(a, -0.5, 0.5), [rng.choice([-1.3, -0.2, 0.1, 0.3, 0.9], (3, 4)) + rng.uniform(-0.05, 0.05, (3, 4))]))
register_case("square")(lambda rng: (square, [rng.standard_normal((3, 4))]))
register_case("log1p")(lambda rng: (log1p, [rng.uniform(-0.5, 2.0, (3, 4))]))
register_case("maximum")(lambda rng: (maximum, [rng.standard_normal((3, 4)), rng.standard_normal((4,))]))
register_case("minimum")(lambda rng: (minimum, [rng.standard_normal((3, 1)), rng.standard_normal((3, 4))]))
register_case("where")(
    lambda rng: (lambda a, b, c=rng.random((3, 4)) < 0.5: where(c, a, b), [rng.standard_normal((3, 4)), rng.standard_normal((1, 4))])
)
