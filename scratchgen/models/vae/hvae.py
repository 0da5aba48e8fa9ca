"""A VAE with two stochastic layers (Burda et al. 2015's two-layer model): x -> z1 -> z2, top-down generation.

Generative model (top-down), Gaussian layers with a diagonal covariance:

    p(z2) = N(0, I)                                              z2: (N, L2)
    p(z1 | z2) = N(mu_p(z2), diag exp(logvar_p(z2)))             z1: (N, L1), an MLP of z2
    p(x | z1)  = Bernoulli(sigmoid(decoder(z1)))   (or N(decoder(z1), e^v I), as in the VAE)

Inference model (bottom-up), each layer reparameterised with its own noise:

    q(z1 | x)  = N(mu_1(x),  diag exp(logvar_1(x)))              z1 = mu_1 + exp(logvar_1 / 2) eps1
    q(z2 | z1) = N(mu_2(z1), diag exp(logvar_2(z1)))             z2 = mu_2 + exp(logvar_2 / 2) eps2

One sample (z1, z2) ~ q gives the log importance weight

    log w = log p(x | z1) + log p(z1 | z2) + log p(z2) - log q(z1 | x) - log q(z2 | z1),

whose expectation is the ELBO; the IWAE bound L_k averages k weights inside the log
(``scratchgen/evaluation/likelihood.py``). The loss (per example, averaged over the batch) is

    loss = -log p(x | z1) + beta * (KL_1 + KL_2)
    KL_1 = log q(z1 | x) - log p(z1 | z2)          one-sample estimate (p(z1 | z2) moves with z2 ~ q)
    KL_2 = KL(q(z2 | z1) || N(0, I))                analytic given z1, as in the one-layer VAE

so that with beta = 1, -loss = log w up to KL_2's analytic expectation over z2. Why not KL_1 in
closed form too: q(z1 | x) and p(z1 | z2) are both Gaussians, but z2 is drawn *from z1*, so the
z1-expectation cannot be taken with z2 held fixed.

The noise of one sample is one vector eps = [eps1, eps2] of length L1 + L2, and ``latent_dim``
is that length (what ``train_step``, ``evaluate`` and the IWAE code draw); ``latent1`` and
``latent2`` are the two layers' sizes. Shapes: x (N, D); eps (N, L1 + L2), or (S, N, L1 + L2)
for S importance samples.

Everything that does not depend on the second layer - the first encoder, the decoder p(x | z1),
reconstructions at the posterior mean of z1, the training step and the pictures - is the VAE's.
Sizes as in Burda et al. (2015): 784-(200-200)-100-(100-100)-50 (the defaults), but ReLU instead
of their tanh, and a KL warm-up over the first 1000 steps (``kl_warmup``, see vae.py): in short
runs a two-layer model otherwise lets both layers collapse onto their priors early (README,
"Experiments from the lectures", has the runs that chose these defaults).
"""
from __future__ import annotations

import math
import os
from typing import Dict, Optional, Tuple

import numpy as np

from ...device import to_numpy
from ... import nn, ops
from ...backend import kernel
from ...grad_mode import no_grad
from ...gradcheck import register_case
from ...tensor import Tensor
from ..image_model import fan_in_uniform, mlp, parameter_case
from ..base import DataInfo, register_model
from .vae import VAE

__all__ = ["HierarchicalVAE"]

LOG_2PI = math.log(2 * math.pi)


class HierarchicalVAE(VAE):
    """Two-stochastic-layer VAE. hidden (H), hidden_layers: the x <-> z1 MLPs; latent: L1; hidden2 (H2),
    latent2: L2, the z1 <-> z2 MLPs (same depth). Other options as in ``VAE``.

    Networks: encoder x -> H (-> H ...) -> (mu_1, logvar_1) in R^L1; encoder2 z1 -> H2 ... -> (mu_2,
    logvar_2) in R^L2; prior1 z2 -> H2 ... -> (mu_p, logvar_p) in R^L1; decoder z1 -> H ... -> D.
    """

    def __init__(self, image_shape, hidden: int = 200, latent: int = 100, hidden2: int = 100, latent2: int = 50,
                 hidden_layers: int = 2, activation: str = "relu", **kwargs):
        for name, value in (("hidden2", hidden2), ("latent2", latent2)):
            if int(value) < 1:
                raise ValueError(f"HierarchicalVAE: {name} must be >= 1, got {value}")
        super().__init__(image_shape, hidden=hidden, latent=latent, hidden_layers=hidden_layers, activation=activation,
                         network_options={"hidden2": int(hidden2), "latent2": int(latent2)}, **kwargs)

    def _build_networks(self, rng, hidden2: int = 100, latent2: int = 50) -> None:
        super()._build_networks(rng)  # encoder, mu_head, logvar_head (x -> z1) and decoder (z1 -> x)
        act, init, dt, depth = self.activation_name, fan_in_uniform, self.dtype, self.hidden_layers
        self.latent1, self.latent2, self.hidden2 = self.latent_dim, latent2, hidden2
        self.encoder2 = mlp([self.latent1] + [hidden2] * depth, act, rng, dt, final_activation=act, init=init)
        self.mu2_head = nn.Linear(hidden2, latent2, init=init, rng=rng, dtype=dt)
        self.logvar2_head = nn.Linear(hidden2, latent2, init=init, rng=rng, dtype=dt)
        self.prior1 = mlp([latent2] + [hidden2] * depth, act, rng, dt, final_activation=act, init=init)
        self.prior_mu_head = nn.Linear(hidden2, self.latent1, init=init, rng=rng, dtype=dt)
        self.prior_logvar_head = nn.Linear(hidden2, self.latent1, init=init, rng=rng, dtype=dt)
        self.latent_dim = self.latent1 + self.latent2  # the noise one sample needs: [eps1, eps2]

    # ---- the second layer ---------------------------------------------------------------------------
    def encode2(self, z1) -> Tuple[Tensor, Tensor]:
        """q(z2 | z1): (mu_2, logvar_2), each (N, L2)."""
        features = self.encoder2(z1 if isinstance(z1, Tensor) else Tensor(z1))
        return self.mu2_head(features), self.logvar2_head(features)

    def prior(self, z2) -> Tuple[Tensor, Tensor]:
        """p(z1 | z2): (mu_p, logvar_p), each (N, L1)."""
        features = self.prior1(z2 if isinstance(z2, Tensor) else Tensor(z2))
        return self.prior_mu_head(features), self.prior_logvar_head(features)

    def _split(self, eps):
        """eps (..., L1 + L2) -> (eps1, eps2); a Tensor is sliced by the getitem op (for gradchecks in eps)."""
        return eps[..., : self.latent1], eps[..., self.latent1 :]

    # ---- the loss ----------------------------------------------------------------------------------
    def terms(self, x, eps, reduction: str = "batch_sum") -> Dict[str, Tensor]:
        """-log p(x | z1), KL_1 and KL_2 (module docstring) for x (N, D) and noise eps (N, L1 + L2).

        ``reduction``: "batch_sum" (batch means of per-example sums) or "none" ((N, D), (N, L1), (N, L2)).
        """
        x = self._flat_tensor(x)
        eps1, eps2 = self._split(self._check_eps(eps, (x.shape[0], self.latent_dim)))
        mu1, logvar1 = self.encode(x)
        z1 = ops.reparameterize(mu1, logvar1, eps1)
        mu2, logvar2 = self.encode2(z1)
        z2 = ops.reparameterize(mu2, logvar2, eps2)
        prior_mu, prior_logvar = self.prior(z2)
        # -log N(z; m, e^v) is gaussian_nll(m, z, v): KL_1 = -log p(z1 | z2) - (-log q(z1 | x)).
        kl1 = (ops.gaussian_nll(prior_mu, z1, prior_logvar, reduction=reduction)
               - ops.gaussian_nll(mu1, z1, logvar1, reduction=reduction))
        return {"reconstruction": self.reconstruction_nll(self.decode(z1), x.data, reduction=reduction), "kl_z1": kl1,
                "kl_z2": ops.gaussian_kl_standard(mu2, logvar2, reduction=reduction)}

    def loss(self, x, eps, y=None, kl_weight: Optional[float] = None) -> Tuple[Tensor, Dict[str, Tensor]]:
        """beta-weighted negative ELBO: -log p(x | z1) + beta (KL_1 + KL_2), batch means. Parts: the three
        terms and "kl" = KL_1 + KL_2 (what the VAE's evaluation and curves read). ``kl_weight``: instead
        of beta (the KL warm-up's weight, from ``train_step``)."""
        parts = self.terms(x, eps)
        parts["kl"] = parts["kl_z1"] + parts["kl_z2"]
        weight = self.beta if kl_weight is None else kl_weight
        total = parts["reconstruction"] + (weight * parts["kl"] if weight != 1.0 else parts["kl"])
        return total, parts

    # ---- evaluation quantities (arrays, no graph) ---------------------------------------------------
    def elbo(self, x, eps, y=None):
        """Per-example ELBO estimate (N,): one sample of z1 and z2, KL_2 analytic (beta is not applied)."""
        with no_grad():
            parts = self.terms(x, eps, reduction="none")
            return -sum(part.data.sum(axis=1) for part in parts.values())

    def log_importance_weights(self, x, eps, y=None):
        """log w = log p(x|z1) + log p(z1|z2) + log p(z2) - log q(z1|x) - log q(z2|z1): eps (S, N, L1 + L2) -> (S, N)."""
        with no_grad():
            x = self._flat_tensor(x)
            n = x.shape[0]
            s = eps.shape[0]
            eps1, eps2 = self._split(self._importance_eps(eps, n))
            mu1, logvar1 = (t.data for t in self.encode(x))
            z1 = mu1 + self._xp().exp(0.5 * logvar1) * eps1  # (S, N, L1)
            z1_rows = z1.reshape(s * n, self.latent1)
            mu2, logvar2 = (t.data for t in self.encode2(z1_rows))
            eps2_rows = eps2.reshape(s * n, self.latent2)
            z2 = mu2 + self._xp().exp(0.5 * logvar2) * eps2_rows  # (S N, L2)
            prior_mu, prior_logvar = (t.data for t in self.prior(z2))
            out = self.decode(z1_rows).data.reshape(s, n, self.num_features)
            log_px = -self.reconstruction_nll(Tensor(out), x.data, reduction="none").data.sum(axis=2)
            log_pz1 = -_gaussian_nll(z1_rows, prior_mu, prior_logvar).sum(axis=1)
            log_pz2 = -0.5 * (LOG_2PI + z2 * z2).sum(axis=1)
            # log q at its own sample: (z - mu)^2 e^-v = eps^2, so log q = -0.5 (log 2pi + v + eps^2).
            log_qz1 = -0.5 * (LOG_2PI + logvar1 + eps1 * eps1).sum(axis=2)
            log_qz2 = -0.5 * (LOG_2PI + logvar2 + eps2_rows * eps2_rows).sum(axis=1)
        return log_px + ((log_pz1 + log_pz2 - log_qz2).reshape(s, n) - log_qz1)

    def active_units(self, x, y=None, threshold: float = 0.01, batch_size: int = 1000) -> Dict[str, object]:
        """Active units of each layer (Burda et al. 2015): Cov_x(E_q[z_u | x]) > threshold.

        z1: the posterior means mu_1(x); z2: mu_2(mu_1(x)), the mean of q(z2 | z1) at z1's mean (an
        approximation of E_q[z2 | x], as the paper's). Returns {"active": both, "active_z1", "active_z2",
        "variances": (L1 + L2,) array}.
        """
        if len(x) == 0:
            raise ValueError("HierarchicalVAE.active_units: x is empty")
        means1, means2 = [], []
        with no_grad():
            for start in range(0, len(x), batch_size):
                mu1 = self.encode(x[start:start + batch_size])[0]
                means1.append(to_numpy(mu1.data, np.float64))
                means2.append(to_numpy(self.encode2(mu1)[0].data, np.float64))
        v1, v2 = np.concatenate(means1).var(axis=0), np.concatenate(means2).var(axis=0)
        a1, a2 = int((v1 > threshold).sum()), int((v2 > threshold).sum())
        return {"active": a1 + a2, "active_z1": a1, "active_z2": a2, "variances": np.concatenate([v1, v2])}

    # ---- the GenerativeModel contract -----------------------------------------------------------------
    def evaluate(self, x, y, rng: np.random.Generator, batch_size: int = 1000) -> Dict[str, float]:
        """Test -ELBO (nats per example, one sample per example), its three terms, and each layer's active units."""
        sums = {"reconstruction": 0.0, "kl_z1": 0.0, "kl_z2": 0.0}
        with no_grad():
            for start in range(0, len(x), batch_size):
                xb = x[start:start + batch_size]
                parts = self.terms(xb, self.standard_normal(rng, (len(xb), self.latent_dim)))
                for name in sums:
                    sums[name] += float(parts[name].data) * len(xb)
        metrics = {name: total / len(x) for name, total in sums.items()}
        metrics["kl"] = metrics["kl_z1"] + metrics["kl_z2"]
        metrics["neg_elbo"] = metrics["reconstruction"] + metrics["kl"]
        units = self.active_units(x)
        metrics.update(active_units=units["active"], active_z1=units["active_z1"], active_z2=units["active_z2"])
        return metrics

    def sample_layers(self, z2, rng: np.random.Generator) -> np.ndarray:
        """Ancestral sampling below z2 (n, L2): z1 ~ p(z1 | z2), then the mean image E[x | z1]: (n, C, H, W)."""
        with no_grad():
            prior_mu, prior_logvar = (t.data for t in self.prior(self._xp().asarray(z2, dtype=self.dtype)))
            z1 = prior_mu + self._xp().exp(0.5 * prior_logvar) * self.standard_normal(rng, prior_mu.shape)
            return self.as_images(self.mean_image(self.decode(z1).data))

    def sample(self, n: int, rng: np.random.Generator, y=None) -> np.ndarray:
        """Mean images E[x | z1] for n ancestral draws z2 ~ N(0, I), z1 ~ p(z1 | z2): (n, C, H, W)."""
        return self.sample_layers(self.standard_normal(rng, (n, self.latent2)), rng)

    def latent_traversal(self, x0, dims=None, values=np.linspace(-3, 3, 9), y=None) -> np.ndarray:
        """The VAE's traversal, in z1 (the layer the decoder reads)."""
        return super().latent_traversal(x0, list(range(min(self.latent1, 10))) if dims is None else dims, values, y)

    def save_pictures(self, out_dir, data, rng: np.random.Generator, tag: str = ""):
        """The VAE's pictures, and ``layers``: each row one z2 ~ N(0, I), its columns 10 draws of z1 ~ p(z1 | z2)
        (what the top layer decides, and what it leaves to the lower one)."""
        from ...plots import save_image_grid

        paths = super().save_pictures(out_dir, data, rng, tag)
        z2 = np.repeat(rng.standard_normal((8, self.latent2)), 10, axis=0)
        name = f"layers_{tag}.png" if tag else "layers.png"
        paths.append(save_image_grid(self.sample_layers(z2, rng), os.path.join(out_dir, name), nrow=10,
                                     scale=max(1, 84 // self.image_shape[1])))
        return paths


def _gaussian_nll(x, mean, logvar):
    """-log N(x; mean, e^logvar) elementwise, on arrays: 0.5 (log 2pi + v + (x - m)^2 e^-v)."""
    return kernel("gaussian_nll_forward")(x, mean, logvar)


# ---- CLI registration ----------------------------------------------------------------------------
@register_model("hvae", family="vae",
                defaults={"hidden": 200, "latent": 100, "hidden2": 100, "latent2": 50, "hidden_layers": 2,
                          "activation": "relu", "decoder": "bernoulli", "beta": 1.0, "kl_warmup": 1000, "lr": 1e-3, "epochs": 30,
                          "batch_size": 100},
                description="two-stochastic-layer VAE (x -> z1 -> z2, top-down p(z1|z2)); Burda et al.'s 2-layer model")
def build_hvae(config: Dict, data_info: DataInfo, rng) -> HierarchicalVAE:
    return HierarchicalVAE(data_info.image_shape, hidden=int(config["hidden"]), latent=int(config["latent"]),
                           hidden2=int(config["hidden2"]), latent2=int(config["latent2"]),
                           hidden_layers=int(config["hidden_layers"]), activation=config["activation"],
                           decoder=config["decoder"], beta=float(config["beta"]), kl_warmup=int(config["kl_warmup"]),
                           lr=float(config["lr"]), rng=rng)


# ---- gradcheck case: the negative ELBO with both layers' noise held fixed ---------------------------
def _tiny_case(rng, decoder: str = "bernoulli"):
    model = HierarchicalVAE((1, 2, 3), hidden=4, latent=3, hidden2=3, latent2=2, hidden_layers=1, activation="tanh",
                            decoder=decoder, beta=1.5, rng=rng, dtype=np.float64)
    x = rng.uniform(0.05, 0.95, (4, 6))
    eps = rng.standard_normal((4, model.latent_dim))
    return parameter_case(model, lambda: model.loss(x, eps)[0])


register_case("hvae_loss")(_tiny_case)
register_case("hvae_gaussian_loss")(lambda rng: _tiny_case(rng, decoder="gaussian"))
