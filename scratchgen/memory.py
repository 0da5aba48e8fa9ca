"""Memory: how large arrays are allocated, and what a process's resident memory peaked at.

Every op returns a fresh array, so a training step allocates and frees the same few sizes over
and over: for the RBM of the benchmarks, (784, 256) float32 statistics and updates, 800 KB each.
glibc's malloc serves any block above its *mmap threshold* (128 KB to start with, raised to the
size of the largest block freed so far, up to 32 MB) with a fresh ``mmap``, and returns freed
memory at the top of the heap to the system once more than twice that threshold is free. Either
way the next step's array lands on pages the kernel must fault in and zero again: measured here,
``a - wd * W`` for two (784, 256) float32 arrays took 1.1 ms, 187,000 page faults in 500 calls;
with the thresholds raised, 0.08 ms and 5,000 page faults (the arithmetic itself is two array passes).

``configure_allocator()`` (run once when scratchgen is imported) therefore raises both: blocks
under 64 MB come from the heap, and up to 256 MB of freed heap is kept for reuse instead of being
returned. Peak memory does not grow (a peak is a peak; freed blocks are reused), but the resident
size no longer shrinks after it. ``SCRATCHGEN_MALLOC=default`` keeps glibc's behaviour; other C
libraries (musl, macOS) are left alone.

The readings (Linux ``/proc/self/status``) are what the benchmarks report beside time:
``peak_rss_bytes()`` (VmHWM, the high-water mark), ``rss_bytes()`` (VmRSS now), and
``reset_peak_rss()``, which restarts the high-water mark at the current size (so a benchmark
can measure what training adds on top of the data and the libraries).
"""
from __future__ import annotations

import ctypes
import ctypes.util
import os
import resource
import sys
from typing import Optional

__all__ = ["configure_allocator", "allocator_settings", "peak_rss_bytes", "rss_bytes", "reset_peak_rss"]

MMAP_THRESHOLD = 64 << 20
TRIM_THRESHOLD = 256 << 20
_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3  # glibc's mallopt parameter numbers
_state = {"configured": False, "settings": "not configured"}


def configure_allocator() -> str:
    """Raise glibc's mmap and trim thresholds (see the module docstring); returns what was done."""
    if _state["configured"]:
        return _state["settings"]
    _state["configured"] = True
    if os.environ.get("SCRATCHGEN_MALLOC", "").strip().lower() == "default":
        _state["settings"] = "the C library's defaults (SCRATCHGEN_MALLOC=default)"
        return _state["settings"]
    if not sys.platform.startswith("linux"):
        _state["settings"] = "the C library's defaults (not Linux)"
        return _state["settings"]
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        _state["settings"] = "the C library's defaults (no glibc mallopt)"
        return _state["settings"]
    ok = mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD) == 1 and mallopt(_M_TRIM_THRESHOLD, TRIM_THRESHOLD) == 1
    _state["settings"] = (f"glibc malloc: blocks under {MMAP_THRESHOLD >> 20} MB from the heap, up to "
                          f"{TRIM_THRESHOLD >> 20} MB of freed heap kept (SCRATCHGEN_MALLOC=default to undo)"
                          if ok else "the C library's defaults (mallopt refused the thresholds)")
    return _state["settings"]


def allocator_settings() -> str:
    """One line for ``scratchgen info``."""
    return _state["settings"]


def _status_kb(field: str) -> Optional[int]:
    try:
        with open("/proc/self/status") as handle:
            for line in handle:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except OSError:
        pass
    return None


def peak_rss_bytes() -> int:
    """The process's peak resident memory so far (VmHWM; ru_maxrss where /proc is missing)."""
    kb = _status_kb("VmHWM")
    if kb is None:
        scale = 1 if sys.platform == "darwin" else 1024  # macOS reports bytes, Linux kilobytes
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * scale
    return kb * 1024


def rss_bytes() -> Optional[int]:
    """The resident memory now (VmRSS), or None where /proc is missing."""
    kb = _status_kb("VmRSS")
    return None if kb is None else kb * 1024


def reset_peak_rss() -> bool:
    """Restart the high-water mark at the current resident size (Linux >= 4.0); False if impossible."""
    try:
        with open("/proc/self/clear_refs", "w") as handle:
            handle.write("5")
        return True
    except OSError:
        return False
