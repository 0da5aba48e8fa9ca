"""Pseudo-log-likelihood of binary data under an energy model with a tractable free energy.

    log PL(v) = sum_i log p(v_i | v_-i),    p(v_i | v_-i) = sigmoid(F(v^(i)) - F(v))

where v^(i) is v with bit i flipped (the two states that agree on v_-i have probabilities
proportional to exp(-F)). It needs no partition function, so it is cheap to monitor, but it is
not the log-likelihood: do not put it in a table beside log-likelihoods.

Two estimators:
* ``deterministic=True`` (default): every bit of every example, exact for the given data.
* ``deterministic=False``: one random bit i per example, times V. This is scikit-learn's
  ``BernoulliRBM.score_samples``: unbiased, but noisy from call to call.

For a Bernoulli RBM, flipping bit i changes the hidden inputs a = c + v W by d_i W_i (d_i = 1 - 2 v_i),
so all V flips cost O(N V H) from one product; other models fall back to V free-energy calls.
"""
from __future__ import annotations

import numpy as np

from ..device import to_numpy
from .partition import softplus

__all__ = ["pseudo_log_likelihood"]



def _bernoulli_rbm_flip_free_energies(model, v: np.ndarray, bits: np.ndarray) -> np.ndarray:
    """F(v^(i)) for each example and each bit i in ``bits``: (N, len(bits)), float64."""
    w, b, c = (to_numpy(p, np.float64) for p in (model.weight, model.visible_bias, model.hidden_bias))
    a = v @ w + c  # (N, H)
    base = -(v @ b)  # (N,)
    flips = 1.0 - 2.0 * v[:, bits]  # (N, B): +1 turns a bit on, -1 off
    a_flipped = a[:, None, :] + flips[:, :, None] * w[bits][None, :, :]  # (N, B, H)
    return base[:, None] - flips * b[bits][None, :] - softplus(a_flipped).sum(axis=2)


def _generic_flip_free_energies(model, v: np.ndarray, bits: np.ndarray) -> np.ndarray:
    out = np.empty((len(v), len(bits)))
    for column, i in enumerate(bits):
        flipped = v.copy()
        flipped[:, i] = 1.0 - flipped[:, i]
        out[:, column] = model.free_energy_float64(flipped)
    return out


def pseudo_log_likelihood(model, v, deterministic: bool = True, rng=None, max_elements: int = 2**22) -> np.ndarray:
    """log PL per example (N,) float64 for binary data v (N, V) in model space.

    ``max_elements`` bounds the (N, bits, H) work array of the Bernoulli RBM path.
    """
    from ..models.rbm import BernoulliRBM

    v = to_numpy(v, np.float64)
    if v.ndim != 2 or v.shape[1] != model.n_visible:
        raise ValueError(f"pseudo_log_likelihood: v must be (N, {model.n_visible}), got shape {v.shape}")
    if not np.all((v == 0) | (v == 1)):
        raise ValueError("pseudo_log_likelihood: needs binary data (0/1); binarise it first")
    n, n_visible = v.shape
    flip_energies = _bernoulli_rbm_flip_free_energies if isinstance(model, BernoulliRBM) else _generic_flip_free_energies
    free_energy = model.free_energy_float64(v)  # (N,)

    if not deterministic:
        rng = np.random.default_rng(rng)
        bits = rng.integers(0, n_visible, size=n)
        delta = np.empty(n)
        for i in np.unique(bits):  # group the examples by the bit they flip
            rows = np.flatnonzero(bits == i)
            delta[rows] = flip_energies(model, v[rows], np.array([i]))[:, 0] - free_energy[rows]
        return -n_visible * softplus(-delta)  # V log sigmoid(delta)

    total = np.zeros(n)
    chunk = max(1, max_elements // max(1, n * model.n_hidden))
    for start in range(0, n_visible, chunk):
        bits = np.arange(start, min(start + chunk, n_visible))
        delta = flip_energies(model, v, bits) - free_energy[:, None]  # F(v^(i)) - F(v)
        total += -softplus(-delta).sum(axis=1)  # log sigmoid(delta)
    return total
