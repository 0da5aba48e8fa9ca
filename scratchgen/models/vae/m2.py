"""Semi-supervised VAE "M2" (Kingma, Rezende, Mohamed & Welling 2014): a few labels, many images.

Generative model, with a discrete class y and a continuous style z:

    p(y) = 1/K (uniform)     p(z) = N(0, I)     p(x | y, z) = Bernoulli(sigmoid(decoder(y, z)))
                                                 (or N(decoder(y, z), e^v I) with decoder="gaussian",
                                                  for real-valued x such as the codes of an M1 VAE)

Inference model: a classifier q(y | x) = softmax(classifier(x)) and q(z | x, y) = N(mu(x, y), diag exp(logvar(x, y))).

Sign conventions (the paper's): L and U are *losses*, the negated lower bounds.

    labelled      -L(x, y) = E_q(z|x,y)[log p(x|y,z) + log p(y) + log p(z) - log q(z|x,y)]  <=  log p(x, y)
                  L(x, y)  = BCE(x, decoder(y, z)) + KL(q(z|x,y) || p(z)) + log K
    unlabelled    -U(x)    = sum_y q(y|x) (-L(x, y)) + H(q(y|x))                             <=  log p(x)
                  U(x)     = sum_y q(y|x) (L(x, y) + log q(y|x))
    objective     J = mean_labelled L(x, y) + mean_unlabelled U(x) + alpha * mean_labelled [-log q(y|x)]

The last term trains the classifier on the labelled examples directly (in L and U it only
receives gradient through the unlabelled weighting); alpha sets its weight against the
per-example bounds (the paper's alpha = 0.1 N for sums over a dataset of N examples).

``beta`` (class default 1, the paper's bound) weights the KL term inside L. With beta = 1 and a
50-D z, a short run learns to carry the digit in z and ignore y: L(x, y) then hardly depends on
y, U teaches the classifier nothing, and the style grid shows the same digit in every column.
beta > 1 makes that detour cost more. Measured on the MNIST split (8000 images, 100 labels, ReLU,
benchmarks/exp_m2.py, ~10 CPU-minutes): test error 26.8% with beta = 1 (17 epochs) against
10.5% with beta = 3 (59 epochs; generative classifier argmin_y L(x, y): 11.3%). The CLI's "m2"
defaults therefore use ReLU and beta = 3.

Cost of U: every unlabelled x is decoded once per class. The first layers are split so that
the x-part is computed once per example and only the cheap one-hot part per class:

    encoder layer 1:  x W_x^T + (onehot(y) W_y^T + b)    x part (B, H) broadcast against the (K, H) class rows
    decoder layer 1:  z V_z^T + (onehot(y) V_y^T + c)    per (class, example) row, (K B, H)

Semi-supervision with the generic training loop: ``train_step(x, y, rng)`` treats the batch as
*unlabelled* and never reads its labels, except to fill the labelled pool: the first
``num_labels / K`` examples of each class that arrive (in the shuffled order) become the
labelled set, which then never changes (it is a buffer, saved in checkpoints). Each step adds a
batch of ``labelled_batch`` examples drawn from that pool. ``set_labelled(x, y)`` fixes the pool
explicitly instead.
"""
from __future__ import annotations

import math
import os
from typing import Dict, Optional, Tuple

import numpy as np

from ...device import to_numpy
from ... import nn, ops
from ...grad_mode import no_grad
from ...gradcheck import register_case
from ...optim import Adam
from ...tensor import Tensor
from ...data.transforms import one_hot
from ..image_model import ImageModel, activation_module, mlp, parameter_case
from ..base import DataInfo, register_model

__all__ = ["M2"]


class M2(ImageModel):
    """M2 semi-supervised VAE. image_shape (C, H, W); K = num_classes; hidden H; latent size; see module docstring."""

    def __init__(self, image_shape, num_classes: int = 10, hidden: int = 500, latent: int = 50, hidden_layers: int = 1,
                 activation: str = "softplus", alpha: float = 10.0, num_labels: int = 100, labelled_batch: int = 100,
                 classifier_hidden: Optional[int] = None, decoder: str = "bernoulli", beta: float = 1.0, lr: float = 1e-3,
                 rng=None, dtype=np.float32):
        super().__init__(image_shape, dtype)
        if decoder not in ("bernoulli", "gaussian"):
            raise ValueError(f"M2: decoder must be 'bernoulli' or 'gaussian', got {decoder!r}")
        self.decoder_kind = decoder
        if int(num_classes) < 2:
            raise ValueError(f"M2: num_classes must be >= 2, got {num_classes}")
        if int(num_labels) < num_classes:
            raise ValueError(f"M2: num_labels must be at least one per class ({num_classes}), got {num_labels}")
        rng = np.random.default_rng(rng)
        d, k, h = self.num_features, int(num_classes), int(hidden)
        self.num_classes, self.hidden, self.latent_dim, self.alpha = k, h, int(latent), float(alpha)
        if beta < 0:
            raise ValueError(f"M2: beta must be >= 0, got {beta}")
        self.beta = float(beta)
        self.activation_name, self.labelled_batch = activation, int(labelled_batch)
        ch = int(classifier_hidden or hidden)
        act = activation
        # q(y|x): the classifier.
        self.classifier = mlp([d] + [ch] * int(hidden_layers) + [k], act, rng, dtype)
        # q(z|x,y): split first layer (x part without bias, y part with it), then shared layers and two heads.
        self.encoder_x = nn.Linear(d, h, bias=False, rng=rng, dtype=dtype)
        self.encoder_y = nn.Linear(k, h, rng=rng, dtype=dtype)
        self.encoder_rest = nn.Sequential(activation_module(act), *_more_layers(h, int(hidden_layers) - 1, act, rng, dtype))
        self.mu_head = nn.Linear(h, self.latent_dim, rng=rng, dtype=dtype)
        self.logvar_head = nn.Linear(h, self.latent_dim, rng=rng, dtype=dtype)
        # p(x|y,z): split first layer, shared layers, Bernoulli logits.
        self.decoder_z = nn.Linear(self.latent_dim, h, bias=False, rng=rng, dtype=dtype)
        self.decoder_y = nn.Linear(k, h, rng=rng, dtype=dtype)
        self.decoder_rest = nn.Sequential(activation_module(act), *_more_layers(h, int(hidden_layers) - 1, act, rng, dtype),
                                          nn.Linear(h, d, rng=rng, dtype=dtype))
        if decoder == "gaussian":
            self.decoder_logvar = nn.Parameter(np.zeros(1, dtype=dtype))  # one learned variance for all features
        # The labelled pool: slots [c * per_class, (c + 1) * per_class) hold class c; label -1 = empty.
        self.per_class = int(num_labels) // k
        self.register_buffer("labelled_x", np.zeros((self.per_class * k, d), dtype=dtype))
        self.register_buffer("labelled_y", np.full(self.per_class * k, -1, dtype=np.int64))
        self.optimizers = {"model": Adam(self.parameters(), lr=lr)}

    # ---- the three networks ------------------------------------------------------------------------
    def classifier_logits(self, x) -> Tensor:
        """Logits of q(y|x): (N, K)."""
        return self.classifier(self._flat_tensor(x))

    def _flat_tensor(self, x) -> Tensor:
        return x if isinstance(x, Tensor) else Tensor(self.as_flat(x))

    def _eye(self) -> Tensor:
        return Tensor(self._xp().eye(self.num_classes, dtype=self.dtype))

    def _q_z(self, pre: Tensor) -> Tuple[Tensor, Tensor]:
        """(mu, logvar) from the encoder's first-layer pre-activation (R, H)."""
        features = self.encoder_rest(pre)
        return self.mu_head(features), self.logvar_head(features)

    def _nll(self, out: Tensor, x) -> Tensor:
        """-log p(x | y, z) per element (BCE from logits, or Gaussian NLL), not yet summed over features."""
        if self.decoder_kind == "bernoulli":
            return ops.sigmoid_bce_with_logits(out, x, reduction="none")
        return ops.gaussian_nll(out, x, self.decoder_logvar, reduction="none")

    def _neg_bound_terms(self, enc_pre: Tensor, dec_y: Tensor, x, eps, shape) -> Tensor:
        """L per row: enc_pre (R, H), dec_y broadcastable to the decoder's (.., H) rows, eps (R, latent).

        ``shape`` is (R,) for labelled rows or (K, B) for every-class rows (then the decoder works
        on (K, B, H) before flattening, so dec_y (K, 1, H) adds one class row per block).
        """
        mu, logvar = self._q_z(enc_pre)
        z = ops.reparameterize(mu, logvar, eps)
        dec_z = self.decoder_z(z)
        if len(shape) == 2:
            k, b = shape
            pre = (dec_z.reshape(k, b, self.hidden) + dec_y).reshape(k * b, self.hidden)
            logits = self.decoder_rest(pre).reshape(k, b, self.num_features)
            nll = ops.sum(self._nll(logits, x), axis=2)
            kl = ops.sum(ops.gaussian_kl_standard(mu, logvar, reduction="none"), axis=1).reshape(k, b)
        else:
            logits = self.decoder_rest(dec_z + dec_y)
            nll = ops.sum(self._nll(logits, x), axis=1)
            kl = ops.sum(ops.gaussian_kl_standard(mu, logvar, reduction="none"), axis=1)
        if self.beta != 1.0:
            kl = self.beta * kl
        return nll + kl + math.log(self.num_classes)

    def labelled_loss(self, x, y, eps) -> Tensor:
        """L(x, y) per example (N,): x (N, D), integer labels y (N,), eps (N, latent)."""
        x = self._flat_tensor(x)
        onehot = Tensor(one_hot(_host_int(y), self.num_classes, like=x.data))
        eps = self._check_eps(eps, (x.shape[0], self.latent_dim))
        enc_pre = self.encoder_x(x) + self.encoder_y(onehot)
        return self._neg_bound_terms(enc_pre, self.decoder_y(onehot), x.data, eps, (x.shape[0],))

    def neg_bound_every_class(self, x, eps) -> Tensor:
        """L(x, y) for every class y: (K, N). eps: (K, N, latent), one noise draw per (class, example)."""
        x = self._flat_tensor(x)
        k, n = self.num_classes, x.shape[0]
        eps = self._check_eps(eps, (k, n, self.latent_dim)).reshape(k * n, self.latent_dim)
        eye = self._eye()
        enc_pre = (self.encoder_x(x).reshape(1, n, self.hidden) + self.encoder_y(eye).reshape(k, 1, self.hidden))
        dec_y = self.decoder_y(eye).reshape(k, 1, self.hidden)
        return self._neg_bound_terms(enc_pre.reshape(k * n, self.hidden), dec_y, x.data, eps, (k, n))

    def unlabelled_loss(self, x, eps) -> Tensor:
        """U(x) = sum_y q(y|x) (L(x, y) + log q(y|x)) per example (N,). eps: (K, N, latent)."""
        log_q = ops.log_softmax(self.classifier_logits(x), axis=1)  # (N, K)
        q = ops.exp(log_q)
        bound = self.neg_bound_every_class(x, eps)  # (K, N)
        return ops.sum(q * (bound.T + log_q), axis=1)

    def loss(self, x_unlabelled, eps_unlabelled, x_labelled, y_labelled, eps_labelled) -> Tuple[Tensor, Dict[str, Tensor]]:
        """J = mean L(x_l, y_l) + mean U(x_u) + alpha * mean CE(q(y|x_l), y_l), with all noise explicit.

        Either set may be empty (None): its terms are then left out.
        """
        parts: Dict[str, Tensor] = {}
        total = None
        if x_unlabelled is not None and len(x_unlabelled):
            parts["unlabelled"] = ops.mean(self.unlabelled_loss(x_unlabelled, eps_unlabelled))
            total = parts["unlabelled"]
        if x_labelled is not None and len(x_labelled):
            parts["labelled"] = ops.mean(self.labelled_loss(x_labelled, y_labelled, eps_labelled))
            logits = self.classifier_logits(x_labelled)
            labels = self._xp().asarray(_host_int(y_labelled))
            parts["classification"] = ops.softmax_cross_entropy(logits, labels, reduction="mean")
            labelled = parts["labelled"] + self.alpha * parts["classification"]
            total = labelled if total is None else total + labelled
        if total is None:
            raise ValueError("M2.loss: both the unlabelled and the labelled batch are empty")
        return total, parts

    def _check_eps(self, eps, shape):
        eps = eps.data if isinstance(eps, Tensor) else eps
        if tuple(eps.shape) != tuple(shape):
            raise ValueError(f"M2: eps has shape {tuple(eps.shape)}, expected {tuple(shape)}")
        return self._xp().asarray(eps).astype(self.dtype, copy=False)

    # ---- the labelled pool -------------------------------------------------------------------------
    def set_labelled(self, x, y) -> None:
        """Use exactly these labelled examples (x images or (N, D), y (N,)); replaces the pool."""
        x = self.as_flat(x)
        y = _host_int(y)
        if len(x) != len(y):
            raise ValueError(f"M2.set_labelled: {len(x)} images but {len(y)} labels")
        self.register_buffer("labelled_x", x.copy())
        self.register_buffer("labelled_y", self._xp().asarray(y.copy()) if self._xp() is not np else y.copy())

    def _fill_pool(self, x, y) -> None:
        """Put the first examples of each class not yet full into the pool (until per_class each)."""
        pool_y = _host_int(self.labelled_y)
        if (pool_y >= 0).all() or y is None:
            return
        x_flat = self.as_flat(x)
        for i, label in enumerate(_host_int(y)):
            start = int(label) * self.per_class
            free = np.flatnonzero(pool_y[start : start + self.per_class] < 0)
            if free.size:
                slot = start + int(free[0])
                self.labelled_x[slot] = x_flat[i]
                self.labelled_y[slot] = int(label)
                pool_y[slot] = int(label)

    def labelled_pool(self):
        """(x (M, D), y (M,)) of the filled slots of the labelled pool."""
        filled = np.flatnonzero(_host_int(self.labelled_y) >= 0)
        return self.labelled_x[filled], _host_int(self.labelled_y)[filled]

    # ---- the GenerativeModel contract --------------------------------------------------------------
    def train_step(self, x, y, rng: np.random.Generator) -> Dict[str, float]:
        """x is used as *unlabelled*; y only fills the labelled pool (see the module docstring)."""
        self._fill_pool(x, y)
        x_u = self.training_batch(x, rng)
        pool_x, pool_y = self.labelled_pool()
        take = rng.choice(len(pool_x), size=min(self.labelled_batch, len(pool_x)), replace=False)
        x_l, y_l = pool_x[take], pool_y[take]
        eps_u = self.standard_normal(rng, (self.num_classes, len(x_u), self.latent_dim))
        eps_l = self.standard_normal(rng, (len(x_l), self.latent_dim))
        loss, parts = self.loss(x_u, eps_u, x_l, y_l, eps_l)
        return self.optimize(loss, parts)

    def predict(self, x, batch_size: int = 1000) -> np.ndarray:
        """argmax_y q(y|x): (N,) int64."""
        with no_grad():
            return np.concatenate([_host_int(self.classifier_logits(x[i : i + batch_size]).data.argmax(axis=1))
                                   for i in range(0, len(x), batch_size)])

    def evaluate(self, x, y, rng: np.random.Generator, batch_size: int = 500) -> Dict[str, float]:
        """Test error of q(y|x); mean L(x, y) with the true labels and mean U(x) (nats per example);
        and the error of the generative classifier argmin_y L(x, y) (one z sample per class)."""
        y = _host_int(y)
        metrics = {"error": float((self.predict(x) != y).mean()), "labelled_bound": 0.0, "unlabelled_bound": 0.0,
                   "generative_error": 0.0}
        with no_grad():
            for start in range(0, len(x), batch_size):
                xb, yb = x[start : start + batch_size], y[start : start + batch_size]
                eps_l = self.standard_normal(rng, (len(xb), self.latent_dim))
                eps_u = self.standard_normal(rng, (self.num_classes, len(xb), self.latent_dim))
                metrics["labelled_bound"] += float(self.labelled_loss(xb, yb, eps_l).data.sum())
                metrics["unlabelled_bound"] += float(self.unlabelled_loss(xb, eps_u).data.sum())
                every_class = to_numpy(self.neg_bound_every_class(xb, eps_u).data)
                metrics["generative_error"] += float((every_class.argmin(axis=0) != yb).sum())
        for name in ("labelled_bound", "unlabelled_bound", "generative_error"):
            metrics[name] /= len(x)
        metrics["labels_used"] = int((_host_int(self.labelled_y) >= 0).sum())
        return metrics

    def generate(self, z, y) -> np.ndarray:
        """Mean images for styles z (N, latent) and labels y (N,): (N, C, H, W)."""
        z = Tensor(self._xp().asarray(z, dtype=self.dtype))
        onehot = Tensor(one_hot(_host_int(y), self.num_classes, like=z.data))
        with no_grad():
            logits = self.decoder_rest(self.decoder_z(z) + self.decoder_y(onehot))
            out = ops.sigmoid(logits).data if self.decoder_kind == "bernoulli" else logits.data
            return self.as_images(out)

    def sample(self, n: int, rng: np.random.Generator, y=None) -> np.ndarray:
        """n images with labels y (default 0..K-1 repeated) and z ~ N(0, I)."""
        y = np.arange(n) % self.num_classes if y is None else _host_int(y)
        return self.generate(rng.standard_normal((n, self.latent_dim)), y)

    def reconstruct(self, x) -> np.ndarray:
        """Decode (y_hat, mu(x, y_hat)) with y_hat = argmax q(y|x)."""
        y_hat = self.predict(x)
        with no_grad():
            xf = self._flat_tensor(x)
            onehot = Tensor(one_hot(y_hat, self.num_classes, like=xf.data))
            mu, _ = self._q_z(self.encoder_x(xf) + self.encoder_y(onehot))
        return self.generate(mu.data, y_hat)

    def style_grid(self, z) -> np.ndarray:
        """Rows = styles z (R, latent), columns = the K classes: (R K, C, H, W)."""
        z = to_numpy(z)
        return self.generate(np.repeat(z, self.num_classes, axis=0), np.tile(np.arange(self.num_classes), len(z)))

    def save_pictures(self, out_dir, data, rng: np.random.Generator, tag: str = ""):
        """reconstructions; styles (rows: a test image's inferred style, columns: every digit);
        samples (rows: one z ~ N(0, I) each, columns: every digit - fix z, vary y; down a column: fix y, vary z)."""
        from ...plots import save_image_grid

        scale = max(1, 84 // self.image_shape[1])
        suffix = f"_{tag}" if tag else ""
        paths = [self.save_reconstructions(out_dir, data.test.x, tag)]
        x = np.asarray(data.test.x[:8])
        y_hat = self.predict(x)
        with no_grad():
            xf = self._flat_tensor(x)
            mu, _ = self._q_z(self.encoder_x(xf) + self.encoder_y(Tensor(one_hot(y_hat, self.num_classes, like=xf.data))))
        styles = self.style_grid(mu.data)
        k = self.num_classes
        # Prepend each row's source image, so the row reads "this style, drawn as every digit".
        rows = [np.concatenate([x[r : r + 1].reshape((1,) + self.image_shape), styles[r * k : (r + 1) * k]]) for r in range(len(x))]
        paths.append(save_image_grid(np.concatenate(rows), os.path.join(out_dir, f"styles{suffix}.png"), nrow=k + 1, scale=scale))
        prior = self.style_grid(rng.standard_normal((8, self.latent_dim)))
        paths.append(save_image_grid(prior, os.path.join(out_dir, f"samples{suffix}.png"), nrow=k, scale=scale))
        return paths


def _more_layers(h: int, count: int, act: str, rng, dtype):
    layers = []
    for _ in range(count):
        layers += [nn.Linear(h, h, rng=rng, dtype=dtype), activation_module(act)]
    return layers


def _host_int(y) -> np.ndarray:
    y = y.data if isinstance(y, Tensor) else y
    return to_numpy(y).astype(np.int64, copy=False)


@register_model("m2", family="vae",
                defaults={"hidden": 500, "latent": 50, "hidden_layers": 1, "activation": "relu", "alpha": 10.0, "beta": 3.0,
                          "num_labels": 100, "labelled_batch": 100, "lr": 1e-3, "epochs": 50, "batch_size": 100},
                description="semi-supervised VAE M2 (Kingma et al. 2014): few labels (num_labels), the rest unlabelled")
def build_m2(config: Dict, data_info: DataInfo, rng) -> M2:
    return M2(data_info.image_shape, num_classes=data_info.num_classes, hidden=int(config["hidden"]),
              latent=int(config["latent"]), hidden_layers=int(config["hidden_layers"]), activation=config["activation"],
              alpha=float(config["alpha"]), beta=float(config["beta"]), num_labels=int(config["num_labels"]),
              labelled_batch=int(config["labelled_batch"]),
              lr=float(config["lr"]), rng=rng)


# ---- gradcheck case: the full objective (unlabelled + labelled + classification), noise fixed ------------
def _tiny_case(rng):
    model = M2((1, 2, 3), num_classes=3, hidden=4, latent=2, num_labels=3, alpha=2.0, rng=rng, dtype=np.float64)
    x_u, x_l = rng.uniform(0.05, 0.95, (3, 6)), rng.uniform(0.05, 0.95, (2, 6))
    y_l = np.array([2, 0])
    eps_u, eps_l = rng.standard_normal((3, 3, 2)), rng.standard_normal((2, 2))
    return parameter_case(model, lambda: model.loss(x_u, eps_u, x_l, y_l, eps_l)[0])


register_case("m2_loss")(_tiny_case)
