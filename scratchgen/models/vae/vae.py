"""Variational autoencoders (Kingma & Welling 2014): MLP and convolutional, with beta (Higgins et al. 2017).

Generative model p(z) = N(0, I), p(x|z) = Bernoulli(sigmoid(decoder(z))) or N(decoder(z), e^v I).
Inference model q(z|x) = N(mu(x), diag exp(logvar(x))). One z per example, reparameterised so
the noise is an explicit input and the loss is differentiable in (mu, logvar):

    z = mu + exp(0.5 logvar) * eps,   eps ~ N(0, I)             eps: (N, latent)

The evidence lower bound and the loss (both per example, averaged over the batch):

    ELBO(x) = E_q[log p(x|z)] - KL(q(z|x) || p(z))  <=  log p(x)
    loss    = -log p(x|z) + beta * KL,    KL = 0.5 sum_j (mu_j^2 + exp(logvar_j) - logvar_j - 1)

beta = 1 is the VAE; beta > 1 (beta-VAE) trades reconstruction for a more factorised code.
KL warm-up (Bowman et al. 2016; Sonderby et al. 2016), off by default: with ``kl_warmup = T``
the training loss weighs the KL term by beta * min(1, t / T) at the t-th step (t = 1, 2, ...),
so that the decoder learns to use z before the KL term can pull every q(z|x) onto the prior
(the "collapse" a VAE with many or deep latents falls into early). t is the optimiser's step
count, which checkpoints keep, so a resumed run continues the same ramp. Evaluation always uses beta.
(T = 1 weighs the very first step fully: no warm-up, like T = 0.)
-log p(x|z) is the binary cross-entropy from logits (Bernoulli decoder; on grey levels this is a
cross-entropy, not a normalised likelihood) or the Gaussian negative log-likelihood with one
learned log-variance v shared by all pixels (a per-pixel variance would collapse to 0 on the
always-black border of MNIST and send the likelihood to infinity).

Shapes: x (N, D) with D = C H W (images are flattened on the way in); hidden layers of size H;
mu, logvar, z: (N, latent); decoder output (N, D).

For evaluation (scratchgen/evaluation/likelihood.py) a VAE also gives per-example ELBOs with
the analytic KL (``elbo``), the log importance weights of S samples per example
(``log_importance_weights``, for the IWAE bound) and the posterior means (``encode_mean``).
"""
from __future__ import annotations

import os
from typing import Dict, Optional, Tuple

import numpy as np

from ...device import to_numpy
from ... import nn, ops
from ...grad_mode import no_grad
from ...gradcheck import register_case
from ...optim import Adam
from ...tensor import Tensor
from ..image_model import ImageModel, activation_module, fan_in_uniform, mlp, parameter_case
from ..base import DataInfo, register_model

__all__ = ["VAE", "ConvVAE", "DECODERS"]

DECODERS = ("bernoulli", "gaussian")


class VAE(ImageModel):
    """MLP VAE: D -> H (x hidden_layers) -> (mu, logvar) in R^latent; latent -> H (x hidden_layers) -> D.

    Weights start U(-1/sqrt(fan_in), 1/sqrt(fan_in)) (``fan_in_uniform``), biases at 0.

    decoder: "bernoulli" (sigmoid logits, BCE) or "gaussian" (means + one learned log-variance);
    beta: weight of the KL term; kl_warmup: steps of the KL warm-up (0: none); activation: hidden
    nonlinearity; lr: Adam learning rate.
    """

    condition_size = 0  # extra one-hot inputs of encoder and decoder (the CVAE sets it)

    def __init__(self, image_shape, hidden: int = 400, latent: int = 20, hidden_layers: int = 1,
                 activation: str = "relu", decoder: str = "bernoulli", beta: float = 1.0, lr: float = 1e-3,
                 rng=None, dtype=np.float32, network_options: Optional[Dict] = None, kl_warmup: int = 0):
        super().__init__(image_shape, dtype)
        if decoder not in DECODERS:
            raise ValueError(f"{type(self).__name__}: decoder must be one of {DECODERS}, got {decoder!r}")
        for name, value in (("hidden", hidden), ("latent", latent), ("hidden_layers", hidden_layers)):
            if int(value) < 1:
                raise ValueError(f"{type(self).__name__}: {name} must be >= 1, got {value}")
        if beta < 0:
            raise ValueError(f"{type(self).__name__}: beta must be >= 0, got {beta}")
        if int(kl_warmup) < 0:
            raise ValueError(f"{type(self).__name__}: kl_warmup must be >= 0 steps, got {kl_warmup}")
        self.kl_warmup = int(kl_warmup)
        rng = np.random.default_rng(rng)
        self.hidden, self.latent_dim, self.hidden_layers = int(hidden), int(latent), int(hidden_layers)
        self.activation_name, self.decoder_kind, self.beta = activation, decoder, float(beta)
        self._build_networks(rng, **(network_options or {}))
        if decoder == "gaussian":
            self.decoder_logvar = nn.Parameter(np.zeros(1, dtype=dtype))
        self.optimizers = {"model": Adam(self.parameters(), lr=lr)}

    def _build_networks(self, rng) -> None:
        """encoder: (N, D [+K]) -> (N, H); mu_head, logvar_head: H -> latent; decoder: (N, latent [+K]) -> (N, D)."""
        k, act, h, init = self.condition_size, self.activation_name, self.hidden, fan_in_uniform
        self.encoder = mlp([self.num_features + k] + [h] * self.hidden_layers, act, rng, self.dtype, final_activation=act,
                           init=init)
        self.mu_head = nn.Linear(h, self.latent_dim, init=init, rng=rng, dtype=self.dtype)
        self.logvar_head = nn.Linear(h, self.latent_dim, init=init, rng=rng, dtype=self.dtype)
        self.decoder = mlp([self.latent_dim + k] + [h] * self.hidden_layers + [self.num_features], act, rng, self.dtype,
                           init=init)

    # ---- conditioning hooks (identity here; the CVAE appends one-hot labels) ------------------------
    def _encoder_input(self, x: Tensor, y) -> Tensor:
        return x

    def _decoder_input(self, z: Tensor, y) -> Tensor:
        return z

    # ---- the networks ------------------------------------------------------------------------------
    def _flat_tensor(self, x) -> Tensor:
        return x if isinstance(x, Tensor) else Tensor(self.as_flat(x))

    def encode(self, x, y=None) -> Tuple[Tensor, Tensor]:
        """q(z|x): (mu, logvar), each (N, latent). x: images or (N, D) (array or Tensor)."""
        features = self.encoder(self._encoder_input(self._flat_tensor(x), y))
        return self.mu_head(features), self.logvar_head(features)

    def decode(self, z, y=None) -> Tensor:
        """Decoder output (N, D): Bernoulli logits or Gaussian means."""
        z = z if isinstance(z, Tensor) else Tensor(z)
        return self.decoder(self._decoder_input(z, y))

    def reconstruction_nll(self, out: Tensor, x, reduction: str = "batch_sum") -> Tensor:
        """-log p(x|z) from the decoder output, summed over the D features (see ``reduction``)."""
        if self.decoder_kind == "bernoulli":
            return ops.sigmoid_bce_with_logits(out, x, reduction=reduction)
        return ops.gaussian_nll(out, x, self.decoder_logvar, reduction=reduction)

    def mean_image(self, out) -> object:
        """E[x|z] from the decoder output array: sigmoid(logits) or the Gaussian means (clipped to [0, 1])."""
        if self.decoder_kind == "bernoulli":
            return ops.sigmoid(Tensor(out)).data
        return self._xp().clip(out, 0, 1)

    # ---- the loss ------------------------------------------------------------------------------------
    def kl_weight(self) -> float:
        """The KL term's weight for the next training step: beta, ramped up over ``kl_warmup`` steps."""
        if self.kl_warmup == 0:
            return self.beta
        step = max(self.optimizers["model"].steps, default=0) + 1
        return self.beta * min(1.0, step / self.kl_warmup)

    def loss(self, x, eps, y=None, kl_weight: Optional[float] = None) -> Tuple[Tensor, Dict[str, Tensor]]:
        """beta-weighted negative ELBO for x (N, D) and explicit noise eps (N, latent).

        Returns (loss, {"reconstruction": -log p(x|z), "kl": KL(q || p)}), batch means of per-example sums.
        ``kl_weight``: the KL term's weight (default beta; ``train_step`` passes the warm-up's).
        """
        x = self._flat_tensor(x)
        eps = self._check_eps(eps, (x.shape[0], self.latent_dim))
        mu, logvar = self.encode(x, y)
        z = ops.reparameterize(mu, logvar, eps)
        reconstruction = self.reconstruction_nll(self.decode(z, y), x.data)
        kl = ops.gaussian_kl_standard(mu, logvar, reduction="batch_sum")
        weight = self.beta if kl_weight is None else kl_weight
        total = reconstruction + weight * kl if weight != 1.0 else reconstruction + kl
        return total, {"reconstruction": reconstruction, "kl": kl}

    def _check_eps(self, eps, shape):
        """eps of the expected shape, in the model's dtype. A Tensor stays a Tensor (so a gradcheck
        can differentiate through the reparameterisation with respect to the noise too)."""
        if tuple(eps.shape) != tuple(shape):
            raise ValueError(f"{type(self).__name__}: eps has shape {tuple(eps.shape)}, expected {tuple(shape)} (N, latent)")
        if isinstance(eps, Tensor):
            return eps
        return self._xp().asarray(eps).astype(self.dtype, copy=False)

    def _importance_eps(self, eps, n: int):
        """The noise of S importance samples for n images: eps (S, n, latent_dim), checked, as an array."""
        if eps.ndim != 3:
            raise ValueError(f"{type(self).__name__}.log_importance_weights: eps must be (S, N, latent), got shape {eps.shape}")
        return self._check_eps(eps.data if isinstance(eps, Tensor) else eps, (eps.shape[0], n, self.latent_dim))

    # ---- evaluation quantities (arrays, no graph) -----------------------------------------------------
    def elbo(self, x, eps, y=None):
        """Per-example ELBO (N,) with the analytic KL and one z per example (beta is not applied)."""
        with no_grad():
            x = self._flat_tensor(x)
            eps = self._check_eps(eps, (x.shape[0], self.latent_dim))
            mu, logvar = self.encode(x, y)
            z = ops.reparameterize(mu, logvar, eps)
            nll = self.reconstruction_nll(self.decode(z, y), x.data, reduction="none").data.sum(axis=1)
            kl = ops.gaussian_kl_standard(mu, logvar, reduction="none").data.sum(axis=1)
        return -(nll + kl)

    def log_importance_weights(self, x, eps, y=None):
        """log p(x|z_s) + log p(z_s) - log q(z_s|x) for S samples per example: eps (S, N, latent) -> (S, N).

        With z = mu + sigma eps: log p(z) - log q(z|x) = -0.5 sum_j (z_j^2 - eps_j^2 - logvar_j)
        (the log 2 pi terms cancel).
        """
        with no_grad():
            x = self._flat_tensor(x)
            n = x.shape[0]
            eps = self._importance_eps(eps, n)
            s = eps.shape[0]
            mu, logvar = (t.data for t in self.encode(x, y))
            z = mu + self._xp().exp(0.5 * logvar) * eps  # (S, N, latent)
            y_rep = None if y is None else self._xp().tile(self._xp().asarray(y), s)
            out = self.decode(z.reshape(s * n, self.latent_dim), y_rep).data.reshape(s, n, self.num_features)
            log_px = -self.reconstruction_nll(Tensor(out), x.data, reduction="none").data.sum(axis=2)
            log_ratio = -0.5 * (z * z - eps * eps - logvar).sum(axis=2)
        return log_px + log_ratio

    def encode_mean(self, x, y=None):
        """E_q[z|x] = mu(x): (N, latent) array."""
        with no_grad():
            return self.encode(x, y)[0].data

    def active_units(self, x, y=None, threshold: float = 0.01, batch_size: int = 1000) -> Dict[str, object]:
        """Active latent units (Burda et al. 2015): unit u is active when Cov_x(E_q[z_u | x]) > threshold.

        An inactive unit's posterior mean does not move with x: the decoder ignores it and its KL
        term is ~0 ("posterior collapse"). Returns {"active": count, "variances": (latent,) array}.
        """
        if len(x) == 0:
            raise ValueError(f"{type(self).__name__}.active_units: x is empty")
        means = np.concatenate([to_numpy(self.encode_mean(x[i:i + batch_size], None if y is None else y[i:i + batch_size]),
                                         np.float64) for i in range(0, len(x), batch_size)])
        variances = means.var(axis=0)
        return {"active": int((variances > threshold).sum()), "variances": variances}

    # ---- the GenerativeModel contract -----------------------------------------------------------------
    def condition_labels(self, y):
        """The labels the model is conditioned on: none for a VAE (the CVAE returns y)."""
        return None

    def train_step(self, x, y, rng: np.random.Generator) -> Dict[str, float]:
        batch = self.training_batch(x, rng)
        eps = self.standard_normal(rng, (len(batch), self.latent_dim))
        weight = self.kl_weight()
        loss, parts = self.loss(batch, eps, self.condition_labels(y), kl_weight=weight)
        if self.kl_warmup:
            parts["kl_weight"] = weight
        return self.optimize(loss, parts)

    def evaluate(self, x, y, rng: np.random.Generator, batch_size: int = 1000) -> Dict[str, float]:
        """Test -ELBO (nats per example, one z per example), its two terms, and the active units."""
        sums = {"neg_elbo": 0.0, "reconstruction": 0.0, "kl": 0.0}
        y_used = self.condition_labels(y)
        with no_grad():
            for start in range(0, len(x), batch_size):
                xb = self._flat_tensor(x[start : start + batch_size])
                yb = None if y_used is None else y_used[start : start + batch_size]
                eps = self.standard_normal(rng, (xb.shape[0], self.latent_dim))
                _, parts = self.loss(xb, eps, yb)
                n = xb.shape[0]
                sums["reconstruction"] += float(parts["reconstruction"].data) * n
                sums["kl"] += float(parts["kl"].data) * n
        n = len(x)
        metrics = {"reconstruction": sums["reconstruction"] / n, "kl": sums["kl"] / n}
        metrics["neg_elbo"] = metrics["reconstruction"] + metrics["kl"]
        metrics["active_units"] = self.active_units(x, y=y_used)["active"]
        return metrics

    def reconstruct(self, x, y=None) -> np.ndarray:
        """Mean images E[x|z = mu(x)] (N, C, H, W): the decoder at the posterior mean."""
        with no_grad():
            mu, _ = self.encode(x, y)
            return self.as_images(self.mean_image(self.decode(mu, y).data))

    def sample(self, n: int, rng: np.random.Generator, y=None) -> np.ndarray:
        """Mean images E[x|z] for n draws z ~ N(0, I): (n, C, H, W)."""
        z = self.standard_normal(rng, (n, self.latent_dim))
        with no_grad():
            return self.as_images(self.mean_image(self.decode(z, y).data))

    def latent_traversal(self, x0, dims=None, values=np.linspace(-3, 3, 9), y=None) -> np.ndarray:
        """Decode mu(x0) with one latent coordinate at a time set to each of ``values``.

        Returns (len(dims) * len(values), C, H, W): row r varies latent dims[r]. The standard
        picture for a beta-VAE: a disentangled unit changes one factor (slant, width, ...).
        """
        dims = list(range(min(self.latent_dim, 10))) if dims is None else list(dims)
        mu = self.encode_mean(np.asarray(x0)[:1], y)  # (1, latent)
        z = self._xp().repeat(mu, len(dims) * len(values), axis=0)
        for r, d in enumerate(dims):
            z[r * len(values) : (r + 1) * len(values), d] = self._xp().asarray(np.asarray(values, dtype=self.dtype))
        y_rep = None if y is None else np.repeat(np.asarray(y)[:1], len(z))
        with no_grad():
            return self.as_images(self.mean_image(self.decode(z, y_rep).data))

    def save_pictures(self, out_dir, data, rng: np.random.Generator, tag: str = ""):
        """reconstructions, samples, latent traversal (beta-VAE or latent <= 10), 2-D latent scatter (final)."""
        from ...plots import save_image_grid, save_latent_scatter

        scale = max(1, 84 // self.image_shape[1])
        y_test = self.condition_labels(data.test.y)
        paths = [self.save_reconstructions(out_dir, data.test.x, tag, y=y_test)]
        paths.append(self.save_samples(out_dir, rng, tag))
        suffix = f"_{tag}" if tag else ""
        if self.beta != 1.0 or self.latent_dim <= 10:
            values = np.linspace(-3, 3, 9)
            paths.append(save_image_grid(self.latent_traversal(data.test.x[:1], values=values, y=None if y_test is None else y_test[:1]),
                                         os.path.join(out_dir, f"traversal{suffix}.png"), nrow=len(values), scale=scale))
        if not tag.startswith("epoch"):
            m = min(2000, len(data.test.x))
            codes = self.encode_mean(data.test.x[:m], None if y_test is None else y_test[:m])
            paths.append(save_latent_scatter(to_numpy(codes), data.test.y[:m], os.path.join(out_dir, f"latent{suffix}.png"),
                                             title=f"{type(self).__name__} posterior means" + ("" if self.latent_dim == 2 else " (PCA)")))
        return paths


class ConvVAE(VAE):
    """Convolutional VAE for images whose height and width are divisible by 4.

    encoder: (C, H, W) -conv 4x4 s2-> (c1, H/2, W/2) -conv 4x4 s2-> (c2, H/4, W/4) -> Linear -> hidden
    decoder: latent -> Linear -> (c2, H/4, W/4) -convT 4x4 s2-> (c1, H/2, W/2) -convT 4x4 s2-> (C, H, W) logits
    (k = 4, stride 2, padding 1 halves/doubles each side exactly, no output padding needed.)
    """

    def __init__(self, image_shape, channels=(32, 64), hidden: int = 256, latent: int = 16, **kwargs):
        c, h, w = image_shape
        if h % 4 or w % 4:
            raise ValueError(f"ConvVAE: image height and width must be divisible by 4, got {tuple(image_shape)}")
        channels = tuple(int(ch) for ch in channels)
        if len(channels) != 2:
            raise ValueError(f"ConvVAE: channels must be two ints (c1, c2), got {channels}")
        super().__init__(image_shape, hidden=hidden, latent=latent, network_options={"channels": channels}, **kwargs)

    def _build_networks(self, rng, channels=(32, 64)) -> None:
        self.channels = channels
        (c, h, w), (c1, c2), act = self.image_shape, channels, self.activation_name
        small = (c2, h // 4, w // 4)
        dt = self.dtype
        self.encoder = nn.Sequential(
            nn.Reshape((c, h, w)),
            nn.Conv2d(c, c1, 4, stride=2, padding=1, init="he_uniform", rng=rng, dtype=dt), activation_module(act),
            nn.Conv2d(c1, c2, 4, stride=2, padding=1, init="he_uniform", rng=rng, dtype=dt), activation_module(act),
            nn.Flatten(),
            nn.Linear(int(np.prod(small)), self.hidden, init="he_uniform", rng=rng, dtype=dt), activation_module(act),
        )
        self.mu_head = nn.Linear(self.hidden, self.latent_dim, rng=rng, dtype=dt)
        self.logvar_head = nn.Linear(self.hidden, self.latent_dim, rng=rng, dtype=dt)
        self.decoder = nn.Sequential(
            nn.Linear(self.latent_dim, int(np.prod(small)), init="he_uniform", rng=rng, dtype=dt), activation_module(act),
            nn.Reshape(small),
            nn.ConvTranspose2d(c2, c1, 4, stride=2, padding=1, init="he_uniform", rng=rng, dtype=dt), activation_module(act),
            nn.ConvTranspose2d(c1, c, 4, stride=2, padding=1, rng=rng, dtype=dt),
            nn.Flatten(),
        )


# ---- CLI registration ----------------------------------------------------------------------------
_VAE_DEFAULTS = {"hidden": 400, "latent": 20, "hidden_layers": 1, "activation": "relu", "decoder": "bernoulli",
                 "beta": 1.0, "kl_warmup": 0, "lr": 1e-3, "epochs": 30, "batch_size": 128}


def _vae_kwargs(config: Dict) -> Dict:
    return {"hidden": int(config["hidden"]), "latent": int(config["latent"]), "activation": config["activation"],
            "decoder": config["decoder"], "beta": float(config["beta"]), "lr": float(config["lr"]),
            "kl_warmup": int(config.get("kl_warmup", 0))}


@register_model("vae", family="vae", defaults=_VAE_DEFAULTS,
                description="VAE, MLP encoder/decoder (ReLU), Bernoulli or Gaussian decoder")
def build_vae(config: Dict, data_info: DataInfo, rng) -> VAE:
    return VAE(data_info.image_shape, hidden_layers=int(config["hidden_layers"]), rng=rng, **_vae_kwargs(config))


@register_model("beta-vae", family="vae", defaults={**_VAE_DEFAULTS, "latent": 10, "beta": 4.0},
                description="beta-VAE (KL weighted by beta > 1), latent traversal pictures")
def build_beta_vae(config: Dict, data_info: DataInfo, rng) -> VAE:
    return VAE(data_info.image_shape, hidden_layers=int(config["hidden_layers"]), rng=rng, **_vae_kwargs(config))


@register_model("conv-vae", family="vae",
                defaults={"channels": [32, 64], "hidden": 256, "latent": 16, "activation": "relu", "decoder": "bernoulli",
                          "beta": 1.0, "lr": 1e-3, "epochs": 20, "batch_size": 64},
                description="convolutional VAE (two stride-2 convs, two transposed convs); H, W divisible by 4")
def build_conv_vae(config: Dict, data_info: DataInfo, rng) -> ConvVAE:
    return ConvVAE(data_info.image_shape, channels=tuple(config["channels"]), rng=rng, **_vae_kwargs(config))


# ---- gradcheck cases: the beta-weighted negative ELBO with eps held fixed ---------------------------------
def _tiny_case(rng, cls=None, image_shape=(1, 2, 3), **kwargs):
    cls = cls or VAE
    model = cls(image_shape, rng=rng, dtype=np.float64, **kwargs)
    x = rng.uniform(0.05, 0.95, (4,) + tuple(image_shape))
    eps = rng.standard_normal((4, model.latent_dim))
    return parameter_case(model, lambda: model.loss(x, eps)[0])


register_case("vae_bernoulli_loss")(lambda rng: _tiny_case(rng, hidden=4, latent=2, activation="tanh", beta=1.5))
register_case("vae_gaussian_loss")(lambda rng: _tiny_case(rng, hidden=4, latent=2, hidden_layers=2, activation="softplus",
                                                          decoder="gaussian"))
register_case("conv_vae_loss")(lambda rng: _tiny_case(rng, ConvVAE, image_shape=(1, 4, 4), channels=(2, 2), hidden=3,
                                                      latent=2, activation="tanh"))
