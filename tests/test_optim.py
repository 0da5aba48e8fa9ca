"""Optimisers and gradient clipping: closed forms, hand-computed Adam steps, checkpoints, an MLP that fits."""
import math

import numpy as np
import pytest

from scratchgen import nn, optim
from scratchgen.backend import registered_kernels


def param(values, dtype=np.float64):
    return nn.Parameter(np.array(values, dtype=dtype))


def set_grad(p, values):
    p.grad = np.array(values, dtype=p.dtype)


# ---- Adam --------------------------------------------------------------------------------------------
def test_adam_matches_a_hand_computed_two_step_update():
    lr, b1, b2, eps = 0.1, 0.9, 0.999, 1e-8
    p = param([1.0, -2.0])
    opt = optim.Adam([p], lr=lr, betas=(b1, b2), eps=eps)
    g1, g2 = np.array([0.5, -1.0]), np.array([0.1, 0.3])

    set_grad(p, g1)
    opt.step()
    # step 1: m = 0.1 g1, v = 0.001 g1^2, m_hat = g1, v_hat = g1^2 -> p -= lr g1 / (|g1| + eps)
    expected1 = np.array([1.0, -2.0]) - lr * g1 / (np.abs(g1) + eps)
    np.testing.assert_allclose(p.data, expected1, rtol=1e-14)

    set_grad(p, g2)
    opt.step()
    m = 0.9 * (0.1 * g1) + 0.1 * g2
    v = 0.999 * (0.001 * g1**2) + 0.001 * g2**2
    m_hat, v_hat = m / (1 - 0.9**2), v / (1 - 0.999**2)
    expected2 = expected1 - lr * m_hat / (np.sqrt(v_hat) + eps)
    np.testing.assert_allclose(p.data, expected2, rtol=1e-14)
    np.testing.assert_allclose(opt.state["exp_avg"][0], m, rtol=1e-14)
    np.testing.assert_allclose(opt.state["exp_avg_sq"][0], v, rtol=1e-14)
    assert opt.steps == [2]


def test_adam_bias_correction_makes_early_steps_lr_sized():
    # With a constant gradient, m_hat = g and v_hat = g^2 at every step t, so each step moves
    # p by lr (times |g| / (|g| + eps)) whatever beta1, beta2 and the scale of g are.
    for scale in (1e-4, 1.0, 1e3):
        p = param([0.0, 0.0])
        opt = optim.Adam([p], lr=0.01, betas=(0.8, 0.99), eps=0.0)
        for t in range(1, 6):
            set_grad(p, [scale, -scale])
            opt.step()
            np.testing.assert_allclose(p.data, [-0.01 * t, 0.01 * t], rtol=1e-12)


def test_adam_coupled_and_decoupled_weight_decay():
    lr, wd = 0.1, 0.5
    coupled, decoupled = param([2.0]), param([2.0])
    set_grad(coupled, [0.0])
    set_grad(decoupled, [0.0])
    optim.Adam([coupled], lr=lr, weight_decay=wd).step()
    optim.AdamW([decoupled], lr=lr, weight_decay=wd).step()
    # coupled: the gradient becomes wd p = 1.0, and Adam's first step moves p by lr sign(g)
    np.testing.assert_allclose(coupled.data, [2.0 - lr * 1.0 / (1.0 + 1e-8)], rtol=1e-14)
    # decoupled: p shrinks by (1 - lr wd); the zero gradient leaves the moments (and p) alone
    np.testing.assert_allclose(decoupled.data, [2.0 * (1 - lr * wd)], rtol=1e-14)


def test_adam_update_is_a_registered_kernel_updating_lists_in_place():
    fn = registered_kernels()["adam_update"]["numpy"]
    params = [np.ones(3, np.float32), np.ones((2, 2), np.float32)]
    grads = [np.full(3, 0.5, np.float32), np.full((2, 2), -2.0, np.float32)]
    m, v = [np.zeros_like(a) for a in params], [np.zeros_like(a) for a in params]
    ids = [id(a) for a in params + m + v]
    fn(params, grads, m, v, 1, 0.1, 0.9, 0.999, 1e-8, 0.0)
    assert [id(a) for a in params + m + v] == ids
    assert all(a.dtype == np.float32 for a in params + m + v)  # no accidental float64
    np.testing.assert_allclose(params[0], 0.9, rtol=1e-6)
    np.testing.assert_allclose(params[1], 1.1, rtol=1e-6)
    np.testing.assert_array_equal(grads[0], 0.5)  # gradients are not modified
    assert "sgd_update" in registered_kernels()


def test_parameters_without_grad_are_skipped_and_keep_their_own_step_count():
    a, b = param([1.0]), param([1.0])
    opt = optim.Adam([a, b], lr=0.1, eps=0.0)
    set_grad(a, [1.0])
    opt.step()  # b has no grad: unchanged
    assert b.data[0] == 1.0 and opt.steps == [1, 0]
    set_grad(a, [1.0])
    set_grad(b, [1.0])
    opt.step()
    assert opt.steps == [2, 1]
    # b's first step is a first step (bias-corrected by t = 1): it moves by exactly lr
    np.testing.assert_allclose(b.data, [0.9], rtol=1e-14)
    np.testing.assert_allclose(a.data, [0.8], rtol=1e-14)


# ---- SGD ---------------------------------------------------------------------------------------------
def test_plain_sgd_and_weight_decay():
    p = param([1.0, 2.0])
    opt = optim.SGD([p], lr=0.5, weight_decay=0.1)
    set_grad(p, [1.0, -1.0])
    opt.step()
    np.testing.assert_allclose(p.data, [1.0 - 0.5 * (1.0 + 0.1), 2.0 - 0.5 * (-1.0 + 0.2)], rtol=1e-14)
    assert opt.state["velocity"] == [None]  # no velocity without momentum


@pytest.mark.parametrize("nesterov", [False, True])
def test_sgd_momentum_closed_form_for_a_constant_gradient(nesterov):
    # With constant g: v_t = g (1 - mu^t) / (1 - mu). Classical momentum steps by lr v_t,
    # Nesterov by lr (g + mu v_t) = lr g (1 - mu^(t+1)) / (1 - mu).
    lr, mu, g, steps = 0.1, 0.9, 2.0, 7
    p = param([0.0])
    opt = optim.SGD([p], lr=lr, momentum=mu, nesterov=nesterov)
    for _ in range(steps):
        set_grad(p, [g])
        opt.step()
    shift = 1 if nesterov else 0
    expected = -lr * g * sum((1 - mu ** (t + shift)) / (1 - mu) for t in range(1, steps + 1))
    np.testing.assert_allclose(p.data, [expected], rtol=1e-13)
    np.testing.assert_allclose(opt.state["velocity"][0], [g * (1 - mu**steps) / (1 - mu)], rtol=1e-13)


def test_sgd_momentum_two_steps_by_hand_with_changing_gradients():
    p = param([1.0])
    opt = optim.SGD([p], lr=0.1, momentum=0.5, nesterov=True)
    set_grad(p, [2.0])
    opt.step()  # v = 2, step = 2 + 0.5 * 2 = 3
    set_grad(p, [-1.0])
    opt.step()  # v = 0.5 * 2 - 1 = 0, step = -1 + 0 = -1
    np.testing.assert_allclose(p.data, [1.0 - 0.3 + 0.1], rtol=1e-14)


def test_optimiser_argument_errors():
    p = param([1.0])
    with pytest.raises(ValueError, match="empty parameter list"):
        optim.SGD([], lr=0.1)
    with pytest.raises(TypeError, match="parameter 0 is a ndarray"):
        optim.SGD([np.zeros(2)], lr=0.1)
    with pytest.raises(ValueError, match="lr must be >= 0"):
        optim.Adam([p], lr=-1.0)
    with pytest.raises(ValueError, match=r"betas\[1\] must be in \[0, 1\)"):
        optim.Adam([p], betas=(0.9, 1.0))
    with pytest.raises(ValueError, match="nesterov=True needs momentum"):
        optim.SGD([p], lr=0.1, nesterov=True)
    opt = optim.SGD([p], lr=0.1)
    p.grad = np.zeros(3)
    with pytest.raises(ValueError, match=r"parameter 0 has shape \(1,\) but its grad has \(3,\)"):
        opt.step()


def test_duplicate_parameters_are_updated_once_and_zero_grad_clears():
    p = param([1.0])
    opt = optim.SGD([p, p], lr=1.0)
    set_grad(p, [1.0])
    opt.step()
    assert p.data[0] == 0.0
    opt.zero_grad()
    assert p.grad is None


# ---- checkpoints -----------------------------------------------------------------------------------
@pytest.mark.parametrize("make", [
    lambda ps: optim.Adam(ps, lr=0.05, weight_decay=0.01),
    lambda ps: optim.SGD(ps, lr=0.05, momentum=0.9, nesterov=True),
])
def test_optimizer_state_round_trips_through_npz(tmp_path, make):
    rng = np.random.default_rng(0)
    model = nn.Sequential(nn.Linear(3, 4, rng=1), nn.Tanh(), nn.Linear(4, 1, rng=2))
    opt = make(model.parameters())
    x = rng.standard_normal((8, 3)).astype(np.float32)

    def train_step(m, o):
        o.zero_grad()
        (m(x) ** 2).mean().backward()
        o.step()

    for _ in range(3):
        train_step(model, opt)
    path = tmp_path / "opt.npz"
    np.savez(path, **opt.state_dict())
    model.save(tmp_path / "model.npz")

    twin = nn.Sequential(nn.Linear(3, 4, rng=5), nn.Tanh(), nn.Linear(4, 1, rng=6)).load(tmp_path / "model.npz")
    twin_opt = make(twin.parameters())
    with np.load(path, allow_pickle=False) as archive:
        twin_opt.load_state_dict({k: archive[k] for k in archive.files})
    train_step(model, opt)
    train_step(twin, twin_opt)
    for a, b in zip(model.parameters(), twin.parameters()):
        np.testing.assert_array_equal(a.data, b.data)


def test_optimizer_load_rejects_other_models():
    opt = optim.Adam([param([1.0, 2.0])])
    other = optim.Adam([param([1.0]), param([2.0])])
    with pytest.raises(ValueError, match="checkpoint is for 1 parameters, this optimiser has 2"):
        other.load_state_dict(opt.state_dict())
    state = opt.state_dict()
    state["exp_avg.0"] = np.zeros(5)
    with pytest.raises(ValueError, match=r"'exp_avg.0' has shape \(5,\), parameter 0 has \(2,\)"):
        opt.load_state_dict(state)


# ---- clipping ----------------------------------------------------------------------------------------
def test_clip_grad_norm_scales_to_the_max_norm_and_returns_the_total():
    a, b, c = param([3.0, 0.0]), param([[0.0, 4.0]]), param([5.0])
    set_grad(a, [3.0, 0.0])
    set_grad(b, [[0.0, 4.0]])
    c.grad = None  # skipped
    total = optim.clip_grad_norm([a, b, c], max_norm=2.5)
    assert total == pytest.approx(5.0, rel=1e-15)
    np.testing.assert_allclose(a.grad, [1.5, 0.0], rtol=1e-6)
    np.testing.assert_allclose(b.grad, [[0.0, 2.0]], rtol=1e-6)
    assert optim.clip_grad_norm([a, b], max_norm=10.0) == pytest.approx(2.5, rel=1e-6)
    np.testing.assert_allclose(a.grad, [1.5, 0.0], rtol=1e-6)  # under the limit: unchanged


def test_clip_grad_norm_names_the_parameter_with_a_nan_gradient():
    model = nn.Sequential(nn.Linear(2, 2, rng=0), nn.Linear(2, 1, rng=1))
    for p in model.parameters():
        p.grad = np.zeros_like(p.data)
    model[1].weight.grad[0, 1] = np.nan
    with pytest.raises(FloatingPointError, match=r"gradient of 1.weight \(shape \(1, 2\)\) has 1 non-finite"):
        optim.clip_grad_norm(model, 1.0)


def test_clip_grad_value_clamps_elements():
    p = param([0.0, 0.0, 0.0])
    set_grad(p, [-3.0, 0.5, 9.0])
    optim.clip_grad_value([p], 1.0)
    np.testing.assert_array_equal(p.grad, [-1.0, 0.5, 1.0])


# ---- end to end ------------------------------------------------------------------------------------
@pytest.mark.parametrize("make_opt", [
    lambda ps: optim.Adam(ps, lr=0.02),
    lambda ps: optim.SGD(ps, lr=0.1, momentum=0.9),
])
def test_two_layer_tanh_mlp_fits_a_fixed_problem(make_opt):
    rng = np.random.default_rng(0)
    x = np.linspace(-2, 2, 64, dtype=np.float32)[:, None]
    y = np.sin(2 * x) + 0.5 * x
    model = nn.Sequential(nn.Linear(1, 32, rng=rng), nn.Tanh(), nn.Linear(32, 1, rng=rng))
    opt = make_opt(model.parameters())
    losses = []
    for _ in range(400):
        opt.zero_grad()
        loss = ((model(x) - y) ** 2).mean()
        loss.backward()
        optim.clip_grad_norm(model, 10.0)
        opt.step()
        losses.append(loss.item())
    assert all(p.dtype == np.float32 for p in model.parameters())
    assert math.isfinite(losses[-1])
    assert losses[-1] < losses[0] / 100, (losses[0], losses[-1])  # about 2,500x on this machine
