"""What ``scratchgen info`` prints: backends (usable, or why not), devices, threads, kernels, datasets.

Nothing here raises for a missing backend, GPU or dataset: saying what is missing, and how to
get it, is the point.
"""
from __future__ import annotations

import os
import sys
from typing import List

from . import backend, device

__all__ = ["VERSION", "describe", "thread_settings", "datasets_found"]

VERSION = "0.1.0"  # scratchgen.__version__


def thread_settings() -> List[str]:
    """The thread counts in force and where they come from (``scratchgen.threads.describe``)."""
    from . import threads

    return threads.describe()


def describe(kernels: bool = False) -> str:
    """Each backend (available, or why not), the devices, the thread settings, the kernel count.

    ``kernels=True`` appends ``backend.format_kernel_table()``.
    """
    problem = backend.environment_error()
    lines = [f"current backend: {backend.get_backend()}" + (f" (NOT USABLE: {problem})" if problem else ""), "backends:"]
    for name in backend.BACKENDS:
        ok, details = backend.backend_status(name)
        lines.append(f"  {name:<11} {'yes' if ok else 'no ':<4} {details}")
    lines.append("devices:")
    lines.extend(f"  {line}" for line in device.describe_devices())
    lines.append("threads:")
    lines.extend(f"  {line}" for line in thread_settings())
    from .memory import allocator_settings

    lines.append(f"memory: {allocator_settings()}")
    if kernels:
        lines.append(backend.format_kernel_table())
    else:
        notes = backend.kernel_notes()
        lines.append(f"kernels: {len(backend.kernel_table())} registered ({len(notes)} kept on NumPy somewhere; "
                     f"scratchgen.backend.format_kernel_table() lists them)")
    return "\n".join(lines)


def datasets_found(root=None) -> str:
    """Each named dataset: where it was found, or every place searched and how to add one."""
    from .data import DATASET_NAMES, TEXT_DATASET_NAMES, search_report

    lines = ["datasets:"]
    for name in DATASET_NAMES + TEXT_DATASET_NAMES[:1]:  # the text datasets share one search (WordNet)
        lines.extend("  " + line for line in search_report(name, root=root).splitlines())
    return "\n".join(lines)
