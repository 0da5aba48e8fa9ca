"""Experiment: end-to-end memory networks with 1 and 3 hops on the generated bAbI-style tasks 1-3.

Protocol (Sukhbaatar et al. 2015's, on ``scratchgen.data.babi``'s tasks instead of Facebook's files):
each task trained on its own (1000 training questions, 10% of the stories held out for
validation, 1000 test questions); d = 20, adjacent weight tying, position encoding, temporal
encoding with 10% random noise; SGD at 0.01 halved every 25 epochs, 100 epochs, batch 32,
gradients clipped to norm 40, the cross-entropy summed over a batch; linear start for the first
``--linear-start`` epochs (default 20; 0 switches it off). Each (task, hops) is trained from
``--seeds`` initialisations (the data stay the same: the seed of ``scratchgen train --seed``
changes the initial weights, the batch order and the noise); the table gives the mean test
error over seeds and the test error of the run with the lowest validation error (the paper
reports the best of 10 runs). Every run goes through the training loop (``Trainer``), as
``scratchgen train memnet --dataset babi-T --hops K --seed S`` would.

    python -m benchmarks.exp_memnet [--tasks 1,2,3] [--hops 1,3] [--seeds 3] [--epochs 100] [--out runs/exp_memnet]

Writes ``OUT/results.json``, ``OUT/table.md`` and, for the 3-hop run of each task chosen by
validation, ``OUT/hop_attention_task<T>.png`` (which sentence each hop reads, for three test stories).
"""
from __future__ import annotations

import argparse
import json
import os
import time

for _name in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMBA_NUM_THREADS"):
    os.environ.setdefault(_name, "1")

import numpy as np  # noqa: E402


def _ints(text):
    return [int(part) for part in text.split(",") if part.strip()]


def train_one(task: int, hops: int, seed: int, epochs: int, linear_start: int):
    """One run through the loop; returns (model, data, record)."""
    from scratchgen.data import load_dataset
    from scratchgen.models import DataInfo, build_model
    from scratchgen.training import Trainer, TrainOptions

    data = load_dataset(f"babi-{task}", seed=seed)
    model = build_model("memnet", {"hops": hops, "linear_start_epochs": linear_start},
                        DataInfo(tuple(data.image_shape), data.num_classes), np.random.default_rng(seed))
    options = TrainOptions(epochs=epochs, batch_size=32, seed=seed, out_dir=None, progress=False, verbose=False)
    start_cpu = time.process_time()
    history = Trainer(model, data, options).fit()
    test = model.evaluate(data.test.x, data.test.y)
    record = {"task": task, "hops": hops, "seed": seed, "test_error": test["error"],
              "validation_error": history[-1]["validation_error"], "train_cross_entropy": history[-1]["train_cross_entropy"],
              "cpu_seconds": time.process_time() - start_cpu,
              "validation_error_curve": [r["validation_error"] for r in history]}
    return model, data, record


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m benchmarks.exp_memnet", description=__doc__.split("\n\n")[0])
    parser.add_argument("--tasks", type=_ints, default=[1, 2, 3])
    parser.add_argument("--hops", type=_ints, default=[1, 3])
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--epochs", type=int, default=100)
    parser.add_argument("--linear-start", type=int, default=20)
    parser.add_argument("--out", default=os.path.join("runs", "exp_memnet"))
    args = parser.parse_args(argv)
    from scratchgen.data import babi
    from scratchgen.models.attention.memnet_pictures import save_hop_attention
    from scratchgen.models.attention.memory_network import picture_examples

    os.makedirs(args.out, exist_ok=True)
    records = []
    for task in args.tasks:
        for hops in args.hops:
            best = None
            for seed in range(args.seeds):
                model, data, record = train_one(task, hops, seed, args.epochs, args.linear_start)
                records.append(record)
                print(json.dumps({k: v for k, v in record.items() if k != "validation_error_curve"}), flush=True)
                if best is None or record["validation_error"] < best[2]["validation_error"]:
                    best = (model, data, record)
            if hops == max(args.hops):
                model, data, _ = best
                picks = picture_examples(len(data.test.x))
                x, y = data.test.x[picks], data.test.y[picks]
                save_hop_attention(x, y, model.predict(x), model.attention(x), args.out, f"task{task}")
            with open(os.path.join(args.out, "results.json"), "w") as handle:
                json.dump({"command": "python -m benchmarks.exp_memnet " + " ".join(argv or []), "records": records},
                          handle, indent=2)

    lines = ["| task | " + " | ".join(f"{h} hop{'s' if h > 1 else ''}: mean test error (min-max) | "
                                     f"{h} hop{'s' if h > 1 else ''}: chosen by validation" for h in args.hops) + " |",
             "|---|" + "---|---|" * len(args.hops)]
    for task in args.tasks:
        cells = []
        for hops in args.hops:
            runs = [r for r in records if r["task"] == task and r["hops"] == hops]
            errors = [100 * r["test_error"] for r in runs]
            chosen = min(runs, key=lambda r: r["validation_error"])
            cells += [f"{np.mean(errors):.1f}% ({min(errors):.1f}-{max(errors):.1f})", f"{100 * chosen['test_error']:.1f}%"]
        lines.append(f"| {task} ({babi.TASKS[task]}) | " + " | ".join(cells) + " |")
    for hops in args.hops:
        runs = [r for r in records if r["hops"] == hops]
        lines.append(f"\nmean over tasks, {hops} hop(s): {100 * np.mean([r['test_error'] for r in runs]):.1f}% test error; "
                     f"CPU seconds per run {np.median([r['cpu_seconds'] for r in runs]):.0f} (median)")
    table = "\n".join(lines)
    with open(os.path.join(args.out, "table.md"), "w") as handle:
        handle.write(table + "\n")
    print(table)


if __name__ == "__main__":
    main()
