"""Ops that move elements without changing them: reshape, transpose, slicing, concatenate, stack.

Each backward puts the gradient back where the elements came from:
    reshape      reshape the gradient to the input shape
    transpose    transpose the gradient by the inverse permutation
    x[index]     scatter-add the gradient into zeros of the input shape (``add.at`` so that a
                 repeated fancy index such as ``x[[0, 0]]`` adds up, as the math requires)
    concatenate  split the gradient at the same offsets
    stack        take slice ``i`` along the new axis for input ``i``
"""
from __future__ import annotations

import numpy as np

from ..backend import get_array_module
from ..function import Function
from ..tensor import Tensor


class Reshape(Function):
    @staticmethod
    def forward(ctx, x, shape):
        ctx.shape = x.shape
        try:
            return x.reshape(shape)
        except ValueError:
            raise ValueError(f"reshape: cannot reshape an input of shape {x.shape} ({x.size} elements) into {shape}") from None

    @staticmethod
    def backward(ctx, grad):
        return grad.reshape(ctx.shape), None


class Transpose(Function):
    @staticmethod
    def forward(ctx, x, axes=None):
        if axes is None:
            axes = tuple(reversed(range(x.ndim)))
        if sorted(a % max(x.ndim, 1) for a in axes) != list(range(x.ndim)):
            raise ValueError(f"transpose: axes {axes} are not a permutation of the {x.ndim} axes of shape {x.shape}")
        ctx.inverse = tuple(np.argsort([a % x.ndim for a in axes]))
        return x.transpose(axes)

    @staticmethod
    def backward(ctx, grad):
        return grad.transpose(ctx.inverse)


class GetItem(Function):
    @staticmethod
    def forward(ctx, x, index):
        ctx.shape, ctx.index = x.shape, index
        try:
            return x[index]
        except IndexError as error:
            raise IndexError(f"getitem: index {index!r} does not fit an input of shape {x.shape}: {error}") from None

    @staticmethod
    def backward(ctx, grad):
        xp = get_array_module(grad)
        full = xp.zeros(ctx.shape, dtype=grad.dtype)
        if _is_basic_index(ctx.index):
            full[ctx.index] = grad  # a basic slice never repeats an element
        else:
            xp.add.at(full, ctx.index, grad)
        return full, None


def _is_basic_index(index) -> bool:
    parts = index if isinstance(index, tuple) else (index,)
    return all(isinstance(p, (int, slice, type(None), type(Ellipsis))) for p in parts)


class Concatenate(Function):
    @staticmethod
    def forward(ctx, *arrays, axis=0):
        xp = get_array_module(*arrays)
        ndim = arrays[0].ndim
        for i, a in enumerate(arrays):
            rest = [s for d, s in enumerate(a.shape) if d != axis % ndim]
            first = [s for d, s in enumerate(arrays[0].shape) if d != axis % ndim]
            if a.ndim != ndim or rest != first:
                shapes = [tuple(b.shape) for b in arrays]
                raise ValueError(f"concatenate: shapes {shapes} differ outside axis {axis}")
        ctx.axis = axis
        ctx.offsets = np.cumsum([a.shape[axis] for a in arrays])[:-1]
        return xp.concatenate(arrays, axis=axis)

    @staticmethod
    def backward(ctx, grad):
        xp = get_array_module(grad)
        return tuple(xp.split(grad, ctx.offsets, axis=ctx.axis))


class Stack(Function):
    @staticmethod
    def forward(ctx, *arrays, axis=0):
        shapes = {tuple(a.shape) for a in arrays}
        if len(shapes) != 1:
            raise ValueError(f"stack: all inputs need the same shape, got {sorted(shapes)}")
        ctx.axis = axis
        return get_array_module(*arrays).stack(arrays, axis=axis)

    @staticmethod
    def backward(ctx, grad):
        xp = get_array_module(grad)
        return tuple(xp.take(grad, i, axis=ctx.axis) for i in range(grad.shape[ctx.axis]))


class AsType(Function):
    """Change the floating dtype; the gradient is cast back."""

    @staticmethod
    def forward(ctx, x, dtype):
        ctx.dtype = x.dtype
        return x.astype(dtype)

    @staticmethod
    def backward(ctx, grad):
        return grad.astype(ctx.dtype), None


def reshape(x: Tensor, shape) -> Tensor:
    return Reshape.apply(x, tuple(shape) if not isinstance(shape, int) else (shape,))


def transpose(x: Tensor, axes=None) -> Tensor:
    """Permute axes (reverse them when ``axes`` is None); the result is a non-contiguous view."""
    return Transpose.apply(x, axes=tuple(axes) if axes is not None else None)


def getitem(x: Tensor, index) -> Tensor:
    """``x[index]`` for ints, slices, None, Ellipsis and integer/boolean arrays."""
    if isinstance(index, Tensor):
        index = index.data
    if isinstance(index, tuple):
        index = tuple(i.data if isinstance(i, Tensor) else i for i in index)
    return GetItem.apply(x, index)


def concatenate(tensors, axis: int = 0) -> Tensor:
    tensors = list(tensors)
    if not tensors:
        raise ValueError("concatenate: needs at least one tensor")
    return Concatenate.apply(*tensors, axis=axis)


def stack(tensors, axis: int = 0) -> Tensor:
    tensors = list(tensors)
    if not tensors:
        raise ValueError("stack: needs at least one tensor")
    return Stack.apply(*tensors, axis=axis)


def astype(x: Tensor, dtype) -> Tensor:
    return AsType.apply(x, dtype)


# ---- gradcheck cases (python -m scratchgen.gradcheck) ------------------------------------------
from ..gradcheck import register_case  # noqa: E402

register_case("reshape")(lambda rng: (lambda x: reshape(x, (4, 6)), [rng.standard_normal((2, 3, 4))]))
register_case("transpose")(lambda rng: (lambda x: transpose(x, (2, 0, 1)), [rng.standard_normal((2, 3, 4))]))
register_case("getitem")(lambda rng: (lambda x: getitem(x, (slice(None), np.array([0, 2, 2]))), [rng.standard_normal((3, 4))]))
register_case("concatenate")(lambda rng: (lambda a, b: concatenate([a, b], axis=1), [rng.standard_normal((2, 3)), rng.standard_normal((2, 2))]))
register_case("stack")(lambda rng: (lambda a, b: stack([a, b], axis=1), [rng.standard_normal((2, 3)), rng.standard_normal((2, 3))]))
