"""How every Numba CPU kernel is compiled, and the array plumbing around it.

``jit(fn)`` is ``numba.njit`` with the options this package uses everywhere:

* ``parallel=True``: a ``prange`` loop is split over the Numba threads - when its arrays have
  at least ``PARALLEL_MIN`` elements and more than one thread is allowed (``ThreadedLoop``).
  Such a function is compiled twice, lazily: a *serial* version (``prange`` runs as ``range``)
  for small inputs and one-thread runs, and the parallel one. Calling a parallel dispatcher
  costs ~6 us even on one thread (it sets up the thread pool's scheduling); the serial one
  ~1 us, which matters for the dozens of small loops of one training step.
* no fastmath by default, so that a loop doing the reference's arithmetic in the reference's
  order gives bit-identical results. ``fma=True`` (loops around the polynomials of
  ``_math.py``) allows only fused multiply-add (``fastmath={"contract"}``): it makes those
  loops ~1.8x faster and changes results by at most an ulp per operation. Full fastmath is
  never used: it assumes that no NaN or Inf ever occurs, which would break NaN propagation
  (and so ``detect_anomaly``). Reductions (batch-norm statistics) opt in to
  ``reassociate=True``: a float sum can only be vectorised if its additions may be reordered.
* ``cache=True``: compiled machine code is kept in a user cache directory (``_cache.py``:
  ``$NUMBA_CACHE_DIR``, else ``~/.cache/scratchgen/numba``), never beside the package's source,
  so only the first process pays the compile time. Without any writable cache directory the
  kernels compile in every process instead.

Kernels take flat, C-contiguous 1-D arrays wherever they can: one compiled version per dtype
instead of one per dimension count and memory layout, and loops that LLVM vectorises.
``flat_elementwise`` turns the arrays an elementwise kernel receives into such arrays.
"""
from __future__ import annotations

import hashlib
import math
import os
import types

import numba
import numpy as np
from numba import njit

from scratchgen.backend import FLOAT_DTYPES, one_float_dtype

from . import _cache

# Below this many elements an elementwise kernel hands its inputs to the NumPy reference:
# starting a parallel loop costs ~5 us even on one thread (more when threads must wake up),
# more than NumPy needs for a few thousand elements. Tests set it to 0 to reach the loops.
SMALL_INPUT = 8192


def jit(fn=None, *, parallel: bool = True, fma: bool = False, reassociate: bool = False):
    """``njit(parallel=..., cache=True)`` (uncached without a writable cache directory).

    ``fma``: allow fused multiply-add. ``reassociate``: also let LLVM reorder additions, which
    a sum needs to be vectorised (split into 8 partial sums, added at the end) - the result
    then differs from a left-to-right sum by rounding, as NumPy's own pairwise sum does.
    ``parallel=True`` returns a ``ThreadedLoop`` (a serial and a parallel version).
    """

    def compile_(function):
        flags = ({"contract"} if fma or reassociate else set()) | ({"reassoc"} if reassociate else set())
        # error_model "numpy": x / 0 gives inf or NaN, as in the references, instead of a check
        # for a zero divisor before every division (which also keeps LLVM from vectorising a
        # loop: measured 5x slower for a serial sigmoid). Parallel loop bodies always use it.
        options = dict(fastmath=flags or False, error_model="numpy", cache=_cache.cache_directory() is not None)
        if parallel:
            return ThreadedLoop(function, options)
        return _njit(_renamed(function, "__" + SOURCE_VERSION), parallel=False, **options)

    return compile_ if fn is None else compile_(fn)


def _njit(function, **options):
    try:
        return njit(**options)(function)
    except RuntimeError:  # "cannot cache function ...: no locator available"
        return njit(**dict(options, cache=False))(function)


def _source_version() -> str:
    """A short hash of ``_math.py`` (whose inlined functions every loop compiles in) and of this
    file's compile options: part of every cache file name, so editing either recompiles.
    Numba itself checks only the timestamp of the loop's own source file."""
    here = os.path.dirname(os.path.abspath(__file__))
    digest = hashlib.sha1(_CACHE_FORMAT.encode())
    for name in ("_math.py", "_jit.py"):
        with open(os.path.join(here, name), "rb") as handle:
            digest.update(handle.read())
    return digest.hexdigest()[:8]


_CACHE_FORMAT = "1"


def _renamed(function, suffix: str):
    """A copy of ``function`` under another name: Numba's cache files are named after the
    function (module, qualified name, line), and the serial and parallel versions of one loop
    must not load each other's machine code."""
    copy = types.FunctionType(function.__code__, function.__globals__, function.__name__ + suffix,
                              function.__defaults__, function.__closure__)
    copy.__qualname__ = function.__qualname__ + suffix
    copy.__module__ = function.__module__
    copy.__doc__ = function.__doc__
    return copy


SOURCE_VERSION = _source_version()

# A parallel loop over fewer elements than this runs on the calling thread alone. Waking the
# other threads costs tens of microseconds on an idle machine, and milliseconds on a busy one
# (the woken thread waits for a core), more than such a loop takes.
PARALLEL_MIN = 1 << 18


class ThreadedLoop:
    """A ``prange`` loop compiled twice: serial for small arrays or one thread, parallel otherwise.

    The size is that of the largest array argument. Both versions are compiled (or loaded from
    the cache) on first use only, so a one-thread run never builds the parallel one. The thread
    count is read from ``numba.get_num_threads()`` only for large inputs (the call costs ~4 us).
    """

    def __init__(self, function, options):
        self.py_func = function
        self._options = options
        self._serial = None
        self._parallel = None

    @property
    def serial(self):
        if self._serial is None:
            self._serial = _njit(_renamed(self.py_func, "__serial_" + SOURCE_VERSION), parallel=False, **self._options)
        return self._serial

    @property
    def dispatcher(self):
        """The parallel version (``prange`` split over the Numba threads)."""
        if self._parallel is None:
            self._parallel = _njit(_renamed(self.py_func, "__parallel_" + SOURCE_VERSION), parallel=True, **self._options)
        return self._parallel

    def __call__(self, *args):
        return self.call_sized(max(a.size for a in args if isinstance(a, np.ndarray)), *args)

    def call_sized(self, size: int, *args):
        """Run on ``args`` as if its largest array had ``size`` elements (for tuple arguments)."""
        if size >= PARALLEL_MIN and numba.get_num_threads() > 1:
            return self.dispatcher(*args)
        return self.serial(*args)

    def __getattr__(self, name):  # signatures, inspect_llvm, ... of the parallel version
        return getattr(self.dispatcher, name)


def inline(fn):
    """A scalar helper compiled into its callers (so their loops can still be vectorised)."""
    return njit(inline="always")(fn)


def flat_elementwise(*arrays):
    """Prepare the inputs of an elementwise kernel: ``(flat_inputs, shape, dtype)`` or None.

    The inputs broadcast to ``shape``; they must all be float32 or all float64 NumPy arrays.
    Each comes back C-contiguous and 1-D with ``prod(shape)`` elements (a view when it already
    is, a copy for broadcast or strided views). Returns None when the kernel should not take
    them: other array types or dtypes (the NumPy reference then gives NumPy's exact semantics),
    or fewer than ``SMALL_INPUT`` elements (see there).
    """
    first = arrays[0]
    dtype = getattr(first, "dtype", None)
    if dtype not in FLOAT_DTYPES or not all(type(a) is np.ndarray and a.dtype == dtype for a in arrays):
        return None
    shape = first.shape
    if any(a.shape != shape for a in arrays[1:]):
        shape = np.broadcast_shapes(*(a.shape for a in arrays))
    if math.prod(shape) < SMALL_INPUT:
        return None
    flats = []
    for a in arrays:
        if a.shape != shape:
            a = np.broadcast_to(a, shape)
        flats.append(a.ravel() if a.flags.c_contiguous else np.ascontiguousarray(a).ravel())
    return flats, shape, dtype


def host_float_arrays(*arrays) -> bool:
    """True if every argument is a NumPy float32/float64 array, all of one dtype."""
    return all(type(a) is np.ndarray for a in arrays) and one_float_dtype(arrays)


def run_elementwise(loop, reference, *arrays, scalars=(), outputs: int = 1):
    """Run a compiled elementwise ``loop(*flat_inputs, *scalars, *flat_outputs)``.

    Allocates ``outputs`` result arrays of the broadcast shape and dtype; returns one array or
    a tuple. Inputs the loop cannot take go to ``reference(*arrays, *scalars)`` instead.
    """
    prepared = flat_elementwise(*arrays)
    if prepared is None:
        return reference(*arrays, *scalars)
    flats, shape, dtype = prepared
    results = [np.empty(shape, dtype) for _ in range(outputs)]
    loop(*flats, *scalars, *(r.reshape(-1) for r in results))
    return results[0] if outputs == 1 else tuple(results)
