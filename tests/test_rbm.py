"""Bernoulli and Gaussian-Bernoulli RBMs, the Boltzmann machine: kernels, exact small cases, CD = autograd."""
import itertools

import numpy as np
import pytest

import scratchgen.ops as ops
from scratchgen import Tensor
from scratchgen.backend import kernel
from scratchgen.models.boltzmann import monitors
from scratchgen.models import DataInfo, build_model
from scratchgen.models.boltzmann.boltzmann_machine import BoltzmannMachine
from scratchgen.models.boltzmann.gaussian_rbm import GaussianBernoulliRBM
from scratchgen.models.boltzmann.bernoulli_rbm import BernoulliRBM


def all_states(n):
    return np.array(list(itertools.product([0.0, 1.0], repeat=n)))


def tiny_rbm(n_visible=6, n_hidden=4, seed=0, scale=1.0, **options):
    rng = np.random.default_rng(seed)
    rbm = BernoulliRBM(n_visible, n_hidden, dtype=np.float64, rng=seed, **options)
    rbm.weight.data[...] = rng.normal(0, scale, (n_visible, n_hidden))
    rbm.visible_bias.data[...] = rng.normal(0, scale, n_visible)
    rbm.hidden_bias.data[...] = rng.normal(0, scale, n_hidden)
    return rbm


def joint_table(rbm):
    """All (v, h) pairs and their exact probabilities p(v, h) by brute force."""
    vs, hs = all_states(rbm.n_visible), all_states(rbm.n_hidden)
    v = np.repeat(vs, len(hs), axis=0)
    h = np.tile(hs, (len(vs), 1))
    log_p = -rbm.energy(v, h)
    p = np.exp(log_p - log_p.max())
    return v, h, p / p.sum(), log_p


# ---- kernels ---------------------------------------------------------------------------------------
def test_kernels_shapes_dtypes_and_sampling_rule():
    rng = np.random.default_rng(0)
    v = (rng.random((5, 7)) < 0.5).astype(np.float32)
    w = rng.normal(0, 1, (7, 3)).astype(np.float32)
    b, c = rng.normal(size=7).astype(np.float32), rng.normal(size=3).astype(np.float32)
    uh, uv = rng.random((5, 3), dtype=np.float32), rng.random((5, 7), dtype=np.float32)
    h_prob, h = kernel("rbm_sample_hidden")(v, w, c, uh)
    assert h_prob.shape == h.shape == (5, 3) and h_prob.dtype == h.dtype == np.float32
    np.testing.assert_allclose(h_prob, 1 / (1 + np.exp(-(v @ w + c))), rtol=1e-6)
    np.testing.assert_array_equal(h, (uh < h_prob).astype(np.float32))
    v_prob, v1 = kernel("rbm_sample_visible")(h, w, b, uv)
    np.testing.assert_allclose(v_prob, 1 / (1 + np.exp(-(h @ w.T + b))), rtol=1e-6)
    step = kernel("rbm_gibbs_step")(v, w, b, c, uh, uv)
    for got, want in zip(step, (h_prob, h, v_prob, v1)):
        np.testing.assert_array_equal(got, want)


def test_cd_statistics_average_each_batch_separately():
    rng = np.random.default_rng(1)
    vp, hp, vn, hn = rng.random((4, 5)), rng.random((4, 3)), rng.random((6, 5)), rng.random((6, 3))
    gw, gb, gc = kernel("rbm_cd_statistics")(vp, hp, vn, hn)
    np.testing.assert_allclose(gw, vp.T @ hp / 4 - vn.T @ hn / 6)
    np.testing.assert_allclose(gb, vp.mean(0) - vn.mean(0))
    np.testing.assert_allclose(gc, hp.mean(0) - hn.mean(0))


# ---- exact small cases -------------------------------------------------------------------------------
def test_conditionals_free_energy_and_log_z_match_brute_force():
    rbm = tiny_rbm()
    v, h, p, log_p = joint_table(rbm)
    vs, hs = all_states(6), all_states(4)
    # p(h_j = 1 | v) and p(v_i = 1 | h) from the joint table
    for k, state in enumerate(vs[::9]):
        rows = np.all(v == state, axis=1)
        expected = (p[rows][:, None] * h[rows]).sum(0) / p[rows].sum()
        np.testing.assert_allclose(rbm.hidden_probabilities(state[None])[0], expected, rtol=1e-10)
    for state in hs[::3]:
        rows = np.all(h == state, axis=1)
        expected = (p[rows][:, None] * v[rows]).sum(0) / p[rows].sum()
        np.testing.assert_allclose(rbm.visible_means(state[None])[0], expected, rtol=1e-10)
    # F(v) = -log sum_h exp(-E(v, h)) and log Z = log sum exp(-E)
    brute_free = np.array([-np.logaddexp.reduce(log_p[np.all(v == s, axis=1)]) for s in vs])
    np.testing.assert_allclose(rbm.free_energy(vs), brute_free, rtol=1e-12)
    brute_log_z = np.logaddexp.reduce(log_p)
    assert abs(rbm.exact_log_partition() - brute_log_z) < 1e-10
    # enumerating the other layer (H > V) and tiny blocks give the same number
    wide = tiny_rbm(4, 6, seed=3)
    _, _, _, log_p_wide = joint_table(wide)
    assert abs(wide.exact_log_partition(block_size=3) - np.logaddexp.reduce(log_p_wide)) < 1e-10


def test_long_gibbs_chain_matches_exact_distribution():
    rbm = tiny_rbm(scale=0.8, seed=2)
    vs = all_states(6)
    exact = np.exp(-rbm.free_energy(vs) - rbm.exact_log_partition())
    rng = np.random.default_rng(0)
    v = (rng.random((200, 6)) < 0.5).astype(np.float64)
    _, v = rbm.gibbs(v, 50, rng)  # burn-in
    counts = np.zeros(len(vs))
    codes = 2 ** np.arange(5, -1, -1)  # itertools.product order: first unit is the most significant bit
    for _ in range(400):
        _, _, _, v = rbm.gibbs_step(v, rng)
        counts += np.bincount((v @ codes).astype(int), minlength=len(vs))
    empirical = counts / counts.sum()
    total_variation = 0.5 * np.abs(empirical - exact).sum()
    assert total_variation < 0.03, total_variation


def test_pseudo_likelihood_all_bits_matches_brute_force_and_random_bit_is_unbiased():
    rbm = tiny_rbm(seed=4)
    vs = all_states(6)[::5]
    free = lambda x: rbm.free_energy(x)  # noqa: E731
    expected = np.zeros(len(vs))
    for i in range(6):
        flipped = vs.copy()
        flipped[:, i] = 1 - flipped[:, i]
        expected += -np.logaddexp(0, free(vs) - free(flipped))  # log sigmoid(F(flip) - F(v))
    np.testing.assert_allclose(monitors.pseudo_log_likelihood(rbm, vs), expected, rtol=1e-10)
    many = np.repeat(vs, 400, axis=0)
    noisy = monitors.pseudo_log_likelihood(rbm, many, deterministic=False, rng=0)
    assert abs(noisy.mean() - expected.mean()) < 0.15


# ---- CD update = autograd gradient of mean F(v_data) - mean F(v_model) ------------------------------
def test_cd_update_equals_autograd_of_free_energy_difference():
    rng = np.random.default_rng(5)
    rbm = tiny_rbm(12, 5, seed=5, scale=0.5, k=3, lr=0.1)
    v_data = (rng.random((8, 12)) < 0.4).astype(np.float64)
    gradients, info = rbm.contrastive_divergence(v_data, np.random.default_rng(7))
    v_model = info["v_neg"]  # held constant: it is data for the autograd graph

    w, b, c = (Tensor(p.data.copy(), requires_grad=True) for p in (rbm.weight, rbm.visible_bias, rbm.hidden_bias))

    def free_energy(v):
        v = Tensor(v)
        return -ops.matmul(v, b.reshape(12, 1)).reshape(-1) - ops.sum(ops.softplus(ops.matmul(v, w) + c), axis=1)

    loss = ops.mean(free_energy(v_data)) - ops.mean(free_energy(v_model))
    loss.backward()
    for name, tensor in (("weight", w), ("visible_bias", b), ("hidden_bias", c)):
        np.testing.assert_allclose(gradients[name], -tensor.grad, rtol=1e-10, atol=1e-12, err_msg=name)
    # and the optimiser applies exactly lr times that direction
    before = rbm.weight.data.copy()
    rbm.apply_gradients(dict(gradients))
    np.testing.assert_allclose(rbm.weight.data, before - 0.1 * w.grad, rtol=1e-12)


# ---- the negative phase itself: exactly k sweeps, the chain state after the update ---------------------
def hand_run_chain(rbm, h_start, k, uniforms):
    """k block-Gibbs sweeps from hidden states h_start, written out with explicit uniforms (in the order
    the model draws them: v from h, then k - 1 times (h, v), then the last h). Returns (v_k, p(h | v_k), h_k)."""
    sigmoid = lambda a: 1 / (1 + np.exp(-a))  # noqa: E731
    w, b, c = rbm.weight.data, rbm.visible_bias.data, rbm.hidden_bias.data
    draws = iter(uniforms)
    v = (next(draws) < sigmoid(h_start @ w.T + b)).astype(float)
    for _ in range(k - 1):
        h = (next(draws) < sigmoid(v @ w + c)).astype(float)
        v = (next(draws) < sigmoid(h @ w.T + b)).astype(float)
    h_prob = sigmoid(v @ w + c)
    return v, h_prob, (next(draws) < h_prob).astype(float)


class RecordingGenerator:
    """A Generator stand-in that hands out uniforms drawn from ``rng`` and keeps them, so a test can
    replay the chain by hand and count exactly how many draws (and so sweeps) the model made."""

    def __init__(self, seed):
        self.rng, self.drawn = np.random.default_rng(seed), []

    def random(self, shape, dtype=np.float64):
        self.drawn.append(self.rng.random(shape, dtype=dtype))
        return self.drawn[-1]


@pytest.mark.parametrize("k", [1, 2, 5])
def test_negative_phase_runs_exactly_k_sweeps_from_its_start(k):
    rbm = tiny_rbm(7, 4, seed=2, scale=0.8, k=k)
    h_start = (np.random.default_rng(3).random((6, 4)) < 0.5).astype(float)
    recorder = RecordingGenerator(9)
    v_neg, h_neg_prob, h_next, _ = rbm.negative_phase(h_start, recorder)
    assert len(recorder.drawn) == 2 * k  # one v and one h per sweep: k + 1 sweeps would draw 2k + 2
    v, h_prob, h = hand_run_chain(rbm, h_start, k, recorder.drawn)
    np.testing.assert_array_equal(v_neg, v)
    np.testing.assert_allclose(h_neg_prob, h_prob, rtol=1e-12)
    np.testing.assert_array_equal(h_next, h)


@pytest.mark.parametrize("persistent", [False, True], ids=["CD-2", "PCD-2"])
def test_the_update_uses_the_right_chain_start_and_pcd_chains_advance(persistent):
    """CD starts the chain at p(h | v_data) samples; PCD at its stored states, which the update then
    replaces by the chain's end; the parameters move by exactly lr times the statistics of those states."""
    rbm = tiny_rbm(7, 4, seed=4, scale=0.8, k=2, persistent=persistent, n_chains=5, lr=0.1)
    v_data = (np.random.default_rng(5).random((5, 7)) < 0.5).astype(float)
    chains_before = rbm.chain_hidden.copy() if persistent else None
    params_before = [p.data.copy() for p in (rbm.weight, rbm.visible_bias, rbm.hidden_bias)]
    recorder = RecordingGenerator(11)
    rbm.update(v_data, recorder, monitor=False)
    sigmoid = lambda a: 1 / (1 + np.exp(-a))  # noqa: E731
    w, b, c = params_before
    h_pos_prob = sigmoid(v_data @ w + c)
    if persistent:
        h_start, chain_draws = chains_before, recorder.drawn
    else:
        h_start, chain_draws = (recorder.drawn[0] < h_pos_prob).astype(float), recorder.drawn[1:]
    rbm_before = tiny_rbm(7, 4, seed=4, scale=0.8, k=2)
    v_neg, h_neg_prob, h_next = hand_run_chain(rbm_before, h_start, 2, chain_draws)
    if persistent:
        np.testing.assert_array_equal(rbm.chain_hidden, h_next)  # the chains moved on ...
        assert not np.array_equal(rbm.chain_hidden, chains_before)  # ... to new states
    expected_w = w + 0.1 * (v_data.T @ h_pos_prob / 5 - v_neg.T @ h_neg_prob / len(v_neg))
    np.testing.assert_allclose(rbm.weight.data, expected_w, rtol=1e-12)
    np.testing.assert_allclose(rbm.hidden_bias.data, c + 0.1 * (h_pos_prob.mean(0) - h_neg_prob.mean(0)), rtol=1e-12)


def test_sampling_with_injected_uniforms_is_the_threshold_rule():
    rbm = tiny_rbm(6, 3, seed=1)
    v = (np.random.default_rng(2).random((4, 6)) < 0.5).astype(float)
    uniforms = np.random.default_rng(3).random((4, 3))
    h_prob, h = rbm.sample_hidden(v, uniforms=uniforms)
    np.testing.assert_array_equal(h, (uniforms < h_prob).astype(float))


def test_gaussian_cd_update_with_learned_sigma_equals_autograd():
    rng = np.random.default_rng(6)
    g = GaussianBernoulliRBM(5, 3, learn_sigma=True, standardize=False, dtype=np.float64, rng=1)
    g.weight.data[...] = rng.normal(0, 0.5, (5, 3))
    g.visible_bias.data[...] = rng.normal(size=5)
    g.log_sigma.data[...] = rng.normal(0, 0.3, 5)
    v_data = rng.normal(size=(7, 5))
    gradients, info = g.contrastive_divergence(v_data, np.random.default_rng(2))
    w, b, c, z = (Tensor(p.data.copy(), requires_grad=True) for p in (g.weight, g.visible_bias, g.hidden_bias, g.log_sigma))

    def free_energy(v):
        v, s = Tensor(v), ops.exp(z)
        quadratic = ops.sum(((v - b) / s) ** 2, axis=1) * 0.5
        return quadratic - ops.sum(ops.softplus(ops.matmul(v / s, w) + c), axis=1)

    (ops.mean(free_energy(v_data)) - ops.mean(free_energy(info["v_neg"]))).backward()
    for name, tensor in (("weight", w), ("visible_bias", b), ("hidden_bias", c), ("log_sigma", z)):
        np.testing.assert_allclose(gradients[name], -tensor.grad, rtol=1e-10, atol=1e-12, err_msg=name)


def test_weight_decay_and_sparsity_terms():
    rbm = tiny_rbm(6, 4, weight_decay=0.1, sparsity_target=0.05, sparsity_cost=0.5, sparsity_decay=0.0)
    v = all_states(6)[::7]
    grads = {"weight": np.zeros((6, 4)), "visible_bias": np.zeros(6), "hidden_bias": np.zeros(4)}
    h_prob = rbm.hidden_probabilities(v)
    rbm._regularise(grads, v, h_prob)
    pull = 0.5 * (0.05 - h_prob.mean(0))
    np.testing.assert_allclose(grads["hidden_bias"], pull)
    np.testing.assert_allclose(grads["weight"], -0.1 * rbm.weight.data + np.outer(v.mean(0), pull))


# ---- Gaussian-Bernoulli -----------------------------------------------------------------------------
def tiny_gbrbm(n_visible=2, n_hidden=3, seed=0):
    rng = np.random.default_rng(seed)
    g = GaussianBernoulliRBM(n_visible, n_hidden, sigma=1.0, standardize=False, dtype=np.float64, rng=seed)
    g.weight.data[...] = rng.normal(0, 0.6, (n_visible, n_hidden))
    g.visible_bias.data[...] = rng.normal(0, 0.5, n_visible)
    g.hidden_bias.data[...] = rng.normal(0, 0.5, n_hidden)
    g.log_sigma[...] = np.log(rng.uniform(0.6, 1.4, n_visible))
    return g


def test_gaussian_free_energy_sums_over_h_and_log_z_integrates_over_v():
    g = tiny_gbrbm()
    hs = all_states(3)
    v = np.random.default_rng(1).normal(size=(5, 2))
    brute = np.array([-np.logaddexp.reduce(-g.energy(np.repeat(x[None], len(hs), 0), hs)) for x in v])
    np.testing.assert_allclose(g.free_energy(v), brute, rtol=1e-12)
    # log Z = log integral exp(-F(v)) dv: a 2-D grid quadrature against the closed form
    grid = np.linspace(-12, 12, 801)
    xx, yy = np.meshgrid(grid, grid)
    points = np.stack([xx.ravel(), yy.ravel()], axis=1)
    log_density = -g.free_energy(points)
    step = grid[1] - grid[0]
    numeric = np.logaddexp.reduce(log_density) + 2 * np.log(step)
    assert abs(g.exact_log_partition() - numeric) < 1e-6
    # p(h | v) from the joint, and E[v | h] = b + sigma * (W h)
    for x in v[:2]:
        log_joint = -g.energy(np.repeat(x[None], len(hs), 0), hs)
        p = np.exp(log_joint - np.logaddexp.reduce(log_joint))
        np.testing.assert_allclose(g.hidden_probabilities(x[None])[0], p @ hs, rtol=1e-10)
    h = hs[5:6]
    weights = np.exp(-g.energy(points, np.repeat(h, len(points), 0)))
    mean = (weights[:, None] * points).sum(0) / weights.sum()
    np.testing.assert_allclose(g.visible_means(h)[0], mean, atol=1e-6)


def test_gaussian_rbm_standardises_and_reports_data_space_likelihood():
    rng = np.random.default_rng(2)
    x = (rng.random((50, 1, 2, 2)) * 0.5 + 0.25).astype(np.float32)
    g = GaussianBernoulliRBM(4, 3, rng=0, lr=0.001)
    with pytest.raises(ValueError, match="statistics are not set"):
        g.transform(x)
    g.fit(x, epochs=2, batch_size=10)
    np.testing.assert_allclose(g.data_mean, x.reshape(50, 4).mean(0), rtol=1e-5)
    v = g.check_data(x, "transform")
    np.testing.assert_allclose(v.mean(0), 0, atol=1e-5)
    np.testing.assert_allclose(g.to_data_space(v), x.reshape(50, 4), atol=1e-6)
    # density of x = density of v times |dv/dx| = 1 / prod(std)
    expected = -g.free_energy_float64(v) - g.exact_log_partition() - np.log(g.data_std.astype(np.float64)).sum()
    np.testing.assert_allclose(g.log_likelihood(x), expected, rtol=1e-10)
    assert g.reconstruct(x).shape == (50, 1, 2, 2) and g.sample(3, 0, n_steps=5).shape == (3, 1, 2, 2)


# ---- the general Boltzmann machine ------------------------------------------------------------------
def tiny_bm(restricted=False, seed=0):
    bm = BoltzmannMachine(4, 3, restricted=restricted, dtype=np.float64, rng=seed)
    rng = np.random.default_rng(seed)
    upper = np.triu(rng.normal(0, 0.8, (7, 7)), 1)
    bm.weight.data[...] = (upper + upper.T) * bm.connectivity
    bm.bias.data[...] = rng.normal(0, 0.5, 7)
    return bm


def test_boltzmann_conditionals_and_exact_likelihood_match_brute_force():
    bm = tiny_bm()
    states = all_states(7)
    log_p = -bm.energy(states)
    assert abs(bm.exact_log_partition() - np.logaddexp.reduce(log_p)) < 1e-10
    for unit in (0, 5):
        for rest in states[::17]:
            on, off = rest.copy(), rest.copy()
            on[unit], off[unit] = 1, 0
            expected = 1 / (1 + np.exp(bm.energy(on[None])[0] - bm.energy(off[None])[0]))
            assert abs(bm.conditional_probability(rest[None], unit)[0] - expected) < 1e-12
    v = all_states(4)
    marginal = np.array([np.logaddexp.reduce(log_p[np.all(states[:, :4] == x, axis=1)]) for x in v])
    np.testing.assert_allclose(bm.log_likelihood(v), marginal - np.logaddexp.reduce(log_p), rtol=1e-10)


def test_restricted_boltzmann_machine_is_an_rbm():
    bm = tiny_bm(restricted=True)
    rbm = BernoulliRBM(4, 3, dtype=np.float64, rng=0)
    rbm.weight.data[...] = bm.weight.data[:4, 4:]
    rbm.visible_bias.data[...] = bm.bias.data[:4]
    rbm.hidden_bias.data[...] = bm.bias.data[4:]
    assert abs(bm.exact_log_partition() - rbm.exact_log_partition()) < 1e-10
    v = all_states(4)
    np.testing.assert_allclose(bm.free_energy_float64(v), rbm.free_energy(v), rtol=1e-12)


def test_boltzmann_training_raises_exact_likelihood():
    rng = np.random.default_rng(3)
    prototypes = np.array([[1, 1, 0, 0, 1, 0], [0, 0, 1, 1, 0, 1]], dtype=np.float32)
    data = prototypes[rng.integers(0, 2, 200)]
    data = np.abs(data - (rng.random(data.shape) < 0.05)).astype(np.float32)
    bm = BoltzmannMachine(6, 3, lr=0.05, rng=0)
    before = bm.log_likelihood(data).mean()
    bm.fit(data, epochs=15, batch_size=20, rng=0)
    after = bm.log_likelihood(data).mean()
    assert after > before + 1.0, (before, after)
    assert bm.sample(3, 0, n_steps=5).shape == (3, 1, 1, 6)


# ---- training, API and errors ------------------------------------------------------------------------
@pytest.mark.parametrize("persistent", [False, True])
def test_training_raises_exact_log_likelihood_on_digits(persistent):
    from scratchgen.data import binarize, load_dataset

    data = load_dataset("digits")
    rng = np.random.default_rng(0)
    x, x_test = binarize(data.train.x, "static", rng), binarize(data.test.x, "static", rng)
    rbm = BernoulliRBM(64, 12, k=1, persistent=persistent, lr=0.05, momentum=0.5, rng=0, image_shape=(1, 8, 8))
    before = rbm.score(x_test)
    rbm.fit(x, epochs=5, batch_size=32, rng=0)
    after = rbm.score(x_test)
    assert after > before + 5, (before, after)
    assert monitors.free_energy_gap(rbm, rbm.check_data(x, "t"), rbm.check_data(x_test, "t")) < 5


def test_cli_registry_train_step_evaluate_pictures_and_checkpoint(tmp_path):
    from scratchgen.data import load_dataset

    data = load_dataset("synthetic")
    info = DataInfo(data.image_shape, data.num_classes)
    rbm = build_model("rbm", {"hidden": 10, "k": 2}, info, np.random.default_rng(0))
    rng = np.random.default_rng(1)
    x = (data.train.x[:32] > 0.5).astype(np.float32)
    losses = rbm.train_step(x, data.train.y[:32], rng)
    assert set(losses) == {"reconstruction_error"} and np.isfinite(losses["reconstruction_error"])
    metrics = rbm.evaluate((data.validation.x > 0.5).astype(np.float32), None, rng)
    assert {"reconstruction_error", "free_energy", "free_energy_gap", "log_likelihood"} <= set(metrics)
    paths = rbm.save_pictures(str(tmp_path), data, rng, tag="t")
    assert len(paths) == 4 and all(p.endswith(".png") for p in paths)
    rbm.save(tmp_path / "rbm.npz")
    other = build_model("rbm", {"hidden": 10, "k": 2}, info, np.random.default_rng(5))
    other.load(tmp_path / "rbm.npz")
    np.testing.assert_array_equal(other.weight.data, rbm.weight.data)
    np.testing.assert_array_equal(other.chain_hidden, rbm.chain_hidden)
    for name in ("gbrbm", "bm"):
        model = build_model(name, {"hidden": 4}, info, np.random.default_rng(0))
        assert all(np.isfinite(v) for v in model.train_step(data.train.x[:16], None, rng).values())


def test_clear_errors_on_bad_input():
    rbm = BernoulliRBM(6, 3, rng=0)
    with pytest.raises(ValueError, match="has 5 features per example.*6 visible units"):
        rbm.transform(np.zeros((2, 5), np.float32))
    with pytest.raises(TypeError, match="floating point, got dtype uint8"):
        rbm.fit(np.zeros((2, 6), np.uint8))
    with pytest.raises(ValueError, match=r"must be in \[0, 1\]"):
        rbm.partial_fit(np.full((2, 6), 2.0, np.float32))
    with pytest.raises(ValueError, match=r"must be in \[0, 1\]"):
        rbm.train_step(np.full((2, 6), np.nan, np.float32), None, np.random.default_rng(0))
    with pytest.raises(ValueError, match="vectors or .* images"):
        rbm.transform(np.zeros((2, 2, 3), np.float32))
    with pytest.raises(ValueError, match="k must be a positive integer"):
        BernoulliRBM(6, 3, k=0)
    with pytest.raises(ValueError, match="sparsity_target"):
        BernoulliRBM(6, 3, sparsity_target=1.5)
    with pytest.raises(ValueError, match="log Z cannot be enumerated"):
        BernoulliRBM(30, 30).score(np.zeros((1, 30), np.float32))
    with pytest.raises(ValueError, match="binary"):
        monitors.pseudo_log_likelihood(rbm, np.full((1, 6), 0.5))
    with pytest.raises(ValueError, match="NaN or Inf"):
        GaussianBernoulliRBM(2, 2, standardize=False).fit(np.array([[np.inf, 0.0]], np.float32))
    probabilities = np.full((4, 6), 0.3, np.float32)  # grey levels are allowed (mean-field data)
    assert np.isfinite(rbm.partial_fit(probabilities, 0)["reconstruction_error"])
