"""Where a vision transformer's [CLS] token looks: its attention over the patches, per head, as a PNG.

One row per image: the image (with its label and the model's prediction), then, for each head
of the *last* block, the weight [CLS] gives each patch, drawn as a heat map over the image on
the patch grid (the weights over the patches sum to 1 minus what [CLS] keeps for itself, which
the panel's title gives); the last panel is the attention rollout (Abnar & Zuidema 2020), which
follows attention through all blocks:

    R = prod_{b = depth .. 1} (A_b + I) / 2     A_b: block b's attention averaged over its heads,
                                                the identity for the residual path around it;
                                                R[0, 1:] is how much each patch reaches [CLS]

(each factor's rows sum to 1, so R's do too). Colours are scaled per panel: a panel shows
where that head looks, not how sharply compared with the others.
"""
from __future__ import annotations

import os
from typing import Sequence

import numpy as np

__all__ = ["attention_rollout", "save_cls_attention"]


def attention_rollout(full_attention: np.ndarray) -> np.ndarray:
    """full_attention: (depth, heads, T, T) of one image -> rollout (T, T), rows summing to 1."""
    depth, _, tokens, _ = full_attention.shape
    rollout = np.eye(tokens)
    for block in range(depth):
        mixed = 0.5 * (full_attention[block].mean(axis=0) + np.eye(tokens))
        rollout = mixed @ rollout
    return rollout


def save_cls_attention(images: np.ndarray, cls_maps: np.ndarray, patch: int, labels: Sequence[str],
                       predicted: Sequence[str], out_dir: str, tag: str = "",
                       rollout: np.ndarray = None) -> str:
    """Draw ``cls_maps`` (N, depth, heads, L + 1) from ``cls_attention`` over images (N, C, H, W).

    ``rollout``: optional (N, L + 1) rollout rows of [CLS] (``attention_rollout(...)[0]``), an
    extra last column. Writes ``cls_attention[_tag].png`` in ``out_dir``; returns its path.
    """
    from ...plots import _require, save_figure

    _require("matplotlib")
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    n, _, heads, _ = cls_maps.shape
    _, c, h, w = images.shape
    rows, cols = h // patch, w // patch
    extra = 1 if rollout is not None else 0
    figure, axes = plt.subplots(n, 1 + heads + extra, figsize=(1.6 * (1 + heads + extra), 1.7 * n), squeeze=False)
    for i in range(n):
        picture = images[i].mean(axis=0) if c > 1 else images[i, 0]
        axes[i, 0].imshow(picture, cmap="gray", vmin=0, vmax=1)
        axes[i, 0].set_title(f"{labels[i]}\n(predicted {predicted[i]})", fontsize=7)
        panels = [(f"head {k + 1}", cls_maps[i, -1, k]) for k in range(heads)]
        if rollout is not None:
            panels.append(("rollout", rollout[i]))
        for j, (name, weights) in enumerate(panels, start=1):
            grid = weights[1:].reshape(rows, cols)
            heat = np.kron(grid, np.ones((patch, patch)))  # each patch's weight over its pixels
            axes[i, j].imshow(picture, cmap="gray", vmin=0, vmax=1)
            axes[i, j].imshow(heat, cmap="inferno", alpha=0.65, vmin=0, vmax=max(float(heat.max()), 1e-12))
            axes[i, j].set_title(f"{name}: self {weights[0]:.2f}", fontsize=7)
    for axis in axes.ravel():
        axis.set_xticks([])
        axis.set_yticks([])
    figure.suptitle("[CLS] attention over patches, last block (rollout: all blocks)", fontsize=8)
    return save_figure(figure, os.path.join(out_dir, f"cls_attention_{tag}.png" if tag else "cls_attention.png"), dpi=110)
