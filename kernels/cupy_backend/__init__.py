"""The ``cupy`` backend: CuPy kernels (ElementwiseKernel, RawKernel) on CuPy arrays.

Everything not implemented here runs the NumPy reference *on CuPy arrays* (the references
use ``xp = get_array_module(x)``), so matmuls go to cuBLAS and reductions to CuPy's own
kernels; nothing is ever copied to the host behind the user's back.

``import cupy`` succeeds on a machine without a GPU (every array operation then raises
CUDARuntimeError), so ``check_available`` asks for a device explicitly.
"""
from __future__ import annotations

try:
    import cupy
except ImportError as error:  # pragma: no cover - exercised by monkeypatching in the tests
    raise ImportError(f"the cupy backend needs CuPy, which is not installed ({error})") from error

from scratchgen.backend import BackendUnavailableError

from . import activations, attention, conv, divergences, losses, normalization, optim, rbm  # noqa: F401,E402  (register)


def check_available() -> None:
    from scratchgen.device import _cuda_problem

    problem = _cuda_problem()
    if problem is not None:
        raise BackendUnavailableError(
            f"backend 'cupy' cannot run: {problem}. It needs an NVIDIA GPU with a working driver and the "
            f"CuPy wheel matching its CUDA version (`pip install scratchgen[cuda]` installs cupy-cuda13x)"
        )


def info() -> str:
    runtime = cupy.cuda.runtime
    props = runtime.getDeviceProperties(runtime.getDevice())
    name = props["name"].decode() if isinstance(props["name"], bytes) else props["name"]
    return f"cupy {cupy.__version__}, CUDA runtime {runtime.runtimeGetVersion()}, GPU {name}"
