"""How the two thread pools should share the cores: training-step time per (BLAS threads, Numba threads).

The numba backend runs matrix products on the BLAS's threads and its fused loops on Numba's; both
pools keep idle threads around, so on a small machine they can take turns on the same cores.
This measures it where it matters, a real training step (``model.train_step``, numba backend),
for the VAE 784-400-20 (batch 128) and the DCGAN (batch 64), with the pools at

    (1, 1)  one thread each, the default on machines with at most 2 cores
    (2, 2)  both pools at 2
    (2, 1)  BLAS at 2, Numba serial: what SCRATCHGEN_NUM_THREADS=2 gives on at most 2 cores
    (1, 2)  Numba at 2, BLAS serial

in interleaved rounds (each round times every setting once, so slow episodes of the machine hit
them alike); the medians are what ``scratchgen/threads.py`` bases its policy on. Run it on an
otherwise idle machine: a second thread is only worth measuring when the second core is free.

``--gemms`` times, in the same way, what limits both the VAE's epoch-to-GEMM-bound ratio and its
second thread: the 14 matrix products of one VAE step alone (forward, and both gradients of every
layer but the first's input; the shapes the step hands OpenBLAS) at 1 and 2 BLAS threads, beside
the 1024^3 sgemm rate that defines the GEMM bound of ``python -m benchmarks models``.

    python -m benchmarks.bench_pools [--models vae,dcgan] [--rounds 6] [--gemms]
"""
from __future__ import annotations

import argparse
import json
import time
from typing import Dict, List

import numpy as np

SETTINGS = ((1, 1), (2, 2), (2, 1), (1, 2))  # (BLAS threads, Numba threads)


def _model(name: str):
    """(model, batches, steps timed per sample) for ``name``: batches of random data in the range the model trains on."""
    from scratchgen.models import DataInfo, build_model
    from scratchgen.models.base import MODEL_REGISTRY

    rng = np.random.default_rng(0)
    if name == "vae":
        config = {**MODEL_REGISTRY["vae"].defaults, "hidden": 400, "latent": 20, "lr": 1e-3}
        batches = rng.uniform(0, 1, (100, 128, 1, 28, 28)).astype(np.float32)
        return build_model("vae", config, DataInfo((1, 28, 28), 10), rng), batches, 100
    if name == "dcgan":
        config = {"latent_dim": 100, "width": 64, "lr": 2e-4, "beta1": 0.5}
        batches = rng.uniform(-1, 1, (10, 64, 1, 28, 28)).astype(np.float32)
        return build_model("dcgan", config, DataInfo((1, 28, 28), 10), rng), batches, 10
    raise ValueError(f"bench_pools: --models takes vae and dcgan, got {name!r}")


def run(models=("vae", "dcgan"), rounds: int = 6, log=print) -> List[Dict]:
    import numba
    from threadpoolctl import threadpool_limits

    import scratchgen

    scratchgen.set_backend("numba")
    if numba.config.NUMBA_NUM_THREADS < 2:
        raise SystemExit("bench_pools: Numba was started with one thread; unset NUMBA_NUM_THREADS")
    rows = []
    for name in models:
        model, batches, steps = _model(name)
        rng = np.random.default_rng(1)
        samples: Dict[tuple, List[float]] = {setting: [] for setting in SETTINGS}
        for round_index in range(rounds + 1):  # round 0 compiles both loop versions and warms up
            for blas, numba_threads in SETTINGS:
                numba.set_num_threads(numba_threads)
                with threadpool_limits(limits=blas, user_api="blas"):
                    start = time.perf_counter()
                    for step in range(steps):
                        model.train_step(batches[step % len(batches)], None, rng)
                    if round_index:
                        samples[(blas, numba_threads)].append((time.perf_counter() - start) / steps)
        for (blas, numba_threads), values in samples.items():
            row = {"model": name, "blas_threads": blas, "numba_threads": numba_threads,
                   "median_ms": 1e3 * float(np.median(values)), "samples_ms": [1e3 * v for v in values]}
            rows.append(row)
            log(f"{name:6s} BLAS {blas} / Numba {numba_threads}: {row['median_ms']:8.2f} ms per step "
                f"(rounds: {', '.join(f'{v:.1f}' for v in row['samples_ms'])})")
    return rows


def vae_gemms(rounds: int = 4, log=print) -> List[Dict]:
    """The VAE step's matrix products alone, per BLAS thread count, against the sgemm-rate bound."""
    from threadpoolctl import threadpool_limits

    from benchmarks import machine

    rng = np.random.default_rng(0)
    n, d, h, k = 128, 784, 400, 20  # batch, pixels, hidden, latent

    def a(*shape):
        return rng.random(shape, dtype=np.float32)

    x, w1, w_mu, w_logvar, w_d1, w_d2 = a(n, d), a(h, d), a(k, h), a(k, h), a(h, k), a(d, h)
    hidden, z, hidden2, g_out, g_hidden, g_latent = a(n, h), a(n, k), a(n, h), a(n, d), a(n, h), a(n, k)
    square = a(1024, 1024)

    def step_gemms():
        x @ w1.T, hidden @ w_mu.T, hidden @ w_logvar.T, z @ w_d1.T, hidden2 @ w_d2.T  # forward
        g_out.T @ hidden2, g_out @ w_d2, g_hidden.T @ z, g_hidden @ w_d1  # decoder gradients
        g_latent.T @ hidden, g_latent @ w_mu, g_latent.T @ hidden, g_latent @ w_logvar, g_hidden.T @ x  # encoder

    flops = machine.vae_epoch_matmul_flops(n)  # one step = one batch of n examples
    times: Dict[int, List[float]] = {1: [], 2: []}
    rates: Dict[int, List[float]] = {1: [], 2: []}
    for _ in range(rounds):
        for threads in (1, 2):
            with threadpool_limits(limits=threads, user_api="blas"):
                for _ in range(10):
                    step_gemms()
                start = time.perf_counter()
                for _ in range(200):
                    step_gemms()
                times[threads].append((time.perf_counter() - start) / 200)
                square @ square
                start = time.perf_counter()
                for _ in range(5):
                    square @ square
                rates[threads].append(2 * 1024**3 / ((time.perf_counter() - start) / 5))
    rows = []
    for threads in (1, 2):
        median, rate = float(np.median(times[threads])), max(rates[threads])
        bound = flops / rate
        rows.append({"blas_threads": threads, "gemms_ms": 1e3 * median, "sgemm_gflops": rate / 1e9,
                     "bound_ms": 1e3 * bound, "gemms_over_bound": median / bound})
        log(f"VAE step GEMMs, BLAS {threads}: {1e3 * median:.2f} ms; sgemm 1024^3 {rate / 1e9:.0f} GFLOP/s "
            f"-> bound {1e3 * bound:.2f} ms; GEMMs alone {median / bound:.2f}x the bound")
    log(f"second BLAS thread on the GEMMs alone: {rows[0]['gemms_ms'] / rows[1]['gemms_ms']:.2f}x")
    return rows


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.bench_pools", description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", default="vae,dcgan", help="comma-separated: vae, dcgan")
    parser.add_argument("--rounds", type=int, default=6, help="interleaved rounds (default 6)")
    parser.add_argument("--json", default=None, help="also write the rows to this file")
    parser.add_argument("--gemms", action="store_true", help="time the VAE step's GEMMs alone instead")
    args = parser.parse_args(argv)
    if args.gemms:
        rows = vae_gemms(args.rounds)
    else:
        rows = run([m.strip() for m in args.models.split(",") if m.strip()], args.rounds)
    if args.json:
        with open(args.json, "w") as handle:
            json.dump(rows, handle, indent=1)


if __name__ == "__main__":
    main()
