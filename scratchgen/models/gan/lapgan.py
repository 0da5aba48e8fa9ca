"""LAPGAN (Denton, Chintala, Szlam & Fergus 2015): a Laplacian pyramid of conditional GANs.

A Laplacian pyramid splits an image I_K (28x28) into a coarse image and band-pass residuals:

    I_{k-1} = d(I_k)            d: 2x2 average pooling          (28 -> 14 -> 7)
    h_k     = I_k - u(I_{k-1})  u: bilinear 2x upsampling        (the detail d threw away)

and I_K = u(u(I_0) + h_1) + h_2 rebuilds it exactly. LAPGAN learns one generative model per
level: a plain GAN for the coarsest image I_0 (7x7), and for k >= 1 a *conditional* GAN whose
generator produces the residual h_k from noise and the upsampled coarser image l_k = u(I_{k-1}),
and whose discriminator judges the pair (h_k, l_k):

    training (each level on real pyramids, independently):
        level 0:  D_0 real I_0       vs  G_0(z)
        level k:  D_k real (h_k, l_k) vs  (G_k(z_k, l_k), l_k),   l_k from the *real* image
    sampling (coarse to fine):
        I_0 = G_0(z_0);  I_k = u(I_{k-1}) + G_k(z_k, u(I_{k-1}))

Each generator only has to model detail at one scale given the scale above, which is much easier
than a whole image at once. Level networks (channels C, noise as one extra input plane, F features):

    G_k: [z_k, l_k] (N, 1 + C, h, w) -> Conv3x3(F) -> ReLU -> Conv3x3(F) -> ReLU -> Conv3x3(C) -> h_k
    D_k: [h_k, l_k] (N, 2C, h, w) -> Conv4x4 s2 (F) -> LeakyReLU -> Conv4x4 s2 (2F) -> LeakyReLU
                                   -> Linear -> logit
"""
from __future__ import annotations

import os
from typing import Dict, List

import numpy as np

from ... import nn, ops
from ...grad_mode import no_grad
from ...tensor import Tensor, as_tensor
from ..base import DataInfo, GenerativeModel, register_model
from .gan import GAN, MLPGAN, algorithm_options, mlp_discriminator, mlp_generator, to_signed, to_unit
from .srgan import downsample, upsample



def pyramid_expand(coarse: np.ndarray) -> np.ndarray:
    """u: bilinear 2x upsampling, (N, C, h, w) -> (N, C, 2h, 2w)."""
    return upsample(coarse, 2, "bilinear")


def laplacian_pyramid(images: np.ndarray, levels: int = 3) -> List[np.ndarray]:
    """[I_0 (coarsest), h_1, ..., h_{levels-1}]: the coarse image and the residuals, finest last."""
    gaussian = [images]
    for _ in range(levels - 1):
        gaussian.append(downsample(gaussian[-1]))
    gaussian.reverse()  # coarsest first
    return [gaussian[0]] + [fine - pyramid_expand(coarse) for coarse, fine in zip(gaussian[:-1], gaussian[1:])]


def reconstruct_pyramid(pyramid: List[np.ndarray]) -> np.ndarray:
    """Inverse of ``laplacian_pyramid``: I_k = u(I_{k-1}) + h_k."""
    image = pyramid[0]
    for residual in pyramid[1:]:
        image = pyramid_expand(image) + residual
    return image


class PyramidLevelGAN(GAN):
    """Level k >= 1: a GAN on residuals h_k, conditioned on the upsampled coarser image l_k.

    ``train_step(x)`` takes the level's full images I_k in [0, 1]; the real pair is
    (h_k, l_k) = (I_k - u(d(I_k)), u(d(I_k))) in the signed range.
    """

    def _noise(self, n, rng):
        c, h, w = self.image_shape
        return rng.standard_normal((n, 1, h, w)).astype(self.dtype)

    def condition_for(self, x, y) -> np.ndarray:
        return pyramid_expand(downsample(to_signed(x)))

    def target_for(self, x) -> np.ndarray:
        signed = to_signed(x)
        return signed - pyramid_expand(downsample(signed))

    def generate(self, z, condition=None) -> Tensor:
        """The residual h_k (N, C, h, w) for noise planes z (N, 1, h, w) and coarse images l_k."""
        return self.generator(ops.concatenate([as_tensor(z), as_tensor(condition)], axis=1))

    def discriminate(self, x, condition=None) -> Tensor:
        logits = self.discriminator(ops.concatenate([as_tensor(x), as_tensor(condition)], axis=1))
        return logits.reshape((logits.shape[0],))

    def refine(self, coarse: np.ndarray, rng) -> np.ndarray:
        """One sampling step: I_k = u(I_{k-1}) + G_k(z, u(I_{k-1})), signed images, clipped to [-1, 1]."""
        condition = pyramid_expand(coarse)
        with no_grad():
            residual = self.generate(self._noise(len(coarse), rng), condition).data
        return np.clip(condition + residual, -1.0, 1.0)

    def sample(self, n, rng, y=None, batch_size: int = 500):
        raise NotImplementedError("a pyramid level refines coarser images (refine); sample from the LAPGAN instead")


def level_generator(channels: int, features: int, rng, dtype=np.float32) -> nn.Module:
    return nn.Sequential(
        nn.Conv2d(channels + 1, features, 3, padding=1, rng=rng, dtype=dtype, init="he_uniform"), nn.ReLU(),
        nn.Conv2d(features, features, 3, padding=1, rng=rng, dtype=dtype, init="he_uniform"), nn.ReLU(),
        nn.Conv2d(features, channels, 3, padding=1, rng=rng, dtype=dtype),
    )


def level_discriminator(channels: int, height: int, width: int, features: int, rng, dtype=np.float32) -> nn.Module:
    def halve(n):  # Conv2d(kernel 4, stride 2, padding 1) output size
        return (n + 2 - 4) // 2 + 1

    h, w = halve(halve(height)), halve(halve(width))
    return nn.Sequential(
        nn.Conv2d(2 * channels, features, 4, stride=2, padding=1, rng=rng, dtype=dtype), nn.LeakyReLU(0.2),
        nn.Conv2d(features, 2 * features, 4, stride=2, padding=1, rng=rng, dtype=dtype), nn.LeakyReLU(0.2),
        nn.Flatten(), nn.Linear(2 * features * h * w, 1, rng=rng, dtype=dtype),
    )


class LAPGAN(GenerativeModel):
    """A coarsest-level MLP GAN plus ``levels - 1`` PyramidLevelGANs, trained side by side on each batch."""

    cli_name = "lapgan"

    def __init__(self, levels: List[GAN]):
        super().__init__()
        self.levels = nn.Sequential(*levels)
        self.image_shape = levels[-1].image_shape
        self.optimizers = {f"level{k}_{name}": opt for k, level in enumerate(levels) for name, opt in level.optimizers.items()}

    def _gaussian_pyramid(self, x: np.ndarray) -> List[np.ndarray]:
        """[I_0, ..., I_{K}] coarsest first, images in [0, 1]."""
        images = [np.asarray(x, dtype=self.levels[0].dtype)]
        for _ in range(len(self.levels) - 1):
            images.append(downsample(images[-1]))
        return images[::-1]

    def train_step(self, x, y, rng) -> Dict[str, float]:
        if tuple(np.shape(x)[1:]) != self.image_shape:
            raise ValueError(f"LAPGAN: expected images (N, {', '.join(map(str, self.image_shape))}), got shape {tuple(np.shape(x))}")
        losses = {}
        for k, (level, images) in enumerate(zip(self.levels, self._gaussian_pyramid(x))):
            for name, value in level.train_step(images, y, rng).items():
                losses[f"level{k}_{name}"] = value
        return losses

    def sample_pyramid(self, n: int, rng) -> List[np.ndarray]:
        """The images of every level for n samples, coarsest first, each (n, C, h_k, w_k) in [0, 1]."""
        self.eval()
        image = to_signed(self.levels[0].sample(n, rng))
        images = [image]
        for level in list(self.levels)[1:]:
            image = level.refine(image, rng)
            images.append(image)
        return [to_unit(i) for i in images]

    def sample(self, n, rng, y=None, batch_size: int = 500) -> np.ndarray:
        return np.concatenate([self.sample_pyramid(min(batch_size, n - s), rng)[-1] for s in range(0, n, batch_size)])

    def evaluate(self, x, y, rng) -> Dict[str, float]:
        metrics = {}
        for k, (level, images) in enumerate(zip(self.levels, self._gaussian_pyramid(x[:1000]))):
            metrics.update({f"level{k}_{name}": v for name, v in level.evaluate(images, y[:1000], rng).items()})
        return metrics

    def save_pictures(self, out_dir, data, rng, tag: str = "") -> List[str]:
        """lapgan_pyramid: one column per sample; rows = levels coarse to fine (enlarged to full size)."""
        from ...plots import save_image_grid

        pyramid = self.sample_pyramid(10, np.random.default_rng(0))
        size = self.image_shape[1:]
        rows = [upsample(level, size[0] // level.shape[2], "nearest") for level in pyramid]
        path = os.path.join(out_dir, f"lapgan_pyramid_{tag or 'final'}.png")
        return [save_image_grid(np.concatenate(rows), path, nrow=10)]

    @property
    def curve_groups(self):
        """Each level's losses and discriminator outputs (the loop draws them, one picture per group)."""
        return {f"level{k}_{group}": tuple(f"level{k}_{name}" for name in names)
                for k in range(len(self.levels)) for group, names in GAN.curve_groups.items()}


LAPGAN_DEFAULTS = {"levels": 3, "latent_dim": 64, "hidden": 256, "features": 16, "lr": 2e-4, "beta1": 0.5,
                   "generator_loss": "non_saturating", "d_steps": 1}


@register_model("lapgan", family="gan", description="LAPGAN (Denton et al. 2015): Laplacian pyramid of conditional GANs (7 -> 14 -> 28)",
                defaults=LAPGAN_DEFAULTS)
def build_lapgan(config: Dict, data_info: DataInfo, rng, dtype=np.float32) -> LAPGAN:
    rng = np.random.default_rng(rng)
    c, h, w = data_info.image_shape
    levels = int(config["levels"])
    scale = 2 ** (levels - 1)
    if levels < 2 or h % scale or w % scale:
        raise ValueError(f"lapgan: {levels} levels need image sides divisible by {scale}, got {h}x{w}")
    common = algorithm_options(config, rng, dtype)
    coarse_shape = (c, h // scale, w // scale)
    models: List[GAN] = [MLPGAN(
        mlp_generator(config["latent_dim"], config["hidden"], coarse_shape, rng, dtype),
        mlp_discriminator(coarse_shape, config["hidden"], rng, dtype),
        coarse_shape, config["latent_dim"], **common,
    )]
    for k in range(1, levels):
        shape = (c, coarse_shape[1] * 2**k, coarse_shape[2] * 2**k)
        models.append(PyramidLevelGAN(
            level_generator(c, config["features"], rng, dtype),
            level_discriminator(c, shape[1], shape[2], config["features"], rng, dtype),
            shape, latent_dim=shape[1] * shape[2], **common,
        ))
    return LAPGAN(models)
