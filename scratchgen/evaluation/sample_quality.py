"""An honest sample-quality score: classifier-Fréchet distance and mode coverage.

Classifier-Fréchet distance (the FID recipe with a home-grown feature extractor)
---------------------------------------------------------------------------------
Embed images with the penultimate layer of a classifier trained on the same data
(``scratchgen.models.classifier``), fit a Gaussian to each set of features, and report the
Fréchet (2-Wasserstein) distance between the two Gaussians N(mu_1, C_1) and N(mu_2, C_2):

    d^2 = |mu_1 - mu_2|^2 + tr(C_1 + C_2 - 2 (C_1 C_2)^{1/2})

``C_1 C_2`` is not symmetric, but its square root has the same trace as that of the symmetric
positive semi-definite product ``S C_2 S`` with ``S = C_1^{1/2}`` (the two are similar:
C_1 C_2 = S (S C_2 S) S^{-1}). So

    tr (C_1 C_2)^{1/2} = sum_i sqrt(lambda_i(S C_2 S)),

and both square roots come from symmetric eigendecompositions (``eigh``), which are stable and
never produce the complex round-off noise of a general ``sqrtm``. Eigenvalues that round to
slightly below zero are clipped to zero.

A Fréchet distance means little alone, so ``sample_quality_report`` always prints it beside

* the **floor**: the distance between two disjoint sets of *real* images of the same size
  (finite-sample noise: no generator can be expected to beat it), and
* **reference points**: the same disjoint real images with Gaussian noise added, and blurred,
  to show what a visibly degraded "generator" scores (floor included).

Mode coverage
-------------
The classifier labels ``n >= 10,000`` generated samples. A generator that covers every class
has a histogram close to uniform: we report the histogram, KL(histogram || uniform) in nats
(0 for a perfectly uniform one, log K for a single-class collapse) and how many classes get at
least 5% of the samples.
"""
from __future__ import annotations

from typing import Callable, Dict

import numpy as np

__all__ = [
    "symmetric_sqrt",
    "trace_sqrt_product",
    "gaussian_statistics",
    "frechet_distance",
    "features_frechet_distance",
    "gaussian_blur",
    "add_gaussian_noise",
    "mode_coverage",
    "sample_quality_report",
]


def symmetric_sqrt(matrix: np.ndarray) -> np.ndarray:
    """The PSD square root of a symmetric positive semi-definite matrix, via ``eigh``.

    matrix: (D, D). With matrix = V diag(l) V^T, returns V diag(sqrt(max(l, 0))) V^T.
    """
    matrix = _check_square("symmetric_sqrt", matrix)
    matrix = 0.5 * (matrix + matrix.T)  # remove the asymmetric round-off of a covariance estimate
    eigenvalues, eigenvectors = np.linalg.eigh(matrix)
    roots = np.sqrt(np.clip(eigenvalues, 0.0, None))
    return (eigenvectors * roots) @ eigenvectors.T


def trace_sqrt_product(cov_1: np.ndarray, cov_2: np.ndarray) -> float:
    """tr((C_1 C_2)^{1/2}) for symmetric PSD C_1, C_2 (D, D): sum of sqrt(eig(S C_2 S)), S = C_1^{1/2}."""
    cov_1, cov_2 = _check_square("trace_sqrt_product", cov_1), _check_square("trace_sqrt_product", cov_2)
    if cov_1.shape != cov_2.shape:
        raise ValueError(f"trace_sqrt_product: covariances have shapes {cov_1.shape} and {cov_2.shape}")
    root_1 = symmetric_sqrt(cov_1)
    product = root_1 @ cov_2 @ root_1
    eigenvalues = np.linalg.eigvalsh(0.5 * (product + product.T))
    return float(np.sqrt(np.clip(eigenvalues, 0.0, None)).sum())


def gaussian_statistics(features: np.ndarray):
    """Mean (D,) and unbiased covariance (D, D) of features (N, D), in float64."""
    features = np.asarray(features, dtype=np.float64)
    if features.ndim != 2 or features.shape[0] < 2:
        raise ValueError(f"gaussian_statistics: features must be (N >= 2, D), got shape {features.shape}")
    mean = features.mean(axis=0)
    centred = features - mean
    return mean, centred.T @ centred / (features.shape[0] - 1)


def frechet_distance(mean_1, cov_1, mean_2, cov_2) -> float:
    """Squared Fréchet distance between N(mean_1, cov_1) and N(mean_2, cov_2) (see module docstring)."""
    mean_1, mean_2 = np.asarray(mean_1, np.float64), np.asarray(mean_2, np.float64)
    cov_1, cov_2 = np.asarray(cov_1, np.float64), np.asarray(cov_2, np.float64)
    if mean_1.shape != mean_2.shape or cov_1.shape != (mean_1.size, mean_1.size) or cov_2.shape != cov_1.shape:
        raise ValueError(
            f"frechet_distance: shapes do not match: means {mean_1.shape}, {mean_2.shape}; "
            f"covariances {cov_1.shape}, {cov_2.shape}"
        )
    difference = mean_1 - mean_2
    value = difference @ difference + np.trace(cov_1) + np.trace(cov_2) - 2.0 * trace_sqrt_product(cov_1, cov_2)
    return float(max(value, 0.0))  # exact value is >= 0; clip round-off below it


def features_frechet_distance(features_1: np.ndarray, features_2: np.ndarray) -> float:
    """Fréchet distance between Gaussians fitted to two feature sets (N_1, D) and (N_2, D)."""
    return frechet_distance(*gaussian_statistics(features_1), *gaussian_statistics(features_2))


# ---- degraded real images: the reference points -------------------------------------------------
def gaussian_blur(images: np.ndarray, sigma: float = 1.0) -> np.ndarray:
    """Blur images (N, C, H, W) with a separable Gaussian of std ``sigma`` pixels (edges replicated)."""
    images = np.asarray(images)
    if images.ndim != 4:
        raise ValueError(f"gaussian_blur: images must be (N, C, H, W), got shape {images.shape}")
    radius = max(1, int(np.ceil(3 * sigma)))
    taps = np.exp(-0.5 * (np.arange(-radius, radius + 1) / sigma) ** 2)
    taps = (taps / taps.sum()).astype(images.dtype)
    padded = np.pad(images, ((0, 0), (0, 0), (radius, radius), (radius, radius)), mode="edge")
    h, w = images.shape[2:]
    rows = sum(t * padded[:, :, i : i + h, :] for i, t in enumerate(taps))  # blur along H
    return sum(t * rows[:, :, :, i : i + w] for i, t in enumerate(taps))  # then along W


def add_gaussian_noise(images: np.ndarray, std: float, rng: np.random.Generator) -> np.ndarray:
    """images + N(0, std^2) noise, clipped back to [0, 1]. images: (N, C, H, W)."""
    noise = rng.standard_normal(images.shape).astype(images.dtype) * images.dtype.type(std)
    return np.clip(images + noise, 0.0, 1.0)


# ---- mode coverage --------------------------------------------------------------------------------
def mode_coverage(labels: np.ndarray, num_classes: int, threshold: float = 0.05) -> Dict:
    """Histogram of predicted labels (N,), KL(histogram || uniform) in nats, classes with >= threshold.

    KL(q || u) = sum_k q_k log(q_k K) with 0 log 0 = 0; it is 0 for a uniform histogram and
    log K when every sample falls in one class.
    """
    labels = np.asarray(labels)
    if labels.ndim != 1 or labels.size == 0:
        raise ValueError(f"mode_coverage: labels must be a non-empty (N,) array, got shape {labels.shape}")
    if labels.min() < 0 or labels.max() >= num_classes:
        raise ValueError(f"mode_coverage: labels must lie in [0, {num_classes}), got range [{labels.min()}, {labels.max()}]")
    counts = np.bincount(labels, minlength=num_classes)
    fractions = counts / counts.sum()
    nonzero = fractions > 0
    kl = float((fractions[nonzero] * np.log(fractions[nonzero] * num_classes)).sum())
    return {
        "histogram": fractions,
        "kl_to_uniform": kl,
        "classes_covered": int((fractions >= threshold).sum()),
        "num_samples": int(labels.size),
    }


# ---- the full report -------------------------------------------------------------------------------
def sample_quality_report(
    classifier,
    generated: np.ndarray,
    real_test: np.ndarray,
    real_other: np.ndarray,
    rng: np.random.Generator,
    noise_std: float = 0.1,
    blur_sigma: float = 1.0,
    batch_size: int = 500,
) -> Dict:
    """Everything ``mode_coverage`` and the Fréchet distance say about ``generated``, with context.

    classifier: has ``features(x) -> (N, D)`` and ``predict(x) -> (N,)`` on images (N, C, H, W)
    in [0, 1] (``scratchgen.models.classifier.Classifier``).
    generated: (N, C, H, W) samples in [0, 1]; real_test: the real images they are compared to;
    real_other: disjoint real images (e.g. from the training split) for the real-vs-real floor.
    Returns a dict of floats plus the mode-coverage histogram.
    """
    extract: Callable = lambda x: classifier.features(x, batch_size=batch_size)
    test_statistics = gaussian_statistics(extract(real_test))

    def distance_to_test(images: np.ndarray) -> float:
        return frechet_distance(*gaussian_statistics(extract(images)), *test_statistics)

    coverage = mode_coverage(classifier.predict(generated, batch_size=batch_size), classifier.num_classes)
    return {
        "classifier_fd": distance_to_test(generated),
        "classifier_fd_real_floor": distance_to_test(real_other),
        f"classifier_fd_noisy_{noise_std:g}": distance_to_test(add_gaussian_noise(real_other, noise_std, rng)),
        f"classifier_fd_blur_{blur_sigma:g}": distance_to_test(gaussian_blur(real_other, blur_sigma)),
        "kl_to_uniform": coverage["kl_to_uniform"],
        "classes_covered": coverage["classes_covered"],
        "class_histogram": coverage["histogram"].tolist(),
        "num_generated": int(len(generated)),
    }


def _check_square(name: str, matrix) -> np.ndarray:
    matrix = np.asarray(matrix, dtype=np.float64)
    if matrix.ndim != 2 or matrix.shape[0] != matrix.shape[1]:
        raise ValueError(f"{name}: expected a square (D, D) matrix, got shape {matrix.shape}")
    return matrix
