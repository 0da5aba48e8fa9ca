"""VAE, beta-VAE, conv VAE, CVAE: gradchecks with eps fixed, ELBO/IWAE closed forms, evaluation, training."""
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from scratchgen import gradcheck, no_grad
from scratchgen.evaluation.likelihood import (active_units, evaluate_elbo, iwae_bound, likelihood_report,
                                              log_mean_exp, log_sum_exp)
from scratchgen.gradcheck import registered_cases
from scratchgen.models.vae.cvae import CVAE
from scratchgen.models.vae.vae import VAE, ConvVAE

VAE_CASES = ["vae_bernoulli_loss", "vae_gaussian_loss", "conv_vae_loss", "cvae_loss"]


@pytest.mark.parametrize("name", VAE_CASES)
def test_registered_loss_gradchecks_in_float64(name):
    fn, inputs = registered_cases()[name](np.random.default_rng(5))[:2]
    gradcheck(fn, inputs)


@settings(max_examples=10, deadline=None)
@given(st.integers(1, 4), st.integers(1, 3), st.sampled_from(["bernoulli", "gaussian"]), st.floats(0.0, 4.0),
       st.integers(0, 10_000))
def test_vae_loss_gradchecks_wrt_parameters_and_noise(n, latent, decoder, beta, seed):
    rng = np.random.default_rng(seed)
    model = VAE((1, 1, 5), hidden=3, latent=latent, activation="tanh", decoder=decoder, beta=beta, rng=rng, dtype=np.float64)
    x = rng.uniform(0.05, 0.95, (n, 5))
    eps = rng.standard_normal((n, latent))
    gradcheck(lambda *p: model.loss(x, eps)[0], model.parameters())
    gradcheck(lambda e: model.loss(x, e)[0], [eps])  # the reparameterisation carries gradient to eps too


def _model(seed=0, **kwargs):
    options = dict(hidden=5, latent=3, activation="tanh", rng=seed, dtype=np.float64)
    options.update(kwargs)
    return VAE((1, 2, 3), **options)


def test_loss_is_reconstruction_plus_beta_kl_with_the_closed_form_kl():
    rng = np.random.default_rng(0)
    model = _model(beta=2.5)
    x, eps = rng.uniform(0, 1, (4, 6)), rng.standard_normal((4, 3))
    loss, parts = model.loss(x, eps)
    with no_grad():
        mu, logvar = (t.data for t in model.encode(x))
    kl = 0.5 * np.sum(mu**2 + np.exp(logvar) - logvar - 1, axis=1).mean()
    np.testing.assert_allclose(parts["kl"].data, kl, rtol=1e-12)
    np.testing.assert_allclose(loss.data, parts["reconstruction"].data + 2.5 * kl, rtol=1e-12)


def test_elbo_is_minus_the_beta_one_loss_per_example():
    rng = np.random.default_rng(1)
    model = _model()
    x, eps = rng.uniform(0, 1, (4, 6)), rng.standard_normal((4, 3))
    np.testing.assert_allclose(-model.elbo(x, eps).mean(), model.loss(x, eps)[0].data, rtol=1e-12)


@pytest.mark.parametrize("decoder", ["bernoulli", "gaussian"])
def test_log_importance_weights_match_the_densities_written_out(decoder):
    rng = np.random.default_rng(2)
    model = _model(decoder=decoder)
    x = rng.uniform(0, 1, (3, 6))
    eps = rng.standard_normal((4, 3, 3))
    log_w = model.log_importance_weights(x, eps)
    with no_grad():
        mu, logvar = (t.data for t in model.encode(x))
        expected = np.empty((4, 3))
        for s in range(4):
            z = mu + np.exp(0.5 * logvar) * eps[s]
            out = model.decode(z).data
            if decoder == "bernoulli":
                p = 1 / (1 + np.exp(-out))
                log_px = np.sum(x * np.log(p) + (1 - x) * np.log(1 - p), axis=1)
            else:
                v = model.decoder_logvar.data[0]
                log_px = np.sum(-0.5 * (np.log(2 * np.pi) + v + (x - out) ** 2 / np.exp(v)), axis=1)
            log_pz = np.sum(-0.5 * (np.log(2 * np.pi) + z**2), axis=1)
            log_qz = np.sum(-0.5 * (np.log(2 * np.pi) + logvar + eps[s] ** 2), axis=1)
            expected[s] = log_px + log_pz - log_qz
    np.testing.assert_allclose(log_w, expected, rtol=1e-10)


def test_log_mean_exp_is_stable_and_exact():
    a = np.array([[1000.0, 1000.0], [-1000.0, -1000.0 + math.log(3)], [-np.inf, -np.inf]])
    out = log_mean_exp(a, axis=1)
    np.testing.assert_allclose(out[:2], [1000.0, -1000.0 + math.log(2)], rtol=1e-12)
    assert out[2] == -np.inf
    b = np.random.default_rng(0).standard_normal((3, 7))
    np.testing.assert_allclose(log_sum_exp(b, axis=0), np.log(np.exp(b).sum(axis=0)), rtol=1e-12)


def test_iwae_bound_does_not_depend_on_the_chunk_size():
    rng = np.random.default_rng(3)
    model = _model()
    x = rng.uniform(0, 1, (7, 6))
    whole = iwae_bound(model, x, 50, np.random.default_rng(9), batch_size=7, max_rows=10_000)
    chunked = iwae_bound(model, x, 50, np.random.default_rng(9), batch_size=7, max_rows=20)
    np.testing.assert_allclose(chunked, whole, rtol=1e-10)
    one = iwae_bound(model, x, 1, np.random.default_rng(9), batch_size=7)
    eps = np.random.default_rng(9).standard_normal((1, 7, 3))
    np.testing.assert_allclose(one, model.log_importance_weights(x, eps)[0], rtol=1e-12)


def _digits_vae(steps=300):
    from scratchgen.data import load_dataset

    data = load_dataset("digits")
    model = VAE(data.image_shape, hidden=64, latent=4, lr=3e-3, rng=0)
    rng = np.random.default_rng(0)
    losses = []
    for _ in range(steps):
        index = rng.choice(len(data.train.x), 64, replace=False)
        losses.append(model.train_step(data.train.x[index], None, rng)["loss"])
    return model, data, losses


def test_vae_trains_and_the_iwae_bound_rises_with_k_above_the_elbo():
    model, data, losses = _digits_vae()
    assert np.mean(losses[-20:]) < 0.7 * np.mean(losses[:5])
    x = data.test.x
    rng = np.random.default_rng(0)
    elbo = evaluate_elbo(model, x, rng, samples=10).mean()
    bounds = [iwae_bound(model, x, k, rng).mean() for k in (1, 5, 100)]
    assert abs(bounds[0] - elbo) < 0.5  # L_1 estimates the ELBO (sampled instead of analytic KL)
    assert elbo < bounds[1] < bounds[2]
    report = likelihood_report(model, x, rng, ks=(1, 5), iwae_examples=50)
    assert report["iwae_examples"] == 50 and report["active_units"] == model.active_units(x)["active"] >= 1
    assert report["neg_iwae_k5"] < report["neg_iwae_k1"] + 0.5


def test_active_units_counts_units_whose_posterior_mean_moves():
    rng = np.random.default_rng(4)
    model = _model(latent=4)
    model.mu_head.weight.data[:2] = 0.0  # units 0 and 1: mu no longer depends on x
    result = active_units(model, rng.uniform(0, 1, (50, 6)), threshold=1e-8)
    assert result["active"] == 2
    np.testing.assert_allclose(result["variances"][:2], 0.0, atol=1e-20)


def test_conv_vae_trains_and_rejects_odd_sizes():
    with pytest.raises(ValueError, match="divisible by 4"):
        ConvVAE((1, 6, 6))
    rng = np.random.default_rng(0)
    model = ConvVAE((1, 8, 8), channels=(4, 8), hidden=16, latent=2, lr=1e-2, rng=0)
    prototypes = (rng.uniform(0, 1, (3, 1, 8, 8)) > 0.5).astype(np.float32)
    x = prototypes[rng.integers(0, 3, 64)]
    losses = [model.train_step(x, None, rng)["loss"] for _ in range(150)]
    assert np.mean(losses[-5:]) < 0.7 * np.mean(losses[:3])


def test_cvae_decodes_the_requested_class():
    rng = np.random.default_rng(0)
    prototypes = (rng.uniform(0, 1, (3, 16)) > 0.5).astype(np.float32)
    y = rng.integers(0, 3, 256)
    x = prototypes[y].reshape(-1, 1, 4, 4)
    model = CVAE((1, 4, 4), num_classes=3, hidden=16, latent=2, lr=1e-2, rng=0)
    for _ in range(200):
        index = rng.choice(256, 32, replace=False)
        model.train_step(x[index], y[index], rng)
    samples = model.sample(30, rng).reshape(30, 16)  # labels 0, 1, 2, 0, ...
    nearest = np.argmin(((samples[:, None, :] - prototypes[None]) ** 2).sum(axis=2), axis=1)
    np.testing.assert_array_equal(nearest, np.arange(30) % 3)
    with pytest.raises(ValueError, match="labels y are required"):
        model.loss(x[:2], np.zeros((2, 2), np.float32))


def test_eps_with_the_wrong_shape_is_a_clear_error():
    model = _model()
    with pytest.raises(ValueError, match=r"eps has shape \(2, 2\), expected \(2, 3\)"):
        model.loss(np.zeros((2, 6)), np.zeros((2, 2)))
    with pytest.raises(ValueError, match="decoder must be one of"):
        VAE((1, 2, 3), decoder="poisson")


def test_vae_pictures_include_a_latent_traversal(tmp_path):
    from scratchgen.data import load_dataset

    data = load_dataset("digits")
    model = VAE(data.image_shape, hidden=16, latent=3, beta=4.0, rng=0)
    paths = model.save_pictures(str(tmp_path), data, np.random.default_rng(0), tag="epoch001")
    assert any("traversal" in p for p in paths) and len(paths) == 3
    assert model.latent_traversal(data.test.x[:1], dims=[0, 2], values=[-1, 0, 1]).shape == (6, 1, 8, 8)
