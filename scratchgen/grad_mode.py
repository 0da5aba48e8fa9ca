"""The switches autograd obeys: ``no_grad`` (record nothing) and ``detect_anomaly`` (stop at the first NaN/Inf).

Both are module-level flags read by ``Function.apply`` (whether to record an op, whether to
check its output) and by ``Tensor.backward`` (whether to check each gradient). They live here,
below ``tensor.py`` and ``function.py``, so that both can read them without importing each other.
"""
from __future__ import annotations

import contextlib
from typing import Iterator

import numpy as np

from .backend import get_array_module

__all__ = ["no_grad", "is_grad_enabled", "detect_anomaly", "is_anomaly_enabled", "AnomalyError", "check_finite"]

_grad_enabled = True
_anomaly_mode = False


class AnomalyError(FloatingPointError):
    """Raised under ``detect_anomaly()`` on the first NaN/Inf an op produces."""


@contextlib.contextmanager
def no_grad() -> Iterator[None]:
    """Run the block without recording ops: outputs have ``requires_grad=False``."""
    global _grad_enabled
    previous = _grad_enabled
    _grad_enabled = False
    try:
        yield
    finally:
        _grad_enabled = previous


def is_grad_enabled() -> bool:
    return _grad_enabled


@contextlib.contextmanager
def detect_anomaly() -> Iterator[None]:
    """Raise ``AnomalyError`` on the first NaN/Inf produced in a forward or backward, naming the op.

    Costs one ``isfinite`` pass per op output, so it is off by default.
    """
    global _anomaly_mode
    previous = _anomaly_mode
    _anomaly_mode = True
    try:
        yield
    finally:
        _anomaly_mode = previous


def is_anomaly_enabled() -> bool:
    return _anomaly_mode


def check_finite(array, op_name: str, where: str) -> None:
    """Raise AnomalyError if ``array`` holds a NaN or Inf (used by anomaly mode)."""
    xp = get_array_module(array)
    if not np.issubdtype(array.dtype, np.floating):
        return
    finite = xp.isfinite(array)
    if not bool(finite.all()):
        bad = int(array.size - int(finite.sum()))
        first = tuple(int(i) for i in np.unravel_index(int(xp.argmin(finite.ravel())), array.shape))
        raise AnomalyError(
            f"{op_name}: {where} produced {bad} non-finite value(s) of {array.size} "
            f"(shape {array.shape}); first at index {first}: {array[first]!r}"
        )
