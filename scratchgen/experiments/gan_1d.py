"""GAN theory on a line: the optimal discriminator, the value -log 4, and a generator that learns.

Goodfellow et al. (2014), Proposition 1: for a fixed generator with density p_g, the
discriminator maximising

    V(D, G) = E_{x ~ p_data} log D(x) + E_{x ~ p_g} log(1 - D(x))

is D*(x) = p_data(x) / (p_data(x) + p_g(x)) (pointwise: a log y + b log(1 - y) peaks at
y = a / (a + b)). Plugging it in (Theorem 1),

    V(D*, G) = -log 4 + 2 JSD(p_data || p_g),

so the value is -log 4 ~ -1.386 exactly when p_g = p_data, and more otherwise.

With two 1-D Gaussians every quantity has a closed form or a cheap quadrature, so a trained
discriminator can be compared with D* point by point:

    python -m scratchgen.experiments.gan_1d --out runs/gan_1d

writes ``d_star.png`` (the trained D against D* and both densities), ``gan_1d_training.png``
(a 1-D GAN's generator mean and std moving to the data's) and prints the numbers.
The tests in ``tests/test_gan.py`` use the same functions.
"""
from __future__ import annotations

import argparse
import json
import os
from typing import Dict, Tuple

import numpy as np

from .. import nn, ops
from ..grad_mode import no_grad
from ..optim import Adam
from ..tensor import Tensor
from ..models.gan.gan import GAN

LOG_4 = float(np.log(4.0))


def gaussian_pdf(x, mean: float, std: float) -> np.ndarray:
    return np.exp(-0.5 * ((x - mean) / std) ** 2) / (std * np.sqrt(2 * np.pi))


def optimal_discriminator(x, data: Tuple[float, float], model: Tuple[float, float]) -> np.ndarray:
    """D*(x) = p_data / (p_data + p_g) for Gaussians given as (mean, std)."""
    p_data, p_g = gaussian_pdf(x, *data), gaussian_pdf(x, *model)
    return p_data / (p_data + p_g)


def optimal_value(data: Tuple[float, float], model: Tuple[float, float], points: int = 20001) -> Dict[str, float]:
    """V(D*, G) and JSD(p_data || p_g) by quadrature (trapezoid on a wide grid), in nats."""
    low = min(data[0] - 12 * data[1], model[0] - 12 * model[1])
    high = max(data[0] + 12 * data[1], model[0] + 12 * model[1])
    x = np.linspace(low, high, points)
    p, q = gaussian_pdf(x, *data), gaussian_pdf(x, *model)
    d_star = p / (p + q)
    tiny = np.finfo(float).tiny  # 0 log 0 = 0 where a density underflows
    value = np.trapezoid(p * np.log(np.maximum(d_star, tiny)) + q * np.log(np.maximum(1 - d_star, tiny)), x)
    m = 0.5 * (p + q)
    kl = lambda a: np.trapezoid(np.where(a > 0, a * np.log(np.maximum(a, tiny) / np.maximum(m, tiny)), 0.0), x)  # noqa: E731
    return {"value": float(value), "jsd": float(0.5 * kl(p) + 0.5 * kl(q))}


def mlp_discriminator_1d(hidden: int = 32, rng=None, dtype=np.float32) -> nn.Module:
    """x (N, 1) -> logit (N, 1): a small tanh MLP, smooth enough to fit a ratio of Gaussians."""
    rng = np.random.default_rng(rng)
    return nn.Sequential(
        nn.Linear(1, hidden, rng=rng, dtype=dtype), nn.Tanh(),
        nn.Linear(hidden, hidden, rng=rng, dtype=dtype), nn.Tanh(),
        nn.Linear(hidden, 1, rng=rng, dtype=dtype),
    )


def train_discriminator(data: Tuple[float, float], model: Tuple[float, float], steps: int = 1500,
                        batch_size: int = 512, lr: float = 3e-3, seed: int = 0, hidden: int = 32) -> nn.Module:
    """Fit D to samples of N(data) (real) and N(model) (fake) with the GAN discriminator loss; fresh samples every step."""
    rng = np.random.default_rng(seed)
    discriminator = mlp_discriminator_1d(hidden, rng)
    optimizer = Adam(discriminator.parameters(), lr=lr)
    for _ in range(steps):
        real = (data[0] + data[1] * rng.standard_normal((batch_size, 1))).astype(np.float32)
        fake = (model[0] + model[1] * rng.standard_normal((batch_size, 1))).astype(np.float32)
        optimizer.zero_grad()
        loss = ops.gan_discriminator_loss(discriminator(Tensor(real)), discriminator(Tensor(fake)))
        loss.backward()
        optimizer.step()
    return discriminator


def discriminator_probability(discriminator: nn.Module, x: np.ndarray) -> np.ndarray:
    """D(x) = sigmoid(logit) for points x (N,)."""
    with no_grad():
        return ops.sigmoid(discriminator(Tensor(np.asarray(x, np.float32).reshape(-1, 1)))).data.ravel()


def empirical_value(discriminator: nn.Module, data, model, n: int = 200000, seed: int = 1) -> float:
    """V(D, G) estimated on fresh samples: mean log D(x_real) + mean log(1 - D(x_fake)) = -(D's loss)."""
    rng = np.random.default_rng(seed)
    real = (data[0] + data[1] * rng.standard_normal((n, 1))).astype(np.float32)
    fake = (model[0] + model[1] * rng.standard_normal((n, 1))).astype(np.float32)
    with no_grad():
        return -float(ops.gan_discriminator_loss(discriminator(Tensor(real)), discriminator(Tensor(fake))).data)


# ---- a GAN on the line -------------------------------------------------------------------------------
class LineGAN(GAN):
    """The package's GAN machinery on raw 1-D points (no [0, 1] -> [-1, 1] image mapping)."""

    def target_for(self, x):
        return x

    def _check_images(self, x) -> None:
        if np.ndim(x) != 2 or np.shape(x)[1] != 1:
            raise ValueError(f"LineGAN: expected points (N, 1), got shape {np.shape(x)}")


def build_line_gan(seed: int = 0, generator_loss: str = "non_saturating", d_steps: int = 1, lr: float = 1e-2,
                   dtype=np.float32) -> LineGAN:
    """Generator x = a z + b (z ~ N(0, 1), starts at a = 1, b = 0); MLP discriminator."""
    rng = np.random.default_rng(seed)
    generator = nn.Linear(1, 1, rng=rng, dtype=dtype)
    generator.weight.data[...] = 1.0
    return LineGAN(generator, mlp_discriminator_1d(16, rng, dtype), image_shape=(1,), latent_dim=1,
                   generator_loss=generator_loss, d_steps=d_steps, lr=lr, betas=(0.5, 0.999), rng=rng, dtype=dtype)


def generator_moments(gan: LineGAN, n: int = 20000, seed: int = 2) -> Tuple[float, float]:
    rng = np.random.default_rng(seed)
    with no_grad():
        x = gan.generate(rng.standard_normal((n, 1)).astype(gan.dtype)).data
    return float(x.mean()), float(x.std())


def train_line_gan(gan: LineGAN, data: Tuple[float, float], steps: int, batch_size: int = 256, seed: int = 0):
    """Train on N(data); returns the generator's (mean, std) after every 10 steps."""
    rng = np.random.default_rng(seed)
    trace = [generator_moments(gan)]
    for step in range(steps):
        real = (data[0] + data[1] * rng.standard_normal((batch_size, 1))).astype(gan.dtype)
        gan.train_step(real, None, rng)
        if (step + 1) % 10 == 0:
            trace.append(generator_moments(gan))
    return trace


def main(argv=None) -> Dict:
    parser = argparse.ArgumentParser(description="1-D GAN theory: D* and -log 4, and a generator that learns")
    parser.add_argument("--out", default="runs/gan_1d")
    parser.add_argument("--steps", type=int, default=2000)
    parser.add_argument("--seed", type=int, default=0, help="seeds the discriminators' training (and the line GAN's)")
    args = parser.parse_args(argv)
    os.makedirs(args.out, exist_ok=True)
    data, model = (0.0, 1.0), (1.5, 0.75)

    discriminator = train_discriminator(data, model, steps=args.steps, seed=args.seed)
    grid = np.linspace(-2.5, 3.5, 241)
    trained, best = discriminator_probability(discriminator, grid), optimal_discriminator(grid, data, model)
    same = train_discriminator(data, data, steps=args.steps, seed=args.seed)
    results = {
        "max_abs_error_vs_d_star": float(np.abs(trained - best).max()),
        "value_trained": empirical_value(discriminator, data, model),
        "value_optimal": optimal_value(data, model)["value"],
        "jsd": optimal_value(data, model)["jsd"],
        "value_equal_distributions_trained": empirical_value(same, data, data),
        "minus_log_4": -LOG_4,
    }
    gan = build_line_gan(seed=args.seed)
    trace = train_line_gan(gan, (3.0, 0.5), steps=1000)
    results["line_gan_start"], results["line_gan_end"] = trace[0], trace[-1]

    from ..plots import _require, save_figure

    _require("matplotlib")
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(figsize=(6, 4))
    axes.plot(grid, gaussian_pdf(grid, *data), "k:", label="p_data = N(0, 1)")
    axes.plot(grid, gaussian_pdf(grid, *model), "k--", label="p_g = N(1.5, 0.75^2)")
    axes.plot(grid, best, "C0", lw=3, alpha=0.5, label="D* = p_data / (p_data + p_g)")
    axes.plot(grid, trained, "C1", label="trained D")
    axes.legend(fontsize=8)
    axes.set_xlabel("x")
    save_figure(figure, os.path.join(args.out, "d_star.png"))
    figure, axes = plt.subplots(figsize=(6, 4))
    trace = np.asarray(trace)
    steps = np.arange(len(trace)) * 10
    axes.plot(steps, trace[:, 0], label="generator mean")
    axes.plot(steps, trace[:, 1], label="generator std")
    axes.axhline(3.0, color="C0", ls=":", label="data mean 3")
    axes.axhline(0.5, color="C1", ls=":", label="data std 0.5")
    axes.set_xlabel("step")
    axes.legend(fontsize=8)
    save_figure(figure, os.path.join(args.out, "gan_1d_training.png"))
    with open(os.path.join(args.out, "results.json"), "w") as handle:
        json.dump(results, handle, indent=2)
    print(json.dumps(results, indent=2))
    return results


if __name__ == "__main__":
    main()
