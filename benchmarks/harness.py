"""How a benchmark time is taken, and how every suite's results become one kind of row.

The method (issue 8), in the order a measurement runs:

1. **Warm-up apart.** The first call pays for things a steady training loop never pays again:
   Numba JIT compilation, CUDA context creation, allocator growth, cold caches. It is timed on
   its own and reported as ``first_call_s``; then ``WARMUP_CALLS`` more calls run untimed.
2. **Samples long enough to time.** One sample runs the function ``number`` times in a row and
   divides, where ``number`` is picked so that a sample lasts at least ``target_s`` (a 0.1 ms op
   timed once per sample would mostly measure the timer and the scheduler).
3. **GPU synchronisation.** GPU work is queued, not done, when a call returns; ``sync()`` runs
   before the timer starts and again before it stops, so a sample covers finished work only.
4. **Pairs, A B A B.** scratchgen (A) and its peer (B) alternate sample by sample, and the
   reported ratio is the *median of the per-pair ratios* a_i / b_i. Slow drift (a noisy
   neighbour on the VM, clock changes) hits both members of a pair alike and cancels.
5. **Median and spread.** Each side reports median, quartiles (IQR), min and max of its samples.
6. **Threads, pinned before import.** BLAS, OpenMP and Numba size their thread pools when they
   are loaded, so each thread count runs in a *child process* whose environment sets
   ``OMP_NUM_THREADS``, ``OPENBLAS_NUM_THREADS``, ``MKL_NUM_THREADS`` and ``NUMBA_NUM_THREADS``
   before NumPy is imported; in the child, PyTorch gets ``torch.set_num_threads`` and
   threadpoolctl (when installed) re-applies and *reports* the limits actually in force. The
   parent collects each child's rows as JSON.
7. **Noise flags.** On 2-vCPU cloud machines a 2-thread run sometimes has both threads packed on
   one vCPU and runs 10-25x slower for a while. A row at more than one thread whose max is
   over ``NOISY_MAX_OVER_MEDIAN`` times its median is flagged ``noisy``; the 1-thread ratio is
   the headline. Each sample also records this process's CPU time: a CPU row whose median
   CPU share (cpu / wall, in cores) is under ``CONTENDED_SHARE`` ran while other processes held
   the cores, and is flagged ``contended`` (in ``extra``): its times are inflated, and its
   ratio is only as good as the pairing. For such rows ``extra["ratio_cpu"]``, the median of
   the per-pair ratios of *CPU* time, is the better estimate (at 1 thread CPU time excludes
   the waits for the core; at 2 threads spinning pool threads make it meaningless).

Rows: every suite (ours, and the kernel/model suites other modules provide) ends up as a flat
dict with the keys of ``ROW_KEYS``; ``normalise_row`` maps other spellings onto them.
"""
from __future__ import annotations

import importlib
import inspect
import json
import math
import os
import subprocess
import sys
import tempfile
import time
import traceback
from typing import Callable, Dict, Iterable, List, Optional

import numpy as np

WARMUP_CALLS = 2
TARGET_SAMPLE_S = 0.005       # a sample lasts at least this long (quick runs: QUICK_TARGET_SAMPLE_S)
QUICK_TARGET_SAMPLE_S = 0.001
MAX_NUMBER = 1000             # never loop a single call more than this many times per sample
NOISY_MAX_OVER_MEDIAN = 2.0
CONTENDED_SHARE = 0.8         # a CPU row whose process got < 80% of one core: the machine was busy

THREAD_VARIABLES = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMBA_NUM_THREADS",
                    "VECLIB_MAXIMUM_THREADS", "NUMEXPR_NUM_THREADS")
HIDE_PEERS_VARIABLE = "SCRATCHGEN_BENCH_HIDE_PEERS"   # "torch,sklearn": act as if not installed
REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# The keys every normalised row has (values may be None). Times are seconds per call/epoch/step.
ROW_KEYS = (
    "suite", "name", "size", "size_value", "backend", "device", "threads", "unit",
    "median_s", "q1_s", "q3_s", "min_s", "max_s", "repeats", "first_call_s",
    "peer", "peer_median_s", "peer_q1_s", "peer_q3_s", "peer_min_s", "peer_max_s", "peer_first_call_s",
    "ratio", "ratio_q1", "ratio_q3", "ratio_method", "noisy", "status", "reason", "metrics", "extra", "source",
)


# ---- timing -----------------------------------------------------------------------------------
def summarize(times: Iterable[float]) -> Dict[str, float]:
    """Median, quartiles, min, max and count of a list of sample times (seconds)."""
    values = np.asarray(list(times), dtype=np.float64)
    if values.size == 0:
        return {"median_s": None, "q1_s": None, "q3_s": None, "min_s": None, "max_s": None, "repeats": 0}
    q1, median, q3 = np.percentile(values, [25, 50, 75])
    return {"median_s": float(median), "q1_s": float(q1), "q3_s": float(q3),
            "min_s": float(values.min()), "max_s": float(values.max()), "repeats": int(values.size)}


def time_sample_with_cpu(fn: Callable[[], object], number: int = 1, sync: Optional[Callable[[], None]] = None):
    """``(wall, cpu)`` seconds per call of ``fn`` over ``number`` back-to-back calls.

    ``cpu`` is this process's CPU time (all its threads): on an idle machine a 1-thread run has
    cpu ~= wall; cpu / wall well below 1 means other processes took the core (see ``CONTENDED_SHARE``).
    """
    if sync is not None:
        sync()  # start from an idle device: earlier queued work must not land in this sample
    start_cpu, start = time.process_time(), time.perf_counter()
    for _ in range(number):
        fn()
    if sync is not None:
        sync()  # the calls above only queued their work; wait for it before stopping the clock
    wall, cpu = time.perf_counter() - start, time.process_time() - start_cpu
    return wall / number, cpu / number


def time_sample(fn: Callable[[], object], number: int = 1, sync: Optional[Callable[[], None]] = None) -> float:
    """Seconds per call of ``fn`` over ``number`` back-to-back calls (GPU-synchronised if ``sync``)."""
    return time_sample_with_cpu(fn, number, sync)[0]


def warm_up(fn: Callable[[], object], sync=None, target_s: float = TARGET_SAMPLE_S) -> Dict[str, float]:
    """Run the first call (timed alone) and the untimed warm-up calls; pick ``number``.

    Returns ``{"first_call_s", "number"}``: the first call includes JIT compilation and GPU
    context creation, which is why it is reported and never mixed into the repeats.
    """
    first = time_sample(fn, 1, sync)
    steady = first
    for _ in range(WARMUP_CALLS):
        steady = time_sample(fn, 1, sync)
    number = int(min(MAX_NUMBER, max(1, math.ceil(target_s / max(steady, 1e-9)))))
    return {"first_call_s": first, "number": number}


def _series(samples, warm: Dict) -> Dict:
    """Summary of ``(wall, cpu)`` samples, with the median CPU share cpu / wall."""
    times = [wall for wall, _ in samples]
    share = float(np.median([cpu / wall for wall, cpu in samples if wall > 0])) if samples else None
    cpu_median = float(np.median([cpu for _, cpu in samples])) if samples else None
    return {**summarize(times), "first_call_s": warm["first_call_s"], "number": warm["number"], "times": times,
            "cpu_share": share, "cpu_median_s": cpu_median}


def measure(fn: Callable[[], object], repeat: int, sync=None, target_s: float = TARGET_SAMPLE_S) -> Dict:
    """Time ``fn`` alone: warm-up apart, then ``repeat`` samples. Summary keys as ``summarize``
    plus ``first_call_s``, ``number``, ``times`` and ``cpu_share``."""
    warm = warm_up(fn, sync, target_s)
    return _series([time_sample_with_cpu(fn, warm["number"], sync) for _ in range(repeat)], warm)


def measure_pair(fn: Callable[[], object], peer_fn: Callable[[], object], repeat: int, sync=None, peer_sync=None,
                 target_s: float = TARGET_SAMPLE_S) -> Dict:
    """Time scratchgen's ``fn`` and the peer's ``peer_fn`` interleaved A B A B.

    Returns ``{"ours": series, "peer": series, "ratio", "ratio_q1", "ratio_q3"}`` (series as
    ``measure`` returns) where the ratio is the median over pairs of ours_i / peer_i (below 1:
    scratchgen is faster).
    """
    warm_ours = warm_up(fn, sync, target_s)
    warm_peer = warm_up(peer_fn, peer_sync, target_s)
    ours, peer = [], []
    for _ in range(repeat):
        ours.append(time_sample_with_cpu(fn, warm_ours["number"], sync))
        peer.append(time_sample_with_cpu(peer_fn, warm_peer["number"], peer_sync))
    ratios = np.asarray([a for a, _ in ours]) / np.asarray([b for b, _ in peer])
    q1, median, q3 = np.percentile(ratios, [25, 50, 75])
    # The same pairing on CPU time: on a busy machine a 1-thread process's CPU time leaves out
    # the time it waited for the core, so this ratio survives contention that the wall one does not.
    cpu_ratios = [a / b for (_, a), (_, b) in zip(ours, peer) if a > 0 and b > 0]
    return {"ours": _series(ours, warm_ours), "peer": _series(peer, warm_peer),
            "ratio": float(median), "ratio_q1": float(q1), "ratio_q3": float(q3),
            "ratio_cpu": float(np.median(cpu_ratios)) if cpu_ratios else None}


def is_noisy(median_s: Optional[float], max_s: Optional[float], threads: Optional[int]) -> bool:
    """A multi-thread series whose slowest sample is over twice its median (see the module doc)."""
    if not threads or threads <= 1 or not median_s or max_s is None:
        return False
    return max_s > NOISY_MAX_OVER_MEDIAN * median_s


# ---- threads ----------------------------------------------------------------------------------
_pinned_threads: Optional[int] = None


def thread_environment(threads: int, base: Optional[Dict[str, str]] = None) -> Dict[str, str]:
    """A copy of ``base`` (default ``os.environ``) with every thread-pool variable set to ``threads``
    and the repository root on ``PYTHONPATH`` (so the child imports this checkout)."""
    env = dict(os.environ if base is None else base)
    for variable in THREAD_VARIABLES:
        env[variable] = str(threads)
    paths = [REPO_ROOT] + [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p]
    env["PYTHONPATH"] = os.pathsep.join(paths)
    return env


def pin_threads(threads: int) -> None:
    """In a child process: make sure every thread pool already loaded uses ``threads`` threads.

    The environment did the real work before NumPy was imported; this re-applies the limit
    through threadpoolctl (if installed) and Numba (if loaded), and remembers the count so
    that ``load_peer("torch")`` pins PyTorch the same way.
    """
    global _pinned_threads
    _pinned_threads = int(threads)
    try:
        from threadpoolctl import threadpool_limits

        threadpool_limits(limits=_pinned_threads)
    except ImportError:
        pass
    if "numba" in sys.modules:
        _pin_numba(_pinned_threads)


def _pin_numba(threads: int) -> None:
    try:
        import numba

        numba.set_num_threads(min(threads, numba.config.NUMBA_NUM_THREADS))
    except Exception:  # numba's threading layer may be unavailable; the env variable still holds
        pass


def pinned_threads() -> Optional[int]:
    """The thread count this process was pinned to (None outside a benchmark child)."""
    return _pinned_threads


def thread_report() -> Dict:
    """The thread limits really in force in this process, library by library (for the JSON)."""
    report = {variable: os.environ.get(variable) for variable in THREAD_VARIABLES}
    try:
        from threadpoolctl import threadpool_info

        report["threadpools"] = [
            {"api": info.get("user_api"), "library": info.get("internal_api"), "num_threads": info.get("num_threads"),
             "version": info.get("version"), "file": os.path.basename(info.get("filepath", ""))}
            for info in threadpool_info()
        ]
    except ImportError:
        report["threadpools"] = "threadpoolctl not installed"
    if "numba" in sys.modules:
        try:
            report["numba_threads"] = sys.modules["numba"].get_num_threads()
        except Exception as error:
            report["numba_threads"] = f"unknown ({error})"
    if "torch" in sys.modules:
        torch = sys.modules["torch"]
        report["torch_threads"] = torch.get_num_threads()
        report["torch_interop_threads"] = torch.get_num_interop_threads()
    return report


# ---- peers ------------------------------------------------------------------------------------
class PeerMissing(Exception):
    """A peer library is not installed (or hidden): its rows are skipped, never failed."""


_PEER_MODULES = {"torch": "torch", "sklearn": "sklearn"}


def load_peer(name: str):
    """Import peer ``name`` ("torch" or "sklearn"), pinned to this process's thread count.

    Raises ``PeerMissing`` with the reason when it cannot be used.
    """
    hidden = {p.strip() for p in os.environ.get(HIDE_PEERS_VARIABLE, "").split(",") if p.strip()}
    if name in hidden:
        raise PeerMissing(f"{name} hidden by {HIDE_PEERS_VARIABLE}")
    try:
        module = importlib.import_module(_PEER_MODULES.get(name, name))
    except ImportError as error:
        raise PeerMissing(f"{name} is not installed ({error})") from error
    if name == "torch" and _pinned_threads is not None:
        module.set_num_threads(_pinned_threads)
        try:
            module.set_num_interop_threads(_pinned_threads)
        except RuntimeError:  # only allowed once, before any parallel work; already set is fine
            pass
    return module


def torch_sync(torch, device: str) -> Optional[Callable[[], None]]:
    """``torch.cuda.synchronize`` for a CUDA peer, None on the CPU (nothing to wait for)."""
    return torch.cuda.synchronize if device.startswith("cuda") else None


# ---- rows -------------------------------------------------------------------------------------
def make_row(**fields) -> Dict:
    """A row with every key of ``ROW_KEYS`` (missing ones None); unknown keys go to ``extra``."""
    row = {key: None for key in ROW_KEYS}
    extra = dict(fields.pop("extra", None) or {})
    for key, value in fields.items():
        if key in row:
            row[key] = value
        else:
            extra[key] = value
    row["extra"] = extra
    row["metrics"] = row["metrics"] or {}
    row["status"] = row["status"] or "ok"
    shares = [s for s in (row["extra"].get("cpu_share"), row["extra"].get("peer_cpu_share")) if s is not None]
    # At any thread count a process that got under CONTENDED_SHARE of one core was waiting for it.
    if row["device"] in (None, "cpu") and shares and min(shares) < CONTENDED_SHARE:
        row["extra"]["contended"] = True
    if row["noisy"] is None:
        row["noisy"] = is_noisy(row["median_s"], row["max_s"], row["threads"]) or \
            is_noisy(row["peer_median_s"], row["peer_max_s"], row["threads"])
    return row


def row_from_pair(result: Dict, **fields) -> Dict:
    """A row from ``measure_pair``'s result (or ``measure``'s when there is no peer)."""
    ours = result.get("ours", result)
    peer = result.get("peer") or {}
    extra = dict(fields.pop("extra", None) or {})
    extra["number"] = ours.get("number")
    extra["cpu_share"] = ours.get("cpu_share")
    extra["cpu_median_s"] = ours.get("cpu_median_s")
    if peer:
        extra["peer_number"] = peer.get("number")
        extra["peer_cpu_share"] = peer.get("cpu_share")
        extra["peer_cpu_median_s"] = peer.get("cpu_median_s")
        extra["ratio_cpu"] = result.get("ratio_cpu")
    return make_row(
        median_s=ours["median_s"], q1_s=ours["q1_s"], q3_s=ours["q3_s"], min_s=ours["min_s"], max_s=ours["max_s"],
        repeats=ours["repeats"], first_call_s=ours.get("first_call_s"),
        peer_median_s=peer.get("median_s"), peer_q1_s=peer.get("q1_s"), peer_q3_s=peer.get("q3_s"),
        peer_min_s=peer.get("min_s"), peer_max_s=peer.get("max_s"), peer_first_call_s=peer.get("first_call_s"),
        ratio=result.get("ratio"), ratio_q1=result.get("ratio_q1"), ratio_q3=result.get("ratio_q3"),
        ratio_method="median of A/B pair ratios" if result.get("ratio") is not None else None,
        extra=extra, **fields)


def skipped_row(suite: str, name: str, reason: str, **fields) -> Dict:
    return make_row(suite=suite, name=name, status="skipped", reason=reason, **fields)


def error_row(suite: str, name: str, error: BaseException, **fields) -> Dict:
    where = traceback.extract_tb(error.__traceback__)[-1:] if error.__traceback__ else []
    at = f" at {os.path.basename(where[0].filename)}:{where[0].lineno}" if where else ""
    return make_row(suite=suite, name=name, status="error", reason=f"{type(error).__name__}: {error}{at}", **fields)


# Other spellings of our keys that another suite's rows may use (first match wins).
_ALIASES = {
    "name": ("name", "case", "model", "kernel", "benchmark", "op"),
    "backend": ("backend", "impl", "implementation", "engine"),
    "size": ("size", "shape", "sizes", "params", "config"),
    "unit": ("unit", "units"),
    "median_s": ("median_s", "median", "time_s", "seconds", "s_per_epoch", "seconds_per_epoch", "epoch_s",
                 "s_per_step", "seconds_per_step", "step_s", "time"),
    "q1_s": ("q1_s", "q1", "p25_s"), "q3_s": ("q3_s", "q3", "p75_s"),
    "min_s": ("min_s", "min", "best_s"), "max_s": ("max_s", "max", "worst_s"),
    "repeats": ("repeats", "repeat", "n", "samples", "runs", "epochs", "steps"),
    "first_call_s": ("first_call_s", "first_s", "warmup_s", "compile_s", "first_epoch_s", "first_step_s"),
    "peer": ("peer", "peer_name", "baseline"),
    "peer_median_s": ("peer_median_s", "peer_median", "peer_s", "peer_time_s", "peer_seconds", "baseline_s",
                      "torch_median_s", "torch_s", "sklearn_s", "peer_s_per_epoch", "peer_s_per_step"),
    "peer_q1_s": ("peer_q1_s",), "peer_q3_s": ("peer_q3_s",),
    "peer_min_s": ("peer_min_s",), "peer_max_s": ("peer_max_s",),
    "peer_first_call_s": ("peer_first_call_s", "peer_first_s", "peer_warmup_s", "peer_first_epoch_s"),
    "ratio": ("ratio", "ratio_to_peer", "speed_ratio", "vs_peer"),
    "ratio_q1": ("ratio_q1",), "ratio_q3": ("ratio_q3",), "ratio_method": ("ratio_method",),
    "device": ("device",), "threads": ("threads", "num_threads"), "status": ("status",),
    "reason": ("reason", "skip_reason", "error", "note"), "metrics": ("metrics", "quality"),
}


def normalise_row(raw: Dict, suite: str, threads: Optional[int] = None, source: Optional[str] = None) -> Dict:
    """Bring a row dict from another benchmark module into our format (see ``ROW_KEYS``).

    Known spellings (``_ALIASES``) are mapped; everything else is kept under ``extra``. A row
    with both medians but no ratio gets the ratio of the medians, and says so.
    """
    raw = dict(raw)
    extra = dict(raw.pop("extra", None) or {})
    raw.pop("suite", None)  # the suite that ran it decides
    raw_source = raw.pop("source", None)
    ours = {key: raw.pop(key) for key in ROW_KEYS if key in raw}  # our own spelling (None: not given)
    fields = {key: value for key, value in ours.items() if value is not None}
    for key, aliases in _ALIASES.items():
        if key in fields:
            continue
        for alias in aliases:
            if alias in raw and raw[alias] is not None:
                fields[key] = raw.pop(alias)
                break
    extra.update(raw)  # whatever is left has no column of its own
    fields["extra"] = extra
    source = raw_source or source
    fields.setdefault("name", source or suite)
    fields.setdefault("threads", threads)
    if fields.get("threads") is None:
        fields["threads"] = threads
    if isinstance(fields.get("size"), (list, tuple)):
        fields["size"] = "x".join(str(s) for s in fields["size"])
    if isinstance(fields.get("metrics"), (int, float)):
        fields["metrics"] = {"value": fields["metrics"]}
    fields.setdefault("device", "cuda" if str(fields.get("backend", "")) in ("cupy", "numba-cuda") else "cpu")
    if fields.get("ratio") is None and fields.get("median_s") and fields.get("peer_median_s"):
        fields["ratio"] = fields["median_s"] / fields["peer_median_s"]
        fields["ratio_method"] = "ratio of medians (the suite gave no pair ratios)"
    status = str(fields.get("status", "ok")).lower()
    fields["status"] = {"skip": "skipped", "skipped": "skipped", "error": "error", "failed": "error"}.get(status, "ok")
    row = make_row(suite=suite, source=source, **fields)
    # Our noise criterion holds for every suite, whatever the module decided.
    row["noisy"] = bool(row["noisy"]) or is_noisy(row["median_s"], row["max_s"], row["threads"]) or \
        is_noisy(row["peer_median_s"], row["peer_max_s"], row["threads"])
    return row


def call_with_supported(fn: Callable, **kwargs):
    """Call ``fn`` with only the keyword arguments its signature accepts and that are not None
    (a thin adapter).

    Lets the harness drive benchmark modules whose ``run`` functions take different options.
    """
    kwargs = {k: v for k, v in kwargs.items() if v is not None}  # None: "use the module's default"
    try:
        parameters = inspect.signature(fn).parameters
    except (TypeError, ValueError):
        return fn(**kwargs)
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters.values()):
        return fn(**kwargs)
    return fn(**{k: v for k, v in kwargs.items() if k in parameters})


def run_external(module_name: str, function_name: str, suite: str, threads: Optional[int] = None, **kwargs) -> List[Dict]:
    """Run ``module_name.function_name(**kwargs)`` and normalise its rows.

    A module that does not exist yet, or has no such function, gives one *skipped* row saying
    so; an exception gives one *error* row. Neither stops the rest of the run.
    """
    short = module_name.rsplit(".", 1)[-1]
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as error:
        if error.name and module_name.startswith(error.name):
            return [skipped_row(suite, short, f"{module_name} does not exist (not written yet)", threads=threads, source=module_name)]
        return [skipped_row(suite, short, f"{module_name} needs a missing package: {error}", threads=threads, source=module_name)]
    except Exception as error:
        return [error_row(suite, short, error, threads=threads, source=module_name)]
    fn = getattr(module, function_name, None)
    if fn is None:
        return [skipped_row(suite, short, f"{module_name} has no {function_name}()", threads=threads, source=module_name)]
    try:
        raw_rows = call_with_supported(fn, threads=threads, **kwargs)
    except Exception as error:
        return [error_row(suite, short, error, threads=threads, source=module_name)]
    if isinstance(raw_rows, dict):
        raw_rows = [raw_rows]
    return [normalise_row(raw, suite, threads, module_name) for raw in (raw_rows or [])]


# ---- child processes --------------------------------------------------------------------------
def run_child(config: Dict, threads: int, timeout: Optional[float] = None) -> Dict:
    """Run ``python -m benchmarks --child CONFIG`` pinned to ``threads``; return its JSON result.

    The child's progress lines go straight to this process's stdout/stderr. A crashed or
    timed-out child gives ``{"threads", "error", "rows": []}`` rather than an exception.
    """
    with tempfile.TemporaryDirectory(prefix="scratchgen-bench-") as tmp:
        config_path = os.path.join(tmp, "config.json")
        result_path = os.path.join(tmp, "result.json")
        with open(config_path, "w") as handle:
            json.dump({**config, "threads": threads, "result_path": result_path}, handle)
        command = [sys.executable, "-m", "benchmarks", "--child", config_path]
        try:
            completed = subprocess.run(command, env=thread_environment(threads), cwd=REPO_ROOT, timeout=timeout)
        except subprocess.TimeoutExpired:
            return {"threads": threads, "error": f"child timed out after {timeout} s", "rows": []}
        if not os.path.exists(result_path):
            return {"threads": threads, "error": f"child exited with status {completed.returncode} and wrote no result",
                    "rows": []}
        with open(result_path) as handle:
            result = json.load(handle)
        if completed.returncode != 0:
            result["error"] = f"child exited with status {completed.returncode}"
        return result


def to_jsonable(value):
    """NumPy scalars/arrays and other oddities -> plain JSON types (NaN/Inf -> None)."""
    if isinstance(value, dict):
        return {str(k): to_jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [to_jsonable(v) for v in value]
    if isinstance(value, np.ndarray):
        return to_jsonable(value.tolist())
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    return str(value)
