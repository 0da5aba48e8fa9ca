"""What pretraining buys: BERT fine-tuned from its pretrained weights vs the same network from random weights.

    python -m scratchgen.experiments.transfer_learning --pretrained runs/bert/checkpoint.npz \\
        --train-size 2000 --epochs 5 --seeds 0 1 2

For every seed and both starts (``bert-classifier --encoder-init pretrained`` and ``random``), the
same model is built with the same configuration and trained by the one training loop on the same
labelled examples (the first ``--train-size`` training definitions of ``--dataset``: a uniform
sample, ``data/text.py``) for the same number of steps, with the same learning rate and batch
order (the seed sets both starts' batch order, new output layer and dropout alike); the vocabulary
comes from the pretrained checkpoint in both, so the two differ in the encoder's starting weights
alone. Each is then scored on the held-out test definitions (synsets that pretraining never saw).

Printed: a markdown table of test accuracy, mean and standard deviation (ddof 1) over the seeds,
for each start, the gain of pretraining (the difference of the means, and of each seed's paired
runs), and the majority-class baseline. ``--out FILE`` writes every run's numbers as JSON.
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import time
from typing import Dict, List, Optional, Sequence

import numpy as np

from ..data import Split, load_dataset
from ..models import DataInfo, build_model
from ..training import Trainer, TrainOptions

__all__ = ["run_transfer_experiment", "summarize", "main"]


def run_transfer_experiment(pretrained: str, dataset: str = "wordnet-definitions", train_size: int = 2000,
                            seeds: Sequence[int] = (0, 1, 2), epochs: int = 5, batch_size: int = 32, lr: float = 3e-4,
                            options: Optional[Dict] = None, data_root=None,
                            log=lambda line: None) -> List[Dict]:
    """One record per (seed, start): ``{"seed", "start", "test_accuracy", "test_cross_entropy",
    "majority_accuracy", "train_accuracy_last_epoch", "steps", "seconds"}``."""
    data = load_dataset(dataset, root=data_root)
    if train_size > data.train.num_examples:
        raise ValueError(f"--train-size {train_size}: {dataset} has only {data.train.num_examples} training examples")
    data = dataclasses.replace(data, train=Split(data.train.x[:train_size], data.train.y[:train_size]))
    info = DataInfo(tuple(data.image_shape), int(data.num_classes))
    records = []
    for seed in seeds:
        for start in ("pretrained", "random"):
            config = {**(options or {}), "pretrained": pretrained, "encoder_init": start, "lr": lr}
            model = build_model("bert-classifier", config, info, np.random.default_rng(seed))
            began = time.perf_counter()
            trainer = Trainer(model, data, TrainOptions(epochs=epochs, batch_size=batch_size, seed=seed, out_dir=None,
                                                        progress=False, pictures=False, verbose=False, evaluate=False))
            history = trainer.fit()
            test = model.evaluate(data.test.x, data.test.y)
            record = {"seed": int(seed), "start": start, "test_accuracy": test["accuracy"],
                      "test_cross_entropy": test["cross_entropy"], "majority_accuracy": test["majority_accuracy"],
                      "train_accuracy_last_epoch": history[-1].get("train_accuracy"), "steps": trainer.step,
                      "seconds": time.perf_counter() - began}
            records.append(record)
            log(f"seed {seed} {start:>10}: test accuracy {record['test_accuracy']:.4f} after {trainer.step} steps "
                f"({record['seconds']:.0f} s)")
    return records


def summarize(records: List[Dict]) -> Dict:
    """Mean and standard deviation of test accuracy per start, and the paired gain of pretraining."""
    def spread(values):
        values = np.asarray(values, dtype=np.float64)
        return float(values.mean()), float(values.std(ddof=1)) if len(values) > 1 else 0.0

    by_start = {start: [r["test_accuracy"] for r in records if r["start"] == start] for start in ("pretrained", "random")}
    seeds = sorted({r["seed"] for r in records})
    paired = [next(r["test_accuracy"] for r in records if r["seed"] == s and r["start"] == "pretrained")
              - next(r["test_accuracy"] for r in records if r["seed"] == s and r["start"] == "random") for s in seeds]
    return {"pretrained": spread(by_start["pretrained"]), "random": spread(by_start["random"]), "gain": spread(paired),
            "majority": records[0]["majority_accuracy"], "seeds": seeds}


def table(summary: Dict) -> str:
    rows = ["| start | test accuracy (mean ± sd over seeds) |", "|---|---|"]
    for start in ("pretrained", "random"):
        mean, sd = summary[start]
        rows.append(f"| {start} | {mean:.4f} ± {sd:.4f} |")
    mean, sd = summary["gain"]
    rows.append(f"| gain of pretraining (paired by seed) | {mean:+.4f} ± {sd:.4f} |")
    rows.append(f"| majority class | {summary['majority']:.4f} |")
    return "\n".join(rows)


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m scratchgen.experiments.transfer_learning",
                                     description="Fine-tune a pretrained BERT and the same network from random weights.")
    parser.add_argument("--pretrained", required=True, help="a `scratchgen train bert` checkpoint")
    parser.add_argument("--dataset", default="wordnet-definitions")
    parser.add_argument("--data-root", default=None)
    parser.add_argument("--train-size", type=int, default=2000)
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--lr", type=float, default=3e-4)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--out", default=None, help="write every run's numbers here (JSON)")
    args = parser.parse_args(argv)
    for name in ("train_size", "epochs", "batch_size"):
        if getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')} must be a positive integer, got {getattr(args, name)}")
    if not args.lr > 0:
        parser.error(f"--lr must be positive, got {args.lr}")
    try:
        records = run_transfer_experiment(args.pretrained, args.dataset, args.train_size, args.seeds, args.epochs,
                                          args.batch_size, args.lr, data_root=args.data_root,
                                          log=lambda line: print(line, file=sys.stderr, flush=True))
    except (ValueError, KeyError, TypeError, FileNotFoundError) as error:
        print(f"transfer_learning: {error}", file=sys.stderr)
        return 2
    summary = summarize(records)
    print(table(summary))
    if args.out:
        with open(args.out, "w") as handle:
            json.dump({"arguments": vars(args), "runs": records, "summary": summary}, handle, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
