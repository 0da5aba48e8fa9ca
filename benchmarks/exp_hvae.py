"""Experiment: a two-stochastic-layer VAE beside a one-layer VAE, test -ELBO and IWAE bound (k = 5000).

Train the two models with the CLI, on the same data for the same epochs (Burda et al.'s
architectures: 784-(200-200)-50 for one layer, 784-(200-200)-100-(100-100)-50 for two, tanh,
dynamic binarisation, Adam 1e-3, batches of 100)::

    scratchgen train vae  --dataset mnist --binarize dynamic --epochs E --batch-size 100 \
        --hidden 200 --hidden-layers 2 --latent 50 --activation tanh --out runs/hvae_vs_vae/vae
    scratchgen train hvae --dataset mnist --binarize dynamic --epochs E --out runs/hvae_vs_vae/hvae

then measure both::

    python -m benchmarks.exp_hvae runs/hvae_vs_vae/vae/checkpoint.npz runs/hvae_vs_vae/hvae/checkpoint.npz \
        [--k 5000] [--images 500] [--out runs/hvae_vs_vae]

Measured on each model's own test split, binarised with one fixed stochastic draw (as
``scratchgen eval`` does): -ELBO (mean over all test images of ``--elbo-samples`` one-sample
estimates each), the IWAE bound -L_k for k = 1, 50 and ``--k`` on the first ``--images`` test
images (the same images and seeded noise generators for both models; with two checkpoints, also the paired
difference and its standard error), and the active units. Writes ``hvae_vs_vae.md`` and
``hvae_vs_vae.json`` (with every image's bound).
"""
from __future__ import annotations

import argparse
import json
import os
import time

import numpy as np


def measure(path: str, k: int, images: int, elbo_samples: int, data_root=None) -> dict:
    from scratchgen.data import binarize, load_dataset
    from scratchgen.evaluation.likelihood import evaluate_elbo, iwae_bound
    from scratchgen.models import load_model

    model, meta = load_model(path)
    data = load_dataset(meta.get("dataset", "digits"), root=data_root, seed=meta.get("seed", 0))
    mode = meta.get("options", {}).get("binarize", "none")
    x = binarize(data.test.x, mode, rng=np.random.default_rng([0, 6])) if mode != "none" else data.test.x
    start = time.perf_counter()
    row = {"checkpoint": path, "model": meta["model"], "dataset": meta.get("dataset"), "epochs": meta.get("epoch"),
           "train_size": meta.get("train_size"), "parameters": model.num_parameters(), "test_images": len(x),
           "neg_elbo": float(-evaluate_elbo(model, x, np.random.default_rng(1), samples=elbo_samples).mean())}
    for kk in sorted({1, 50, k}):
        bound = iwae_bound(model, x[:images], kk, np.random.default_rng([2, kk]), batch_size=50)
        row[f"neg_iwae_k{kk}"] = float(-bound.mean())
        row[f"neg_iwae_k{kk}_se"] = float(bound.std(ddof=1) / np.sqrt(len(bound)))
        row[f"per_image_neg_iwae_k{kk}"] = (-bound).tolist()
    row["iwae_images"] = int(min(images, len(x)))
    units = model.active_units(x)
    row["active_units"] = units["active"]
    row.update({key: units[key] for key in ("active_z1", "active_z2") if key in units})
    row["seconds"] = time.perf_counter() - start
    print(json.dumps({k: v for k, v in row.items() if not k.startswith("per_image")}), flush=True)
    return row


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m benchmarks.exp_hvae")
    parser.add_argument("checkpoints", nargs="+")
    parser.add_argument("--k", type=int, default=5000)
    parser.add_argument("--images", type=int, default=500)
    parser.add_argument("--elbo-samples", type=int, default=10)
    parser.add_argument("--data-root", default=None, help="default: $SCRATCHGEN_DATA")
    parser.add_argument("--out", default="runs/hvae_vs_vae")
    args = parser.parse_args(argv)
    rows = [measure(path, args.k, args.images, args.elbo_samples, args.data_root) for path in args.checkpoints]
    lines = ["| model | parameters | epochs | test -ELBO (all test images) | -L_1 | -L_50 | "
             f"-L_{args.k} (first {args.images}) | active units |", "|---|---:|---:|---:|---:|---:|---:|---|"]
    for row in rows:
        units = (f"{row['active_z1']} + {row['active_z2']}" if "active_z1" in row else f"{row['active_units']}")
        lines.append(f"| {row['model']} | {row['parameters']:,} | {row['epochs']} | {row['neg_elbo']:.2f} | "
                     f"{row['neg_iwae_k1']:.2f} | {row['neg_iwae_k50']:.2f} | {row[f'neg_iwae_k{args.k}']:.2f} ± "
                     f"{row[f'neg_iwae_k{args.k}_se']:.2f} | {units} |")
    if len(rows) == 2:  # the same images and the same noise for both: their paired difference is the sharp comparison
        key = f"per_image_neg_iwae_k{args.k}"
        difference = np.asarray(rows[1][key]) - np.asarray(rows[0][key])
        lines.append(f"\npaired difference of -L_{args.k}, {rows[1]['model']} minus {rows[0]['model']}, over the same "
                     f"{len(difference)} images: {difference.mean():+.2f} ± {difference.std(ddof=1) / np.sqrt(len(difference)):.2f} "
                     f"nats (mean ± standard error)")
    table = "\n".join(lines)
    print(table)
    os.makedirs(args.out, exist_ok=True)
    with open(os.path.join(args.out, "hvae_vs_vae.md"), "w") as handle:
        handle.write(table + "\n")
    with open(os.path.join(args.out, "hvae_vs_vae.json"), "w") as handle:
        json.dump({"config": vars(args), "rows": rows}, handle, indent=2)


if __name__ == "__main__":
    main()
