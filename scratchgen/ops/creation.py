"""Constructors: zeros, ones, zeros_like, ones_like, randn.

These make new *leaf* tensors; there is nothing to differentiate, so they are plain functions,
not ``Function`` classes. Pass ``requires_grad=True`` to make a parameter.

``randn`` takes an explicit ``numpy.random.Generator`` (``np.random.default_rng(seed)``):
scratchgen keeps no global random state, so every random number in a program comes from a
generator the program created and seeded, and two runs with the same seeds agree exactly.
The default dtype is NumPy's, float64 (the dtype gradcheck needs); models pass float32.
"""
from __future__ import annotations

import numpy as np

from ..backend import get_array_module
from ..tensor import Tensor

__all__ = ["zeros", "ones", "zeros_like", "ones_like", "randn"]


def _shape(shape) -> tuple:
    return (int(shape),) if isinstance(shape, (int, np.integer)) else tuple(int(s) for s in shape)


def zeros(shape, dtype=np.float64, requires_grad: bool = False) -> Tensor:
    """A tensor of zeros of ``shape`` (an int or a tuple), on the host."""
    return Tensor(np.zeros(_shape(shape), dtype=dtype), requires_grad=requires_grad)


def ones(shape, dtype=np.float64, requires_grad: bool = False) -> Tensor:
    """A tensor of ones of ``shape`` (an int or a tuple), on the host."""
    return Tensor(np.ones(_shape(shape), dtype=dtype), requires_grad=requires_grad)


def zeros_like(x, dtype=None, requires_grad: bool = False) -> Tensor:
    """Zeros with the shape, dtype (unless ``dtype`` is given) and device of ``x`` (a Tensor or an array)."""
    data = x.data if isinstance(x, Tensor) else x
    return Tensor(get_array_module(data).zeros_like(data, dtype=dtype), requires_grad=requires_grad)


def ones_like(x, dtype=None, requires_grad: bool = False) -> Tensor:
    """Ones with the shape, dtype (unless ``dtype`` is given) and device of ``x`` (a Tensor or an array)."""
    data = x.data if isinstance(x, Tensor) else x
    return Tensor(get_array_module(data).ones_like(data, dtype=dtype), requires_grad=requires_grad)


def randn(shape, rng: np.random.Generator, dtype=np.float64, requires_grad: bool = False) -> Tensor:
    """Standard normal draws of ``shape`` from ``rng``, a ``numpy.random.Generator``.

    ``dtype`` float32 or float64: the generator draws in that dtype directly (float32 draws are
    not float64 draws rounded, so the two dtypes give different numbers for one seed).
    """
    if not isinstance(rng, np.random.Generator):
        raise TypeError(f"randn: rng must be a numpy.random.Generator, e.g. np.random.default_rng(0) "
                        f"(scratchgen has no global random state), got {type(rng).__name__}")
    dtype = np.dtype(dtype)
    if dtype not in (np.dtype(np.float32), np.dtype(np.float64)):
        raise TypeError(f"randn: dtype must be float32 or float64, got {dtype}")
    return Tensor(rng.standard_normal(_shape(shape), dtype=dtype), requires_grad=requires_grad)
