"""The ``numba-cuda`` backend: ``@cuda.jit`` kernels on GPU arrays.

Tensors on this backend hold CuPy arrays; the kernels take them through
``__cuda_array_interface__`` (no copy), and whatever the backend does not implement falls back
to CuPy (``numba-cuda -> cupy -> numpy``: the NumPy references run on CuPy arrays, matmuls on
cuBLAS). So on a real GPU this backend needs CuPy too.

Without a GPU, set ``NUMBA_ENABLE_CUDASIM=1`` *before numba is first imported* (the repository's
root conftest does): the same kernels then run in Numba's CUDA simulator, as Python threads on
host NumPy arrays, about a millisecond per simulated thread. That is for testing the kernels'
logic, never for speed.
"""
from __future__ import annotations

try:
    from numba import cuda
except ImportError as error:  # pragma: no cover - exercised by monkeypatching in the tests
    raise ImportError(f"the numba-cuda backend needs numba and numba-cuda, which are not installed ({error})") from error

from scratchgen.backend import BackendUnavailableError

from ._launch import PTX_CHECK, SIMULATED
from . import activations, attention, conv, divergences, losses, normalization, optim, rbm  # noqa: F401,E402  (register)


def _driver_problem() -> str:
    """Why Numba cannot use a GPU here (the driver's own message), or '' if it can."""
    try:
        if cuda.is_available():
            return ""
        cuda.current_context()  # raises with the driver's reason
    except Exception as error:  # CudaSupportError, CudaDriverError, library-not-found errors
        return " ".join(str(error).split())
    return "numba.cuda.is_available() is False"


def check_available() -> None:
    """Raise BackendUnavailableError unless the kernels can run (on a GPU, or in the simulator)."""
    if SIMULATED or PTX_CHECK:
        return
    problem = _driver_problem()
    if problem:
        raise BackendUnavailableError(
            f"backend 'numba-cuda' found no usable CUDA GPU: {problem}. On a machine without a GPU, "
            f"set NUMBA_ENABLE_CUDASIM=1 before importing numba to run these kernels in Numba's CUDA "
            f"simulator (for tests; it is slow)"
        )
    from scratchgen.device import _cuda_problem

    cupy_problem = _cuda_problem()
    if cupy_problem is not None:
        raise BackendUnavailableError(
            f"backend 'numba-cuda' keeps tensors as CuPy arrays, but {cupy_problem}; "
            f"install it with `pip install scratchgen[cuda]`"
        )


def info() -> str:
    import numba

    try:
        import numba_cuda

        version = f"numba-cuda {numba_cuda.__version__}"
    except (ImportError, AttributeError):
        version = "numba-cuda (version unknown)"
    if SIMULATED:
        return f"numba {numba.__version__}, {version}: CUDA *simulator* (NUMBA_ENABLE_CUDASIM=1), host arrays, not for speed"
    device = cuda.get_current_device()
    name = device.name.decode() if isinstance(device.name, bytes) else device.name
    return f"numba {numba.__version__}, {version}, GPU {name} (compute capability {device.compute_capability})"
