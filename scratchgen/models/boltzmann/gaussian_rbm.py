"""``GaussianBernoulliRBM``: real-valued visible units with per-unit standard deviations sigma.

Energy (Hinton 2010 sec. 13.2; Krizhevsky 2009), v (V,) real, h (H,) binary, s = sigma (V,):

    E(v, h) = sum_i (v_i - b_i)^2 / (2 s_i^2) - c.h - sum_ij (v_i / s_i) W_ij h_j

Conditionals (still one matrix product each):

    p(h_j = 1 | v) = sigmoid(c_j + sum_i (v_i / s_i) W_ij)          the Bernoulli kernel on v / s
    p(v_i | h)     = Normal(b_i + s_i sum_j W_ij h_j,  s_i^2)

Free energy (sum over h) and partition function (integral over v for each h, u = W h; see
``enumeration.py``):

    F(v)  = sum_i (v_i - b_i)^2 / (2 s_i^2) - sum_j softplus(c_j + ((v / s) W)_j)
    log Z = V/2 log(2 pi) + sum_i log s_i + logsumexp_h [c.h + (b / s).u + |u|^2 / 2]

Gradient of the log-likelihood (ascent; <.>_d over data, <.>_m over chain samples, p = p(h | v)):

    W:        <(v / s) p^T>_d - <(v / s) p^T>_m         the Bernoulli statistics of v / s
    b:        <(v - b) / s^2>_d - <.>_m = (<v>_d - <v>_m) / s^2
    c:        <p>_d - <p>_m
    z = log s: <(v - b)^2 / s^2 - (v / s) (W p)>_d - <.>_m   (only when ``learn_sigma``)

Data. With ``standardize=True`` (default) the model works on standardised data
v = (x - mean) / std with per-pixel mean and std of the training data (std floored at
``min_std``, so constant border pixels do not blow up), and sigma = 1 fixed: Hinton's advice.
The statistics are taken from the whole training set before the first update (the training loop
calls ``prepare``, for ``fit`` and the CLI alike; a bare ``train_step`` takes them from its first
batch); they are buffers, so checkpoints keep them. Every method that takes or
returns data (fit, transform, reconstruct, sample, log_likelihood) works in data units;
``free_energy``, ``energy`` and the samplers work on model-space v. Log-likelihoods are in
nats of the density of x: log p(x) = log p(v) - sum_i log std_i.

Learning sigma is delicate (the gradient in s is large where s is small): keep the learning
rate small (<= 1e-3) or keep sigma fixed.
"""
from __future__ import annotations

import numpy as np

from ...backend import get_array_module, kernel
from ...nn import Parameter
from ...optim import SGD
from ..base import register_model
from .enumeration import gaussian_rbm_log_partition
from .rbm import EXACT_MAX_UNITS, RBMBase
from .helpers import as_feature_matrix, host64, random_normal, random_uniform

__all__ = ["GaussianBernoulliRBM", "gaussian_bernoulli_free_energy"]


def gaussian_bernoulli_free_energy(v, weight, visible_bias, hidden_bias, sigma):
    """F(v) = sum_i (v_i - b_i)^2 / 2 s_i^2 - sum_j softplus(c_j + ((v / s) W)_j). v: (N, V) -> (N,)."""
    quadratic = (((v - visible_bias) / sigma) ** 2).sum(axis=1) * 0.5
    return quadratic - kernel("softplus_forward")((v / sigma) @ weight + hidden_bias).sum(axis=1)


class GaussianBernoulliRBM(RBMBase):
    """Gaussian visible, Bernoulli hidden RBM. Options of ``RBMBase`` plus sigma / standardisation."""

    def __init__(self, n_visible: int, n_hidden: int, *, sigma: float = 1.0, learn_sigma: bool = False,
                 standardize: bool = True, min_std: float = 0.1, **options):
        super().__init__(n_visible, n_hidden, **options)
        if not sigma > 0 or not min_std > 0:
            raise ValueError(f"GaussianBernoulliRBM: sigma and min_std must be > 0, got {sigma} and {min_std}")
        dtype = self.dtype
        log_sigma = np.full(self.n_visible, np.log(sigma), dtype=dtype)
        self.learn_sigma, self.standardize, self.min_std = bool(learn_sigma), bool(standardize), float(min_std)
        if self.learn_sigma:
            self.log_sigma = Parameter(log_sigma)
            self.optimizers = {"rbm": SGD(self.parameters(), lr=self.lr, momentum=self.momentum)}
        else:
            self.register_buffer("log_sigma", log_sigma)
        # std = 0 marks "not measured yet" (standardize=True); with standardize=False v = x.
        self.register_buffer("data_mean", np.zeros(self.n_visible, dtype=dtype))
        self.register_buffer("data_std", np.full(self.n_visible, 0.0 if standardize else 1.0, dtype=dtype))

    @property
    def sigma(self):
        log_sigma = self.log_sigma.data if self.learn_sigma else self.log_sigma
        return get_array_module(log_sigma).exp(log_sigma)

    @property
    def enumerated_units(self) -> int:
        return self.n_hidden  # v is continuous: only h can be enumerated

    # ---- data ----------------------------------------------------------------------------------
    def set_standardization(self, x) -> None:
        """Measure the per-pixel mean and std (floored at ``min_std``) of data x (N, V) or images."""
        x = as_feature_matrix(x, self.n_visible, "GaussianBernoulliRBM.set_standardization", self.weight.data)
        xp = get_array_module(x)
        self.data_mean[...] = x.mean(axis=0)
        self.data_std[...] = xp.maximum(x.std(axis=0), self.dtype.type(self.min_std))

    def check_data(self, x, where: str):
        """x: (N, V) or (N, C, H, W) finite floats -> standardised (N, V) in the model's dtype and device."""
        owner = f"GaussianBernoulliRBM.{where}"
        x = as_feature_matrix(x, self.n_visible, owner, self.weight.data)
        xp = get_array_module(x)
        if not bool(xp.isfinite(x).all()):
            raise ValueError(f"{owner}: data contains NaN or Inf")
        if not bool((self.data_std > 0).all()):
            if where not in ("fit", "train_step"):
                raise ValueError(f"{owner}: the data statistics are not set; call fit() or set_standardization(x) first")
            self.set_standardization(x)
        return (x - self.data_mean) / self.data_std

    def to_data_space(self, v):
        return v * self.data_std + self.data_mean

    def log_data_jacobian(self) -> float:
        return -float(np.log(host64(self.data_std)).sum())

    def initial_visible(self, n: int, rng):
        """Chain starts: v ~ Normal(b, s^2), the visible units without hidden input."""
        return self.visible_bias.data + self.sigma * random_normal(rng, (n, self.n_visible), self.weight.data)

    # ---- conditionals --------------------------------------------------------------------------
    def hidden_probabilities(self, v):
        return kernel("sigmoid_forward")((v / self.sigma) @ self.weight.data + self.hidden_bias.data)

    def visible_means(self, h):
        return self.visible_bias.data + self.sigma * (h @ self.weight.data.T)

    def sample_hidden(self, v, rng=None, uniforms=None):
        """(h_prob, h_sample) from p(h | v): the Bernoulli kernel applied to v / sigma."""
        if uniforms is None:
            uniforms = random_uniform(rng, (v.shape[0], self.n_hidden), v)
        return kernel("rbm_sample_hidden")(v / self.sigma, self.weight.data, self.hidden_bias.data, uniforms)

    def sample_visible(self, h, rng=None, noise=None):
        """(v_mean, v_sample): v = b + s (W h) + s * noise, noise (N, V) standard normal or drawn from rng."""
        if noise is None:
            noise = random_normal(rng, (h.shape[0], self.n_visible), h)
        mean = self.visible_means(h)
        return mean, mean + self.sigma * noise

    # ---- energies and gradients ----------------------------------------------------------------
    def energy(self, v, h):
        """E(v, h) per example: (N, V), (N, H) -> (N,)."""
        s = self.sigma
        quadratic = (((v - self.visible_bias.data) / s) ** 2).sum(axis=1) * 0.5
        return quadratic - h @ self.hidden_bias.data - (((v / s) @ self.weight.data) * h).sum(axis=1)

    def free_energy(self, v):
        return gaussian_bernoulli_free_energy(v, self.weight.data, self.visible_bias.data, self.hidden_bias.data, self.sigma)

    def free_energy_float64(self, v):
        return gaussian_bernoulli_free_energy(host64(v), host64(self.weight.data), host64(self.visible_bias.data),
                                              host64(self.hidden_bias.data), host64(self.sigma))

    def statistics_gradient(self, v_pos, h_pos_prob, v_neg, h_neg_prob):
        s = self.sigma
        grad_w, grad_scaled_b, grad_c = kernel("rbm_cd_statistics")(v_pos / s, h_pos_prob, v_neg / s, h_neg_prob)
        gradients = {"weight": grad_w, "visible_bias": grad_scaled_b / s, "hidden_bias": grad_c}
        if self.learn_sigma:
            def sigma_statistic(v, p):  # -dF/dz per unit, averaged over the batch: (V,)
                scaled = v / s
                return ((v - self.visible_bias.data) ** 2 / (s * s) - scaled * (p @ self.weight.data.T)).mean(axis=0)

            gradients["log_sigma"] = sigma_statistic(v_pos, h_pos_prob) - sigma_statistic(v_neg, h_neg_prob)
        return gradients

    def exact_log_partition(self, block_size: int = 4096) -> float:
        """log Z: the Gaussian integral over v, enumeration over h (``enumeration.gaussian_rbm_log_partition``).
        (AIS is implemented for Bernoulli RBMs only.)"""
        return gaussian_rbm_log_partition(self.weight.data, self.visible_bias.data, self.hidden_bias.data,
                                          self.sigma, block_size)

    def prepare(self, x, y=None) -> None:
        """Measure the training data's per-pixel mean and std (standardised models), before the first update."""
        if self.standardize:
            self.set_standardization(x)


GBRBM_DEFAULTS = {"hidden": 256, "k": 1, "persistent": False, "n_chains": 64, "lr": 0.001, "momentum": 0.9,
                  "weight_decay": 0.0, "sparsity_target": None, "sparsity_cost": 0.0, "init_std": 0.01,
                  "sigma": 1.0, "learn_sigma": False, "min_std": 0.1, "exact_max_units": EXACT_MAX_UNITS}


@register_model("gbrbm", family="boltzmann", description="Gaussian-Bernoulli RBM on standardised real-valued pixels",
                defaults=GBRBM_DEFAULTS)
def build_gaussian_bernoulli_rbm(config, data_info, rng) -> GaussianBernoulliRBM:
    return GaussianBernoulliRBM(
        data_info.num_features, config["hidden"], sigma=config["sigma"], learn_sigma=config["learn_sigma"],
        min_std=config["min_std"], k=config["k"], persistent=config["persistent"], n_chains=config["n_chains"],
        lr=config["lr"], momentum=config["momentum"], weight_decay=config["weight_decay"],
        sparsity_target=config["sparsity_target"], sparsity_cost=config["sparsity_cost"],
        init_std=config["init_std"], image_shape=data_info.image_shape, rng=rng,
    )
