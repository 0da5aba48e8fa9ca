"""Devices: where a tensor's numbers live, and the only places they move.

A device is ``"cpu"`` (the data is a NumPy array) or ``"cuda:i"`` (a CuPy array on GPU ``i``;
``"cuda"`` means the current GPU). Ops never move data: an op on CuPy arrays stays on the GPU
(the NumPy reference kernels use ``xp = get_array_module(x)``), and mixing a host array with a
device array is an error, not a hidden copy. Data moves only when asked::

    x_gpu = x.to("cuda")          # Tensor.to: host -> device copy
    model.to("cuda")              # Module.to: every parameter and buffer, in place
    x_host = x_gpu.numpy()        # device -> host copy (or x_gpu.to("cpu"))

GPU detection is explicit: ``import cupy`` succeeds on a machine without a GPU (and every
array operation then raises ``CUDARuntimeError``), so ``cuda_available()`` asks CuPy for a
device count and catches that error instead of trusting the import.
"""
from __future__ import annotations

import os
import platform
from typing import List, NamedTuple, Optional, Union

import numpy as np

from .backend import BackendUnavailableError, get_array_module

__all__ = ["Device", "parse_device", "device_of", "to_device", "to_numpy", "cuda_available",
           "synchronize", "describe_devices", "backend_device"]


class Device(NamedTuple):
    """``kind`` is "cpu" or "cuda"; ``index`` is the GPU number (None: the current GPU)."""

    kind: str
    index: Optional[int] = None

    def __str__(self) -> str:
        return self.kind if self.index is None else f"{self.kind}:{self.index}"


DeviceLike = Union[str, Device]


def parse_device(device: DeviceLike) -> Device:
    """``"cpu"``, ``"cuda"``, ``"cuda:1"`` (also ``"gpu"``) -> ``Device``; anything else is an error."""
    if isinstance(device, Device):
        return device
    text = str(device).strip().lower()
    if text == "cpu":
        return Device("cpu")
    kind, _, index = text.partition(":")
    if kind in ("cuda", "gpu"):
        if not index:
            return Device("cuda")
        if index.isdigit():
            return Device("cuda", int(index))
    raise ValueError(f"unknown device {device!r}; use 'cpu', 'cuda' or 'cuda:N'")


def device_of(array) -> Device:
    """The device holding ``array``: cpu for NumPy arrays, cuda:i for CuPy arrays."""
    if get_array_module(array) is np:
        return Device("cpu")
    return Device("cuda", int(array.device.id))


def _cupy():
    """CuPy, or BackendUnavailableError saying why a GPU array cannot be made here."""
    try:
        import cupy
    except ImportError as error:
        raise BackendUnavailableError(
            f"moving data to a GPU needs CuPy ({error}); install it with `pip install scratchgen[cuda]`"
        ) from error
    if not cuda_available():
        raise BackendUnavailableError(f"CuPy is installed but no CUDA GPU is usable here: {_cuda_problem()}")
    return cupy


def to_device(array, device: DeviceLike):
    """``array`` on ``device``: the same object if it is already there, else a copy."""
    target = parse_device(device)
    current = device_of(array)
    if target.kind == "cpu":
        return array if current.kind == "cpu" else array.get()
    cupy = _cupy()
    index = cupy.cuda.runtime.getDevice() if target.index is None else target.index
    if current.kind == "cuda" and current.index == index:
        return array
    with cupy.cuda.Device(index):
        if current.kind == "cuda":
            return cupy.array(array, copy=True)  # device -> device (asarray would return it unmoved)
        return cupy.asarray(array)  # host -> device


def to_numpy(array, dtype=None) -> np.ndarray:
    """A host NumPy array with the data of ``array`` (copies from the GPU if needed).

    ``array``: a NumPy or CuPy array, a Tensor (through its ``__array__``), or anything
    ``np.asarray`` takes. ``dtype``: cast to it (e.g. float64 for exact evaluation); no copy when
    it already matches. The one place in scratchgen where data leaves the device.
    """
    if get_array_module(array) is not np:
        array = array.get()
    return np.asarray(array, dtype=dtype)


def cuda_available() -> bool:
    """True only if CuPy imports *and* sees at least one working GPU."""
    return _cuda_problem() is None


def _cuda_problem() -> Optional[str]:
    """None if CuPy can use a GPU here, else a sentence saying why not."""
    try:
        import cupy
    except ImportError:
        return "CuPy is not installed (pip install scratchgen[cuda])"
    except Exception as error:  # a broken CUDA library install fails at import
        return f"importing CuPy failed ({type(error).__name__}: {error})"
    try:
        count = cupy.cuda.runtime.getDeviceCount()
    except Exception as error:  # CUDARuntimeError: no driver, no device, driver too old
        return f"CuPy cannot reach a GPU ({type(error).__name__}: {error})"
    if count == 0:
        return "CuPy sees no CUDA device"
    return None


def synchronize(device: DeviceLike = "cuda") -> None:
    """Wait until the GPU has finished its queued work (timing needs it; a no-op on cpu)."""
    if parse_device(device).kind == "cuda" and cuda_available():
        import cupy

        cupy.cuda.Device().synchronize()


def backend_device(backend: str) -> Device:
    """Where tensors must live for ``backend``: cpu for numpy/numba, cuda for cupy/numba-cuda.

    In Numba's CUDA simulator (``NUMBA_ENABLE_CUDASIM=1``) the numba-cuda kernels take host
    arrays, so there the answer is cpu.
    """
    if backend in ("cupy",) or (backend == "numba-cuda" and os.environ.get("NUMBA_ENABLE_CUDASIM") != "1"):
        return Device("cuda")
    return Device("cpu")


def cpu_name() -> str:
    """The CPU's model name (from /proc/cpuinfo on Linux), for ``scratchgen info`` and benchmarks."""
    try:
        with open("/proc/cpuinfo") as handle:
            for line in handle:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def describe_devices() -> List[str]:
    """One line per device: the CPU (cores) and every GPU CuPy sees (name, memory, capability)."""
    lines = [f"cpu: {cpu_name()}, {os.cpu_count()} logical cores"]
    problem = _cuda_problem()
    if problem is not None:
        lines.append(f"cuda: none ({problem})")
        return lines
    import cupy

    runtime = cupy.cuda.runtime
    for index in range(runtime.getDeviceCount()):
        props = runtime.getDeviceProperties(index)
        name = props["name"].decode() if isinstance(props["name"], bytes) else props["name"]
        memory = props["totalGlobalMem"] / 2**30
        lines.append(f"cuda:{index}: {name}, {memory:.0f} GiB, compute capability {props['major']}.{props['minor']}, "
                     f"{props['multiProcessorCount']} SMs")
    lines.append(f"cuda runtime {runtime.runtimeGetVersion()}, driver {runtime.driverGetVersion()}, cupy {cupy.__version__}")
    return lines
