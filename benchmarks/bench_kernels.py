"""Kernel x backend x size: how fast each backend runs each kernel, and how close to the machine's limit.

    python -m benchmarks.bench_kernels [--quick] [--backends numpy,numba] [--kernels a,b] [--out DIR]
    python -m benchmarks kernels ...      (the harness: one child process per thread count)

Method (``benchmarks/harness.py`` has the details): the first call is timed alone and reported
as ``first_call_s`` (it includes Numba's JIT compilation; ``compile_s`` = first call - median);
warm-up calls follow; then the backend's kernel and the NumPy reference run interleaved
(A B A B) and the ratio is the median of the per-pair ratios (below 1: faster than NumPy).
GPU samples are synchronised. Thread counts come from the environment (set them: on 2 cores,
BLAS and Numba pools oversubscribe); every row records the count in force.

Each row also reports what the kernel achieved against a limit measured in the same run:
memory-bound kernels in GB/s of compulsory traffic (inputs read + outputs written once) as a
fraction of a large memcpy's traffic rate; GEMM-bound ones (convolutions, RBM sampling) in
GFLOP/s as a fraction of a BLAS sgemm (on GPU: CuPy copy bandwidth and cuBLAS sgemm, plus the
device's nominal HBM and FP32 figures when it is an H100). Every row checks its own result
against the reference (``max_rel_err``) and says whether the backend really uses that
implementation (``used``: false for a kernel shelved in favour of NumPy, see kernel_notes()).
"""
from __future__ import annotations

import argparse
import copy
import json
import os
import sys
import time
from typing import Callable, Dict, List, Optional, Sequence

import numpy as np

from benchmarks import harness

ELEMENTWISE_BATCHES = (128, 1280, 20480)  # x 784: 0.1M (launch-bound), 1M, 16M elements
QUICK_BATCHES = (128,)
NOMINAL_GPU = {"H100": {"hbm_gbs": 3350.0, "fp32_tflops": 66.9, "note": "H100 SXM; PCIe: 2000 GB/s, 51 TFLOP/s"},
               "H200": {"hbm_gbs": 4800.0, "fp32_tflops": 66.9, "note": "H200 SXM"}}


# ---- cases: each returns (args, bytes of compulsory traffic, FLOPs or 0) ------------------------
def _elementwise(name: str, n_inputs: int, outputs: int = 1, scalars=(), logits=False):
    def build(batch, dtype, rng):
        arrays = [rng.standard_normal((batch, 784)).astype(dtype) * (4 if logits else 1) for _ in range(n_inputs)]
        return tuple(arrays) + tuple(scalars), (n_inputs + outputs) * arrays[0].nbytes, 0
    return name, build


def _vae_params(scale: int):
    """The 784-400-20 VAE's parameter shapes; ``scale`` multiplies each array's first axis."""
    shapes = [(400, 784), (400,), (20, 400), (20,), (20, 400), (20,), (400, 20), (400,), (784, 400), (784,)]
    return [(shape[0] * scale,) + shape[1:] for shape in shapes]


def _adam(batch, dtype, rng):
    scale = max(1, batch // 128)  # 128: the 784-400-20 VAE (0.66M parameters); larger batches scale the rows
    shapes = _vae_params(scale)
    params = [rng.standard_normal(s).astype(dtype) for s in shapes]
    grads = [rng.standard_normal(s).astype(dtype) for s in shapes]
    m, v = [np.zeros_like(p) for p in params], [np.zeros_like(p) for p in params]
    nbytes = sum(p.nbytes for p in params)
    return (params, grads, m, v, 1, 1e-3, 0.9, 0.999, 1e-8, 0.0), 7 * nbytes, 0  # read p g m v, write p m v


def _rbm_hidden(batch, dtype, rng):
    v = (rng.random((batch, 784)) < 0.5).astype(dtype)
    w = (rng.standard_normal((784, 500)) * 0.01).astype(dtype)
    args = (v, w, np.zeros(500, dtype), rng.random((batch, 500)).astype(dtype))
    return args, sum(a.nbytes for a in args) + 2 * batch * 500 * v.itemsize, 2 * batch * 784 * 500


def _rbm_gibbs(batch, dtype, rng):
    (v, w, c, u_h), nbytes, flops = _rbm_hidden(batch, dtype, rng)
    u_v = rng.random((batch, 784)).astype(dtype)
    return (v, w, np.zeros(784, dtype), c, u_h, u_v), 2 * nbytes + u_v.nbytes + 2 * v.nbytes, 2 * flops


# DCGAN on 28x28 images (Radford et al. layout, 64 and 128 channels, 4x4 kernels, stride 2):
#   D1: (N, 1, 28, 28) -> (N, 64, 14, 14)      D2: (N, 64, 14, 14) -> (N, 128, 7, 7)
#   G1: (N, 128, 7, 7) -> (N, 64, 14, 14)      G2: (N, 64, 14, 14) -> (N, 1, 28, 28)   (transposed)
CONV_LAYERS = {"D1": (1, 64, 28), "D2": (64, 128, 14)}
DECONV_LAYERS = {"G1": (128, 64, 7), "G2": (64, 1, 14)}


def _conv(kind: str, layer: str):
    def build(batch, dtype, rng):
        c_in, c_out, size = {**CONV_LAYERS, **DECONV_LAYERS}[layer]
        x = rng.standard_normal((batch, c_in, size, size)).astype(dtype)
        out = size // 2 if layer in CONV_LAYERS else size * 2
        if layer in CONV_LAYERS:
            w = (rng.standard_normal((c_out, c_in, 4, 4)) * 0.05).astype(dtype)
        else:
            w = (rng.standard_normal((c_in, c_out, 4, 4)) * 0.05).astype(dtype)
        y_elems = batch * c_out * out * out
        flops = 2 * y_elems * c_in * 16 if layer in CONV_LAYERS else 2 * x.size * c_out * 16
        b = np.zeros(c_out, dtype)
        n_cols = batch * (size // 2) ** 2  # im2col of a stride-2 4x4 conv with padding 1: (C 16, N OH OW)
        if kind == "im2col":
            return (x, (4, 4), (2, 2), (1, 1)), x.nbytes + c_in * 16 * n_cols * x.itemsize, 0
        if kind == "col2im":
            cols = rng.standard_normal((c_in * 16, n_cols)).astype(dtype)
            return (cols, x.shape, (4, 4), (2, 2), (1, 1)), cols.nbytes + x.nbytes, 0
        y = rng.standard_normal((batch, c_out, out, out)).astype(dtype)
        if kind == "to_columns":  # an output-sized image batch as a GEMM operand (the backward's first copy)
            return (y, False), 2 * y.nbytes, 0
        y_mat = rng.standard_normal((c_out, y.size // c_out)).astype(dtype)  # kind == "from_columns": and back, + bias
        return (y_mat, b, y.shape, False), 2 * y.nbytes, 0
    return build


def _batch_norm(kind: str):
    def build(batch, dtype, rng):
        x = rng.standard_normal((batch, 64, 196)).astype(dtype)  # BatchNorm2d(64) on 14x14 maps
        c = x.shape[1]
        if kind == "forward":
            return (x, np.ones(c, dtype), np.zeros(c, dtype), np.zeros(c, dtype), np.ones(c, dtype), True, 0.1, 1e-5), \
                4 * x.nbytes, 0  # read x twice (two-pass statistics) + once to normalise; write y and xhat
        return (rng.standard_normal(x.shape).astype(dtype), x, np.ones(c, dtype), np.ones(c, dtype), True), 5 * x.nbytes, 0
    return build


def _contractive(kind: str):
    def build(batch, dtype, rng):
        x = rng.random((batch, 784)).astype(dtype)
        w = (rng.standard_normal((400, 784)) * 0.05).astype(dtype)
        if kind == "forward":
            return (x, w, np.zeros(400, dtype)), x.nbytes + w.nbytes, 2 * batch * 784 * 400
        hidden = rng.random((batch, 400)).astype(dtype)
        return (rng.standard_normal(batch).astype(dtype), x, w, hidden), x.nbytes + 2 * w.nbytes, 4 * batch * 784 * 400
    return build


def cases() -> List[Dict]:
    """Every benchmark case: kernel name, size family, builder(batch, dtype, rng)."""
    elementwise = [
        _elementwise("sigmoid_forward", 1), _elementwise("sigmoid_backward", 2), _elementwise("tanh_forward", 1),
        _elementwise("tanh_backward", 2), _elementwise("relu_forward", 1), _elementwise("relu_backward", 2),
        _elementwise("leaky_relu_forward", 1, scalars=(0.2,)), _elementwise("leaky_relu_backward", 2, scalars=(0.2,)),
        _elementwise("softplus_forward", 1), _elementwise("softplus_backward", 2),
        _elementwise("sigmoid_bce_with_logits_forward", 2, logits=True),
        _elementwise("sigmoid_bce_with_logits_backward", 3, logits=True),
        _elementwise("gaussian_kl_standard_forward", 2), _elementwise("gaussian_kl_standard_backward", 3, outputs=2),
        _elementwise("reparameterize_forward", 3), _elementwise("reparameterize_backward", 3),
    ]
    result = [{"kernel": name, "family": "elementwise", "build": build, "bound": "memory"} for name, build in elementwise]
    result += [{"kernel": "adam_update", "family": "optimizer", "build": _adam, "bound": "memory"}]
    result += [{"kernel": "rbm_sample_hidden", "family": "rbm", "build": _rbm_hidden, "bound": "compute"},
               {"kernel": "rbm_gibbs_step", "family": "rbm", "build": _rbm_gibbs, "bound": "compute"}]
    result += [{"kernel": f"contractive_penalty_{k}", "family": "contractive", "build": _contractive(k), "bound": "compute"}
               for k in ("forward", "backward")]
    result += [{"kernel": f"batch_norm_{k}", "family": "batch_norm", "build": _batch_norm(k), "bound": "memory"}
               for k in ("forward", "backward")]
    for layer in CONV_LAYERS:
        result += [{"kernel": "im2col", "family": "conv", "layer": layer, "build": _conv("im2col", layer), "bound": "memory"},
                   {"kernel": "col2im", "family": "conv", "layer": layer, "build": _conv("col2im", layer), "bound": "memory"}]
    for layer in {**CONV_LAYERS, **DECONV_LAYERS}:
        result += [{"kernel": f"conv_{k}", "family": "conv", "layer": layer, "build": _conv(k, layer), "bound": "memory"}
                   for k in ("to_columns", "from_columns")]
    return result


# ---- limits -------------------------------------------------------------------------------------
def cpu_limits(quick: bool) -> Dict:
    from benchmarks import machine

    memcpy = machine.memcpy_rate(64 if quick else 256, 3 if quick else 7)
    sgemm = machine.sgemm_rate(*(512,) * 3 if quick else (1024,) * 3, repeat=3 if quick else 7)
    # A copy reads and writes every byte: its *traffic* rate is twice the bytes copied per second.
    return {"memory_gbs": 2 * memcpy["gbs"], "gemm_gflops": sgemm["gflops"], "memcpy": memcpy, "sgemm": sgemm}


def gpu_limits(quick: bool) -> Optional[Dict]:
    from scratchgen.device import cuda_available

    if not cuda_available():
        return None
    import cupy

    from benchmarks import machine

    src = cupy.ones(2**26 if quick else 2**28, dtype=cupy.uint8)
    dst = cupy.empty_like(src)
    start, stop = cupy.cuda.Event(), cupy.cuda.Event()
    times = []
    for _ in range(10):
        start.record()
        cupy.copyto(dst, src)
        stop.record()
        stop.synchronize()
        times.append(cupy.cuda.get_elapsed_time(start, stop) / 1e3)
    gemm = machine.gpu_sgemm_rate(4096 if quick else 8192) or {}
    props = cupy.cuda.runtime.getDeviceProperties(cupy.cuda.runtime.getDevice())
    name = props["name"].decode() if isinstance(props["name"], bytes) else str(props["name"])
    limits = {"device": name, "memory_gbs": 2 * src.nbytes / float(np.median(times)) / 1e9,
              "gemm_gflops": 1e3 * gemm.get("tflops", float("nan"))}
    for key, nominal in NOMINAL_GPU.items():
        if key in name:
            limits["nominal"] = nominal
    return limits


# ---- running ------------------------------------------------------------------------------------
def _device_tools(backend_name: str):
    """(move-array function, sync function or None) for a backend."""
    if backend_name in ("numpy", "numba"):
        return (lambda a: a), None
    import cupy

    return cupy.asarray, (lambda: cupy.cuda.Device().synchronize())


def _move(value, fn):
    if isinstance(value, np.ndarray):
        return fn(value)
    if isinstance(value, (list, tuple)):
        return type(value)(_move(v, fn) for v in value)
    return value


def _usable_backends(requested: Optional[Sequence[str]], log) -> List[str]:
    from numba.cuda import config as cuda_config  # noqa: F401  (numba is a dependency of this suite)

    from scratchgen import backend

    names = list(requested or backend.BACKENDS)
    usable = []
    for name in names:
        ok, why = backend.backend_status(name)
        if ok and name == "numba-cuda" and bool(cuda_config.ENABLE_CUDASIM):
            ok, why = False, "CUDA simulator: timings would be meaningless"
        if ok:
            usable.append(name)
        else:
            log(f"  kernels: skipping backend {name}: {why}")
    return usable


def run_suite(quick: bool = False, backends: Optional[Sequence[str]] = None, sizes: Optional[Sequence] = None,
              repeat: Optional[int] = None, kernels: Optional[Sequence[str]] = None, threads: Optional[int] = None,
              dtype=np.float32, log: Callable[[str], None] = print) -> List[Dict]:
    """Benchmark every (kernel, backend, size); returns harness-style rows (see the module doc).

    ``sizes``: batch sizes (elementwise kernels are (batch, 784); conv layers and batch norm
    take the batch; Adam scales the VAE's parameter rows by batch / 128). Default: 128, 1280,
    20480 for elementwise, 128 elsewhere; ``quick``: 128 only, fewer repeats.
    """
    from scratchgen import backend

    # The references call kernel("im2col") and the like: run them on the numpy backend, so the
    # baseline is all-NumPy whichever backend the caller had selected.
    with backend.use_backend("numpy"):
        return _run_suite(quick, backends, sizes, repeat, kernels, threads, dtype, log)


def _run_suite(quick, backends, sizes, repeat, kernels, threads, dtype, log) -> List[Dict]:
    from scratchgen import backend
    from scratchgen.kernels.testing import relative_error

    repeat = repeat or (5 if quick else 15)
    target = harness.QUICK_TARGET_SAMPLE_S if quick else harness.TARGET_SAMPLE_S
    names = [b for b in _usable_backends(backends, log) if b != "numpy"]
    limits = {"cpu": cpu_limits(quick)}
    gpu = gpu_limits(quick) if any(b in ("cupy", "numba-cuda") for b in names) else None
    if gpu:
        limits["cuda"] = gpu
    thread_info = harness.thread_report()
    rows = []
    for case in cases():
        name = case["kernel"]
        if kernels and name not in kernels:
            continue
        batches = sizes or (QUICK_BATCHES if quick else (ELEMENTWISE_BATCHES if case["family"] == "elementwise" else (128,)))
        reference = backend.implementation(name, "numpy")
        for batch in batches:
            rng = np.random.default_rng(0)
            host_args, nbytes, flops = case["build"](int(batch), np.dtype(dtype), rng)
            label = f"{case.get('layer', '')}{' ' if case.get('layer') else ''}batch {batch}"
            expected = reference(*copy.deepcopy(host_args))
            for backend_name in names:
                try:
                    implementation = backend.implementation(name, backend_name)
                except KeyError:
                    continue  # this backend runs the reference for this kernel: nothing of its own to time
                used = name in backend.registered_kernels() and backend.registered_kernels()[name].get(backend_name) is implementation
                move, sync = _device_tools(backend_name)
                args = _move(copy.deepcopy(host_args), move)
                peer_args = copy.deepcopy(host_args)
                try:
                    check_args = _move(copy.deepcopy(host_args), move)
                    start = time.perf_counter()
                    got = implementation(*check_args)  # the very first call: includes JIT compilation
                    if sync is not None:
                        sync()
                    first_call = time.perf_counter() - start
                    error = relative_error(*_first_arrays(got, expected))
                    result = harness.measure_pair(lambda: implementation(*args), lambda: reference(*peer_args), repeat,
                                                  sync=sync, target_s=target)
                except Exception as failure:  # one broken kernel must not stop the sweep
                    rows.append(harness.error_row("kernels", name, failure, backend=backend_name, size=label,
                                                  threads=threads, source="benchmarks.bench_kernels"))
                    continue
                median = result["ours"]["median_s"]
                device_limits = limits["cuda" if backend_name in ("cupy", "numba-cuda") else "cpu"]
                gbs, gflops = nbytes / median / 1e9, (flops / median / 1e9 if flops else None)
                fraction = (gflops / device_limits["gemm_gflops"]) if case["bound"] == "compute" and flops \
                    else gbs / device_limits["memory_gbs"]
                metrics = {"gbs": gbs, "gflops": gflops, "fraction_of_limit": fraction,
                           "limit": "sgemm GFLOP/s" if case["bound"] == "compute" and flops else "memcpy traffic GB/s",
                           "speedup_vs_numpy": 1.0 / result["ratio"], "max_rel_err": error,
                           "compile_s": max(0.0, first_call - median), "used": used,
                           "elements": int(np.prod(_first_arrays(host_args)[0].shape))}
                rows.append(harness.row_from_pair(
                    result, suite="kernels", name=name, size=label, size_value=int(batch), backend=backend_name,
                    device="cuda" if backend_name in ("cupy", "numba-cuda") else "cpu", threads=threads, unit="s/call",
                    peer="numpy", metrics=metrics, source="benchmarks.bench_kernels",
                    extra={"dtype": np.dtype(dtype).name, "threads_in_force": thread_info, "limits": device_limits}))
                rows[-1]["first_call_s"] = first_call
                log(_format_row(rows[-1]))
    return rows


def _first_arrays(*values):
    """The first array of each value (a kernel may return a tuple; Adam returns None and updates args)."""
    out = []
    for value in values:
        while isinstance(value, (tuple, list)):
            value = next((v for v in value if v is not None), None)
        out.append(value if value is not None else np.zeros(1))
    return out


def _format_row(row: Dict) -> str:
    m = row["metrics"]
    rate = f"{m['gflops']:8.1f} GFLOP/s" if m.get("gflops") else f"{m['gbs']:8.2f} GB/s    "
    used = "" if m.get("used") else "  (shelved: backend keeps NumPy)"
    return (f"  {row['name']:32s} {row['size']:18s} {row['backend']:10s} {row['median_s'] * 1e6:10.1f} us  "
            f"numpy {row['peer_median_s'] * 1e6:10.1f} us  x{m['speedup_vs_numpy']:6.2f}  {rate} "
            f"{100 * m['fraction_of_limit']:5.1f}% of {m['limit']}  first call {row['first_call_s']:.2f} s{used}")


def plot(rows: List[Dict], path: str) -> Optional[str]:
    """Time vs size per backend for each elementwise kernel (log-log); where a GPU line crosses below
    the best CPU line is the crossover. Returns the path, or None without matplotlib."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    names = sorted({r["name"] for r in rows if r["status"] == "ok" and r["metrics"].get("elements")
                    and len({x["size_value"] for x in rows if x["name"] == r["name"]}) > 1})
    if not names:
        return None
    columns = 4
    fig, axes = plt.subplots((len(names) + columns - 1) // columns, columns, figsize=(4 * columns, 3 * ((len(names) + 3) // 4)),
                             squeeze=False)
    for ax, name in zip(axes.flat, names):
        subset = [r for r in rows if r["name"] == name and r["status"] == "ok"]
        by_backend = {"numpy": sorted({(r["metrics"]["elements"], r["peer_median_s"]) for r in subset})}
        for r in subset:
            by_backend.setdefault(r["backend"], []).append((r["metrics"]["elements"], r["median_s"]))
        for label, points in by_backend.items():
            points = sorted(points)
            ax.loglog([p[0] for p in points], [p[1] for p in points], marker="o", label=label)
        ax.set_title(name, fontsize=9)
        ax.set_xlabel("elements")
        ax.set_ylabel("seconds per call")
        ax.legend(fontsize=7)
    for ax in list(axes.flat)[len(names):]:
        ax.axis("off")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--backends", default=None, help="comma-separated (default: every backend usable here)")
    parser.add_argument("--kernels", default=None, help="comma-separated kernel names (default: all)")
    parser.add_argument("--sizes", default=None, help="comma-separated batch sizes")
    parser.add_argument("--repeat", type=int, default=None)
    parser.add_argument("--dtype", default="float32", choices=["float32", "float64"])
    parser.add_argument("--out", default=os.path.join(os.path.dirname(os.path.abspath(__file__)), "results"))
    args = parser.parse_args(argv)
    threads = harness.pinned_threads()
    print(f"threads: {harness.thread_report()}")
    rows = run_suite(quick=args.quick, backends=args.backends.split(",") if args.backends else None,
                     sizes=[int(s) for s in args.sizes.split(",")] if args.sizes else None, repeat=args.repeat,
                     kernels=args.kernels.split(",") if args.kernels else None, threads=threads, dtype=np.dtype(args.dtype))
    os.makedirs(args.out, exist_ok=True)
    json_path = os.path.join(args.out, "kernels.json")
    with open(json_path, "w") as handle:
        json.dump(harness.to_jsonable(rows), handle, indent=1)
    png = plot(rows, os.path.join(args.out, "kernels.png"))
    print(f"wrote {json_path}" + (f" and {png}" if png else ""))
    return 1 if any(r["status"] == "error" for r in rows) else 0


if __name__ == "__main__":
    sys.exit(main())
