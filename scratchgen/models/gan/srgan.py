"""Super-resolution GAN (Ledig et al. 2017), scaled down to 14x14 -> 28x28, and the classic upsamplers.

The task: given a low-resolution image l = downsample(x) (2x2 average pooling), produce a
high-resolution x_hat close to x. A generator trained only on the pixel MSE predicts the
*conditional mean* of all plausible x, which is blurry; SR-GAN adds an adversarial term so that
x_hat also looks like a sample from p_data:

    L_G = L_content + lambda_adv * L_adv,   L_content = mean (x_hat - x)^2,
    L_adv = softplus(-l_D(x_hat))  (non-saturating), lambda_adv = 1e-3 as in the paper.

Generator (no noise: the low-resolution image is the only input), predicting the *residual* over
bicubic upsampling, so it starts as good as bicubic and only has to learn the missing detail:

    l (N, C, h, w) -> [Conv3x3 -> ReLU] x3 (F features, at low resolution, like SRGAN's trunk)
      -> ConvTranspose2d(F, C, 4, stride 2, pad 1) -> + bicubic(l) -> x_hat (N, C, 2h, 2w)

Discriminator: the DCGAN discriminator on high-resolution images.

The upsamplers the result is compared to, written here as separable linear maps: each output row
o samples the input at u = (o + 1/2) n_in / n_out - 1/2 (pixel centres aligned) and mixes the
neighbouring input rows with a kernel (edges replicated):
    nearest  : the row under u;
    bilinear : weights max(0, 1 - |u - j|);
    bicubic  : Keys (1981) cubic convolution with a = -0.5,
               W(t) = (a+2)|t|^3 - (a+3)|t|^2 + 1           for |t| <= 1
               W(t) = a|t|^3 - 5a|t|^2 + 8a|t| - 4a          for 1 < |t| < 2,   0 beyond.
PSNR = 10 log10(1 / MSE) for images in [0, 1].
"""
from __future__ import annotations

import os
from typing import Dict, List

import numpy as np

from ... import nn, ops
from ...grad_mode import no_grad
from ...tensor import Tensor
from ..base import DataInfo, register_model
from .dcgan import dcgan_discriminator
from .gan import GAN, algorithm_options, to_signed, to_unit

RESIZE_METHODS = ("nearest", "bilinear", "bicubic")


# ---- classic resampling ---------------------------------------------------------------------------
def _keys_cubic(t: np.ndarray, a: float = -0.5) -> np.ndarray:
    t = np.abs(t)
    inner = (a + 2) * t**3 - (a + 3) * t**2 + 1
    outer = a * t**3 - 5 * a * t**2 + 8 * a * t - 4 * a
    return np.where(t <= 1, inner, np.where(t < 2, outer, 0.0))


def interpolation_matrix(n_in: int, n_out: int, method: str = "bicubic") -> np.ndarray:
    """The (n_out, n_in) matrix that resamples one axis: out = M @ in. Rows sum to 1."""
    if method not in RESIZE_METHODS:
        raise ValueError(f"interpolation_matrix: method must be one of {RESIZE_METHODS}, got {method!r}")
    matrix = np.zeros((n_out, n_in))
    centres = (np.arange(n_out) + 0.5) * n_in / n_out - 0.5
    for o, u in enumerate(centres):
        if method == "nearest":
            matrix[o, min(int(np.floor(u + 0.5)), n_in - 1)] = 1.0
            continue
        base = int(np.floor(u))
        taps = np.arange(base - 1, base + 3)
        weights = _keys_cubic(u - taps) if method == "bicubic" else np.maximum(0.0, 1.0 - np.abs(u - taps))
        np.add.at(matrix[o], np.clip(taps, 0, n_in - 1), weights)  # replicate the edge pixels
    return matrix


def resize(images: np.ndarray, size, method: str = "bicubic") -> np.ndarray:
    """Resize images (N, C, H, W) to (N, C, *size) with a separable kernel; keeps the dtype."""
    images = np.asarray(images)
    if images.ndim != 4:
        raise ValueError(f"resize: images must be (N, C, H, W), got shape {images.shape}")
    rows = interpolation_matrix(images.shape[2], size[0], method).astype(images.dtype)
    cols = interpolation_matrix(images.shape[3], size[1], method).astype(images.dtype)
    return np.einsum("oh,nchw,pw->ncop", rows, images, cols, optimize=True)


def upsample(images: np.ndarray, factor: int = 2, method: str = "bicubic") -> np.ndarray:
    """Enlarge images (N, C, H, W) by an integer factor."""
    return resize(images, (images.shape[2] * factor, images.shape[3] * factor), method)


def downsample(images: np.ndarray, factor: int = 2) -> np.ndarray:
    """Average-pool images (N, C, H, W) over factor x factor blocks (H, W divisible by factor)."""
    n, c, h, w = images.shape
    if h % factor or w % factor:
        raise ValueError(f"downsample: image size {h}x{w} is not divisible by {factor}")
    return images.reshape(n, c, h // factor, factor, w // factor, factor).mean(axis=(3, 5))


def psnr(estimate: np.ndarray, target: np.ndarray) -> float:
    """Peak signal-to-noise ratio in dB for images in [0, 1] (mean over all pixels of the batch)."""
    mse = float(np.mean((np.asarray(estimate, np.float64) - np.asarray(target, np.float64)) ** 2))
    return float("inf") if mse == 0 else float(10.0 * np.log10(1.0 / mse))


# ---- the SR-GAN ------------------------------------------------------------------------------------
def _small_normal(shape, rng=None, dtype=np.float32, fans=None):
    return nn.init.normal(shape, std=1e-3, rng=rng, dtype=dtype)


class SRGenerator(nn.Module):
    """Low-resolution (N, C, h, w) in [-1, 1] -> high-resolution (N, C, 2h, 2w): bicubic + learned residual."""

    def __init__(self, channels: int, features: int, rng, dtype=np.float32):
        super().__init__()
        # Features are computed at low resolution (4x cheaper) and upsampled by the last layer.
        self.residual = nn.Sequential(
            nn.Conv2d(channels, features, 3, padding=1, rng=rng, dtype=dtype, init="he_uniform"), nn.ReLU(),
            nn.Conv2d(features, features, 3, padding=1, rng=rng, dtype=dtype, init="he_uniform"), nn.ReLU(),
            nn.Conv2d(features, features, 3, padding=1, rng=rng, dtype=dtype, init="he_uniform"), nn.ReLU(),
            # Small last layer: the generator starts as plain bicubic upsampling.
            nn.ConvTranspose2d(features, channels, 4, stride=2, padding=1, rng=rng, dtype=dtype, init=_small_normal),
        )

    def forward(self, low):
        low = low.data if isinstance(low, Tensor) else low
        return self.residual(Tensor(low)) + upsample(low, 2, "bicubic")


class SRGAN(GAN):
    """GAN whose generator super-resolves ``downsample(x)`` and whose G loss adds the pixel MSE."""

    cli_name = "srgan"

    def __init__(self, generator, discriminator, image_shape, adversarial_weight: float = 1e-3, **kwargs):
        super().__init__(generator, discriminator, image_shape, latent_dim=0, **kwargs)
        self.adversarial_weight = float(adversarial_weight)

    def condition_for(self, x, y) -> np.ndarray:
        return downsample(to_signed(x))  # the low-resolution input, in [-1, 1]

    def generate(self, z, condition=None) -> Tensor:
        return self.generator(condition)

    def generator_loss(self, z, condition=None, real=None):
        """L_content + adversarial_weight * L_adv; also the fake batch and its logits."""
        fake = self.generate(z, condition)
        fake_logits = self.discriminate(fake, condition)
        content = ops.mse_loss(fake, real, reduction="mean")
        self._last_content = float(content.data)
        loss = content + self.adversarial_weight * ops.gan_generator_loss(fake_logits, self.generator_loss_kind)
        return loss, fake, fake_logits

    def adversarial_step(self, real, condition, rng) -> Dict[str, float]:
        self._last_content = None
        stats = super().adversarial_step(real, condition, rng)
        if self._last_content is not None:  # reported on the steps that update G (every d_steps-th)
            stats["content"] = self._last_content
        return stats

    curve_groups = {**GAN.curve_groups, "srgan_content": ("content",)}

    def super_resolve(self, low: np.ndarray, batch_size: int = 500) -> np.ndarray:
        """Low-resolution images (N, C, h, w) in [0, 1] -> (N, C, 2h, 2w) in [0, 1]."""
        self.eval()
        out = []
        with no_grad():
            for start in range(0, len(low), batch_size):
                block = to_signed(np.asarray(low[start : start + batch_size], dtype=self.dtype))
                out.append(self.generate(None, block).data)
        return to_unit(np.concatenate(out))

    def sample(self, n, rng, y=None, batch_size: int = 500):
        raise NotImplementedError("SRGAN super-resolves given images (super_resolve(low)); it does not sample from noise")

    def psnr_table(self, x: np.ndarray) -> Dict[str, float]:
        """PSNR (dB) of SR-GAN, bicubic, bilinear and nearest upsampling of downsample(x) against x (N, C, H, W)."""
        x = np.asarray(x, dtype=self.dtype)
        low = downsample(x)
        table = {f"psnr_{m}": psnr(np.clip(upsample(low, 2, m), 0, 1), x) for m in ("nearest", "bilinear", "bicubic")}
        table["psnr_srgan"] = psnr(self.super_resolve(low), x)
        return table

    def evaluate(self, x, y, rng) -> Dict[str, float]:
        return self.psnr_table(np.asarray(x[:1000]))

    def save_pictures(self, out_dir, data, rng, tag: str = "") -> List[str]:
        """One column per test image; rows: low resolution (nearest, enlarged), bicubic, SR-GAN, real."""
        from ...plots import save_image_grid

        x = np.asarray(data.test.x[:10], dtype=self.dtype)
        low = downsample(x)
        rows = [upsample(low, 2, "nearest"), upsample(low, 2, "bicubic").clip(0, 1), self.super_resolve(low), x]
        path = os.path.join(out_dir, f"superresolution_{tag or 'final'}.png")
        return [save_image_grid(np.concatenate(rows), path, nrow=len(x))]


SRGAN_DEFAULTS = {"features": 32, "width": 32, "lr": 2e-4, "beta1": 0.5, "adversarial_weight": 1e-3,
                  "generator_loss": "non_saturating", "d_steps": 1}


@register_model("srgan", family="gan", description="Super-resolution GAN (Ledig et al. 2017): 2x upsampling, content + adversarial loss",
                defaults=SRGAN_DEFAULTS)
def build_srgan(config: Dict, data_info: DataInfo, rng, dtype=np.float32) -> SRGAN:
    rng = np.random.default_rng(rng)
    shape = tuple(data_info.image_shape)
    c, h, w = shape
    if h % 2 or w % 2:
        raise ValueError(f"srgan: image size {h}x{w} must be even (the low-resolution input is 2x2-pooled)")
    return SRGAN(
        SRGenerator(c, config["features"], rng, dtype),
        dcgan_discriminator(shape, config["width"], rng, dtype),
        shape, adversarial_weight=config["adversarial_weight"], **algorithm_options(config, rng, dtype),
    )
