"""Pictures as PNG files: image grids, training curves and gradient checks.

Pillow writes the grids (fast, no figure machinery); matplotlib draws curves and scatter plots.
Both come with the ``plot`` extra (``pip install scratchgen[plot]``); the core library never
imports them, and a missing one raises an error that names the extra to install.
"""
from __future__ import annotations

import os
import textwrap
from typing import Dict, Optional, Sequence

import numpy as np

from .device import to_numpy
from .optional import require


def _require(module_name: str):
    return require(module_name, "plot", "plots")


def save_figure(figure, path: str, dpi: int = 100) -> str:
    """Lay out, write (making its folder) and close a matplotlib figure; returns ``path``."""
    import matplotlib.pyplot as plt

    figure.tight_layout()
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    figure.savefig(path, dpi=dpi)
    plt.close(figure)
    return path


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
    return save_figure(figure, path)


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
    return save_figure(figure, path)


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


def save_gradient_check(analytic, numeric, error, limit: float, path: str, groups=None, title: str = "",
                        note: str = "") -> str:
    """One gradient check as a PNG: left, analytic against numeric derivative, one point per
    checked element or direction (on the diagonal when they agree); right, each check's relative
    error on a log scale with the pass limit ``limit`` as a line (points above it failed).

    ``analytic``, ``numeric``, ``error``: (checks,); ``groups``: (checks,) ints, e.g. which input
    each check perturbs (one colour each). Errors of exactly 0 are drawn at the bottom edge, infinite
    ones (a derivative that is not finite) at the top; non-finite derivatives are left out on the left.
    """
    _require("matplotlib")
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    analytic, numeric, error = (np.asarray(v, dtype=float) for v in (analytic, numeric, error))
    groups = np.zeros(len(error), dtype=int) if groups is None else np.asarray(groups, dtype=int)
    floor = min(limit * 1e-4, float(error[error > 0].min()) / 2 if (error > 0).any() else limit)
    finite = error[np.isfinite(error)]
    top = 10 * max(limit, float(finite.max()) if len(finite) else limit)
    error = np.where(np.isfinite(error), error, top)  # NaN and inf (a failed check) at the top edge
    figure, (left, right) = plt.subplots(1, 2, figsize=(11, 4.5))
    colours = plt.get_cmap("tab10")
    index = np.arange(len(error))
    for k, group in enumerate(np.unique(groups)):
        mine = groups == group
        drawable = mine & np.isfinite(numeric) & np.isfinite(analytic)
        left.scatter(numeric[drawable], analytic[drawable], s=12, color=colours(k % 10), label=f"input {group}")
        right.scatter(index[mine], np.maximum(error[mine], floor), s=12, color=colours(k % 10), label=f"input {group}")
    failed = error > limit
    if failed.any():
        right.scatter(index[failed], error[failed], s=60, facecolors="none", edgecolors="red", label="failed")
    values = np.concatenate([numeric, analytic])
    values = values[np.isfinite(values)]
    span = [values.min(), values.max()] if len(values) else [0, 1]
    left.plot(span, span, color="grey", linewidth=0.8, zorder=0)
    left.set_xlabel("numeric derivative")
    left.set_ylabel("analytic derivative (backward)")
    left.set_title("analytic vs numeric")
    right.axhline(limit, color="red", linestyle="--", linewidth=1, label=f"pass limit {limit:g}")
    right.set_yscale("log")
    right.set_xlabel("check (element or direction)")
    right.set_ylabel("relative error")
    right.set_title("relative error per check")
    right.legend(fontsize=8, loc="best")
    if 1 < len(np.unique(groups)) <= 10:
        left.legend(fontsize=8, loc="best")
    for axes in (left, right):
        axes.grid(alpha=0.3)
    figure.suptitle("\n".join([title, *textwrap.wrap(note, 150)]), fontsize=9)
    return save_figure(figure, path)
