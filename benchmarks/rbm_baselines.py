"""The RBM baselines table: test log-likelihood of CD-1, CD-10 and PCD-1 RBMs, and what "restricted" buys.

Part 1 (issue 6's published baselines). Bernoulli RBMs with 16 hidden units (exact log Z, by
enumerating the 2^16 hidden states) and 500 hidden units (AIS log Z: 100 runs, 15,000 betas,
Salakhutdinov & Murray's schedule, reported with its 3-sigma interval), trained with CD-1,
CD-10 and PCD-1 on

    * binarised Fashion-MNIST: the 60,000 training images, the 10,000 test images;
    * the MNIST split: where only MNIST's 10,000 test images are found (``--data-root`` or
      ``$SCRATCHGEN_DATA``), ``load_dataset("mnist")`` splits them 8,000 train / 1,000 validation /
      1,000 test (seeded), as ``scratchgen train --dataset mnist`` does: NOT comparable to numbers
      trained on MNIST's 60,000.

Every row uses the same recipe: batch 64, lr 0.01, momentum 0.5, weight decay 1e-4 (weights
only), weights N(0, 0.01^2), visible biases initialised to the data's log-odds, PCD with 64
chains (``scratchgen train rbm``'s defaults). Data binarised once, by thresholding at 0.5 (the
CLI instead draws a fresh Bernoulli image per batch; ``scratchgen train rbm --binarize static``
is this script's setting). Log-likelihoods are nats per
image (mean over the test set); the train column uses the first 2,000 training images (their gap
to the test column shows overfitting). An AIS log Z tends to be an under-estimate, which makes
the log-likelihood optimistic: read it with its interval and the "check" column, which flags an
AIS effective sample size below 10 (a few runs carry all the weight), an AIS log Z below the
certain lower bound from distinct states, and a test log-likelihood above minus the binarisation
entropy of the test images (impossible for an honest model: log Z was under-estimated).

Part 2 (``--bm``): a general Boltzmann machine vs the same machine restricted (an RBM), exact
log-likelihoods, on 4x4 binarised down-sampled digits (16 visible + 6 hidden = 22 units, so
log Z is enumerable): the general machine needs sequential Gibbs sweeps and a Markov chain even
for its positive phase; the restricted one samples by blocks and has an exact positive phase.

    python benchmarks/rbm_baselines.py                 # the full table (tens of minutes on 2 cores)
    python benchmarks/rbm_baselines.py --quick         # minutes: subsets, fewer epochs and betas
    python benchmarks/rbm_baselines.py --datasets mnist-split --hidden 16 --methods pcd1 --json out.json
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from typing import Dict, List

import numpy as np

if __package__ in (None, ""):  # run as a script: make the repository importable
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

METHODS = {"cd1": dict(k=1, persistent=False), "cd10": dict(k=10, persistent=False), "pcd1": dict(k=1, persistent=True)}
METHOD_NAMES = {"cd1": "CD-1", "cd10": "CD-10", "pcd1": "PCD-1"}
RECIPE = dict(lr=0.01, momentum=0.5, weight_decay=1e-4, n_chains=64)
BATCH_SIZE = 64
def load(dataset: str, quick: bool, seed: int = 0, root=None):
    """(x_train, x_test, description, entropy floor): binarised float32 (N, 784) images, and the mean
    binarisation entropy of the test images sum_i H(grey_i) in nats: no model's test log-likelihood
    can honestly exceed minus this floor (up to sampling noise)."""
    from scratchgen.data import binarize, load_dataset

    if dataset == "fashion-mnist":
        data = load_dataset("fashion-mnist", val_fraction=0.0)
        description = "binarised Fashion-MNIST (60,000 train / 10,000 test)"
    elif dataset == "mnist-split":
        data = load_dataset("mnist", root=root, seed=seed)
        description = "binarised MNIST test-set split (8,000 train / 1,000 test)"
    else:
        raise ValueError(f"unknown dataset {dataset!r}; use fashion-mnist or mnist-split")
    rng = np.random.default_rng(seed)
    x_train = binarize(data.train.x, "static", rng).reshape(len(data.train.x), -1)
    x_test = binarize(data.test.x, "static", rng).reshape(len(data.test.x), -1)
    grey = np.clip(data.test.x.reshape(len(x_test), -1).astype(np.float64), 1e-12, 1 - 1e-12)
    floor = float(-(grey * np.log(grey) + (1 - grey) * np.log1p(-grey)).sum(axis=1).mean())
    if quick:
        x_train, x_test = x_train[:3000], x_test[:1000]
        description += " [quick: 3,000 train / 1,000 test]"
    return x_train, x_test, description, floor


def default_epochs(dataset: str, n_hidden: int, method: str, quick: bool) -> int:
    """Epoch budgets that keep every run well under 10 CPU-minutes on this machine."""
    if quick:
        return 3 if n_hidden > 20 else 10
    if dataset == "fashion-mnist":
        return {"cd10": 3}.get(method, 10) if n_hidden > 20 else 20
    return {"cd10": 10}.get(method, 30) if n_hidden > 20 else 50  # 9,000 images: more, shorter epochs


def train_and_evaluate(x_train, x_test, n_hidden: int, method: str, epochs: int, ais_betas: int, ais_runs: int,
                       seed: int = 0, log=print) -> Dict:
    from scratchgen.evaluation import ais
    from scratchgen.models.boltzmann.bernoulli_rbm import BernoulliRBM

    rbm = BernoulliRBM(784, n_hidden, rng=seed, **METHODS[method], **RECIPE)  # fit() starts b at the data's log-odds
    start = time.perf_counter()
    rbm.fit(x_train, epochs=epochs, batch_size=BATCH_SIZE, rng=seed)
    train_s = time.perf_counter() - start
    start = time.perf_counter()
    row = {"hidden": n_hidden, "method": METHOD_NAMES[method], "epochs": epochs, "updates": rbm.optimizers["rbm"].steps[0],
           "train_seconds": round(train_s, 1)}
    if n_hidden <= 20:
        log_z = rbm.exact_log_partition()
        row.update(log_z=log_z, log_z_method="exact")
    else:
        result = ais.ais_log_partition(rbm, data=x_train, n_betas=ais_betas, n_runs=ais_runs, rng=seed + 1)
        log_z = result
        row.update(log_z=result.log_z, log_z_method=f"AIS {ais_runs} runs x {result.n_betas} betas",
                   log_z_low=result.log_z_low, log_z_high=result.log_z_high, log_z_std=result.log_z_std,
                   ais_effective_sample_size=result.effective_sample_size, ais_runs=ais_runs)
        # A certain lower bound on log Z from distinct states: training images, the AIS end points,
        # and the end points of 100 Gibbs chains run 1,000 sweeps from the base rates.
        _, chains = rbm.gibbs(rbm.initial_visible(100, np.random.default_rng(seed + 2)), 1000, np.random.default_rng(seed + 3))
        bound = ais.log_partition_lower_bound(rbm, np.concatenate([x_train[:10000], result.samples, chains]))
        row["log_z_lower_bound"] = bound
        row["ais_below_lower_bound"] = bool(result.log_z < bound)
    row["test_log_likelihood"] = rbm.score(x_test, log_z)
    row["train_log_likelihood"] = rbm.score(x_train[:2000], log_z)
    if "log_z_low" in row:  # the interval of log Z, turned into one for the test log-likelihood
        row["test_ll_interval"] = [row["test_log_likelihood"] + row["log_z"] - row["log_z_high"],
                                   row["test_log_likelihood"] + row["log_z"] - row["log_z_low"]]
    row["eval_seconds"] = round(time.perf_counter() - start, 1)
    log(f"  {row['method']:6s} {n_hidden:4d} hidden, {epochs:3d} epochs ({train_s:6.1f} s): test {row['test_log_likelihood']:9.2f}"
        f"  train {row['train_log_likelihood']:9.2f}  log Z {row['log_z']:.2f} ({row['log_z_method']}, {row['eval_seconds']} s)"
        + (f"  certain lower bound {row['log_z_lower_bound']:.2f}, AIS effective sample size "
           f"{row['ais_effective_sample_size']:.1f}" if "log_z_lower_bound" in row else ""))
    return row


def downsampled_digits(seed: int = 0):
    """scikit-learn's 8x8 digits averaged over 2x2 blocks to 4x4 and thresholded at 0.5: (N, 16) train and test."""
    from scratchgen.data import load_dataset

    data = load_dataset("digits", seed=seed)
    pool = lambda x: (x.reshape(len(x), 4, 2, 4, 2).mean(axis=(2, 4)) > 0.5).reshape(len(x), 16).astype(np.float32)  # noqa: E731
    return pool(data.train.x), pool(data.test.x)


def restriction_comparison(quick: bool, seed: int = 0, log=print) -> List[Dict]:
    """General vs restricted Boltzmann machine, 16 visible + 6 hidden, exact log-likelihoods."""
    from scratchgen.models.boltzmann.boltzmann_machine import BoltzmannMachine

    x_train, x_test = downsampled_digits(seed)
    epochs = 10 if quick else 40
    rows = []
    for restricted in (False, True):
        bm = BoltzmannMachine(16, 6, restricted=restricted, positive_sweeps=3, negative_sweeps=1, lr=0.05, momentum=0.5, rng=seed)
        start = time.perf_counter()
        bm.fit(x_train, epochs=epochs, batch_size=32, rng=seed)
        seconds = time.perf_counter() - start
        log_z = bm.exact_log_partition()
        row = {"model": "restricted (RBM)" if restricted else "general BM", "units": "16 visible + 6 hidden",
               "epochs": epochs, "seconds": round(seconds, 2), "seconds_per_update": seconds / bm.optimizers["bm"].steps[0],
               "test_log_likelihood": float(bm.log_likelihood(x_test, log_z).mean()),
               "train_log_likelihood": float(bm.log_likelihood(x_train, log_z).mean())}
        log(f"  {row['model']:17s}: test {row['test_log_likelihood']:.3f}, train {row['train_log_likelihood']:.3f} nats, "
            f"{1e3 * row['seconds_per_update']:.2f} ms/update")
        rows.append(row)
    return rows


def markdown(rows: List[Dict]) -> str:
    lines = ["| data | hidden | method | epochs | test LL (nats) | train LL | log Z | how | check |",
             "|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        interval = f" [{r['test_ll_interval'][0]:.2f}, {r['test_ll_interval'][1]:.2f}]" if "test_ll_interval" in r else ""
        checks = []
        if r.get("ais_effective_sample_size", 100) < 10:
            checks.append(f"AIS effective sample size {r['ais_effective_sample_size']:.1f} of {r.get('ais_runs', 100)} runs: unreliable")
        if r.get("ais_below_lower_bound"):
            checks.append(f"AIS log Z below the certain bound {r['log_z_lower_bound']:.2f}")
        if r["test_log_likelihood"] > -r["entropy_floor"]:
            checks.append(f"test LL above the entropy floor -{r['entropy_floor']:.1f}: log Z under-estimated")
        lines.append(f"| {r['data']} | {r['hidden']} | {r['method']} | {r['epochs']} | {r['test_log_likelihood']:.2f}{interval} "
                     f"| {r['train_log_likelihood']:.2f} | {r['log_z']:.2f} | {r['log_z_method']} | {'; '.join(checks) or 'ok'} |")
    return "\n".join(lines)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="subsets, few epochs, 1,000 AIS betas")
    parser.add_argument("--datasets", default="fashion-mnist,mnist-split")
    parser.add_argument("--hidden", default="16,500")
    parser.add_argument("--methods", default="cd1,cd10,pcd1")
    parser.add_argument("--epochs", type=int, default=None, help="override every run's epoch count")
    parser.add_argument("--ais-betas", type=int, default=None, help="default 15,000 (quick: 1,000)")
    parser.add_argument("--ais-runs", type=int, default=100)
    parser.add_argument("--bm", action="store_true", help="also run the general-vs-restricted Boltzmann machine comparison")
    parser.add_argument("--no-table", action="store_true", help="only the --bm comparison")
    parser.add_argument("--json", default=None)
    parser.add_argument("--data-root", default=None, help="where mnist is looked for besides the usual places "
                                                          "(default: $SCRATCHGEN_DATA)")
    args = parser.parse_args(argv)
    ais_betas = args.ais_betas or (1000 if args.quick else 15000)
    rows, bm_rows = [], []
    if not args.no_table:
        for dataset in args.datasets.split(","):
            try:
                x_train, x_test, description, floor = load(dataset, args.quick, root=args.data_root)
            except FileNotFoundError as error:
                print(f"{dataset}: skipped ({error})")
                continue
            print(f"{description}; binarisation entropy floor {floor:.1f} nats: honest test LL <= {-floor:.1f}")
            for n_hidden in [int(h) for h in args.hidden.split(",")]:
                for method in args.methods.split(","):
                    epochs = args.epochs or default_epochs(dataset, n_hidden, method, args.quick)
                    row = train_and_evaluate(x_train, x_test, n_hidden, method, epochs, ais_betas, args.ais_runs)
                    rows.append({"data": description, "entropy_floor": floor, **row})
        print(markdown(rows))
    if args.bm:
        print("general vs restricted Boltzmann machine (exact log-likelihoods, 4x4 binarised digits)")
        bm_rows = restriction_comparison(args.quick)
    if args.json:
        with open(args.json, "w") as handle:
            json.dump({"rbm": rows, "boltzmann": bm_rows}, handle, indent=2)


if __name__ == "__main__":
    main()
