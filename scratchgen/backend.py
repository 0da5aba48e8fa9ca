"""Backends and the kernel registry: the one switch between NumPy, Numba CPU, Numba CUDA and CuPy.

Every hot computation in scratchgen is a *kernel*: a plain function on raw arrays with a name
such as ``"im2col"``. The readable NumPy version lives next to the op that uses it
(``scratchgen/ops/conv.py`` registers ``im2col`` for the ``numpy`` backend); the
``kernels/`` package registers the same names for ``numba``, ``numba-cuda`` and ``cupy``.
An op's ``forward``/``backward`` calls ``kernel("im2col")(...)`` and never needs to
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

Some accelerated kernels exist but are deliberately *not* used: where NumPy's SIMD
transcendentals (AVX-512 ``tanh``, say) beat a scalar Numba loop, the Numba version is
registered with ``active=False`` and a note saying why. It stays importable for benchmarks
and parity tests (``shelved_kernels()``), the backend keeps the NumPy reference for that
name, and ``kernel_notes()`` / ``scratchgen info`` say so.

Asking for a backend that cannot run (package missing, no GPU, a driver or CUDA library
mismatch) raises ``BackendUnavailableError`` saying what is missing and how to install it.
Nothing ever falls back silently to another backend.
"""
from __future__ import annotations

import contextlib
import importlib
import os
from typing import Callable, Dict, Iterator, Tuple

import numpy as np

from .optional import MissingOptionalPackage

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
    "numba": "scratchgen.kernels.numba_cpu",
    "numba-cuda": "scratchgen.kernels.numba_cuda",
    "cupy": "scratchgen.kernels.cupy_backend",
}
_INSTALL_HINT = {
    "numba": "pip install scratchgen[numba]",
    "numba-cuda": "pip install scratchgen[cuda]",
    "cupy": "pip install scratchgen[cuda]",
}

_KERNELS: Dict[str, Dict[str, Callable]] = {}
# Implementations written but not used by their backend: name -> backend -> (function, why).
_SHELVED: Dict[str, Dict[str, Tuple[Callable, str]]] = {}
_current_backend = "numpy"
_loaded_backends = {"numpy"}


class BackendUnavailableError(RuntimeError):
    """Raised when a backend is asked for but cannot run here (the message says how to fix it)."""


class BackendPackageMissing(BackendUnavailableError, MissingOptionalPackage):
    """The backend's package (Numba, CuPy) is not installed: an optional package like any other."""


def register_kernel(name: str, backend: str = "numpy", *, active: bool = True, note: str = ""):
    """Decorator: register ``fn`` as the ``backend`` implementation of kernel ``name``.

    ``active=False`` shelves it instead: the backend keeps using the next implementation on its
    fallback chain (the NumPy reference) and ``note`` records why, for ``kernel_notes()``.
    """
    if backend not in BACKENDS:
        raise ValueError(f"register_kernel: unknown backend {backend!r}; choose one of {BACKENDS}")
    if not active and not note:
        raise ValueError(f"register_kernel: shelving {name!r} on {backend!r} needs a note saying why")

    def decorate(fn: Callable) -> Callable:
        if active:
            _KERNELS.setdefault(name, {})[backend] = fn
            _SHELVED.get(name, {}).pop(backend, None)
        else:
            _SHELVED.setdefault(name, {})[backend] = (fn, note)
            _KERNELS.get(name, {}).pop(backend, None)
        return fn

    return decorate


def _load_backend(name: str) -> None:
    """Import the kernels module of backend ``name`` and check that it can run here."""
    if name not in BACKENDS:
        raise ValueError(f"unknown backend {name!r}; choose one of {', '.join(BACKENDS)}")
    if name in _loaded_backends:
        return
    module_name = _BACKEND_MODULES[name]
    hint = _INSTALL_HINT[name]
    try:
        module = importlib.import_module(module_name)
    except ImportError as error:
        raise BackendPackageMissing(
            f"backend {name!r} cannot be loaded: {error}; install it with `{hint}`"
        ) from error
    except Exception as error:  # a CUDA library or driver mismatch fails at import with anything
        raise BackendUnavailableError(
            f"backend {name!r} failed to load ({type(error).__name__}: {error}); "
            f"check the CUDA driver and libraries, or reinstall with `{hint}`"
        ) from error
    module.check_available()
    _loaded_backends.add(name)


def set_backend(name: str) -> None:
    """Make ``name`` the current backend (loads and checks it first; raises if it cannot run)."""
    global _current_backend, _environment_error
    _load_backend(name)
    _current_backend = name
    _environment_error = None  # an explicit choice replaces a bad SCRATCHGEN_BACKEND


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
    if _current_backend not in FALLBACKS:
        raise _environment_error or BackendUnavailableError(f"backend {_current_backend!r} is not usable")
    implementations = _KERNELS.get(name)
    if implementations is None:
        raise KeyError(f"no kernel named {name!r}; registered kernels: {sorted(_KERNELS)}")
    for backend in FALLBACKS[_current_backend]:
        if backend in implementations:
            return implementations[backend]
    raise KeyError(f"kernel {name!r} has no implementation usable by backend {_current_backend!r}")


def kernel_table() -> Dict[str, Dict[str, str]]:
    """For every kernel and every backend: which implementation runs (no silent fallback).

    Only backends whose module has been imported have registered anything; call
    ``backend_status()`` first to load every backend that can load.
    """
    table = {}
    for name in sorted(set(_KERNELS) | set(_SHELVED)):
        implementations = _KERNELS.get(name, {})
        row = {}
        for backend in BACKENDS:
            chosen = next((b for b in FALLBACKS[backend] if b in implementations), None)
            row[backend] = chosen or "-"
        table[name] = row
    return table


def kernel_notes() -> Dict[str, Dict[str, str]]:
    """Kernel name -> backend -> why that backend keeps the NumPy reference for it."""
    return {name: {b: note for b, (_, note) in shelved.items()} for name, shelved in _SHELVED.items() if shelved}


def registered_kernels() -> Dict[str, Dict[str, Callable]]:
    """The raw registry: kernel name -> {backend: function}. For parity tests and benchmarks."""
    return _KERNELS


def shelved_kernels() -> Dict[str, Dict[str, Callable]]:
    """Implementations registered with ``active=False``: name -> {backend: function}."""
    return {name: {b: fn for b, (fn, _) in shelved.items()} for name, shelved in _SHELVED.items() if shelved}


def implementation(name: str, backend: str) -> Callable:
    """The function ``backend`` registered for ``name``, active or shelved (KeyError if none).

    Unlike ``kernel`` this never follows a fallback chain: benchmarks and parity tests use it to
    run exactly the implementation they name.
    """
    if backend in _KERNELS.get(name, {}):
        return _KERNELS[name][backend]
    if backend in _SHELVED.get(name, {}):
        return _SHELVED[name][backend][0]
    raise KeyError(f"backend {backend!r} has no implementation of kernel {name!r}")


FLOAT_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))  # what every accelerated kernel is compiled for


def one_float_dtype(arrays) -> bool:
    """True if ``arrays`` (a non-empty sequence) are all float32 or all float64: the one dtype check
    every backend makes before running its own kernel (anything else goes to the NumPy reference)."""
    dtype = arrays[0].dtype
    return dtype in FLOAT_DTYPES and all(a.dtype == dtype for a in arrays)


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


# ---- what can run here -----------------------------------------------------------------------
def backend_status(name: str) -> Tuple[bool, str]:
    """``(True, details)`` if backend ``name`` can run here, else ``(False, why and how to fix)``.

    Loads the backend's kernels module as a side effect (so ``kernel_table`` lists its kernels).
    """
    try:
        _load_backend(name)
    except BackendUnavailableError as error:
        return False, str(error)
    if name == "numpy":
        return True, f"numpy {np.__version__} (the reference)"
    module = importlib.import_module(_BACKEND_MODULES[name])
    info = getattr(module, "info", None)
    return True, info() if info is not None else "available"


def available_backends() -> Tuple[str, ...]:
    """The backends that can run on this machine, in ``BACKENDS`` order."""
    return tuple(name for name in BACKENDS if backend_status(name)[0])


def format_kernel_table() -> str:
    """``kernel_table()`` as text: one row per kernel, which implementation each backend runs."""
    table = kernel_table()
    notes = kernel_notes()
    width = max([len(name) for name in table] + [6])
    lines = [f"{'kernel':<{width}}  " + "  ".join(f"{b:<10}" for b in BACKENDS)]
    for name, row in table.items():
        cells = []
        for backend in BACKENDS:
            cell = row[backend]
            if backend in notes.get(name, {}):
                cell += "*"  # this backend has its own version but keeps the reference
            cells.append(f"{cell:<10}")
        lines.append(f"{name:<{width}}  " + "  ".join(cells))
    lines.append("(numpy = the reference; on the GPU backends it runs on CuPy arrays, never on the host)")
    kept = [(name, b, note) for name, by_backend in sorted(notes.items()) for b, note in by_backend.items()]
    if kept:
        lines.append("* keeps the NumPy reference although an own version exists:")
        lines.extend(f"    {name} on {b}: {note}" for name, b, note in kept)
    return "\n".join(lines)


_environment_error = None


def environment_error():
    """The ``BackendUnavailableError`` of a ``SCRATCHGEN_BACKEND`` that could not be used, else None."""
    return _environment_error


def _init_from_environment() -> None:
    """Apply ``SCRATCHGEN_BACKEND`` at import.

    A backend that cannot run is not an import-time traceback (``scratchgen info`` must still run
    and say what is wrong), and never a silent fallback either: the error is kept, the current
    backend becomes that unusable name, and the first kernel lookup raises it.
    """
    global _environment_error, _current_backend
    name = os.environ.get("SCRATCHGEN_BACKEND")
    if name:
        try:
            set_backend(name)
        except (BackendUnavailableError, ValueError) as error:
            _environment_error = BackendUnavailableError(f"SCRATCHGEN_BACKEND={name}: {error}")
            _current_backend = name
