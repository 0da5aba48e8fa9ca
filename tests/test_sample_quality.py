"""Sample-quality scores: Fréchet distance closed forms, mode coverage, Parzen windows, the classifier."""
import numpy as np
import pytest

from scratchgen.data import load_dataset
from scratchgen.evaluation import parzen, sample_quality as sq
from scratchgen.models.classifiers.lenet import load_or_train_classifier, train_classifier


def _random_covariance(rng, d):
    a = rng.standard_normal((d, d))
    return a @ a.T + 0.1 * np.eye(d)


# ---- matrix square roots and the Fréchet distance ------------------------------------------------------
def test_symmetric_sqrt_squares_back():
    cov = _random_covariance(np.random.default_rng(0), 6)
    root = sq.symmetric_sqrt(cov)
    np.testing.assert_allclose(root @ root, cov, atol=1e-10)
    np.testing.assert_allclose(root, root.T, atol=1e-12)


def test_trace_sqrt_product_matches_eigenvalues_of_the_nonsymmetric_product():
    rng = np.random.default_rng(1)
    a, b = _random_covariance(rng, 5), _random_covariance(rng, 5)
    eigenvalues = np.linalg.eigvals(a @ b)  # real and positive for a product of SPD matrices
    assert sq.trace_sqrt_product(a, b) == pytest.approx(np.sqrt(eigenvalues.real).sum(), rel=1e-10)
    d1, d2 = np.diag([1.0, 4.0, 9.0]), np.diag([4.0, 1.0, 0.0])
    assert sq.trace_sqrt_product(d1, d2) == pytest.approx(2 + 2 + 0)


def test_frechet_distance_closed_forms():
    # 1-D: (m1 - m2)^2 + (s1 - s2)^2.
    assert sq.frechet_distance([1.0], [[4.0]], [3.0], [[9.0]]) == pytest.approx(4 + 1)
    # Diagonal: |mu1 - mu2|^2 + sum (sqrt(a) - sqrt(b))^2.
    a, b = np.array([1.0, 2.0, 5.0]), np.array([3.0, 2.0, 0.5])
    mu1, mu2 = np.array([0.0, 1.0, 2.0]), np.array([1.0, 1.0, 0.0])
    expected = 1 + 4 + ((np.sqrt(a) - np.sqrt(b)) ** 2).sum()
    assert sq.frechet_distance(mu1, np.diag(a), mu2, np.diag(b)) == pytest.approx(expected, rel=1e-12)
    # Same Gaussian: 0. Symmetric in its arguments.
    rng = np.random.default_rng(2)
    c1, c2, m = _random_covariance(rng, 4), _random_covariance(rng, 4), rng.standard_normal(4)
    assert sq.frechet_distance(m, c1, m, c1) == pytest.approx(0.0, abs=1e-9)
    assert sq.frechet_distance(m, c1, 0 * m, c2) == pytest.approx(sq.frechet_distance(0 * m, c2, m, c1), rel=1e-9)


def test_frechet_distance_from_samples_converges_to_the_closed_form():
    rng = np.random.default_rng(3)
    a = rng.standard_normal((50000, 3)) * [1.0, 2.0, 0.5]
    b = rng.standard_normal((50000, 3)) * [1.5, 2.0, 0.5] + [0.5, 0.0, 0.0]
    expected = 0.25 + (1.0 - 1.5) ** 2
    assert sq.features_frechet_distance(a, b) == pytest.approx(expected, abs=0.03)


def test_frechet_errors_name_the_shapes():
    with pytest.raises(ValueError, match="shapes do not match"):
        sq.frechet_distance(np.zeros(2), np.eye(2), np.zeros(3), np.eye(3))
    with pytest.raises(ValueError, match="square"):
        sq.symmetric_sqrt(np.zeros((2, 3)))


# ---- mode coverage and degraded references ----------------------------------------------------------------
def test_mode_coverage_uniform_and_collapsed():
    uniform = sq.mode_coverage(np.arange(10000) % 10, 10)
    assert uniform["kl_to_uniform"] == pytest.approx(0.0, abs=1e-12) and uniform["classes_covered"] == 10
    collapsed = sq.mode_coverage(np.full(10000, 3), 10)
    assert collapsed["kl_to_uniform"] == pytest.approx(np.log(10)) and collapsed["classes_covered"] == 1
    half = sq.mode_coverage(np.r_[np.zeros(970, int), np.arange(30) % 3 + 1], 10)
    assert half["classes_covered"] == 1  # classes 1-3 hold 1% each: below the 5% bar
    with pytest.raises(ValueError, match="labels must lie"):
        sq.mode_coverage(np.array([0, 10]), 10)


def test_gaussian_blur_keeps_constants_and_mean_and_noise_clips():
    rng = np.random.default_rng(0)
    np.testing.assert_allclose(sq.gaussian_blur(np.full((2, 1, 9, 9), 0.4, np.float32), 1.0), 0.4, atol=1e-6)
    image = np.zeros((1, 1, 15, 15))
    image[0, 0, 7, 7] = 1.0
    assert sq.gaussian_blur(image, 1.0).sum() == pytest.approx(1.0)
    noisy = sq.add_gaussian_noise(np.full((3, 1, 4, 4), 0.5, np.float32), 2.0, rng)
    assert noisy.dtype == np.float32 and noisy.min() >= 0 and noisy.max() <= 1


# ---- Parzen windows --------------------------------------------------------------------------------------
def test_parzen_single_sample_is_a_gaussian_density():
    rng = np.random.default_rng(0)
    sample, x, sigma = rng.standard_normal((1, 5)), rng.standard_normal((7, 5)), 0.7
    expected = -((x - sample) ** 2).sum(axis=1) / (2 * sigma**2) - 2.5 * np.log(2 * np.pi * sigma**2)
    np.testing.assert_allclose(parzen.parzen_log_likelihood(x, sample, sigma), expected, rtol=1e-10)


def test_parzen_chunking_is_exact_and_far_points_stay_finite():
    rng = np.random.default_rng(1)
    samples, x = rng.uniform(size=(300, 16)), rng.uniform(size=(25, 16))
    whole = parzen.parzen_log_likelihood(x, samples, 0.2)
    chunked = parzen.parzen_log_likelihood(x, samples, 0.2, batch_size=7, sample_chunk=64)
    np.testing.assert_allclose(chunked, whole, rtol=1e-12)
    far = parzen.parzen_log_likelihood(x + 100.0, samples, 0.05)  # exp underflows without log-mean-exp
    assert np.all(np.isfinite(far))


def test_parzen_sigma_selection_prefers_a_sensible_width():
    rng = np.random.default_rng(2)
    samples = rng.standard_normal((2000, 2))
    validation, test = rng.standard_normal((300, 2)), rng.standard_normal((300, 2))
    result = parzen.parzen_evaluation(samples, validation, test, sigmas=[0.01, 0.3, 10.0])
    assert result["sigma"] == 0.3
    assert np.isfinite(result["test_log_likelihood"]) and result["test_standard_error"] > 0


# ---- the classifier and the full report on synthetic data ---------------------------------------------------
@pytest.fixture(scope="module")
def synthetic_classifier():
    data = load_dataset("synthetic", seed=0)
    model, info = train_classifier(data, epochs=2, batch_size=32, lr=2e-3, seed=0, verbose=False, width=4, feature_dim=16)
    return data, model, info


def test_classifier_learns_synthetic_data(synthetic_classifier):
    data, model, info = synthetic_classifier
    assert info["test_accuracy"] > 2.0 / data.num_classes  # well above chance
    assert model.features(data.test.x[:5]).shape == (5, 16)
    with pytest.raises(ValueError, match="expected images"):
        model.predict(np.zeros((2, 1, 3, 3), np.float32))


def test_classifier_round_trips_through_npz(tmp_path, synthetic_classifier):
    data, model, _ = synthetic_classifier
    path = str(tmp_path / "clf.npz")
    model.save(path)
    loaded, info = load_or_train_classifier(path, data, width=4, feature_dim=16)
    np.testing.assert_array_equal(loaded.predict(data.test.x), model.predict(data.test.x))
    assert info["loaded_from"] == path


def test_sample_quality_report_orders_real_noisy_and_garbage(synthetic_classifier):
    data, model, _ = synthetic_classifier
    rng = np.random.default_rng(0)
    half = len(data.train.x) // 2
    garbage = rng.uniform(size=(half,) + data.image_shape).astype(np.float32)
    report = sq.sample_quality_report(model, garbage, data.train.x[:half], data.train.x[half : 2 * half], rng, noise_std=0.3)
    assert report["classifier_fd_real_floor"] < report["classifier_fd_noisy_0.3"] < report["classifier_fd"]
    assert len(report["class_histogram"]) == data.num_classes
    assert sum(report["class_histogram"]) == pytest.approx(1.0)
