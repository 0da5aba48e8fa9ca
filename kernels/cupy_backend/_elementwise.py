"""Shared plumbing for the CuPy kernels: which arrays they take, compiling kernels once, counting launches.

``cupy.ElementwiseKernel(in_params, out_params, body, name)`` writes the loop, the
broadcasting and the launch for us: ``body`` is the CUDA C++ for *one* element, with ``T``
standing for the arrays' dtype (CuPy compiles one version per dtype, on first use, with
NVRTC, and caches it on disk). ``Kernel`` is that, plus a report of each launch to
``scratchgen.kernels.launches`` (the GPU check counts launches per training step); RawModule
functions launch through ``launch_raw`` for the same reason.
"""
from __future__ import annotations

import cupy

from scratchgen.backend import one_float_dtype
from scratchgen.kernels import launches


class Kernel:
    """``cupy.ElementwiseKernel(in_params, out_params, body, name)`` whose calls are counted."""

    def __init__(self, in_params: str, out_params: str, body: str, name: str):
        self.name = name
        self.elementwise = cupy.ElementwiseKernel(in_params, out_params, body, name)

    def __call__(self, *args, **kwargs):
        launches.record("cupy", self.name)
        return self.elementwise(*args, **kwargs)


def launch_raw(function, name: str, grid, block, args, shared_mem: int = 0) -> None:
    """Launch a RawModule ``function`` (counted as ``name``)."""
    launches.record("cupy", name)
    function(grid, block, args, shared_mem=shared_mem)


def cupy_float_arrays(*arrays) -> bool:
    """True for CuPy float32/float64 arrays of one dtype (what the kernels are written for)."""
    arrays = [a for a in arrays if a is not None]
    if not arrays or not all(type(a).__module__.startswith("cupy") for a in arrays):
        return False
    return one_float_dtype(arrays)
