"""``python -m benchmarks [SUITE ...]`` (also ``scratchgen bench ...``): run, compare, report.

    python -m benchmarks                         every suite, every usable backend, 1 and 2 threads
    python -m benchmarks ops --quick             the CI-sized op benchmark (well under a minute)
    python -m benchmarks ops --threads 1 --sizes 32,64,128 --backend numpy,numba
    python -m benchmarks models --epochs 1 --out /tmp/bench
    python -m benchmarks reproduce --quick       every cheap README figure rerun: claimed vs measured
    python -m benchmarks gpu --out DIR [--part tests|bench|all]   the GPU check (benchmarks/gpu.py)

Suites: ``ops`` (bench_ops.py: forward+backward of single ops vs PyTorch), ``kernels``
(bench_kernels.py: each backend's kernels), ``models`` (bench_vae / bench_dcgan / bench_rbm:
time per epoch or step vs PyTorch and scikit-learn). A suite whose module is missing is
reported as skipped with the reason.

How it runs: the parent process starts one *child* per thread count (``--threads 1,2``) with
every thread-pool variable pinned in its environment before NumPy loads (harness.py explains
why); each child measures this machine's sgemm and memcpy rates, runs the suites, and hands its
rows back as JSON. GPU backends run once, in the first child. The parent prints the table and
writes ``results.json``, ``results.md`` (README-ready) and PNG plots to ``--out``
(default ``benchmarks/results/``). Exit status 1 if a child crashed or a row errored; skipped
rows (a peer or backend not installed) are not failures.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from typing import Dict, List, Optional, Tuple

from . import harness

SUITES = ("ops", "kernels", "models")
MODEL_MODULES = (("benchmarks.bench_vae", "run"), ("benchmarks.bench_dcgan", "run"), ("benchmarks.bench_rbm", "run"),
                 ("benchmarks.bench_user_path", "run"))  # the CLI and fit in processes of their own, with memory
KERNEL_MODULE = ("benchmarks.bench_kernels", "run_suite")
DEFAULT_OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "results")
KNOWN_BACKENDS = ("numpy", "numba", "numba-cuda", "cupy")
GPU_BACKENDS = ("numba-cuda", "cupy")


def _int_list(text: str) -> List[int]:
    try:
        values = [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers, got {text!r}")
    if not values or min(values) < 1:
        raise argparse.ArgumentTypeError(f"expected positive integers, got {text!r}")
    return values


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("suites", nargs="*", metavar="SUITE", help=f"any of {', '.join(SUITES)} (default: all)")
    parser.add_argument("--backend", default="auto",
                        help="comma-separated scratchgen backends (numpy, numba, numba-cuda, cupy) or 'auto' "
                             "(every backend usable here; the default)")
    parser.add_argument("--sizes", type=_int_list, default=None,
                        help="batch sizes, comma-separated (ops: N of every case; kernels: passed to bench_kernels)")
    parser.add_argument("--repeat", type=int, default=None, help="timed samples per measurement (default: per suite)")
    parser.add_argument("--quick", action="store_true", help="a CI-sized run (few repeats, small sizes)")
    parser.add_argument("--threads", type=_int_list, default=[1, 2], help="thread counts, one child process each (default 1,2)")
    parser.add_argument("--out", default=DEFAULT_OUT, help="output directory (default: benchmarks/results)")
    parser.add_argument("--cases", default=None, help="ops suite: only these cases (comma-separated)")
    parser.add_argument("--epochs", type=int, default=None, help="models suite: epochs per model row (default: the module's)")
    parser.add_argument("--steps", type=int, default=None, help="models suite: DCGAN steps (default: the module's)")
    parser.add_argument("--no-plots", action="store_true", help="skip the PNG plots")
    parser.add_argument("--timeout", type=float, default=None, help="seconds allowed per child process")
    parser.add_argument("--child", default=None, help=argparse.SUPPRESS)  # internal: run one thread count
    return parser


# ---- the child: one thread count --------------------------------------------------------------
def _log(text: str) -> None:
    print(text, flush=True)


def backend_availability(names) -> Dict[str, str]:
    """``{backend: "ok" or why it cannot run here}`` (a broken kernels module counts as unavailable)."""
    from scratchgen.backend import backend_status

    status = {}
    for name in names:
        try:
            usable, why = backend_status(name)
        except Exception as error:  # a kernels module that fails in an unexpected way
            usable, why = False, f"{type(error).__name__}: {error}"
        status[name] = "ok" if usable else why
    return status


def _resolve_backends(requested: List[str], gpu_allowed: bool) -> Tuple[List[str], Dict[str, str]]:
    """The backends this child runs: every usable one for 'auto', else the requested ones
    (an unusable requested backend is kept, so its suite reports it as skipped with the reason).
    GPU backends only where ``gpu_allowed`` (the first child: a GPU row needs no thread sweep)."""
    names = list(KNOWN_BACKENDS) if requested == ["auto"] else requested
    status = backend_availability(names)
    if requested == ["auto"]:
        names = [b for b in names if status[b] == "ok"]
    return [b for b in names if gpu_allowed or b not in GPU_BACKENDS], status


def _suite_ops(config: Dict, backends: List[str]) -> List[Dict]:
    from . import bench_ops

    cases = config["cases"].split(",") if config.get("cases") else None
    return bench_ops.run(quick=config["quick"], backends=backends, sizes=config.get("sizes"), repeat=config.get("repeat"),
                         threads=config["threads"], cases=cases, log=_log)


def _suite_kernels(config: Dict, backends: List[str]) -> List[Dict]:
    module, function = KERNEL_MODULE
    return harness.run_external(module, function, "kernels", threads=config["threads"], quick=config["quick"],
                                backends=backends, sizes=config.get("sizes"), repeat=config.get("repeat"), log=_log)


def _suite_models(config: Dict, backends: List[str]) -> List[Dict]:
    rows = []
    for module, function in MODEL_MODULES:
        _log(f"  models: {module}")
        rows += harness.run_external(module, function, "models", threads=config["threads"], quick=config["quick"],
                                     epochs=config.get("epochs"), steps=config.get("steps"), backends=backends,
                                     repeats=config.get("repeat"), log=_log)
    return rows


SUITE_RUNNERS = {"ops": _suite_ops, "kernels": _suite_kernels, "models": _suite_models}


def add_gemm_bounds(rows: List[Dict], rates: Dict, quick: bool = False) -> None:
    """Give each CPU VAE/CAE per-epoch row its GEMM bound: epoch matmul FLOPs / measured sgemm rate.

    The rate is the better of the two sgemm medians measured in this child (square 1024, and
    the VAE's 128x784x400), so the bound is a true lower bound on the epoch time.

    The row's epoch size is taken from what the model module reported (``train_examples``,
    ``examples`` ... in its metrics or extra), else the 60000 images of a full Fashion-MNIST
    epoch (not in a quick run, which trains on a subset: there the bound is left out).
    """
    from . import machine

    gflops = machine.best_sgemm_gflops(rates)
    for row in rows:
        name = str(row.get("name", "")).lower()
        if row["status"] != "ok" or row.get("device") != "cpu" or not row.get("median_s"):
            continue
        if "vae" in name:
            flops_of = machine.vae_epoch_matmul_flops
        elif "cae" in name or "contractive" in name:
            flops_of = machine.cae_epoch_matmul_flops
        else:
            continue
        extra = row["extra"]
        reported = {**row.get("metrics", {}), **extra}
        examples = next((reported[k] for k in ("train_examples", "examples", "examples_per_epoch", "train_size", "n_train")
                         if isinstance(reported.get(k), (int, float))), None)
        if examples is None:
            if quick:  # a quick run trains on a subset whose size the row did not report
                extra["gemm_bound_note"] = "epoch size not reported by the model row"
                continue
            examples = 60000
        flops = flops_of(int(examples))
        extra.update(epoch_examples=int(examples), matmul_flops=flops, sgemm_gflops=gflops, gemm_bound_s=flops / (gflops * 1e9))
        extra["x_gemm_bound"] = row["median_s"] / extra["gemm_bound_s"]


def child_main(config_path: str) -> int:
    """Run the configured suites at one (already pinned) thread count; write the JSON result."""
    with open(config_path) as handle:
        config = json.load(handle)
    threads = config["threads"]
    harness.pin_threads(threads)
    from . import machine

    result = {"threads": threads, "rows": []}
    _log(f"[{threads} thread{'s' if threads > 1 else ''}] measuring sgemm / memcpy rates")
    result["rates"] = machine.measure_rates(config["quick"])
    _log(f"[{threads} thr] sgemm {result['rates']['sgemm']['gflops']:.1f} GFLOP/s, "
         f"memcpy {result['rates']['memcpy']['gbs']:.1f} GB/s")
    backends, result["backends"] = _resolve_backends(config["backends"], config["gpu"])
    for suite in config["suites"]:
        _log(f"[{threads} thr] suite {suite} (backends: {', '.join(backends)})")
        started, started_cpu = time.perf_counter(), time.process_time()
        try:
            rows = SUITE_RUNNERS[suite](config, backends)
        except Exception as error:
            rows = [harness.error_row(suite, suite, error, threads=threads)]
        # CPU time / wall time over the whole suite: near the thread count on an idle machine,
        # lower when other processes competed for the cores (it covers rows that record no
        # per-sample CPU share themselves).
        result.setdefault("suite_cpu_share", {})[suite] = \
            (time.process_time() - started_cpu) / max(time.perf_counter() - started, 1e-9)
        for row in rows:
            row["suite"] = suite
        if suite == "models":
            add_gemm_bounds(rows, result["rates"], config["quick"])
        result["rows"] += rows
        _log(f"[{threads} thr] suite {suite} done in {time.perf_counter() - started:.1f} s")
    result["thread_report"] = harness.thread_report()  # after the suites: the peers are loaded now
    result["load_average_end"] = list(os.getloadavg()) if hasattr(os, "getloadavg") else None
    with open(config["result_path"], "w") as handle:
        json.dump(harness.to_jsonable(result), handle)
    return 0


# ---- the parent -------------------------------------------------------------------------------
def _check_args(parser, args) -> None:
    unknown = [s for s in args.suites if s not in SUITES]
    if unknown:
        parser.error(f"unknown suite(s) {unknown}; choose from {', '.join(SUITES)}")
    backends = [b.strip() for b in args.backend.split(",") if b.strip()]
    bad = [b for b in backends if b not in KNOWN_BACKENDS + ("auto",)]
    if bad or not backends or ("auto" in backends and len(backends) > 1):
        parser.error(f"--backend {args.backend!r}: use 'auto' or names from {', '.join(KNOWN_BACKENDS)}")
    args.backend_list = backends
    if args.repeat is not None and args.repeat < 1:
        parser.error("--repeat must be at least 1")
    if args.cases:
        from .bench_ops import select_cases

        try:
            select_cases(args.cases.split(","))
        except ValueError as error:
            parser.error(str(error))


def main(argv: Optional[List[str]] = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["reproduce"]:  # the README's figures, rerun (benchmarks/reproduce.py has its own options)
        from .reproduce import main as reproduce_main

        return reproduce_main(argv[1:])
    if argv[:1] == ["gpu"]:  # the GPU check has its own options (benchmarks/gpu.py)
        from . import gpu

        return gpu.main(argv[1:])
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.child:
        return child_main(args.child)
    _check_args(parser, args)
    suites = args.suites or list(SUITES)
    from . import machine, report

    started = time.perf_counter()
    run = {"command": ["python", "-m", "benchmarks"] + list(sys.argv[1:] if argv is None else argv),
           "options": {"suites": suites, "backend": args.backend_list, "sizes": args.sizes, "repeat": args.repeat,
                       "quick": args.quick, "threads": args.threads, "epochs": args.epochs, "steps": args.steps,
                       "cases": args.cases},
           "machine": machine.machine_info(), "children": {}, "rows": []}
    failed = False
    for index, threads in enumerate(args.threads):
        config = {"suites": suites, "backends": args.backend_list, "sizes": args.sizes, "repeat": args.repeat,
                  "quick": args.quick, "cases": args.cases, "epochs": args.epochs, "steps": args.steps,
                  "gpu": index == 0}
        child = harness.run_child(config, threads, timeout=args.timeout)
        rows = child.pop("rows", [])
        run["children"][str(threads)] = child
        run["rows"] += rows
        if child.get("error"):
            failed = True
            print(f"benchmarks: the {threads}-thread child failed: {child['error']}", file=sys.stderr)
    run["wall_s"] = time.perf_counter() - started
    failed = failed or any(r["status"] == "error" for r in run["rows"])
    print()
    print(report.format_table(run["rows"]))
    paths = report.write_report(run, args.out, plots=not args.no_plots)
    print()
    print(f"wrote {', '.join(paths.values())}  ({run['wall_s']:.1f} s)")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
