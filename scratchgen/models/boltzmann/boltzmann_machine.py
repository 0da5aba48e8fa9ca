"""``BoltzmannMachine``: the general (fully connected) Boltzmann machine, to see what "restricted" buys.

Units s = [v, h] (n = V + H binary units), symmetric couplings L (n, n) with zero diagonal,
biases a (n,) (Hinton & Sejnowski 1983; Ackley, Hinton & Sejnowski 1985):

    E(s) = -a.s - 1/2 s^T L s        (each pair i < j counted once: -L_ij s_i s_j)
    p(s_i = 1 | s_-i) = sigmoid(a_i + sum_j L_ij s_j)

With visible-visible and hidden-hidden couplings, the units of one layer are no longer
independent given the other layer, so

* Gibbs sampling must update units *one at a time* (a sequential sweep of n small products
  instead of two matrix products), and
* even the data-dependent ("positive", v clamped) statistics need a Markov chain: p(h | v) has
  no closed form. Here ``positive_sweeps`` sequential sweeps over the hidden units, started
  from p(h | v) ignoring the hidden-hidden couplings, give one sample per data vector.

The learning rule is the classic one, dlogp/dL_ij = <s_i s_j>_clamped - <s_i s_j>_free and
dlogp/da_i = <s_i>_clamped - <s_i>_free, with persistent free-running chains (as in PCD).
``restricted=True`` masks the visible-visible and hidden-hidden couplings: the same class then
*is* an RBM, samples by blocks, and uses the exact p(h | v) in the positive phase, so the two
can be compared on the same data (``benchmarks/rbm_baselines.py``).

Tiny models (n <= ~22 units) are evaluated exactly by enumeration: log Z over all 2^n states,
and the free energy F(v) = -log sum_h exp(-E(v, h)) over 2^H hidden states.
"""
from __future__ import annotations

import os
from typing import Dict, List

import numpy as np

from ...backend import get_array_module, kernel
from ...nn import Parameter
from ...optim import SGD
from ..base import GenerativeModel, register_model
from .enumeration import boltzmann_log_partition, logsumexp_over_states
from .helpers import as_feature_matrix, host64, random_uniform, weight_tiles

__all__ = ["BoltzmannMachine"]


class BoltzmannMachine(GenerativeModel):
    """Fully connected binary Boltzmann machine with V visible and H hidden units."""

    def __init__(self, n_visible: int, n_hidden: int, *, restricted: bool = False, positive_sweeps: int = 3,
                 negative_sweeps: int = 1, n_chains: int = 64, lr: float = 0.01, momentum: float = 0.0,
                 init_std: float = 0.01, image_shape=None, dtype=np.float32, rng=None):
        super().__init__()
        for name, value in dict(n_visible=n_visible, n_chains=n_chains, positive_sweeps=positive_sweeps,
                                negative_sweeps=negative_sweeps).items():
            if not isinstance(value, (int, np.integer)) or value < 1:
                raise ValueError(f"BoltzmannMachine: {name} must be a positive integer, got {value!r}")
        if not isinstance(n_hidden, (int, np.integer)) or n_hidden < 0:
            raise ValueError(f"BoltzmannMachine: n_hidden must be a non-negative integer, got {n_hidden!r}")
        rng = np.random.default_rng(rng)
        self.n_visible, self.n_hidden = int(n_visible), int(n_hidden)
        self.restricted, self.positive_sweeps, self.negative_sweeps = bool(restricted), int(positive_sweeps), int(negative_sweeps)
        self.image_shape = tuple(image_shape) if image_shape is not None else (1, 1, self.n_visible)
        n = self.n_units
        mask = 1.0 - np.eye(n)
        if self.restricted:  # keep only the visible-hidden block
            mask[: self.n_visible, : self.n_visible] = 0.0
            mask[self.n_visible :, self.n_visible :] = 0.0
        upper = np.triu(rng.normal(0.0, init_std, (n, n)), 1)
        self.register_buffer("connectivity", mask.astype(dtype))
        self.weight = Parameter(((upper + upper.T) * mask).astype(dtype))
        self.bias = Parameter(np.zeros(n, dtype=dtype))
        self.register_buffer("chains", (rng.random((n_chains, n)) < 0.5).astype(dtype))
        self.optimizers = {"bm": SGD([self.weight, self.bias], lr=lr, momentum=momentum)}

    @property
    def n_units(self) -> int:
        return self.n_visible + self.n_hidden

    @property
    def dtype(self):
        return self.weight.data.dtype

    def extra_repr(self) -> str:
        return f"n_visible={self.n_visible}, n_hidden={self.n_hidden}, restricted={self.restricted}"

    # ---- energy and conditionals ---------------------------------------------------------------
    def energy(self, s):
        """E(s) = -a.s - s^T L s / 2 per state: (N, n) -> (N,)."""
        return -(s @ self.bias.data) - 0.5 * ((s @ self.weight.data) * s).sum(axis=1)

    def conditional_probability(self, s, unit: int):
        """p(s_unit = 1 | all other units) for each row of s (N, n): (N,)."""
        return kernel("sigmoid_forward")(s @ self.weight.data[unit] + self.bias.data[unit])

    def sweep(self, s, rng, clamp_visible: bool):
        """One Gibbs sweep over s (N, n) in place: every hidden unit, and every visible unit unless clamped.

        General BM: units one at a time, in index order. Restricted: one block for the hidden
        layer, then one for the visible layer. Returns the probabilities used for the visible
        units (N, V) (None when clamped): the mean-field picture of the sample.
        """
        n_v, w, a = self.n_visible, self.weight.data, self.bias.data
        sigmoid = kernel("sigmoid_forward")
        units = range(n_v, self.n_units) if clamp_visible else range(self.n_units)
        if self.restricted:
            h_prob = sigmoid(s[:, :n_v] @ w[:n_v, n_v:] + a[n_v:])
            s[:, n_v:] = random_uniform(rng, h_prob.shape, s) < h_prob
            if clamp_visible:
                return None
            v_prob = sigmoid(s[:, n_v:] @ w[n_v:, :n_v] + a[:n_v])
            s[:, :n_v] = random_uniform(rng, v_prob.shape, s) < v_prob
            return v_prob
        uniforms = random_uniform(rng, (s.shape[0], self.n_units), s)
        v_prob = None if clamp_visible else get_array_module(s).empty((s.shape[0], n_v), dtype=s.dtype)
        for i in units:
            p = sigmoid(s @ w[i] + a[i])  # row i = column i: L is symmetric
            s[:, i] = uniforms[:, i] < p
            if i < n_v:
                v_prob[:, i] = p
        return v_prob

    def clamped_states(self, v, rng):
        """Positive-phase states [v, h] (N, n): h from ``positive_sweeps`` sweeps with v clamped.

        Restricted machines return the exact hidden probabilities p(h | v) instead of a sample.
        """
        xp, n_v = get_array_module(v), self.n_visible
        s = xp.empty((v.shape[0], self.n_units), dtype=v.dtype)
        s[:, :n_v] = v
        h_prob = kernel("sigmoid_forward")(v @ self.weight.data[:n_v, n_v:] + self.bias.data[n_v:])
        if self.restricted:
            s[:, n_v:] = h_prob
            return s
        s[:, n_v:] = random_uniform(rng, h_prob.shape, v) < h_prob  # start ignoring hidden-hidden couplings
        for _ in range(self.positive_sweeps):
            self.sweep(s, rng, clamp_visible=True)
        return s

    # ---- training ------------------------------------------------------------------------------
    def check_data(self, x, where: str):
        owner = f"BoltzmannMachine.{where}"
        x = as_feature_matrix(x, self.n_visible, owner, self.weight.data)
        xp = get_array_module(x)
        if x.size and not (0.0 <= float(xp.min(x)) and float(xp.max(x)) <= 1.0):
            raise ValueError(f"{owner}: visible values must be in [0, 1], got [{float(xp.min(x))}, {float(xp.max(x))}]")
        return x

    def train_step(self, x, y, rng) -> Dict[str, float]:
        """One update: clamped statistics of batch x minus free statistics of the persistent chains."""
        v = self.check_data(x, "train_step")
        s_pos = self.clamped_states(v, rng)
        for _ in range(self.negative_sweeps):
            self.sweep(self.chains, rng, clamp_visible=False)
        s_neg = self.chains
        dtype = self.dtype.type
        grad_w = (s_pos.T @ s_pos) * dtype(1 / len(s_pos)) - (s_neg.T @ s_neg) * dtype(1 / len(s_neg))
        self.weight.grad = -(grad_w * self.connectivity)  # descent gradient; the mask keeps L's pattern
        self.bias.grad = -(s_pos.mean(axis=0) - s_neg.mean(axis=0))
        metrics = {"energy_data": float(self.energy(s_pos).mean()), "energy_model": float(self.energy(s_neg).mean())}
        self.optimizers["bm"].step()
        self.optimizers["bm"].zero_grad()
        return metrics

    # ---- exact evaluation (tiny machines) ------------------------------------------------------
    def free_energy_float64(self, v) -> np.ndarray:
        """F(v) = -log sum_h exp(-E(v, h)) by enumerating the 2^H hidden states: (N,) float64."""
        v, w, a, n_v = host64(v), host64(self.weight.data), host64(self.bias.data), self.n_visible
        visible_term = v @ a[:n_v] + 0.5 * ((v @ w[:n_v, :n_v]) * v).sum(axis=1)  # (N,)
        if self.n_hidden == 0:
            return -visible_term
        hidden_input = v @ w[:n_v, n_v:]  # (N, H)

        def log_weight(h):  # (N, B): -E(v, h) minus the visible-only part
            hidden_term = h @ a[n_v:] + 0.5 * ((h @ w[n_v:, n_v:]) * h).sum(axis=1)
            return hidden_input @ h.T + hidden_term

        return -(visible_term + logsumexp_over_states(log_weight, self.n_hidden))

    def exact_log_partition(self, block_size: int = 4096) -> float:
        """log Z by enumerating all 2^(V + H) states (``enumeration.boltzmann_log_partition``)."""
        return boltzmann_log_partition(self.weight.data, self.bias.data, block_size)

    def log_likelihood(self, x, log_partition=None) -> np.ndarray:
        """Exact log p(x) (N,) float64 (needs n_visible + n_hidden <= ~24)."""
        log_z = self.exact_log_partition() if log_partition is None else float(log_partition)
        return -self.free_energy_float64(self.check_data(x, "log_likelihood")) - log_z

    def evaluate(self, x, y=None, rng=None) -> Dict[str, float]:
        """Exact mean log-likelihood when n <= 22 units, else the mean free energy when H <= 12."""
        v = self.check_data(x, "evaluate")
        metrics = {"chain_energy": float(self.energy(self.chains).mean())}
        if self.n_units <= 22:
            metrics["log_likelihood"] = float(self.log_likelihood(v).mean())
        elif self.n_hidden <= 12:
            metrics["free_energy"] = float(self.free_energy_float64(v[:1000]).mean())
        return metrics

    # ---- sampling and pictures -----------------------------------------------------------------
    def sample(self, n: int, rng=None, y=None, n_steps: int = 1000):
        """Images (n, C, H, W): visible probabilities of the last of ``n_steps`` sweeps from random states."""
        rng = np.random.default_rng(rng)
        s = (random_uniform(rng, (n, self.n_units), self.weight.data) < 0.5).astype(self.dtype)
        for _ in range(n_steps):
            v_prob = self.sweep(s, rng, clamp_visible=False)
        return v_prob.reshape((-1,) + self.image_shape)

    def save_pictures(self, out_dir, data, rng, tag: str = "") -> List[str]:
        from ... import plots

        suffix = f"_{tag}" if tag else ""
        paths = [plots.save_image_grid(self.sample(16, rng, n_steps=200), os.path.join(out_dir, f"samples{suffix}.png"))]
        if self.n_hidden:
            tiles = weight_tiles(self.weight.data[: self.n_visible, self.n_visible :], self.image_shape)
            paths.append(plots.save_image_grid(tiles, os.path.join(out_dir, f"filters{suffix}.png")))
        return paths


@register_model("bm", family="boltzmann", description="fully connected Boltzmann machine (small; Gibbs statistics)",
                defaults={"hidden": 16, "restricted": False, "positive_sweeps": 3, "negative_sweeps": 1,
                          "n_chains": 64, "lr": 0.01, "momentum": 0.0, "init_std": 0.01})
def build_boltzmann_machine(config, data_info, rng) -> BoltzmannMachine:
    return BoltzmannMachine(
        data_info.num_features, config["hidden"], restricted=config["restricted"],
        positive_sweeps=config["positive_sweeps"], negative_sweeps=config["negative_sweeps"],
        n_chains=config["n_chains"], lr=config["lr"], momentum=config["momentum"], init_std=config["init_std"],
        image_shape=data_info.image_shape, rng=rng,
    )
