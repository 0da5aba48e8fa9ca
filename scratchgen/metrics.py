"""Metrics on plain arrays: what autoencoders are *for*, each as a function that returns a number.

* Denoising      PSNR of noisy and of denoised test images against the clean ones:
                     PSNR = 10 log10(max^2 / MSE)  per image, in dB (higher is better).
* Anomaly        train without one class, score every test image (reconstruction error or
  detection      -ELBO), and ask how well the score ranks the unseen class above the rest:
                     AUROC = P(score(anomaly) > score(normal)) + 0.5 P(tie),
                 computed exactly from ranks (the Mann-Whitney U statistic), no thresholds.
* Dimensionality codes -> 2-D (the codes themselves when D = 2, else their first two principal
  reduction      components), drawn as a scatter coloured by label.
* Retrieval      nearest neighbours in code space: precision@k = the fraction of each query's
                 k nearest other examples that share its label, averaged over queries.

Every function takes plain arrays (or a callable from arrays to arrays), so any model fits, and
nothing here imports a model: models use these for their own ``evaluate`` (the denoising AE's
PSNR), and ``scratchgen.evaluation`` builds its reports on them.
"""
from __future__ import annotations

from typing import Callable, Dict, Optional, Tuple

import numpy as np

from .device import to_numpy

__all__ = [
    "psnr",
    "denoising_psnr",
    "auroc",
    "roc_curve",
    "anomaly_auroc",
    "project_2d",
    "precision_at_k",
    "batched_apply",
]



def batched_apply(fn: Callable, x: np.ndarray, batch_size: int = 1000) -> np.ndarray:
    """``fn`` on ``x`` a batch at a time, results concatenated along the first axis (host arrays)."""
    if len(x) == 0:
        raise ValueError("batched_apply: x is empty")
    return np.concatenate([to_numpy(fn(x[i : i + batch_size])) for i in range(0, len(x), batch_size)])


# ---- denoising ---------------------------------------------------------------------------------
def psnr(clean: np.ndarray, estimate: np.ndarray, max_value: float = 1.0) -> np.ndarray:
    """Peak signal-to-noise ratio per image, in dB: 10 log10(max_value^2 / mean((clean - estimate)^2)).

    clean, estimate: (N, ...) of the same shape. A perfect estimate gives +inf.
    """
    clean, estimate = to_numpy(clean), to_numpy(estimate)
    if clean.shape != estimate.shape:
        raise ValueError(f"psnr: clean has shape {clean.shape}, estimate has shape {estimate.shape}")
    diff = clean.reshape(len(clean), -1).astype(np.float64) - estimate.reshape(len(estimate), -1).astype(np.float64)
    mse = (diff * diff).mean(axis=1)
    with np.errstate(divide="ignore"):
        return 10.0 * np.log10(max_value**2 / mse)


def denoising_psnr(reconstruct: Callable, clean: np.ndarray, noisy: np.ndarray, batch_size: int = 1000) -> Dict[str, float]:
    """Mean PSNR (dB) of the noisy images and of their reconstructions ``reconstruct(noisy)``.

    Returns {"psnr_noisy", "psnr_denoised", "psnr_gain"}; gain > 0 means the model removed noise.
    """
    denoised = batched_apply(reconstruct, noisy, batch_size)
    noisy_db = float(np.mean(psnr(clean, noisy)))
    denoised_db = float(np.mean(psnr(clean, denoised)))
    return {"psnr_noisy": noisy_db, "psnr_denoised": denoised_db, "psnr_gain": denoised_db - noisy_db}


# ---- anomaly detection ---------------------------------------------------------------------------
def _average_ranks(values: np.ndarray) -> np.ndarray:
    """Ranks 1..n of ``values``; tied values share the mean of their ranks."""
    order = np.argsort(values, kind="mergesort")
    sorted_values = values[order]
    # Boundaries of runs of equal values in sorted order.
    starts = np.flatnonzero(np.r_[True, sorted_values[1:] != sorted_values[:-1]])
    ends = np.r_[starts[1:], len(values)]
    mean_rank = (starts + ends + 1) / 2.0  # mean of ranks start+1 .. end
    ranks = np.empty(len(values), dtype=np.float64)
    ranks[order] = np.repeat(mean_rank, ends - starts)
    return ranks


def auroc(scores: np.ndarray, is_positive: np.ndarray) -> float:
    """Area under the ROC curve of ``scores`` (higher = more positive) against boolean labels.

    AUROC = (R_pos - n_pos (n_pos + 1) / 2) / (n_pos n_neg), R_pos the sum of the positives'
    ranks among all scores (ties share their mean rank, so a tie counts one half). 1.0 ranks
    every positive above every negative, 0.5 is chance.
    """
    scores = to_numpy(scores).astype(np.float64).ravel()
    is_positive = to_numpy(is_positive).astype(bool).ravel()
    if scores.shape != is_positive.shape:
        raise ValueError(f"auroc: {scores.size} scores but {is_positive.size} labels")
    if not np.all(np.isfinite(scores)):
        raise ValueError(f"auroc: scores hold {int((~np.isfinite(scores)).sum())} non-finite value(s)")
    n_pos = int(is_positive.sum())
    n_neg = is_positive.size - n_pos
    if n_pos == 0 or n_neg == 0:
        raise ValueError(f"auroc: needs both classes, got {n_pos} positives and {n_neg} negatives")
    ranks = _average_ranks(scores)
    rank_sum = ranks[is_positive].sum()
    return float((rank_sum - n_pos * (n_pos + 1) / 2.0) / (n_pos * n_neg))


def roc_curve(scores: np.ndarray, is_positive: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
    """(false positive rate, true positive rate) at every distinct threshold, from (0, 0) to (1, 1)."""
    scores = to_numpy(scores).astype(np.float64).ravel()
    is_positive = to_numpy(is_positive).astype(bool).ravel()
    order = np.argsort(-scores, kind="mergesort")
    s, p = scores[order], is_positive[order]
    last_of_run = np.r_[s[1:] != s[:-1], True]  # one point per distinct threshold
    tp = np.cumsum(p)[last_of_run]
    fp = np.cumsum(~p)[last_of_run]
    return np.r_[0.0, fp / max(1, (~p).sum())], np.r_[0.0, tp / max(1, p.sum())]


def anomaly_auroc(score: Callable, x: np.ndarray, y: np.ndarray, anomaly_class: int, batch_size: int = 1000) -> Dict[str, float]:
    """AUROC of ``score(x)`` (per-example anomaly scores, higher = stranger) for class ``anomaly_class``.

    The model must have been trained *without* that class. Returns {"auroc", "mean_score_normal",
    "mean_score_anomaly"}.
    """
    y = to_numpy(y)
    is_anomaly = y == anomaly_class
    if not is_anomaly.any():
        raise ValueError(f"anomaly_auroc: no test example has the anomaly class {anomaly_class}")
    scores = batched_apply(score, x, batch_size).astype(np.float64).ravel()
    if scores.shape != (len(x),):
        raise ValueError(f"anomaly_auroc: score returned {scores.size} values for {len(x)} examples")
    return {
        "auroc": auroc(scores, is_anomaly),
        "mean_score_normal": float(scores[~is_anomaly].mean()),
        "mean_score_anomaly": float(scores[is_anomaly].mean()),
    }


# ---- dimensionality reduction --------------------------------------------------------------------
def project_2d(codes: np.ndarray) -> np.ndarray:
    """(N, 2) points: the codes themselves if D = 2, else their first two principal components.

    PCA by SVD of the centred codes; each component's sign is fixed (largest |loading| positive)
    so pictures do not flip between runs.
    """
    codes = to_numpy(codes).astype(np.float64).reshape(len(codes), -1)
    if codes.shape[1] == 2:
        return codes
    if codes.shape[1] < 2:
        raise ValueError(f"project_2d: codes need at least 2 dimensions, got shape {codes.shape}")
    centred = codes - codes.mean(axis=0)
    _, _, vt = np.linalg.svd(centred, full_matrices=False)
    components = vt[:2]
    signs = np.sign(components[np.arange(2), np.abs(components).argmax(axis=1)])
    return centred @ (components * signs[:, None]).T


# ---- retrieval ----------------------------------------------------------------------------------
def precision_at_k(codes: np.ndarray, labels: np.ndarray, k: int = 10, batch_size: int = 1000,
                   metric: str = "euclidean", queries: Optional[int] = None) -> float:
    """Mean fraction of each example's k nearest neighbours (itself excluded) sharing its label.

    Every example is a query against all the others (the first ``queries`` ones only, if given).
    Distances in batches of ``batch_size`` queries (memory O(batch_size * N)):
        euclidean  |a - b|^2 = |a|^2 - 2 a.b + |b|^2
        cosine     1 - a.b / (|a| |b|)
    """
    codes = to_numpy(codes).astype(np.float64).reshape(len(codes), -1)
    labels = to_numpy(labels).ravel()
    n = len(codes)
    if len(labels) != n:
        raise ValueError(f"precision_at_k: {n} codes but {len(labels)} labels")
    if not 1 <= k < n:
        raise ValueError(f"precision_at_k: k must be in [1, {n - 1}] for {n} examples, got {k}")
    if metric == "cosine":
        codes = codes / np.maximum(np.linalg.norm(codes, axis=1, keepdims=True), 1e-12)
    elif metric != "euclidean":
        raise ValueError(f"precision_at_k: metric must be 'euclidean' or 'cosine', got {metric!r}")
    squared_norms = (codes * codes).sum(axis=1)
    m = n if queries is None else min(int(queries), n)
    hits = 0.0
    for start in range(0, m, batch_size):
        stop = min(start + batch_size, m)
        q = codes[start:stop]
        distances = squared_norms[start:stop, None] - 2.0 * q @ codes.T + squared_norms[None, :]
        distances[np.arange(stop - start), np.arange(start, stop)] = np.inf  # a query never retrieves itself
        nearest = np.argpartition(distances, k - 1, axis=1)[:, :k]
        hits += (labels[nearest] == labels[start:stop, None]).sum()
    return float(hits / (m * k))
