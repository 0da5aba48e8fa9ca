"""The experiments of the lectures' remaining concepts, on tiny settings: the VAE gradient-variance study
(its reparameterised estimate is the VAE's own gradient; every estimator unbiased) and the
generative-versus-discriminative learning curves."""
import numpy as np
import pytest

from scratchgen.data import binarize, load_dataset
from scratchgen.experiments import elbo_gradient_variance as egv
from scratchgen.experiments import generative_vs_discriminative as gvd
from scratchgen.models.vae.vae import VAE


def _vae():
    return VAE((1, 2, 3), hidden=5, latent=2, activation="tanh", rng=0, dtype=np.float64)


def test_the_reparameterised_estimate_is_minus_the_gradient_of_the_vaes_reconstruction_loss():
    model = _vae()
    rng = np.random.default_rng(0)
    x, eps = rng.uniform(0, 1, (4, 6)), rng.standard_normal((4, 2))
    estimate = egv.estimate_gradient(model, x, eps[None], "reparameterization")
    model.zero_grad()
    model.loss(x, eps)[1]["reconstruction"].backward()
    for name, p in egv.encoder_parameters(model).items():
        np.testing.assert_allclose(estimate[name], -p.grad, rtol=1e-12, atol=1e-15, err_msg=name)


def test_every_estimator_agrees_with_the_reparameterised_mean_and_has_more_variance():
    model = _vae()
    x = np.random.default_rng(1).uniform(0, 1, (3, 6))
    rows = egv.gradient_variances(model, x, samples=[20], repeats=60, rng=np.random.default_rng(2), baseline_draws=500,
                                  log=lambda line: None)
    by_name = {row["estimator"]: row for row in rows}
    assert set(by_name) == set(egv.ESTIMATORS)
    for name in ("score", "score_leave_one_out", "score_mean_baseline"):
        assert by_name[name]["bias_z"] < 1.3, (name, by_name[name]["bias_z"])  # ~0.8 when unbiased
        assert by_name[name]["variance/mu_head.weight"] > by_name["reparameterization"]["variance/mu_head.weight"]
    assert by_name["score_leave_one_out"]["variance/mu_head.weight"] < by_name["score"]["variance/mu_head.weight"]
    assert all(p.requires_grad for p in model.decoder.parameters())  # unfrozen again afterwards


def test_an_unknown_estimator_is_named():
    model = _vae()
    with pytest.raises(ValueError, match="estimator must be one of reparameterization, score"):
        egv.estimate_gradient(model, np.zeros((2, 6)), np.zeros((1, 2, 2)), "pathwise")


def test_learning_curves_on_digits_have_every_classifier_and_size():
    data = load_dataset("digits", seed=0)
    flat = lambda split: binarize(split.x, "static").reshape(len(split.x), -1).astype(np.float64)
    runs = gvd.learning_curves(flat(data.train), data.train.y, flat(data.test), data.test.y, [30, 300], [0, 1], 10,
                               steps=60, alphas=(1.0, 0.1), log=lambda line: None)
    assert len(runs) == 4
    summary = gvd.summarise(runs)
    names = gvd.classifiers_of(runs)
    assert names == ["naive_bayes_alpha1", "naive_bayes_alpha0.1", "logistic_regression"]
    for row in summary:
        assert all(0 <= row[n] < 0.9 for n in names)
    big = summary[-1]
    assert big["naive_bayes_alpha1"] < 0.3 and big["logistic_regression"] < 0.3  # both learn digits
    table = gvd.markdown_table(summary, names)
    assert table.count("\n") == 3 and "naive Bayes, alpha = 0.1" in table
    with pytest.raises(ValueError, match="size 5000 is larger than the training split"):
        gvd.learning_curves(flat(data.train), data.train.y, flat(data.test), data.test.y, [5000], [0], 10)


def test_logistic_regression_separates_separable_data():
    rng = np.random.default_rng(3)
    x = (rng.random((60, 8)) < 0.2).astype(float)
    y = np.arange(60) % 2
    x[:, 0] = y  # feature 0 is the label
    assert gvd.logistic_regression_error(x, y, x, y, 2, steps=200) == 0.0
    assert gvd.naive_bayes_error(x, y, x, y, 2) == 0.0


def test_the_hvae_and_fcvae_benchmarks_run_on_tiny_checkpoints(tmp_path, capsys):
    pytest.importorskip("sklearn", reason="the tiny runs train on scikit-learn's digits (pip install scratchgen[data])")
    pytest.importorskip("matplotlib", reason="exp_fcvae draws its pictures (pip install scratchgen[plot])")
    from benchmarks import exp_fcvae, exp_hvae
    from scratchgen.cli import main

    common = ["--dataset", "digits", "--epochs", "1", "--max-batches", "3", "--no-progress", "--no-pictures"]
    runs = {"vae": ["--hidden", "16", "--latent", "3"],
            "hvae": ["--hidden", "16", "--hidden2", "8", "--latent", "4", "--latent2", "2", "--hidden-layers", "1"],
            "fcvae": ["--hidden", "16", "--latent", "3", "--classifier-epochs", "1", "--classifier-width", "2"]}
    for name, options in runs.items():
        assert main(["train", name, *common, *options, "--out", str(tmp_path / name)]) == 0
    exp_hvae.main([str(tmp_path / "vae" / "checkpoint.npz"), str(tmp_path / "hvae" / "checkpoint.npz"), "--k", "20",
                   "--images", "10", "--elbo-samples", "2", "--out", str(tmp_path / "hv")])
    table = (tmp_path / "hv" / "hvae_vs_vae.md").read_text()
    assert "| hvae |" in table and "-L_20 (first 10)" in table
    exp_fcvae.main([str(tmp_path / "vae" / "checkpoint.npz"), str(tmp_path / "fcvae" / "checkpoint.npz"), "--samples", "50",
                    "--classifier", str(tmp_path / "lenet.npz"), "--out", str(tmp_path / "fc")])
    assert (tmp_path / "fc" / "fcvae_reconstructions.png").exists() and (tmp_path / "fc" / "fcvae_samples.png").exists()
    assert "| fcvae |" in (tmp_path / "fc" / "fcvae_vs_vae.md").read_text()
    capsys.readouterr()
