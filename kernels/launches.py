"""Counting our kernel launches: how many a training step makes on each GPU backend.

Small models are launch-bound: a VAE step on a GPU does microseconds of arithmetic per kernel
and pays several microseconds of Python and driver overhead to start each one, so the number
of launches per step is the figure that decides the speed. Every launch helper of the GPU
backends calls ``record`` (Numba: ``numba_cuda/_launch.configure``; CuPy:
``cupy_backend/_elementwise``'s ``Kernel`` wrapper and ``launch_raw``), which costs one
``None`` test while nobody counts::

    from scratchgen.kernels import launches
    with launches.counting() as counts:
        model.train_step(...)
    sum(counts.values())            # launches of *our* kernels, by (backend, kernel name)

What it does not see: kernels CuPy launches for us (cuBLAS GEMMs, reductions, the NumPy
references running on CuPy arrays). The GPU check (``python -m benchmarks gpu``) counts those
too, with the CUDA profiler, and reports both.
"""
from __future__ import annotations

import collections
import contextlib
from typing import Counter, Iterator, Optional, Tuple

_counts: Optional[Counter] = None  # a Counter while counting, else None


def record(backend: str, name: str) -> None:
    """Note one launch of kernel ``name`` by ``backend`` (a no-op unless ``counting()`` is active)."""
    if _counts is not None:
        _counts[(backend, name)] += 1


@contextlib.contextmanager
def counting() -> Iterator[Counter]:
    """Count launches inside the block: yields a Counter of ``(backend, kernel name) -> launches``."""
    global _counts
    previous = _counts
    _counts = collections.Counter()
    try:
        yield _counts
    finally:
        _counts = previous


def by_backend(counts: Counter) -> dict:
    """``{backend: launches}`` from a ``counting()`` result."""
    totals: dict = {}
    for (backend, _), number in counts.items():
        totals[backend] = totals.get(backend, 0) + number
    return totals


def top(counts: Counter, n: int = 10) -> Tuple[Tuple[str, int], ...]:
    """The ``n`` most launched kernels as ``("backend:name", launches)``."""
    return tuple((f"{backend}:{name}", number) for (backend, name), number in counts.most_common(n))
