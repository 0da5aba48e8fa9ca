"""How every Numba CPU kernel is compiled, and the array plumbing around it.

``jit(fn)`` is ``numba.njit`` with the options this package uses everywhere:

* ``parallel=True``: a ``prange`` loop is split over ``NUMBA_NUM_THREADS`` threads - when its
  arrays have at least ``PARALLEL_MIN`` elements (``ThreadedLoop``); smaller ones run on the
  calling thread. Set NUMBA_NUM_THREADS (and ``OPENBLAS_NUM_THREADS``) explicitly on small
  machines: two pools of threads on two cores slow each other down.
* no fastmath by default, so that a loop doing the reference's arithmetic in the reference's
  order gives bit-identical results. ``fma=True`` (loops around the polynomials of
  ``_math.py``) allows only fused multiply-add (``fastmath={"contract"}``): it makes those
  loops ~1.8x faster and changes results by at most an ulp per operation. Full fastmath is
  never used: it assumes that no NaN or Inf ever occurs, which would break NaN propagation
  (and so ``detect_anomaly``). Reductions (batch-norm statistics) opt in to
  ``reassociate=True``: a float sum can only be vectorised if its additions may be reordered.
* ``cache=True``, when possible: compiled machine code is kept in ``__pycache__`` (or
  ``$NUMBA_CACHE_DIR``), so only the first run pays the compile time. On a read-only install
  with no writable cache directory Numba raises at decoration time; we then compile without
  a cache instead of failing to import.

Kernels take flat, C-contiguous 1-D arrays wherever they can: one compiled version per dtype
instead of one per dimension count and memory layout, and loops that LLVM vectorises.
``flat_elementwise`` turns the arrays an elementwise kernel receives into such arrays.
"""
from __future__ import annotations

import math

import numba
import numpy as np
from numba import njit

from scratchgen.backend import FLOAT_DTYPES, one_float_dtype

# Below this many elements an elementwise kernel hands its inputs to the NumPy reference:
# starting a parallel loop costs ~5 us even on one thread (more when threads must wake up),
# more than NumPy needs for a few thousand elements. Tests set it to 0 to reach the loops.
SMALL_INPUT = 8192


def jit(fn=None, *, parallel: bool = True, fma: bool = False, reassociate: bool = False):
    """``njit(parallel=..., cache=True)``, uncached if caching is impossible.

    ``fma``: allow fused multiply-add. ``reassociate``: also let LLVM reorder additions, which
    a sum needs to be vectorised (split into 8 partial sums, added at the end) - the result
    then differs from a left-to-right sum by rounding, as NumPy's own pairwise sum does.
    """

    def compile_(function):
        flags = ({"contract"} if fma or reassociate else set()) | ({"reassoc"} if reassociate else set())
        options = dict(parallel=parallel, fastmath=flags or False)
        try:
            dispatcher = njit(cache=True, **options)(function)
        except RuntimeError:  # "cannot cache function ...: no locator available"
            dispatcher = njit(cache=False, **options)(function)
        return ThreadedLoop(dispatcher) if parallel else dispatcher

    return compile_ if fn is None else compile_(fn)


# A parallel loop over fewer elements than this runs on the calling thread alone. Waking the
# other threads costs tens of microseconds on an idle machine, and milliseconds on a busy one
# (the woken thread waits for a core), more than such a loop takes.
PARALLEL_MIN = 1 << 18


class ThreadedLoop:
    """A compiled ``prange`` loop that uses the thread pool only when its arrays are large.

    The size is that of the largest array argument; below ``PARALLEL_MIN`` elements the call
    runs with ``numba.set_num_threads(1)`` (the same machine code, one thread).
    """

    def __init__(self, dispatcher):
        self.dispatcher = dispatcher
        self.py_func = dispatcher.py_func

    def __call__(self, *args):
        threads = numba.get_num_threads()
        if threads == 1 or max(a.size for a in args if isinstance(a, np.ndarray)) >= PARALLEL_MIN:
            return self.dispatcher(*args)
        numba.set_num_threads(1)
        try:
            return self.dispatcher(*args)
        finally:
            numba.set_num_threads(threads)

    def __getattr__(self, name):  # signatures, inspect_llvm, ... of the compiled function
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
