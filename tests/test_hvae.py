"""Two-stochastic-layer VAE: gradchecks (parameters and noise), log weights written out by hand, the
ELBO as one importance weight, a closed form at zero weights, ancestral sampling, evaluation."""
import math

import numpy as np
import pytest

from scratchgen import gradcheck, no_grad
from scratchgen.evaluation.likelihood import evaluate_elbo, iwae_bound, likelihood_report
from scratchgen.gradcheck import registered_cases
from scratchgen.models.vae.hvae import HierarchicalVAE
from scratchgen.models.vae.vae import VAE


def _model(seed=0, **kwargs):
    options = dict(hidden=5, latent=3, hidden2=4, latent2=2, hidden_layers=1, activation="tanh", rng=seed,
                   dtype=np.float64)
    options.update(kwargs)
    return HierarchicalVAE((1, 2, 3), **options)


def _log_normal(z, mean, logvar):
    return np.sum(-0.5 * (np.log(2 * np.pi) + logvar + (z - mean) ** 2 / np.exp(logvar)), axis=-1)


@pytest.mark.parametrize("name", ["hvae_loss", "hvae_gaussian_loss"])
def test_registered_loss_gradchecks_in_float64(name):
    fn, inputs = registered_cases()[name](np.random.default_rng(5))[:2]
    gradcheck(fn, inputs)


def test_the_loss_gradchecks_with_respect_to_both_layers_noise():
    rng = np.random.default_rng(1)
    model = _model(hidden_layers=2, activation="softplus")
    x = rng.uniform(0.05, 0.95, (3, 6))
    gradcheck(lambda e: model.loss(x, e)[0], [rng.standard_normal((3, model.latent_dim))])


@pytest.mark.parametrize("decoder", ["bernoulli", "gaussian"])
def test_log_importance_weights_are_the_five_densities_written_out(decoder):
    rng = np.random.default_rng(2)
    model = _model(decoder=decoder)
    x, eps = rng.uniform(0, 1, (3, 6)), rng.standard_normal((4, 3, 5))
    log_w = model.log_importance_weights(x, eps)
    with no_grad():
        mu1, v1 = (t.data for t in model.encode(x))
        expected = np.empty((4, 3))
        for s in range(4):
            z1 = mu1 + np.exp(0.5 * v1) * eps[s, :, :3]
            mu2, v2 = (t.data for t in model.encode2(z1))
            z2 = mu2 + np.exp(0.5 * v2) * eps[s, :, 3:]
            mp, vp = (t.data for t in model.prior(z2))
            out = model.decode(z1).data
            if decoder == "bernoulli":
                p = 1 / (1 + np.exp(-out))
                log_px = np.sum(x * np.log(p) + (1 - x) * np.log(1 - p), axis=1)
            else:
                log_px = _log_normal(x, out, model.decoder_logvar.data[0])
            expected[s] = (log_px + _log_normal(z1, mp, vp) + _log_normal(z2, 0.0, 0.0)
                           - _log_normal(z1, mu1, v1) - _log_normal(z2, mu2, v2))
    np.testing.assert_allclose(log_w, expected, rtol=1e-10)


def test_elbo_is_minus_the_loss_and_differs_from_one_log_weight_only_by_the_analytic_kl_of_z2():
    rng = np.random.default_rng(3)
    model = _model()
    x, eps = rng.uniform(0, 1, (4, 6)), rng.standard_normal((4, 5))
    elbo = model.elbo(x, eps)
    np.testing.assert_allclose(-elbo.mean(), model.loss(x, eps)[0].data, rtol=1e-12)
    # log w = elbo + KL_2 - (log q(z2|z1) - log p(z2)) at the sample: equal in expectation over eps2
    with no_grad():
        parts = model.terms(x, eps, reduction="none")
    kl2 = parts["kl_z2"].data.sum(axis=1)
    mu1, v1 = (t.data for t in model.encode(x))
    z1 = mu1 + np.exp(0.5 * v1) * eps[:, :3]
    mu2, v2 = (t.data for t in model.encode2(z1))
    z2 = mu2 + np.exp(0.5 * v2) * eps[:, 3:]
    sampled_kl2 = _log_normal(z2, mu2, v2) - _log_normal(z2, 0.0, 0.0)
    np.testing.assert_allclose(model.log_importance_weights(x, eps[None])[0], elbo + kl2 - sampled_kl2, rtol=1e-10)


def test_zero_weights_give_minus_d_log_2_for_every_bound():
    """All weights 0: q(z1|x) = p(z1|z2) = q(z2|z1) = p(z2) = N(0, I) and p(x|z1) = Bernoulli(1/2), so
    every log weight is exactly -D log 2 whatever the noise: ELBO = IWAE_k = log p(x)."""
    model = _model()
    for p in model.parameters():
        p.data[...] = 0.0
    rng = np.random.default_rng(4)
    x = rng.uniform(0, 1, (5, 6))
    np.testing.assert_allclose(model.log_importance_weights(x, rng.standard_normal((7, 5, 5))), -6 * math.log(2), rtol=1e-12)
    np.testing.assert_allclose(iwae_bound(model, x, 50, rng), -6 * math.log(2), rtol=1e-12)
    with no_grad():
        parts = model.terms(x, rng.standard_normal((5, 5)))
    assert abs(float(parts["kl_z1"].data)) < 1e-12 and float(parts["kl_z2"].data) == 0.0


def test_the_elbo_and_the_mean_log_weight_estimate_the_same_bound_and_more_samples_tighten_it():
    model = _model(seed=6)
    x = np.random.default_rng(6).uniform(0, 1, (40, 6))
    elbo = evaluate_elbo(model, x, np.random.default_rng(7), samples=400)  # KL_2 analytic
    log_w = model.log_importance_weights(x, np.random.default_rng(8).standard_normal((400, 40, 5)))  # all sampled
    assert abs(elbo.mean() - log_w.mean()) < 4 * log_w.mean(axis=1).std() / math.sqrt(400)
    l1 = iwae_bound(model, x, 1, np.random.default_rng(8), batch_size=40).mean()
    l100 = iwae_bound(model, x, 100, np.random.default_rng(9), batch_size=40).mean()
    assert l100 > l1
    report = likelihood_report(model, x, np.random.default_rng(0), ks=(1, 10))
    assert set(report) >= {"neg_elbo", "neg_iwae_k1", "neg_iwae_k10", "active_units"}


def test_ancestral_samples_are_images_and_repeat_from_the_seed():
    model = _model(hidden_layers=2)
    first = model.sample(6, np.random.default_rng(0))
    assert first.shape == (6, 1, 2, 3) and np.all((first >= 0) & (first <= 1))
    np.testing.assert_array_equal(first, model.sample(6, np.random.default_rng(0)))
    shared = model.sample_layers(np.zeros((3, 2)), np.random.default_rng(1))  # z1 still varies below a fixed z2
    assert not np.allclose(shared[0], shared[1])


def test_evaluate_reports_each_layer_and_training_lowers_the_loss():
    rng = np.random.default_rng(10)
    x = (rng.uniform(0, 1, (64, 1, 2, 3)) > 0.5).astype(np.float32)
    model = HierarchicalVAE((1, 2, 3), hidden=16, latent=4, hidden2=8, latent2=2, hidden_layers=1, rng=0)
    before = model.evaluate(x, None, np.random.default_rng(0))
    model.fit(x, epochs=20, batch_size=16)
    after = model.evaluate(x, None, np.random.default_rng(0))
    assert set(after) >= {"neg_elbo", "reconstruction", "kl_z1", "kl_z2", "active_z1", "active_z2"}
    assert after["neg_elbo"] == pytest.approx(after["reconstruction"] + after["kl_z1"] + after["kl_z2"])
    assert after["neg_elbo"] < before["neg_elbo"]


def test_bad_sizes_are_named():
    with pytest.raises(ValueError, match="HierarchicalVAE: latent2 must be >= 1"):
        _model(latent2=0)
    with pytest.raises(ValueError, match=r"eps has shape \(2, 3\), expected \(2, 5\)"):
        _model().loss(np.zeros((2, 6)), np.zeros((2, 3)))


def test_kl_warmup_ramps_the_kl_weight_with_the_optimiser_steps_and_evaluation_ignores_it():
    rng = np.random.default_rng(11)
    x = (rng.uniform(0, 1, (32, 1, 2, 3)) > 0.5).astype(np.float64)
    for model in (_model(kl_warmup=4, beta=2.0), VAE((1, 2, 3), hidden=5, latent=2, kl_warmup=4, beta=2.0, rng=0,
                                                     dtype=np.float64)):
        weights = [model.train_step(x[:8], None, rng)["kl_weight"] for _ in range(6)]
        np.testing.assert_allclose(weights, [0.5, 1.0, 1.5, 2.0, 2.0, 2.0])  # beta min(1, t / 4), t = 1, 2, ...
        eps = rng.standard_normal((8, model.latent_dim))
        with no_grad():
            total, parts = model.loss(x[:8], eps, kl_weight=0.25)
            assert float(total.data) == pytest.approx(float(parts["reconstruction"].data) + 0.25 * float(parts["kl"].data))
            assert float(model.loss(x[:8], eps)[0].data) == pytest.approx(
                float(parts["reconstruction"].data) + 2.0 * float(parts["kl"].data))
    with pytest.raises(ValueError, match="kl_warmup must be >= 0 steps"):
        _model(kl_warmup=-1)
