"""Cheap training monitors for energy models: reconstruction error and the free-energy gap.

* Reconstruction error: the mean over examples of sum_i (x_i - x_hat_i)^2, with the mean-field
  reconstruction x_hat = E[v | h = p(h | x)]. Easy to compute and to watch, but a poor proxy
  for the likelihood (Hinton 2010, sec. 5): a model that mixes badly can reconstruct well.
* Free-energy gap (Hinton 2010, sec. 6): mean F(held-out) - mean F(training subset). log Z
  cancels in the difference of log-likelihoods, so the gap is the difference of average
  log-likelihoods of the two sets; it grows when the model starts to overfit.
"""
from __future__ import annotations

import numpy as np

__all__ = ["reconstruction_error", "free_energy_gap"]


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
