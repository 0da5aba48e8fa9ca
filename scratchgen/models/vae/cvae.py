"""Conditional VAE (Sohn et al. 2015): encoder and decoder both see the label.

    q(z | x, y) = N(mu(x, y), diag exp(logvar(x, y)))        encoder input [x, onehot(y)]: (N, D + K)
    p(x | z, y) = Bernoulli(sigmoid(decoder(z, y)))           decoder input [z, onehot(y)]: (N, latent + K)
    p(z) = N(0, I)

    loss = -log p(x | z, y) + beta * KL(q(z | x, y) || p(z)),   z = mu + exp(0.5 logvar) eps

Because y is given, z only has to carry what the label does not say (the style: slant, width,
thickness), so ``sample(n, rng, y)`` draws the digit you ask for, and the style grid (rows =
one z each, columns = the K labels) shows the same style across every class.

Everything else (ELBO, importance weights, pictures) is the VAE's, with y threaded through the
two hooks ``_encoder_input`` and ``_decoder_input``.
"""
from __future__ import annotations

import os
from typing import Dict

import numpy as np

from ...device import to_numpy
from ... import ops
from ...grad_mode import no_grad
from ...gradcheck import register_case
from ...tensor import Tensor
from ...data.transforms import one_hot
from ..image_model import parameter_case
from ..base import DataInfo, register_model
from .vae import VAE, _VAE_DEFAULTS, _vae_kwargs

__all__ = ["CVAE"]


class CVAE(VAE):
    """MLP VAE conditioned on integer labels y in [0, num_classes). Shapes as in ``VAE``, plus K = num_classes."""

    def __init__(self, image_shape, num_classes: int = 10, **kwargs):
        if int(num_classes) < 2:
            raise ValueError(f"CVAE: num_classes must be >= 2, got {num_classes}")
        super().__init__(image_shape, network_options={"num_classes": int(num_classes)}, **kwargs)

    def _build_networks(self, rng, num_classes: int = 10) -> None:
        self.num_classes = num_classes
        self.condition_size = num_classes
        super()._build_networks(rng)

    def _one_hot(self, y, n: int):
        if y is None:
            raise ValueError("CVAE: labels y are required (the encoder and decoder are conditioned on them)")
        y = y.data if isinstance(y, Tensor) else y
        if len(y) != n:
            raise ValueError(f"CVAE: {n} examples but {len(y)} labels")
        return one_hot(np.asarray(y.get() if hasattr(y, "get") else y).astype(np.int64), self.num_classes,
                       like=self._xp().zeros(0, dtype=self.dtype))

    def _encoder_input(self, x: Tensor, y) -> Tensor:
        return ops.concatenate([x, Tensor(self._one_hot(y, x.shape[0]))], axis=1)

    def _decoder_input(self, z: Tensor, y) -> Tensor:
        return ops.concatenate([z, Tensor(self._one_hot(y, z.shape[0]))], axis=1)

    def condition_labels(self, y):
        return y

    def sample(self, n: int, rng: np.random.Generator, y=None) -> np.ndarray:
        """n mean images for labels y (default: 0, 1, ..., K-1 repeated), z ~ N(0, I)."""
        if y is None:
            y = np.arange(n) % self.num_classes
        return super().sample(n, rng, y=np.asarray(y))

    def style_grid(self, z) -> np.ndarray:
        """Decode each z (R, latent) with every label: (R * K, C, H, W), row r = style z_r, column k = label k."""
        z = self._xp().asarray(z, dtype=self.dtype)
        r = len(z)
        z_rep = self._xp().repeat(z, self.num_classes, axis=0)
        y_rep = np.tile(np.arange(self.num_classes), r)
        with no_grad():
            return self.as_images(self.mean_image(self.decode(z_rep, y_rep).data))

    def save_pictures(self, out_dir, data, rng: np.random.Generator, tag: str = ""):
        """The VAE's pictures plus ``styles``: rows = one z each (prior draws, then test posteriors), columns = labels."""
        from ...plots import save_image_grid

        paths = super().save_pictures(out_dir, data, rng, tag)
        z_prior = rng.standard_normal((5, self.latent_dim))
        z_posterior = to_numpy(self.encode_mean(data.test.x[:5], data.test.y[:5]))
        grid = self.style_grid(np.concatenate([z_prior, z_posterior]))
        name = f"styles_{tag}.png" if tag else "styles.png"
        paths.append(save_image_grid(grid, os.path.join(out_dir, name), nrow=self.num_classes, scale=max(1, 84 // self.image_shape[1])))
        return paths


@register_model("cvae", family="vae", defaults=dict(_VAE_DEFAULTS),
                description="conditional VAE: encoder and decoder see the one-hot label; style x label grids")
def build_cvae(config: Dict, data_info: DataInfo, rng) -> CVAE:
    return CVAE(data_info.image_shape, num_classes=data_info.num_classes, hidden_layers=int(config["hidden_layers"]),
                rng=rng, **_vae_kwargs(config))


def _tiny_case(rng):
    model = CVAE((1, 2, 3), num_classes=3, hidden=4, latent=2, activation="tanh", rng=rng, dtype=np.float64)
    x = rng.uniform(0.05, 0.95, (4, 6))
    y = np.array([0, 2, 1, 2])
    eps = rng.standard_normal((4, 2))
    return parameter_case(model, lambda: model.loss(x, eps, y)[0])


register_case("cvae_loss")(_tiny_case)
