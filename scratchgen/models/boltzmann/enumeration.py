"""Exact log partition functions by enumeration: the sums each Boltzmann model's ``exact_log_partition`` uses.

For an RBM the sum over all (v, h) collapses to a sum over *one* layer, because the other one
can be summed out in closed form. Enumerating the smaller layer (2^16 = 65,536 states for 16
hidden units) is exact and cheap:

    Bernoulli RBM, summing out v:   log Z = logsumexp_h [ c.h + sum_i softplus(b_i + (W h)_i) ]
                   summing out h:   log Z = logsumexp_v [ b.v + sum_j softplus(c_j + (v W)_j) ] = logsumexp_v -F(v)
    Gaussian-Bernoulli RBM (E = sum_i (v_i - b_i)^2 / 2 s_i^2 - c.h - sum_ij (v_i / s_i) W_ij h_j),
    integrating out v for each h (a Gaussian integral, u = W h):
                                    log Z = V/2 log(2 pi) + sum_i log s_i
                                            + logsumexp_h [ c.h + (b / s).u + |u|^2 / 2 ]
    Boltzmann machine (all 2^n states s of n = V + H units, E(s) = -a.s - s^T L s / 2):
                                    log Z = logsumexp_s -E(s)

States are generated in blocks of ``block_size`` (row r of a block is the binary expansion of
its index), and the log-sum-exp is accumulated block by block with a running maximum, so memory
stays at one block whatever the number of states. Everything is float64 on the host.

Each model calls the function for its own energy (``BernoulliRBM.exact_log_partition`` and so on);
the log-likelihood of data then is  log p(v) = -F(v) - log Z  (``RBMBase.log_likelihood``).

When log Z can only be estimated (``scratchgen.evaluation.ais``), any set of distinct visible
states still gives a certain lower bound (``ais.log_partition_lower_bound``).
"""
from __future__ import annotations

from typing import Callable

import numpy as np

from ...device import to_numpy
from ...backend import kernel

__all__ = [
    "binary_states", "logsumexp_over_states", "bernoulli_rbm_log_partition", "gaussian_rbm_log_partition",
    "boltzmann_log_partition", "MAX_ENUMERATED_UNITS",
]

MAX_ENUMERATED_UNITS = 30  # 2^30 states is already ~10^9 terms: beyond that, use AIS


def softplus(x):
    """log(1 + e^x), stably (the ``softplus_forward`` kernel; ``np.logaddexp(0, x)`` is ~5x slower)."""
    return kernel("softplus_forward")(x)



def binary_states(n_bits: int, start: int, stop: int) -> np.ndarray:
    """Rows start..stop-1 of the table of all 2^n_bits binary vectors: (stop - start, n_bits) float64.

    Row r holds the bits of the integer r, least significant bit first.
    """
    indices = np.arange(start, stop, dtype=np.int64)[:, None]
    return ((indices >> np.arange(n_bits, dtype=np.int64)) & 1).astype(np.float64)


def logsumexp_over_states(log_weight: Callable[[np.ndarray], np.ndarray], n_bits: int, block_size: int = 4096):
    """log sum_s exp(log_weight(s)) over all 2^n_bits binary states s, one block at a time.

    ``log_weight`` maps a block of states (B, n_bits) to log-weights (B,), or (N, B) for N
    separate sums at once (e.g. one per data vector); the result is a float, or (N,).
    """
    if n_bits > MAX_ENUMERATED_UNITS:
        raise ValueError(f"logsumexp_over_states: 2^{n_bits} states are too many to enumerate "
                         f"(limit 2^{MAX_ENUMERATED_UNITS}); estimate log Z with AIS instead (scratchgen.evaluation.ais)")
    total = 2**n_bits
    running_max, running_sum = -np.inf, 0.0
    for start in range(0, total, block_size):
        values = log_weight(binary_states(n_bits, start, min(start + block_size, total)))
        new_max = np.maximum(running_max, values.max(axis=-1))
        # rescale what we have to the new maximum, then add this block
        running_sum = running_sum * np.exp(running_max - new_max) + np.exp(values - new_max[..., None]).sum(axis=-1)
        running_max = new_max
    result = running_max + np.log(running_sum)
    return float(result) if np.ndim(result) == 0 else result


def bernoulli_rbm_log_partition(weight, visible_bias, hidden_bias, block_size: int = 4096) -> float:
    """Exact log Z of a Bernoulli RBM, enumerating the smaller layer. weight: (V, H)."""
    w, b, c = to_numpy(weight, np.float64), to_numpy(visible_bias, np.float64), to_numpy(hidden_bias, np.float64)
    n_visible, n_hidden = w.shape
    if n_hidden <= n_visible:
        return logsumexp_over_states(lambda h: h @ c + softplus(h @ w.T + b).sum(axis=1), n_hidden, block_size)
    return logsumexp_over_states(lambda v: v @ b + softplus(v @ w + c).sum(axis=1), n_visible, block_size)


def gaussian_rbm_log_partition(weight, visible_bias, hidden_bias, sigma, block_size: int = 4096) -> float:
    """Exact log Z of a Gaussian-Bernoulli RBM (Gaussian integral over v, enumeration over h)."""
    w, b, c, s = to_numpy(weight, np.float64), to_numpy(visible_bias, np.float64), to_numpy(hidden_bias, np.float64), to_numpy(sigma, np.float64)
    n_visible, n_hidden = w.shape

    def log_weight(h):
        u = h @ w.T  # (B, V)
        return h @ c + u @ (b / s) + 0.5 * (u * u).sum(axis=1)

    gaussian_part = 0.5 * n_visible * np.log(2 * np.pi) + float(np.log(s).sum())
    return gaussian_part + logsumexp_over_states(log_weight, n_hidden, block_size)


def boltzmann_log_partition(weight, bias, block_size: int = 4096) -> float:
    """Exact log Z of a Boltzmann machine with symmetric, zero-diagonal weight (n, n) and bias (n,)."""
    w, a = to_numpy(weight, np.float64), to_numpy(bias, np.float64)
    return logsumexp_over_states(lambda s: s @ a + 0.5 * ((s @ w) * s).sum(axis=1), len(a), block_size)
