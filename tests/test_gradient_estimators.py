"""Score-function and reparameterised gradient estimators: the surrogate op's gradcheck, the estimators
against autograd, and, on z ~ N(mu, e^v) with f(z) = z^2, unbiasedness and the derived variances."""
import math

import numpy as np
import pytest

import scratchgen as sg
from scratchgen import Tensor, gradcheck
from scratchgen.experiments.quadratic_estimators import (exact_gradient, exact_variances, leave_one_out_variance,
                                                        measure)
from scratchgen.gradcheck import registered_cases
from scratchgen.ops.gradient_estimators import (leave_one_out_baseline, reparameterization_estimates,
                                                score_function_estimates, score_function_surrogate)


def test_the_surrogate_gradchecks_in_float64():
    fn, inputs = registered_cases()["score_function_surrogate"](np.random.default_rng(0))[:2]
    gradcheck(fn, inputs, method="richardson")


def test_the_surrogates_gradient_is_the_mean_of_the_per_sample_score_estimates():
    rng = np.random.default_rng(1)
    mu, logvar = rng.standard_normal((3, 2)), rng.standard_normal((3, 2))
    z = mu + np.exp(0.5 * logvar) * rng.standard_normal((5, 3, 2))
    f = (z ** 3).sum(axis=2)
    baseline = leave_one_out_baseline(f)
    m, v = Tensor(mu, requires_grad=True), Tensor(logvar, requires_grad=True)
    z_tensor = Tensor(z, requires_grad=True)
    score_function_surrogate(m, v, z_tensor, f - baseline, reduction="sum").backward()
    g_mu, g_v = score_function_estimates(f, z, mu, logvar, baseline=baseline)
    np.testing.assert_allclose(m.grad, g_mu.mean(axis=0), rtol=1e-12)
    np.testing.assert_allclose(v.grad, g_v.mean(axis=0), rtol=1e-12)
    assert z_tensor.grad is None  # the samples are held constant: the stop-gradient of REINFORCE


def test_reparameterised_estimates_are_what_autograd_computes_through_reparameterize():
    rng = np.random.default_rng(2)
    mu, logvar, eps = rng.standard_normal((3, 2)), rng.standard_normal((3, 2)), rng.standard_normal((4, 3, 2))
    m, v = Tensor(mu, requires_grad=True), Tensor(logvar, requires_grad=True)
    z = sg.reparameterize(m, v, eps)
    (z * z * z).sum().backward()  # f(z) = sum z^3, f'(z) = 3 z^2
    g_mu, g_v = reparameterization_estimates(3 * z.data ** 2, eps, logvar)
    np.testing.assert_allclose(m.grad, g_mu.sum(axis=0), rtol=1e-12)
    np.testing.assert_allclose(v.grad, g_v.sum(axis=0), rtol=1e-12)


def test_leave_one_out_estimator_is_the_sample_covariance_of_f_and_the_score():
    rng = np.random.default_rng(3)
    mu, logvar = np.zeros((1, 1)), np.zeros((1, 1))
    z = rng.standard_normal((7, 1, 1))
    f = (z[..., 0] - 0.3) ** 2
    g_mu, _ = score_function_estimates(f, z, mu, logvar, baseline=leave_one_out_baseline(f))
    np.testing.assert_allclose(g_mu.mean(axis=0)[0, 0], np.cov(f[:, 0], z[:, 0, 0])[0, 1], rtol=1e-12)


@pytest.mark.parametrize("mu, logvar", [(0.0, 0.0), (1.0, 0.0), (3.0, 0.0), (1.5, -0.7), (-0.5, 0.8)])
def test_every_estimator_is_unbiased_and_has_the_derived_variance(mu, logvar):
    """200,000 draws each: the mean lies within 5 standard errors of the exact gradient and the
    sample variance within 5 standard errors of the variance derived in the docstring."""
    measured = measure(mu, logvar, 200_000, np.random.default_rng([4, int(10 * mu) + 50, int(10 * logvar) + 50]))
    exact, gradient = exact_variances(mu, logvar), exact_gradient(mu, logvar)
    assert set(measured) == set(exact)
    for name, parts in measured.items():
        for which, m in parts.items():
            assert abs(m["mean"] - gradient[which]) <= 5 * m["mean_se"], (name, which, m, gradient[which])
            assert abs(m["variance"] - exact[name][which]) <= 5 * m["variance_se"], (name, which, m, exact[name][which])


def test_the_reparameterised_estimator_has_lower_variance_and_a_baseline_helps_the_score_function():
    for mu in (0.0, 1.0, 3.0):
        v = exact_variances(mu, 0.0)
        for which in ("mu", "logvar"):
            assert v["reparameterization"][which] < v["score_mean_baseline"][which] < v["score"][which]
    # no baseline: Var g_mu = mu^4 + 14 mu^2 + 15 at s = 1, growing with the size of f; reparameterised: 4, constant
    assert exact_variances(3.0, 0.0)["score"]["mu"] == 81 + 126 + 15
    assert exact_variances(3.0, 0.0)["reparameterization"]["mu"] == 4
    # the best constant baseline for g_mu is b = mu^2 + 3 s^2
    best = exact_variances(1.0, 0.0, baseline=4.0)["score_baseline"]["mu"]
    assert best == pytest.approx(6 + 8) and all(exact_variances(1.0, 0.0, baseline=b)["score_baseline"]["mu"] > best
                                                for b in (3.5, 4.5))


@pytest.mark.parametrize("samples", [2, 5])
def test_leave_one_out_baseline_is_unbiased_with_the_derived_variance(samples):
    measured = measure(1.0, -0.3, 100_000, np.random.default_rng(samples), samples=samples)["score_leave_one_out"]
    exact, gradient = leave_one_out_variance(1.0, -0.3, samples), exact_gradient(1.0, -0.3)
    for which, m in measured.items():
        assert abs(m["mean"] - gradient[which]) <= 5 * m["mean_se"], (which, m)
        assert abs(m["variance"] - exact[which]) <= 5 * m["variance_se"], (which, m, exact[which])
    # as S grows it approaches the oracle baseline b = E[f], divided by S
    oracle = exact_variances(1.0, -0.3)["score_mean_baseline"]["mu"]
    assert leave_one_out_variance(1.0, -0.3, 10_000)["mu"] * 10_000 == pytest.approx(oracle, rel=1e-3)


def test_bad_inputs_are_named():
    with pytest.raises(ValueError, match="leave_one_out_baseline: needs at least 2 samples"):
        leave_one_out_baseline(np.zeros((1, 3)))
    mu = Tensor(np.zeros((3, 2)), requires_grad=True)
    with pytest.raises(ValueError, match=r"score_function_surrogate: z must be \(S, N, L\)"):
        score_function_surrogate(mu, mu, np.zeros((4, 3, 5)), np.zeros((4, 3)))
    with pytest.raises(ValueError, match=r"score_function_surrogate: weights must be \(S, N\)"):
        score_function_surrogate(mu, mu, np.zeros((4, 3, 2)), np.zeros((4,)))
    with pytest.raises(ValueError, match="leave_one_out_variance: samples must be >= 2"):
        leave_one_out_variance(0.0, 0.0, 1)
    assert math.isfinite(float(score_function_surrogate(mu, mu, np.zeros((4, 3, 2)), np.ones((4, 3))).data))
