"""What the numbers were measured on, and what this machine can do at best.

``machine_info()`` records the CPU model and cores, memory, the BLAS NumPy was built with and
the thread pools really loaded (threadpoolctl), the GPU if any, and the versions of every
library in the comparison. ``measure_rates()`` measures, in the same process and at the same
thread count as the benchmark rows:

    sgemm GFLOP/s  = 2 M N K / t       float32 matmul (M N K = 1024^3 by default; also the VAE's
                                        128x784 @ 784x400 shape), median of the repeats
    memcpy GB/s    = bytes copied / t  one large float32 ``np.copyto`` (each byte is read once
                                        and written once; the figure counts it once)

These give the roofline for a model row: a VAE epoch cannot run faster than its matmul FLOPs
divided by the sgemm rate (``vae_epoch_matmul_flops``), the "GEMM bound" column of the report.
"""
from __future__ import annotations

import datetime
import os
import platform
import subprocess
import sys
import time
from typing import Dict, Optional, Sequence

import numpy as np

from .harness import REPO_ROOT, summarize, thread_report


# ---- facts ------------------------------------------------------------------------------------
def cpu_model() -> str:
    from scratchgen.device import cpu_name

    return cpu_name()


def cpu_flags_of_interest() -> str:
    """The SIMD extensions that decide float32 kernel speed (AVX2, AVX-512, FMA)."""
    try:
        with open("/proc/cpuinfo") as handle:
            for line in handle:
                if line.startswith("flags"):
                    flags = set(line.split(":", 1)[1].split())
                    wanted = ("avx2", "fma", "avx512f", "avx512_bf16", "amx_tile")
                    return " ".join(f for f in wanted if f in flags)
    except OSError:
        pass
    return ""


def memory_gib() -> Optional[float]:
    try:
        with open("/proc/meminfo") as handle:
            for line in handle:
                if line.startswith("MemTotal"):
                    return round(int(line.split()[1]) / 2**20, 1)
    except OSError:
        pass
    return None


def blas_info() -> Dict:
    """The BLAS NumPy was built against (``numpy.show_config``)."""
    try:
        config = np.show_config(mode="dicts")
        blas = config.get("Build Dependencies", {}).get("blas", {})
        return {"name": blas.get("name"), "version": blas.get("version"),
                "configuration": blas.get("openblas configuration")}
    except Exception as error:  # older NumPy: no mode="dicts"
        return {"name": "unknown", "error": str(error)}


def _version(module_name: str) -> Optional[str]:
    """A package's version without importing it (importing torch costs a second or two)."""
    try:
        from importlib.metadata import PackageNotFoundError, version
    except ImportError:
        return None
    distribution = {"sklearn": "scikit-learn", "cupy": None}.get(module_name, module_name)
    names = [distribution] if distribution else ["cupy-cuda13x", "cupy-cuda12x", "cupy"]
    for name in names:
        try:
            return version(name)
        except PackageNotFoundError:
            continue
    return None


def gpu_info() -> Dict:
    """The GPUs CuPy sees, else ``nvidia-smi``'s list, else none (with the reason)."""
    try:
        from scratchgen.device import describe_devices

        lines = describe_devices()
        gpus = [line for line in lines if line.startswith("cuda")]
        if gpus and not gpus[0].startswith("cuda: none"):
            return {"gpus": gpus}
    except Exception:
        pass
    try:
        out = subprocess.run(["nvidia-smi", "--query-gpu=name,memory.total,driver_version", "--format=csv,noheader"],
                             capture_output=True, text=True, timeout=20)
        if out.returncode == 0 and out.stdout.strip():
            return {"gpus": out.stdout.strip().splitlines(), "note": "seen by nvidia-smi (CuPy not usable)"}
    except (OSError, subprocess.SubprocessError):
        pass
    return {"gpus": [], "note": "no GPU found"}


def git_commit() -> Optional[str]:
    try:
        out = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, cwd=REPO_ROOT, timeout=10)
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], capture_output=True, text=True,
                               cwd=REPO_ROOT, timeout=10)
        if out.returncode == 0:
            return out.stdout.strip() + ("+dirty" if dirty.stdout.strip() else "")
    except (OSError, subprocess.SubprocessError):
        pass
    return None


def machine_info() -> Dict:
    """Everything a reader needs to judge the numbers (cheap: imports no peer library)."""
    try:
        affinity = len(os.sched_getaffinity(0))
    except AttributeError:
        affinity = None
    return {
        "date": datetime.datetime.now().isoformat(timespec="seconds"),
        "host": platform.node(),
        "platform": platform.platform(),
        "cpu": cpu_model(),
        "cpu_flags": cpu_flags_of_interest(),
        "logical_cores": os.cpu_count(),
        "usable_cores": affinity,
        "memory_gib": memory_gib(),
        "load_average": [round(x, 2) for x in os.getloadavg()] if hasattr(os, "getloadavg") else None,
        "blas": blas_info(),
        "gpu": gpu_info(),
        "python": sys.version.split()[0],
        "versions": {name: _version(name) for name in ("numpy", "numba", "numba-cuda", "cupy", "torch", "sklearn",
                                                        "threadpoolctl", "matplotlib")},
        "scratchgen_commit": git_commit(),
    }


# ---- rates ------------------------------------------------------------------------------------
def sgemm_rate(m: int = 1024, k: int = 1024, n: int = 1024, repeat: int = 7) -> Dict:
    """float32 ``(m, k) @ (k, n)`` GFLOP/s with NumPy's BLAS: median and best of ``repeat``."""
    rng = np.random.default_rng(0)
    a = rng.standard_normal((m, k), dtype=np.float32)
    b = rng.standard_normal((k, n), dtype=np.float32)
    out = np.empty((m, n), dtype=np.float32)
    np.matmul(a, b, out=out)  # warm-up: BLAS thread pool start, page faults on ``out``
    flops = 2.0 * m * n * k
    # Enough calls per sample to last ~20 ms, so small shapes are not timer noise.
    start = time.perf_counter()
    np.matmul(a, b, out=out)
    number = max(1, int(0.02 / max(time.perf_counter() - start, 1e-7)))
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        for _ in range(number):
            np.matmul(a, b, out=out)
        times.append((time.perf_counter() - start) / number)
    stats = summarize(times)
    return {"shape": f"{m}x{k} @ {k}x{n}", "gflops": flops / stats["median_s"] / 1e9,
            "gflops_best": flops / stats["min_s"] / 1e9, "median_s": stats["median_s"]}


def memcpy_rate(megabytes: int = 256, repeat: int = 7) -> Dict:
    """GB/s of one large ``np.copyto`` (bytes copied / time), median and best of ``repeat``."""
    count = megabytes * 2**20 // 4
    src = np.ones(count, dtype=np.float32)
    dst = np.empty_like(src)
    np.copyto(dst, src)  # touch every page once before timing
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        np.copyto(dst, src)
        times.append(time.perf_counter() - start)
    stats = summarize(times)
    return {"megabytes": megabytes, "gbs": src.nbytes / stats["median_s"] / 1e9, "gbs_best": src.nbytes / stats["min_s"] / 1e9}


def gpu_sgemm_rate(size: int = 8192, repeat: int = 10) -> Optional[Dict]:
    """float32 GEMM TFLOP/s on the current GPU with CuPy (None when no GPU is usable)."""
    try:
        from scratchgen.device import cuda_available

        if not cuda_available():
            return None
        import cupy
    except Exception:
        return None
    a = cupy.random.standard_normal((size, size), dtype=cupy.float32)
    b = cupy.random.standard_normal((size, size), dtype=cupy.float32)
    cupy.matmul(a, b)
    cupy.cuda.Device().synchronize()
    start_event, stop_event = cupy.cuda.Event(), cupy.cuda.Event()
    times = []
    for _ in range(repeat):
        start_event.record()
        cupy.matmul(a, b)
        stop_event.record()
        stop_event.synchronize()
        times.append(cupy.cuda.get_elapsed_time(start_event, stop_event) / 1e3)
    stats = summarize(times)
    return {"shape": f"{size}^3", "tflops": 2.0 * size**3 / stats["median_s"] / 1e12}


def measure_rates(quick: bool = False) -> Dict:
    """sgemm and memcpy rates at this process's thread count (and the GPU's GEMM rate if any)."""
    size = 512 if quick else 1024
    repeat = 3 if quick else 7
    rates = {
        "sgemm": sgemm_rate(size, size, size, repeat),
        "sgemm_vae_shape": sgemm_rate(128, 784, 400, repeat),
        "memcpy": memcpy_rate(64 if quick else 256, repeat),
        "threads": thread_report(),
    }
    gpu = gpu_sgemm_rate(4096 if quick else 8192)
    if gpu is not None:
        rates["gpu_sgemm"] = gpu
    return rates


def best_sgemm_gflops(rates: Dict) -> float:
    """The higher of the sgemm medians in ``measure_rates``'s result (for a GEMM lower bound)."""
    return max(rates[key]["gflops"] for key in ("sgemm", "sgemm_vae_shape") if key in rates)


# ---- the GEMM bound of a model epoch -----------------------------------------------------------
def mlp_matmul_flops(layers: Sequence[Sequence[int]], examples: int, first_input_grad: bool = False) -> float:
    """Matmul FLOPs of one forward+backward pass of dense layers over ``examples`` rows.

    ``layers``: (in_features, out_features) per layer. Per layer and example, forward
    y = x W^T costs 2 in out; backward costs 2 in out for dW = g^T x and 2 in out for
    dx = g W, except the first layer, whose input (the data) needs no gradient.
    """
    total = 0.0
    for index, (fan_in, fan_out) in enumerate(layers):
        passes = 3 if (index > 0 or first_input_grad) else 2
        total += passes * 2.0 * fan_in * fan_out
    return total * examples


def vae_layers(data_dim: int = 784, hidden: int = 400, latent: int = 20):
    """The VAE 784-400-20 of the benchmark: encoder, (mu, logvar) head, decoder."""
    return [(data_dim, hidden), (hidden, 2 * latent), (latent, hidden), (hidden, data_dim)]


def vae_epoch_matmul_flops(examples: int = 60000, data_dim: int = 784, hidden: int = 400, latent: int = 20) -> float:
    """Matmul FLOPs of one training epoch of the VAE (about 197 GFLOP for 60000 examples)."""
    return mlp_matmul_flops(vae_layers(data_dim, hidden, latent), examples)


def cae_epoch_matmul_flops(examples: int = 60000, data_dim: int = 784, hidden: int = 256) -> float:
    """Matmul FLOPs of a contractive AE epoch: encoder and decoder (the closed-form penalty adds
    only O(hidden x data_dim) per batch, W*W row sums, not per example)."""
    return mlp_matmul_flops([(data_dim, hidden), (hidden, data_dim)], examples)
