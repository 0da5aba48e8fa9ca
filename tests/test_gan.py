"""GAN family: loss gradients in float64, the optimal discriminator, learning, pyramids, upsamplers, errors."""
import numpy as np
import pytest

from scratchgen import Tensor, gradcheck, no_grad, ops
from scratchgen.experiments import gan_1d
from scratchgen.models import DataInfo, build_model
from scratchgen.models.gan.cgan import ConditionalGAN, build_cgan
from scratchgen.models.gan.dcgan import build_dcgan
from scratchgen.data import one_hot
from scratchgen.models.gan.gan import GAN, build_gan, to_signed, to_unit
from scratchgen.models.gan.lapgan import build_lapgan, laplacian_pyramid, reconstruct_pyramid
from scratchgen.models.gan.srgan import build_srgan, downsample, interpolation_matrix, psnr, resize, upsample


def _images(rng, n, shape):
    return rng.uniform(0, 1, (n,) + shape)


def _tiny(name, shape, config, seed=0):
    builder = {"gan": build_gan, "dcgan": build_dcgan, "cgan": build_cgan, "lapgan": build_lapgan, "srgan": build_srgan}[name]
    from scratchgen.models.base import MODEL_REGISTRY

    full = {**MODEL_REGISTRY[name].defaults, **config}
    return builder(full, DataInfo(shape, 3), np.random.default_rng(seed), dtype=np.float64)


def _check_discriminator_loss(model: GAN, real, condition=None, rng=None):
    """D's loss is differentiable in every D parameter and in both inputs (the fake batch is data to D)."""
    rng = rng or np.random.default_rng(1)
    with no_grad():
        fake = model.generate(model._noise(len(real), rng), condition).data
    real_t, fake_t = Tensor(real.copy(), requires_grad=True), Tensor(fake.copy(), requires_grad=True)
    params = model.discriminator.parameters()
    gradcheck(lambda *_: model.discriminator_loss(real_t, fake_t, condition)[0], [real_t, fake_t] + params,
              mode="directions", directions=4)


def _check_generator_loss(model: GAN, n, condition=None, real=None, rng=None):
    """G's loss (through D) is differentiable in every G parameter and in the noise."""
    rng = rng or np.random.default_rng(2)
    z = model._noise(n, rng)
    inputs = model.generator.parameters()
    if z is not None:
        z = Tensor(z, requires_grad=True)
        inputs = [z] + inputs
    gradcheck(lambda *_: model.generator_loss(z, condition, real)[0], inputs, mode="directions", directions=4)


# ---- every loss gradchecks in float64 ------------------------------------------------------------------
@pytest.mark.parametrize("kind", ["non_saturating", "minimax"])
def test_mlp_gan_losses_gradcheck(kind):
    rng = np.random.default_rng(0)
    model = _tiny("gan", (1, 3, 3), {"latent_dim": 2, "hidden": 5, "generator_loss": kind})
    real = to_signed(_images(rng, 4, (1, 3, 3)))
    _check_discriminator_loss(model, real)
    _check_generator_loss(model, 4)


def test_dcgan_losses_gradcheck_batch_norm_in_both_networks():
    rng = np.random.default_rng(0)
    model = _tiny("dcgan", (1, 4, 4), {"latent_dim": 3, "width": 2})
    real = to_signed(_images(rng, 3, (1, 4, 4)))
    _check_discriminator_loss(model, real)
    _check_generator_loss(model, 3)


@pytest.mark.parametrize("arch, shape", [("mlp", (1, 2, 2)), ("conv", (1, 4, 4))])
def test_cgan_losses_gradcheck(arch, shape):
    rng = np.random.default_rng(0)
    model = _tiny("cgan", shape, {"arch": arch, "latent_dim": 2, "hidden": 4, "width": 2})
    assert isinstance(model, ConditionalGAN)
    condition = one_hot(np.array([0, 2, 1]), 3, np.float64)
    _check_discriminator_loss(model, to_signed(_images(rng, 3, shape)), condition)
    _check_generator_loss(model, 3, condition)


def test_cgan_discriminator_and_generator_depend_on_the_label():
    rng = np.random.default_rng(0)
    for arch in ("mlp", "conv"):
        model = build_model("cgan", {"arch": arch, "width": 4}, DataInfo((1, 8, 8), 10), rng)
        model.eval()
        z, x = np.repeat(model.fixed_noise[:1], 2, axis=0), np.repeat(_images(rng, 1, (1, 8, 8)), 2, axis=0).astype(np.float32)
        labels = one_hot(np.array([0, 1]), 10)
        with no_grad():
            images, logits = model.generate(Tensor(z), labels).data, model.discriminate(Tensor(x), labels).data
        assert not np.allclose(images[0], images[1]) and logits[0] != logits[1]


def test_lapgan_level_losses_gradcheck():
    rng = np.random.default_rng(0)
    lapgan = _tiny("lapgan", (1, 8, 8), {"levels": 2, "latent_dim": 2, "hidden": 4, "features": 2})
    level = lapgan.levels[1]
    x = _images(rng, 2, (1, 8, 8))
    condition = level.condition_for(x, None)
    _check_discriminator_loss(level, level.target_for(x), condition)
    _check_generator_loss(level, 2, condition)


def test_srgan_generator_loss_with_content_term_gradchecks():
    rng = np.random.default_rng(0)
    model = _tiny("srgan", (1, 4, 4), {"features": 2, "width": 2})
    x = _images(rng, 2, (1, 4, 4))
    condition, real = model.condition_for(x, None), model.target_for(x)
    _check_discriminator_loss(model, real, condition)
    _check_generator_loss(model, 2, condition, real)


def test_gan_losses_match_the_value_function():
    """D loss = -V(D, G) per batch; minimax G loss = mean log(1 - D(G(z))); non-saturating = -mean log D(G(z))."""
    rng = np.random.default_rng(0)
    real_logits, fake_logits = rng.standard_normal(7) * 3, rng.standard_normal(5) * 3
    d = lambda l: 1 / (1 + np.exp(-l))  # noqa: E731
    value = np.mean(np.log(d(real_logits))) + np.mean(np.log(1 - d(fake_logits)))
    assert float(ops.gan_discriminator_loss(Tensor(real_logits), Tensor(fake_logits)).data) == pytest.approx(-value, rel=1e-12)
    assert float(ops.gan_generator_loss(Tensor(fake_logits), "minimax").data) == pytest.approx(np.mean(np.log(1 - d(fake_logits))), rel=1e-12)
    assert float(ops.gan_generator_loss(Tensor(fake_logits)).data) == pytest.approx(-np.mean(np.log(d(fake_logits))), rel=1e-12)
    huge = Tensor(np.array([1e4, -1e4]))
    assert np.isfinite(ops.gan_discriminator_loss(huge, huge).data)


# ---- the theory: D* and -log 4 -----------------------------------------------------------------------
def test_trained_discriminator_approaches_closed_form_d_star():
    data, model = (0.0, 1.0), (1.5, 0.75)
    discriminator = gan_1d.train_discriminator(data, model, steps=600, seed=0)
    grid = np.linspace(-2.0, 3.0, 101)
    trained = gan_1d.discriminator_probability(discriminator, grid)
    assert np.abs(trained - gan_1d.optimal_discriminator(grid, data, model)).max() < 0.05
    # The value it reaches is V(D*, G) = -log 4 + 2 JSD (quadrature), up to sampling noise.
    optimum = gan_1d.optimal_value(data, model)
    assert optimum["value"] == pytest.approx(-gan_1d.LOG_4 + 2 * optimum["jsd"], abs=1e-9)
    assert gan_1d.empirical_value(discriminator, data, model, n=50000) == pytest.approx(optimum["value"], abs=0.02)


def test_value_at_optimum_is_minus_log_4_when_generator_matches_data():
    data = (0.5, 1.3)
    exact = gan_1d.optimal_value(data, data)
    assert exact["value"] == pytest.approx(-np.log(4), abs=1e-9)
    assert exact["jsd"] == pytest.approx(0.0, abs=1e-12)
    discriminator = gan_1d.train_discriminator(data, data, steps=200, seed=1)
    assert gan_1d.empirical_value(discriminator, data, data, n=50000) == pytest.approx(-np.log(4), abs=0.01)


# ---- learning ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("kind", ["non_saturating", "minimax"])
def test_generator_moves_mean_and_variance_toward_data(kind):
    data = (3.0, 0.5)
    gan = gan_1d.build_line_gan(seed=0, generator_loss=kind)
    trace = gan_1d.train_line_gan(gan, data, steps=500, seed=0)
    (mean0, std0), (mean1, std1) = trace[0], trace[-1]
    assert abs(mean1 - data[0]) < 0.5 * abs(mean0 - data[0])
    assert abs(std1 - data[1]) < abs(std0 - data[1])


def test_k_discriminator_steps_per_generator_step():
    gan = gan_1d.build_line_gan(seed=0, d_steps=3)
    rng = np.random.default_rng(0)
    weights = []
    for _ in range(6):
        gan.train_step(rng.standard_normal((16, 1)).astype(np.float32), None, rng)
        weights.append(gan.generator.weight.data.copy())
    changed = [not np.array_equal(a, b) for a, b in zip([np.ones((1, 1))] + weights[:-1], weights)]
    assert changed == [False, False, True, False, False, True]
    assert gan.optimizers["discriminator"].steps[0] == 6


def test_dcgan_on_8x8_digits_trains_samples_and_saves_pictures(tmp_path):
    rng = np.random.default_rng(0)
    model = build_model("dcgan", {"width": 8, "latent_dim": 8}, DataInfo((1, 8, 8), 10), rng)
    x = _images(rng, 16, (1, 8, 8)).astype(np.float32)
    losses = model.train_step(x, np.zeros(16, np.int64), rng)
    assert set(losses) == {"d_loss", "g_loss", "d_real", "d_fake"} and all(np.isfinite(list(losses.values())))
    samples = model.sample(5, rng)
    assert samples.shape == (5, 1, 8, 8) and samples.dtype == np.float32 and samples.min() >= 0 and samples.max() <= 1
    paths = model.save_pictures(str(tmp_path), None, rng, tag="epoch001")
    assert all((tmp_path / p.split("/")[-1]).exists() for p in paths)


def test_cgan_samples_follow_requested_labels_shape_and_class_grid(tmp_path):
    rng = np.random.default_rng(0)
    model = build_model("cgan", {"width": 8}, DataInfo((1, 8, 8), 10), rng)
    model.train_step(_images(rng, 8, (1, 8, 8)).astype(np.float32), rng.integers(0, 10, 8), rng)
    assert model.sample(4, rng, y=np.array([1, 2, 3, 4])).shape == (4, 1, 8, 8)
    assert model.class_grid(per_class=3).shape == (30, 1, 8, 8)
    with pytest.raises(ValueError, match="labels"):
        model.train_step(_images(rng, 2, (1, 8, 8)).astype(np.float32), None, rng)


def test_lapgan_trains_every_level_and_samples_full_size(tmp_path):
    rng = np.random.default_rng(0)
    model = build_model("lapgan", {"hidden": 16, "features": 4}, DataInfo((1, 28, 28), 10), rng)
    losses = model.train_step(_images(rng, 4, (1, 28, 28)).astype(np.float32), None, rng)
    assert {"level0_d_loss", "level1_g_loss", "level2_d_fake"} <= set(losses)
    pyramid = model.sample_pyramid(3, rng)
    assert [p.shape for p in pyramid] == [(3, 1, 7, 7), (3, 1, 14, 14), (3, 1, 28, 28)]
    assert model.save_pictures(str(tmp_path), None, rng)


def test_srgan_starts_as_bicubic_and_reports_psnr():
    rng = np.random.default_rng(0)
    model = build_model("srgan", {"features": 4, "width": 4}, DataInfo((1, 8, 8), 10), rng)
    x = _images(rng, 6, (1, 8, 8)).astype(np.float32)
    table = model.psnr_table(x)
    assert table["psnr_srgan"] == pytest.approx(table["psnr_bicubic"], abs=0.1)  # tiny last layer
    losses = model.train_step(x, None, rng)
    assert np.isfinite(losses["content"])


# ---- pyramids and classic upsamplers ------------------------------------------------------------------
def test_laplacian_pyramid_reconstructs_exactly():
    x = np.random.default_rng(0).uniform(size=(2, 1, 28, 28))
    pyramid = laplacian_pyramid(x, levels=3)
    assert [p.shape[-1] for p in pyramid] == [7, 14, 28]
    np.testing.assert_allclose(reconstruct_pyramid(pyramid), x, atol=1e-12)


@pytest.mark.parametrize("method", ["nearest", "bilinear", "bicubic"])
def test_interpolation_rows_sum_to_one_and_keep_constants(method):
    matrix = interpolation_matrix(7, 14, method)
    np.testing.assert_allclose(matrix.sum(axis=1), 1.0, atol=1e-12)
    np.testing.assert_allclose(upsample(np.full((1, 1, 5, 5), 0.3), 2, method), 0.3, atol=1e-12)


def test_bicubic_is_exact_on_linear_ramps_away_from_edges_and_nearest_repeats():
    ramp = np.arange(10.0)[None, None, None, :].repeat(10, axis=2)  # value = column index
    up = upsample(ramp, 2, "bicubic")
    centres = (np.arange(20) + 0.5) / 2 - 0.5  # where each output column samples the input
    np.testing.assert_allclose(up[0, 0, 5, 4:-4], centres[4:-4], atol=1e-12)
    np.testing.assert_array_equal(upsample(ramp, 2, "nearest")[0, 0, 0], np.repeat(np.arange(10.0), 2))
    np.testing.assert_allclose(downsample(upsample(ramp, 2, "nearest")), ramp)
    assert resize(ramp, (10, 10), "bicubic") == pytest.approx(ramp)


def test_psnr():
    x = np.zeros((1, 1, 4, 4))
    assert psnr(x + 0.1, x) == pytest.approx(20.0)
    assert psnr(x, x) == float("inf")


# ---- clear errors -----------------------------------------------------------------------------------
def test_clear_errors():
    rng = np.random.default_rng(0)
    with pytest.raises(ValueError, match="divisible by 4"):
        build_model("dcgan", {}, DataInfo((1, 10, 10), 10), rng)
    with pytest.raises(ValueError, match="generator_loss"):
        build_model("gan", {"generator_loss": "wasserstein"}, DataInfo((1, 8, 8), 10), rng)
    with pytest.raises(ValueError, match="d_steps"):
        build_model("gan", {"d_steps": 0}, DataInfo((1, 8, 8), 10), rng)
    model = build_model("gan", {}, DataInfo((1, 8, 8), 10), rng)
    with pytest.raises(ValueError, match=r"expected images \(N, 1, 8, 8\)"):
        model.train_step(np.zeros((2, 1, 28, 28), np.float32), None, rng)
    with pytest.raises(ValueError, match="one_hot"):
        one_hot(np.array([0, 10]), 10)


@pytest.mark.parametrize("name, shape", [("dcgan", (1, 8, 8)), ("cgan", (1, 8, 8)), ("lapgan", (1, 8, 8))])
def test_evaluate_in_chunks_gives_the_one_pass_figures(monkeypatch, name, shape):
    """``GAN.evaluate`` runs 200 images at a time to bound its memory; the figures must not move."""
    from scratchgen.models.gan import gan as gan_module

    model = _tiny(name, shape, {"width": 8} if name == "dcgan" else {})
    x = _images(np.random.default_rng(2), 37, shape)
    y = np.arange(37) % 3
    monkeypatch.setattr(gan_module, "EVALUATION_CHUNK", 1000)
    one_pass = model.evaluate(x, y, np.random.default_rng(5))
    monkeypatch.setattr(gan_module, "EVALUATION_CHUNK", 5)
    chunked = model.evaluate(x, y, np.random.default_rng(5))
    assert one_pass.keys() == chunked.keys()
    for key in one_pass:
        assert chunked[key] == pytest.approx(one_pass[key], rel=1e-12, abs=1e-12), key


def test_signed_unit_round_trip_keeps_dtype():
    x = np.linspace(0, 1, 11, dtype=np.float32)
    assert to_signed(x).dtype == np.float32 and to_unit(to_signed(x)).dtype == np.float32
    np.testing.assert_allclose(to_unit(to_signed(x)), x, atol=1e-7)


@pytest.mark.parametrize("name", ["gan", "dcgan", "cgan", "lapgan", "srgan"])
def test_every_gan_trains_under_the_shared_trainer_and_resumes_exactly(tmp_path, name):
    """Two epochs equal one epoch + resume + one epoch, every array of both networks and both
    optimisers, with d_steps = 3 (G updates on every third step: the counter must be in the checkpoint)."""
    from scratchgen.data import load_dataset
    from scratchgen.training import Trainer, TrainOptions

    data = load_dataset("digits", seed=0)
    info = DataInfo(data.image_shape, data.num_classes)
    small = {"gan": {"hidden": 32}, "dcgan": {"width": 8}, "cgan": {"width": 8}, "lapgan": {"hidden": 32, "features": 4},
             "srgan": {"features": 4, "width": 4}}[name]
    small["d_steps"] = 3

    def options(out, epochs):
        return TrainOptions(epochs=epochs, batch_size=16, out_dir=str(tmp_path / out), progress=False, pictures=False,
                            max_batches_per_epoch=4, verbose=False)

    straight = build_model(name, small, info, np.random.default_rng(0))
    Trainer(straight, data, options("straight", 2)).fit()
    Trainer(build_model(name, small, info, np.random.default_rng(0)), data, options("resumed", 1)).fit()
    resumed = build_model(name, small, info, np.random.default_rng(1))  # another init: all must come from the file
    trainer = Trainer(resumed, data, options("resumed", 2))
    trainer.resume()
    trainer.fit()
    for key, value in {**straight.state_dict(), **straight.optimizer_state()}.items():
        got = {**resumed.state_dict(), **resumed.optimizer_state()}[key]
        np.testing.assert_array_equal(got, value, err_msg=f"{name}: {key}")
