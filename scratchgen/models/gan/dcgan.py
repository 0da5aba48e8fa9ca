"""DCGAN (Radford, Metz & Chintala 2016): a GAN whose networks are all-convolutional.

The guidelines of the paper, as used here:
* the generator upsamples with *transposed* convolutions of stride 2 (no pooling, no fixed
  upsampling), the discriminator downsamples with convolutions of stride 2;
* batch norm in the generator (all layers but the output) and in the discriminator (all but
  the input layer), so that gradients flow through deep stacks and G does not collapse early;
* ReLU in the generator with tanh on the output, LeakyReLU (slope 0.2) in the discriminator;
* Adam with lr 2e-4 and beta1 = 0.5 (0.9 made training oscillate in the paper), weights from
  N(0, 0.02^2).

Architecture for an image of size (C, H, W) with H and W divisible by 4 (28x28 MNIST/Fashion:
base 7x7; 8x8 digits: base 2x2), ``width`` w (default 64):

    G: z (N, 100) -> Linear -> (N, 2w, H/4, W/4) -> BN -> ReLU
         -> ConvTranspose2d(2w, w, 4, stride 2, padding 1) -> (N, w, H/2, W/2) -> BN -> ReLU
         -> ConvTranspose2d(w, C, 4, stride 2, padding 1)  -> (N, C, H, W) -> tanh
    D: x (N, C, H, W) -> Conv2d(C, w, 4, stride 2, padding 1) -> (N, w, H/2, W/2) -> LeakyReLU
         -> Conv2d(w, 2w, 4, stride 2, padding 1) -> (N, 2w, H/4, W/4) -> BN -> LeakyReLU
         -> Flatten -> Linear(2w H W / 16, 1) -> logit

(A transposed convolution with kernel 4, stride 2, padding 1 exactly doubles the size:
(H - 1) 2 - 2 + 4 = 2H; the convolution with the same settings exactly halves it.)
``benchmarks/bench_dcgan.py`` builds the same networks in PyTorch for the speed comparison.
"""
from __future__ import annotations

from typing import Dict

import numpy as np

from ... import nn
from ..base import DataInfo, register_model
from .gan import GAN, algorithm_options


def _dcgan_init(shape, rng=None, dtype=np.float32, fans=None):
    """N(0, 0.02^2), the DCGAN paper's initialisation for every weight."""
    return nn.init.normal(shape, std=0.02, rng=rng, dtype=dtype)


def check_dcgan_shape(image_shape) -> None:
    c, h, w = image_shape
    if h % 4 or w % 4:
        raise ValueError(
            f"DCGAN: image height and width must be divisible by 4 (two stride-2 layers), got {h}x{w}; "
            f"use 28x28 (MNIST, Fashion-MNIST) or 8x8 (digits)"
        )


def dcgan_generator(latent_dim: int, image_shape, width: int, rng, dtype=np.float32, condition_dim: int = 0) -> nn.Module:
    """z (N, latent_dim [+ condition_dim]) -> images (N, C, H, W) in [-1, 1]."""
    check_dcgan_shape(image_shape)
    c, h, w = image_shape
    base = (2 * width, h // 4, w // 4)
    return nn.Sequential(
        nn.Linear(latent_dim + condition_dim, int(np.prod(base)), rng=rng, dtype=dtype, init=_dcgan_init),
        nn.Reshape(base), nn.BatchNorm2d(2 * width, dtype=dtype), nn.ReLU(),
        nn.ConvTranspose2d(2 * width, width, 4, stride=2, padding=1, rng=rng, dtype=dtype, init=_dcgan_init),
        nn.BatchNorm2d(width, dtype=dtype), nn.ReLU(),
        nn.ConvTranspose2d(width, c, 4, stride=2, padding=1, rng=rng, dtype=dtype, init=_dcgan_init),
        nn.Tanh(),
    )


def dcgan_discriminator(image_shape, width: int, rng, dtype=np.float32, in_channels: int = None, slope: float = 0.2) -> nn.Module:
    """images (N, C, H, W) -> logits (N, 1). ``in_channels`` overrides C (for images with a condition stacked on)."""
    check_dcgan_shape(image_shape)
    c, h, w = image_shape
    c = in_channels or c
    return nn.Sequential(
        nn.Conv2d(c, width, 4, stride=2, padding=1, rng=rng, dtype=dtype, init=_dcgan_init), nn.LeakyReLU(slope),
        nn.Conv2d(width, 2 * width, 4, stride=2, padding=1, rng=rng, dtype=dtype, init=_dcgan_init),
        nn.BatchNorm2d(2 * width, dtype=dtype), nn.LeakyReLU(slope),
        nn.Flatten(),
        nn.Linear(2 * width * (h // 4) * (w // 4), 1, rng=rng, dtype=dtype, init=_dcgan_init),
    )


class DCGAN(GAN):
    """The GAN of ``gan.py`` with the convolutional networks above."""

    cli_name = "dcgan"


DCGAN_DEFAULTS = {"latent_dim": 100, "width": 64, "lr": 2e-4, "beta1": 0.5,
                  "generator_loss": "non_saturating", "d_steps": 1}


@register_model("dcgan", family="gan", description="DCGAN (Radford et al. 2016): transposed-conv generator, strided-conv discriminator, batch norm",
                defaults=DCGAN_DEFAULTS)
def build_dcgan(config: Dict, data_info: DataInfo, rng, dtype=np.float32) -> DCGAN:
    rng = np.random.default_rng(rng)
    shape = tuple(data_info.image_shape)
    return DCGAN(dcgan_generator(config["latent_dim"], shape, config["width"], rng, dtype),
                 dcgan_discriminator(shape, config["width"], rng, dtype),
                 shape, config["latent_dim"], **algorithm_options(config, rng, dtype))
