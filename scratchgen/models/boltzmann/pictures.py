"""The pictures of an RBM (``RBMBase.save_pictures``), as PNG files in ``out_dir``.

    filters_<tag>.png           the first 100 hidden units' weights as images, each scaled to [0, 1]
    gibbs_from_noise_<tag>.png  8 chains (rows) from random states, after 1, 2, 5, ..., 1000 sweeps (columns)
    gibbs_from_data_<tag>.png   the same from 8 test images: how fast the chains forget the data
    reconstructions_<tag>.png   16 test images (top row) and their mean-field reconstructions
    curve_<metric>_<tag>.png    the per-epoch metrics that ``fit(verbose=True)`` recorded
"""
from __future__ import annotations

import os
from typing import List

import numpy as np

from ...device import to_numpy
from ...backend import get_array_module
from .helpers import weight_tiles

__all__ = ["save_rbm_pictures", "gibbs_snapshots", "SNAPSHOT_STEPS"]

SNAPSHOT_STEPS = (1, 2, 5, 10, 50, 100, 500, 1000)


def gibbs_snapshots(model, v, steps, rng):
    """Visible means (data space) after each count in ``steps`` (increasing) of Gibbs sweeps from v.

    v: (chains, V) model-space states. Returns (chains * len(steps), C, H, W), chain by chain, for a
    grid with one chain per row.
    """
    frames, done = [], 0
    v_mean = v
    for target in steps:
        if target > done:
            v_mean, v = model.gibbs(v, target - done, rng)
        done = target
        frames.append(model.to_data_space(v_mean))
    stacked = get_array_module(v).stack(frames, axis=1)  # (chains, len(steps), V)
    return stacked.reshape((-1,) + model.image_shape)


def save_rbm_pictures(model, out_dir, data, rng, tag: str = "") -> List[str]:
    """Write the pictures listed in the module docstring; ``data`` (a DatasetSplits) may be None."""
    from ... import plots

    rng = np.random.default_rng(rng)
    os.makedirs(out_dir, exist_ok=True)
    suffix = f"_{tag}" if tag else ""
    path = lambda what: os.path.join(out_dir, f"{what}{suffix}.png")  # noqa: E731
    steps = SNAPSHOT_STEPS
    paths = [plots.save_image_grid(weight_tiles(model.weight.data, model.image_shape), path("filters"))]
    chains = gibbs_snapshots(model, model.initial_visible(8, rng), steps, rng)
    paths.append(plots.save_image_grid(to_numpy(chains), path("gibbs_from_noise"), nrow=len(steps)))
    if data is not None:
        test = model.check_data(data.test.x[:8], "save_pictures")
        chains = gibbs_snapshots(model, test, steps, rng)
        paths.append(plots.save_image_grid(to_numpy(chains), path("gibbs_from_data"), nrow=len(steps)))
        originals = np.asarray(data.test.x[:16]).reshape((-1,) + model.image_shape)
        pairs = np.concatenate([originals, to_numpy(model.reconstruct(originals))])
        paths.append(plots.save_image_grid(pairs, path("reconstructions"), nrow=16))
    for key in [k for k in (model.history[0] if model.history else {}) if k != "epoch"]:
        values = [record[key] for record in model.history if key in record]
        paths.append(plots.save_curves({key: values}, path(f"curve_{key}"), xlabel="epoch", ylabel=key))
    return paths
