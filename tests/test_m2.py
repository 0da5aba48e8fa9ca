"""M2 semi-supervised VAE: gradcheck, the fast every-class path against the plain one, the bound
formulas, the labelled pool (labels beyond it are never read), and learning from few labels."""
import math

import numpy as np
import pytest

from scratchgen import gradcheck, no_grad
from scratchgen.gradcheck import registered_cases
from scratchgen.models.vae.m2 import M2


def _model(**kwargs):
    options = dict(num_classes=3, hidden=5, latent=2, num_labels=6, rng=0, dtype=np.float64)
    options.update(kwargs)
    return M2((1, 2, 3), **options)


def test_full_objective_gradchecks_in_float64():
    fn, inputs = registered_cases()["m2_loss"](np.random.default_rng(7))[:2]
    gradcheck(fn, inputs)


def test_every_class_path_equals_the_labelled_loss_for_each_class():
    rng = np.random.default_rng(0)
    model = _model()
    x = rng.uniform(0, 1, (4, 6))
    eps = rng.standard_normal((3, 4, 2))
    with no_grad():
        every = model.neg_bound_every_class(x, eps).data
        for k in range(3):
            np.testing.assert_allclose(every[k], model.labelled_loss(x, np.full(4, k), eps[k]).data, rtol=1e-12)


def test_labelled_bound_includes_minus_log_prior_and_unlabelled_follows_its_formula():
    rng = np.random.default_rng(1)
    model = _model()
    x = rng.uniform(0, 1, (4, 6))
    eps = rng.standard_normal((3, 4, 2))
    with no_grad():
        bound = model.neg_bound_every_class(x, eps).data  # L(x, y): (K, N)
        logits = model.classifier_logits(x).data
        log_q = logits - np.log(np.exp(logits).sum(axis=1, keepdims=True))
        q = np.exp(log_q)
        expected = (q * bound.T).sum(axis=1) - (-(q * log_q).sum(axis=1))  # sum_y q L - H(q)
        np.testing.assert_allclose(model.unlabelled_loss(x, eps).data, expected, rtol=1e-12)
        # U(x) >= min_y L(x, y) - log K, since sum_y q L >= min L and H(q) <= log K
        assert np.all(expected >= bound.min(axis=0) - math.log(3) - 1e-12)
        # L(x, y) = BCE + KL + log K: with every weight zero it is exactly D log 2 + 0 + log K
        for p in model.parameters():
            p.data[...] = 0.0
        np.testing.assert_allclose(model.neg_bound_every_class(x, np.zeros((3, 4, 2))).data, 6 * math.log(2) + math.log(3))


def test_loss_parts_and_alpha():
    rng = np.random.default_rng(2)
    model = _model(alpha=3.0)
    x_u, x_l, y_l = rng.uniform(0, 1, (3, 6)), rng.uniform(0, 1, (2, 6)), np.array([1, 2])
    eps_u, eps_l = rng.standard_normal((3, 3, 2)), rng.standard_normal((2, 2))
    with no_grad():
        total, parts = model.loss(x_u, eps_u, x_l, y_l, eps_l)
        expected = parts["unlabelled"].data + parts["labelled"].data + 3.0 * parts["classification"].data
        np.testing.assert_allclose(total.data, expected, rtol=1e-12)
        only_unlabelled, parts_u = model.loss(x_u, eps_u, None, None, None)
        assert set(parts_u) == {"unlabelled"}
    with pytest.raises(ValueError, match="both the unlabelled and the labelled batch are empty"):
        model.loss(None, None, None, None, None)


def test_pool_takes_the_first_examples_of_each_class():
    model = _model(dtype=np.float32)
    x = np.arange(8 * 6, dtype=np.float32).reshape(8, 6) / 48
    y = np.array([2, 0, 2, 2, 1, 0, 1, 0])
    model._fill_pool(x, y)
    pool_x, pool_y = model.labelled_pool()
    np.testing.assert_array_equal(pool_y, [0, 0, 1, 1, 2, 2])
    np.testing.assert_array_equal(pool_x, x[[1, 5, 4, 6, 0, 2]])


def test_labels_outside_the_pool_are_never_read():
    rng = np.random.default_rng(3)
    x = rng.uniform(0, 1, (10, 6)).astype(np.float32)
    y = rng.integers(0, 3, 10)
    runs = []
    for labels in (y, (y + 1) % 3):
        model = _model(dtype=np.float32, labelled_batch=4)
        model.set_labelled(x[:6], np.array([0, 0, 1, 1, 2, 2]))
        step_rng = np.random.default_rng(0)
        runs.append([model.train_step(x, labels, step_rng)["loss"] for _ in range(3)])
    assert runs[0] == runs[1]


def test_learns_to_classify_from_a_few_labels():
    rng = np.random.default_rng(0)
    prototypes = (rng.uniform(0, 1, (3, 16)) > 0.5).astype(np.float32)
    y = rng.integers(0, 3, 600)
    x = np.clip(prototypes[y] + rng.normal(0, 0.1, (600, 16)), 0, 1).astype(np.float32).reshape(-1, 1, 4, 4)
    model = M2((1, 4, 4), num_classes=3, hidden=16, latent=2, num_labels=6, labelled_batch=6, alpha=5.0, lr=3e-3, rng=0)
    losses = []
    for _ in range(150):
        index = rng.choice(500, 50, replace=False)
        losses.append(model.train_step(x[index], y[index], rng)["loss"])
    assert np.mean(losses[-10:]) < 0.7 * np.mean(losses[:3])
    metrics = model.evaluate(x[500:], y[500:], rng)
    assert metrics["labels_used"] == 6
    assert metrics["error"] < 0.1
    assert model.style_grid(np.zeros((2, 2))).shape == (6, 1, 4, 4)


def test_bad_arguments():
    with pytest.raises(ValueError, match="one per class"):
        M2((1, 2, 3), num_classes=10, num_labels=5)
    model = _model()
    with pytest.raises(ValueError, match="eps has shape"):
        model.unlabelled_loss(np.zeros((2, 6)), np.zeros((2, 2, 2)))


def test_beta_weights_only_the_kl_term_of_the_bound():
    rng = np.random.default_rng(4)
    x, eps = rng.uniform(0, 1, (3, 6)), rng.standard_normal((3, 2))
    y = np.array([0, 2, 1])
    plain, weighted = _model(), _model(beta=2.5)
    with no_grad():
        mu, logvar = (t.data for t in plain._q_z(plain.encoder_x(x) + plain.encoder_y(np.eye(3)[y])))
        kl = 0.5 * np.sum(mu**2 + np.exp(logvar) - logvar - 1, axis=1)
        difference = weighted.labelled_loss(x, y, eps).data - plain.labelled_loss(x, y, eps).data
    np.testing.assert_allclose(difference, 1.5 * kl, rtol=1e-10)
