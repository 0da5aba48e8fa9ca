"""Label-preserving image augmentation, drawn from the caller's generator: random shifts and flips.

A classifier that sees each training image once per epoch, always in the same place, can
memorise the pixels; showing it a slightly moved or mirrored copy each time says which changes
must not change the label. For 28x28 clothes (Fashion-MNIST) both are safe: a shirt moved by two
pixels, or seen in a mirror, is still a shirt (for digits a mirror is not: a mirrored 2 is no 2).

    random_shift(x, max_shift, rng)       each image moved by (dy, dx), |dy|, |dx| <= max_shift,
                                          drawn uniformly; pixels moved in are 0 (black). The same
                                          as torchvision's RandomCrop(H, padding=max_shift) with
                                          zero padding: crop an H x W window at a uniform offset
                                          out of the zero-padded (H + 2s) x (W + 2s) image.
    random_horizontal_flip(x, rng, p)     each image mirrored left-right with probability p.
    augment_images(x, rng, max_shift, flip)   both, in this order: the flips first, then the shifts.

Every random number comes from the ``np.random.Generator`` passed in (the training loop's
``rng``), in a documented order, so a run repeats exactly from its seed and a peer (PyTorch in
``benchmarks/exp_vit.py``) can replay the very same augmented batches:

    random_horizontal_flip:  u = rng.random(N)                           flip where u < p
    random_shift:            offsets = rng.integers(-s, s + 1, (N, 2))   (dy, dx) per image

Images are (N, C, H, W) floating arrays; the result is a new array of the same shape and dtype.
"""
from __future__ import annotations

import numpy as np

__all__ = ["random_shift", "random_horizontal_flip", "augment_images"]


def _check(op: str, x) -> np.ndarray:
    x = np.asarray(x)
    if x.ndim != 4:
        raise ValueError(f"{op}: images must be (N, C, H, W), got shape {x.shape}")
    if x.dtype.kind != "f":
        raise TypeError(f"{op}: images must be floating point, got dtype {x.dtype}")
    return x


def _check_rng(op: str, rng) -> None:
    if not isinstance(rng, np.random.Generator):
        raise TypeError(f"{op}: rng must be a np.random.Generator (the training loop's), got {type(rng).__name__}")


def random_horizontal_flip(x, rng: np.random.Generator, p: float = 0.5) -> np.ndarray:
    """Mirror each image of x (N, C, H, W) left-right with probability ``p`` (one uniform per image)."""
    x = _check("random_horizontal_flip", x)
    _check_rng("random_horizontal_flip", rng)
    if not 0.0 <= p <= 1.0:
        raise ValueError(f"random_horizontal_flip: p must lie in [0, 1], got {p!r}")
    flip = rng.random(len(x)) < p
    out = x.copy()
    out[flip] = x[flip][..., ::-1]
    return out


def random_shift(x, max_shift: int, rng: np.random.Generator) -> np.ndarray:
    """Move each image of x (N, C, H, W) by a uniform (dy, dx) in [-max_shift, max_shift]^2, filling with 0.

    Output pixel (i, j) of image n is input pixel (i + dy_n, j + dx_n), or 0 where that lies
    outside: a crop of the zero-padded image at offset (max_shift + dy, max_shift + dx).
    """
    x = _check("random_shift", x)
    _check_rng("random_shift", rng)
    if isinstance(max_shift, bool) or not isinstance(max_shift, (int, np.integer)) or max_shift < 0:
        raise ValueError(f"random_shift: max_shift must be an integer >= 0, got {max_shift!r}")
    n, c, h, w = x.shape
    s = int(max_shift)
    if s >= min(h, w):
        raise ValueError(f"random_shift: max_shift {s} must be smaller than the image size {h}x{w}")
    offsets = rng.integers(-s, s + 1, size=(n, 2))
    if s == 0 or n == 0:
        return x.copy()
    padded = np.zeros((n, c, h + 2 * s, w + 2 * s), dtype=x.dtype)
    padded[:, :, s:s + h, s:s + w] = x
    rows = (s + offsets[:, 0])[:, None] + np.arange(h)  # (N, H): the padded rows each output row reads
    cols = (s + offsets[:, 1])[:, None] + np.arange(w)  # (N, W)
    images = np.arange(n)[:, None, None]
    # Channels last, so the three index arrays (broadcast to (N, H, W)) pick whole pixels at once.
    windows = padded.transpose(0, 2, 3, 1)[images, rows[:, :, None], cols[:, None, :]]  # (N, H, W, C)
    return np.ascontiguousarray(windows.transpose(0, 3, 1, 2))


def augment_images(x, rng: np.random.Generator, max_shift: int = 0, flip: bool = False) -> np.ndarray:
    """``random_horizontal_flip`` (if ``flip``) then ``random_shift`` (if ``max_shift`` > 0) of x (N, C, H, W).

    With neither, x is returned unchanged and nothing is drawn from ``rng``.
    """
    if flip:
        x = random_horizontal_flip(x, rng)
    if max_shift:
        x = random_shift(x, max_shift, rng)
    return x
