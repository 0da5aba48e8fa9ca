"""Parzen-window log-likelihood of a sample-only model (Goodfellow et al. 2014, Table 1).

A GAN gives samples, not densities. Breuleux et al. (2011) and the GAN paper estimate a density
by putting an isotropic Gaussian of width sigma on each of n generated samples s_i:

    p(x) = (1/n) sum_i N(x; s_i, sigma^2 I)
    log p(x) = logmeanexp_i( -|x - s_i|^2 / (2 sigma^2) ) - (D/2) log(2 pi sigma^2)

sigma is chosen by maximising the mean log-likelihood of a *validation* split, and the test
split is scored with that sigma. The log-mean-exp is done stably, m + log(mean(exp(a - m))) with
m = max(a), in float64, and batched (test points x sample chunks) so memory stays bounded.

Why "for continuity only": the estimate is known to be poor in high dimension (Theis, van den
Oord & Bethge 2016, "A note on the evaluation of generative models"): it ranks a model that
memorises k-means centres above real data, and its variance with n is large. It is reported
here next to the published 225 +- 2 (MNIST) only so readers can place old numbers; the
classifier-Fréchet distance in ``sample_quality.py`` is the score to trust.
"""
from __future__ import annotations

from typing import Dict, Sequence

import numpy as np

__all__ = ["parzen_log_likelihood", "select_parzen_sigma", "parzen_evaluation"]


def _flatten(name: str, images) -> np.ndarray:
    images = np.asarray(images)
    if images.ndim < 2:
        raise ValueError(f"{name}: expected (N, ...) images or (N, D) vectors, got shape {images.shape}")
    return images.reshape(len(images), -1).astype(np.float64)


def parzen_log_likelihood(
    x, samples, sigma: float, batch_size: int = 100, sample_chunk: int = 10000
) -> np.ndarray:
    """log p(x_j) under the Parzen window of ``samples``; returns (N_x,) in nats.

    x: (N_x, ...) points to score; samples: (n, ...) model samples, same feature count D.
    Squared distances use |x|^2 - 2 x.s + |s|^2 (one GEMM per block), clipped at 0.
    """
    if sigma <= 0:
        raise ValueError(f"parzen_log_likelihood: sigma must be positive, got {sigma}")
    x, samples = _flatten("parzen_log_likelihood", x), _flatten("parzen_log_likelihood", samples)
    if x.shape[1] != samples.shape[1]:
        raise ValueError(f"parzen_log_likelihood: points have {x.shape[1]} features, samples have {samples.shape[1]}")
    n, dim = samples.shape
    sample_norms = (samples**2).sum(axis=1)
    log_norm = -0.5 * dim * np.log(2 * np.pi * sigma**2)
    result = np.empty(len(x))
    for start in range(0, len(x), batch_size):
        block = x[start : start + batch_size]
        block_norms = (block**2).sum(axis=1, keepdims=True)
        # Running log-sum-exp over chunks of samples: keep (max, sum of exp(a - max)) per point.
        running_max = np.full(len(block), -np.inf)
        running_sum = np.zeros(len(block))
        for s in range(0, n, sample_chunk):
            chunk = samples[s : s + sample_chunk]
            squared = np.maximum(block_norms - 2 * block @ chunk.T + sample_norms[s : s + sample_chunk], 0.0)
            a = -squared / (2 * sigma**2)
            new_max = np.maximum(running_max, a.max(axis=1))
            running_sum = running_sum * np.exp(running_max - new_max) + np.exp(a - new_max[:, None]).sum(axis=1)
            running_max = new_max
        result[start : start + batch_size] = running_max + np.log(running_sum) - np.log(n) + log_norm
    return result


def select_parzen_sigma(validation, samples, sigmas: Sequence[float] = tuple(np.logspace(-1.3, 0, 12)), **kwargs):
    """The sigma in ``sigmas`` with the highest mean validation log-likelihood; returns (sigma, {sigma: mean})."""
    scores = {float(s): float(parzen_log_likelihood(validation, samples, s, **kwargs).mean()) for s in sigmas}
    best = max(scores, key=scores.get)
    return best, scores


def parzen_evaluation(samples, validation, test, sigmas: Sequence[float] = tuple(np.logspace(-1.3, 0, 12))) -> Dict:
    """Pick sigma on ``validation``, score ``test``: mean log-likelihood and its standard error."""
    sigma, scores = select_parzen_sigma(validation, samples, sigmas)
    log_likelihoods = parzen_log_likelihood(test, samples, sigma)
    return {
        "sigma": sigma,
        "validation_scores": scores,
        "test_log_likelihood": float(log_likelihoods.mean()),
        "test_standard_error": float(log_likelihoods.std(ddof=1) / np.sqrt(len(log_likelihoods))),
    }
