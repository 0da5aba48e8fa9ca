"""Ops as classes: ``forward(ctx, *arrays)`` and ``backward(ctx, grad)`` on raw arrays.

A new op is a subclass of ``Function`` with two static methods::

    class Exp(Function):
        @staticmethod
        def forward(ctx, x):
            y = exp(x)
            ctx.save_for_backward(y)      # keep what backward needs, nothing more
            return y

        @staticmethod
        def backward(ctx, grad):
            (y,) = ctx.saved_arrays
            return grad * y               # one gradient per positional input

and is called as ``Exp.apply(tensor)``. ``apply`` unwraps tensors to arrays, runs forward,
and (when a gradient is needed) records the op on the output tensor so that
``Tensor.backward`` can call ``backward`` later.

Broadcasting is undone in one place, ``unbroadcast``, called by the engine on every
gradient that ``backward`` returns: an op's backward may return a gradient of the
*broadcast* shape and never has to sum it back itself.

Keyword arguments of ``apply`` (stride, axis, masks, ...) are passed to ``forward`` as they
are and are never differentiated.
"""
from __future__ import annotations

import contextlib
from typing import Any, Iterator, Tuple

import numpy as np

from .backend import get_array_module

_grad_enabled = True
_anomaly_mode = False


class AnomalyError(FloatingPointError):
    """Raised under ``detect_anomaly()`` on the first NaN/Inf an op produces."""


@contextlib.contextmanager
def no_grad() -> Iterator[None]:
    """Run the block without recording ops: outputs have ``requires_grad=False``."""
    global _grad_enabled
    previous = _grad_enabled
    _grad_enabled = False
    try:
        yield
    finally:
        _grad_enabled = previous


def is_grad_enabled() -> bool:
    return _grad_enabled


@contextlib.contextmanager
def detect_anomaly() -> Iterator[None]:
    """Raise ``AnomalyError`` on the first NaN/Inf produced in a forward or backward, naming the op.

    Costs one ``isfinite`` pass per op output, so it is off by default.
    """
    global _anomaly_mode
    previous = _anomaly_mode
    _anomaly_mode = True
    try:
        yield
    finally:
        _anomaly_mode = previous


def is_anomaly_enabled() -> bool:
    return _anomaly_mode


def check_finite(array, op_name: str, where: str) -> None:
    """Raise AnomalyError if ``array`` holds a NaN or Inf (used by anomaly mode)."""
    xp = get_array_module(array)
    if not np.issubdtype(array.dtype, np.floating):
        return
    finite = xp.isfinite(array)
    if not bool(finite.all()):
        bad = int(array.size - int(finite.sum()))
        first = tuple(int(i) for i in np.unravel_index(int(xp.argmin(finite.ravel())), array.shape))
        raise AnomalyError(
            f"{op_name}: {where} produced {bad} non-finite value(s) of {array.size} "
            f"(shape {array.shape}); first at index {first}: {array[first]!r}"
        )


def unbroadcast(grad, shape: Tuple[int, ...]):
    """Sum ``grad`` down to ``shape``: the adjoint of NumPy broadcasting.

    Broadcasting (a) prepends axes and (b) stretches axes of length 1. The gradient of a
    broadcast is the sum over every stretched or prepended axis. ``grad: broadcast shape``,
    returns ``shape``.
    """
    if grad.shape == tuple(shape):
        return grad
    extra = grad.ndim - len(shape)
    if extra < 0:
        raise ValueError(f"unbroadcast: gradient of shape {grad.shape} cannot reduce to {shape}")
    if extra:
        grad = grad.sum(axis=tuple(range(extra)))
    stretched = tuple(axis for axis, size in enumerate(shape) if size == 1 and grad.shape[axis] != 1)
    if stretched:
        grad = grad.sum(axis=stretched, keepdims=True)
    if grad.shape != tuple(shape):
        raise ValueError(f"unbroadcast: gradient of shape {grad.shape} does not fit input {shape}")
    return grad


class Context:
    """What an op's forward leaves for its backward.

    ``save_for_backward(*arrays)`` stores arrays; ``saved_arrays`` gives them back.
    ``needs_input_grad[i]`` tells backward whether input ``i`` wants a gradient, so it can skip
    work (e.g. conv backward skips the input gradient of the first layer).
    Any other attribute (``ctx.stride = 2``) may be set freely.
    """

    def __init__(self, needs_input_grad: Tuple[bool, ...]):
        self.needs_input_grad = needs_input_grad
        self.saved_arrays: Tuple[Any, ...] = ()

    def save_for_backward(self, *arrays) -> None:
        self.saved_arrays = arrays


class Node:
    """The record of one op application in the graph: the function, its context, its inputs."""

    __slots__ = ("function", "ctx", "inputs")

    def __init__(self, function, ctx: Context, inputs: tuple):
        self.function = function
        self.ctx = ctx
        self.inputs = inputs  # the positional inputs as given: Tensors or constants


class Function:
    """Base class of every differentiable op. Subclasses define ``forward`` and ``backward``."""

    @staticmethod
    def forward(ctx: Context, *arrays, **params):  # pragma: no cover - interface
        raise NotImplementedError

    @staticmethod
    def backward(ctx: Context, grad):  # pragma: no cover - interface
        raise NotImplementedError

    @classmethod
    def name(cls) -> str:
        return getattr(cls, "op_name", cls.__name__.lower())

    @classmethod
    def apply(cls, *inputs, **params):
        from .tensor import Tensor

        arrays = tuple(x.data if isinstance(x, Tensor) else x for x in inputs)
        _check_float_dtypes(cls.name(), inputs)
        needs_grad = tuple(isinstance(x, Tensor) and x.requires_grad for x in inputs)
        record = _grad_enabled and any(needs_grad)
        ctx = Context(needs_grad)
        output = cls.forward(ctx, *arrays, **params)
        if _anomaly_mode:
            check_finite(output, cls.name(), "forward")
        result = Tensor(output, requires_grad=record)
        if record:
            result._node = Node(cls, ctx, inputs)
        return result


def _check_float_dtypes(op_name: str, inputs) -> None:
    """Refuse to mix float32 and float64 tensors in one op (NumPy would silently upcast)."""
    from .tensor import Tensor

    dtypes = {x.data.dtype for x in inputs if isinstance(x, Tensor) and x.data.dtype.kind == "f"}
    if len(dtypes) > 1:
        shapes = ", ".join(f"{x.shape} {x.dtype}" for x in inputs if isinstance(x, Tensor))
        raise TypeError(
            f"{op_name}: inputs mix floating dtypes {sorted(str(d) for d in dtypes)} ({shapes}); "
            f"convert with .astype() first"
        )
