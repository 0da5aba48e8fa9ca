"""Applications: PSNR, AUROC (against the pairwise definition), anomaly scores, 2-D projection, retrieval."""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from scratchgen.metrics import (anomaly_auroc, auroc, denoising_psnr, precision_at_k, project_2d, psnr,
                                                roc_curve)
from scratchgen.plots import save_latent_scatter


def test_psnr_closed_form():
    clean = np.zeros((2, 1, 4, 4))
    estimate = clean + np.array([0.1, 0.01])[:, None, None, None]
    np.testing.assert_allclose(psnr(clean, estimate), [20.0, 40.0])
    assert psnr(clean, clean)[0] == np.inf
    with pytest.raises(ValueError, match="psnr: clean has shape"):
        psnr(clean, clean[:1])


def test_denoising_psnr_of_the_identity_gains_nothing():
    rng = np.random.default_rng(0)
    clean = rng.uniform(0, 1, (5, 16))
    noisy = np.clip(clean + rng.normal(0, 0.1, clean.shape), 0, 1)
    report = denoising_psnr(lambda x: x, clean, noisy, batch_size=2)
    assert report["psnr_gain"] == pytest.approx(0.0, abs=1e-12)
    report = denoising_psnr(lambda x: clean[: len(x)] if len(x) == 5 else None, clean, noisy, batch_size=5)
    assert report["psnr_denoised"] == np.inf


def _pairwise_auroc(scores, positive):
    pos, neg = scores[positive], scores[~positive]
    wins = (pos[:, None] > neg[None, :]).sum() + 0.5 * (pos[:, None] == neg[None, :]).sum()
    return wins / (len(pos) * len(neg))


@settings(max_examples=25, deadline=None)
@given(st.integers(2, 40), st.integers(0, 10_000), st.booleans())
def test_auroc_equals_the_pairwise_probability(n, seed, ties):
    rng = np.random.default_rng(seed)
    scores = rng.integers(0, 4, n).astype(float) if ties else rng.standard_normal(n)
    positive = rng.random(n) < 0.5
    positive[0], positive[1] = True, False  # both classes present
    assert auroc(scores, positive) == pytest.approx(_pairwise_auroc(scores, positive), abs=1e-12)
    fpr, tpr = roc_curve(scores, positive)
    area = float(np.sum((fpr[1:] - fpr[:-1]) * (tpr[1:] + tpr[:-1]) / 2))
    assert area == pytest.approx(auroc(scores, positive), abs=1e-12)


def test_auroc_edge_cases_and_errors():
    assert auroc([1.0, 2.0, 3.0], [False, False, True]) == 1.0
    assert auroc([3.0, 2.0, 1.0], [False, False, True]) == 0.0
    assert auroc([1.0, 1.0], [True, False]) == 0.5
    with pytest.raises(ValueError, match="needs both classes"):
        auroc([1.0, 2.0], [True, True])
    with pytest.raises(ValueError, match="non-finite"):
        auroc([np.nan, 2.0], [True, False])


def test_anomaly_auroc_scores_the_held_out_class():
    x = np.arange(10, dtype=float)[:, None]
    y = np.array([0, 0, 0, 1, 1, 2, 2, 2, 2, 2])
    result = anomaly_auroc(lambda xb: xb[:, 0], x, y, anomaly_class=2, batch_size=3)
    assert result["auroc"] == 1.0
    assert result["mean_score_anomaly"] == 7.0 and result["mean_score_normal"] == 2.0
    with pytest.raises(ValueError, match="no test example has the anomaly class 5"):
        anomaly_auroc(lambda xb: xb[:, 0], x, y, anomaly_class=5)


def test_project_2d_is_the_identity_in_2d_and_an_isometry_on_a_plane():
    rng = np.random.default_rng(0)
    points = rng.standard_normal((30, 2))
    np.testing.assert_array_equal(project_2d(points), points)
    basis = np.linalg.qr(rng.standard_normal((5, 2)))[0]  # an orthonormal 2-D plane in 5-D
    codes = points @ basis.T + 3.0
    projected = project_2d(codes)
    distances = lambda p: np.linalg.norm(p[:, None] - p[None], axis=2)  # noqa: E731
    np.testing.assert_allclose(distances(projected), distances(points), atol=1e-10)
    with pytest.raises(ValueError, match="at least 2 dimensions"):
        project_2d(np.zeros((4, 1)))


def _brute_precision(codes, labels, k):
    d = ((codes[:, None] - codes[None]) ** 2).sum(axis=2)
    np.fill_diagonal(d, np.inf)
    nearest = np.argsort(d, axis=1, kind="stable")[:, :k]
    return (labels[nearest] == labels[:, None]).mean()


@settings(max_examples=15, deadline=None)
@given(st.integers(5, 40), st.integers(1, 4), st.integers(0, 10_000))
def test_precision_at_k_matches_brute_force(n, k, seed):
    rng = np.random.default_rng(seed)
    codes = rng.standard_normal((n, 3))
    labels = rng.integers(0, 3, n)
    assert precision_at_k(codes, labels, k=k, batch_size=7) == pytest.approx(_brute_precision(codes, labels, k))


def test_precision_at_k_on_separated_clusters_and_errors():
    codes = np.concatenate([np.zeros((11, 2)), np.full((11, 2), 10.0)]) + np.random.default_rng(0).normal(0, 0.1, (22, 2))
    labels = np.repeat([0, 1], 11)
    assert precision_at_k(codes, labels, k=10) == 1.0
    # Two rays of very different lengths: cosine retrieval groups them by direction, Euclidean does not.
    radii = np.geomspace(0.1, 100, 11)
    rays = np.concatenate([np.outer(radii, [1.0, 0.1]), np.outer(radii, [0.1, 1.0])])
    assert precision_at_k(rays, labels, k=10, metric="cosine", queries=5) == 1.0
    assert precision_at_k(rays, labels, k=10) < 1.0
    with pytest.raises(ValueError, match="k must be in"):
        precision_at_k(codes, labels, k=22)
    with pytest.raises(ValueError, match="metric must be"):
        precision_at_k(codes, labels, metric="manhattan")


def test_latent_scatter_is_written(tmp_path):
    rng = np.random.default_rng(0)
    path = save_latent_scatter(rng.standard_normal((50, 4)), rng.integers(0, 3, 50), str(tmp_path / "latent.png"), title="t")
    assert (tmp_path / "latent.png").stat().st_size > 1000 and path.endswith("latent.png")
