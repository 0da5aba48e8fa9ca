"""Deep belief nets: greedy training, generation, features, and the classifier initialised from the stack."""
import numpy as np
import pytest

from scratchgen.data import binarize, load_dataset
from scratchgen.models import DataInfo, build_model
from scratchgen.models.boltzmann import dbn_classifier as dc
from scratchgen.models.boltzmann.dbn import DBN, parse_layer_sizes
from scratchgen.models.boltzmann.gaussian_rbm import GaussianBernoulliRBM
from scratchgen.models.boltzmann.bernoulli_rbm import BernoulliRBM


@pytest.fixture(scope="module")
def digits():
    data = load_dataset("digits")
    rng = np.random.default_rng(0)
    return data, binarize(data.train.x, "static", rng), binarize(data.test.x, "static", rng)


def test_greedy_training_shapes_and_generation(digits):
    data, x, x_test = digits
    dbn = DBN([64, 32, 16], rng=0, lr=0.05, momentum=0.5, image_shape=(1, 8, 8))
    before = [layer.weight.data.copy() for layer in dbn.layers]
    dbn.fit(x, epochs=[4, 2], batch_size=32, rng=0)
    assert all(not np.array_equal(b, layer.weight.data) for b, layer in zip(before, dbn.layers))
    assert isinstance(dbn.layers[0], BernoulliRBM) and dbn.layers[1].n_visible == 32
    assert dbn.transform(x_test).shape == (len(x_test), 16)
    assert dbn.propagate_up(x_test, 1).shape == (len(x_test), 32)
    samples = dbn.sample(5, 0, n_steps=20)
    assert samples.shape == (5, 1, 8, 8) and samples.min() >= 0 and samples.max() <= 1
    assert dbn.sample(3, 0, n_steps=2, start=x_test[:3]).shape == (3, 1, 8, 8)
    assert dbn.reconstruct(x_test[:4]).shape == (4, 1, 8, 8)
    metrics = dbn.evaluate(x_test)
    assert {"layer0_reconstruction_error", "layer1_free_energy", "updown_reconstruction_error"} <= set(metrics)
    # the first layer learned something: reconstructions beat the all-0.5 guess
    assert metrics["layer0_reconstruction_error"] < 0.25 * 64


@pytest.mark.parametrize("first_layer", ["bernoulli", "gaussian"])
def test_classifier_initialised_from_the_dbn_computes_its_up_pass(digits, first_layer):
    data, x, x_test = digits
    inputs = data.train.x if first_layer == "gaussian" else x
    dbn = DBN([64, 20, 12], first_layer=first_layer, rng=0, lr=0.01, image_shape=(1, 8, 8))
    dbn.fit(inputs, epochs=1, batch_size=64, rng=0)
    assert isinstance(dbn.layers[0], GaussianBernoulliRBM) == (first_layer == "gaussian")
    net = dc.to_classifier(dbn, 10, rng=0)
    probe = (data.test.x if first_layer == "gaussian" else x_test)[:10]
    from scratchgen import Tensor

    hidden = net[:-1](Tensor(probe.reshape(10, -1))).data  # every layer but the softmax output
    np.testing.assert_allclose(hidden, dbn.transform(probe), rtol=1e-4, atol=1e-5)


def test_fine_tuning_learns_the_labels(digits):
    data, x, x_test = digits
    dbn = DBN([64, 32], rng=0, lr=0.05, momentum=0.5, image_shape=(1, 8, 8))
    dbn.fit(x, epochs=15, batch_size=32, rng=0)
    net = dc.to_classifier(dbn, 10, rng=0)
    losses = dc.train_classifier(net, x, data.train.y, epochs=3, lr=0.1, rng=0)
    assert losses[-1] < losses[0]
    assert dc.accuracy(net, x_test, data.test.y) > 0.6
    features = dc.evaluate_features(dbn.transform(x), data.train.y, dbn.transform(x_test), data.test.y, epochs=30, rng=0)
    assert features["test_accuracy"] > 0.6


def test_cli_builder_train_step_and_pictures(tmp_path, digits):
    data, x, _ = digits
    dbn = build_model("dbn", {"hidden": "16,8"}, DataInfo((1, 8, 8), 10), np.random.default_rng(0))
    assert dbn.layer_sizes == [64, 16, 8]
    metrics = dbn.train_step(x[:32], None, np.random.default_rng(0))
    assert set(metrics) == {"layer0_reconstruction_error", "layer1_reconstruction_error"}
    state = dbn.state_dict()
    assert "rbm0.weight" in state and "rbm1.chain_hidden" in state
    paths = dbn.save_pictures(str(tmp_path), data, np.random.default_rng(0), tag="x")
    assert len(paths) == 3


def test_layer_size_errors():
    assert parse_layer_sizes("784, 500,200") == [784, 500, 200]
    with pytest.raises(ValueError, match="at least two"):
        DBN([784])
    with pytest.raises(ValueError, match="integers"):
        parse_layer_sizes(["a", 3])
    with pytest.raises(ValueError, match="first_layer"):
        DBN([4, 3], first_layer="poisson")
    with pytest.raises(ValueError, match="2 layers"):
        DBN([4, 3, 2]).fit(np.zeros((2, 4), np.float32), epochs=[1, 2, 3])
