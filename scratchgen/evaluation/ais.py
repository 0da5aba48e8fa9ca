"""Annealed importance sampling (AIS) estimate of log Z for a Bernoulli RBM.

Salakhutdinov & Murray (2008), "On the quantitative analysis of deep belief networks". Anneal
from a base model A whose log Z is known to the RBM B through the intermediate distributions

    p*_beta(v) = exp((1 - beta) b_A.v + beta b_B.v) prod_j (1 + exp(beta (c_j + (v W)_j)))

at beta = 0 the visible units are independent with biases b_A (the base-rate model, b_A the
log-odds of the data's pixel means) and the H hidden units contribute 2^H, so

    log Z_A = H log 2 + sum_i softplus(b_A,i);          at beta = 1, p*_1 = exp(-F_B(v)).

Each of ``n_runs`` independent runs draws v ~ p_A, then for k = 1..K adds to its log-weight

    log w += log p*_{beta_k}(v) - log p*_{beta_{k-1}}(v)
           = (beta_k - beta_{k-1}) (b_B - b_A).v + sum_j [softplus(beta_k a_j) - softplus(beta_{k-1} a_j)],  a = c + v W

and moves v with one Gibbs sweep that leaves p_{beta_k} invariant:

    h ~ sigmoid(beta_k a),     v ~ sigmoid((1 - beta_k) b_A + beta_k (b_B + W h))

Then Z_B / Z_A ~ mean(w), computed as a log-mean-exp. All runs advance together (one (R, V) x
(V, H) product per step), so 100 runs cost about as much as one. The spread: with r = w / max(w),
std(log Z) ~ std(r) / (sqrt(R) mean(r)) (delta method), and the interval
log(mean(r) +- 3 std(r) / sqrt(R)) is Salakhutdinov & Murray's "log Z +- 3 sigma"; its lower
end is -inf when 3 sigma exceeds the mean (a sign that more runs or betas are needed).

AIS under-estimates log Z on average (Jensen: E[log mean w] <= log Z), so the log-likelihoods
from it tend to be optimistic; more betas shrink the bias. Worse, a model with modes that the
annealed chains never reach (common after CD-k training, whose chains never leave the data)
makes *every* run miss them: the weights agree, the spread is small, and log Z is still far
too low. Two checks that need no trust in AIS: ``log_partition_lower_bound`` (distinct
states, e.g. training data and long Gibbs chains, bound log Z from below), and, for binarised
grey-level data, the binarisation entropy (no test log-likelihood can honestly exceed minus it;
see ``benchmarks/rbm_baselines.py``). ``effective_sample_size`` near 1 is a third warning.
"""
from __future__ import annotations

import dataclasses
from typing import Optional, Sequence, Tuple

import numpy as np

from ..backend import get_array_module, kernel
from ..device import to_numpy
from ..models.boltzmann.bernoulli_rbm import BernoulliRBM
from ..models.boltzmann.helpers import base_rate_visible_bias, random_uniform

__all__ = ["AISResult", "beta_schedule", "ais_log_partition", "log_partition_lower_bound", "DEFAULT_SEGMENTS"]

# (end of segment, number of intermediate betas in it): 1,000 on [0, 0.5], 4,000 on [0.5, 0.9],
# 10,000 on [0.9, 1] - Salakhutdinov & Murray's schedule, 15,000 betas in all.
DEFAULT_SEGMENTS: Tuple[Tuple[float, int], ...] = ((0.5, 1000), (0.9, 4000), (1.0, 10000))


@dataclasses.dataclass
class AISResult:
    """An AIS estimate: ``log_z`` with ``log_z_std`` and the 3-sigma interval [log_z_low, log_z_high]."""

    log_z: float
    log_z_std: float
    log_z_low: float
    log_z_high: float
    log_z_base: float
    log_weights: np.ndarray  # (n_runs,) float64
    n_betas: int
    samples: Optional[np.ndarray] = None  # (n_runs, V): the runs' final states, approximately from the model

    @property
    def effective_sample_size(self) -> float:
        """(sum w)^2 / sum w^2: how many runs really count. Near 1 means one run dominates: distrust log Z."""
        r = np.exp(self.log_weights - self.log_weights.max())
        return float(r.sum() ** 2 / (r * r).sum())

    def __float__(self) -> float:
        return self.log_z

    def __str__(self) -> str:
        return (f"log Z = {self.log_z:.3f} (std {self.log_z_std:.3f}; 3-sigma interval "
                f"[{self.log_z_low:.3f}, {self.log_z_high:.3f}]; {len(self.log_weights)} runs, {self.n_betas} betas, "
                f"effective sample size {self.effective_sample_size:.1f})")


def beta_schedule(n_betas: Optional[int] = None, segments: Sequence[Tuple[float, int]] = DEFAULT_SEGMENTS) -> np.ndarray:
    """The inverse temperatures 0 = beta_0 < ... < beta_K = 1 (float64, K + 1 values).

    ``segments``: (end, count) pairs, each spacing ``count`` betas evenly up to ``end``.
    ``n_betas`` rescales the counts to about that total, keeping their proportions.
    """
    if n_betas is not None:
        if n_betas < len(segments):
            raise ValueError(f"beta_schedule: n_betas must be at least {len(segments)}, got {n_betas}")
        total = sum(count for _, count in segments)
        segments = [(end, max(1, round(count * n_betas / total))) for end, count in segments]
    betas, start = [np.zeros(1)], 0.0
    for end, count in segments:
        if not start < end <= 1.0:
            raise ValueError(f"beta_schedule: segment ends must increase within (0, 1], got {end} after {start}")
        betas.append(np.linspace(start, end, int(count) + 1)[1:])
        start = end
    if start != 1.0:
        raise ValueError(f"beta_schedule: the last segment must end at 1, got {start}")
    return np.concatenate(betas)


def _softplus64(x):
    return kernel("softplus_forward")(x)


def ais_log_partition(model, data=None, base_visible_bias=None, betas=None, n_betas: Optional[int] = None,
                      n_runs: int = 100, rng=None) -> AISResult:
    """Estimate log Z of a Bernoulli RBM ``model`` by AIS (see the module docstring).

    data: (N, V) or images, for the base-rate model (else ``base_visible_bias``, else b_A = 0).
    betas: an explicit schedule (increasing, from 0 to 1), else ``beta_schedule(n_betas)``.
    The chains run in the model's dtype and device; the log-weights accumulate in float64.
    """
    if not isinstance(model, BernoulliRBM):
        raise TypeError(f"ais_log_partition: implemented for BernoulliRBM, got {type(model).__name__}")
    if n_runs < 2:
        raise ValueError(f"ais_log_partition: n_runs must be at least 2 (for the spread), got {n_runs}")
    rng = np.random.default_rng(rng)
    betas = beta_schedule(n_betas) if betas is None else np.asarray(betas, dtype=np.float64)
    if betas[0] != 0.0 or betas[-1] != 1.0 or np.any(np.diff(betas) <= 0):
        raise ValueError("ais_log_partition: betas must increase strictly from 0 to 1")
    if base_visible_bias is None:
        base_visible_bias = base_rate_visible_bias(model.check_data(data, "ais")) if data is not None else np.zeros(model.n_visible)

    w, b, c = model.weight.data, model.visible_bias.data, model.hidden_bias.data
    xp, dtype = get_array_module(w), w.dtype
    b_base64 = xp.asarray(np.asarray(base_visible_bias, dtype=np.float64))
    b_base = b_base64.astype(dtype)
    bias_difference = (b.astype(np.float64) - b_base64).astype(dtype)  # (b_B - b_A), for the log-weights
    sigmoid = kernel("sigmoid_forward")
    n_hidden = w.shape[1]
    log_z_base = n_hidden * np.log(2.0) + float(_softplus64(b_base64).sum())

    v = (random_uniform(rng, (n_runs, model.n_visible), w) < sigmoid(b_base)).astype(dtype)
    log_w = xp.zeros(n_runs, dtype=np.float64)
    for k in range(1, len(betas)):
        beta, beta_prev = betas[k], betas[k - 1]
        a = (v @ w + c).astype(np.float64)  # hidden inputs of the current states, (R, H)
        log_w += (beta - beta_prev) * (v @ bias_difference).astype(np.float64)
        log_w += (_softplus64(beta * a) - _softplus64(beta_prev * a)).sum(axis=1)
        if k < len(betas) - 1:  # move v with a transition that keeps p_beta invariant
            h_prob = sigmoid((beta * a).astype(dtype))
            h = (random_uniform(rng, h_prob.shape, w) < h_prob).astype(dtype)
            v_prob = sigmoid(dtype.type(1.0 - beta) * b_base + dtype.type(beta) * (h @ w.T + b))
            v = (random_uniform(rng, v_prob.shape, w) < v_prob).astype(dtype)

    log_w = np.asarray(log_w.get() if hasattr(log_w, "get") else log_w)
    shift = log_w.max()
    r = np.exp(log_w - shift)
    mean, spread = r.mean(), r.std(ddof=1) / np.sqrt(n_runs)
    log_z = log_z_base + shift + np.log(mean)
    low = log_z_base + shift + np.log(mean - 3 * spread) if mean > 3 * spread else -np.inf
    high = log_z_base + shift + np.log(mean + 3 * spread)
    samples = v.get() if hasattr(v, "get") else v
    return AISResult(float(log_z), float(spread / mean), float(low), float(high), float(log_z_base), log_w,
                     len(betas) - 1, samples)


def log_partition_lower_bound(model, states) -> float:
    """logsumexp of -F(v) over the *distinct* rows of ``states`` (N, V): a certain lower bound on log Z.

    Z sums exp(-F(v)) over all visible states and every term is positive, so any set of distinct
    states gives a bound that needs no trust in AIS: an AIS estimate below it is wrong, whatever
    its error bars say (an AIS run that missed modes). Good states: the training data, and the
    end points of long Gibbs chains.
    """
    unique = np.unique(to_numpy(states, np.float64).reshape(len(states), -1), axis=0)
    negative_free = -model.free_energy_float64(unique)
    top = negative_free.max()
    return float(top + np.log(np.exp(negative_free - top).sum()))
