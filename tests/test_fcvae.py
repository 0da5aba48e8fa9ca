"""Feature-consistent VAE: gradcheck through the frozen classifier, the feature distance written out,
the classifier trained once and never again, and a checkpoint that is all sample/eval need."""
import os

import numpy as np
import pytest

from scratchgen import Tensor, gradcheck, no_grad
from scratchgen.cli import main
from scratchgen.gradcheck import registered_cases
from scratchgen.models import load_model
from scratchgen.models.vae.fcvae import FeatureConsistentVAE


def _model(**kwargs):
    options = dict(num_classes=3, feature_layers=("conv1", "conv2"), classifier_width=2, classifier_features=4,
                   classifier_epochs=1, hidden=6, latent=2, rng=0, dtype=np.float64)
    options.update(kwargs)
    return FeatureConsistentVAE((1, 4, 4), **options)


def _data(n=48, seed=0):
    rng = np.random.default_rng(seed)
    y = np.arange(n) % 3
    x = np.clip(rng.uniform(0, 0.3, (n, 1, 4, 4)) + (y[:, None, None, None] == np.arange(4)[None, None, :, None]) * 0.6, 0, 1)
    return x, y


def test_registered_loss_gradchecks_in_float64():
    fn, inputs = registered_cases()["fcvae_loss"](np.random.default_rng(3))[:2]
    gradcheck(fn, inputs)


def test_feature_distance_is_the_squared_distance_of_the_chosen_activations():
    model = _model(feature_layers=("conv2", "fc"))
    rng = np.random.default_rng(1)
    a, b = rng.uniform(0, 1, (3, 16)), rng.uniform(0, 1, (3, 16))
    body = model.classifier.body
    with no_grad():
        def acts(v):
            h2 = body[:4](Tensor(v.reshape(3, 1, 4, 4))).data
            return [h2, body[4:](Tensor(h2)).data]
        expected = sum(((p - q) ** 2).sum() for p, q in zip(acts(a), acts(b))) / 3
        np.testing.assert_allclose(model.feature_loss(Tensor(a), b).data, expected, rtol=1e-12)
        assert float(model.feature_loss(Tensor(a), a).data) == 0.0


def test_loss_adds_the_weighted_feature_term_to_the_vae_loss():
    model = _model(feature_weight=0.3, beta=2.0)
    rng = np.random.default_rng(2)
    x, eps = rng.uniform(0, 1, (4, 16)), rng.standard_normal((4, 2))
    with no_grad():
        total, parts = model.loss(x, eps)
        np.testing.assert_allclose(total.data, parts["reconstruction"].data + 0.3 * parts["features"].data
                                   + 2.0 * parts["kl"].data, rtol=1e-12)


def test_the_classifier_is_trained_in_prepare_then_frozen_and_never_changed(capsys):
    model = _model()
    x, y = _data()
    with pytest.raises(RuntimeError, match="feature classifier is untrained"):
        model.train_step(x[:8], y[:8], np.random.default_rng(0))
    model.prepare(x, y)
    assert "training its feature classifier" in capsys.readouterr().out
    assert int(model.classifier_trained[0]) == 1 and 0 < model.classifier_accuracy[0] <= 1
    frozen = {k: v.copy() for k, v in model.classifier.state_dict().items()}
    assert all(not p.requires_grad for p in model.classifier.parameters())
    optimised = {id(p) for p in model.optimizers["model"].params}
    assert not optimised & {id(p) for p in model.classifier.parameters()}
    decoder_before = model.decoder.state_dict()
    for step in range(3):
        model.train_step(x[:16], y[:16], np.random.default_rng(step))
    for key, value in model.classifier.state_dict().items():
        np.testing.assert_array_equal(value, frozen[key], err_msg=key)
    assert any(not np.array_equal(v, model.decoder.state_dict()[k]) for k, v in decoder_before.items())


def test_prepare_refuses_labels_of_a_single_class():
    model = _model()
    with pytest.raises(ValueError, match="needs labels of at least 2 classes"):
        model.prepare(*(_data()[0], np.zeros(48, np.int64)))


def test_bad_options_are_named():
    with pytest.raises(ValueError, match="feature_layers must be a non-empty list of conv1, conv2, fc"):
        _model(feature_layers=("conv3",))
    with pytest.raises(ValueError, match="feature_weight must be >= 0"):
        _model(feature_weight=-1.0)


def test_the_checkpoint_alone_rebuilds_the_classifier_for_sample_and_eval(tmp_path, capsys):
    out = str(tmp_path / "run")
    args = ["train", "fcvae", "--dataset", "synthetic", "--epochs", "1", "--max-batches", "2", "--classifier-epochs", "1",
            "--hidden", "16", "--latent", "2", "--train-size", "200", "--out", out, "--no-progress", "--no-pictures"]
    assert main(args) == 0
    model, _ = load_model(os.path.join(out, "checkpoint.npz"))
    assert int(model.classifier_trained[0]) == 1
    with np.load(os.path.join(out, "checkpoint.npz")) as archive:
        saved = {k[len("model/classifier."):]: archive[k] for k in archive.files if k.startswith("model/classifier.")}
    assert saved and all(np.array_equal(model.classifier.state_dict()[k], v) for k, v in saved.items())
    assert main(["sample", os.path.join(out, "checkpoint.npz"), "--n", "4", "--out", str(tmp_path / "s.png")]) == 0
    capsys.readouterr()
    metrics = model.evaluate(np.random.default_rng(0).uniform(0, 1, (5, 1, 8, 8)), None, np.random.default_rng(0))
    assert np.isfinite(metrics["feature_distance"]) and metrics["classifier_train_accuracy"] > 0
