"""Shared plumbing for the CuPy kernels: which arrays they take, and compiling kernels once.

``cupy.ElementwiseKernel(in_params, out_params, body, name)`` writes the loop, the
broadcasting and the launch for us: ``body`` is the CUDA C++ for *one* element, with ``T``
standing for the arrays' dtype (CuPy compiles one version per dtype, on first use, with
NVRTC, and caches it on disk).
"""
from __future__ import annotations

from scratchgen.backend import one_float_dtype


def cupy_float_arrays(*arrays) -> bool:
    """True for CuPy float32/float64 arrays of one dtype (what the kernels are written for)."""
    arrays = [a for a in arrays if a is not None]
    if not arrays or not all(type(a).__module__.startswith("cupy") for a in arrays):
        return False
    return one_float_dtype(arrays)
