"""Launching Numba CUDA kernels on CuPy arrays (or, in the simulator, on host arrays).

Arrays: on a real GPU the backend's tensors hold CuPy arrays; Numba kernels accept them as
they are through ``__cuda_array_interface__`` (no copy). In Numba's CUDA simulator
(``NUMBA_ENABLE_CUDASIM=1``) kernels run as Python threads on host NumPy arrays. Passing a
host array to a real GPU is refused: Numba would silently copy it to the device and back on
every launch, the hidden transfer this project promises never to make.

Launch shape: every kernel here uses a *grid-stride loop*::

    for i in range(cuda.grid(1), n, cuda.gridsize(1)):
        ...

so any grid covers any n. On a GPU the grid is ``ceil(n / 256)`` blocks of 256 threads (capped;
each thread then takes several elements). In the simulator, where each simulated thread costs
about a millisecond, the same kernels run with one block of 32 threads.

Bytes in flight (``unary_map``, ``binary_map``, ``ternary_map``): an elementwise kernel is
limited by memory bandwidth, and HBM delivers its 4.8 TB/s (H200) only with megabytes of loads
outstanding (bandwidth x latency: about 4.8 TB/s x 0.6 us = 3 MB, 22 KB per multiprocessor).
One 4-byte load per thread and 2,048 resident threads leave 8 KB per multiprocessor: a
one-element-per-loop kernel stalls near a third of the peak. The map kernels therefore give each
thread UNROLL = 4 elements per trip, ``blockDim`` apart (each load still coalesced across the
warp), and issue all their loads before the first arithmetic. The compiler cannot reorder the
loads itself: it cannot prove that ``out`` does not overlap the inputs.

Streams: every launch goes on CuPy's current stream, so a kernel is ordered after the CuPy work
that produced its inputs. That is why this module switches off Numba's
``CUDA_ARRAY_INTERFACE_SYNC``: by default Numba *synchronises the host* with the producer's
stream for every CuPy argument of every launch (the interface's rule for consumers on another
stream), which would make each launch wait for all queued GPU work.

Counting: ``configure`` reports every launch to ``scratchgen.kernels.launches`` (the GPU
check's launches per training step).
"""
from __future__ import annotations

import math
import os

import numpy as np
from numba import cuda
from numba.cuda import config as _cuda_config

from scratchgen.backend import get_array_module, one_float_dtype
from scratchgen.kernels import launches

SIMULATED = bool(_cuda_config.ENABLE_CUDASIM)
THREADS = 32 if SIMULATED else 256
MAX_BLOCKS = 1 if SIMULATED else 65_535
UNROLL = 4  # elements per thread per loop trip of the map kernels (see the module docstring)

if not SIMULATED:
    _cuda_config.CUDA_ARRAY_INTERFACE_SYNC = False  # launches are stream-ordered instead (module docstring)


def grid(n: int, per_thread: int = 1):
    """(blocks, threads) for a grid-stride kernel over n items, ``per_thread`` of them per thread per trip."""
    return max(1, min(MAX_BLOCKS, math.ceil(n / (THREADS * per_thread)))), THREADS


def launch(kernel, n: int):
    """``kernel[blocks, threads]``: configured for a grid-stride loop over n items."""
    return configure(kernel, *grid(n, UNROLL if kernel in _MAP_KERNELS else 1))


_STREAMS = {}


def _current_stream():
    """CuPy's current stream as a Numba stream (0: the legacy default stream both libraries start on)."""
    import cupy

    pointer = cupy.cuda.get_current_stream().ptr
    if pointer == 0:
        return 0
    if pointer not in _STREAMS:
        _STREAMS[pointer] = cuda.external_stream(pointer)
    return _STREAMS[pointer]


def kernel_name(kernel) -> str:
    """A kernel's name for counts and reports (a map kernel is named after its element function)."""
    if kernel in _MAP_KERNELS:
        return _MAP_KERNELS[kernel]
    return getattr(kernel, "py_func", getattr(kernel, "fn", kernel)).__name__


def configure(kernel, blocks, threads):
    """``kernel[blocks, threads]`` on CuPy's current stream (every launch in this package goes through here)."""
    launches.record("numba-cuda", kernel_name(kernel))
    if PTX_CHECK:
        return _PtxRecorder(kernel)
    if not SIMULATED:
        return kernel[blocks, threads, _current_stream()]
    configured = kernel[blocks, threads]

    def run_simulated(*args):
        # The simulator copies every array argument back after the launch, inputs included, which
        # fails on read-only views (broadcasts): give it private copies of those.
        args = [a.copy() if isinstance(a, np.ndarray) and not a.flags.writeable else a for a in args]
        return configured(*args)

    return run_simulated


# ---- compile-only mode: check every kernel's types without a GPU ----------------------------------
# SCRATCHGEN_CUDA_PTX_CHECK=sm_90 (with NUMBA_ENABLE_CUDASIM=0 and libnvrtc findable) makes every
# launch compile its kernel to PTX for that architecture, for the argument types it was given,
# instead of running it: the wrappers accept host arrays and return uninitialised results. The
# simulator runs kernels as Python and cannot catch a typing error; this can (tests use it).
_PTX_TARGET = os.environ.get("SCRATCHGEN_CUDA_PTX_CHECK", "")
PTX_CHECK = bool(_PTX_TARGET) and not SIMULATED
COMPILED_PTX = {}  # (kernel name, argument types) -> PTX text


class _PtxRecorder:
    def __init__(self, kernel):
        self.kernel = kernel

    def __call__(self, *args):
        from numba import typeof

        types = tuple(typeof(a) for a in args)
        key = (kernel_name(self.kernel), types)
        if key not in COMPILED_PTX:
            digits = _PTX_TARGET.replace("sm_", "")
            cc = (int(digits[:-1]), int(digits[-1]))
            COMPILED_PTX[key] = cuda.compile_ptx(self.kernel.py_func, types, cc=cc)[0]


def device_float_arrays(*arrays) -> bool:
    """True when the kernels can take these arrays: float32/float64 of one dtype, on the device.

    On a real GPU that means CuPy arrays (host arrays are refused with a clear error rather
    than copied); in the simulator, NumPy arrays.
    """
    arrays = [a for a in arrays if a is not None]
    if not arrays:
        return False
    xp = get_array_module(*arrays)
    if not SIMULATED and xp is np and not PTX_CHECK:
        raise TypeError(
            "numba-cuda kernels take GPU arrays (CuPy); got host NumPy arrays. Move the data first "
            "(Tensor.to('cuda'), Module.to('cuda')): launching on host arrays would copy them every call"
        )
    if (SIMULATED or PTX_CHECK) and xp is not np:
        return False
    return one_float_dtype(arrays)


def flat_elementwise(*arrays):
    """``(flat_inputs, shape, dtype, xp)`` for an elementwise kernel, or None (then run the reference).

    Inputs broadcast to ``shape`` and come back C-contiguous and 1-D (views when possible).
    """
    if not device_float_arrays(*arrays):
        return None
    xp = get_array_module(*arrays)
    shape = arrays[0].shape
    if any(a.shape != shape for a in arrays[1:]):
        shape = np.broadcast_shapes(*(a.shape for a in arrays))
    flats = []
    for a in arrays:
        if a.shape != shape:
            a = xp.broadcast_to(a, shape)
        flats.append(xp.ascontiguousarray(a).reshape(-1))
    return flats, shape, arrays[0].dtype, xp


def run_elementwise(kernel, reference, *arrays, scalars=(), outputs: int = 1):
    """Launch ``kernel(*flat_inputs, *scalars, *flat_outputs)`` over the broadcast shape.

    Allocates the outputs with the inputs' array module; falls back to ``reference`` (on the
    same arrays, so still on the device) for inputs the kernel does not take.
    """
    prepared = flat_elementwise(*arrays)
    if prepared is None:
        return reference(*arrays, *scalars)
    flats, shape, dtype, xp = prepared
    results = [xp.empty(shape, dtype) for _ in range(outputs)]
    size = int(np.prod(shape))
    if size:
        launch(kernel, size)(*flats, *scalars, *(r.reshape(-1) for r in results))
    return results[0] if outputs == 1 else tuple(results)


# ---- map kernels: UNROLL elements per thread, all loads before the first use ----------------------
_MAP_KERNELS = {}  # kernel -> name; launch() gives these a grid of n / (THREADS x UNROLL) threads


@cuda.jit(device=True, inline=True)
def _lanes(start, n):
    """This thread's UNROLL indices in the tile at ``start``, ``blockDim`` apart. Lanes past the end
    are clamped to n - 1: they load a valid element and ``_store4`` drops their results."""
    i, step, last = start + cuda.threadIdx.x, cuda.blockDim.x, n - 1
    return min(i, last), min(i + step, last), min(i + 2 * step, last), min(i + 3 * step, last)


@cuda.jit(device=True, inline=True)
def _store4(out, start, n, v0, v1, v2, v3):
    i, step = start + cuda.threadIdx.x, cuda.blockDim.x
    if i < n:
        out[i] = v0
    if i + step < n:
        out[i + step] = v1
    if i + 2 * step < n:
        out[i + 2 * step] = v2
    if i + 3 * step < n:
        out[i + 3 * step] = v3


def _element_name(element) -> str:
    return getattr(element, "py_func", getattr(element, "fn", element)).__name__


def unary_map(element):
    """A kernel ``(x, out)`` with ``out[i] = element(x[i])`` over flat arrays (``run_elementwise`` launches it).

    Blocks stride over tiles of UNROLL x blockDim elements; per tile a thread loads its four
    elements, then computes and stores them.
    """

    @cuda.jit
    def unary_map_kernel(x, out):
        n, tile = out.size, UNROLL * cuda.blockDim.x
        for start in range(cuda.blockIdx.x * tile, n, cuda.gridDim.x * tile):
            i0, i1, i2, i3 = _lanes(start, n)
            a0, a1, a2, a3 = x[i0], x[i1], x[i2], x[i3]
            _store4(out, start, n, element(a0), element(a1), element(a2), element(a3))

    _MAP_KERNELS[unary_map_kernel] = _element_name(element)
    return unary_map_kernel


def binary_map(element):
    """A kernel ``(x, y, out)`` with ``out[i] = element(x[i], y[i])``: eight loads in flight per thread."""

    @cuda.jit
    def binary_map_kernel(x, y, out):
        n, tile = out.size, UNROLL * cuda.blockDim.x
        for start in range(cuda.blockIdx.x * tile, n, cuda.gridDim.x * tile):
            i0, i1, i2, i3 = _lanes(start, n)
            a0, a1, a2, a3 = x[i0], x[i1], x[i2], x[i3]
            b0, b1, b2, b3 = y[i0], y[i1], y[i2], y[i3]
            _store4(out, start, n, element(a0, b0), element(a1, b1), element(a2, b2), element(a3, b3))

    _MAP_KERNELS[binary_map_kernel] = _element_name(element)
    return binary_map_kernel


def ternary_map(element):
    """A kernel ``(x, y, z, out)`` with ``out[i] = element(x[i], y[i], z[i])``: twelve loads in flight."""

    @cuda.jit
    def ternary_map_kernel(x, y, z, out):
        n, tile = out.size, UNROLL * cuda.blockDim.x
        for start in range(cuda.blockIdx.x * tile, n, cuda.gridDim.x * tile):
            i0, i1, i2, i3 = _lanes(start, n)
            a0, a1, a2, a3 = x[i0], x[i1], x[i2], x[i3]
            b0, b1, b2, b3 = y[i0], y[i1], y[i2], y[i3]
            c0, c1, c2, c3 = z[i0], z[i1], z[i2], z[i3]
            _store4(out, start, n, element(a0, b0, c0), element(a1, b1, c1), element(a2, b2, c2),
                    element(a3, b3, c3))

    _MAP_KERNELS[ternary_map_kernel] = _element_name(element)
    return ternary_map_kernel


# ---- Numba views of CuPy arrays ------------------------------------------------------------------
_VIEWS = {}  # (pointer, size, dtype) -> Numba device array over that memory (owns nothing)
_MAX_VIEWS = 4096


def as_numba(array):
    """A Numba device-array view of a contiguous CuPy array (no copy); host arrays as they are (simulator).

    Top-level kernel arguments may be CuPy arrays directly, but arrays *inside a tuple* (the fused
    optimiser's parameter lists) must be Numba device arrays to be typed and passed. Making one
    costs tens of microseconds of Python, so views are cached by (pointer, size, dtype): a
    training loop updates the same parameters every step, and CuPy's memory pool hands the
    gradients the same addresses again. A view owns nothing (a cached one may outlive its array
    and then serve whichever array occupies that memory next, which is exactly right), and it
    does not synchronise with CuPy's stream (launches are stream-ordered; module docstring).
    """
    if SIMULATED or PTX_CHECK or get_array_module(array) is np:
        return array
    key = (array.data.ptr, array.size, array.dtype.char)
    view = _VIEWS.get(key)
    if view is None:
        if len(_VIEWS) >= _MAX_VIEWS:
            _VIEWS.clear()
        view = cuda.from_cuda_array_interface(array.reshape(-1).__cuda_array_interface__, owner=None, sync=False)
        _VIEWS[key] = view
    return view if view.shape == array.shape else view.reshape(array.shape)


def empty(shape, dtype, like):
    """An uninitialised array on the same device (and of the same kind) as ``like``."""
    return get_array_module(like).empty(shape, dtype)
