"""Generative adversarial networks: a generator G(z) and a discriminator D(x) in a two-player game.

In reading order:
    gan.py      the algorithm: k discriminator steps per generator step, minimax or
                non-saturating generator loss (losses from logits), the MLP GAN
    dcgan.py    transposed convolutions and batch norm (Radford et al. 2016)
    cgan.py     G and D both see the class label
    srgan.py    super-resolution: G maps a low-resolution image to a high one; content + adversarial loss
    lapgan.py   a Laplacian pyramid of conditional GANs, coarse to fine (Denton et al. 2015)
"""
from .cgan import ConditionalGAN
from .dcgan import DCGAN
from .gan import GAN, MLPGAN
from .lapgan import LAPGAN
from .srgan import SRGAN

__all__ = ["GAN", "MLPGAN", "DCGAN", "ConditionalGAN", "SRGAN", "LAPGAN"]  # importing them registers the models
