"""Where compiled Numba kernels are kept between runs: a user-writable cache, never the package's folder.

Numba compiles a kernel the first time it is called with a new argument type, which costs
0.2-1 s per kernel; with ``cache=True`` (``_jit.py``) the machine code is written to disk and
the next process loads it in milliseconds. By default Numba writes that cache into a
``__pycache__`` folder *beside the source file*, which for an installed package means writing
into site-packages (or failing on a read-only install). So, unless the user chose a place
with ``NUMBA_CACHE_DIR``, this module points Numba at

    $XDG_CACHE_HOME/scratchgen/numba      (~/.cache/scratchgen/numba when XDG_CACHE_HOME is unset)

Numba keys each cached kernel by its source file's full path, name and line, the argument
types, the CPU and its own version, and checks the source file's timestamp: two checkouts,
or an edited file, never load each other's code. If that folder cannot be created or written
(a read-only home directory), a per-user folder in the temporary directory is used; if that
fails too, kernels are compiled in every process (``cache_directory()`` is then None and
``_jit.jit`` passes ``cache=False``, so nothing is written next to the package either).

``configure()`` must run before the first kernel is *decorated* (Numba picks the cache
location then), which ``kernels/numba_cpu/__init__.py`` does before importing its modules.
"""
from __future__ import annotations

import os
import sys
import tempfile
from typing import Optional

VARIABLE = "NUMBA_CACHE_DIR"
_configured: Optional[str] = None
_source = "unset"  # "NUMBA_CACHE_DIR" (the user's), "default", "temporary", or "none"


def default_directory() -> str:
    """$XDG_CACHE_HOME/scratchgen/numba, else ~/.cache/scratchgen/numba."""
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "scratchgen", "numba")


def _writable(directory: str) -> bool:
    try:
        os.makedirs(directory, exist_ok=True)
        probe = tempfile.NamedTemporaryFile(dir=directory, prefix=".probe-", delete=True)
        probe.close()
        return True
    except OSError:
        return False


def configure() -> Optional[str]:
    """Choose the cache directory once per process and tell Numba (environment and config).

    Returns the directory, or None when no writable place was found (kernels are then not cached).
    """
    global _configured, _source
    if _source != "unset":
        return _configured
    user = os.environ.get(VARIABLE)
    if user:
        _configured, _source = user, VARIABLE
    else:
        candidates = [(default_directory(), "default")]
        uid = os.getuid() if hasattr(os, "getuid") else os.getpid()
        candidates.append((os.path.join(tempfile.gettempdir(), f"scratchgen-numba-{uid}"), "temporary"))
        _configured, _source = None, "none"
        for directory, source in candidates:
            if _writable(directory):
                _configured, _source = directory, source
                break
        if _configured is not None:
            # The environment (read by Numba at import and again before each compilation) and, if
            # Numba is already imported, its live config: both must agree or a reload would undo it.
            os.environ[VARIABLE] = _configured
    if "numba" in sys.modules and _configured is not None:
        from numba.core import config

        config.CACHE_DIR = _configured
    return _configured


def cache_directory() -> Optional[str]:
    """The directory compiled kernels are cached in (None: not cached)."""
    return configure()


def describe() -> str:
    """One line for ``scratchgen info``."""
    directory = configure()
    if directory is None:
        return "numba kernel cache: none (no writable directory; kernels compile in every process)"
    where = {"NUMBA_CACHE_DIR": "from NUMBA_CACHE_DIR", "default": "default",
             "temporary": "the home cache was not writable"}[_source]
    return f"numba kernel cache: {directory} ({where})"
