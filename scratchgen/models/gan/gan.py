"""Generative adversarial networks (Goodfellow et al. 2014): the value function and the alternating algorithm.

A generator G maps noise z ~ N(0, I) to images; a discriminator D maps an image to the
probability that it is real, D(x) = sigmoid(l(x)) with l the *logit* the network outputs.
They play the two-player game

    min_G max_D  V(D, G) = E_{x ~ p_data} log D(x) + E_{z ~ p_z} log(1 - D(G(z))).

For a fixed G the best discriminator is D*(x) = p_data(x) / (p_data(x) + p_g(x)), and then
V(D*, G) = -log 4 + 2 JSD(p_data || p_g), minimal (-log 4) exactly when p_g = p_data
(``scratchgen/experiments/gan_1d.py`` shows both on 1-D Gaussians).

Losses, from logits so that no log(0) can happen (``scratchgen.ops.losses``):

    D:  softplus(-l(x)) + softplus(l(G(z)))    = -log D(x) - log(1 - D(G(z)))
    G minimax:         -softplus(l(G(z)))      =  log(1 - D(G(z)))      (the game as written)
    G non-saturating:   softplus(-l(G(z)))     = -log D(G(z))           (same fixed point, strong
                                                  gradients while D still rejects the samples)

The algorithm of the paper: k discriminator updates, each on a fresh minibatch, then one
generator update. Here every ``train_step`` call (one minibatch) updates D, and every k-th call
also updates G; ``d_steps=k``.

This file holds the machinery every GAN of the package shares (``GAN``: noise, conditioning,
the D and G steps, pictures, curves) and the plain MLP GAN. ``dcgan.py``, ``cgan.py``,
``lapgan.py`` and ``srgan.py`` subclass ``GAN`` and only change the networks, the condition the
networks see, and (for SR-GAN) the generator's loss, which gains a content term.

Images: the data come as x in [0, 1]; the networks work in [-1, 1] (tanh output), so
``real = 2 x - 1`` and samples are mapped back with (g + 1) / 2.
"""
from __future__ import annotations

import os
from typing import Dict, List, Optional

import numpy as np

from ... import nn, ops
from ...grad_mode import no_grad
from ...gradcheck import register_case
from ...optim import Adam
from ...tensor import Tensor
from ..base import DataInfo, GenerativeModel, register_model

GENERATOR_LOSSES = ("non_saturating", "minimax")
EVALUATION_CHUNK = 200  # images per forward pass in ``GAN.evaluate`` (bounds its memory)


def to_signed(x: np.ndarray) -> np.ndarray:
    """Images in [0, 1] -> [-1, 1] (the generator's tanh range); keeps the dtype."""
    return x * x.dtype.type(2) - x.dtype.type(1)


def to_unit(x: np.ndarray) -> np.ndarray:
    """Images in [-1, 1] -> [0, 1], clipped."""
    return np.clip((x + x.dtype.type(1)) * x.dtype.type(0.5), 0.0, 1.0)


def _scalar(t: Tensor) -> float:
    return float(t.data) if np.ndim(t.data) == 0 else float(t.data.reshape(()))


class GAN(GenerativeModel):
    """A GAN: ``generator`` and ``discriminator`` networks plus the alternating training algorithm.

    generator: condition-aware module, noise (N, latent_dim) [+ condition] -> images (N, C, H, W) in [-1, 1]
    discriminator: images (N, C, H, W) [+ condition] -> logits (N, 1) or (N,)

    Subclasses override ``generate``, ``discriminate`` and ``condition_for`` to feed a condition
    (class one-hot, coarse image, low-resolution image) to both networks, and ``generator_loss``
    to add a term to G's loss (SR-GAN's content loss).
    """

    cli_name = "gan"

    def __init__(self, generator: nn.Module, discriminator: nn.Module, image_shape, latent_dim: int,
                 generator_loss: str = "non_saturating", d_steps: int = 1, lr: float = 2e-4,
                 betas=(0.5, 0.999), rng=None, dtype=np.float32):
        super().__init__()
        if generator_loss not in GENERATOR_LOSSES:
            raise ValueError(f"GAN: generator_loss must be one of {GENERATOR_LOSSES}, got {generator_loss!r}")
        if int(d_steps) != d_steps or d_steps < 1:
            raise ValueError(f"GAN: d_steps (discriminator updates per generator update) must be a positive int, got {d_steps!r}")
        self.generator, self.discriminator = generator, discriminator
        self.image_shape, self.latent_dim = tuple(image_shape), int(latent_dim)
        self.generator_loss_kind, self.d_steps = generator_loss, int(d_steps)
        self.dtype = np.dtype(dtype)
        self.optimizers = {
            "generator": Adam(generator.parameters(), lr=lr, betas=betas),
            "discriminator": Adam(discriminator.parameters(), lr=lr, betas=betas),
        }
        # The same noise every epoch, so the sample grids show one set of samples evolving.
        rng = np.random.default_rng(rng)
        noise = self._noise(64, rng)
        if noise is None:
            self.fixed_noise = None
        else:
            self.register_buffer("fixed_noise", noise)
        # D updates since G's last one: a buffer, so a resumed run updates G on the same steps.
        self.register_buffer("d_updates_since_g", np.zeros(1, dtype=np.int64))

    # ---- the hooks subclasses change -------------------------------------------------------------
    def _noise(self, n: int, rng: np.random.Generator) -> Optional[np.ndarray]:
        """z ~ N(0, I): (n, latent_dim). None for a generator without noise (SR-GAN)."""
        if self.latent_dim == 0:
            return None
        return rng.standard_normal((n, self.latent_dim)).astype(self.dtype)

    def condition_for(self, x: np.ndarray, y: np.ndarray):
        """What both networks are conditioned on for the batch (x, y); None for an unconditional GAN."""
        return None

    def target_for(self, x: np.ndarray) -> np.ndarray:
        """What the discriminator should accept as real for images x in [0, 1]: here x in [-1, 1]."""
        return to_signed(x)

    def generate(self, z, condition=None) -> Tensor:
        """G(z | condition): (N, C, H, W) in [-1, 1]."""
        return self.generator(z)

    def discriminate(self, x, condition=None) -> Tensor:
        """The discriminator's logits l(x | condition): (N,)."""
        logits = self.discriminator(x)
        return logits.reshape((logits.shape[0],))

    # ---- the two updates ---------------------------------------------------------------------------
    def discriminator_loss(self, real, fake, condition=None):
        """D's loss on a real and a (detached) fake batch; also the logits, for D(x) and D(G(z))."""
        real_logits = self.discriminate(real, condition)
        fake_logits = self.discriminate(fake, condition)
        return ops.gan_discriminator_loss(real_logits, fake_logits), real_logits, fake_logits

    def generator_loss(self, z, condition=None, real=None):
        """G's loss (minimax or non-saturating) and the fake batch and its logits. ``real`` is for
        subclasses whose loss also compares with the data (SR-GAN's content loss)."""
        fake = self.generate(z, condition)
        fake_logits = self.discriminate(fake, condition)
        return ops.gan_generator_loss(fake_logits, self.generator_loss_kind), fake, fake_logits

    def discriminator_step(self, real: np.ndarray, condition, rng) -> Dict[str, float]:
        """One Adam step on D: real (N, C, H, W) in [-1, 1] against G's samples for the same condition."""
        with no_grad():  # D's update must not flow into G: no graph through G at all
            fake = self.generate(self._noise(len(real), rng), condition).data
        optimizer = self.optimizers["discriminator"]
        optimizer.zero_grad()
        loss, real_logits, fake_logits = self.discriminator_loss(Tensor(real), Tensor(fake), condition)
        loss.backward()
        optimizer.step()
        fake_logits = fake_logits.detach()
        with no_grad():  # G's loss on this fake batch, free: reported on steps without a G update
            self._generator_loss_on_d_batch = _scalar(ops.gan_generator_loss(fake_logits, self.generator_loss_kind))
        return {
            "d_loss": _scalar(loss),
            "d_real": float(ops.sigmoid(real_logits.detach()).data.mean()),
            "d_fake": float(ops.sigmoid(fake_logits).data.mean()),
        }

    def generator_step(self, n: int, condition, rng, real: Optional[np.ndarray] = None) -> float:
        """One Adam step on G with D frozen (its weights need no gradient, only its input does)."""
        optimizer = self.optimizers["generator"]
        optimizer.zero_grad()
        self.discriminator.requires_grad_(False)
        try:
            loss, _, _ = self.generator_loss(self._noise(n, rng), condition, real)
            loss.backward()
        finally:
            self.discriminator.requires_grad_(True)
        optimizer.step()
        return _scalar(loss)

    def adversarial_step(self, real: np.ndarray, condition, rng) -> Dict[str, float]:
        """One round of the algorithm: a D update, and a G update after every ``d_steps`` D updates.

        ``g_loss`` is G's loss at its update; between updates, G's loss on the D step's fake batch.
        """
        stats = self.discriminator_step(real, condition, rng)
        self.d_updates_since_g[0] += 1
        if self.d_updates_since_g[0] >= self.d_steps:
            self.d_updates_since_g[0] = 0
            stats["g_loss"] = self.generator_step(len(real), condition, rng, real)
        else:
            stats["g_loss"] = self._generator_loss_on_d_batch
        return stats

    def train_step(self, x: np.ndarray, y: np.ndarray, rng: np.random.Generator) -> Dict[str, float]:
        """x: (N, C, H, W) in [0, 1]; y: (N,) labels (used only by conditional models)."""
        self._check_images(x)
        x = np.asarray(x, dtype=self.dtype)
        self.train()
        return self.adversarial_step(self.target_for(x), self.condition_for(x, y), rng)

    # ---- using a trained GAN -----------------------------------------------------------------------
    def sample(self, n: int, rng: np.random.Generator, y: Optional[np.ndarray] = None,
               batch_size: int = 500) -> np.ndarray:
        """n generated images (n, C, H, W) in [0, 1], generator in eval mode (batch norm's running statistics)."""
        self.eval()
        out = []
        with no_grad():
            for start in range(0, n, batch_size):
                m = min(batch_size, n - start)
                labels = None if y is None else np.asarray(y)[start : start + m]
                condition = self.sample_condition(m, rng, labels)
                out.append(self.generate(self._noise(m, rng), condition).data)
        return to_unit(np.concatenate(out))

    def sample_condition(self, n: int, rng, labels=None):
        """The condition used when sampling (None for an unconditional GAN)."""
        return None

    def evaluate(self, x: np.ndarray, y: np.ndarray, rng: np.random.Generator) -> Dict[str, float]:
        """Mean D(x) on (up to 1,000) held-out images and mean D(G(z)) on as many samples.

        The images go through the networks ``EVALUATION_CHUNK`` at a time: the noise is drawn for
        all of them first (so the figures do not depend on the chunk size), and only one chunk's
        activations are alive at once (a single 1,000-image DCGAN pass held ~350 MB of them,
        more than the whole training step).
        """
        x, y = np.asarray(x[:1000], dtype=self.dtype), np.asarray(y[:1000])
        noise = self._noise(len(x), rng)
        real_total = fake_total = 0.0
        self.eval()
        with no_grad():
            for start in range(0, len(x), EVALUATION_CHUNK):
                part = slice(start, start + EVALUATION_CHUNK)
                condition = self.condition_for(x[part], y[part])
                real_logits = self.discriminate(Tensor(self.target_for(x[part])), condition)
                fake = self.generate(None if noise is None else noise[part], condition)
                fake_logits = self.discriminate(fake, condition)
                real_total += float(ops.sigmoid(real_logits).data.sum(dtype=np.float64))
                fake_total += float(ops.sigmoid(fake_logits).data.sum(dtype=np.float64))
        return {"d_real": real_total / len(x), "d_fake": fake_total / len(x)}

    # The training loop draws these per-step curves (moving averages of 20) besides its own.
    curve_groups = {"gan_losses": ("d_loss", "g_loss"), "gan_d_outputs": ("d_real", "d_fake")}

    def save_pictures(self, out_dir, data, rng: np.random.Generator, tag: str = "") -> List[str]:
        """Fixed-noise sample grid for this epoch (the loop draws the loss curves: ``curve_groups``)."""
        from ...plots import save_image_grid

        self.eval()
        with no_grad():
            condition = self.sample_condition(len(self.fixed_noise), np.random.default_rng(0), self.fixed_labels())
            images = to_unit(self.generate(Tensor(self.fixed_noise), condition).data)
        return [save_image_grid(images, os.path.join(out_dir, f"samples_{tag or 'final'}.png"), nrow=8)]

    def fixed_labels(self):
        return None

    def _check_images(self, x) -> None:
        if tuple(np.shape(x)[1:]) != self.image_shape:
            raise ValueError(f"{type(self).__name__}: expected images (N, {', '.join(map(str, self.image_shape))}), "
                             f"got shape {tuple(np.shape(x))}")


# ---- the MLP GAN --------------------------------------------------------------------------------------
def mlp_generator(latent_dim: int, hidden: int, image_shape, rng, dtype=np.float32, condition_dim: int = 0) -> nn.Module:
    """(N, latent_dim + condition_dim) -> Linear-ReLU x2 -> Linear -> tanh -> (N, C, H, W)."""
    features = int(np.prod(image_shape))
    return nn.Sequential(
        nn.Linear(latent_dim + condition_dim, hidden, rng=rng, dtype=dtype, init="he_uniform"), nn.ReLU(),
        nn.Linear(hidden, hidden, rng=rng, dtype=dtype, init="he_uniform"), nn.ReLU(),
        nn.Linear(hidden, features, rng=rng, dtype=dtype), nn.Tanh(),
        nn.Reshape(image_shape),
    )


def mlp_discriminator(image_shape, hidden: int, rng, dtype=np.float32, condition_dim: int = 0, slope: float = 0.2) -> nn.Module:
    """(N, C*H*W + condition_dim) -> Linear-LeakyReLU x2 -> Linear -> logit (N, 1)."""
    features = int(np.prod(image_shape))
    return nn.Sequential(
        nn.Linear(features + condition_dim, hidden, rng=rng, dtype=dtype), nn.LeakyReLU(slope),
        nn.Linear(hidden, hidden, rng=rng, dtype=dtype), nn.LeakyReLU(slope),
        nn.Linear(hidden, 1, rng=rng, dtype=dtype),
    )


class MLPGAN(GAN):
    """GAN with MLP generator and discriminator; the discriminator sees flattened images."""

    def discriminate(self, x, condition=None) -> Tensor:
        x = x if isinstance(x, Tensor) else Tensor(x)
        return super().discriminate(x.reshape((x.shape[0], -1)), condition)


def algorithm_options(config: Dict, rng, dtype) -> Dict:
    """The GAN algorithm's settings from a registered model's config, shared by every GAN builder."""
    return dict(generator_loss=config["generator_loss"], d_steps=config["d_steps"], lr=config["lr"],
                betas=(config["beta1"], 0.999), rng=rng, dtype=dtype)


GAN_DEFAULTS = {"latent_dim": 64, "hidden": 256, "lr": 2e-4, "beta1": 0.5,
                "generator_loss": "non_saturating", "d_steps": 1}


@register_model("gan", family="gan", description="GAN (Goodfellow et al. 2014), MLP generator and discriminator",
                defaults=GAN_DEFAULTS)
def build_gan(config: Dict, data_info: DataInfo, rng, dtype=np.float32) -> MLPGAN:
    rng = np.random.default_rng(rng)
    shape = tuple(data_info.image_shape)
    return MLPGAN(mlp_generator(config["latent_dim"], config["hidden"], shape, rng, dtype),
                  mlp_discriminator(shape, config["hidden"], rng, dtype),
                  shape, config["latent_dim"], **algorithm_options(config, rng, dtype))


# ---- gradcheck cases (python -m scratchgen.gradcheck): the losses through a tiny float64 GAN ------------
def _tiny_gan_case(rng, which: str):
    config = {**GAN_DEFAULTS, "latent_dim": 2, "hidden": 4}
    gan = build_gan(config, DataInfo((1, 2, 2), 2), rng, dtype=np.float64)
    real = rng.uniform(-1, 1, (3, 1, 2, 2))
    z = rng.standard_normal((3, 2))
    if which == "discriminator":
        with no_grad():
            fake = gan.generate(z).data
        return (lambda r, f: gan.discriminator_loss(r, f)[0]), [real, fake]
    return (lambda noise: gan.generator_loss(noise)[0]), [z]


register_case("gan_mlp_discriminator_loss")(lambda rng: _tiny_gan_case(rng, "discriminator"))
register_case("gan_mlp_generator_loss")(lambda rng: _tiny_gan_case(rng, "generator"))
