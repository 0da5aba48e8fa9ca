"""Naive Bayes and the Gaussian mixture: closed forms on tiny data, EM's log-likelihood never
decreasing, the loop's batches equal to one pass over all data, ancestral sampling, bad input."""
import math

import numpy as np
import pytest

from scratchgen.models.classical.gaussian_mixture import GaussianMixture
from scratchgen.models.classical.naive_bayes import BernoulliNaiveBayes

X_TINY = np.array([[1, 0, 1], [1, 1, 1], [0, 0, 1], [0, 1, 0], [0, 0, 0]], dtype=np.float64)
Y_TINY = np.array([0, 0, 0, 1, 1])


# ---- naive Bayes ------------------------------------------------------------------------------------
def _counted(alpha=1.0, batch_size=2):
    model = BernoulliNaiveBayes((1, 1, 3), 2, alpha=alpha)
    model.fit(X_TINY, Y_TINY, epochs=1, batch_size=batch_size, shuffle=False)
    return model


def test_naive_bayes_counts_give_the_smoothed_estimates_by_hand():
    model = _counted(alpha=1.0)
    # class 0: 3 examples, feature counts (2, 1, 3); class 1: 2 examples, counts (0, 1, 0)
    np.testing.assert_allclose(model.feature_prob.data, [[3 / 5, 2 / 5, 4 / 5], [1 / 4, 2 / 4, 1 / 4]], rtol=1e-15)
    np.testing.assert_allclose(model.class_prior.data, [4 / 7, 3 / 7], rtol=1e-15)
    assert not model.class_counts.any() and not model.feature_counts.any()  # cleared after the estimate


def test_naive_bayes_posterior_is_bayes_rule_written_out():
    model = _counted(alpha=0.5)
    theta, pi = model.feature_prob.data, model.class_prior.data
    x = np.array([[1.0, 0.0, 1.0]])
    joint = [pi[k] * np.prod(theta[k] ** x[0] * (1 - theta[k]) ** (1 - x[0])) for k in range(2)]
    np.testing.assert_allclose(np.exp(model.predict_log_proba(x))[0], np.array(joint) / sum(joint), rtol=1e-13)
    np.testing.assert_allclose(model.log_marginal(x), [math.log(sum(joint))], rtol=1e-13)
    assert model.predict(x)[0] == int(np.argmax(joint))


def test_naive_bayes_is_a_linear_softmax_classifier():
    model = _counted()
    theta, pi = model.feature_prob.data, model.class_prior.data
    weight, bias = np.log(theta) - np.log1p(-theta), np.log(pi) + np.log1p(-theta).sum(axis=1)
    logits = X_TINY @ weight.T + bias
    np.testing.assert_allclose(model.predict_log_proba(X_TINY), logits - np.log(np.exp(logits).sum(axis=1, keepdims=True)),
                               rtol=1e-13)


def test_naive_bayes_batches_do_not_change_the_counts_and_the_first_epoch_reports_the_uniform_model():
    one, many = _counted(batch_size=5), _counted(batch_size=1)
    np.testing.assert_array_equal(one.feature_prob.data, many.feature_prob.data)
    assert one.history[0]["train_neg_log_joint"] == pytest.approx(3 * math.log(2) + math.log(2), rel=1e-15)


def test_naive_bayes_theta_matches_scikit_learn():
    naive_bayes = pytest.importorskip("sklearn.naive_bayes", reason="scikit-learn is the reference")
    rng = np.random.default_rng(0)
    x, y = (rng.random((200, 12)) < 0.3).astype(float), rng.integers(0, 4, 200)
    model = BernoulliNaiveBayes((1, 1, 12), 4, alpha=1.0)
    model.fit(x, y, epochs=1, batch_size=64)
    reference = naive_bayes.BernoulliNB(alpha=1.0).fit(x, y)
    np.testing.assert_allclose(np.log(model.feature_prob.data), reference.feature_log_prob_, rtol=1e-12)


def test_naive_bayes_ancestral_samples_follow_theta():
    model = _counted()
    rng = np.random.default_rng(1)
    x = model.sample(20_000, rng, y=np.zeros(20_000, np.int64)).reshape(20_000, 3)
    assert set(np.unique(x)) <= {0.0, 1.0}
    theta = model.feature_prob.data[0]
    assert np.all(np.abs(x.mean(axis=0) - theta) < 5 * np.sqrt(theta * (1 - theta) / 20_000))
    labels = np.bincount(np.random.default_rng(2).choice(2, 20_000, p=model.class_prior.data), minlength=2)
    np.testing.assert_array_equal(model.sample(20_000, np.random.default_rng(2)).shape, (20_000, 1, 1, 3))
    assert abs(labels[0] / 20_000 - 4 / 7) < 0.02


def test_naive_bayes_bad_input_is_named():
    with pytest.raises(ValueError, match="alpha must be > 0"):
        BernoulliNaiveBayes((1, 1, 3), 2, alpha=0.0)
    model = BernoulliNaiveBayes((1, 1, 3), 2)
    with pytest.raises(ValueError, match=r"labels must lie in \[0, 2\), got \[0, 5\]"):
        model.count(X_TINY, np.array([0, 1, 5, 0, 0]))
    with pytest.raises(ValueError, match="input has 4 features, the model expects 3"):
        model.log_joint(np.zeros((2, 4)))


# ---- the Gaussian mixture ------------------------------------------------------------------------------
def _blobs(n=300, seed=0):
    rng = np.random.default_rng(seed)
    centres = np.array([[0.0, 0.0, 0.5], [3.0, 1.0, 0.5], [0.0, 4.0, 0.5]])
    z = rng.integers(0, 3, n)
    x = centres[z] + rng.standard_normal((n, 3)) * np.array([0.5, 0.8, 0.0])  # feature 2 constant: the floor acts
    return x


def test_one_component_em_reaches_the_closed_form_maximum_likelihood_gaussian_in_one_step():
    x = _blobs()
    model = GaussianMixture((1, 1, 3), components=1, min_variance=1e-3, rng=0)
    history = model.fit_em(x, 2)
    np.testing.assert_allclose(model.means.data[0], x.mean(axis=0), rtol=1e-12, atol=1e-13)
    variance = np.maximum(x.var(axis=0), 1e-3)
    np.testing.assert_allclose(model.variances.data[0], variance, rtol=1e-10)
    # the second E-step evaluates the MLE: mean log-lik = -0.5 sum_d (log 2 pi var_d + s_d / var_d)
    expected = -0.5 * np.sum(np.log(2 * np.pi * variance) + x.var(axis=0) / variance)
    assert history[1] == pytest.approx(expected, rel=1e-12)


def test_one_em_step_with_two_components_by_hand():
    x = np.array([[-1.0], [0.0], [2.0], [3.0]])
    model = GaussianMixture((1, 1, 1), components=2, min_variance=1e-6, rng=0)
    model.initialised[0] = 1
    model.means.data[:] = [[-0.5], [2.5]]
    model.variances.data[:] = [[1.0], [2.0]]
    model.weights.data[:] = [0.3, 0.7]
    density = np.array([[w * math.exp(-(v - m) ** 2 / (2 * s)) / math.sqrt(2 * math.pi * s)
                         for w, m, s in ((0.3, -0.5, 1.0), (0.7, 2.5, 2.0))] for v in x[:, 0]])
    r = density / density.sum(axis=1, keepdims=True)
    log_px = model.fit_em(x, 1)[0]
    assert log_px == pytest.approx(np.log(density.sum(axis=1)).mean(), rel=1e-14)
    n_k = r.sum(axis=0)
    mean = (r * x).sum(axis=0) / n_k
    np.testing.assert_allclose(model.weights.data, n_k / 4, rtol=1e-13)
    np.testing.assert_allclose(model.means.data[:, 0], mean, rtol=1e-13)
    np.testing.assert_allclose(model.variances.data[:, 0], (r * (x - mean) ** 2).sum(axis=0) / n_k, rtol=1e-12)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_em_log_likelihood_never_decreases(seed):
    x = _blobs(seed=seed)
    model = GaussianMixture((1, 1, 3), components=4, min_variance=1e-2, rng=seed)
    history = np.array(model.fit_em(x, 40))
    assert np.all(np.diff(history) >= -1e-12 * np.abs(history[1:])), np.diff(history).min()
    assert history[-1] > history[0] + 0.5


def test_the_loop_in_batches_is_exactly_full_batch_em():
    x = _blobs(seed=4)
    looped = GaussianMixture((1, 1, 3), components=3, rng=7)
    looped.fit(x, epochs=6, batch_size=37)
    plain = GaussianMixture((1, 1, 3), components=3, rng=7)
    history = plain.fit_em(x, 6)
    for name in ("weights", "means", "variances"):
        np.testing.assert_allclose(getattr(looped, name).data, getattr(plain, name).data, rtol=1e-11, atol=1e-13)
    np.testing.assert_allclose([-r["train_neg_log_likelihood"] for r in looped.history], history, rtol=1e-12)


def test_component_log_densities_match_the_formula_without_the_gemm_expansion():
    model = GaussianMixture((1, 1, 3), components=3, rng=0)
    model.fit_em(_blobs(), 3)
    x = _blobs(n=5, seed=9)
    mu, var, pi = model.means.data, model.variances.data, model.weights.data
    direct = np.log(pi) - 0.5 * (np.log(2 * np.pi * var)[None] + (x[:, None, :] - mu[None]) ** 2 / var[None]).sum(axis=2)
    np.testing.assert_allclose(model.component_log_densities(x), direct, rtol=1e-12)


def test_an_emptied_component_keeps_its_parameters_and_gets_weight_zero():
    x = np.array([[0.0], [0.1], [0.2]])
    model = GaussianMixture((1, 1, 1), components=2, rng=0)
    model.initialised[0] = 1
    model.means.data[:] = [[0.1], [1e6]]
    model.variances.data[:] = [[1.0], [1e-2]]
    model.fit_em(x, 2)
    assert model.weights.data[1] == 0.0 and model.means.data[1, 0] == 1e6 and np.isfinite(model.log_likelihood(x)).all()


def test_ancestral_sampling_draws_the_component_then_the_pixels():
    model = GaussianMixture((1, 1, 3), components=3, rng=0)
    model.fit_em(_blobs(), 10)
    x, z = model.sample_with_components(30_000, np.random.default_rng(0))
    frequency = np.bincount(z, minlength=3) / len(z)
    assert np.all(np.abs(frequency - model.weights.data) < 0.015)
    for k in range(3):
        rows = x[z == k]
        assert np.all(np.abs(rows.mean(axis=0) - model.means.data[k]) < 5 * np.sqrt(model.variances.data[k] / len(rows)))
    images = model.sample(7, np.random.default_rng(1))
    assert images.shape == (7, 1, 1, 3) and images.min() >= 0 and images.max() <= 1


def test_gaussian_mixture_bad_input_is_named():
    with pytest.raises(ValueError, match="components must be >= 1"):
        GaussianMixture((1, 1, 3), components=0)
    with pytest.raises(ValueError, match="min_variance must be > 0"):
        GaussianMixture((1, 1, 3), min_variance=0.0)
    with pytest.raises(ValueError, match="10 components need at least as many training examples, got 3"):
        GaussianMixture((1, 1, 3), components=10).prepare(np.zeros((3, 3)))
    with pytest.raises(RuntimeError, match="not initialised"):
        GaussianMixture((1, 1, 3)).train_step(np.zeros((3, 3)), None, np.random.default_rng(0))
