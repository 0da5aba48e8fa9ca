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

Broadcasting is undone in one place, ``unbroadcast`` (in ``tensor.py``), called by the engine on
every gradient that ``backward`` returns: an op's backward may return a gradient of the
*broadcast* shape and never has to sum it back itself.

Keyword arguments of ``apply`` (stride, axis, masks, ...) are passed to ``forward`` as they
are and are never differentiated.
"""
from __future__ import annotations

from typing import Any, Tuple

from . import grad_mode
from .grad_mode import check_finite
from .tensor import Tensor

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
        arrays = []
        needs_grad = []
        float_dtype = None
        mixed = False
        for x in inputs:
            if isinstance(x, Tensor):
                data = x.data
                arrays.append(data)
                needs_grad.append(x.requires_grad)
                if data.dtype.kind == "f":
                    if float_dtype is None:
                        float_dtype = data.dtype
                    elif data.dtype != float_dtype:
                        mixed = True
            else:
                arrays.append(x)
                needs_grad.append(False)
        if mixed:
            _check_float_dtypes(cls.name(), inputs)
        needs_grad = tuple(needs_grad)
        record = grad_mode._grad_enabled and any(needs_grad)
        ctx = Context(needs_grad)
        output = cls.forward(ctx, *arrays, **params)
        if grad_mode._anomaly_mode:
            check_finite(output, cls.name(), "forward")
        result = Tensor(output, requires_grad=record)
        if record:
            result._node = Node(cls, ctx, inputs)
        return result


def _check_float_dtypes(op_name: str, inputs) -> None:
    """Refuse to mix float32 and float64 tensors in one op (NumPy would silently upcast)."""
    dtypes = {x.data.dtype for x in inputs if isinstance(x, Tensor) and x.data.dtype.kind == "f"}
    if len(dtypes) > 1:
        shapes = ", ".join(f"{x.shape} {x.dtype}" for x in inputs if isinstance(x, Tensor))
        raise TypeError(
            f"{op_name}: inputs mix floating dtypes {sorted(str(d) for d in dtypes)} ({shapes}); "
            f"convert with .astype() first"
        )
