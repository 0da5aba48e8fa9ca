"""Ops that move elements without changing them: reshape, transpose, squeeze, unsqueeze,
broadcast_to, slicing, concatenate, stack.

Each backward puts the gradient back where the elements came from:
    reshape      reshape the gradient to the input shape (squeeze and unsqueeze too: they are
                 reshapes that remove or add an axis of length 1)
    transpose    transpose the gradient by the inverse permutation
    broadcast_to sum the gradient over the broadcast axes - which the engine's ``unbroadcast``
                 does for every op, so this backward returns the gradient as it is
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

__all__ = ["reshape", "transpose", "squeeze", "unsqueeze", "broadcast_to", "getitem", "concatenate", "stack", "astype"]


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


class Squeeze(Function):
    @staticmethod
    def forward(ctx, x, axis=None):
        ctx.shape = x.shape
        if axis is None:
            axes = tuple(a for a, size in enumerate(x.shape) if size == 1)
        else:
            axes = (axis,) if isinstance(axis, int) else tuple(axis)
            for a in axes:
                if not -x.ndim <= a < x.ndim:
                    raise ValueError(f"squeeze: axis {a} is out of range for an input of shape {x.shape}")
                if x.shape[a] != 1:
                    raise ValueError(f"squeeze: axis {a} has length {x.shape[a]}, not 1 (input shape {x.shape})")
            axes = tuple(sorted({a % x.ndim for a in axes}))
        return x.squeeze(axis=axes)

    @staticmethod
    def backward(ctx, grad):
        return grad.reshape(ctx.shape)


class Unsqueeze(Function):
    @staticmethod
    def forward(ctx, x, axis=0):
        if not -(x.ndim + 1) <= axis <= x.ndim:
            raise ValueError(f"unsqueeze: axis {axis} is out of range for an input of shape {x.shape} "
                             f"(the new axis goes at -{x.ndim + 1}..{x.ndim})")
        ctx.shape = x.shape
        return get_array_module(x).expand_dims(x, axis)

    @staticmethod
    def backward(ctx, grad):
        return grad.reshape(ctx.shape)


class BroadcastTo(Function):
    op_name = "broadcast_to"

    @staticmethod
    def forward(ctx, x, shape=()):
        try:  # NumPy's rule: broadcasting the input against ``shape`` must give ``shape`` itself
            fits = tuple(np.broadcast_shapes(x.shape, shape)) == tuple(shape)
        except ValueError:
            fits = False
        if not fits:
            raise ValueError(f"broadcast_to: cannot broadcast an input of shape {x.shape} to {tuple(shape)}")
        return get_array_module(x).broadcast_to(x, shape)  # a read-only view, as NumPy's

    @staticmethod
    def backward(ctx, grad):
        # The gradient has the broadcast shape; the engine's unbroadcast sums it back to the input's.
        return grad


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


def squeeze(x: Tensor, axis=None) -> Tensor:
    """Remove axes of length 1: all of them (``axis=None``), or the given ones (an error if not length 1)."""
    return Squeeze.apply(x, axis=axis)


def unsqueeze(x: Tensor, axis: int) -> Tensor:
    """Insert an axis of length 1 at position ``axis`` (NumPy's ``expand_dims``, PyTorch's ``unsqueeze``)."""
    return Unsqueeze.apply(x, axis=axis)


def broadcast_to(x: Tensor, shape) -> Tensor:
    """``x`` broadcast to ``shape`` by NumPy's rules (a read-only view); the gradient is summed back."""
    return BroadcastTo.apply(x, shape=tuple(shape) if not isinstance(shape, int) else (shape,))


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
register_case("squeeze")(lambda rng: (lambda x: squeeze(x, axis=(0, 2)), [rng.standard_normal((1, 3, 1, 2))]))
register_case("unsqueeze")(lambda rng: (lambda x: unsqueeze(x, -1), [rng.standard_normal((2, 3))]))
register_case("broadcast_to")(lambda rng: (lambda x: broadcast_to(x, (2, 3, 4)), [rng.standard_normal((3, 1))]))
