"""Denoising autoencoder (Vincent et al. 2008/2010): reconstruct the clean x from a corrupted copy.

Training draws x_tilde ~ C(x_tilde | x) and minimises the reconstruction loss of the *clean*
input from the *corrupted* one:

    loss(x, x_tilde) = l(x, g(f(x_tilde)))       (l = BCE or squared error, as in autoencoder.py)

To undo the noise the model must learn where clean data lie, so even an overcomplete code
cannot simply copy its input. Corruptions C, each a deterministic function of explicit noise
(so the loss can be gradchecked with the noise held fixed):

    "gaussian"          x_tilde = clip(x + level * n, 0, 1),  n ~ N(0, 1)      (additive noise)
    "masking"           x_tilde = x * 1[u >= level],          u ~ U[0, 1)      (drop a fraction `level`)
    "salt_and_pepper"   x_tilde = 0 if u < level/2, 1 if level/2 <= u < level, else x,  u ~ U[0, 1)
"""
from __future__ import annotations

import os
from typing import Dict

import numpy as np

from ...backend import get_array_module
from ...metrics import denoising_psnr
from ...gradcheck import register_case
from ..image_model import parameter_case, reconstruction_grid
from .autoencoder import Autoencoder, _AE_DEFAULTS, _common
from ..base import DataInfo, register_model

__all__ = ["CORRUPTIONS", "corruption_noise", "corrupt", "DenoisingAutoencoder"]

CORRUPTIONS = ("gaussian", "masking", "salt_and_pepper")


def _check_kind(kind: str, level: float) -> None:
    if kind not in CORRUPTIONS:
        raise ValueError(f"corrupt: unknown corruption {kind!r}; choose one of {', '.join(CORRUPTIONS)}")
    if kind != "gaussian" and not 0.0 <= level <= 1.0:
        raise ValueError(f"corrupt: the {kind} level is a fraction of inputs and must lie in [0, 1], got {level}")
    if kind == "gaussian" and level < 0:
        raise ValueError(f"corrupt: the gaussian level is a standard deviation and must be >= 0, got {level}")


def corruption_noise(kind: str, shape, rng: np.random.Generator, dtype=np.float32) -> np.ndarray:
    """The noise ``corrupt`` needs: N(0, 1) for "gaussian", U[0, 1) otherwise, of ``shape``."""
    _check_kind(kind, 0.0)
    if kind == "gaussian":
        return rng.standard_normal(shape).astype(dtype)
    return rng.random(shape, dtype=np.float64).astype(dtype)


def corrupt(x, kind: str, level: float, noise) -> object:
    """x_tilde = C(x; noise) for x: (N, D) or images (any shape) and ``noise`` of x's shape.

    See the module docstring for the three corruptions. Returns a new array of x's shape and dtype.
    """
    _check_kind(kind, level)
    xp = get_array_module(x)
    noise = xp.asarray(noise)
    if noise.shape != x.shape:
        raise ValueError(f"corrupt: noise has shape {noise.shape}, x has shape {x.shape}")
    if kind == "gaussian":
        return xp.clip(x + x.dtype.type(level) * noise.astype(x.dtype), 0, 1)
    if kind == "masking":
        return x * (noise >= level)
    salt_or_pepper = xp.where(noise < 0.5 * level, 0, 1).astype(x.dtype)
    return xp.where(noise < level, salt_or_pepper, x)


class DenoisingAutoencoder(Autoencoder):
    """Autoencoder trained to map C(x) back to x. corruption: one of ``CORRUPTIONS``; level: its strength."""

    def __init__(self, image_shape, hidden: int = 128, corruption: str = "gaussian", level: float = 0.3, **kwargs):
        super().__init__(image_shape, hidden=hidden, **kwargs)
        _check_kind(corruption, level)
        self.corruption, self.level = corruption, float(level)

    def corrupt_batch(self, x, rng: np.random.Generator):
        """x_tilde for a batch (array of x's shape), noise drawn from ``rng``."""
        noise = corruption_noise(self.corruption, x.shape, rng, x.dtype)
        return corrupt(x, self.corruption, self.level, get_array_module(x).asarray(noise))

    def train_step(self, x, y, rng: np.random.Generator) -> Dict[str, float]:
        batch = self.training_batch(x, rng)
        loss, parts = self.loss(batch, x_input=self.corrupt_batch(batch, rng))
        return self.optimize(loss, parts)

    def evaluate(self, x, y, rng: np.random.Generator, batch_size: int = 1000) -> Dict[str, float]:
        """The autoencoder metrics on clean x, plus PSNR (dB) of corrupted and of denoised x."""
        metrics = super().evaluate(x, y, rng, batch_size)
        clean = np.asarray(x, dtype=self.dtype)
        noisy = self.corrupt_batch(clean, rng)
        metrics.update(denoising_psnr(self.reconstruct, clean, noisy))
        return metrics

    def save_pictures(self, out_dir, data, rng: np.random.Generator, tag: str = ""):
        """The autoencoder's pictures plus ``denoising``: rows of corrupted inputs above their reconstructions."""
        from ...plots import save_image_grid

        paths = super().save_pictures(out_dir, data, rng, tag)
        clean = np.asarray(data.test.x[:50], dtype=self.dtype)
        noisy = self.corrupt_batch(clean, rng)
        grid = reconstruction_grid(noisy, self.reconstruct(noisy), per_row=10)
        name = f"denoising_{tag}.png" if tag else "denoising.png"
        paths.append(save_image_grid(grid, os.path.join(out_dir, name), nrow=10, scale=max(1, 84 // self.image_shape[1])))
        return paths


@register_model("denoising-ae", family="autoencoder",
                defaults={**_AE_DEFAULTS, "hidden": 128, "corruption": "gaussian", "level": 0.3},
                description="denoising autoencoder (gaussian, masking or salt_and_pepper corruption)")
def build_denoising_autoencoder(config: Dict, data_info: DataInfo, rng) -> DenoisingAutoencoder:
    return DenoisingAutoencoder(data_info.image_shape, hidden=int(config["hidden"]), corruption=config["corruption"],
                                level=float(config["level"]), num_classes=data_info.num_classes, rng=rng, **_common(config))


# ---- gradcheck case: the loss with the corruption noise held fixed --------------------------------------
def _tiny_case(rng, corruption: str):
    model = DenoisingAutoencoder((1, 2, 3), hidden=4, corruption=corruption, level=0.4, rng=rng, dtype=np.float64)
    x = rng.uniform(0.05, 0.95, (5, 6))
    x_tilde = corrupt(x, corruption, 0.4, corruption_noise(corruption, x.shape, rng, np.float64))
    return parameter_case(model, lambda: model.loss(x, x_input=x_tilde)[0])


for _kind in CORRUPTIONS:
    register_case(f"denoising_ae_{_kind}_loss")(lambda rng, kind=_kind: _tiny_case(rng, kind))
