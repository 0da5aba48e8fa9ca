"""``Parameter`` and ``Module``: the containers that models are built from.

A ``Module`` owns three kinds of state, each found by *assignment* (``__setattr__``):

    self.weight = Parameter(...)     a trainable tensor          -> parameters(), state_dict()
    self.encoder = Linear(...)       a sub-module                -> searched recursively
    self.register_buffer("running_mean", array)
                                     a non-trainable array       -> buffers(), state_dict()
                                     (batch-norm running statistics)

Names are dotted paths: ``encoder.0.weight``. ``state_dict()`` maps every name to a copy of
its array; ``save(path)`` writes it to an ``.npz`` file and ``load(path)`` reads it back with
``allow_pickle=False``, so a checkpoint is plain arrays and loading one can never run code.
``load_state_dict`` copies *into* the existing arrays, so an optimiser built on the model keeps
working after a load.

``training`` (set by ``train()`` / ``eval()``, recursively) switches dropout and batch norm
between their training and inference behaviour.

Devices and dtypes: ``_apply(fn)`` replaces every parameter's, gradient's and buffer's array
by ``fn(array)``; ``to(device=..., dtype=...)`` is built on it ("cpu" moves to NumPy, "cuda"
to CuPy). Parameter objects keep their identity, but an optimiser's state arrays do not move:
move (or cast) the model before building its optimiser.
"""
from __future__ import annotations

import os
from collections import OrderedDict
from typing import Callable, Dict, Iterator, List, NamedTuple, Optional, Tuple

import numpy as np

from ..device import to_numpy
from ..backend import get_array_module
from ..tensor import Tensor

__all__ = ["Parameter", "Module", "StateDictError", "LoadResult"]


class Parameter(Tensor):
    """A trainable leaf tensor: ``requires_grad=True`` by default, found by ``Module.parameters()``."""

    def __init__(self, data, requires_grad: bool = True, dtype=None):
        super().__init__(data, requires_grad=requires_grad, dtype=dtype)

    def __repr__(self) -> str:
        return f"Parameter(shape={self.shape}, dtype={self.dtype}, requires_grad={self.requires_grad})"


class StateDictError(ValueError):
    """A state dict does not fit the module (missing or unexpected keys, or wrong shapes)."""


class LoadResult(NamedTuple):
    missing_keys: List[str]
    unexpected_keys: List[str]


def _raw_value(value):
    """A checkpoint entry as an array: Tensors give their data, lists and scalars become NumPy arrays."""
    value = value.data if isinstance(value, Tensor) else value
    return value if hasattr(value, "shape") and hasattr(value, "dtype") else np.asarray(value)



class Module:
    """Base class of every layer and model: subclasses set attributes in ``__init__`` and define ``forward``."""

    def __init__(self):
        # object.__setattr__ because our own __setattr__ needs these dicts to exist already.
        object.__setattr__(self, "_parameters", OrderedDict())
        object.__setattr__(self, "_modules", OrderedDict())
        object.__setattr__(self, "_buffers", OrderedDict())
        object.__setattr__(self, "training", True)

    # ---- registration --------------------------------------------------------------------------
    def __setattr__(self, name: str, value) -> None:
        if "_parameters" not in self.__dict__:
            raise AttributeError(
                f"{type(self).__name__}: call super().__init__() before assigning attribute {name!r}"
            )
        params, modules, buffers = self._parameters, self._modules, self._buffers
        if isinstance(value, Parameter):
            self._forget(name)
            params[name] = value
        elif isinstance(value, Module):
            self._forget(name)
            modules[name] = value
        elif name in buffers:
            # Re-assigning a registered buffer (e.g. after moving it) keeps it a buffer.
            if value is not None and (isinstance(value, Tensor) or not hasattr(value, "shape")):
                raise TypeError(f"{type(self).__name__}: buffer {name!r} must be a raw array, got {type(value).__name__}")
            buffers[name] = value
        else:
            # A plain attribute (including None over a former parameter: ``self.bias = None``).
            self._forget(name)
            object.__setattr__(self, name, value)

    def _forget(self, name: str) -> None:
        for registry in (self._parameters, self._modules, self._buffers):
            registry.pop(name, None)
        self.__dict__.pop(name, None)

    def __getattr__(self, name: str):
        # Only called when normal lookup fails: registered things live in the three dicts.
        # ``self.__dict__.get`` (not ``self._parameters``) so copy/deepcopy of a half-built
        # object cannot recurse.
        for registry in ("_parameters", "_modules", "_buffers"):
            entries = self.__dict__.get(registry)
            if entries is not None and name in entries:
                return entries[name]
        raise AttributeError(f"{type(self).__name__} has no attribute {name!r}")

    def __delattr__(self, name: str) -> None:
        if any(name in r for r in (self._parameters, self._modules, self._buffers)):
            self._forget(name)
        else:
            object.__delattr__(self, name)

    def register_parameter(self, name: str, param: Optional[Parameter]) -> None:
        """Same as ``setattr(self, name, param)``; ``None`` means "no such parameter" (e.g. no bias)."""
        if param is not None and not isinstance(param, Parameter):
            raise TypeError(f"register_parameter: {name!r} must be a Parameter or None, got {type(param).__name__}")
        setattr(self, name, param)

    def register_buffer(self, name: str, array) -> None:
        """Register a non-trainable array saved in ``state_dict`` (running statistics and the like)."""
        if not hasattr(array, "shape") or isinstance(array, Tensor):
            raise TypeError(f"register_buffer: {name!r} must be a raw array (NumPy or CuPy), got {type(array).__name__}")
        self._forget(name)
        self._buffers[name] = array

    # ---- walking the tree -----------------------------------------------------------------------
    def named_modules(self, prefix: str = "") -> Iterator[Tuple[str, "Module"]]:
        """``(dotted name, module)`` for this module ("" for itself) and every descendant, each once."""
        seen = set()
        stack = [(prefix, self)]
        while stack:
            name, module = stack.pop()
            if id(module) in seen:
                continue
            seen.add(id(module))
            yield name, module
            children = [(f"{name}.{child}" if name else child, sub) for child, sub in module._modules.items()]
            stack.extend(reversed(children))  # reversed so children come out in definition order

    def modules(self) -> List["Module"]:
        return [m for _, m in self.named_modules()]

    def named_children(self) -> Iterator[Tuple[str, "Module"]]:
        return iter(self._modules.items())

    def children(self) -> List["Module"]:
        return list(self._modules.values())

    def _named_entries(self, registry: str, unique: bool) -> Iterator[Tuple[str, object]]:
        seen = set()
        for module_name, module in self.named_modules():
            for name, value in getattr(module, registry).items():
                if value is None:
                    continue
                if unique and id(value) in seen:
                    continue
                seen.add(id(value))
                yield (f"{module_name}.{name}" if module_name else name), value

    def named_parameters(self) -> Iterator[Tuple[str, Parameter]]:
        """``(dotted name, parameter)``; a parameter shared by two layers (tied weights) appears once."""
        return self._named_entries("_parameters", unique=True)

    def parameters(self) -> List[Parameter]:
        """Every parameter, each once, in definition order (what an optimiser takes)."""
        return [p for _, p in self.named_parameters()]

    def named_buffers(self) -> Iterator[Tuple[str, object]]:
        return self._named_entries("_buffers", unique=True)

    def buffers(self) -> List[object]:
        return [b for _, b in self.named_buffers()]

    def num_parameters(self, trainable_only: bool = False) -> int:
        """Total number of parameter elements (only those with ``requires_grad`` if asked)."""
        return sum(p.size for p in self.parameters() if p.requires_grad or not trainable_only)

    # ---- modes and gradients --------------------------------------------------------------------
    def train(self, mode: bool = True) -> "Module":
        """Set ``training`` on this module and every descendant; returns self."""
        for module in self.modules():
            object.__setattr__(module, "training", bool(mode))
        return self

    def eval(self) -> "Module":
        return self.train(False)

    def zero_grad(self) -> None:
        """Forget every parameter's gradient (``grad = None``; the next backward starts afresh)."""
        for p in self.parameters():
            p.grad = None

    def requires_grad_(self, flag: bool = True) -> "Module":
        """Freeze (``False``) or unfreeze every parameter, e.g. a GAN's discriminator during the G step."""
        for p in self.parameters():
            p.requires_grad = bool(flag)
        return self

    # ---- calling ---------------------------------------------------------------------------------
    def forward(self, *args, **kwargs):  # pragma: no cover - interface
        raise NotImplementedError(f"{type(self).__name__} must define forward()")

    def __call__(self, *args, **kwargs):
        return self.forward(*args, **kwargs)

    # ---- state dicts and checkpoints -------------------------------------------------------------
    def state_dict(self) -> "OrderedDict[str, object]":
        """Dotted name -> a copy of the array, for every parameter and buffer.

        Shared parameters appear under every name that reaches them, so the dict describes the
        architecture, not the memory layout.
        """
        state = OrderedDict()
        for name, p in self._named_entries("_parameters", unique=False):
            state[name] = p.data.copy()
        for name, b in self._named_entries("_buffers", unique=False):
            state[name] = b.copy()
        return state

    def _state_targets(self) -> Dict[str, Tuple[str, "Module", str]]:
        """Dotted name -> (kind, owning module, local name) for every parameter and buffer."""
        targets = {}
        for module_name, module in self.named_modules():
            for kind, registry in (("parameter", module._parameters), ("buffer", module._buffers)):
                for local, value in registry.items():
                    if value is not None:
                        targets[f"{module_name}.{local}" if module_name else local] = (kind, module, local)
        return targets

    def load_state_dict(self, state, strict: bool = True) -> LoadResult:
        """Copy ``state``'s arrays into this module's parameters and buffers, in place.

        ``strict=True`` (default) raises ``StateDictError`` listing every missing key, every
        unexpected key and every shape mismatch (with both shapes) before changing anything.
        ``strict=False`` loads the keys that match and returns ``(missing_keys, unexpected_keys)``;
        shape mismatches are errors either way. Floating values are cast to the model's dtype.
        """
        targets = self._state_targets()
        missing = [k for k in targets if k not in state]
        unexpected = [k for k in state if k not in targets]
        problems = []
        values = {key: _raw_value(state[key]) for key in targets if key in state}
        for key, value in values.items():
            kind, module, local = targets[key]
            current = module._parameters[local].data if kind == "parameter" else module._buffers[local]
            if tuple(value.shape) != current.shape:
                problems.append(f"shape mismatch for {key!r}: checkpoint has {tuple(value.shape)}, model has {current.shape}")
            elif value.dtype.kind != current.dtype.kind:
                problems.append(f"dtype mismatch for {key!r}: checkpoint has {value.dtype}, model has {current.dtype}")
        if strict:
            if missing:
                problems.insert(0, f"missing keys {missing}")
            if unexpected:
                problems.insert(1 if missing else 0, f"unexpected keys {unexpected}")
        if problems:
            raise StateDictError(f"load_state_dict({type(self).__name__}): " + "; ".join(problems))

        for key, value in values.items():
            kind, module, local = targets[key]
            current = module._parameters[local].data if kind == "parameter" else module._buffers[local]
            xp = get_array_module(current)
            current[...] = xp.asarray(value if get_array_module(value) is xp else to_numpy(value), dtype=current.dtype)
        return LoadResult(missing, unexpected)

    def save(self, path) -> None:
        """Write ``state_dict()`` to ``path`` as an uncompressed ``.npz`` (host arrays, no pickle)."""
        np.savez(path, **{k: to_numpy(v) for k, v in self.state_dict().items()})

    def load(self, path, strict: bool = True) -> "Module":
        """Load a checkpoint written by ``save`` (read with ``allow_pickle=False``); returns self."""
        path = str(path)
        if not os.path.exists(path) and os.path.exists(path + ".npz"):
            path += ".npz"  # np.savez appended the extension when saving
        with np.load(path, allow_pickle=False) as archive:
            state = {key: archive[key] for key in archive.files}
        self.load_state_dict(state, strict=strict)
        return self

    # ---- devices and dtypes ----------------------------------------------------------------------
    def _apply(self, fn: Callable) -> "Module":
        """Replace every parameter's data (and grad) and every buffer by ``fn(array)``; returns self."""
        for module in self.modules():
            for p in module._parameters.values():
                if p is None:
                    continue
                p.data = fn(p.data)
                if p.grad is not None:
                    p.grad = fn(p.grad)
            for name, b in list(module._buffers.items()):
                if b is not None:
                    module._buffers[name] = fn(b)
        return self

    def to(self, device: Optional[str] = None, dtype=None) -> "Module":
        """Move to ``device`` ("cpu" or "cuda") and/or cast floating arrays to ``dtype``; returns self.

        Shared parameters are moved once (they are the same Parameter object).
        """
        if dtype is not None:
            dtype = np.dtype(dtype)
            if dtype.kind != "f":
                raise TypeError(f"Module.to: dtype must be floating, got {dtype}")
            self._apply(lambda a: a.astype(dtype, copy=False) if a.dtype.kind == "f" else a)
        if device is not None:
            self._apply(_device_mover(device))
        return self

    # ---- printing --------------------------------------------------------------------------------
    def extra_repr(self) -> str:
        """The text inside the parentheses of this module's repr (layers override it)."""
        return ""

    def __repr__(self) -> str:
        lines = [f"({name}): " + repr(module).replace("\n", "\n  ") for name, module in self._modules.items()]
        extra = self.extra_repr()
        if not lines:
            return f"{type(self).__name__}({extra})"
        body = "\n  ".join(([extra] if extra else []) + lines)
        return f"{type(self).__name__}(\n  {body}\n)"


def _device_mover(device: str) -> Callable:
    """``array -> array on device``; a missing GPU or CuPy raises BackendUnavailableError saying why."""
    from ..device import parse_device, to_device

    target = parse_device(device)  # "cpu", "cuda", "cuda:i"; anything else is a ValueError
    return lambda array: to_device(array, target)
