"""Cheap training monitors for energy models: reconstruction error, the free-energy gap, pseudo-likelihood.

* Reconstruction error: the mean over examples of sum_i (x_i - x_hat_i)^2, with the mean-field
  reconstruction x_hat = E[v | h = p(h | x)]. Easy to compute and to watch, but a poor proxy
  for the likelihood (Hinton 2010, sec. 5): a model that mixes badly can reconstruct well.
* Free-energy gap (Hinton 2010, sec. 6): mean F(held-out) - mean F(training subset). log Z
  cancels in the difference of log-likelihoods, so the gap is the difference of average
  log-likelihoods of the two sets; it grows when the model starts to overfit.
* Pseudo-log-likelihood of binary data (needs no partition function; not the log-likelihood):

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

from ...backend import kernel
from ...device import to_numpy

__all__ = ["reconstruction_error", "free_energy_gap", "pseudo_log_likelihood"]


def reconstruction_error(model, v) -> float:
    """Mean squared reconstruction error per example (summed over units), in data units.

    v: (N, V) in model space (what ``model.check_data`` returns).
    """
    x = model.to_data_space(v)
    x_hat = model.to_data_space(model.visible_means(model.hidden_probabilities(v)))
    return float(((x - x_hat) ** 2).sum(axis=1).mean())


def free_energy_gap(model, v_train, v_heldout) -> float:
    """mean F(v_heldout) - mean F(v_train) in float64 (both (N, V), model space). Positive: overfitting."""
    return float(np.mean(model.free_energy_float64(v_heldout)) - np.mean(model.free_energy_float64(v_train)))


def flipped_free_energies(model, v: np.ndarray, bits: np.ndarray) -> np.ndarray:
    """F(v^(i)) for each example and each bit i in ``bits``: (N, len(bits)), float64, by V free-energy
    calls. A model that can do better defines ``flipped_free_energies_float64`` (the Bernoulli RBM)."""
    fast = getattr(model, "flipped_free_energies_float64", None)
    if fast is not None:
        return fast(v, bits)
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
    v = to_numpy(v, np.float64)
    if v.ndim != 2 or v.shape[1] != model.n_visible:
        raise ValueError(f"pseudo_log_likelihood: v must be (N, {model.n_visible}), got shape {v.shape}")
    if not np.all((v == 0) | (v == 1)):
        raise ValueError("pseudo_log_likelihood: needs binary data (0/1); binarise it first")
    n, n_visible = v.shape
    free_energy = model.free_energy_float64(v)  # (N,)

    if not deterministic:
        rng = np.random.default_rng(rng)
        bits = rng.integers(0, n_visible, size=n)
        delta = np.empty(n)
        for i in np.unique(bits):  # group the examples by the bit they flip
            rows = np.flatnonzero(bits == i)
            delta[rows] = flipped_free_energies(model, v[rows], np.array([i]))[:, 0] - free_energy[rows]
        return -n_visible * kernel("softplus_forward")(-delta)  # V log sigmoid(delta)

    total = np.zeros(n)
    chunk = max(1, max_elements // max(1, n * model.n_hidden))
    for start in range(0, n_visible, chunk):
        bits = np.arange(start, min(start + chunk, n_visible))
        delta = flipped_free_energies(model, v, bits) - free_energy[:, None]  # F(v^(i)) - F(v)
        total += -kernel("softplus_forward")(-delta).sum(axis=1)  # log sigmoid(delta)
    return total
