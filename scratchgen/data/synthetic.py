"""A tiny deterministic image dataset for tests and quick demos: bars, diagonals, blobs.

Ten classes of ``size x size`` grey images (default 8x8), one prototype pattern per class:

    0-2  a horizontal bar in the top, middle or bottom third
    3-5  a vertical bar in the left, middle or right third
    6    the main diagonal            7  the anti-diagonal
    8    a Gaussian blob in the centre 9  a square frame along the border

Each example is its class prototype, scaled by a random contrast in [0.7, 1], plus Gaussian
pixel noise (std ``noise``), clipped to [0, 1]. Labels cycle through the classes before the
shuffle, so every class has N/10 examples (+-1). Everything comes from
``np.random.default_rng(seed)``: the same arguments always give the same arrays. The classes
are easy to tell apart (a nearest-prototype rule is near perfect at the default noise), which is
what a test of "the model learns something" needs.
"""
from __future__ import annotations

import numpy as np

__all__ = ["SYNTHETIC_CLASS_NAMES", "synthetic_prototypes", "make_synthetic"]

SYNTHETIC_CLASS_NAMES = (
    "bar-top", "bar-middle", "bar-bottom",
    "bar-left", "bar-centre", "bar-right",
    "diagonal", "anti-diagonal", "blob", "frame",
)


def synthetic_prototypes(size: int = 8) -> np.ndarray:
    """The ten noise-free class patterns: (10, size, size) float32 in [0, 1]."""
    if size < 6:
        raise ValueError(f"synthetic_prototypes: size must be >= 6 for the patterns to differ, got {size}")
    third = size // 3
    thick = max(1, size // 4)
    starts = (third // 2, (size - thick) // 2, size - thick - third // 2)
    patterns = np.zeros((10, size, size), dtype=np.float32)
    for k, start in enumerate(starts):
        patterns[k, start:start + thick, :] = 1.0       # horizontal bars
        patterns[3 + k, :, start:start + thick] = 1.0   # vertical bars
    rows = np.arange(size)
    patterns[6, rows, rows] = 1.0
    patterns[7, rows, size - 1 - rows] = 1.0
    centre = (size - 1) / 2
    radius_sq = (rows[:, None] - centre) ** 2 + (rows[None, :] - centre) ** 2
    patterns[8] = np.exp(-radius_sq / (2 * (size / 5) ** 2))
    patterns[9, [0, -1], :] = 1.0
    patterns[9, :, [0, -1]] = 1.0
    return patterns


def make_synthetic(num_examples: int = 1000, seed: int = 0, size: int = 8, noise: float = 0.1):
    """Draw ``num_examples`` images: returns x (N, 1, size, size) float32 in [0, 1], y (N,) int64."""
    if num_examples < 1:
        raise ValueError(f"make_synthetic: num_examples must be >= 1, got {num_examples}")
    if noise < 0:
        raise ValueError(f"make_synthetic: noise must be >= 0, got {noise}")
    rng = np.random.default_rng(seed)
    prototypes = synthetic_prototypes(size)
    y = rng.permutation(np.arange(num_examples) % len(prototypes)).astype(np.int64)
    contrast = rng.uniform(0.7, 1.0, size=(num_examples, 1, 1)).astype(np.float32)
    pixel_noise = rng.normal(0.0, noise, size=(num_examples, size, size)).astype(np.float32)
    x = np.clip(prototypes[y] * contrast + pixel_noise, 0.0, 1.0)
    return x[:, None, :, :], y
