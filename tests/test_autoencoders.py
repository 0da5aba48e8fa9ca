"""Autoencoders: gradchecks of every loss (noise fixed), closed forms, training, errors, registry."""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from scratchgen import Tensor, gradcheck, no_grad
from scratchgen.gradcheck import registered_cases
from scratchgen.models import DataInfo, build_model
from scratchgen.models.autoencoders.autoencoder import Autoencoder, SparseAutoencoder
from scratchgen.models.autoencoders.contractive import ContractiveAutoencoder
from scratchgen.models.autoencoders.convolutional import ConvAutoencoder
from scratchgen.models.autoencoders.denoising import CORRUPTIONS, DenoisingAutoencoder, corrupt, corruption_noise

AE_CASES = ["ae_loss", "ae_tied_gaussian_loss", "sparse_ae_kl_loss", "sparse_ae_l1_loss", "denoising_ae_gaussian_loss",
            "denoising_ae_masking_loss", "denoising_ae_salt_and_pepper_loss", "contractive_ae_loss", "conv_ae_loss"]


@pytest.mark.parametrize("name", AE_CASES)
def test_registered_loss_gradchecks_in_float64(name):
    fn, inputs = registered_cases()[name](np.random.default_rng(3))[:2]
    gradcheck(fn, inputs)


@settings(max_examples=10, deadline=None)
@given(st.integers(1, 4), st.integers(2, 6), st.sampled_from(["sigmoid", "tanh", "softplus"]), st.booleans(),
       st.sampled_from(["bernoulli", "gaussian"]), st.integers(0, 10_000))
def test_autoencoder_loss_gradchecks_for_drawn_shapes(n, hidden, activation, tied, output, seed):
    rng = np.random.default_rng(seed)
    model = Autoencoder((1, 1, 5), hidden=hidden, activation=activation, output=output, tied=tied, rng=rng, dtype=np.float64)
    x = rng.uniform(0.05, 0.95, (n, 5))
    gradcheck(lambda *p: model.loss(x)[0], model.parameters())


def _tiny_data(n=256, seed=0):
    """Digits-like fixed problem: 4x4 images made of 3 prototypes plus noise, in [0, 1]."""
    rng = np.random.default_rng(seed)
    prototypes = rng.uniform(0, 1, (3, 16)) > 0.5
    labels = rng.integers(0, 3, n)
    x = np.clip(prototypes[labels] * 0.9 + rng.normal(0, 0.05, (n, 16)), 0, 1).astype(np.float32)
    return x.reshape(n, 1, 4, 4), labels


def _train(model, x, y, steps, batch=32, seed=0):
    rng = np.random.default_rng(seed)
    losses = []
    for step in range(steps):
        index = rng.choice(len(x), batch, replace=False)
        losses.append(model.train_step(x[index], y[index], rng)["loss"])
    return losses


@pytest.mark.parametrize("make", [
    lambda: Autoencoder((1, 4, 4), hidden=8, lr=1e-2, rng=0),
    lambda: Autoencoder((1, 4, 4), hidden=8, tied=True, output="gaussian", activation="tanh", lr=1e-2, rng=0),
    lambda: SparseAutoencoder((1, 4, 4), hidden=32, lr=1e-2, rng=0),
    lambda: DenoisingAutoencoder((1, 4, 4), hidden=32, corruption="masking", level=0.3, lr=1e-2, rng=0),
    lambda: ContractiveAutoencoder((1, 4, 4), hidden=8, contraction=0.1, lr=1e-2, rng=0),
    lambda: ConvAutoencoder((1, 4, 4), channels=(4, 4), hidden=6, lr=1e-2, rng=0),
], ids=["ae", "ae-tied-gaussian", "sparse", "denoising", "contractive", "conv"])
def test_loss_decreases_over_a_few_hundred_steps(make):
    x, y = _tiny_data()
    losses = _train(make(), x, y, steps=200)
    assert np.mean(losses[-20:]) < 0.6 * np.mean(losses[:5])


def test_tied_weights_share_the_encoder_matrix():
    tied = Autoencoder((1, 4, 4), hidden=5, tied=True, rng=0)
    untied = Autoencoder((1, 4, 4), hidden=5, rng=0)
    assert tied.num_parameters() == 16 * 5 + 5 + 16
    assert untied.num_parameters() == 2 * 16 * 5 + 5 + 16
    h = Tensor(np.ones((1, 5), np.float32))
    expected = h.data @ tied.encoder.weight.data + tied.decoder_bias.data
    np.testing.assert_allclose(tied.decode_logits(h).data, expected, rtol=1e-6)


@pytest.mark.parametrize("activation", ["sigmoid", "tanh", "softplus", "linear"])
def test_jacobian_frobenius_matches_finite_differences(activation):
    rng = np.random.default_rng(1)
    model = Autoencoder((1, 1, 6), hidden=4, activation=activation, rng=rng, dtype=np.float64)
    x = rng.uniform(0, 1, (3, 6))
    closed = model.jacobian_frobenius(x)
    for n in range(3):
        jac = np.empty((4, 6))
        for i in range(6):
            step = np.zeros(6)
            step[i] = 1e-6
            with no_grad():
                plus = model.encode(x[n : n + 1] + step).data[0]
                minus = model.encode(x[n : n + 1] - step).data[0]
            jac[:, i] = (plus - minus) / 2e-6
        np.testing.assert_allclose(closed[n], np.linalg.norm(jac), rtol=1e-6)


def test_contractive_penalty_is_the_squared_jacobian_norm():
    rng = np.random.default_rng(2)
    model = ContractiveAutoencoder((1, 1, 6), hidden=4, contraction=0.7, rng=rng, dtype=np.float64)
    x = rng.uniform(0, 1, (5, 6))
    _, parts = model.loss(x)
    np.testing.assert_allclose(parts["contraction"].data, 0.7 * np.mean(model.jacobian_frobenius(x) ** 2), rtol=1e-10)


def test_contractive_training_gives_a_smaller_jacobian_than_plain():
    x, y = _tiny_data()
    plain = Autoencoder((1, 4, 4), hidden=16, lr=1e-2, rng=0)
    cae = ContractiveAutoencoder((1, 4, 4), hidden=16, contraction=1.0, lr=1e-2, rng=0)
    _train(plain, x, y, steps=300)
    _train(cae, x, y, steps=300)
    assert cae.jacobian_frobenius(x).mean() < 0.6 * plain.jacobian_frobenius(x).mean()


def test_sparse_kl_pulls_mean_activation_towards_rho():
    x, y = _tiny_data()
    model = SparseAutoencoder((1, 4, 4), hidden=32, rho=0.05, beta=3.0, lr=1e-2, rng=0)
    before = model.mean_activation(x).mean()
    _train(model, x, y, steps=200)
    after = model.mean_activation(x).mean()
    assert abs(after - 0.05) < 0.5 * abs(before - 0.05)


def test_sparse_kl_needs_sigmoid_codes():
    with pytest.raises(ValueError, match="sigmoid"):
        SparseAutoencoder((1, 4, 4), activation="relu")


def test_corruptions_follow_their_definitions():
    x = np.full((200, 50), 0.5, np.float32)
    rng = np.random.default_rng(0)
    u = corruption_noise("masking", x.shape, rng)
    masked = corrupt(x, "masking", 0.3, u)
    np.testing.assert_array_equal(masked == 0, u < 0.3)
    assert abs((masked == 0).mean() - 0.3) < 0.02
    sp = corrupt(x, "salt_and_pepper", 0.4, u)
    np.testing.assert_array_equal(sp == 0, u < 0.2)
    np.testing.assert_array_equal(sp == 1, (u >= 0.2) & (u < 0.4))
    np.testing.assert_array_equal(sp[u >= 0.4], 0.5)
    n = corruption_noise("gaussian", x.shape, rng)
    noisy = corrupt(x, "gaussian", 0.2, n)
    np.testing.assert_allclose(noisy, np.clip(x + 0.2 * n, 0, 1))
    assert noisy.dtype == np.float32
    for kind in CORRUPTIONS:  # level 0 is the identity
        np.testing.assert_array_equal(corrupt(x, kind, 0.0, corruption_noise(kind, x.shape, rng)), x)


def test_corruption_errors_name_the_problem():
    x = np.zeros((2, 3), np.float32)
    with pytest.raises(ValueError, match="unknown corruption"):
        corrupt(x, "blur", 0.1, x)
    with pytest.raises(ValueError, match="must lie in"):
        corrupt(x, "masking", 1.5, x)
    with pytest.raises(ValueError, match="noise has shape"):
        corrupt(x, "masking", 0.5, np.zeros((3, 2)))


def test_denoising_loss_reads_the_corrupted_input_and_targets_the_clean_one():
    rng = np.random.default_rng(0)
    model = DenoisingAutoencoder((1, 1, 4), hidden=3, rng=rng, dtype=np.float64)
    x = rng.uniform(0, 1, (3, 4))
    x_tilde = corrupt(x, "masking", 0.5, corruption_noise("masking", x.shape, rng, np.float64))
    with no_grad():
        a = model.decode_logits(model.encode(x_tilde))
        expected = model.reconstruction_loss(a, x).data
    np.testing.assert_allclose(model.loss(x, x_input=x_tilde)[0].data, expected)


def test_bad_input_gives_a_clear_error():
    model = Autoencoder((1, 4, 4), hidden=3)
    with pytest.raises(ValueError, match="input has 10 features, the model expects 16"):
        model.loss(np.zeros((2, 10), np.float32))
    with pytest.raises(ValueError, match="output must be one of"):
        Autoencoder((1, 4, 4), output="poisson")
    with pytest.raises(ValueError, match="divisible by 4"):
        ConvAutoencoder((1, 6, 6))


def test_sampling_needs_a_fitted_code_distribution_then_gives_images():
    x, y = _tiny_data(64)
    model = Autoencoder((1, 4, 4), hidden=3, num_classes=3, rng=0)
    with pytest.raises(RuntimeError, match="fit_code_distribution"):
        model.sample(4, np.random.default_rng(0))
    model.fit_code_distribution(x, y)
    samples = model.sample(6, np.random.default_rng(0))
    assert samples.shape == (6, 1, 4, 4) and 0 <= samples.min() and samples.max() <= 1
    np.testing.assert_allclose(model.code_mean[1], model.codes(x[y == 1]).mean(axis=0), rtol=1e-4, atol=1e-6)


def test_every_family_name_is_registered_and_builds():
    info = DataInfo((1, 8, 8), 10)
    for name in ["ae", "sparse-ae", "denoising-ae", "contractive-ae", "conv-ae", "vae", "beta-vae", "conv-vae", "cvae", "m2"]:
        model = build_model(name, {}, info, np.random.default_rng(0))
        assert model.cli_name == name and model.num_parameters() > 0


def test_ae_pictures_and_evaluation_on_digits(tmp_path):
    from scratchgen.data import load_dataset

    data = load_dataset("digits")
    model = build_model("ae", {}, DataInfo(data.image_shape, data.num_classes), np.random.default_rng(0))
    _train(model, data.train.x, data.train.y, steps=50, batch=64)
    metrics = model.evaluate(data.validation.x, data.validation.y, np.random.default_rng(0))
    assert set(metrics) == {"reconstruction", "mse_per_pixel", "jacobian_frobenius"}
    paths = model.save_pictures(str(tmp_path), data, np.random.default_rng(0), tag="epoch001")
    assert len(paths) == 2 and all((tmp_path / p.split("/")[-1]).stat().st_size > 0 for p in paths)
