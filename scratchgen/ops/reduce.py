"""Reductions over axes: sum, mean, max (with ``keepdims``).

Backward of a reduction spreads the gradient back over the reduced axes. The one trick is to
put the reduced axes back as length-1 axes (``_expand``) so the gradient broadcasts against the
input:

    y = sum(x, axis)    dL/dx = expand(g)
    y = mean(x, axis)   dL/dx = expand(g) / n           (n = number of elements averaged)
    y = max(x, axis)    dL/dx = expand(g) * [x == max] / (number of ties)

Ties in max share the gradient equally, so the result is a valid subgradient and the sum of
the input gradient equals the output gradient.
"""
from __future__ import annotations

from ..backend import get_array_module
from ..function import Function
from ..tensor import Tensor


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


class Max(Function):
    @staticmethod
    def forward(ctx, x, axis=None, keepdims=False):
        ctx.axes = _normalize_axes("max", axis, x.ndim)
        ctx.keepdims = keepdims
        if x.size == 0:
            raise ValueError(f"max: cannot reduce an empty input of shape {x.shape}")
        y = x.max(axis=ctx.axes, keepdims=True)
        is_max = x == y
        ctx.save_for_backward(is_max / is_max.sum(axis=ctx.axes, keepdims=True))
        return y if keepdims else y.squeeze(axis=ctx.axes)

    @staticmethod
    def backward(ctx, grad):
        (share,) = ctx.saved_arrays
        xp = get_array_module(grad)
        return _expand(grad, ctx.axes, ctx.keepdims, xp) * share.astype(grad.dtype, copy=False)


def sum(x: Tensor, axis=None, keepdims: bool = False) -> Tensor:  # noqa: A001
    """Sum over ``axis`` (int, tuple or None for all)."""
    return Sum.apply(x, axis=axis, keepdims=keepdims)


def mean(x: Tensor, axis=None, keepdims: bool = False) -> Tensor:
    """Mean over ``axis`` (int, tuple or None for all)."""
    return Mean.apply(x, axis=axis, keepdims=keepdims)


def max(x: Tensor, axis=None, keepdims: bool = False) -> Tensor:  # noqa: A001
    """Maximum over ``axis``; tied maxima share the gradient equally."""
    return Max.apply(x, axis=axis, keepdims=keepdims)


# ---- gradcheck cases (python -m scratchgen.gradcheck) ------------------------------------------
from ..gradcheck import register_case  # noqa: E402

register_case("sum")(lambda rng: (lambda x: sum(x, axis=(0, 2), keepdims=True), [rng.standard_normal((2, 3, 4))]))
register_case("mean")(lambda rng: (lambda x: mean(x, axis=1), [rng.standard_normal((2, 3, 4))]))
register_case("max")(lambda rng: (lambda x: max(x, axis=-1), [rng.permutation(24).reshape(2, 3, 4) / 7.0]))
