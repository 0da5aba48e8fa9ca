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
"""
from __future__ import annotations

import math
import os

import numpy as np
from numba import cuda
from numba.cuda import config as _cuda_config

from scratchgen.backend import get_array_module, one_float_dtype

SIMULATED = bool(_cuda_config.ENABLE_CUDASIM)
THREADS = 32 if SIMULATED else 256
MAX_BLOCKS = 1 if SIMULATED else 65_535


def grid(n: int):
    """(blocks, threads) for a grid-stride kernel over n items."""
    return max(1, min(MAX_BLOCKS, math.ceil(n / THREADS))), THREADS


def launch(kernel, n: int):
    """``kernel[blocks, threads]``: configured for a grid-stride loop over n items."""
    return configure(kernel, *grid(n))


def configure(kernel, blocks, threads):
    """``kernel[blocks, threads]`` (every launch in this package goes through here)."""
    if PTX_CHECK:
        return _PtxRecorder(kernel)
    configured = kernel[blocks, threads]
    if not SIMULATED:
        return configured

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
        key = (self.kernel.py_func.__name__, types)
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


def as_numba(array):
    """A Numba device-array view of a CuPy array (no copy); host arrays as they are (simulator).

    Top-level kernel arguments may be CuPy arrays directly, but arrays *inside a tuple* (the fused
    optimiser's parameter lists) must be Numba device arrays to be typed and passed.
    """
    if SIMULATED or PTX_CHECK or get_array_module(array) is np:
        return array
    return cuda.as_cuda_array(array)


def empty(shape, dtype, like):
    """An uninitialised array on the same device (and of the same kind) as ``like``."""
    return get_array_module(like).empty(shape, dtype)
