"""Experiment: the autoencoder applications on the MNIST split, each as a number and a picture.

    python -m benchmarks.exp_ae_applications [--epochs 20] [--out runs/ae_applications]

Data: the MNIST t10k files split 8000 / 1000 / 1000 (seed 0) by ``load_dataset``. All models
784 -> hidden with sigmoid codes and a sigmoid output + BCE, Adam 1e-3, batch 128.

1. Contraction: mean ||J_f(x)||_F on test images for a plain AE, a CAE (lambda 0.1 and 1)
   and a DAE of the same size, with their test reconstruction BCE.
2. Denoising: PSNR of noisy and of denoised test images, DAE vs the plain AE used as a
   denoiser, for Gaussian (sigma 0.3), masking (50%) and salt-and-pepper (20%) noise.
3. Anomaly detection: for each digit c, a VAE (784-256-16) and an AE (784-64) trained without c;
   AUROC of -ELBO and of reconstruction BCE for "is digit c" over the whole test split.
4. Dimensionality reduction and retrieval: a 2-D VAE's latent scatter; precision@10 of test
   images retrieved by raw pixels, PCA-16, AE codes and VAE means (16-D).
"""
from __future__ import annotations

import argparse
import json
import os
import time

import numpy as np


def _train(model, x, epochs, rng, batch_size=128):
    from scratchgen.data import iterate_batches

    for _ in range(epochs):
        for xb, _ in iterate_batches(x, None, batch_size, rng):
            model.train_step(xb, None, rng)
    model.eval()
    return model


def _bce_per_example(model, x):
    from scratchgen import no_grad, ops

    with no_grad():
        xf = model.as_flat(x)
        a = model.decode_logits(model.encode(xf))
        return ops.sigmoid_bce_with_logits(a, xf, reduction="none").data.sum(axis=1)


def contraction(data, epochs, rng):
    from scratchgen.models.autoencoders.autoencoder import Autoencoder
    from scratchgen.models.autoencoders.contractive import ContractiveAutoencoder
    from scratchgen.models.autoencoders.denoising import DenoisingAutoencoder

    shape, rows = data.image_shape, []
    makers = {
        "plain AE": lambda: Autoencoder(shape, hidden=256, rng=0),
        "CAE lambda=0.1": lambda: ContractiveAutoencoder(shape, hidden=256, contraction=0.1, rng=0),
        "CAE lambda=1": lambda: ContractiveAutoencoder(shape, hidden=256, contraction=1.0, rng=0),
        "DAE gaussian 0.3": lambda: DenoisingAutoencoder(shape, hidden=256, corruption="gaussian", level=0.3, rng=0),
    }
    models = {}
    for name, make in makers.items():
        start = time.perf_counter()
        model = _train(make(), data.train.x, epochs, np.random.default_rng(rng.integers(1 << 31)))
        metrics = Autoencoder.evaluate(model, data.test.x, data.test.y, rng)
        rows.append({"model": name, "test_reconstruction_bce": metrics["reconstruction"],
                     "test_mean_jacobian_frobenius": metrics["jacobian_frobenius"],
                     "train_seconds": time.perf_counter() - start})
        models[name] = model
        print(json.dumps(rows[-1]), flush=True)
    return rows, models


def denoising(data, models, out_dir, rng):
    from scratchgen.metrics import denoising_psnr
    from scratchgen.models.image_model import reconstruction_grid
    from scratchgen.models.autoencoders.denoising import corrupt, corruption_noise
    from scratchgen.plots import save_image_grid

    rows = []
    clean = data.test.x
    for kind, level in (("gaussian", 0.3), ("masking", 0.5), ("salt_and_pepper", 0.2)):
        noisy = corrupt(clean, kind, level, corruption_noise(kind, clean.shape, rng))
        for name in ("plain AE", "DAE gaussian 0.3"):
            report = denoising_psnr(models[name].reconstruct, clean, noisy)
            rows.append({"noise": f"{kind} {level}", "model": name, **report})
            print(json.dumps(rows[-1]), flush=True)
        if kind == "gaussian":
            grid = np.concatenate([clean[:10], noisy[:10], models["DAE gaussian 0.3"].reconstruct(noisy[:10]),
                                   models["plain AE"].reconstruct(noisy[:10])])
            save_image_grid(grid, os.path.join(out_dir, "denoising_clean_noisy_dae_ae.png"), nrow=10, scale=2)
    return rows


def anomaly(data, epochs, rng, classes):
    from scratchgen.metrics import anomaly_auroc
    from scratchgen.evaluation.likelihood import evaluate_elbo
    from scratchgen.models.autoencoders.autoencoder import Autoencoder
    from scratchgen.models.vae.vae import VAE

    rows = []
    for c in classes:
        keep = data.train.y != c
        vae = _train(VAE(data.image_shape, hidden=256, latent=16, rng=0), data.train.x[keep], epochs,
                     np.random.default_rng(c))
        ae = _train(Autoencoder(data.image_shape, hidden=64, rng=0), data.train.x[keep], epochs, np.random.default_rng(c))
        score_rng = np.random.default_rng(100 + c)
        vae_result = anomaly_auroc(lambda xb: -evaluate_elbo(vae, xb, score_rng, samples=5), data.test.x, data.test.y, c)
        ae_result = anomaly_auroc(lambda xb: _bce_per_example(ae, xb), data.test.x, data.test.y, c)
        rows.append({"held_out_digit": int(c), "vae_neg_elbo_auroc": vae_result["auroc"], "ae_bce_auroc": ae_result["auroc"]})
        print(json.dumps(rows[-1]), flush=True)
    return rows


def retrieval(data, epochs, models, out_dir, rng):
    from scratchgen.metrics import precision_at_k, project_2d
    from scratchgen.plots import save_latent_scatter
    from scratchgen.models.vae.vae import VAE

    x_test = data.test.x.reshape(len(data.test.x), -1)
    y_test = data.test.y
    vae16 = _train(VAE(data.image_shape, hidden=256, latent=16, rng=0), data.train.x, epochs, np.random.default_rng(1))
    vae2 = _train(VAE(data.image_shape, hidden=256, latent=2, rng=0), data.train.x, epochs, np.random.default_rng(2))
    x_train = data.train.x.reshape(len(data.train.x), -1)
    mean = x_train.mean(axis=0)
    components = np.linalg.svd(x_train - mean, full_matrices=False)[2][:16]
    codes = {
        "raw pixels (784-D)": x_test,
        "PCA (16-D)": (x_test - mean) @ components.T,
        "plain AE codes (256-D)": models["plain AE"].codes(data.test.x),
        "VAE posterior means (16-D)": vae16.encode_mean(data.test.x),
        "VAE posterior means (2-D)": vae2.encode_mean(data.test.x),
    }
    rows = [{"codes": name, "precision_at_10": precision_at_k(c, y_test, k=10)} for name, c in codes.items()]
    for row in rows:
        print(json.dumps(row), flush=True)
    save_latent_scatter(codes["VAE posterior means (2-D)"], y_test, os.path.join(out_dir, "latent_vae_2d.png"),
                        title="VAE 784-256-2 posterior means, MNIST test split")
    save_latent_scatter(project_2d(codes["VAE posterior means (16-D)"]), y_test, os.path.join(out_dir, "latent_vae_16d_pca.png"),
                        title="VAE 784-256-16 posterior means (first 2 PCs)")
    return rows


def main(argv=None):
    parser = argparse.ArgumentParser()
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--anomaly-epochs", type=int, default=10)
    parser.add_argument("--classes", default="0,1,2,3,4,5,6,7,8,9")
    parser.add_argument("--data-root", default=None,
                        help="where mnist is looked for besides the usual places (default: $SCRATCHGEN_DATA)")
    parser.add_argument("--out", default="runs/ae_applications")
    parser.add_argument("--parts", default="contraction,denoising,anomaly,retrieval")
    args = parser.parse_args(argv)

    from scratchgen.data import load_dataset

    data = load_dataset("mnist", root=args.data_root, seed=0)
    print(data.summary(), flush=True)
    os.makedirs(args.out, exist_ok=True)
    rng = np.random.default_rng(0)
    parts = args.parts.split(",")
    results = {"data": data.source, "epochs": args.epochs}
    start = time.perf_counter()
    rows, models = contraction(data, args.epochs, rng)
    results["contraction"] = rows
    if "denoising" in parts:
        results["denoising"] = denoising(data, models, args.out, rng)
    if "anomaly" in parts:
        results["anomaly"] = anomaly(data, args.anomaly_epochs, rng, [int(c) for c in args.classes.split(",")])
    if "retrieval" in parts:
        results["retrieval"] = retrieval(data, args.epochs, models, args.out, rng)
    results["minutes"] = (time.perf_counter() - start) / 60
    with open(os.path.join(args.out, "results.json"), "w") as handle:
        json.dump(results, handle, indent=2)
    print(f"done in {results['minutes']:.1f} min; results in {args.out}/results.json", flush=True)


if __name__ == "__main__":
    main()
