"""Backends and the kernel registry: the one switch between NumPy, Numba CPU, Numba CUDA and CuPy.

Every hot computation in scratchgen is a *kernel*: a plain function on raw arrays with a name
such as ``"conv2d_forward"``. The readable NumPy version lives next to the op that uses it
(``scratchgen/ops/conv.py`` registers ``conv2d_forward`` for the ``numpy`` backend); the
``kernels/`` package registers the same names for ``numba``, ``numba-cuda`` and ``cupy``.
An op's ``forward``/``backward`` calls ``kernel("conv2d_forward")(...)`` and never needs to
know which backend answered.

Choosing the backend (all three do the same thing)::

    scratchgen.set_backend("numba")          # API
    with scratchgen.use_backend("cupy"): ... # context manager
    SCRATCHGEN_BACKEND=numba python ...       # environment variable, read at import

Lookup rule: ``kernel(name)`` returns the current backend's implementation, else the first
one found along the backend's *fallback chain* (``numba -> numpy``; ``numba-cuda -> cupy ->
numpy``; ``cupy -> numpy``). The NumPy references are written with ``xp =
get_array_module(x)``, so on a GPU backend the fallback runs as CuPy on device arrays, never
as a hidden copy to the host. ``kernel_table()`` lists, for every kernel, which
implementation each backend really uses, so no fallback is silent.

Asking for a backend that cannot run (package missing, no GPU) raises
``BackendUnavailableError`` saying what is missing and how to install it.
"""
from __future__ import annotations

import contextlib
import importlib
import os
from typing import Callable, Dict, Iterator

import numpy as np

BACKENDS = ("numpy", "numba", "numba-cuda", "cupy")
GPU_BACKENDS = ("numba-cuda", "cupy")

FALLBACKS = {
    "numpy": ("numpy",),
    "numba": ("numba", "numpy"),
    "cupy": ("cupy", "numpy"),
    "numba-cuda": ("numba-cuda", "cupy", "numpy"),
}

# The module in ``kernels/`` that registers each accelerated backend's kernels. Importing it
# registers them; its ``check_available()`` raises BackendUnavailableError when it cannot run.
_BACKEND_MODULES = {
    "numba": "kernels.numba_cpu",
    "numba-cuda": "kernels.numba_cuda",
    "cupy": "kernels.cupy_backend",
}

_KERNELS: Dict[str, Dict[str, Callable]] = {}
_current_backend = "numpy"
_loaded_backends = {"numpy"}


class BackendUnavailableError(RuntimeError):
    """Raised when a backend is asked for but cannot run here."""


def register_kernel(name: str, backend: str = "numpy"):
    """Decorator: register ``fn`` as the ``backend`` implementation of kernel ``name``."""
    if backend not in BACKENDS:
        raise ValueError(f"register_kernel: unknown backend {backend!r}; choose one of {BACKENDS}")

    def decorate(fn: Callable) -> Callable:
        _KERNELS.setdefault(name, {})[backend] = fn
        return fn

    return decorate


def _load_backend(name: str) -> None:
    """Import the kernels module of backend ``name`` and check that it can run here."""
    if name not in BACKENDS:
        raise ValueError(f"unknown backend {name!r}; choose one of {', '.join(BACKENDS)}")
    if name in _loaded_backends:
        return
    module_name = _BACKEND_MODULES[name]
    try:
        module = importlib.import_module(module_name)
    except ImportError as error:
        extra = "numba" if name == "numba" else "cuda"
        raise BackendUnavailableError(
            f"backend {name!r} cannot be loaded ({error}); install it with "
            f"`pip install scratchgen[{extra}]`"
        ) from error
    module.check_available()
    _loaded_backends.add(name)


def set_backend(name: str) -> None:
    """Make ``name`` the current backend (loads and checks it first)."""
    global _current_backend
    _load_backend(name)
    _current_backend = name


def get_backend() -> str:
    """The name of the current backend."""
    return _current_backend


@contextlib.contextmanager
def use_backend(name: str) -> Iterator[str]:
    """Context manager: run the block with backend ``name``, then restore the previous one."""
    previous = get_backend()
    set_backend(name)
    try:
        yield name
    finally:
        set_backend(previous)


def kernel(name: str) -> Callable:
    """The implementation of kernel ``name`` that the current backend uses."""
    implementations = _KERNELS.get(name)
    if implementations is None:
        raise KeyError(f"no kernel named {name!r}; registered kernels: {sorted(_KERNELS)}")
    for backend in FALLBACKS[_current_backend]:
        if backend in implementations:
            return implementations[backend]
    raise KeyError(f"kernel {name!r} has no implementation usable by backend {_current_backend!r}")


def kernel_table() -> Dict[str, Dict[str, str]]:
    """For every kernel and every loaded backend: which implementation runs (no silent fallback)."""
    table = {}
    for name, implementations in sorted(_KERNELS.items()):
        row = {}
        for backend in BACKENDS:
            chosen = next((b for b in FALLBACKS[backend] if b in implementations), None)
            row[backend] = chosen or "-"
        table[name] = row
    return table


def registered_kernels() -> Dict[str, Dict[str, Callable]]:
    """The raw registry: kernel name -> {backend: function}. For parity tests and benchmarks."""
    return _KERNELS


def get_array_module(*arrays):
    """``cupy`` if any argument is a CuPy array, else ``numpy`` (Chainer's idiom).

    Reference kernels start with ``xp = get_array_module(x)`` so one text serves host and device.
    """
    for array in arrays:
        module = type(array).__module__
        if module.startswith("cupy"):
            import cupy

            return cupy
    return np


def _init_from_environment() -> None:
    name = os.environ.get("SCRATCHGEN_BACKEND")
    if name:
        set_backend(name)
