"""``Tensor``: an array plus what reverse-mode autodiff needs.

A tensor has ``data`` (a NumPy or CuPy array), ``requires_grad`` and ``grad``. A tensor made by
an op also remembers that op (``_node``: the ``Function``, its ``Context`` and its inputs).
``loss.backward()`` walks that graph from the loss back to the leaves:

1. an *iterative* depth-first search orders the nodes so that every tensor comes after all the
   tensors computed from it (a topological order; no recursion, so no recursion limit on deep
   graphs such as a 10,000-step unrolled loop);
2. walking that order, each op's ``backward`` turns the gradient of its output into gradients
   of its inputs, ``unbroadcast`` sums them to the inputs' shapes, and they are added up;
3. leaves (tensors made by the user, e.g. parameters) *accumulate*: ``leaf.grad += g``.

Calling backward twice: by default ``backward`` frees the graph it walked (the saved arrays
of every op), so a second ``backward`` through the same graph raises ``RuntimeError``. Pass
``retain_graph=True`` to keep it; a second call then *adds* the same gradients into the leaves
again (call ``zero_grad`` between calls to start afresh), exactly like PyTorch.
"""
from __future__ import annotations

from typing import Optional

import numpy as np

from . import grad_mode
from .backend import get_array_module
from .grad_mode import check_finite


class Tensor:
    """An array with an optional gradient. ``data: any shape``; ``grad``: same shape, or None."""

    __array_priority__ = 1000  # make ``ndarray + Tensor`` call Tensor.__radd__

    def __init__(self, data, requires_grad: bool = False, dtype=None):
        if type(data) is np.ndarray:  # the common case (every op output on the host): nothing to convert
            if dtype is not None and data.dtype != dtype:
                data = data.astype(dtype)
        else:
            if isinstance(data, Tensor):
                data = data.data
            if get_array_module(data) is np:
                data = np.asarray(data, dtype=dtype)
            elif dtype is not None:
                data = data.astype(dtype, copy=False)
        if requires_grad and data.dtype.kind != "f":
            raise TypeError(f"Tensor: only floating tensors can require grad, got dtype {data.dtype}")
        self.data = data
        self.requires_grad = bool(requires_grad)
        self.grad = None
        self.name: Optional[str] = None
        self._node = None  # set by Function.apply on op outputs
        self._retains_grad = False

    # ---- basic facts -------------------------------------------------------------------
    @property
    def shape(self):
        return self.data.shape

    @property
    def ndim(self) -> int:
        return self.data.ndim

    @property
    def dtype(self):
        return self.data.dtype

    @property
    def size(self) -> int:
        return self.data.size

    @property
    def is_leaf(self) -> bool:
        return self._node is None

    def __len__(self) -> int:
        return len(self.data)

    def __repr__(self) -> str:
        grad = ", requires_grad=True" if self.requires_grad else ""
        op = f", op={self._node.function.name()}" if self._node is not None else ""
        return f"Tensor({self.data!r}{grad}{op})"

    def item(self) -> float:
        return self.data.item()

    def numpy(self) -> np.ndarray:
        """The data as a host NumPy array (copies from the GPU if needed)."""
        if get_array_module(self.data) is np:
            return self.data
        return self.data.get()

    # ---- interop: NumPy's array protocol and DLPack ----------------------------------------------
    def __array__(self, dtype=None, copy=None) -> np.ndarray:
        """``np.asarray(t)``: the data itself on the host (no copy), or a host copy of GPU data."""
        array = self.numpy()
        if dtype is not None and array.dtype != dtype:
            return array.astype(dtype)
        return array.copy() if copy else array

    def __dlpack__(self, *args, **kwargs):
        """DLPack export of the data (``torch.from_dlpack(t)``, ``cupy.from_dlpack(t)``): no copy."""
        return self.data.__dlpack__(*args, **kwargs)

    def __dlpack_device__(self):
        return self.data.__dlpack_device__()

    @property
    def device(self):
        """Where the data lives: ``Device("cpu")`` or ``Device("cuda", i)`` (prints as "cpu"/"cuda:i")."""
        from .device import device_of

        return device_of(self.data)

    def to(self, device) -> "Tensor":
        """This tensor on ``device`` ("cpu", "cuda", "cuda:i"): itself if already there, else a copy.

        The copy is a new *leaf* with the same ``requires_grad`` (moving is not an op: move
        inputs and parameters before building the graph, never inside a training step).
        """
        from .device import device_of, parse_device, to_device

        target = parse_device(device)
        current = device_of(self.data)
        if current.kind == target.kind and (target.index is None or target.index == current.index):
            return self
        return Tensor(to_device(self.data, target), requires_grad=self.requires_grad)

    def detach(self) -> "Tensor":
        """A new leaf sharing this tensor's data, cut from the graph."""
        return Tensor(self.data)

    def astype(self, dtype) -> "Tensor":
        from .ops import shape as shape_ops

        return shape_ops.astype(self, dtype)

    def retain_grad(self) -> "Tensor":
        """Keep ``.grad`` on this non-leaf tensor after backward (for inspection)."""
        self._retains_grad = True
        return self

    def zero_grad(self) -> None:
        self.grad = None

    # ---- reverse mode ----------------------------------------------------------------------
    def backward(self, grad=None, retain_graph: bool = False) -> None:
        """Accumulate d(self)/d(leaf) into ``leaf.grad`` for every leaf that requires grad.

        ``grad``: the gradient of some scalar with respect to ``self`` (same shape); may be
        omitted only when ``self`` has one element (then it is 1).
        """
        if not self.requires_grad:
            raise RuntimeError("backward: this tensor does not require grad (no input requires grad, or made under no_grad())")
        xp = get_array_module(self.data)
        if grad is None:
            if self.data.size != 1:
                raise RuntimeError(f"backward: grad can be omitted only for a single-element tensor, got shape {self.shape}")
            grad = xp.ones_like(self.data)
        else:
            grad = grad.data if isinstance(grad, Tensor) else xp.asarray(grad, dtype=self.data.dtype)
            if grad.shape != self.shape:
                raise ValueError(f"backward: grad has shape {grad.shape}, tensor has shape {self.shape}")

        order = _topological_order(self)
        anomaly = grad_mode.is_anomaly_enabled()
        grads = {id(self): grad}
        kept = {id(grad)}  # arrays that must not become a .grad as they are: the caller's, and each one handed out
        for tensor in reversed(order):
            g = grads.pop(id(tensor), None)
            if g is None:
                continue
            node = tensor._node
            if node is None or tensor._retains_grad:
                if tensor.grad is not None:
                    tensor.grad = tensor.grad + g
                elif retain_graph or id(g) in kept or not _owns_memory(g):
                    # A fresh array: ``g`` may be a read-only broadcast view, shared with another
                    # input, or (retain_graph) an array an op keeps for the next backward.
                    tensor.grad = g.copy()
                else:
                    tensor.grad = g  # an array the op's backward made for this gradient alone: no copy
                    kept.add(id(g))
            if node is None:
                continue
            if node.ctx is None:
                raise RuntimeError(
                    f"backward: the graph through op {node.function.name()!r} was already freed by an "
                    f"earlier backward; pass retain_graph=True to the first call to go through it twice"
                )
            input_grads = node.function.backward(node.ctx, g)
            if not isinstance(input_grads, tuple):
                input_grads = (input_grads,)
            if len(input_grads) != len(node.inputs):
                raise RuntimeError(
                    f"{node.function.name()}.backward returned {len(input_grads)} gradients for "
                    f"{len(node.inputs)} inputs"
                )
            for parent, parent_grad in zip(node.inputs, input_grads):
                if not (isinstance(parent, Tensor) and parent.requires_grad) or parent_grad is None:
                    continue
                if parent_grad.shape != parent.data.shape:
                    parent_grad = unbroadcast(parent_grad, parent.data.shape)
                if parent_grad.dtype != parent.data.dtype:
                    parent_grad = parent_grad.astype(parent.data.dtype)
                if anomaly:
                    check_finite(parent_grad, node.function.name(), "backward")
                key = id(parent)
                grads[key] = parent_grad if key not in grads else grads[key] + parent_grad
            if not retain_graph:
                node.ctx = None

    # ---- operators (the ops themselves live in scratchgen/ops) -----------------------------
    def __add__(self, other):
        return _ops().add(self, other)

    def __radd__(self, other):
        return _ops().add(other, self)

    def __sub__(self, other):
        return _ops().sub(self, other)

    def __rsub__(self, other):
        return _ops().sub(other, self)

    def __mul__(self, other):
        return _ops().mul(self, other)

    def __rmul__(self, other):
        return _ops().mul(other, self)

    def __truediv__(self, other):
        return _ops().div(self, other)

    def __rtruediv__(self, other):
        return _ops().div(other, self)

    def __neg__(self):
        return _ops().neg(self)

    def __pow__(self, exponent):
        return _ops().pow(self, exponent)

    def __matmul__(self, other):
        return _ops().matmul(self, other)

    def __rmatmul__(self, other):
        return _ops().matmul(other, self)

    def __getitem__(self, index):
        return _ops().getitem(self, index)

    @property
    def T(self):
        return _ops().transpose(self)

    def reshape(self, *shape):
        if len(shape) == 1 and isinstance(shape[0], (tuple, list)):
            shape = tuple(shape[0])
        return _ops().reshape(self, shape)

    def transpose(self, *axes):
        if len(axes) == 1 and isinstance(axes[0], (tuple, list)):
            axes = tuple(axes[0])
        return _ops().transpose(self, axes or None)

    def sum(self, axis=None, keepdims=False):
        return _ops().sum(self, axis=axis, keepdims=keepdims)

    def mean(self, axis=None, keepdims=False):
        return _ops().mean(self, axis=axis, keepdims=keepdims)

    def max(self, axis=None, keepdims=False):
        return _ops().max(self, axis=axis, keepdims=keepdims)

    def min(self, axis=None, keepdims=False):
        return _ops().min(self, axis=axis, keepdims=keepdims)

    def exp(self):
        return _ops().exp(self)

    def log(self):
        return _ops().log(self)

    def sqrt(self):
        return _ops().sqrt(self)

    def abs(self):
        return _ops().abs(self)

    def clip(self, low, high):
        return _ops().clip(self, low, high)


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


def _ops():
    from . import ops

    return ops


def _owns_memory(array) -> bool:
    """True for a writable array that is not a view of another (NumPy or CuPy)."""
    if getattr(array, "base", 0) is not None:
        return False
    return bool(getattr(getattr(array, "flags", None), "writeable", True))


def _topological_order(root: Tensor):
    """Tensors reachable from ``root``, each after all of its inputs. Iterative DFS, post-order."""
    order, visited = [], set()
    stack = [(root, False)]
    while stack:
        tensor, inputs_done = stack.pop()
        if inputs_done:
            order.append(tensor)
            continue
        if id(tensor) in visited:
            continue
        visited.add(id(tensor))
        stack.append((tensor, True))
        if tensor._node is not None:
            for parent in tensor._node.inputs:
                if isinstance(parent, Tensor) and parent.requires_grad and id(parent) not in visited:
                    stack.append((parent, False))
    return order


def from_dlpack(x, requires_grad: bool = False) -> Tensor:
    """A Tensor sharing the memory of any DLPack producer (a PyTorch or CuPy tensor, a NumPy array):
    NumPy on the host, CuPy for CUDA memory. No copy."""
    device_type = x.__dlpack_device__()[0] if hasattr(x, "__dlpack_device__") else 1
    if device_type == 1:  # kDLCPU
        return Tensor(np.from_dlpack(x), requires_grad=requires_grad)
    import cupy

    return Tensor(cupy.from_dlpack(x), requires_grad=requires_grad)


def as_tensor(x, dtype=None) -> Tensor:
    """``x`` if it is a Tensor, else a new constant Tensor around it."""
    return x if isinstance(x, Tensor) else Tensor(x, dtype=dtype)
