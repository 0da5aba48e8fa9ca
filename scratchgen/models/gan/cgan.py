"""Conditional GAN (Mirza & Osindero 2014): both networks see the class label.

The game becomes

    min_G max_D  E_{(x, y) ~ p_data} log D(x | y) + E_{z, y} log(1 - D(G(z | y) | y)),

so for each label y the generator learns p(x | y), and the discriminator rejects a good image of
the *wrong* class as well as a bad image. Here the label enters both networks as a one-hot
vector e_y joined to their input:

    G: [z, e_y] (N, latent + K) -> network -> (N, C, H, W)
    D: [x, e_y] -> network -> logit

Two architectures (``arch``):
    "mlp"   the MLPs of ``gan.py``, as in the paper:  D sees [flatten(x), e_y] (N, CHW + K);
    "conv"  the DCGAN networks of ``dcgan.py`` (default: far better images for the same steps):
            G's first Linear takes [z, e_y]; D sees the image with K constant label planes stacked
            on as extra channels, [x, e_y broadcast to (K, H, W)] of shape (N, C + K, H, W).

Labels for the generator's samples during training are those of the real batch (so p(y) is the
data's); ``sample(n, rng, y)`` draws any labels asked for, uniform ones when ``y`` is None.
``save_pictures`` writes a class-conditional grid: one row per class, fixed noise per column.
"""
from __future__ import annotations

import os
from typing import Dict, List

import numpy as np

from ... import ops
from ...grad_mode import no_grad
from ...tensor import Tensor, as_tensor
from ..base import DataInfo, register_model
from .dcgan import dcgan_discriminator, dcgan_generator
from ...data.transforms import one_hot
from .gan import GAN, algorithm_options, mlp_discriminator, mlp_generator, to_unit



class ConditionalGAN(GAN):
    """GAN with the one-hot class label e_y given to G (with z) and to D (with x)."""

    cli_name = "cgan"

    def __init__(self, generator, discriminator, image_shape, latent_dim: int, num_classes: int, arch: str = "mlp", **kwargs):
        super().__init__(generator, discriminator, image_shape, latent_dim, **kwargs)
        if arch not in ARCHITECTURES:
            raise ValueError(f"ConditionalGAN: arch must be one of {ARCHITECTURES}, got {arch!r}")
        self.num_classes, self.arch = int(num_classes), arch

    def condition_for(self, x, y) -> np.ndarray:
        if y is None:
            raise ValueError("ConditionalGAN: training needs the labels y of the batch, got None")
        return one_hot(y, self.num_classes, self.dtype)

    def sample_condition(self, n: int, rng, labels=None) -> np.ndarray:
        if labels is None:
            labels = rng.integers(0, self.num_classes, n)
        return one_hot(labels, self.num_classes, self.dtype)

    def generate(self, z, condition=None) -> Tensor:
        return self.generator(ops.concatenate([as_tensor(z), as_tensor(condition)], axis=1))

    def discriminate(self, x, condition=None) -> Tensor:
        x = as_tensor(x)
        if self.arch == "mlp":
            inputs = ops.concatenate([x.reshape((x.shape[0], -1)), as_tensor(condition)], axis=1)
        else:  # label planes: channel C + k is all ones for class k, zeros otherwise
            planes = np.broadcast_to(condition[:, :, None, None], condition.shape + tuple(x.shape[2:]))
            inputs = ops.concatenate([x, Tensor(np.ascontiguousarray(planes))], axis=1)
        logits = self.discriminator(inputs)
        return logits.reshape((logits.shape[0],))

    def fixed_labels(self) -> np.ndarray:
        return np.arange(len(self.fixed_noise)) % self.num_classes

    def class_grid(self, per_class: int = 10) -> np.ndarray:
        """Images (K * per_class, C, H, W): row k holds class k, column j uses the same noise for every class."""
        noise = np.repeat(self.fixed_noise[None, :per_class], self.num_classes, axis=0).reshape(-1, self.latent_dim)
        labels = np.repeat(np.arange(self.num_classes), per_class)
        self.eval()
        with no_grad():
            return to_unit(self.generate(Tensor(noise), one_hot(labels, self.num_classes, self.dtype)).data)

    def save_pictures(self, out_dir, data, rng, tag: str = "") -> List[str]:
        from ...plots import save_image_grid

        path = os.path.join(out_dir, f"samples_by_class_{tag or 'final'}.png")
        return [save_image_grid(self.class_grid(), path, nrow=10)]


ARCHITECTURES = ("mlp", "conv")
CGAN_DEFAULTS = {"arch": "conv", "latent_dim": 100, "hidden": 256, "width": 64, "lr": 2e-4, "beta1": 0.5,
                 "generator_loss": "non_saturating", "d_steps": 1}


@register_model("cgan", family="gan", description="Conditional GAN (Mirza & Osindero 2014): one-hot label into G and D (DCGAN or MLP networks)",
                defaults=CGAN_DEFAULTS)
def build_cgan(config: Dict, data_info: DataInfo, rng, dtype=np.float32) -> ConditionalGAN:
    rng = np.random.default_rng(rng)
    shape, k = tuple(data_info.image_shape), int(data_info.num_classes)
    if k < 2:
        raise ValueError(f"cgan: the dataset must have at least 2 classes to condition on, got {k}")
    if config["arch"] == "mlp":
        generator = mlp_generator(config["latent_dim"], config["hidden"], shape, rng, dtype, condition_dim=k)
        discriminator = mlp_discriminator(shape, config["hidden"], rng, dtype, condition_dim=k)
    elif config["arch"] == "conv":
        generator = dcgan_generator(config["latent_dim"], shape, config["width"], rng, dtype, condition_dim=k)
        discriminator = dcgan_discriminator(shape, config["width"], rng, dtype, in_channels=shape[0] + k)
    else:
        raise ValueError(f"cgan: arch must be one of {ARCHITECTURES}, got {config['arch']!r}")
    return ConditionalGAN(generator, discriminator, shape, config["latent_dim"], k, arch=config["arch"],
                          **algorithm_options(config, rng, dtype))
