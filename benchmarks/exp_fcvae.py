"""Experiment: the feature-consistent VAE beside the plain VAE - reconstructions and sample quality.

Train both with the CLI on the same data, architecture and epochs (the FCVAE adds only its
feature loss; its LeNet is trained in ``prepare`` and frozen)::

    scratchgen train vae   --dataset mnist --epochs E --out runs/fcvae_vs_vae/vae
    scratchgen train fcvae --dataset mnist --epochs E --out runs/fcvae_vs_vae/fcvae

then compare::

    python -m benchmarks.exp_fcvae runs/fcvae_vs_vae/vae/checkpoint.npz runs/fcvae_vs_vae/fcvae/checkpoint.npz \
        [--samples 10000] [--out runs/fcvae_vs_vae]

Writes ``fcvae_reconstructions.png`` (test images; below each, the VAE's reconstruction, then the
FCVAE's: the decoder's mean at the posterior mean), ``fcvae_samples.png`` (left: VAE samples,
right: FCVAE samples, the same z for both) and ``fcvae_vs_vae.md`` / ``.json``: test -ELBO,
reconstruction error (pixel MSE and the FCVAE's feature distance, both models measured in the
same frozen features), and the classifier-Fréchet distance of ``--samples`` samples with its
floor and reference points (``scratchgen.evaluation.sample_quality``).

The scoring classifier is *not* the FCVAE's: it is the evaluation's LeNet (width 32, 128
features, seed 0, 3 epochs; cached at ``--classifier``), while the FCVAE trained against a LeNet
of width 16, 64 features, seed 1. The two share an architecture, so a lower distance for the
FCVAE is partly "optimised for this kind of network": read it with that in mind.
"""
from __future__ import annotations

import argparse
import json
import os

import numpy as np


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m benchmarks.exp_fcvae")
    parser.add_argument("vae")
    parser.add_argument("fcvae")
    parser.add_argument("--samples", type=int, default=10000)
    parser.add_argument("--data-root", default=None, help="default: $SCRATCHGEN_DATA")
    parser.add_argument("--classifier", default="runs/classifiers/mnist_lenet.npz", help="the scoring LeNet's cache")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default="runs/fcvae_vs_vae")
    args = parser.parse_args(argv)

    from scratchgen import Tensor, no_grad
    from scratchgen.data import load_dataset
    from scratchgen.evaluation.likelihood import evaluate_elbo
    from scratchgen.evaluation.sample_quality import sample_quality_report
    from scratchgen.models import load_model
    from scratchgen.models.classifiers.lenet import load_or_train_classifier
    from scratchgen.plots import image_grid, save_image_grid

    vae, meta = load_model(args.vae)
    fcvae, fc_meta = load_model(args.fcvae)
    if (meta["model"], fc_meta["model"]) != ("vae", "fcvae"):
        raise SystemExit(f"expected a 'vae' and an 'fcvae' checkpoint, got {meta['model']!r} and {fc_meta['model']!r}")
    if meta.get("dataset") != fc_meta.get("dataset"):
        raise SystemExit(f"the two models were trained on different data ({meta.get('dataset')} vs {fc_meta.get('dataset')})")
    data = load_dataset(meta.get("dataset", "digits"), root=args.data_root, seed=meta.get("seed", 0))
    x = data.test.x
    os.makedirs(args.out, exist_ok=True)

    recon = {"vae": vae.reconstruct(x), "fcvae": fcvae.reconstruct(x)}
    rows = []
    for start in (0, 10):
        rows += [x[start:start + 10], recon["vae"][start:start + 10], recon["fcvae"][start:start + 10]]
    save_image_grid(np.concatenate(rows), os.path.join(args.out, "fcvae_reconstructions.png"), nrow=10, scale=3)
    z = np.random.default_rng([args.seed, 1]).standard_normal((64, vae.latent_dim)).astype(np.float32)
    with no_grad():
        grids = [image_grid(model.as_images(model.mean_image(model.decode(z).data)), nrow=8) for model in (vae, fcvae)]
    gap = np.ones((grids[0].shape[0], 6))
    save_image_grid(np.concatenate([grids[0], gap, grids[1]], axis=1)[None, None], os.path.join(args.out, "fcvae_samples.png"),
                    nrow=1, scale=3, padding=0)

    classifier, info = load_or_train_classifier(args.classifier, data, epochs=3, verbose=False)
    results = {"scoring_classifier_test_accuracy": float(info["test_accuracy"]),
               "fcvae_classifier_train_accuracy": float(fcvae.classifier_accuracy[0])}
    for name, model, model_meta in (("vae", vae, meta), ("fcvae", fcvae, fc_meta)):
        with no_grad():
            feature_distance = float(fcvae.feature_loss(Tensor(model.as_flat(recon[name])), fcvae.as_flat(x)).data)
        generated = model.sample(args.samples, np.random.default_rng([args.seed, 2]))
        quality = sample_quality_report(classifier, generated, x, data.validation.x, np.random.default_rng([args.seed, 3]))
        results[name] = {"epochs": model_meta.get("epoch"),
                         "neg_elbo": float(-evaluate_elbo(model, x, np.random.default_rng(1), samples=10).mean()),
                         "reconstruction_mse_per_pixel": float(np.mean((recon[name] - x) ** 2)),
                         "feature_distance_fcvae_features": feature_distance,
                         **{k: v for k, v in quality.items() if np.isscalar(v)}}
        print(name, json.dumps(results[name]), flush=True)
    lines = ["| model | epochs | test -ELBO | pixel MSE of reconstructions | feature distance | classifier-FD of samples | "
             "classes covered |", "|---|---:|---:|---:|---:|---:|---:|"]
    for name in ("vae", "fcvae"):
        r = results[name]
        lines.append(f"| {name} | {r['epochs']} | {r['neg_elbo']:.2f} | {r['reconstruction_mse_per_pixel']:.4f} | "
                     f"{r['feature_distance_fcvae_features']:.1f} | {r['classifier_fd']:.2f} | {r['classes_covered']} |")
    r = results["vae"]
    lines.append(f"| (real test vs real validation images: the floor) | | | | | {r['classifier_fd_real_floor']:.2f} | |")
    lines.append(f"| (real images blurred, sigma 1) | | | | | {r['classifier_fd_blur_1']:.2f} | |")
    table = "\n".join(lines)
    print(table)
    with open(os.path.join(args.out, "fcvae_vs_vae.md"), "w") as handle:
        handle.write(table + "\n")
    with open(os.path.join(args.out, "fcvae_vs_vae.json"), "w") as handle:
        json.dump({"config": vars(args), **results}, handle, indent=2)


if __name__ == "__main__":
    main()
