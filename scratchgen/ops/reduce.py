"""Reductions over axes: sum, mean, max, min, logsumexp, var, std (with ``keepdims``).

Backward of a reduction spreads the gradient back over the reduced axes. The one trick is to
put the reduced axes back as length-1 axes (``_expand``) so the gradient broadcasts against the
input:

    y = sum(x, axis)        dL/dx = expand(g)
    y = mean(x, axis)       dL/dx = expand(g) / n           (n = number of elements averaged)
    y = max(x, axis)        dL/dx = expand(g) * [x == max] / (number of ties)      (min alike)
    y = logsumexp(x, axis)  dL/dx = expand(g) * exp(x - y)  = expand(g) * softmax(x)
    y = var(x, axis, ddof)  dL/dx = expand(g) * 2 (x - mean) / (n - ddof)
    y = std(x, axis, ddof)  dL/dx = expand(g) * (x - mean) / ((n - ddof) y)    (0 where y = 0)

Ties in max and min share the gradient equally, so the result is a valid subgradient and the
sum of the input gradient equals the output gradient. In var, the mean's own dependence on x
drops out of the gradient because the centred values sum to 0. std has no derivative where
all the reduced elements are equal (y = 0); 0 is a subgradient there (std is a convex function,
smallest at such points), and it is what backward returns.

logsumexp is stable: with m = max x, log sum exp(x) = m + log sum exp(x - m), and the largest
exp is e^0 = 1, so nothing overflows (``log(sum(exp(x)))`` overflows at x = 89 in float32).
"""
from __future__ import annotations

from ..backend import get_array_module
from ..function import Function
from ..tensor import Tensor

__all__ = ["sum", "mean", "max", "min", "logsumexp", "var", "std"]


def _normalize_axes(op_name: str, axis, ndim: int):
    if axis is None:
        return tuple(range(ndim))
    axes = (axis,) if isinstance(axis, int) else tuple(axis)
    normalized = []
    for a in axes:
        if not -ndim <= a < ndim:
            raise ValueError(f"{op_name}: axis {a} is out of range for an input of {ndim} dimensions")
        normalized.append(a % ndim)
    return tuple(sorted(set(normalized)))


def _expand(grad, axes, keepdims: bool, xp):
    """Give ``grad`` back the reduced axes as length-1 axes so it broadcasts over the input."""
    if keepdims:
        return grad
    for axis in axes:
        grad = xp.expand_dims(grad, axis)
    return grad


class Sum(Function):
    @staticmethod
    def forward(ctx, x, axis=None, keepdims=False):
        ctx.axes = _normalize_axes("sum", axis, x.ndim)
        ctx.keepdims, ctx.shape = keepdims, x.shape
        return x.sum(axis=ctx.axes, keepdims=keepdims)

    @staticmethod
    def backward(ctx, grad):
        xp = get_array_module(grad)
        return xp.broadcast_to(_expand(grad, ctx.axes, ctx.keepdims, xp), ctx.shape)


class Mean(Function):
    @staticmethod
    def forward(ctx, x, axis=None, keepdims=False):
        ctx.axes = _normalize_axes("mean", axis, x.ndim)
        ctx.keepdims, ctx.shape = keepdims, x.shape
        ctx.count = 1
        for a in ctx.axes:
            ctx.count *= x.shape[a]
        return x.mean(axis=ctx.axes, keepdims=keepdims)

    @staticmethod
    def backward(ctx, grad):
        xp = get_array_module(grad)
        return xp.broadcast_to(_expand(grad, ctx.axes, ctx.keepdims, xp) / ctx.count, ctx.shape)


def _extremum_forward(ctx, x, axis, keepdims, name):
    """max or min (``name``) over axis, saving each element's share of the gradient (1 / ties at the extremum)."""
    ctx.axes = _normalize_axes(name, axis, x.ndim)
    ctx.keepdims = keepdims
    if x.size == 0:
        raise ValueError(f"{name}: cannot reduce an empty input of shape {x.shape}")
    y = getattr(x, name)(axis=ctx.axes, keepdims=True)
    is_extreme = x == y
    ctx.save_for_backward(is_extreme / is_extreme.sum(axis=ctx.axes, keepdims=True))
    return y if keepdims else y.squeeze(axis=ctx.axes)


def _extremum_backward(ctx, grad):
    (share,) = ctx.saved_arrays
    xp = get_array_module(grad)
    return _expand(grad, ctx.axes, ctx.keepdims, xp) * share.astype(grad.dtype, copy=False)


class Max(Function):
    @staticmethod
    def forward(ctx, x, axis=None, keepdims=False):
        return _extremum_forward(ctx, x, axis, keepdims, "max")

    backward = staticmethod(_extremum_backward)


class Min(Function):
    @staticmethod
    def forward(ctx, x, axis=None, keepdims=False):
        return _extremum_forward(ctx, x, axis, keepdims, "min")

    backward = staticmethod(_extremum_backward)


class LogSumExp(Function):
    op_name = "logsumexp"

    @staticmethod
    def forward(ctx, x, axis=None, keepdims=False):
        xp = get_array_module(x)
        ctx.axes = _normalize_axes("logsumexp", axis, x.ndim)
        ctx.keepdims = keepdims
        if x.size == 0:
            raise ValueError(f"logsumexp: cannot reduce an empty input of shape {x.shape}")
        m = x.max(axis=ctx.axes, keepdims=True)
        # A slice that is all -inf has m = -inf, and x - m would be -inf - (-inf) = NaN: shift by 0 there.
        m = xp.where(xp.isfinite(m), m, 0)
        e = xp.exp(x - m)
        total = e.sum(axis=ctx.axes, keepdims=True)
        y = m + xp.log(total)
        # dL/dx = g softmax(x) = g e / total; a slice of -inf (total = 0) gets gradient 0, not 0 / 0.
        ctx.save_for_backward(e / xp.where(total == 0, 1, total))
        return y if keepdims else y.squeeze(axis=ctx.axes)

    @staticmethod
    def backward(ctx, grad):
        (softmax,) = ctx.saved_arrays
        return _expand(grad, ctx.axes, ctx.keepdims, get_array_module(grad)) * softmax


def _centred(op_name, ctx, x, axis, ddof):
    """x - mean(x, axis) and the degrees of freedom n - ddof, with a clear error when there are none."""
    ctx.axes = _normalize_axes(op_name, axis, x.ndim)
    count = 1
    for a in ctx.axes:
        count *= x.shape[a]
    if count - ddof <= 0:
        raise ValueError(f"{op_name}: ddof={ddof} leaves no degrees of freedom for {count} element(s) per "
                         f"reduction (input shape {x.shape}, axis {axis})")
    ctx.dof = count - ddof
    return x - x.mean(axis=ctx.axes, keepdims=True)


class Var(Function):
    @staticmethod
    def forward(ctx, x, axis=None, keepdims=False, ddof=0):
        centred = _centred("var", ctx, x, axis, ddof)
        ctx.keepdims = keepdims
        ctx.save_for_backward(centred)
        return (centred * centred).sum(axis=ctx.axes, keepdims=keepdims) / ctx.dof

    @staticmethod
    def backward(ctx, grad):
        (centred,) = ctx.saved_arrays
        return _expand(grad, ctx.axes, ctx.keepdims, get_array_module(grad)) * (2 / ctx.dof) * centred


class Std(Function):
    @staticmethod
    def forward(ctx, x, axis=None, keepdims=False, ddof=0):
        xp = get_array_module(x)
        centred = _centred("std", ctx, x, axis, ddof)
        ctx.keepdims = keepdims
        y = xp.sqrt((centred * centred).sum(axis=ctx.axes, keepdims=True) / ctx.dof)
        ctx.save_for_backward(centred, y)
        return y if keepdims else y.squeeze(axis=ctx.axes)

    @staticmethod
    def backward(ctx, grad):
        centred, y = ctx.saved_arrays
        xp = get_array_module(grad)
        # Where y = 0 every centred value is 0 too: dividing by 1 there gives the subgradient 0, not 0 / 0.
        return _expand(grad, ctx.axes, ctx.keepdims, xp) * centred / (ctx.dof * xp.where(y == 0, 1, y))


def sum(x: Tensor, axis=None, keepdims: bool = False) -> Tensor:  # noqa: A001
    """Sum over ``axis`` (int, tuple or None for all)."""
    return Sum.apply(x, axis=axis, keepdims=keepdims)


def mean(x: Tensor, axis=None, keepdims: bool = False) -> Tensor:
    """Mean over ``axis`` (int, tuple or None for all)."""
    return Mean.apply(x, axis=axis, keepdims=keepdims)


def max(x: Tensor, axis=None, keepdims: bool = False) -> Tensor:  # noqa: A001
    """Maximum over ``axis``; tied maxima share the gradient equally."""
    return Max.apply(x, axis=axis, keepdims=keepdims)


def min(x: Tensor, axis=None, keepdims: bool = False) -> Tensor:  # noqa: A001
    """Minimum over ``axis``; tied minima share the gradient equally."""
    return Min.apply(x, axis=axis, keepdims=keepdims)


def logsumexp(x: Tensor, axis=None, keepdims: bool = False) -> Tensor:
    """``log(sum(exp(x), axis))`` without overflow (shifted by the maximum); the gradient is softmax(x)."""
    return LogSumExp.apply(x, axis=axis, keepdims=keepdims)


def var(x: Tensor, axis=None, keepdims: bool = False, ddof: int = 0) -> Tensor:
    """Variance over ``axis``, ``sum((x - mean)^2) / (n - ddof)``, as ``numpy.var`` (ddof=0: the
    maximum-likelihood estimate; ddof=1: the unbiased one). ``n - ddof`` must be positive."""
    return Var.apply(x, axis=axis, keepdims=keepdims, ddof=ddof)


def std(x: Tensor, axis=None, keepdims: bool = False, ddof: int = 0) -> Tensor:
    """Standard deviation over ``axis``, ``sqrt(var(x, axis, ddof))``, as ``numpy.std``. Where every
    reduced element is equal (std = 0) the gradient is 0, a subgradient."""
    return Std.apply(x, axis=axis, keepdims=keepdims, ddof=ddof)


# ---- gradcheck cases (python -m scratchgen.gradcheck) ------------------------------------------
from ..gradcheck import register_case  # noqa: E402

register_case("sum")(lambda rng: (lambda x: sum(x, axis=(0, 2), keepdims=True), [rng.standard_normal((2, 3, 4))]))
register_case("mean")(lambda rng: (lambda x: mean(x, axis=1), [rng.standard_normal((2, 3, 4))]))
register_case("max")(lambda rng: (lambda x: max(x, axis=-1), [rng.permutation(24).reshape(2, 3, 4) / 7.0]))
register_case("min")(lambda rng: (lambda x: min(x, axis=(0, 2)), [rng.permutation(24).reshape(2, 3, 4) / 7.0]))
register_case("logsumexp")(lambda rng: (lambda x: logsumexp(x, axis=1, keepdims=True), [rng.standard_normal((3, 4, 2)) * 3]))
register_case("var")(lambda rng: (lambda x: var(x, axis=0, ddof=1), [rng.standard_normal((4, 3))]))
register_case("std")(lambda rng: (lambda x: std(x, axis=(1, 2)), [rng.standard_normal((2, 3, 4))]))
