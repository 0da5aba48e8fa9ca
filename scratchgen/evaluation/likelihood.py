"""How good is a VAE? The ELBO, the importance-weighted bound (IWAE) and active latent units.

For a latent-variable model p(x, z) = p(z) p(x|z) with an encoder q(z|x), every z drawn from q
gives one *log importance weight*

    log w(x, z) = log p(x|z) + log p(z) - log q(z|x).

Its average over z ~ q is the ELBO. Averaging the weights themselves (not their logs) over k
draws gives the importance-weighted bound of Burda et al. (2015):

    L_k(x) = E[ log (1/k) sum_{s=1..k} w(x, z_s) ],   L_1 = ELBO <= L_k <= L_{k+1} <= log p(x),

and L_k -> log p(x) as k grows (k = 5000 is the usual "log-likelihood estimate"). The mean of k
weights is computed in log space with ``log_mean_exp`` so no weight ever overflows.

The model protocol (what ``VAE``, ``ConvVAE`` and ``CVAE`` implement):

    model.latent_dim                               D
    model.log_importance_weights(x, eps, y=None)   x: (N, ...), eps: (S, N, D) -> (S, N) array of
                                                   log w(x_n, z_sn) with z_sn = mu_n + sigma_n eps_sn
    model.elbo(x, eps, y=None)                     eps: (N, D) -> (N,) ELBO with the analytic KL
    model.encode_mean(x, y=None)                   (N, D) array: E_q[z|x]

All noise is drawn here from the ``rng`` argument and passed in, so an evaluation is repeatable.
Memory stays bounded whatever k: the decoder never sees more than ``max_rows`` rows at once
(k = 5000 samples for a batch of 100 images is 500,000 decoder rows; they are taken a chunk at
a time and combined with log-sum-exp).

Units: nats per example. A Bernoulli decoder on grey-level intensities (not binarised pixels)
is a cross-entropy, not a normalised likelihood; its "log-likelihood" is comparable only with
runs of the same protocol.
"""
from __future__ import annotations

import math
from typing import Dict, Optional

import numpy as np

from ..device import to_numpy
from ..backend import get_array_module
from ..grad_mode import no_grad

__all__ = ["log_sum_exp", "log_mean_exp", "evaluate_elbo", "iwae_bound", "active_units", "likelihood_report"]


def log_sum_exp(a, axis: int = -1, keepdims: bool = False):
    """log(sum(exp(a))) along ``axis``, stably: m + log(sum(exp(a - m))), m = max(a).

    Rows that are all -inf give -inf (not NaN): the shift m is replaced by 0 there.
    """
    xp = get_array_module(a)
    m = xp.max(a, axis=axis, keepdims=True)
    m = xp.where(xp.isfinite(m), m, 0)
    with np.errstate(divide="ignore"):  # log(0) = -inf is the right answer for all -inf rows
        out = xp.log(xp.sum(xp.exp(a - m), axis=axis, keepdims=True)) + m
    return out if keepdims else xp.squeeze(out, axis=axis)


def log_mean_exp(a, axis: int = -1, keepdims: bool = False):
    """log(mean(exp(a))) along ``axis`` = log_sum_exp(a) - log(n), stably."""
    return log_sum_exp(a, axis=axis, keepdims=keepdims) - math.log(a.shape[axis])


def _batches(n: int, batch_size: int):
    for start in range(0, n, batch_size):
        yield slice(start, min(start + batch_size, n))


def _check_x(op_name: str, x, y):
    if x.ndim < 2:
        raise ValueError(f"{op_name}: x must be (N, ...) with a batch axis, got shape {x.shape}")
    if y is not None and len(y) != len(x):
        raise ValueError(f"{op_name}: x has {len(x)} examples but y has {len(y)}")


def evaluate_elbo(model, x, rng: np.random.Generator, y=None, batch_size: int = 500, samples: int = 1) -> np.ndarray:
    """Per-example ELBO (N,) with the analytic KL, averaged over ``samples`` draws of eps.

    This is the number a VAE's training loss estimates (test "-ELBO" is its negated mean).
    """
    _check_x("evaluate_elbo", x, y)
    if samples < 1:
        raise ValueError(f"evaluate_elbo: samples must be >= 1, got {samples}")
    d = model.latent_dim
    out = np.empty(len(x), dtype=np.float64)
    with no_grad():
        for rows in _batches(len(x), batch_size):
            xb = x[rows]
            total = 0.0
            for _ in range(samples):
                eps = rng.standard_normal((len(xb), d)).astype(xb.dtype)
                total = total + to_numpy(model.elbo(xb, eps, **_y_kw(y, rows)), np.float64)
            out[rows] = total / samples
    return out


def iwae_bound(model, x, k: int, rng: np.random.Generator, y=None, batch_size: int = 100,
               max_rows: int = 20000) -> np.ndarray:
    """Per-example importance-weighted bound L_k (N,) (Burda et al. 2015); k = 1 is an ELBO estimate.

    ``max_rows`` caps S * B, the rows one decoder call sees, so memory is O(max_rows * features)
    whatever k. Samples are taken in chunks of S = max(1, max_rows // B); each chunk's weights
    are reduced to one log-sum-exp per example, and the chunks are combined the same way:
        L_k = log_sum_exp_chunks( log_sum_exp_s(log w) ) - log k.
    """
    _check_x("iwae_bound", x, y)
    if k < 1:
        raise ValueError(f"iwae_bound: k must be >= 1, got {k}")
    if max_rows < 1:
        raise ValueError(f"iwae_bound: max_rows must be >= 1, got {max_rows}")
    d = model.latent_dim
    out = np.empty(len(x), dtype=np.float64)
    with no_grad():
        for rows in _batches(len(x), batch_size):
            xb = x[rows]
            per_chunk = max(1, max_rows // len(xb))
            chunk_lse = []
            for start in range(0, k, per_chunk):
                s = min(per_chunk, k - start)
                eps = rng.standard_normal((s, len(xb), d)).astype(xb.dtype)
                log_w = to_numpy(model.log_importance_weights(xb, eps, **_y_kw(y, rows)), np.float64)
                if log_w.shape != (s, len(xb)):
                    raise ValueError(f"iwae_bound: log_importance_weights returned shape {log_w.shape}, expected {(s, len(xb))}")
                chunk_lse.append(log_sum_exp(log_w, axis=0))
            out[rows] = log_sum_exp(np.stack(chunk_lse), axis=0) - math.log(k)
    return out


def active_units(model, x, y=None, threshold: float = 0.01, batch_size: int = 1000) -> Dict[str, object]:
    """Active latent units of a VAE-family model (its own ``active_units``; Burda et al. 2015)."""
    _check_x("active_units", x, y)
    return model.active_units(x, y=y, threshold=threshold, batch_size=batch_size)


def likelihood_report(model, x, rng: np.random.Generator, y=None, ks=(1, 10, 100), iwae_examples: Optional[int] = None,
                      batch_size: int = 100, max_rows: int = 20000) -> Dict[str, float]:
    """Test -ELBO (all of x), -L_k for each k in ``ks`` (first ``iwae_examples`` of x), active units.

    Returns plain floats: {"neg_elbo", "neg_iwae_k<k>" ..., "active_units", "iwae_examples"}.
    """
    report = {"neg_elbo": float(-evaluate_elbo(model, x, rng, y=y).mean())}
    m = len(x) if iwae_examples is None else min(int(iwae_examples), len(x))
    for k in ks:
        bound = iwae_bound(model, x[:m], k, rng, y=None if y is None else y[:m], batch_size=batch_size, max_rows=max_rows)
        report[f"neg_iwae_k{k}"] = float(-bound.mean())
    report["iwae_examples"] = m
    report["active_units"] = active_units(model, x, y=y)["active"]
    return report


def _y_kw(y, rows):
    return {} if y is None else {"y": y[rows]}
