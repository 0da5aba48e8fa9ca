"""Score function against reparameterisation on the one case with every moment in closed form.

    python -m scratchgen.experiments.quadratic_estimators [--draws 1000000] [--seed 0]

The case. z ~ q = N(mu, s^2) with s^2 = e^v (v = logvar) and f(z) = z^2, so

    E_q[f] = mu^2 + s^2,    exact gradient:  d/dmu = 2 mu,   d/dlogvar = s^2   (d s^2 / dv = s^2).

Write z = mu + s eps with eps ~ N(0, 1) and use the moments E eps^2 = 1, E eps^4 = 3,
E eps^6 = 15, E eps^8 = 105, odd moments 0. One sample of each estimator (see
``scratchgen/ops/gradient_estimators.py``) and its variance:

Reparameterised (f'(z) = 2 z):
    g_mu = 2 z = 2 mu + 2 s eps                               Var = 4 s^2
    g_v  = f'(z) 0.5 s eps = mu s eps + s^2 eps^2             Var = mu^2 s^2 + 2 s^4
  (Cov(eps, eps^2) = E eps^3 = 0, Var eps^2 = 3 - 1 = 2.)

Score function with a constant baseline b (b = 0: no baseline). Put a = mu^2 - b, so that
f - b = a + c eps + d eps^2 with c = 2 mu s, d = s^2.
    g_mu = (f - b) eps / s.   E[g_mu^2] s^2 = E[(a eps + c eps^2 + d eps^3)^2] = a^2 + 3 c^2 + 15 d^2 + 6 a d
          Var g_mu = (a^2 + 6 a s^2 + 15 s^4) / s^2 + 8 mu^2               (since 3 c^2 / s^2 - (2 mu)^2 = 8 mu^2)
    g_v  = (f - b) h / 2 with h = eps^2 - 1 (E h^2 = 2, E eps^2 h^2 = 10, E eps^4 h^2 = 78):
          E[g_v^2] = (2 a^2 + 10 c^2 + 78 d^2 + 20 a d) / 4
          Var g_v  = a^2 / 2 + 5 a s^2 + 10 mu^2 s^2 + 18.5 s^4
  No baseline (a = mu^2): Var g_mu = mu^4 / s^2 + 14 mu^2 + 15 s^2, which grows like mu^4 where
  the reparameterised 4 s^2 does not move at all: the score function pays for the *size* of f,
  the reparameterised estimator only for its slope. With b = E_q[f] (a = -s^2):
  Var g_mu = 10 s^2 + 8 mu^2, Var g_v = 14 s^4 + 10 mu^2 s^2. The best constant for g_mu is
  a = -3 s^2 (b = mu^2 + 3 s^2), giving 6 s^2 + 8 mu^2: still above 4 s^2.

Score function with the leave-one-out baseline, S samples. The S-sample estimator is the
unbiased sample covariance of (f, Y) with Y the score (eps / s for mu, (eps^2 - 1) / 2 for v),
and the variance of an unbiased sample covariance of S i.i.d. pairs is

    Var = m22 / S - (S - 2) / (S (S - 1)) c_fY^2 + var_f var_Y / (S (S - 1)),

with m22 = E[(f - E f)^2 (Y - E Y)^2], c_fY = Cov(f, Y) (the gradient), var_f = 4 mu^2 s^2 + 2 s^4:
    mu:      m22 = 12 mu^2 + 10 s^2,          c = 2 mu,   var_Y = 1 / s^2
    logvar:  m22 = 10 mu^2 s^2 + 15 s^4,      c = s^2,    var_Y = 1 / 2
(E[eps^2 h^2] = 10, E[h^4] = 60). As S grows this tends to the b = E_q[f] variance over S.

``exact_variances`` returns these numbers; ``measure`` draws the estimators and measures them;
``main`` prints both side by side (tests/test_gradient_estimators.py checks them against each other).
"""
from __future__ import annotations

import argparse
import math
from typing import Dict, Optional

import numpy as np

from ..ops.gradient_estimators import leave_one_out_baseline, reparameterization_estimates, score_function_estimates

__all__ = ["exact_gradient", "exact_variances", "leave_one_out_variance", "draw_estimates", "measure", "main"]

ESTIMATORS = ("reparameterization", "score", "score_mean_baseline")


def exact_gradient(mu: float, logvar: float) -> Dict[str, float]:
    """grad of E[z^2] = mu^2 + e^v: {"mu": 2 mu, "logvar": e^v}."""
    return {"mu": 2.0 * mu, "logvar": math.exp(logvar)}


def exact_variances(mu: float, logvar: float, baseline: Optional[float] = None) -> Dict[str, Dict[str, float]]:
    """Per-sample variances of each estimator for f(z) = z^2, z ~ N(mu, e^logvar) (see the module docstring).

    Returns {"reparameterization": {"mu": ., "logvar": .}, "score": {...}} and, for the baseline
    b = E_q[f] = mu^2 + s^2, "score_mean_baseline"; with ``baseline`` given, also "score_baseline"
    for that constant.
    """
    s2 = math.exp(logvar)

    def score(b: float) -> Dict[str, float]:
        a = mu * mu - b
        return {"mu": (a * a + 6 * a * s2 + 15 * s2 * s2) / s2 + 8 * mu * mu,
                "logvar": 0.5 * a * a + 5 * a * s2 + 10 * mu * mu * s2 + 18.5 * s2 * s2}

    result = {"reparameterization": {"mu": 4 * s2, "logvar": mu * mu * s2 + 2 * s2 * s2},
              "score": score(0.0), "score_mean_baseline": score(mu * mu + s2)}
    if baseline is not None:
        result["score_baseline"] = score(float(baseline))
    return result


def leave_one_out_variance(mu: float, logvar: float, samples: int) -> Dict[str, float]:
    """Variance of the S-sample score-function estimator with the leave-one-out baseline (S >= 2)."""
    if samples < 2:
        raise ValueError(f"leave_one_out_variance: samples must be >= 2, got {samples}")
    s2, n = math.exp(logvar), samples
    var_f = 4 * mu * mu * s2 + 2 * s2 * s2

    def covariance_variance(m22: float, c: float, var_y: float) -> float:
        return m22 / n - (n - 2) / (n * (n - 1)) * c * c + var_f * var_y / (n * (n - 1))

    return {"mu": covariance_variance(12 * mu * mu + 10 * s2, 2 * mu, 1 / s2),
            "logvar": covariance_variance(10 * mu * mu * s2 + 15 * s2 * s2, s2, 0.5)}


def draw_estimates(mu: float, logvar: float, draws: int, rng: np.random.Generator, samples: int = 1) -> Dict[str, Dict[str, np.ndarray]]:
    """``draws`` independent S-sample estimates (S = ``samples``) of each estimator: {name: {"mu": (draws,), "logvar": (draws,)}}.

    Names: "reparameterization", "score", "score_mean_baseline" (b = E_q[f], exact) and, for
    S >= 2, "score_leave_one_out".
    """
    eps = rng.standard_normal((samples, draws, 1))
    mu_a, logvar_a = np.full((draws, 1), float(mu)), np.full((draws, 1), float(logvar))
    z = mu_a + math.exp(0.5 * logvar) * eps
    f = (z * z)[..., 0]  # (S, draws)
    estimates = {
        "reparameterization": reparameterization_estimates(2 * z, eps, logvar_a),
        "score": score_function_estimates(f, z, mu_a, logvar_a),
        "score_mean_baseline": score_function_estimates(f, z, mu_a, logvar_a, baseline=mu * mu + math.exp(logvar)),
    }
    if samples >= 2:
        estimates["score_leave_one_out"] = score_function_estimates(f, z, mu_a, logvar_a, baseline=leave_one_out_baseline(f))
    return {name: {"mu": g_mu.mean(axis=0)[:, 0], "logvar": g_v.mean(axis=0)[:, 0]} for name, (g_mu, g_v) in estimates.items()}


def measure(mu: float, logvar: float, draws: int, rng: np.random.Generator, samples: int = 1) -> Dict[str, Dict[str, Dict[str, float]]]:
    """Mean, variance and their standard errors of every estimator over ``draws`` draws.

    Returns {name: {"mu" | "logvar": {"mean", "mean_se", "variance", "variance_se"}}}; the
    variance's standard error is that of a mean of squared deviations, sqrt(Var((g - gbar)^2) / n).
    """
    result = {}
    for name, parts in draw_estimates(mu, logvar, draws, rng, samples).items():
        result[name] = {}
        for which, g in parts.items():
            squared = (g - g.mean()) ** 2
            result[name][which] = {"mean": float(g.mean()), "mean_se": float(g.std() / math.sqrt(draws)),
                                   "variance": float(squared.mean()), "variance_se": float(squared.std() / math.sqrt(draws))}
    return result


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(prog="python -m scratchgen.experiments.quadratic_estimators",
                                     description="Exact and measured variances of the ELBO gradient estimators for f(z) = z^2")
    parser.add_argument("--draws", type=int, default=1_000_000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--samples", type=int, default=10, help="S for the leave-one-out row")
    args = parser.parse_args(argv)
    rng = np.random.default_rng(args.seed)
    print(f"z ~ N(theta, 1), f(z) = z^2; exact gradient (2 theta, 1) in (mu, logvar); {args.draws:,} draws each")
    print("| theta | estimator | Var mu: exact | measured | Var logvar: exact | measured |")
    print("|---|---|---|---|---|---|")
    for theta in (0.0, 1.0, 3.0):
        exact = exact_variances(theta, 0.0)
        measured = measure(theta, 0.0, args.draws, rng)
        for name in ESTIMATORS:
            e, m = exact[name], measured[name]
            print(f"| {theta:g} | {name} (S=1) | {e['mu']:.4g} | {m['mu']['variance']:.4g} | {e['logvar']:.4g} | "
                  f"{m['logvar']['variance']:.4g} |")
        loo_exact = leave_one_out_variance(theta, 0.0, args.samples)
        loo = measure(theta, 0.0, args.draws // args.samples, rng, samples=args.samples)["score_leave_one_out"]
        print(f"| {theta:g} | score_leave_one_out (S={args.samples}) | {loo_exact['mu']:.4g} | {loo['mu']['variance']:.4g} | "
              f"{loo_exact['logvar']:.4g} | {loo['logvar']['variance']:.4g} |")


if __name__ == "__main__":
    main()
