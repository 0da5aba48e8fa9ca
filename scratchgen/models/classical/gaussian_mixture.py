"""A mixture of K diagonal Gaussians, fitted by expectation-maximisation (Dempster, Laird & Rubin 1977).

The model: a discrete latent variable z picks a component, which then generates x in R^D,

    p(z = k) = pi_k,      p(x | z = k) = N(x; mu_k, diag(var_k)),
    p(x) = sum_k pi_k N(x; mu_k, diag(var_k)),
    log N(x; mu, diag(var)) = -0.5 sum_d [log(2 pi var_d) + (x_d - mu_d)^2 / var_d].

All of it in log space: log p(x) = logsumexp_k [log pi_k + log N(x; mu_k, var_k)]
(``log_space.py`` says why: a 784-pixel density underflows float64).

EM. With the posterior responsibilities r_nk = p(z = k | x_n) under the current parameters,

    E-step   r_nk = exp(log pi_k + log N(x_n; mu_k, var_k) - log p(x_n))
    M-step   N_k = sum_n r_nk,   pi_k = N_k / N,   mu_k = sum_n r_nk x_n / N_k,
             var_k = max(sum_n r_nk (x_n - mu_k)^2 / N_k, min_variance)   (per feature d)

Each iteration cannot lower the log-likelihood sum_n log p(x_n): the E-step makes the bound
sum_n sum_k r_nk log(p(x_n, z = k) / r_nk) touch the log-likelihood, the M-step maximises the bound.
The floor ``min_variance`` keeps that true: a pixel that is always 0 in a component would
otherwise get variance 0 and an infinite density. For each (k, d) the expected complete-data
log-likelihood, -0.5 N_k (log var + S / var), rises up to var = S and falls after, so its
maximum over var >= floor is max(S, floor): clipping *is* the constrained M-step, and the
log-likelihood still never decreases (tests/test_classical.py checks it). A component that
receives no responsibility at all (N_k = 0) keeps its mean and variances: with pi_k = 0 any
value maximises the bound.

Numerics of the M-step: the variance is accumulated as sum_n r_nk (x_n - c_k)^2 around c_k, the
component's *current* mean, which is close to the new one, so that var = S2 / N_k - (S1 / N_k)^2
subtracts two small numbers rather than two large ones (S1, S2: the sums of r (x - c) and
r (x - c)^2; the new mean is c + S1 / N_k).

How EM fits the training loop (it is not a gradient step): one EM iteration per epoch, over the
whole training split. The E-step is a sum over examples, so it runs batch by batch: ``train_step``
computes the responsibilities of its batch under the parameters of this epoch (fixed during the
epoch) and adds the batch's sufficient statistics (N_k, S1, S2 and the log-likelihood) into
float64 buffers; ``finish_epoch`` performs the M-step from them and clears them. The batch size
changes nothing but speed and memory. Everything lives in parameters and buffers, so a run
interrupted mid-epoch resumes exactly. The training log-likelihood reported for epoch e is that
of the parameters *before* epoch e's M-step: the curve EM promises never goes down.

Initialisation (``prepare``, before the first epoch): the means are K distinct training examples
drawn at random, every component's variances are the data's per-feature variances (floored),
and pi is uniform. The draw uses a generator made when the model was built (from the builder's
seeded rng), so a run repeats from its seed; a resumed run never initialises again.

Generation is ancestral, as in the lecture's algorithm: z ~ Categorical(pi), then x ~ N(mu_z, diag(var_z)).
"""
from __future__ import annotations

import math
import os
from typing import Dict, Optional, Tuple

import numpy as np

from ... import nn
from ..base import DataInfo, GenerativeModel, register_model
from .log_space import flat_float64, log_sum_exp

__all__ = ["GaussianMixture"]

LOG_2PI = math.log(2 * math.pi)


class GaussianMixture(GenerativeModel):
    """K diagonal Gaussians over D = C H W features. components: K; min_variance: the variance floor.

    Parameters (fitted by EM, no gradients): ``weights`` pi (K,), ``means`` mu (K, D), ``variances``
    var (K, D), float64. Buffers: ``initialised``, and the epoch's sufficient statistics
    ``stat_responsibility`` (K,), ``stat_shifted_sum`` (K, D), ``stat_shifted_square`` (K, D),
    ``stat_log_likelihood`` and ``stat_examples`` (1,).
    """

    def __init__(self, image_shape, components: int = 10, min_variance: float = 1e-2, rng=None):
        super().__init__()
        if int(components) < 1:
            raise ValueError(f"GaussianMixture: components must be >= 1, got {components}")
        if not min_variance > 0:
            raise ValueError(f"GaussianMixture: min_variance must be > 0, got {min_variance}")
        self.image_shape = tuple(int(s) for s in image_shape)
        self.num_features, self.components, self.min_variance = int(np.prod(self.image_shape)), int(components), float(min_variance)
        k, d = self.components, self.num_features
        self.weights = nn.Parameter(np.full(k, 1.0 / k), requires_grad=False)
        self.means = nn.Parameter(np.zeros((k, d)), requires_grad=False)
        self.variances = nn.Parameter(np.ones((k, d)), requires_grad=False)
        self.register_buffer("initialised", np.zeros(1, dtype=np.int64))
        for name, shape in (("stat_responsibility", (k,)), ("stat_shifted_sum", (k, d)), ("stat_shifted_square", (k, d)),
                            ("stat_log_likelihood", (1,)), ("stat_examples", (1,))):
            self.register_buffer(name, np.zeros(shape))
        self._initial_rng = np.random.default_rng(np.random.default_rng(rng).integers(2**63))

    # ---- initialisation ------------------------------------------------------------------------------
    def prepare(self, x, y=None) -> None:
        """Means = K distinct random training examples, variances = the data's (floored), pi uniform."""
        x = flat_float64(x, self.num_features, "GaussianMixture.prepare")
        if len(x) < self.components:
            raise ValueError(f"GaussianMixture.prepare: {self.components} components need at least as many training "
                             f"examples, got {len(x)}")
        rows = self._initial_rng.choice(len(x), size=self.components, replace=False)
        self.means.data[...] = x[rows]
        self.variances.data[...] = np.maximum(x.var(axis=0), self.min_variance)
        self.weights.data[...] = 1.0 / self.components
        self.initialised[0] = 1

    # ---- the densities -------------------------------------------------------------------------------
    def component_log_densities(self, x) -> np.ndarray:
        """log pi_k + log N(x_n; mu_k, diag var_k) for every example and component: (N, K).

        The quadratic sum_d (x_d - mu_kd)^2 / var_kd for all (n, k) at once, as three GEMM-shaped terms:
        (x^2) (1/var)^T - 2 x (mu/var)^T + sum_d mu^2/var.
        """
        x = flat_float64(x, self.num_features, "GaussianMixture")
        precision = 1.0 / self.variances.data
        mu = self.means.data
        quadratic = (x * x) @ precision.T - 2.0 * x @ (mu * precision).T + (mu * mu * precision).sum(axis=1)
        log_normal = -0.5 * (self.num_features * LOG_2PI + np.log(self.variances.data).sum(axis=1) + quadratic)
        with np.errstate(divide="ignore"):  # an emptied component has pi_k = 0: log 0 = -inf is its right weight
            return np.log(self.weights.data) + log_normal

    def log_likelihood(self, x) -> np.ndarray:
        """log p(x_n) = logsumexp_k (log pi_k + log N(x_n; mu_k, var_k)): (N,)."""
        return log_sum_exp(self.component_log_densities(x), axis=1)

    def responsibilities(self, x) -> Tuple[np.ndarray, np.ndarray]:
        """The E-step: (r (N, K) = p(z = k | x_n), log p(x_n) (N,))."""
        joint = self.component_log_densities(x)
        log_px = log_sum_exp(joint, axis=1)
        return np.exp(joint - log_px[:, None]), log_px

    # ---- EM through the loop -------------------------------------------------------------------------
    def accumulate(self, x) -> np.ndarray:
        """E-step on a batch, adding its sufficient statistics (around the current means); returns log p(x_n)."""
        x = flat_float64(x, self.num_features, "GaussianMixture")
        r, log_px = self.responsibilities(x)
        self.stat_responsibility += r.sum(axis=0)
        for k in range(self.components):  # per component: sums of r (x - mu_k) and r (x - mu_k)^2 (module docstring)
            centred = x - self.means.data[k]
            self.stat_shifted_sum[k] += r[:, k] @ centred
            self.stat_shifted_square[k] += r[:, k] @ (centred * centred)
        self.stat_log_likelihood += log_px.sum()
        self.stat_examples += len(x)
        return log_px

    def maximise(self) -> None:
        """The M-step from the accumulated statistics; then clear them."""
        n_k = self.stat_responsibility
        filled = n_k > 0
        shift = np.where(filled, n_k, 1.0)[:, None]
        mean_offset = self.stat_shifted_sum / shift  # (new mean) - (old mean)
        variance = self.stat_shifted_square / shift - mean_offset * mean_offset
        self.means.data[filled] += mean_offset[filled]
        self.variances.data[filled] = np.maximum(variance[filled], self.min_variance)
        self.weights.data[...] = n_k / n_k.sum()
        for name in ("stat_responsibility", "stat_shifted_sum", "stat_shifted_square", "stat_log_likelihood", "stat_examples"):
            getattr(self, name)[...] = 0.0

    def train_step(self, x, y, rng: np.random.Generator) -> Dict[str, float]:
        """One batch of this epoch's E-step. Reports -log p(x) per example under this epoch's parameters."""
        if not int(self.initialised[0]):
            raise RuntimeError("GaussianMixture: not initialised; train with fit() or scratchgen train (which call "
                               "prepare(x) first), or call prepare(x) yourself")
        return {"neg_log_likelihood": -float(self.accumulate(x).mean())}

    def finish_epoch(self, x, y) -> None:
        """The M-step, if the epoch saw any examples."""
        if self.stat_examples[0] > 0:
            self.maximise()

    def fit_em(self, x, iterations: int) -> list:
        """Plain EM on an array, without the loop: ``iterations`` x (E-step on all of x, M-step).
        Returns the mean log-likelihood before each M-step (non-decreasing). Calls ``prepare`` if needed."""
        if not int(self.initialised[0]):
            self.prepare(x)
        history = []
        for _ in range(iterations):
            history.append(float(self.accumulate(x).mean()))
            self.maximise()
        return history

    def evaluate(self, x, y=None, rng: Optional[np.random.Generator] = None) -> Dict[str, float]:
        """-log p(x) in nats per example (a density over R^D: not comparable with Bernoulli models'
        numbers), and how many components keep a weight above 1 / (10 K)."""
        return {"neg_log_likelihood": float(-self.log_likelihood(x).mean()),
                "components_used": int((self.weights.data > 0.1 / self.components).sum())}

    # ---- generation: ancestral sampling --------------------------------------------------------------
    def sample_with_components(self, n: int, rng: np.random.Generator, components=None) -> Tuple[np.ndarray, np.ndarray]:
        """Ancestral sampling: z ~ Categorical(pi) (or the ``components`` given), x ~ N(mu_z, diag var_z).

        Returns (x (n, D) unclipped, z (n,)).
        """
        pi = self.weights.data / self.weights.data.sum()
        z = rng.choice(self.components, size=n, p=pi) if components is None else np.asarray(components, dtype=np.int64)
        if len(z) != n or (n and (z.min() < 0 or z.max() >= self.components)):
            raise ValueError(f"GaussianMixture.sample: components must be {n} indices in [0, {self.components}), got {z}")
        x = self.means.data[z] + np.sqrt(self.variances.data[z]) * rng.standard_normal((n, self.num_features))
        return x, z

    def sample(self, n: int, rng: np.random.Generator, y=None) -> np.ndarray:
        """n ancestral samples as images (n, C, H, W), clipped to [0, 1] (a Gaussian's tails leave it)."""
        x, _ = self.sample_with_components(n, rng)
        return np.clip(x, 0.0, 1.0).reshape((n,) + self.image_shape)

    def save_pictures(self, out_dir, data, rng: np.random.Generator, tag: str = ""):
        """``means``: mu_k, heaviest component first; ``samples``: 100 ancestral samples; ``samples_by_component``:
        row r = 10 draws of x ~ p(x | z = k) for the r-th heaviest component (the second step alone)."""
        from ...plots import save_image_grid

        suffix, scale = (f"_{tag}" if tag else ""), max(1, 84 // max(self.image_shape[1:]))
        order = np.argsort(-self.weights.data, kind="stable")
        images = (-1,) + self.image_shape
        paths = [save_image_grid(np.clip(self.means.data[order], 0, 1).reshape(images),
                                 os.path.join(out_dir, f"means{suffix}.png"), nrow=min(10, self.components), scale=scale),
                 save_image_grid(self.sample(100, rng), os.path.join(out_dir, f"samples{suffix}.png"), nrow=10, scale=scale)]
        rows = order[: min(10, self.components)]
        x, _ = self.sample_with_components(10 * len(rows), rng, components=np.repeat(rows, 10))
        paths.append(save_image_grid(np.clip(x, 0, 1).reshape(images), os.path.join(out_dir, f"samples_by_component{suffix}.png"),
                                     nrow=10, scale=scale))
        return paths


@register_model("gmm", family="classical", defaults={"components": 10, "min_variance": 1e-2, "epochs": 20,
                                                      "batch_size": 500},
                description="mixture of diagonal Gaussians fitted by EM (one EM iteration per epoch); ancestral samples")
def build_gmm(config: Dict, data_info: DataInfo, rng) -> GaussianMixture:
    return GaussianMixture(data_info.image_shape, components=int(config["components"]),
                           min_variance=float(config["min_variance"]), rng=rng)
