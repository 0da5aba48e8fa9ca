"""The user's path, measured: ``scratchgen train MODEL`` and ``model.fit`` beside the peer, with memory.

Every number here comes from a separate process (``user_path_child.py``), as a user would run it:

* **CLI rows** (``scratchgen train``): seconds per epoch read from the run's own ``metrics.json``
  (``history[*].seconds``, the loop over the batches, what the user sees in the epoch line).
* **API rows** (``model.fit``): the same model, options and data through the Python API; its
  ``history[*].seconds``. The CLI and ``fit`` are one loop (``Trainer``), so the two rows should
  agree: a gap between them is a bug to look at, and it is in every benchmark run.
* **peer**: PyTorch (VAE, contractive AE, DCGAN) or scikit-learn (RBM) training the same network
  on the same 50,000 Fashion-MNIST images (the CLI's split) in a process of its own.

The three are *interleaved*: CLI, API, peer, CLI, API, peer ... (``repeats`` rounds), and a ratio
is the median over rounds of (ours / the peer's same-round time), so drift on a shared machine
hits both alike. Each process trains ``epochs`` epochs; the first epoch (Numba's compilation or
cache loading, cold caches) is reported apart as ``first_call_s`` and the median of the others is
the row's time.

Threads: the peer's process runs with the thread variables the harness pins (``OMP_NUM_THREADS``
and the rest, ``torch.set_num_threads``). Ours runs as a user asks for N threads: those variables
removed and ``SCRATCHGEN_NUM_THREADS=N`` set, so that the training loop's own policy
(``scratchgen/threads.py``: on at most 2 cores Numba stays serial beside BLAS) is what is timed.

Memory, beside time, per side and per process: ``peak_rss_mb`` (the whole process's peak
resident memory: interpreter, libraries, the dataset and training) and ``training_mb`` (what
training adds: the peak *during* training minus the resident size just before it). Both sides
load the data the same way (scratchgen's loader), so the difference in the first is the libraries
and the training; the second is the model's parameters, optimiser state, activations and
gradients alone.

What each side does (``size`` says it again):

    vae            784-400-20 ReLU, Bernoulli decoder, Adam 1e-3, batch 128, float32 both
    contractive-ae 784-256 sigmoid, BCE + 0.1 ||J||_F^2, Adam 1e-3, batch 128, float32 both
    dcgan          G and D of bench_dcgan.py, Adam 2e-4 (0.5, 0.999), batch 64, one D + one G step,
                   ``dcgan_batches`` batches per epoch, float32 both
    rbm            784-256 Bernoulli RBM, PCD-1, 64 chains, batch 64, lr 0.01. Ours: the CLI's
                   defaults (momentum 0.5, weight decay 1e-4, dynamic binarisation of every batch,
                   a reconstruction-error monitor every 10th update), float32. scikit-learn: its
                   BernoulliRBM (no momentum, no weight decay, data binarised once), which computes
                   in the dtype it is given: float64 (its default for float64 data, the main peer
                   row) and float32 (a second row).

Cold start (``first_step`` rows): seconds from starting Python to the end of the first training
step of the VAE through ``fit``: NumPy backend; Numba with an empty kernel cache (every kernel
compiled); Numba again with that cache (what every later run pays). ``x_numpy`` is the overhead
over the NumPy backend's first step.
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from typing import Dict, List, Optional

import numpy as np

from .harness import REPO_ROOT, make_row, skipped_row

MODELS = ("vae", "contractive-ae", "dcgan", "rbm")
SIZES = {"vae": "784-400-20 b128", "contractive-ae": "784-256 lambda0.1 b128", "dcgan": "28x28 width 64 b64",
         "rbm": "784-256 PCD-1 b64 (ours: momentum 0.5, wd 1e-4, dynamic binarisation)"}
PEERS = {"vae": "torch", "contractive-ae": "torch", "dcgan": "torch", "rbm": "scikit-learn"}
DCGAN_BATCHES = 60  # batches per DCGAN epoch (a full epoch is 782 steps, ~3 minutes at 1 thread)
TRAIN_EXAMPLES = 50000  # Fashion-MNIST's training images less the CLI's validation split
BATCH = {"vae": 128, "contractive-ae": 128, "dcgan": 64, "rbm": 64}


def _child(args: List[str], timeout: float = 3600, env: Optional[Dict[str, str]] = None) -> Dict:
    """Run one measured process; returns its JSON result."""
    with tempfile.TemporaryDirectory(prefix="scratchgen-bench-user-") as tmp:
        result_path = os.path.join(tmp, "result.json")
        command = [sys.executable, "-m", "benchmarks.user_path_child"] + args[:1] + args[1:]
        command = [c if c != "RESULT" else result_path for c in command]
        process = subprocess.Popen(command, cwd=REPO_ROOT, env=env or dict(os.environ), stdout=subprocess.PIPE,
                                   stderr=subprocess.STDOUT, text=True)
        started = time.time()
        output_lines = []
        while True:
            line = process.stdout.readline()
            if not line:
                break
            output_lines.append(line)
            if time.time() - started > timeout:
                process.kill()
        process.wait()
        if process.returncode != 0 or not os.path.exists(result_path):
            tail = "".join(output_lines[-8:])
            raise RuntimeError(f"{' '.join(command[3:5])} failed (status {process.returncode}): {tail.strip()[-600:]}")
        with open(result_path) as handle:
            result = json.load(handle)
    return result


def _users_environment(threads: int) -> Dict[str, str]:
    """The environment of a user who asks scratchgen for ``threads`` threads (see the module docstring)."""
    from benchmarks.harness import THREAD_VARIABLES

    env = {k: v for k, v in os.environ.items() if k not in THREAD_VARIABLES}
    env["SCRATCHGEN_NUM_THREADS"] = str(threads)
    return env


def _steady(seconds: List[float]) -> float:
    """The median epoch after the first (the first alone when there is only one)."""
    return float(np.median(seconds[1:] if len(seconds) > 1 else seconds))


def _mb(value) -> Optional[float]:
    return None if value is None else value / 2**20


def _memory(result: Dict) -> Dict[str, Optional[float]]:
    # The child's own high-water mark (VmHWM): wait4's ru_maxrss would also count the parent's
    # resident size at fork time, which Linux carries over into the child's maximum.
    peak = result.get("peak_rss") or None
    training = None
    if result.get("training_peak_rss") is not None and result.get("rss_before_training") is not None:
        training = (result["training_peak_rss"] - result["rss_before_training"])
    return {"peak_rss_mb": _mb(peak), "training_mb": _mb(training)}


def _row(model, backend, threads, path_name, ours: List[Dict], peers: List[Dict], peer_name, unit, note,
         examples: Optional[int] = None) -> Dict:
    steady = [_steady(r["seconds"]) for r in ours]
    first = [r["seconds"][0] for r in ours]
    fields = dict(suite="models", name=f"{model} ({path_name})", size=SIZES[model], backend=backend, device="cpu",
                  threads=threads, unit=unit, median_s=float(np.median(steady)), q1_s=float(np.percentile(steady, 25)),
                  q3_s=float(np.percentile(steady, 75)), min_s=float(min(steady)), max_s=float(max(steady)),
                  repeats=len(steady), first_call_s=float(np.median(first)))
    memory = [_memory(r) for r in ours]
    extra = {"path": path_name, "seconds_per_epoch": [r["seconds"] for r in ours], "note": note, "examples": examples,
             "peak_rss_mb": _median([m["peak_rss_mb"] for m in memory]),
             "training_mb": _median([m["training_mb"] for m in memory])}
    if ours and ours[0].get("command"):
        extra["command"] = ours[0]["command"]
    if peers:
        peer_steady = [_steady(r["seconds"]) for r in peers]
        ratios = np.asarray(steady[: len(peer_steady)]) / np.asarray(peer_steady[: len(steady)])
        peer_memory = [_memory(r) for r in peers]
        fields.update(peer=peer_name, peer_median_s=float(np.median(peer_steady)), peer_min_s=float(min(peer_steady)),
                      peer_max_s=float(max(peer_steady)), peer_first_call_s=float(np.median([r["seconds"][0] for r in peers])),
                      ratio=float(np.median(ratios)), ratio_q1=float(np.percentile(ratios, 25)),
                      ratio_q3=float(np.percentile(ratios, 75)), ratio_method="median of per-round ratios (rounds interleaved)")
        extra.update(peer_seconds_per_epoch=[r["seconds"] for r in peers],
                     peer_peak_rss_mb=_median([m["peak_rss_mb"] for m in peer_memory]),
                     peer_training_mb=_median([m["training_mb"] for m in peer_memory]))
        if extra["peak_rss_mb"] and extra["peer_peak_rss_mb"]:
            extra["peak_rss_ratio"] = extra["peak_rss_mb"] / extra["peer_peak_rss_mb"]
        if extra["training_mb"] is not None and extra["peer_training_mb"]:
            extra["training_mb_ratio"] = extra["training_mb"] / extra["peer_training_mb"]
    return make_row(extra=extra, **fields)


def _median(values):
    values = [v for v in values if v is not None]
    return float(np.median(values)) if values else None


def _peer_available(model) -> Optional[str]:
    """None if the model's peer can run here, else why not."""
    import importlib.util

    module = "sklearn" if PEERS[model] == "scikit-learn" else "torch"
    hidden = {p.strip() for p in os.environ.get("SCRATCHGEN_BENCH_HIDE_PEERS", "").split(",")}
    if module in hidden:
        return f"{module} hidden by SCRATCHGEN_BENCH_HIDE_PEERS"
    return None if importlib.util.find_spec(module) else f"{module} is not installed"


def run(quick: bool = False, threads: int = 1, epochs: Optional[int] = None, repeats: Optional[int] = None,
        backends=("numpy", "numba"), models=MODELS, cold_start: bool = True, log=print) -> List[Dict]:
    """CLI and API rows for every model and CPU backend, beside the peer, interleaved; then cold starts."""
    from scratchgen.backend import backend_status

    epochs = epochs or (2 if quick else 3)
    repeats = repeats or (1 if quick else 2)
    rows = []
    cpu_backends = [b for b in backends if b in ("numpy", "numba")]
    for model in models:
        peer_reason = _peer_available(model)
        max_batches = (20 if quick else DCGAN_BATCHES) if model == "dcgan" else (100 if quick else None)
        options = ["--max-batches", str(max_batches)] if max_batches else []
        unit = "s/epoch" + (f" ({max_batches} batches)" if max_batches else "")
        note = f"{epochs} epochs per process, {repeats} interleaved rounds; first epoch reported apart"
        examples = TRAIN_EXAMPLES if not max_batches else min(TRAIN_EXAMPLES, max_batches * BATCH[model])
        runs: Dict[str, Dict[str, List[Dict]]] = {b: {"cli": [], "api": []} for b in cpu_backends}
        peers: Dict[str, List[Dict]] = {"main": [], "float32": []}
        usable = {}
        for backend in cpu_backends:
            ok, why = backend_status(backend)
            usable[backend] = ok
            if not ok:
                rows.append(skipped_row("models", f"{model} (scratchgen train)", why, backend=backend, threads=threads))
        for round_index in range(repeats):
            for backend in cpu_backends:
                if not usable[backend]:
                    continue
                for path in ("cli", "api"):
                    try:
                        result = _child([path, model, backend, str(epochs), "RESULT"] + options,
                                        env=_users_environment(threads))
                    except RuntimeError as error:
                        log(f"[user path] {model} {path} {backend}: {error}")
                        continue
                    runs[backend][path].append(result)
                    log(f"[user path {threads} thr] {model} {path} [{backend}] round {round_index + 1}: epochs "
                        + ", ".join(f"{s:.2f}" for s in result["seconds"]) + f" s; peak {(result.get('peak_rss') or 0) / 2**20:.0f} MB")
            if peer_reason is None:
                for key, extra_args in (("main", []), ("float32", ["--dtype", "float32"])):
                    if key == "float32" and model != "rbm":
                        continue
                    try:
                        result = _child(["peer", model, str(epochs), "RESULT"] + options + extra_args)
                    except RuntimeError as error:
                        log(f"[user path] {model} peer: {error}")
                        continue
                    peers[key].append(result)
                    log(f"[user path {threads} thr] {model} {PEERS[model]}{' float32' if key == 'float32' else ''} "
                        f"round {round_index + 1}: epochs " + ", ".join(f"{s:.2f}" for s in result["seconds"])
                        + f" s; peak {(result.get('peak_rss') or 0) / 2**20:.0f} MB")
        peer_name = PEERS[model] + (" (float64)" if model == "rbm" else "")
        for backend in cpu_backends:
            for path, label in (("cli", "scratchgen train"), ("api", "model.fit")):
                if runs[backend][path]:
                    rows.append(_row(model, backend, threads, label, runs[backend][path], peers["main"], peer_name, unit,
                                     note if peer_reason is None else f"{note}; peer skipped: {peer_reason}", examples))
            if model == "rbm" and peers["float32"] and runs[backend]["cli"]:
                row = _row(model, backend, threads, "scratchgen train", runs[backend]["cli"], peers["float32"],
                           "scikit-learn (float32)", unit, note, examples)
                row["name"] = f"{model} (scratchgen train, vs float32 peer)"
                rows.append(row)
    if cold_start and threads == 1:
        rows += cold_start_rows(threads, log)
    return rows


def cold_start_rows(threads: int, log=print, model: str = "vae", repeats: int = 3) -> List[Dict]:
    """Time to the first training step: numpy, numba with an empty cache, numba with that cache."""
    from scratchgen.backend import backend_status

    results: Dict[str, List[float]] = {"numpy": [], "numba (empty cache)": [], "numba (cached)": []}
    have_numba = backend_status("numba")[0]
    if have_numba:  # fill the user's cache first, so that "cached" is what every later run pays
        try:
            _child(["first-step", model, "numba", repr(time.time()), "RESULT"])
        except RuntimeError as error:
            log(f"[cold start] warming the cache: {error}")
    for _ in range(repeats):
        for label in results:
            if label != "numpy" and not have_numba:
                continue
            backend = "numpy" if label == "numpy" else "numba"
            env = dict(os.environ)
            cache = None
            if label == "numba (empty cache)":
                cache = tempfile.mkdtemp(prefix="scratchgen-numba-cold-")
                env["NUMBA_CACHE_DIR"] = cache
            try:
                result = _child(["first-step", model, backend, repr(time.time()), "RESULT"], env=env)
            except RuntimeError as error:
                log(f"[cold start] {label}: {error}")
                continue
            finally:
                if cache:
                    shutil.rmtree(cache, ignore_errors=True)
            results[label].append(result["first_step_s"])
            log(f"[cold start] {model} {label}: first step after {result['first_step_s']:.2f} s")
    rows = []
    numpy_median = float(np.median(results["numpy"])) if results["numpy"] else None
    for label, values in results.items():
        if not values:
            continue
        median = float(np.median(values))
        extra = {"first_step_seconds": values,
                 "over_numpy_s": None if numpy_median is None else median - numpy_median,
                 "what": "seconds from starting Python to the end of the first training step (imports, data, model, "
                         "compilation or cache loading, one step)"}
        rows.append(make_row(suite="models", name="time to first training step", size=f"{model}, fresh process", backend=label,
                             device="cpu", threads=threads, unit="s", median_s=median, min_s=min(values), max_s=max(values),
                             repeats=len(values), extra=extra))
    return rows
