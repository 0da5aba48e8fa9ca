"""The GPU benchmark rows of ``python -m benchmarks gpu``: scratchgen's two GPU backends beside PyTorch CUDA eager.

Run by ``benchmarks/gpu.py`` in a child process (``python -m benchmarks.gpu_bench OUT.json
[--quick] [--simulate]``); each row is a dict (keys in ``ROW_KEYS``), written to the JSON as
soon as its group is done, so a crash or a timeout keeps the rows measured before it.

How a time is taken (``Gpu``):

* ``first_call_s``: the first call alone, synchronised: Numba's JIT, CuPy's NVRTC compile,
  PyTorch's lazy initialisation. Reported, never mixed into the rest.
* ``device_s``: GPU time per call. A *spin kernel* first holds the stream for a few
  milliseconds; while it runs, Python enqueues a start event, ``number`` calls and a stop
  event, so the GPU then runs the calls back to back and the events time kernels only, not
  the Python between them. The median of several such samples.
* ``wall_s``: host time per call with everything included (``number`` calls, then a
  synchronisation): what a training loop pays. Where ``wall_s`` is far above ``device_s`` the
  row is launch-bound.

Rows (``--quick`` keeps the smaller sizes and fewer repeats):

* elementwise: sigmoid, BCE with logits forward and backward, the fused Adam update and the
  Gibbs sampling kernel (bias + sigmoid + Bernoulli draw) at 1M, 16M and 64M elements: GB/s of
  compulsory traffic (inputs read once, outputs written once) and its fraction of the device's
  peak bandwidth. Goal: >= 75% at >= 16M elements on both backends.
* gemm: the Numba tiled GEMM (``kernels/numba_cuda/gemm.py``) at 1024^3 and 4096^3 float32 beside
  cuBLAS (CuPy) and PyTorch (TF32 off): TFLOP/s and fraction of the FP32 peak. Goal: >= 30%.
* conv: conv2d and conv_transpose2d forward + backward at the DCGAN's layer sizes (batch 64).
* launch: one empty kernel launch from Python on each library.
* model: a VAE 784-400-20 epoch (data resident on the GPU, no host-device copy per step), a
  DCGAN step, an RBM PCD-1 epoch: time, our kernel launches per step, all kernels per step
  (CUDA profiler, through PyTorch's), and the share of the step that launch overhead explains.
  Goal: VAE epoch and DCGAN step <= 1.0x PyTorch eager.
* graph: (experimental) a VAE step captured as a CUDA graph with CuPy and replayed.

``--simulate``: the same code in Numba's CUDA simulator on host arrays, tiny sizes, numba-cuda
rows only: tests the plumbing, measures nothing worth reading.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time
import traceback
from typing import Callable, Dict, List, Optional

import numpy as np

ROW_KEYS = ("group", "name", "size", "backend", "status", "reason", "first_call_s", "device_s", "wall_s",
            "number", "gbs", "fraction_of_peak", "tflops", "launches", "cupti_kernels", "ratio_to_torch", "check",
            "extra")
SIZES = (1 << 20, 1 << 24, 1 << 26)  # 1M, 16M, 64M elements
QUICK_SIZES = (1 << 20, 1 << 24)
SIM_SIZES = (100,)
GEMM_SIZES = (1024, 4096)
SIM_GEMM_SIZES = (40,)
BANDWIDTH_GOAL, GEMM_GOAL, MODEL_GOAL = 0.75, 0.30, 1.0

# Documented fallbacks when the device does not report its clocks (CUDA 13 dropped them from
# cudaDeviceProp; the attributes usually still answer): vendor datasheet figures.
NOMINAL = {"H200": (4800.0, 66.9), "H100 PCIe": (2000.0, 51.2), "H100": (3350.0, 66.9), "A100-SXM4-80GB": (2039.0, 19.5),
           "A100": (1555.0, 19.5), "L40S": (864.0, 91.6), "A10": (600.0, 31.2), "T4": (320.0, 8.1)}
FP32_LANES_PER_SM = {(7, 0): 64, (7, 5): 64, (8, 0): 64, (8, 6): 128, (8, 7): 128, (8, 9): 128, (9, 0): 128,
                     (10, 0): 128, (12, 0): 128}


def row(group: str, name: str, size: str, backend: str, **fields) -> Dict:
    out = {key: None for key in ROW_KEYS}
    out.update(group=group, name=name, size=size, backend=backend, status="ok", extra={})
    for key, value in fields.items():
        if key in out:
            out[key] = value
        else:
            out["extra"][key] = value
    return out


def error_row(group, name, size, backend, error: BaseException) -> Dict:
    where = traceback.extract_tb(error.__traceback__)[-1:] if error.__traceback__ else []
    at = f" at {os.path.basename(where[0].filename)}:{where[0].lineno}" if where else ""
    return row(group, name, size, backend, status="error", reason=f"{type(error).__name__}: {error}"[:400] + at)


# ---- the device and how to time on it --------------------------------------------------------------
class Gpu:
    """A real GPU through CuPy: arrays, synchronisation, and kernel-only timing (module docstring)."""

    simulated = False

    def __init__(self):
        import cupy

        self.xp = cupy
        self._spin = cupy.RawKernel(r'''
extern "C" __global__ void sg_spin(long long cycles) {
    long long start = clock64();
    while (clock64() - start < cycles) { }
}''', "sg_spin")
        clock_khz = _attribute("ClockRate") or 1_500_000
        self.cycles_per_ms = clock_khz  # kHz = cycles per millisecond

    def sync(self) -> None:
        self.xp.cuda.Device().synchronize()

    def asarray(self, array):
        return self.xp.asarray(array)

    def spin(self, milliseconds: float) -> None:
        self._spin((1,), (1,), (np.int64(milliseconds * self.cycles_per_ms),))

    def device_time(self, fn: Callable, number: int, samples: int = 5, spin_ms: float = 20.0) -> float:
        """Median GPU seconds per call of ``fn`` (``number`` calls per sample, queued behind a spin kernel)."""
        cupy = self.xp
        times = []
        for _ in range(samples):
            start, stop = cupy.cuda.Event(), cupy.cuda.Event()
            self.sync()
            self.spin(spin_ms)
            start.record()
            for _ in range(number):
                fn()
            stop.record()
            stop.synchronize()
            times.append(cupy.cuda.get_elapsed_time(start, stop) / 1e3 / number)
        return float(np.median(times))

    def wall_time(self, fn: Callable, number: int, samples: int = 5) -> float:
        times = []
        for _ in range(samples):
            self.sync()
            start = time.perf_counter()
            for _ in range(number):
                fn()
            self.sync()
            times.append((time.perf_counter() - start) / number)
        return float(np.median(times))


class Simulator:
    """Numba's CUDA simulator: host arrays, no device; every 'device' time is a host time."""

    simulated = True
    xp = np

    def sync(self) -> None:
        pass

    def asarray(self, array):
        return np.asarray(array)

    def device_time(self, fn, number, samples=1, spin_ms=0.0):
        return self.wall_time(fn, number, samples)

    def wall_time(self, fn, number, samples=1):
        start = time.perf_counter()
        for _ in range(number):
            fn()
        return (time.perf_counter() - start) / number


def _attribute(name: str) -> Optional[int]:
    """A CUDA device attribute by CuPy's name (None when it cannot be read)."""
    try:
        import cupy

        return int(cupy.cuda.Device().attributes[name])
    except Exception:
        return None


def timed_first_call(gpu, fn) -> float:
    gpu.sync()
    start = time.perf_counter()
    fn()
    gpu.sync()
    return time.perf_counter() - start


def pick_number(gpu, fn, target_s: float = 0.005, cap: int = 200) -> int:
    """Calls per sample so a sample lasts about ``target_s`` of wall time (at least 1)."""
    once = gpu.wall_time(fn, 1, samples=1)
    return int(max(1, min(cap, math.ceil(target_s / max(once, 1e-7)))))


def measure(gpu, fn, quick: bool) -> Dict:
    """first call, device and wall seconds per call (see the module docstring)."""
    first = timed_first_call(gpu, fn)
    fn()
    number = pick_number(gpu, fn, 0.002 if quick else 0.005)
    samples = 3 if quick or gpu.simulated else 7
    return {"first_call_s": first, "number": number, "device_s": gpu.device_time(fn, number, samples),
            "wall_s": gpu.wall_time(fn, number, samples)}


# ---- the header: what the numbers were measured on -------------------------------------------------
def device_header(gpu) -> Dict:
    """Device name, driver, runtime, clocks, and the two ceilings (peak bandwidth, FP32 peak) with their sources."""
    from benchmarks.machine import _version

    versions = {name: _version(name) for name in ("numpy", "numba", "numba-cuda", "cupy", "torch")}
    if gpu.simulated:
        return {"device": "Numba CUDA simulator (no GPU: nothing here is a measurement)", "simulated": True,
                "versions": versions}
    import cupy

    runtime = cupy.cuda.runtime
    index = runtime.getDevice()
    props = runtime.getDeviceProperties(index)
    name = props["name"].decode() if isinstance(props["name"], bytes) else str(props["name"])
    cc = (int(props["major"]), int(props["minor"]))
    sms = int(props["multiProcessorCount"])
    header = {"device": name, "simulated": False, "compute_capability": f"{cc[0]}.{cc[1]}", "sms": sms,
              "memory_gib": round(props["totalGlobalMem"] / 2**30, 1), "cuda_runtime": runtime.runtimeGetVersion(),
              "cuda_driver_api": runtime.driverGetVersion(), "driver": _driver_version(), "versions": versions}
    memory_khz = _attribute("MemoryClockRate") or props.get("memoryClockRate")
    bus_bits = _attribute("GlobalMemoryBusWidth") or props.get("memoryBusWidth")
    nominal = next((value for key, value in NOMINAL.items() if key in name), None)
    if memory_khz and bus_bits:
        header["peak_memory_gbs"] = 2 * memory_khz * 1e3 * bus_bits / 8 / 1e9  # double data rate
        header["peak_memory_source"] = f"device: memory clock {memory_khz / 1e3:.0f} MHz x {bus_bits}-bit bus x 2"
    elif nominal:
        header["peak_memory_gbs"], header["peak_memory_source"] = nominal[0], f"datasheet table ({name})"
    clock_khz = _attribute("ClockRate") or props.get("clockRate")
    lanes = FP32_LANES_PER_SM.get(cc)
    if clock_khz and lanes:
        header["peak_fp32_tflops"] = 2 * sms * lanes * clock_khz * 1e3 / 1e12
        header["peak_fp32_source"] = (f"device: {sms} SMs x {lanes} FP32 lanes x 2 x {clock_khz / 1e3:.0f} MHz "
                                      f"(boost clock)")
    elif nominal:
        header["peak_fp32_tflops"], header["peak_fp32_source"] = nominal[1], f"datasheet table ({name})"
    header["copy_gbs"] = _copy_bandwidth(gpu)
    return header


def _driver_version() -> Optional[str]:
    try:
        import subprocess

        out = subprocess.run(["nvidia-smi", "--query-gpu=driver_version", "--format=csv,noheader"],
                             capture_output=True, text=True, timeout=20)
        return out.stdout.strip().splitlines()[0] if out.returncode == 0 and out.stdout.strip() else None
    except Exception:
        return None


def _copy_bandwidth(gpu) -> float:
    """GB/s of a 1 GiB device-to-device copy, counting bytes read plus bytes written (the ceiling we reach for)."""
    cupy = gpu.xp
    src = cupy.ones(1 << 30, dtype=cupy.uint8)
    dst = cupy.empty_like(src)
    seconds = gpu.device_time(lambda: cupy.copyto(dst, src), 3, samples=5, spin_ms=2.0)
    return 2 * (1 << 30) / seconds / 1e9


# ---- torch -------------------------------------------------------------------------------------------
def load_torch(gpu):
    """PyTorch on CUDA, TF32 off (FP32 arithmetic, as ours), or None with the reason."""
    if gpu.simulated:
        return None, "simulator: no CUDA device for PyTorch"
    try:
        import torch
    except ImportError as error:
        return None, f"PyTorch is not installed ({error})"
    if not torch.cuda.is_available():
        return None, "PyTorch sees no CUDA device (a CPU-only build?)"
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    return torch, None


def torch_from(gpu, torch, array):
    """A torch CUDA tensor sharing ``array``'s memory (DLPack, no copy)."""
    return torch.from_dlpack(array)


# ---- elementwise rows --------------------------------------------------------------------------------
def _elementwise_cases(gpu, n: int, rng):
    """name -> (device arguments, bytes of compulsory traffic, kernel name, torch fn(torch, targs))."""
    f32 = np.float32

    def normal(*shape, scale=1.0):
        return gpu.asarray((rng.standard_normal(shape) * scale).astype(f32))

    def uniform(*shape):
        return gpu.asarray(rng.random(shape).astype(f32))

    cases = {}
    x = normal(n, scale=4.0)
    cases["sigmoid_forward"] = ((x,), 2 * 4 * n, "sigmoid_forward", lambda t, a: t.sigmoid(a[0]))
    z, target = normal(n, scale=4.0), uniform(n)
    cases["bce_with_logits_forward"] = (
        (z, target), 3 * 4 * n, "sigmoid_bce_with_logits_forward",
        lambda t, a: t.nn.functional.binary_cross_entropy_with_logits(a[0], a[1], reduction="none"))
    g = normal(n)
    cases["bce_with_logits_backward"] = (
        (g, z, target), 4 * 4 * n, "sigmoid_bce_with_logits_backward", lambda t, a: a[0] * (t.sigmoid(a[1]) - a[2]))
    return cases


def elementwise_rows(gpu, torch, sizes, quick, log) -> List[Dict]:
    from scratchgen import backend

    rows = []
    backends = ["numba-cuda"] + ([] if gpu.simulated else ["cupy"])
    for n in sizes:
        rng = np.random.default_rng(n)
        label = f"{n / 2**20:g}M" if n >= 2**20 else str(n)
        for name, (args, nbytes, kernel_name, torch_fn) in _elementwise_cases(gpu, n, rng).items():
            expected = None
            for backend_name in backends:
                fn = backend.implementation(kernel_name, backend_name)
                rows.append(_rate_row(gpu, "elementwise", name, label, backend_name, lambda: fn(*args), nbytes, quick))
                got = fn(*args)
                expected = got if expected is None else expected
                rows[-1]["check"] = _agreement(got, expected)
            if torch is not None:
                targs = [torch_from(gpu, torch, a) for a in args]
                rows.append(_rate_row(gpu, "elementwise", name, label, "torch", lambda: torch_fn(torch, targs), nbytes,
                                      quick))
                rows[-1]["check"] = _agreement(torch_fn(torch, targs), expected, torch)
            log(_brief(rows[-1]))
        rows += _adam_rows(gpu, torch, n, label, quick, log)
        rows += _gibbs_rows(gpu, torch, n, label, quick, log)
        del rng
    _ratios(rows)
    return rows


def _agreement(got, expected, torch=None) -> Dict:
    from scratchgen.device import to_numpy
    from scratchgen.kernels.testing import relative_error

    if torch is not None:
        got = got.detach().cpu().numpy()
    error = relative_error(to_numpy(got), to_numpy(expected))
    return {"max_rel_err_vs_first_backend": error, "ok": bool(error < 1e-4)}


def _rate_row(gpu, group, name, label, backend_name, fn, nbytes, quick) -> Dict:
    try:
        times = measure(gpu, fn, quick)
    except Exception as error:
        return error_row(group, name, label, backend_name, error)
    gbs = nbytes / times["device_s"] / 1e9
    return row(group, name, label, backend_name, gbs=gbs, bytes=nbytes, **times)


def _adam_rows(gpu, torch, n, label, quick, log) -> List[Dict]:
    """The fused update of all parameters at once: n parameters in the VAE's ten shapes, scaled."""
    from scratchgen import backend

    shapes = [(400, 784), (400,), (20, 400), (20,), (20, 400), (20,), (400, 20), (400,), (784, 400), (784,)]
    if gpu.simulated:
        shapes = [(3, 5), (3,), (2, 3), (2,)]
    total = sum(int(np.prod(s)) for s in shapes)
    scale = max(1, round(n / total))
    shapes = [(s[0] * scale,) + s[1:] for s in shapes]
    count = sum(int(np.prod(s)) for s in shapes)
    rng = np.random.default_rng(1)
    nbytes = 7 * 4 * count  # read p g m v, write p m v

    def state():
        return [[gpu.asarray(rng.standard_normal(s).astype(np.float32) * k) for s in shapes] for k in (1.0, 1.0, 0.1, 0.0)]

    rows = []
    size = f"{count / 2**20:.1f}M params in 10 arrays"
    for backend_name in ["numba-cuda"] + ([] if gpu.simulated else ["cupy"]):
        params, grads, m, v = state()
        fn = backend.implementation("adam_update", backend_name)
        step = [0]

        def update():
            step[0] += 1
            fn(params, grads, m, v, step[0], 1e-3, 0.9, 0.999, 1e-8, 0.0)

        rows.append(_rate_row(gpu, "elementwise", "adam_update", size, backend_name, update, nbytes, quick))
        log(_brief(rows[-1]))
    if torch is not None:
        for label_, options in (("torch (fused)", {"fused": True}), ("torch (foreach)", {"foreach": True})):
            params, grads, _, _ = state()
            tparams = [torch.nn.Parameter(torch_from(gpu, torch, p)) for p in params]
            for p, g in zip(tparams, grads):
                p.grad = torch_from(gpu, torch, g)
            optimizer = torch.optim.Adam(tparams, lr=1e-3, **options)
            rows.append(_rate_row(gpu, "elementwise", "adam_update", size, label_, optimizer.step, nbytes, quick))
            log(_brief(rows[-1]))
    return rows


def _gibbs_rows(gpu, torch, n, label, quick, log) -> List[Dict]:
    """The fused bias + sigmoid + Bernoulli kernel of a Gibbs half-step on an (n / 500, 500) layer (no GEMM)."""
    from scratchgen.kernels.numba_cuda import _launch as numba_launch
    from scratchgen.kernels.numba_cuda import rbm as numba_rbm

    width = 500
    rows_ = max(1, n // width)
    rng = np.random.default_rng(2)
    pre = gpu.asarray(rng.standard_normal((rows_, width)).astype(np.float32))
    bias = gpu.asarray(rng.standard_normal(width).astype(np.float32))
    uniforms = gpu.asarray(rng.random((rows_, width)).astype(np.float32))
    sample = gpu.xp.empty_like(pre)
    elements = rows_ * width
    nbytes = 4 * 4 * elements  # read pre and u, write prob and sample
    size = f"{rows_}x{width}"
    out = []
    kernel = numba_launch.configure(numba_rbm._bias_sigmoid_sample, *numba_rbm._sample_grid(rows_, width))
    out.append(_rate_row(gpu, "elementwise", "gibbs_sample", size, "numba-cuda",
                         lambda: kernel(pre, bias, uniforms, sample), nbytes, quick))
    log(_brief(out[-1]))
    if not gpu.simulated:
        from scratchgen.kernels.cupy_backend import rbm as cupy_rbm

        out.append(_rate_row(gpu, "elementwise", "gibbs_sample", size, "cupy",
                             lambda: cupy_rbm._sample(pre, bias, uniforms), nbytes, quick))
        log(_brief(out[-1]))
    if torch is not None:
        t_pre, t_bias, t_u = (torch_from(gpu, torch, a) for a in (pre, bias, uniforms))

        def torch_sample():
            prob = torch.sigmoid(t_pre + t_bias)
            return prob, (t_u < prob).to(prob.dtype)

        out.append(_rate_row(gpu, "elementwise", "gibbs_sample", size, "torch", torch_sample, nbytes, quick))
        log(_brief(out[-1]))
    return out


# ---- GEMM -------------------------------------------------------------------------------------------
def gemm_rows(gpu, torch, sizes, quick, log) -> List[Dict]:
    from scratchgen.kernels.numba_cuda import gemm
    from scratchgen.kernels.testing import relative_error
    from scratchgen.device import to_numpy

    rows = []
    for size in sizes:
        rng = np.random.default_rng(size)
        a = gpu.asarray(rng.standard_normal((size, size)).astype(np.float32))
        b = gpu.asarray(rng.standard_normal((size, size)).astype(np.float32))
        flops = gemm.gemm_flops(size, size, size)
        label = f"{size}^3 float32"
        reference = a @ b  # cuBLAS on the GPU, NumPy's BLAS in the simulator
        sides = [("numba-cuda tiled", lambda: gemm.matmul_tiled(a, b))]
        if not gpu.simulated:
            sides.append(("cublas (cupy)", lambda: a @ b))
        if torch is not None:
            ta, tb = torch_from(gpu, torch, a), torch_from(gpu, torch, b)
            sides.append(("torch", lambda: ta @ tb))
        for backend_name, fn in sides:
            try:
                times = measure(gpu, fn, quick)
                result = fn()
                got = result.detach().cpu().numpy() if torch is not None and hasattr(result, "detach") else to_numpy(result)
                error = relative_error(got, to_numpy(reference))
                rows.append(row("gemm", "gemm", label, backend_name, tflops=flops / times["device_s"] / 1e12,
                                check={"max_rel_err_vs_cublas": error, "ok": bool(error < 1e-4)}, flops=flops, **times))
            except Exception as error:
                rows.append(error_row("gemm", "gemm", label, backend_name, error))
            log(_brief(rows[-1]))
    return rows


# ---- conv ---------------------------------------------------------------------------------------------
CONV_LAYERS = {  # the DCGAN on 28x28, batch 64 (benchmarks/bench_kernels.py)
    "conv2d D1 64x1x28x28->64": ("conv", 1, 64, 28),
    "conv2d D2 64x64x14x14->128": ("conv", 64, 128, 14),
    "conv_transpose2d G1 64x128x7x7->64": ("deconv", 128, 64, 7),
    "conv_transpose2d G2 64x64x14x14->1": ("deconv", 64, 1, 14),
}
SIM_CONV_LAYERS = {"conv2d 2x1x8x8->2": ("conv", 1, 2, 8), "conv_transpose2d 2x2x4x4->1": ("deconv", 2, 1, 4)}


def conv_rows(gpu, torch, batch, quick, log) -> List[Dict]:
    import scratchgen as sg
    from scratchgen.kernels import launches

    rows = []
    for label, (kind, c_in, c_out, size) in (SIM_CONV_LAYERS if gpu.simulated else CONV_LAYERS).items():
        rng = np.random.default_rng(c_in * c_out)
        x = rng.standard_normal((batch, c_in, size, size)).astype(np.float32)
        w_shape = (c_out, c_in, 4, 4) if kind == "conv" else (c_in, c_out, 4, 4)
        w = (rng.standard_normal(w_shape) * 0.05).astype(np.float32)
        bias = rng.standard_normal(c_out).astype(np.float32)
        for backend_name in ["numba-cuda"] + ([] if gpu.simulated else ["cupy"]):
            with sg.use_backend(backend_name):
                leaves = [sg.Tensor(gpu.asarray(a), requires_grad=True) for a in (x, w, bias)]
                op = sg.conv2d if kind == "conv" else sg.conv_transpose2d

                def step():
                    for leaf in leaves:
                        leaf.grad = None
                    out = op(*leaves, stride=2, padding=1)
                    out.backward(out.data)  # upstream gradient: the output itself (no extra op)

                try:
                    times = measure(gpu, step, quick)
                    with launches.counting() as counts:
                        step()
                    rows.append(row("conv", label, f"batch {batch}", backend_name, launches=sum(counts.values()), **times))
                except Exception as error:
                    rows.append(error_row("conv", label, f"batch {batch}", backend_name, error))
            log(_brief(rows[-1]))
        if torch is not None:
            F = torch.nn.functional
            tl = [torch.tensor(a, device="cuda", requires_grad=True) for a in (x, w, bias)]
            op = F.conv2d if kind == "conv" else F.conv_transpose2d

            def torch_step():
                for leaf in tl:
                    leaf.grad = None
                out = op(*tl, stride=2, padding=1)
                out.backward(out.detach())

            try:
                rows.append(row("conv", label, f"batch {batch}", "torch", **measure(gpu, torch_step, quick)))
            except Exception as error:
                rows.append(error_row("conv", label, f"batch {batch}", "torch", error))
            log(_brief(rows[-1]))
    _ratios(rows, key="wall_s")
    return rows


# ---- launch overhead ------------------------------------------------------------------------------------
def launch_rows(gpu, torch, quick, log) -> List[Dict]:
    """Host seconds per launch of an (almost) empty kernel: the floor under every kernel of a step."""
    from numba import cuda

    from scratchgen.kernels.numba_cuda import _launch as numba_launch

    count = 20 if gpu.simulated else (500 if quick else 2000)
    one = gpu.xp.zeros(1, np.float32)

    @cuda.jit
    def sg_empty(x):
        pass

    sides = [("numba-cuda", "@cuda.jit kernel, one array argument", lambda: numba_launch.configure(sg_empty, 1, 32)(one))]
    if not gpu.simulated:
        import cupy

        empty_raw = cupy.RawKernel('extern "C" __global__ void sg_empty_raw(float* x) { }', "sg_empty_raw")
        copy = cupy.ElementwiseKernel("T x", "T y", "y = x;", "sg_copy_one")
        sides += [("cupy", "RawKernel, one array argument", lambda: empty_raw((1,), (32,), (one,))),
                  ("cupy", "ElementwiseKernel on 1 element (allocates its output)", lambda: copy(one))]
    if torch is not None:
        tone = torch_from(gpu, torch, one)
        sides.append(("torch", "in-place add on 1 element", lambda: tone.add_(0.0)))
    rows = []
    for backend_name, what, fn in sides:
        try:
            fn()
            gpu.sync()
            seconds = gpu.wall_time(fn, count, samples=3)
            rows.append(row("launch", "empty launch", what, backend_name, wall_s=seconds, number=count))
        except Exception as error:
            rows.append(error_row("launch", "empty launch", what, backend_name, error))
        log(_brief(rows[-1]))
    return rows


# ---- models -----------------------------------------------------------------------------------------------
def model_rows(gpu, torch, quick, log, overhead: Dict[str, float]) -> List[Dict]:
    rows = []
    for builder in (_vae_rows, _dcgan_rows, _rbm_rows):
        try:
            rows += builder(gpu, torch, quick, log)
        except Exception as error:
            rows.append(error_row("model", builder.__name__.strip("_").replace("_rows", ""), "", "-", error))
            log(_brief(rows[-1]))
    for r in rows:
        per_launch = overhead.get(r["backend"])
        steps = (r["extra"] or {}).get("steps_per_epoch", 1)
        if per_launch and r.get("launches") and r.get("wall_s"):
            r["extra"]["launch_overhead_share"] = r["launches"] * per_launch * steps / r["wall_s"]
    _ratios(rows, key="wall_s")
    return rows


def _training_data(gpu, n: int):
    """(x on the device (n, 784) float32, description): Fashion-MNIST if it is found here, else a stand-in."""
    try:
        from scratchgen.data import load_dataset

        data = load_dataset("fashion-mnist", val_fraction=0.0)
        x = data.train.x.reshape(len(data.train.x), -1)[:n].astype(np.float32)
        return gpu.asarray(x), f"Fashion-MNIST, {len(x)} training images ({data.source})"
    except Exception as error:
        x = np.random.default_rng(0).random((n, 784)).astype(np.float32)
        return gpu.asarray(x), (f"stand-in: {n} x 784 uniform grey levels (Fashion-MNIST not found: "
                                f"{str(error).splitlines()[0][:120]}); the time does not depend on the pixel values")


def _noise(gpu, seed: int):
    """A device generator of standard normals (no host draw, no copy per step)."""
    if gpu.simulated:
        rng = np.random.default_rng(seed)
        return lambda shape: rng.standard_normal(shape).astype(np.float32)
    generator = gpu.xp.random.RandomState(seed)  # the legacy API: in every CuPy version
    return lambda shape: generator.standard_normal(shape, dtype=np.float32)


def _epoch_timing(gpu, run_epoch, epochs: int) -> Dict:
    first = timed_first_call(gpu, run_epoch)
    times = [timed_first_call(gpu, run_epoch) for _ in range(epochs)]
    return {"first_call_s": first, "wall_s": float(np.median(times)), "number": epochs, "epochs_s": times}


def _count_step(gpu, step) -> Dict:
    """Our launches in one step (the counter), and every kernel the GPU ran (CUDA profiler), if it works."""
    from scratchgen.kernels import launches

    with launches.counting() as counts:
        step()
    gpu.sync()
    return {"launches": sum(counts.values()), "top_kernels": launches.top(counts, 8),
            "cupti_kernels": _cupti_kernel_count(gpu, step)}


def _cupti_kernel_count(gpu, step):
    """Kernels launched on the GPU during ``step`` (all libraries: ours, CuPy's, cuBLAS, PyTorch), via
    PyTorch's profiler (CUPTI); or a string saying why not."""
    if gpu.simulated:
        return "simulator"
    try:
        import tempfile

        import torch
        from torch.profiler import ProfilerActivity, profile

        gpu.sync()
        with profile(activities=[ProfilerActivity.CUDA]) as prof:
            step()
            gpu.sync()
        with tempfile.TemporaryDirectory() as tmp:
            path = os.path.join(tmp, "trace.json")
            prof.export_chrome_trace(path)
            with open(path) as handle:
                events = json.load(handle).get("traceEvents", [])
        del torch
        return sum(1 for e in events if e.get("cat") == "kernel")
    except Exception as error:
        return f"unavailable ({type(error).__name__}: {str(error)[:120]})"


def _vae_rows(gpu, torch, quick, log) -> List[Dict]:
    """VAE 784-400-20, batch 128, Adam 1e-3: one epoch with the data on the GPU, batches gathered on the
    device, eps drawn on the device, the loss summed on the device and read once per epoch."""
    import scratchgen as sg
    from scratchgen.models.vae.vae import VAE

    n = 16 if gpu.simulated else (20_000 if quick else 60_000)
    batch = 8 if gpu.simulated else 128
    hidden, latent = (16, 4) if gpu.simulated else (400, 20)
    epochs = 1 if quick or gpu.simulated else 2
    x, source = _training_data(gpu, n)
    xp = gpu.xp
    steps = math.ceil(n / batch)
    size = f"784-{hidden}-{latent}, batch {batch}, {n} images"
    rows = []
    for backend_name in ["numba-cuda"] + ([] if gpu.simulated else ["cupy"]):
        with sg.use_backend(backend_name):
            model = VAE((1, 28, 28), hidden=hidden, latent=latent, lr=1e-3, rng=0)
            if not gpu.simulated:
                model.to("cuda")
            optimizer = model.optimizers["model"]
            eps_of = _noise(gpu, 1)
            order_rng = xp.random.RandomState(2)  # CuPy's on the device (permutation without a host copy)
            total = {"loss": None}

            def step(xb):
                loss, _ = model.loss(xb, eps_of((len(xb), latent)))
                optimizer.zero_grad()
                loss.backward()
                optimizer.step()
                total["loss"] = loss.data * len(xb) if total["loss"] is None else total["loss"] + loss.data * len(xb)

            def epoch():
                order = order_rng.permutation(n)
                for start in range(0, n, batch):
                    step(x[order[start:start + batch]])
                float(total["loss"])  # the one host read of the epoch

            try:
                timing = _epoch_timing(gpu, epoch, epochs)
                counted = _count_step(gpu, lambda: step(x[:batch]))
                rows.append(row("model", "vae_epoch", size, backend_name, steps_per_epoch=steps, data=source,
                                train_loss=float(total["loss"]) / (n * (epochs + 2)), **counted, **timing))
            except Exception as error:
                rows.append(error_row("model", "vae_epoch", size, backend_name, error))
        log(_brief(rows[-1]))
    if torch is not None:
        rows.append(_torch_vae_row(torch, gpu, x, n, batch, epochs, steps, size, source))
        log(_brief(rows[-1]))
    return rows


def _torch_vae_row(torch, gpu, x, n, batch, epochs, steps, size, source) -> Dict:
    from benchmarks.bench_vae import _torch_vae

    model = _torch_vae(torch, 0).cuda()
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    tx = torch_from(gpu, torch, x)
    total = {"loss": None}

    def step(xb):
        optimizer.zero_grad()
        loss = model.loss(xb)
        loss.backward()
        optimizer.step()
        total["loss"] = loss.detach() * len(xb) if total["loss"] is None else total["loss"] + loss.detach() * len(xb)

    def epoch():
        order = torch.randperm(n, device="cuda")
        for start in range(0, n, batch):
            step(tx[order[start:start + batch]])
        float(total["loss"])

    try:
        timing = _epoch_timing(gpu, epoch, epochs)
        counted = {"cupti_kernels": _cupti_kernel_count(gpu, lambda: step(tx[:batch]))}
        return row("model", "vae_epoch", size, "torch", steps_per_epoch=steps, data=source, **counted, **timing)
    except Exception as error:
        return error_row("model", "vae_epoch", size, "torch", error)


def _dcgan_rows(gpu, torch, quick, log) -> List[Dict]:
    """One DCGAN training step (a D step and a G step, batch 64, 28x28): ``GAN.adversarial_step``'s
    arithmetic with the batch and both noise draws on the device and no per-step host read."""
    import scratchgen as sg
    from benchmarks.bench_dcgan import build_ours
    from scratchgen.models import DataInfo, build_model
    from scratchgen.tensor import Tensor

    batch, latent, side = (2, 3, 8) if gpu.simulated else (64, 100, 28)
    steps = 1 if gpu.simulated else (10 if quick else 30)
    x, _ = _training_data(gpu, 20 * batch)
    real_batches = [x[i * batch:(i + 1) * batch, :side * side].reshape(batch, 1, side, side) * 2 - 1 for i in range(20)]
    size = f"{side}x{side}, batch {batch}"
    rows = []
    for backend_name in ["numba-cuda"] + ([] if gpu.simulated else ["cupy"]):
        with sg.use_backend(backend_name):
            if gpu.simulated:
                model = build_model("dcgan", {"latent_dim": latent, "width": 2}, DataInfo((1, side, side), 10),
                                    np.random.default_rng(0))
            else:
                model = build_ours(0).to("cuda")
            noise = _noise(gpu, 3)
            d_opt, g_opt = model.optimizers["discriminator"], model.optimizers["generator"]
            state = {"i": 0}

            def step():
                real = real_batches[state["i"] % len(real_batches)]
                state["i"] += 1
                with sg.no_grad():
                    fake = model.generate(noise((batch, latent))).data
                d_opt.zero_grad()
                d_loss, _, _ = model.discriminator_loss(Tensor(real), Tensor(fake))
                d_loss.backward()
                d_opt.step()
                g_opt.zero_grad()
                model.discriminator.requires_grad_(False)
                g_loss, _, _ = model.generator_loss(noise((batch, latent)))
                g_loss.backward()
                model.discriminator.requires_grad_(True)
                g_opt.step()

            try:
                model.train()
                first = timed_first_call(gpu, step)
                for _ in range(0 if gpu.simulated else 2):
                    step()
                seconds = gpu.wall_time(step, steps, samples=1 if gpu.simulated else 3)
                counted = _count_step(gpu, step)
                rows.append(row("model", "dcgan_step", size, backend_name, first_call_s=first, wall_s=seconds,
                                number=steps, **counted))
            except Exception as error:
                rows.append(error_row("model", "dcgan_step", size, backend_name, error))
        log(_brief(rows[-1]))
    if torch is not None:
        rows.append(_torch_dcgan_row(torch, gpu, real_batches, batch, latent, steps, size))
        log(_brief(rows[-1]))
    return rows


def _torch_dcgan_row(torch, gpu, real_batches, batch, latent, steps, size) -> Dict:
    from benchmarks.bench_dcgan import BETAS, LR, build_ours, build_torch

    F = torch.nn.functional
    try:
        generator, discriminator = (net.cuda() for net in build_torch(torch, build_ours(0)))
        opt_g = torch.optim.Adam(generator.parameters(), lr=LR, betas=BETAS)
        opt_d = torch.optim.Adam(discriminator.parameters(), lr=LR, betas=BETAS)
        treal = [torch_from(gpu, torch, r) for r in real_batches]
        state = {"i": 0}

        def step():
            real = treal[state["i"] % len(treal)]
            state["i"] += 1
            with torch.no_grad():
                fake = generator(torch.randn(batch, latent, device="cuda"))
            opt_d.zero_grad()
            d_loss = F.softplus(-discriminator(real)).mean() + F.softplus(discriminator(fake)).mean()
            d_loss.backward()
            opt_d.step()
            opt_g.zero_grad()
            for p in discriminator.parameters():
                p.requires_grad_(False)
            g_loss = F.softplus(-discriminator(generator(torch.randn(batch, latent, device="cuda")))).mean()
            g_loss.backward()
            for p in discriminator.parameters():
                p.requires_grad_(True)
            opt_g.step()

        first = timed_first_call(gpu, step)
        for _ in range(2):
            step()
        seconds = gpu.wall_time(step, steps, samples=3)
        return row("model", "dcgan_step", size, "torch", first_call_s=first, wall_s=seconds, number=steps,
                   cupti_kernels=_cupti_kernel_count(gpu, step))
    except Exception as error:
        return error_row("model", "dcgan_step", size, "torch", error)


def _rbm_rows(gpu, torch, quick, log) -> List[Dict]:
    """Bernoulli RBM 784-256, PCD-1, 64 chains, batch 64, lr 0.01, plain SGD: one epoch of ``update``
    (no monitor) with the binarised data on the device; the uniforms come from a CuPy generator."""
    import scratchgen as sg
    from scratchgen.models.boltzmann.bernoulli_rbm import BernoulliRBM

    n = 16 if gpu.simulated else (20_000 if quick else 60_000)
    batch, hidden = (8, 8) if gpu.simulated else (64, 256)
    epochs = 1
    x, source = _training_data(gpu, n)
    x = (x > 0.5).astype(np.float32)
    steps = math.ceil(n / batch)
    size = f"784-{hidden} PCD-1, batch {batch}, {n} images"
    rows = []
    for backend_name in ["numba-cuda"] + ([] if gpu.simulated else ["cupy"]):
        with sg.use_backend(backend_name):
            rbm = BernoulliRBM(784, hidden, persistent=True, n_chains=batch, lr=0.01, rng=0)
            if not gpu.simulated:
                rbm.to("cuda")
            rng = np.random.default_rng(1)

            def epoch():
                for start in range(0, n - batch + 1, batch):
                    rbm.update(x[start:start + batch], rng, monitor=False)

            try:
                timing = _epoch_timing(gpu, epoch, epochs)
                counted = _count_step(gpu, lambda: rbm.update(x[:batch], rng, monitor=False))
                rows.append(row("model", "rbm_pcd1_epoch", size, backend_name, steps_per_epoch=steps, data=source,
                                **counted, **timing))
            except Exception as error:
                rows.append(error_row("model", "rbm_pcd1_epoch", size, backend_name, error))
        log(_brief(rows[-1]))
    if torch is not None:
        rows.append(_torch_rbm_row(torch, gpu, x, n, batch, hidden, steps, size, source))
        log(_brief(rows[-1]))
    return rows


def _torch_rbm_row(torch, gpu, x, n, batch, hidden, steps, size, source) -> Dict:
    """PCD-1 in PyTorch eager: the same five GEMMs, sigmoids and draws, SGD by hand."""
    try:
        gen = torch.Generator(device="cuda").manual_seed(0)
        w = torch.randn(784, hidden, device="cuda", generator=gen) * 0.01
        b, c = torch.zeros(784, device="cuda"), torch.zeros(hidden, device="cuda")
        chains = torch.zeros(batch, hidden, device="cuda")
        tx = torch_from(gpu, torch, x)

        def update(v):
            nonlocal chains
            h_pos = torch.sigmoid(v @ w + c)
            v_prob = torch.sigmoid(chains @ w.T + b)
            v_neg = (torch.rand_like(v_prob) < v_prob).float()
            h_neg = torch.sigmoid(v_neg @ w + c)
            chains = (torch.rand_like(h_neg) < h_neg).float()
            w.add_(0.01 / batch * (v.T @ h_pos - v_neg.T @ h_neg))
            b.add_(0.01 * (v.mean(0) - v_neg.mean(0)))
            c.add_(0.01 * (h_pos.mean(0) - h_neg.mean(0)))

        def epoch():
            for start in range(0, n - batch + 1, batch):
                update(tx[start:start + batch])

        timing = _epoch_timing(gpu, epoch, 1)
        return row("model", "rbm_pcd1_epoch", size, "torch", steps_per_epoch=steps, data=source,
                   cupti_kernels=_cupti_kernel_count(gpu, lambda: update(tx[:batch])), **timing)
    except Exception as error:
        return error_row("model", "rbm_pcd1_epoch", size, "torch", error)


# ---- CUDA graphs (experimental) ----------------------------------------------------------------------------
def graph_rows(gpu, quick, log) -> List[Dict]:
    """Capture one VAE step (forward, backward, Adam) on a CuPy stream and replay it: how much of the
    step is launch overhead. Static input buffers; a capture failure is reported, never a failed check."""
    if gpu.simulated:
        return [row("graph", "vae_step_graph", "", "-", status="skipped", reason="simulator")]
    import cupy

    import scratchgen as sg
    from scratchgen.models.vae.vae import VAE

    rows = []
    for backend_name in ("cupy", "numba-cuda"):
        size = "784-400-20, batch 128"
        try:
            with sg.use_backend(backend_name):
                model = VAE((1, 28, 28), hidden=400, latent=20, lr=1e-3, rng=0).to("cuda")
                optimizer = model.optimizers["model"]
                xb = cupy.random.default_rng(0).random((128, 784), dtype=np.float32)
                eps = cupy.random.default_rng(1).standard_normal((128, 20), dtype=np.float32)

                def step():
                    loss, _ = model.loss(xb, eps)
                    optimizer.zero_grad()
                    loss.backward()
                    optimizer.step()

                for _ in range(3):
                    step()  # compile, allocate state and cached tables before the capture
                eager = gpu.wall_time(step, 20, samples=3)
                stream = cupy.cuda.Stream(non_blocking=True)
                with stream:
                    stream.begin_capture()
                    step()
                    graph = stream.end_capture()
                graph.launch(stream)
                stream.synchronize()
                start = time.perf_counter()
                for _ in range(50):
                    graph.launch(stream)
                stream.synchronize()
                replay = (time.perf_counter() - start) / 50
                rows.append(row("graph", "vae_step_graph", size, backend_name, wall_s=replay, eager_wall_s=eager,
                                speedup=eager / replay))
        except Exception as error:
            rows.append(error_row("graph", "vae_step_graph", size, backend_name, error))
            rows[-1]["status"] = "failed-experiment"
        log(_brief(rows[-1]))
    return rows


# ---- helpers ------------------------------------------------------------------------------------------------
def _ratios(rows: List[Dict], key: str = "device_s") -> None:
    """ratio_to_torch = ours / torch's for rows of the same (group, name, size)."""
    torch_rows = {(r["group"], r["name"], r["size"]): r for r in rows
                  if r["backend"] in ("torch", "torch (fused)") and r["status"] == "ok"}
    for r in rows:
        peer = torch_rows.get((r["group"], r["name"], r["size"]))
        if peer and r["status"] == "ok" and not r["backend"].startswith("torch") and r.get(key) and peer.get(key):
            r["ratio_to_torch"] = r[key] / peer[key]


def _brief(r: Dict) -> str:
    if r["status"] != "ok":
        return f"  {r['group']:11s} {r['name']:34s} {r['size']:26s} {r['backend']:16s} {r['status']}: {r['reason']}"
    parts = []
    if r.get("device_s"):
        parts.append(f"device {r['device_s'] * 1e6:9.1f} us")
    if r.get("wall_s"):
        parts.append(f"wall {r['wall_s'] * 1e6:10.1f} us")
    if r.get("gbs"):
        parts.append(f"{r['gbs']:8.1f} GB/s")
    if r.get("tflops"):
        parts.append(f"{r['tflops']:6.2f} TFLOP/s")
    if r.get("launches") is not None:
        parts.append(f"{r['launches']} launches")
    return f"  {r['group']:11s} {r['name']:34s} {r['size']:26s} {r['backend']:16s} " + ", ".join(parts)


def add_fractions(rows: List[Dict], header: Dict) -> None:
    peak_gbs, peak_tflops = header.get("peak_memory_gbs"), header.get("peak_fp32_tflops")
    for r in rows:
        if r.get("gbs") and peak_gbs:
            r["fraction_of_peak"] = r["gbs"] / peak_gbs
        if r.get("tflops") and peak_tflops:
            r["fraction_of_peak"] = r["tflops"] / peak_tflops


def goals(rows: List[Dict]) -> List[Dict]:
    """The issue's targets, each met / missed / not measured (they inform; they do not fail the check)."""
    out = []
    for r in rows:
        if r["status"] != "ok" or r["backend"] not in ("numba-cuda", "cupy", "numba-cuda tiled"):
            continue
        if r["group"] == "elementwise" and r.get("fraction_of_peak") is not None and _elements(r) >= 1 << 24:
            out.append({"goal": f">= {BANDWIDTH_GOAL:.0%} of peak bandwidth", "row": f"{r['name']} {r['size']} {r['backend']}",
                        "value": r["fraction_of_peak"], "met": r["fraction_of_peak"] >= BANDWIDTH_GOAL})
        if r["group"] == "gemm" and r.get("fraction_of_peak") is not None:
            out.append({"goal": f">= {GEMM_GOAL:.0%} of FP32 peak", "row": f"gemm {r['size']} {r['backend']}",
                        "value": r["fraction_of_peak"], "met": r["fraction_of_peak"] >= GEMM_GOAL})
        if r["group"] == "model" and r["name"] in ("vae_epoch", "dcgan_step"):
            ratio = r.get("ratio_to_torch")
            out.append({"goal": f"<= {MODEL_GOAL:.1f}x PyTorch eager", "row": f"{r['name']} {r['backend']}",
                        "value": ratio, "met": None if ratio is None else ratio <= MODEL_GOAL})
    return out


def _elements(r: Dict) -> int:
    nbytes = (r.get("extra") or {}).get("bytes") or 0
    per_element = {"sigmoid_forward": 8, "bce_with_logits_forward": 12, "bce_with_logits_backward": 16,
                   "adam_update": 28, "gibbs_sample": 16}.get(r["name"], 8)
    return nbytes // per_element


# ---- the child's main --------------------------------------------------------------------------------------
GROUPS = ("elementwise", "gemm", "conv", "launch", "model", "graph")


def run(out_path: str, quick: bool = False, simulate: bool = False, groups=GROUPS, log=print) -> int:
    """Measure every group, writing ``{"header", "rows", "goals"}`` to ``out_path`` after each; 0 unless a row errored."""
    gpu = Simulator() if simulate else Gpu()
    result = {"header": device_header(gpu), "rows": [], "goals": [], "groups_done": []}
    torch, why = load_torch(gpu)
    result["header"]["torch"] = "ok" if torch is not None else why
    log(f"gpu bench on {result['header']['device']}" + ("" if torch is not None else f" (PyTorch rows skipped: {why})"))
    from scratchgen import backend

    for name in ["numba-cuda"] + ([] if simulate else ["cupy"]):
        usable, reason = backend.backend_status(name)  # loads its kernels (implementation() needs them)
        result["header"][f"backend {name}"] = reason
        if not usable:
            result["rows"].append(row("setup", f"backend {name}", "", name, status="error", reason=reason))
            log(_brief(result["rows"][-1]))

    from benchmarks.harness import to_jsonable

    def save():
        add_fractions(result["rows"], result["header"])
        result["goals"] = goals(result["rows"])
        with open(out_path + ".tmp", "w") as handle:
            json.dump(to_jsonable(result), handle, indent=1)
        os.replace(out_path + ".tmp", out_path)

    overhead: Dict[str, float] = {}
    sizes = SIM_SIZES if simulate else (QUICK_SIZES if quick else SIZES)
    for group in groups:
        started = time.perf_counter()
        log(f"[{group}]")
        try:
            if group == "elementwise":
                rows = elementwise_rows(gpu, torch, sizes, quick, log)
            elif group == "gemm":
                rows = gemm_rows(gpu, torch, SIM_GEMM_SIZES if simulate else GEMM_SIZES, quick, log)
            elif group == "conv":
                rows = conv_rows(gpu, torch, 2 if simulate else 64, quick, log)
            elif group == "launch":
                rows = launch_rows(gpu, torch, quick, log)
                overhead = {r["backend"]: r["wall_s"] for r in rows if r["status"] == "ok"}
            elif group == "model":
                rows = model_rows(gpu, torch, quick, log, overhead)
            else:
                rows = graph_rows(gpu, quick, log)
        except Exception as error:
            rows = [error_row(group, group, "", "-", error)]
            log(_brief(rows[-1]))
        result["rows"] += rows
        result["groups_done"].append({"group": group, "wall_s": time.perf_counter() - started})
        save()
    failed = [r for r in result["rows"] if r["status"] == "error" or (r.get("check") or {}).get("ok") is False]
    return 1 if failed else 0


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", help="where the JSON goes")
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--simulate", action="store_true", help="Numba's CUDA simulator, tiny sizes (tests the plumbing)")
    parser.add_argument("--groups", default=",".join(GROUPS))
    args = parser.parse_args(argv)
    groups = [g for g in args.groups.split(",") if g]
    unknown = set(groups) - set(GROUPS)
    if unknown:
        parser.error(f"unknown groups {sorted(unknown)}; choose from {', '.join(GROUPS)}")
    return run(args.out, quick=args.quick, simulate=args.simulate, groups=groups, log=lambda text: print(text, flush=True))


if __name__ == "__main__":
    sys.exit(main())
