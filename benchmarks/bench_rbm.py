"""BernoulliRBM training speed: scratchgen vs scikit-learn, one epoch of PCD-1 at a time.

Protocol (issue 6's target), identical on both sides:
    784 -> 256 Bernoulli RBM, PCD-1 with 64 persistent chains (one per batch row), batch 64,
    learning rate 0.01 on batch-averaged statistics (scikit-learn divides its summed update by the
    batch size: the same step), no momentum or weight decay, weights N(0, 0.01^2); one epoch over
    the 60,000 training images of Fashion-MNIST (MNIST's 8,000-image test-set split if Fashion-MNIST is
    absent), binarised once (one Bernoulli draw per pixel, fixed seed: ``binarize(x, "static")``).

Timing: epochs are *interleaved* (scratchgen, scikit-learn, scratchgen, ...), so slow drift of a
shared machine hits both alike; the reported ratio is the median of the per-pair ratios. Our
side is a fresh ``BernoulliRBM(...).fit(x, epochs=1)``, scikit-learn's a fresh
``BernoulliRBM(n_iter=1).fit(x)`` (initialisation takes ~1 ms on either side). One
extra untimed epoch on each side first (warm-up: Numba compilation, page faults). Differences
that remain: we shuffle the batches each epoch (scikit-learn does not) and draw float32
uniforms from PCG64 (scikit-learn: float64 from the legacy Mersenne Twister).

Quality beside the time: the mean-field reconstruction error and the deterministic
pseudo-log-likelihood (all 784 bits) of 1,000 test images, both computed by the same scratchgen
code for both models (scikit-learn's weights are copied into a BernoulliRBM).

    python benchmarks/bench_rbm.py [--quick] [--threads 1] [--repeats 3] [--backend numpy,numba]
    run(quick=False, threads=1) -> list of row dicts (benchmarks/harness.py keys)
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from typing import Dict, List, Optional

import numpy as np

if __package__ in (None, ""):  # run as a script: make the repository importable
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

N_VISIBLE, N_HIDDEN, BATCH_SIZE, LR = 784, 256, 64, 0.01


def load_binary_data(quick: bool, seed: int = 0):
    """(x_train, x_test, description): binarised float32 (N, 784) arrays."""
    from scratchgen.data import binarize, load_dataset

    try:
        data, name = load_dataset("fashion-mnist", val_fraction=0.0), "fashion-mnist"
    except FileNotFoundError:
        data, name = load_dataset("mnist", val_fraction=0.0), "mnist (test-set split; found through $SCRATCHGEN_DATA)"
    rng = np.random.default_rng(seed)
    x_train = binarize(data.train.x, "static", rng).reshape(len(data.train.x), -1)
    x_test = binarize(data.test.x, "static", rng).reshape(len(data.test.x), -1)
    if quick:
        x_train = x_train[: 100 * BATCH_SIZE]
    return np.ascontiguousarray(x_train, np.float32), np.ascontiguousarray(x_test[:1000], np.float32), name


def _quality(weight, visible_bias, hidden_bias, x_test) -> Dict[str, float]:
    """Reconstruction error and pseudo-log-likelihood of x_test under the given parameters (our code)."""
    from scratchgen.models.boltzmann import monitors
    from scratchgen.models.boltzmann.bernoulli_rbm import BernoulliRBM

    probe = BernoulliRBM(N_VISIBLE, N_HIDDEN, rng=0)
    probe.weight.data[...] = weight
    probe.visible_bias.data[...] = visible_bias
    probe.hidden_bias.data[...] = hidden_bias
    return {"test_reconstruction_error": monitors.reconstruction_error(probe, x_test),
            "test_pseudo_log_likelihood": float(monitors.pseudo_log_likelihood(probe, x_test).mean())}


def _summary(times: List[float]) -> Dict[str, float]:
    values = np.asarray(times, dtype=np.float64)
    q1, median, q3 = np.percentile(values, [25, 50, 75])
    return {"median_s": float(median), "q1_s": float(q1), "q3_s": float(q3), "min_s": float(values.min()),
            "max_s": float(values.max()), "repeats": int(values.size)}


def _time_backend(backend: str, x_train, x_test, sklearn_rbm_class, repeats: int, threads: int, seed: int, log) -> Dict:
    import scratchgen
    from scratchgen.models.boltzmann.bernoulli_rbm import BernoulliRBM

    with scratchgen.use_backend(backend):
        def ours():  # a fresh model per epoch, like scikit-learn's fit: both sides train exactly one epoch
            rbm = BernoulliRBM(N_VISIBLE, N_HIDDEN, k=1, persistent=True, n_chains=BATCH_SIZE, lr=LR, rng=seed)
            return rbm.fit(x_train, epochs=1, batch_size=BATCH_SIZE, rng=seed + 1)

        def peer():
            model = sklearn_rbm_class(n_components=N_HIDDEN, learning_rate=LR, batch_size=BATCH_SIZE, n_iter=1,
                                      random_state=seed)
            model.fit(x_train)
            return model

        start = time.perf_counter()
        rbm = ours()
        first_call = time.perf_counter() - start
        peer_model = peer() if sklearn_rbm_class is not None else None
        ours_times, peer_times = [], []
        for repeat in range(repeats):
            start = time.perf_counter()
            rbm = ours()
            ours_times.append(time.perf_counter() - start)
            if sklearn_rbm_class is not None:
                start = time.perf_counter()
                peer_model = peer()
                peer_times.append(time.perf_counter() - start)
            log(f"[rbm {backend}, {threads} thread(s)] epoch {repeat + 1}: scratchgen {ours_times[-1]:.2f} s"
                + (f", scikit-learn {peer_times[-1]:.2f} s" if peer_times else ""))
        metrics = _quality(rbm.weight.data, rbm.visible_bias.data, rbm.hidden_bias.data, x_test)
        if peer_model is not None:
            peer_quality = _quality(peer_model.components_.T, peer_model.intercept_visible_,
                                    peer_model.intercept_hidden_, x_test)
            metrics.update({f"peer_{k}": v for k, v in peer_quality.items()})
        metrics["epochs_trained"] = 1  # both models: one epoch from initialisation
    return {"ours": ours_times, "peer": peer_times, "first_call_s": first_call, "metrics": metrics}


def run(quick: bool = False, threads: int = 1, repeats: Optional[int] = None, backends=("numpy", "numba"),
        seed: int = 0, log=print) -> List[Dict]:
    """One row per backend: seconds per epoch of scratchgen and scikit-learn, and their ratio."""
    from benchmarks.harness import PeerMissing, load_peer, make_row, pin_threads, skipped_row

    from scratchgen.backend import backend_status

    pin_threads(threads)
    repeats = repeats or (2 if quick else 3)
    x_train, x_test, data_name = load_binary_data(quick, seed)
    try:
        load_peer("sklearn")
        from sklearn.neural_network import BernoulliRBM as sklearn_rbm_class
        peer_reason = None
    except PeerMissing as error:
        sklearn_rbm_class, peer_reason = None, str(error)
    size = f"{N_VISIBLE}-{N_HIDDEN} PCD-1 b{BATCH_SIZE} lr{LR} {len(x_train)} images"
    rows = []
    for backend in backends:
        ok, why = backend_status(backend)
        if not ok:
            rows.append(skipped_row("models", "rbm_pcd1", why, backend=backend, threads=threads, size=size))
            continue
        result = _time_backend(backend, x_train, x_test, sklearn_rbm_class, repeats, threads, seed, log)
        fields = dict(suite="models", name="rbm_pcd1", size=size, backend=backend, device="cpu", threads=threads,
                      unit="s/epoch", first_call_s=result["first_call_s"], metrics={**result["metrics"], "data": data_name},
                      extra={"seconds_per_epoch": result["ours"]}, **_summary(result["ours"]))
        if result["peer"]:
            peer = _summary(result["peer"])
            ratios = np.asarray(result["ours"]) / np.asarray(result["peer"])
            q1, median, q3 = np.percentile(ratios, [25, 50, 75])
            fields.update(peer="scikit-learn", peer_median_s=peer["median_s"], peer_q1_s=peer["q1_s"], peer_q3_s=peer["q3_s"],
                          peer_min_s=peer["min_s"], peer_max_s=peer["max_s"], ratio=float(median), ratio_q1=float(q1),
                          ratio_q3=float(q3), ratio_method="median of per-epoch ratios (epochs interleaved)")
            fields["extra"]["peer_seconds_per_epoch"] = result["peer"]
        else:
            fields["reason"] = f"scikit-learn side skipped: {peer_reason}"
        rows.append(make_row(**fields))
    return rows


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="100 batches per epoch, 2 repeats")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=None)
    parser.add_argument("--backend", default="numpy,numba")
    parser.add_argument("--json", default=None, help="write the rows here")
    args = parser.parse_args(argv)
    rows = run(quick=args.quick, threads=args.threads, repeats=args.repeats, backends=tuple(args.backend.split(",")))
    for row in rows:
        if row["status"] != "ok":
            print(f"{row['name']} [{row['backend']}]: {row['status']} ({row['reason']})")
            continue
        peer = (f", scikit-learn {row['peer_median_s']:.2f} s/epoch, ratio {row['ratio']:.2f}"
                if row.get("peer_median_s") else "")
        print(f"{row['name']} [{row['backend']}, {row['threads']} thread(s)]: scratchgen {row['median_s']:.2f} s/epoch"
              f"{peer}; {json.dumps(row['metrics'], default=str)}")
    if args.json:
        with open(args.json, "w") as handle:
            json.dump(rows, handle, indent=2, default=str)


if __name__ == "__main__":
    main()
