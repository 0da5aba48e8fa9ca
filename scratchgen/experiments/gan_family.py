"""Short runs of the conditional, Laplacian-pyramid and super-resolution GANs, with their pictures.

    python -m scratchgen.experiments.gan_family --models srgan,cgan,lapgan --steps 600 --out runs/gan_family

For each model: ``steps`` training steps on Fashion-MNIST (or ``--dataset``), batch 64, then
* srgan:  PSNR on 2,000 test images of SR-GAN against nearest, bilinear and bicubic upsampling of
          the 2x2-pooled 14x14 images, and super-resolution triplets (low-res, bicubic, SR-GAN, real);
* cgan:   (DCGAN networks + label) a class-conditional grid (one row per class) and, given a cached classifier
          (``--classifier``), how often the classifier agrees with the requested label;
* lapgan: the pyramid picture (7x7, 14x14, 28x28 per sample) and the per-level losses.
Loss curves for every model. Results are printed and written to ``results.json``.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import time
from typing import Dict

import numpy as np

from ..data import load_dataset
from ..models import DataInfo, build_model


def train(name: str, data, steps: int, out_dir: str, seed: int = 0, batch_size: int = 64, config=None, log=print):
    """Build model ``name`` and train it ``steps`` steps (the shared loop, ``model.fit``); returns
    (model, seconds per step). Beyond one epoch, steps are rounded up to whole epochs."""
    model = build_model(name, dict(config or {}), DataInfo(data.image_shape, data.num_classes), np.random.default_rng(seed))
    batches = math.ceil(data.train.num_examples / batch_size)
    epochs = max(1, math.ceil(steps / batches))
    start = time.perf_counter()
    model.fit(data.train.x, data.train.y, epochs=epochs, batch_size=batch_size, rng=seed,
              max_batches_per_epoch=steps if epochs == 1 else None)
    steps = model.optimizers[next(iter(model.optimizers))].steps[0] or steps
    seconds = (time.perf_counter() - start) / max(steps, 1)
    log(f"{name}: {steps} steps, {seconds:.3f} s per step", flush=True)
    os.makedirs(out_dir, exist_ok=True)
    model.save_pictures(out_dir, data, np.random.default_rng(0), tag="final")
    return model, seconds


def main(argv=None) -> Dict:
    parser = argparse.ArgumentParser(description="short runs of cgan, lapgan and srgan with their pictures")
    parser.add_argument("--models", default="srgan,cgan,lapgan")
    parser.add_argument("--dataset", default="fashion-mnist")
    parser.add_argument("--steps", type=int, default=600)
    parser.add_argument("--out", default="runs/gan_family")
    parser.add_argument("--classifier", default=None, help="a saved scratchgen Classifier .npz for the cgan label check "
                                                            "(default: trained on the dataset once and saved in --out)")
    parser.add_argument("--seed", type=int, default=0, help="seeds the models and their training")
    args = parser.parse_args(argv)
    data = load_dataset(args.dataset, seed=0)
    results = {}
    for name in args.models.split(","):
        out_dir = os.path.join(args.out, name)
        model, seconds = train(name, data, args.steps, out_dir, seed=args.seed)
        record = {"steps": args.steps, "seconds_per_step": seconds}
        if name == "srgan":
            record.update(model.psnr_table(data.test.x[:2000]))
        if name == "cgan":
            from ..models.classifiers.lenet import load_or_train_classifier

            classifier, _ = load_or_train_classifier(args.classifier or os.path.join(args.out, "classifier.npz"), data,
                                                     epochs=3, verbose=False)
            labels = np.arange(5000) % data.num_classes
            samples = model.sample(5000, np.random.default_rng(1), y=labels)
            record["classifier_agrees_with_label"] = float((classifier.predict(samples) == labels).mean())
        results[name] = record
        print(name, json.dumps(record), flush=True)
    os.makedirs(args.out, exist_ok=True)
    with open(os.path.join(args.out, "results.json"), "w") as handle:
        json.dump(results, handle, indent=2)
    return results


if __name__ == "__main__":
    main()
