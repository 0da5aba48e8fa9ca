"""Pictures as PNG files: image grids and training curves.

Pillow writes the grids (fast, no figure machinery); matplotlib draws curves and scatter plots.
Both come with the ``plot`` extra (``pip install scratchgen[plot]``); the core library never
imports them, and a missing one raises an error that names the extra to install.
"""
from __future__ import annotations

import os
from typing import Dict, Optional, Sequence

import numpy as np

from .device import to_numpy


def _require(module_name: str):
    try:
        return __import__(module_name)
    except ImportError as error:
        raise ImportError(f"plots need {module_name}: install it with `pip install scratchgen[plot]`") from error


def image_grid(images, nrow: Optional[int] = None, padding: int = 1, pad_value: float = 1.0) -> np.ndarray:
    """Tile images into one array.

    images: (N, C, H, W) or (N, H, W), values in [0, 1] (clipped). Returns (rows*(H+p)+p,
    cols*(W+p)+p) for one channel or (..., 3) for three. ``nrow`` is the number of images per row.
    """
    images = to_numpy(images).astype(np.float32)
    if images.ndim == 3:
        images = images[:, None]
    if images.ndim != 4 or images.shape[1] not in (1, 3):
        raise ValueError(f"image_grid: images must be (N, H, W) or (N, 1|3, H, W), got shape {images.shape}")
    n, c, h, w = images.shape
    ncol = nrow or int(np.ceil(np.sqrt(n)))
    nrows = int(np.ceil(n / ncol))
    grid = np.full((c, nrows * (h + padding) + padding, ncol * (w + padding) + padding), pad_value, np.float32)
    for i in range(n):
        r, col = divmod(i, ncol)
        top, left = padding + r * (h + padding), padding + col * (w + padding)
        grid[:, top : top + h, left : left + w] = images[i]
    grid = np.clip(grid, 0.0, 1.0)
    return grid[0] if c == 1 else grid.transpose(1, 2, 0)


def save_image_grid(images, path: str, nrow: Optional[int] = None, scale: int = 3, padding: int = 1) -> str:
    """Write ``image_grid(images)`` as a PNG, each pixel enlarged ``scale`` times. Returns ``path``."""
    _require("PIL")
    from PIL import Image

    grid = image_grid(images, nrow=nrow, padding=padding)
    pixels = (grid * 255 + 0.5).astype(np.uint8)
    if scale > 1:
        pixels = pixels.repeat(scale, axis=0).repeat(scale, axis=1)
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    Image.fromarray(pixels).save(path)
    return path


def save_curves(curves: Dict[str, Sequence[float]], path: str, xlabel: str = "step", ylabel: str = "loss",
                title: str = "", logy: bool = False) -> str:
    """Line plot of named series (e.g. {"train": [...], "validation": [...]}) as a PNG."""
    _require("matplotlib")
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(figsize=(6, 4))
    for name, values in curves.items():
        values = np.asarray(values, dtype=float)
        axes.plot(np.arange(1, len(values) + 1), values, label=name)
    axes.set_xlabel(xlabel)
    axes.set_ylabel(ylabel)
    if logy:
        axes.set_yscale("log")
    if title:
        axes.set_title(title)
    if len(curves) > 1:
        axes.legend()
    axes.grid(alpha=0.3)
    figure.tight_layout()
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    figure.savefig(path, dpi=100)
    plt.close(figure)
    return path


def save_scatter(points, labels, path: str, title: str = "") -> str:
    """2-D scatter of points (N, 2) coloured by integer labels (N,), as a PNG."""
    _require("matplotlib")
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    points, labels = to_numpy(points), to_numpy(labels)
    figure, axes = plt.subplots(figsize=(5, 5))
    scatter = axes.scatter(points[:, 0], points[:, 1], c=labels, cmap="tab10", s=4)
    figure.colorbar(scatter, ax=axes)
    if title:
        axes.set_title(title)
    figure.tight_layout()
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    figure.savefig(path, dpi=100)
    plt.close(figure)
    return path


def save_latent_scatter(codes, labels, path: str, title: str = "") -> str:
    """Scatter of ``metrics.project_2d(codes)`` (the codes if 2-D, else their first two principal
    components) coloured by label, as a PNG. Returns the path."""
    from .metrics import project_2d

    return save_scatter(project_2d(codes), to_numpy(labels), path, title=title)


def moving_average(values, window: int) -> np.ndarray:
    """The running mean over ``window`` consecutive values (shorter input: returned unchanged).

    What loss curves show: one step's loss is noisy, the average of 20 is a trend.
    """
    values = np.asarray(values, dtype=float)
    if len(values) < window:
        return values
    return np.convolve(values, np.ones(window) / window, mode="valid")
