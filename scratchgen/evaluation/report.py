"""``scratchgen eval``: the metrics that fit each model, on the test split.

A model's own ``evaluate`` is cheap enough to run every epoch. This module adds the expensive,
family-specific measurements a researcher asks for after training:

* latent-variable models with ``log_importance_weights`` (VAE, beta-VAE, conv-VAE, CVAE):
  test -ELBO and the importance-weighted bound -L_k for several k (``likelihood.py``);
* RBMs: the test log-likelihood with log Z exact (small hidden layer) or by AIS with its spread;
  the test images are binarised the way the model was trained (static threshold, or one fixed
  stochastic draw for dynamic binarisation);
* image generators (GANs, and any model whose ``sample`` works): the classifier-Fréchet distance
  and mode coverage of 10,000 samples (``sample_quality.py``), against a LeNet-style classifier
  trained once per dataset and cached;
* every model that reconstructs: the mean squared reconstruction error per pixel.
"""
from __future__ import annotations

import os
from typing import Callable, Dict

import numpy as np

from ..data import binarize
from ..models.base import MODEL_REGISTRY, GenerativeModel
from ..models.classifiers.lenet import load_or_train_classifier
from . import ais
from .likelihood import likelihood_report
from .sample_quality import sample_quality_report


def _classifier_cache(dataset_name: str) -> str:
    root = os.environ.get("SCRATCHGEN_CACHE", os.path.join(os.path.expanduser("~"), ".cache", "scratchgen"))
    return os.path.join(root, "classifiers", f"{dataset_name.strip('/').replace('/', '_')}.npz")


def _binarised_like_training(mode: str, x: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    return binarize(x, mode, rng=rng) if mode in ("static", "dynamic") else x


def full_evaluation(model, data, rng: np.random.Generator, quick: bool = False,
                    progress: Callable[[str], None] = lambda stage: None, binarize: str = "none",
                    ks=None, iwae_examples=None) -> Dict[str, float]:
    """Every metric that fits ``model`` on ``data.test`` (see the module docstring).

    ``ks``, ``iwae_examples``: the importance-sample counts of the IWAE bounds and how many test
    images they use (default (1, 10, 100, 1000) on 1,000; quick: (1, 10) on 200).
    ``binarize``: how the training data was binarised ("none", "static", "dynamic"; a checkpoint's
    ``options``), so that held-out images are binarised the same way. ``progress(stage)`` is called
    before each stage (``scratchgen eval`` prints it: some take minutes).
    """
    test = data.test
    x_test = _binarised_like_training(binarize, test.x, np.random.default_rng([0, 6]))  # one fixed draw
    progress(f"the model's own metrics on {len(x_test)} test images")
    metrics: Dict[str, float] = {f"evaluate_{k}": float(v) for k, v in model.evaluate(x_test, test.y, rng).items()}

    if hasattr(model, "log_importance_weights"):
        y = model.condition_labels(test.y)  # the conditional VAE's bound is log p(x | y); None for the others
        ks = tuple(ks) if ks else ((1, 10) if quick else (1, 10, 100, 1000))
        iwae_examples = iwae_examples or (200 if quick else 1000)
        progress(f"test -ELBO and importance-weighted bounds, k up to {ks[-1]}")
        report = likelihood_report(model, test.x, rng, y=y, ks=ks,
                                   iwae_examples=iwae_examples)
        metrics.update({k: float(v) for k, v in report.items()})

    if hasattr(model, "exact_log_partition") and getattr(model, "binary_visible", False):
        v = x_test
        if bool(((v == 0) | (v == 1)).all()):
            small = model.enumerated_units <= model.exact_max_units
            if small:
                progress(f"exact log Z (2^{model.enumerated_units} states)")
                log_z = model.exact_log_partition()
                metrics["log_z_exact"] = float(log_z)
            else:
                progress(f"log Z by annealed importance sampling ({20 if quick else 100} runs)")
                log_z = ais.ais_log_partition(model, data=_binarised_like_training(binarize, data.train.x, rng),
                                              n_runs=20 if quick else 100, n_betas=2000 if quick else None, rng=rng)
                metrics["log_z_ais"] = float(log_z.log_z)
                metrics["log_z_ais_3sigma"] = float(3 * log_z.log_z_std)
            metrics["test_log_likelihood"] = float(model.log_likelihood(v, log_z).mean())

    if _can_sample_images(model) and MODEL_REGISTRY[model.cli_name].family != "boltzmann":
        progress("the sample-quality classifier (trained once per dataset, then cached)")
        classifier, info = load_or_train_classifier(_classifier_cache(getattr(data, "name", "data")), data,
                                                    epochs=1 if quick else 3, verbose=False)
        metrics["classifier_test_accuracy"] = float(info["test_accuracy"])
        n = 2000 if quick else 10000
        progress(f"classifier-Frechet distance and mode coverage of {n} samples")
        generated = model.sample(n, rng)
        report = sample_quality_report(classifier, generated, test.x, data.validation.x, rng)
        metrics.update({k: float(v) for k, v in report.items() if np.isscalar(v)})

    if _overrides(model, "reconstruct"):
        x = x_test[:2000]
        metrics["reconstruction_mse_per_pixel"] = float(np.mean((np.asarray(model.reconstruct(x)) - x) ** 2))
    return metrics


def _overrides(model, method: str) -> bool:
    """Whether the model implements ``method`` itself (a classifier, no GenerativeModel, has none at all)."""
    own = getattr(type(model), method, None)
    return own is not None and own is not getattr(GenerativeModel, method)


def _can_sample_images(model) -> bool:
    return _overrides(model, "sample") and getattr(model, "sample_kind", "images") == "images"  # not text models
