"""Autoencoders: plain (under- or overcomplete, optionally tied) and sparse.

An autoencoder learns a code h of its input x and a way back:

    h     = f(x W_x^T + b_x)              encoder, f = sigmoid | tanh | relu | ... | linear
    x_hat = g(h W_h^T + b_h)              decoder; tied weights: W_h = W_x^T (half the parameters)

    x: (N, D)   W_x: (H, D)   h: (N, H)   W_h: (D, H)   x_hat: (N, D)

H < D is *undercomplete* (the bottleneck forces a summary of x; with f linear and squared error
it finds the PCA subspace); H >= D is *overcomplete* and needs a regulariser (sparsity here,
noise in denoising_autoencoder.py, a Jacobian penalty in contractive_autoencoder.py) to learn
more than the identity.

The output layer matches the data:
    "bernoulli"  g = sigmoid, loss = binary cross-entropy from the logits, for x in [0, 1]:
                 l(x) = sum_i max(a_i, 0) - a_i x_i + log1p(exp(-|a_i|)),  a = h W_h^T + b_h
    "gaussian"   g = identity, loss = squared error sum_i (x_i - a_i)^2, for real-valued x.
Losses are summed over the D features and averaged over the batch (nats, or squared units, per
example).

Sparse autoencoder: the average activation of hidden unit j over a batch,
rho_hat_j = mean_n h_nj, is pulled towards a small target rho by
    beta * sum_j KL(rho || rho_hat_j)                                ("kl", needs h in (0, 1))
or the activations themselves are penalised,
    beta * mean_n sum_j |h_nj|                                       ("l1").

Plain autoencoders do not define a density, but ``sample`` still gives a picture of what the
decoder has learned: it decodes codes drawn from Gaussians fitted to the training codes
(``fit_code_distribution``): one per class when labels are given (a mixture whose components
are the classes; the labels are used for this picture only, never in training), else one.
That is honest about being a fitted Gaussian and nothing more.
"""
from __future__ import annotations

import os
from typing import Dict, Tuple

import numpy as np

from ...device import to_numpy
from ... import nn, ops
from ...grad_mode import no_grad
from ...optim import Adam
from ...tensor import Tensor
from ...gradcheck import register_case
from ..image_model import ImageModel, activation_module, parameter_case
from ..base import DataInfo, register_model

__all__ = ["Autoencoder", "SparseAutoencoder", "OUTPUTS"]


class _ScatterSum:
    """Count, mean and centred scatter sum_n (c_n - mean)(c_n - mean)^T of rows added batch by batch."""

    def __init__(self, size: int):
        self.count, self.mean, self.scatter = 0, np.zeros(size), np.zeros((size, size))

    def add(self, rows: np.ndarray) -> None:
        n = len(rows)
        if n == 0:
            return
        mean = rows.mean(axis=0)
        centred = rows - mean
        scatter = centred.T @ centred
        total = self.count + n
        delta = mean - self.mean
        self.scatter += scatter + np.outer(delta, delta) * (self.count * n / total)
        self.mean = self.mean + delta * (n / total)
        self.count = total

    def covariance(self) -> np.ndarray:
        """The unbiased covariance (np.cov's): scatter / (count - 1)."""
        return self.scatter / (self.count - 1)

OUTPUTS = ("bernoulli", "gaussian")


class Autoencoder(ImageModel):
    """One-hidden-layer autoencoder. See the module docstring for the math.

    image_shape (C, H, W); hidden: code size H; activation: encoder nonlinearity f;
    output: "bernoulli" (sigmoid + BCE) or "gaussian" (identity + squared error);
    tied: decoder weight = encoder weight transposed; lr: Adam learning rate.
    """

    def __init__(self, image_shape, hidden: int = 32, activation: str = "sigmoid", output: str = "bernoulli",
                 tied: bool = False, lr: float = 1e-3, num_classes: int = 1, rng=None,
                 dtype=np.float32):
        super().__init__(image_shape, dtype)
        if output not in OUTPUTS:
            raise ValueError(f"{type(self).__name__}: output must be one of {OUTPUTS}, got {output!r}")
        if int(hidden) < 1:
            raise ValueError(f"{type(self).__name__}: hidden must be >= 1, got {hidden}")
        rng = np.random.default_rng(rng)
        d, h = self.num_features, int(hidden)
        self.hidden, self.activation_name, self.output, self.tied = h, activation, output, bool(tied)
        init = "he_uniform" if activation in ("relu", "leaky_relu") else "glorot_uniform"
        self.encoder = nn.Linear(d, h, init=init, rng=rng, dtype=dtype)
        self.encoder_activation = activation_module(activation)
        if self.tied:
            self.decoder_bias = nn.Parameter(np.zeros(d, dtype=dtype))
        else:
            self.decoder = nn.Linear(h, d, rng=rng, dtype=dtype)
        self._code_buffers(num_classes)
        self.optimizers = {"model": Adam(self.parameters(), lr=lr)}

    def _code_buffers(self, num_classes: int) -> None:
        """One Gaussian per class fitted to training codes, for ``sample`` (buffers: saved in checkpoints)."""
        k, h = max(1, int(num_classes)), self.hidden
        self.register_buffer("code_mean", np.zeros((k, h), dtype=self.dtype))
        self.register_buffer("code_scale", np.zeros((k, h, h), dtype=self.dtype))

    # ---- the network ------------------------------------------------------------------------------
    def encode(self, x) -> Tensor:
        """Codes h = f(x W_x^T + b_x): (N, H). x: images or (N, D) vectors (array or Tensor)."""
        x = x if isinstance(x, Tensor) else Tensor(self.as_flat(x))
        activation = nn.layers.fused_activation(self.encoder_activation) if type(self.encoder) is nn.Linear else None
        if activation is not None:  # one fused op: the same numbers (see ops.linear)
            return self.encoder.forward(x, activation=activation, slope=getattr(self.encoder_activation, "slope", 0.01))
        return self.encoder_activation(self.encoder(x))

    def decode_logits(self, h: Tensor) -> Tensor:
        """Pre-output activations a = h W_h^T + b_h: (N, D) (logits for "bernoulli", means for "gaussian")."""
        if self.tied:
            return ops.linear(h, self.encoder.weight.T, self.decoder_bias)
        return self.decoder(h)

    def output_activation(self, a):
        """x_hat from the decoder's pre-activations (array in, array out)."""
        if self.output == "bernoulli":
            return ops.sigmoid(Tensor(a)).data
        return a

    def reconstruction_loss(self, a: Tensor, target, reduction: str = "batch_sum") -> Tensor:
        """BCE from logits ("bernoulli") or squared error ("gaussian"), summed over features."""
        if self.output == "bernoulli":
            return ops.sigmoid_bce_with_logits(a, target, reduction=reduction)
        return ops.mse_loss(a, target, reduction=reduction)

    def penalty(self, h: Tensor, x_input: Tensor) -> Dict[str, Tensor]:
        """Regularisers added to the loss, by name (already weighted). None for a plain autoencoder."""
        return {}

    def loss(self, x, x_input=None) -> Tuple[Tensor, Dict[str, Tensor]]:
        """Total loss and its parts for clean targets x: (N, D) (or images).

        ``x_input`` is what the encoder reads (default: x itself); the denoising autoencoder
        passes a corrupted copy, so the loss is a deterministic function of that explicit noise.
        """
        target = x.data if isinstance(x, Tensor) else self.as_flat(x)
        if x_input is None:
            x_input = Tensor(target)
        elif not isinstance(x_input, Tensor):
            x_input = Tensor(self.as_flat(x_input))
        h = self.encode(x_input)
        recon = self.reconstruction_loss(self.decode_logits(h), target)
        parts = {"reconstruction": recon}
        total = recon
        for name, value in self.penalty(h, x_input).items():
            parts[name] = value
            total = total + value
        return total, parts

    # ---- the GenerativeModel contract ------------------------------------------------------------
    def train_step(self, x, y, rng: np.random.Generator) -> Dict[str, float]:
        batch = self.training_batch(x, rng)
        loss, parts = self.loss(batch)
        return self.optimize(loss, parts)

    def evaluate(self, x, y, rng: np.random.Generator, batch_size: int = 1000) -> Dict[str, float]:
        """Mean reconstruction loss per example, mean squared error per pixel, mean ||J_f(x)||_F."""
        totals = {"reconstruction": 0.0, "mse_per_pixel": 0.0, "jacobian_frobenius": 0.0}
        with no_grad():
            for start in range(0, len(x), batch_size):
                xb = self.as_flat(x[start : start + batch_size])
                a = self.decode_logits(self.encode(xb))
                n = len(xb)
                totals["reconstruction"] += float(self.reconstruction_loss(a, xb, reduction="sum").data)
                diff = self.output_activation(a.data) - xb
                totals["mse_per_pixel"] += float((diff * diff).sum())
                totals["jacobian_frobenius"] += float(self.jacobian_frobenius(xb).sum())
        n = len(x)
        return {"reconstruction": totals["reconstruction"] / n,
                "mse_per_pixel": totals["mse_per_pixel"] / (n * self.num_features),
                "jacobian_frobenius": totals["jacobian_frobenius"] / n}

    def codes(self, x) -> np.ndarray:
        """Codes h (N, H) as an array, without recording a graph."""
        with no_grad():
            return self.encode(x).data

    def reconstruct(self, x) -> np.ndarray:
        with no_grad():
            return self.as_images(self.output_activation(self.decode_logits(self.encode(x)).data))

    def jacobian_frobenius(self, x) -> np.ndarray:
        """||dh/dx||_F per example (N,), in closed form for an elementwise encoder h = f(a), a = W x + b:

            dh_j/dx_i = f'(a_j) W_ji   =>   ||J||_F^2 = sum_j f'(a_j)^2 sum_i W_ji^2     O(H D) per example.
        """
        x = self.as_flat(x)
        xp = self._xp()
        with no_grad():
            a = self.encoder(Tensor(x)).data
            h = self.encoder_activation(Tensor(a)).data
        slope = {
            "sigmoid": lambda: h * (1 - h),
            "tanh": lambda: 1 - h * h,
            "relu": lambda: (a > 0).astype(a.dtype),
            "leaky_relu": lambda: xp.where(a > 0, 1.0, 0.2).astype(a.dtype),
            "softplus": lambda: ops.sigmoid(Tensor(a)).data,
            "linear": lambda: xp.ones_like(a),
        }[self.activation_name]()
        w = self.encoder.weight.data
        row_norms = (w * w).sum(axis=1)  # (H,)
        return xp.sqrt((slope * slope) @ row_norms)

    def finish_epoch(self, x, y) -> None:
        """After every training epoch: refit the code Gaussians that ``sample`` decodes from, so a
        checkpoint can be sampled whether or not pictures were drawn."""
        self.fit_code_distribution(x, y)

    def fit_code_distribution(self, x, y=None, batch_size: int = 2000) -> None:
        """Fit N(mean_k, L_k L_k^T) to the codes of x: one per class k if labels y are given (and the
        model was built with num_classes > 1), else one for all. Full covariance + 1e-4 I.

        The codes are never held all at once: each batch's count, mean and centred scatter are merged
        into running ones (Chan, Golub and LeVeque's pairwise update, as stable as np.cov on the whole),
        so the memory is O(K H^2) rather than the (N, H) float64 codes (100 MB for 50,000 codes of 256).
        """
        k = self.code_mean.shape[0]
        by_class = y is not None and k > 1
        labels = np.asarray(y) if by_class else None
        stats = [_ScatterSum(self.hidden) for _ in range(k)]
        overall = _ScatterSum(self.hidden)
        for i in range(0, len(x), batch_size):
            codes = to_numpy(self.codes(x[i : i + batch_size])).astype(np.float64)
            overall.add(codes)
            if by_class:
                batch_labels = labels[i : i + batch_size]
                for c in range(k):
                    stats[c].add(codes[batch_labels == c])
        means, scales = [], []
        for c in range(k):
            group = stats[c] if by_class and stats[c].count > 1 else overall  # too few examples: the global Gaussian
            spread = group.covariance() if group.count > 1 else np.zeros((self.hidden, self.hidden))
            cov = spread + 1e-4 * np.eye(self.hidden)  # (one training example: a point mass, slightly blurred)
            means.append(group.mean)
            scales.append(np.linalg.cholesky(cov))
        xp = self._xp()
        self.code_mean = xp.asarray(np.stack(means).astype(self.dtype))
        self.code_scale = xp.asarray(np.stack(scales).astype(self.dtype))

    def sample(self, n: int, rng: np.random.Generator, y=None) -> np.ndarray:
        """Decode n codes drawn from the Gaussians of ``fit_code_distribution`` (not a true density).

        y: which class's Gaussian each code comes from (default 0, 1, ..., K-1 repeated)."""
        if not np.any(to_numpy(self.code_scale)):
            raise RuntimeError(f"{type(self).__name__}.sample: call fit_code_distribution(x_train) first "
                               "(an autoencoder has no prior; samples decode codes from Gaussians fitted to training codes)")
        k = self.code_mean.shape[0]
        y = np.arange(n) % k if y is None else np.asarray(y) % k
        eps = self.standard_normal(rng, (n, self.hidden))
        h = self.code_mean[y] + (self.code_scale[y] @ eps[:, :, None])[:, :, 0]
        with no_grad():
            return self.as_images(self.output_activation(self.decode_logits(Tensor(h)).data))

    def save_pictures(self, out_dir, data, rng: np.random.Generator, tag: str = ""):
        """reconstructions (test inputs above outputs), samples (decoded fitted-Gaussian codes), 2-D code scatter (final only)."""
        from ...plots import save_latent_scatter

        paths = [self.save_reconstructions(out_dir, data.test.x, tag)]
        if not np.any(to_numpy(self.code_scale)):  # trained outside the loop (which fits it every epoch)
            self.fit_code_distribution(data.train.x, data.train.y)
        paths.append(self.save_samples(out_dir, rng, tag))
        if tag.startswith("epoch"):
            return paths  # the scatter (matplotlib, slower) only for the final pictures
        m = min(2000, len(data.test.x))
        name = f"latent_{tag}.png" if tag else "latent.png"
        paths.append(save_latent_scatter(to_numpy(self.codes(data.test.x[:m])), data.test.y[:m], os.path.join(out_dir, name),
                                         title=f"{type(self).__name__} codes (first 2 principal components)"))
        return paths


class SparseAutoencoder(Autoencoder):
    """Autoencoder + sparsity penalty: beta * sum_j KL(rho || rho_hat_j) ("kl") or beta * mean_n |h_n|_1 ("l1").

    rho_hat_j = mean over the batch of h_nj. "kl" needs codes in (0, 1), i.e. activation "sigmoid".
    """

    def __init__(self, image_shape, hidden: int = 128, sparsity: str = "kl", rho: float = 0.05, beta: float = 3.0,
                 **kwargs):
        super().__init__(image_shape, hidden=hidden, **kwargs)
        if sparsity not in ("kl", "l1"):
            raise ValueError(f"SparseAutoencoder: sparsity must be 'kl' or 'l1', got {sparsity!r}")
        if sparsity == "kl" and self.activation_name != "sigmoid":
            raise ValueError(f"SparseAutoencoder: the KL sparsity penalty needs sigmoid codes in (0, 1), "
                             f"got activation {self.activation_name!r} (use sparsity='l1')")
        if not 0.0 < rho < 1.0:
            raise ValueError(f"SparseAutoencoder: rho must lie in (0, 1), got {rho}")
        self.sparsity, self.rho, self.beta = sparsity, float(rho), float(beta)

    def penalty(self, h: Tensor, x_input: Tensor) -> Dict[str, Tensor]:
        if self.sparsity == "kl":
            rho_hat = ops.mean(h, axis=0)  # (H,)
            return {"sparsity": self.beta * ops.bernoulli_kl(rho_hat, self.rho, reduction="sum")}
        return {"sparsity": self.beta * ops.l1_penalty(h, reduction="batch_sum")}

    def mean_activation(self, x) -> np.ndarray:
        """rho_hat over x: (H,), the quantity the KL penalty pulls towards rho."""
        return to_numpy(self.codes(x)).mean(axis=0)


# ---- CLI registration ----------------------------------------------------------------------------
# 50 epochs of the 1,437 8x8 digits take about 2 s: the README's first command trains to clear reconstructions.
_AE_DEFAULTS = {"hidden": 32, "activation": "sigmoid", "output": "bernoulli", "tied": False, "lr": 1e-2,
                "epochs": 50, "batch_size": 64}


def _common(config: Dict) -> Dict:
    return {"activation": config["activation"], "output": config["output"], "tied": bool(config["tied"]),
            "lr": float(config["lr"])}


@register_model("ae", family="autoencoder", defaults=_AE_DEFAULTS,
                description="autoencoder, one hidden layer (sigmoid codes, sigmoid output + BCE)")
def build_autoencoder(config: Dict, data_info: DataInfo, rng) -> Autoencoder:
    return Autoencoder(data_info.image_shape, hidden=int(config["hidden"]), num_classes=data_info.num_classes, rng=rng,
                       **_common(config))


@register_model("sparse-ae", family="autoencoder",
                defaults={**_AE_DEFAULTS, "hidden": 128, "sparsity": "kl", "rho": 0.05, "beta": 3.0},
                description="overcomplete sparse autoencoder, KL(rho || rho_hat) or L1 activation penalty")
def build_sparse_autoencoder(config: Dict, data_info: DataInfo, rng) -> SparseAutoencoder:
    return SparseAutoencoder(data_info.image_shape, hidden=int(config["hidden"]), sparsity=config["sparsity"],
                             rho=float(config["rho"]), beta=float(config["beta"]), num_classes=data_info.num_classes,
                             rng=rng, **_common(config))


# ---- gradcheck cases (python -m scratchgen.gradcheck): each loss through a tiny float64 model --------
def _tiny_case(rng, cls, **kwargs):
    model = cls((1, 2, 3), hidden=4, rng=rng, dtype=np.float64, **kwargs)
    x = rng.uniform(0.05, 0.95, (5, 6))
    return parameter_case(model, lambda: model.loss(x)[0])


register_case("ae_loss")(lambda rng: _tiny_case(rng, Autoencoder, activation="tanh"))
register_case("ae_tied_gaussian_loss")(lambda rng: _tiny_case(rng, Autoencoder, tied=True, output="gaussian"))
register_case("sparse_ae_kl_loss")(lambda rng: _tiny_case(rng, SparseAutoencoder, rho=0.2, beta=0.5))
register_case("sparse_ae_l1_loss")(lambda rng: _tiny_case(rng, SparseAutoencoder, sparsity="l1", activation="softplus"))
