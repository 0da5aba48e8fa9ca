"""The ``numba`` backend: Numba CPU kernels (``njit(parallel=True)``) on NumPy arrays.

Importing this package registers every kernel below under backend "numba"; it fails with
ImportError when Numba is not installed (``scratchgen.set_backend("numba")`` turns that into
BackendUnavailableError with the install command). A kernel the backend does not implement,
or implements but keeps on NumPy because NumPy is faster (``scratchgen.backend.kernel_notes``),
runs the NumPy reference: Numba CPU works on the same host arrays, so that costs no copy.

Threads: ``NUMBA_NUM_THREADS`` (read when Numba is first imported) sets the pool size; training
coordinates it with BLAS's (``scratchgen/threads.py``: by default one thread each on a machine
with at most 2 cores, where two spinning pools slow each other down 10-20x), and idle OpenMP
workers sleep (``OMP_WAIT_POLICY=PASSIVE`` unless set). Two size rules keep small inputs cheap
(``_jit.py``): elementwise inputs under ``SMALL_INPUT`` elements go to NumPy, and loops under
``PARALLEL_MIN`` elements run their serial version on the calling thread.
"""
from __future__ import annotations

from . import _cache

_cache.configure()  # before Numba is imported and before any kernel is decorated (see _cache.py)


try:
    import numba
except ImportError as error:  # pragma: no cover - exercised by monkeypatching in the tests
    raise ImportError(f"the numba backend needs Numba, which is not installed ({error})") from error

from scratchgen.backend import BackendUnavailableError

import os  # noqa: E402

# Idle OpenMP workers sleep instead of spinning against BLAS's threads (scratchgen/threads.py).
# libgomp reads OMP_WAIT_POLICY once, when Numba's threading layer loads it: so set it (unless the
# user did), load the layer now, and take the variable out again, so that libraries and processes
# started later (PyTorch's own OpenMP, a benchmark's peer) see the environment the user gave.
PASSIVE_WAIT = "OMP_WAIT_POLICY" not in os.environ
if PASSIVE_WAIT:
    os.environ["OMP_WAIT_POLICY"] = "PASSIVE"
    try:
        numba.get_num_threads()  # starts the threading layer (libgomp reads the variable here)
    except Exception:  # no usable threading layer: parallel loops will say so when they run
        PASSIVE_WAIT = False
    finally:
        del os.environ["OMP_WAIT_POLICY"]

from . import activations, attention, conv, divergences, losses, normalization, optim, rbm  # noqa: F401,E402  (register)

MIN_NUMBA = (0, 61)


def _version_tuple(text: str):
    return tuple(int(part) for part in text.split(".")[:2] if part.isdigit())


def check_available() -> None:
    """Raise BackendUnavailableError if this Numba cannot run the kernels."""
    if _version_tuple(numba.__version__) < MIN_NUMBA:
        raise BackendUnavailableError(
            f"backend 'numba' needs numba >= {'.'.join(map(str, MIN_NUMBA))}, found {numba.__version__}; "
            f"upgrade with `pip install -U scratchgen[numba]`"
        )


def info() -> str:
    """Versions and threading, for ``scratchgen info``."""
    import llvmlite

    try:
        layer = numba.threading_layer()  # known once a parallel kernel has run
    except ValueError:
        layer = f"{numba.config.THREADING_LAYER} (picked at the first parallel call)"
    return (f"numba {numba.__version__}, llvmlite {llvmlite.__version__}, "
            f"{numba.get_num_threads()} thread(s) (NUMBA_NUM_THREADS), threading layer {layer}; {_cache.describe()}")
