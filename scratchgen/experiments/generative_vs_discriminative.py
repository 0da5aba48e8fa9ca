"""Generative against discriminative: naive Bayes and logistic regression as the training set grows.

Ng & Jordan (2002), "On discriminative vs. generative classifiers": for binary features both
classifiers below compute p(y | x) = softmax(W x + b) - the same family - but they choose (W, b)
differently:

* Bernoulli naive Bayes (generative, ``models/classical/naive_bayes.py``) fits p(x, y) by
  counting, assuming the pixels independent given the class;
* logistic regression (discriminative, ``SoftmaxClassifier`` on one ``Linear`` layer) maximises
  the conditional likelihood of y given x by Adam, with the project's autograd, through the loop.

Their result: the discriminative classifier has the lower *asymptotic* error (it does not pay
for naive Bayes' wrong independence assumption), but the generative one approaches *its*
asymptote much faster - in O(log D) examples rather than O(D) - so with few examples it often
wins. This experiment draws the two learning curves on the same features (pixels binarised at
0.5) for several random training subsets per size:

    python -m scratchgen.experiments.generative_vs_discriminative --dataset mnist \
        [--sizes 10,20,50,100,200,500,1000,2000,5000,8000] [--seeds 5] [--out docs/gallery]

Training subsets: the first m examples of a seeded permutation of the training split (so a
smaller subset of one seed is inside the larger ones). Test error on the whole test split.
Logistic regression: zero initial weights, Adam (lr 0.01 by default), batches of min(m, 100),
a fixed budget of ``--steps`` updates whatever m (so small sets are not under-trained), no
penalty (``--weight-decay`` adds one). Naive Bayes: alpha = 1 pseudo-counts (Laplace), and any
other ``--alphas`` as further curves: with one example per class, alpha = 1 pulls every theta
to 1/3 or 2/3, so the generative classifier's small-sample result depends on its prior (an
alpha chosen by looking at these test errors would be tuned on the test set: say so if you do).

Writes ``generative_vs_discriminative.png`` (test error against m, log scale, mean and the
spread over seeds), ``generative_vs_discriminative.md`` (the table, with each naive Bayes minus
logistic regression paired by seed: both saw the same subset) and ``.json`` (every run);
``--from-json`` redraws the table and plot of a saved run.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import time
from typing import Dict, List, Sequence

import numpy as np

from .. import nn
from ..data import binarize, load_dataset
from ..models.classical.naive_bayes import BernoulliNaiveBayes
from ..models.classifiers.supervised import SoftmaxClassifier
from ..optim import Adam

__all__ = ["naive_bayes_error", "logistic_regression_error", "learning_curves", "main"]


def naive_bayes_error(x, y, x_test, y_test, num_classes: int, alpha: float = 1.0) -> float:
    """Test error of Bernoulli naive Bayes counted on (x, y) through the loop (one epoch = one count)."""
    model = BernoulliNaiveBayes((1, 1, x.shape[1]), num_classes, alpha=alpha)
    model.fit(x, y, epochs=1, batch_size=1000, shuffle=False)
    return float((model.predict(x_test) != y_test).mean())


def logistic_regression_error(x, y, x_test, y_test, num_classes: int, steps: int = 1000, lr: float = 0.01,
                              weight_decay: float = 0.0, batch_size: int = 100, seed: int = 0) -> float:
    """Test error of multinomial logistic regression (softmax of one Linear layer, zero start) after ``steps`` Adam updates."""
    network = nn.Linear(x.shape[1], num_classes, init="zeros", dtype=np.float32)
    model = SoftmaxClassifier(network, flatten=True)
    model.optimizers["classifier"] = Adam(network.parameters(), lr=lr, weight_decay=weight_decay)
    batch = min(len(x), batch_size)
    epochs = max(1, math.ceil(steps / math.ceil(len(x) / batch)))
    model.fit(x.astype(np.float32), y, epochs=epochs, batch_size=batch, rng=seed)
    return float((model.predict(x_test.astype(np.float32)) != y_test).mean())


def learning_curves(x_train, y_train, x_test, y_test, sizes: Sequence[int], seeds: Sequence[int], num_classes: int,
                    steps: int = 1000, lr: float = 0.01, weight_decay: float = 0.0, alphas: Sequence[float] = (1.0,),
                    log=print) -> List[Dict]:
    """Test errors of both classifiers for every (size, seed): a list of {"size", "seed", "logistic_regression",
    "naive_bayes_alpha<a>" for each a in ``alphas``}.

    x_*: (N, D) binary features; y_*: (N,) labels.
    """
    runs = []
    for seed in seeds:
        order = np.random.default_rng([seed, 11]).permutation(len(x_train))
        for m in sizes:
            if m > len(x_train):
                raise ValueError(f"learning_curves: size {m} is larger than the training split ({len(x_train)} examples)")
            rows = order[:m]
            start = time.perf_counter()
            run = {"size": int(m), "seed": int(seed),
                   "logistic_regression": logistic_regression_error(x_train[rows], y_train[rows], x_test, y_test, num_classes,
                                                                    steps, lr, weight_decay, seed=seed)}
            for alpha in alphas:
                run[f"naive_bayes_alpha{alpha:g}"] = naive_bayes_error(x_train[rows], y_train[rows], x_test, y_test,
                                                                       num_classes, alpha)
            runs.append(run)
            log(f"seed {seed} m={m}: " + ", ".join(f"{k} {v:.3f}" for k, v in run.items() if k not in ("size", "seed"))
                + f" ({time.perf_counter() - start:.1f} s)")
    return runs


def classifiers_of(runs: List[Dict]) -> List[str]:
    """The classifier names in the runs: the naive Bayes variants, then logistic regression."""
    names = [k for k in runs[0] if k.startswith("naive_bayes")]
    return names + ["logistic_regression"]


def label(name: str) -> str:
    if name == "logistic_regression":
        return "logistic regression"
    return f"naive Bayes, alpha = {name[len('naive_bayes_alpha'):]}"


def summarise(runs: List[Dict]) -> List[Dict]:
    """Per size: mean and standard deviation over seeds of each classifier's test error."""
    rows = []
    for m in sorted({r["size"] for r in runs}):
        at = [r for r in runs if r["size"] == m]
        row = {"size": m, "seeds": len(at)}
        for name in classifiers_of(runs):
            errors = np.array([r[name] for r in at])
            row[name] = float(errors.mean())
            row[f"{name}_std"] = float(errors.std(ddof=1)) if len(errors) > 1 else 0.0
            if name != "logistic_regression":  # paired by seed: both classifiers saw the same training subset
                difference = errors - np.array([r["logistic_regression"] for r in at])
                row[f"{name}_minus_lr"] = float(difference.mean())
                row[f"{name}_minus_lr_se"] = (float(difference.std(ddof=1) / np.sqrt(len(difference)))
                                              if len(difference) > 1 else 0.0)
        rows.append(row)
    return rows


def markdown_table(summary: List[Dict], names: Sequence[str]) -> str:
    """Test error (mean ± std over seeds, %) per training-set size, one column per classifier (the lowest
    in bold), then each naive Bayes minus logistic regression paired by seed (mean ± standard error, points)."""
    generative = [n for n in names if n != "logistic_regression"]
    lines = ["| training examples | " + " | ".join(label(n) for n in names) + " | "
             + " | ".join(f"{label(n)} minus logistic regression" for n in generative) + " |",
             "|---:|" + "---:|" * (len(names) + len(generative))]
    for row in summary:
        best = min(names, key=lambda n: row[n])
        cells = [f"{100 * row[n]:.1f}% ± {100 * row[n + '_std']:.1f}" for n in names]
        cells = [f"**{c}**" if n == best else c for n, c in zip(names, cells)]
        cells += [f"{100 * row[n + '_minus_lr']:+.1f} ± {100 * row[n + '_minus_lr_se']:.1f}" for n in generative]
        lines.append(f"| {row['size']} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def plot(summary: List[Dict], names: Sequence[str], path: str, title: str) -> str:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from ..plots import save_figure

    sizes = np.array([row["size"] for row in summary])
    figure, axes = plt.subplots(figsize=(6, 4))
    for name, marker in zip(names, "o^vds"[: len(names) - 1] + "s"):
        kind = "discriminative" if name == "logistic_regression" else "generative"
        mean = np.array([row[name] for row in summary])
        std = np.array([row[f"{name}_std"] for row in summary])
        axes.plot(sizes, 100 * mean, marker=marker, label=f"{label(name)} ({kind})")
        axes.fill_between(sizes, 100 * (mean - std), 100 * (mean + std), alpha=0.2)
    axes.set_xscale("log")
    axes.set_xlabel("training examples m")
    axes.set_ylabel("test error (%)")
    axes.set_title(title, fontsize=10)
    axes.grid(alpha=0.3, which="both")
    axes.legend()
    return save_figure(figure, path)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(prog="python -m scratchgen.experiments.generative_vs_discriminative",
                                     description="naive Bayes against logistic regression as the training set grows")
    parser.add_argument("--dataset", default="mnist")
    parser.add_argument("--data-root", default=None, help="default: $SCRATCHGEN_DATA")
    parser.add_argument("--sizes", default="10,20,50,100,200,500,1000,2000,5000,8000")
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--steps", type=int, default=1000, help="logistic regression's Adam updates per run")
    parser.add_argument("--lr", type=float, default=0.01)
    parser.add_argument("--weight-decay", type=float, default=0.0)
    parser.add_argument("--alphas", default="1", help="naive Bayes pseudo-counts, one curve each (comma-separated)")
    parser.add_argument("--out", default="runs/generative_vs_discriminative")
    parser.add_argument("--from-json", default=None, help="redraw the table and plot of a saved run's JSON (no training)")
    args = parser.parse_args(argv)
    if args.from_json:
        saved = json.load(open(args.from_json))
        summary, names = summarise(saved["runs"]), classifiers_of(saved["runs"])
        table = markdown_table(summary, names)
        print(table)
        config = saved["config"]
        test_images = len(load_dataset(config["dataset"], root=config.get("data_root"), seed=0).test.y)
        _write(args.out, summary, names, table, saved["runs"], config, saved["data"], test_images)
        return

    data = load_dataset(args.dataset, root=args.data_root, seed=0)
    features = {name: binarize(getattr(data, name).x, "static").reshape(len(getattr(data, name).x), -1).astype(np.float64)
                for name in ("train", "test")}
    sizes = [int(s) for s in args.sizes.split(",") if s.strip()]
    runs = learning_curves(features["train"], data.train.y, features["test"], data.test.y, sizes, range(args.seeds),
                           data.num_classes, args.steps, args.lr, args.weight_decay,
                           [float(a) for a in args.alphas.split(",") if a.strip()])
    summary, names = summarise(runs), classifiers_of(runs)
    table = markdown_table(summary, names)
    print(table)
    _write(args.out, summary, names, table, runs, vars(args), data.source, len(data.test.y))


def _write(out, summary, names, table, runs, config, source, test_images: int) -> None:
    os.makedirs(out, exist_ok=True)
    title = (f"{config['dataset']} (binarised), test error on {test_images} images, {config['seeds']} seeds\n"
             f"logistic regression: {config['steps']} Adam steps, lr {config['lr']}")
    plot(summary, names, os.path.join(out, "generative_vs_discriminative.png"), title)
    with open(os.path.join(out, "generative_vs_discriminative.md"), "w") as handle:
        handle.write(table + "\n")
    with open(os.path.join(out, "generative_vs_discriminative.json"), "w") as handle:
        json.dump({"config": config, "data": source, "summary": summary, "runs": runs}, handle, indent=2)


if __name__ == "__main__":
    main()
