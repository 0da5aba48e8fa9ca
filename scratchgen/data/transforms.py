"""Small array transforms for image data: binarisation, one-hot labels, flattening.

Binarisation (what Bernoulli-output models such as RBMs and binary VAEs see):

    "none"     keep the grey levels: x in [0, 1] is read as Bernoulli means (the BCE target is
               x itself; ``sum x log p + (1 - x) log(1 - p)`` is still a valid loss).
    "static"   x_b = 1[x > threshold], the same fixed binary image every epoch (some papers
               instead fix one stochastic draw; thresholding is the deterministic form).
    "dynamic"  x_b ~ Bernoulli(x), a fresh draw on every call: call it once per epoch (or per
               batch) so the model never sees the same binary image twice. This is the
               "dynamically binarised MNIST" of the VAE/IWAE likelihood tables
               (Burda et al. 2015); numbers from static and dynamic binarisation differ.

A dynamic draw uses ``u ~ Uniform[0, 1)`` and sets ``x_b = 1[u < x]``, so P(x_b = 1) = x exactly;
the uniforms come from the caller's ``np.random.Generator`` so a seeded run repeats bit for bit.
"""
from __future__ import annotations

import numpy as np

from ..backend import get_array_module

__all__ = ["BINARIZE_MODES", "binarize", "one_hot", "flatten_images"]

BINARIZE_MODES = ("none", "static", "dynamic")


def binarize(x, mode: str = "none", rng: np.random.Generator | None = None, threshold: float = 0.5):
    """Binarise images x (any shape, floating, values in [0, 1]); the result has x's shape and dtype.

    mode "none" returns x itself (no copy), "static" thresholds at ``threshold``, "dynamic"
    samples Bernoulli(x) with ``rng`` (required: a ``np.random.Generator``).
    """
    if mode not in BINARIZE_MODES:
        raise ValueError(f"binarize: unknown mode {mode!r}; expected one of {', '.join(BINARIZE_MODES)}")
    x = np.asarray(x)
    if x.dtype.kind != "f":
        raise TypeError(f"binarize: x must be floating point in [0, 1], got dtype {x.dtype}")
    if x.size:
        low, high = float(x.min()), float(x.max())
        if not (0.0 <= low and high <= 1.0):
            raise ValueError(f"binarize: x must lie in [0, 1] (Bernoulli means), got values in [{low}, {high}]")
    if mode == "none":
        return x
    if mode == "static":
        return (x > threshold).astype(x.dtype)
    if not isinstance(rng, np.random.Generator):
        raise TypeError("binarize: mode 'dynamic' needs rng, a np.random.Generator "
                        f"(e.g. np.random.default_rng(seed)), got {type(rng).__name__}")
    # Draw uniforms in x's own precision (float32 or float64): no float64 temporaries for float32 data.
    uniforms = rng.random(x.shape, dtype=x.dtype if x.dtype in (np.float32, np.float64) else np.float64)
    return (uniforms < x).astype(x.dtype)


def one_hot(y, num_classes: int, dtype=np.float32, like=None):
    """Labels y: (N,) ints in [0, num_classes) -> (N, num_classes) with a single 1 per row.

    ``like``: an array whose dtype and device (NumPy or CuPy) the result takes instead of ``dtype``
    (a model passes its input, so one-hot conditions land where its weights are).
    """
    xp = get_array_module(like) if like is not None else np
    y = xp.asarray(y.get() if hasattr(y, "get") and xp is np else y)
    if y.ndim != 1 or y.dtype.kind not in "iu":
        raise ValueError(f"one_hot: y must be a 1-D integer array, got shape {y.shape} dtype {y.dtype}")
    if num_classes < 1:
        raise ValueError(f"one_hot: num_classes must be >= 1, got {num_classes}")
    if y.size and (int(y.min()) < 0 or int(y.max()) >= num_classes):
        bad = np.asarray(y.get() if hasattr(y, "get") else y)
        bad = bad[(bad < 0) | (bad >= num_classes)]
        raise ValueError(f"one_hot: labels must lie in [0, {num_classes}), got {np.unique(bad)[:10].tolist()}")
    encoded = xp.zeros((y.shape[0], num_classes), dtype=like.dtype if like is not None else dtype)
    encoded[xp.arange(y.shape[0]), y] = 1
    return encoded


def flatten_images(x) -> np.ndarray:
    """Images x: (N, C, H, W) (or any (N, ...)) -> (N, C*H*W), a view when x is contiguous."""
    x = np.asarray(x)
    if x.ndim < 2:
        raise ValueError(f"flatten_images: expected (N, ...) with at least 2 dimensions, got shape {x.shape}")
    return x.reshape(x.shape[0], -1)
