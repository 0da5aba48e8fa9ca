"""Divergences and regularisers: float64 gradchecks, closed forms, brute-force Jacobians, clear errors."""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from scratchgen import Tensor, gradcheck
from scratchgen.backend import registered_kernels
from scratchgen.ops.divergences import (
    BERNOULLI_KL_EPS,
    bernoulli_kl,
    contractive_penalty,
    gaussian_kl,
    gaussian_kl_standard,
    l1_penalty,
    reparameterize,
)

FAST = settings(max_examples=25, deadline=None)
REDUCTIONS = ["none", "sum", "mean", "batch_sum"]
SEEDS = st.integers(0, 2**31 - 1)


def normal(rng, shape, transposed=False):
    """A float64 array of ``shape``; with ``transposed`` a non-contiguous transposed view."""
    if transposed and len(shape) == 2:
        return rng.standard_normal(shape[::-1]).T
    return rng.standard_normal(shape)


LAYOUTS = {"same": lambda n, d: (n, d), "row": lambda n, d: (d,), "column": lambda n, d: (n, 1), "scalar": lambda n, d: ()}
layouts = st.sampled_from(sorted(LAYOUTS))


# ---- Gaussian KLs ------------------------------------------------------------------------------
@FAST
@given(st.integers(1, 4), st.integers(1, 4), layouts, st.booleans(), st.sampled_from(REDUCTIONS), SEEDS)
def test_gaussian_kl_standard_gradcheck(n, d, layout, transposed, reduction, seed):
    rng = np.random.default_rng(seed)
    mu, logvar = normal(rng, (n, d), transposed), normal(rng, LAYOUTS[layout](n, d))
    gradcheck(lambda m, v: gaussian_kl_standard(m, v, reduction=reduction), [mu, logvar])


@FAST
@given(st.integers(1, 3), st.integers(1, 4), layouts, layouts, st.booleans(), st.sampled_from(REDUCTIONS), SEEDS)
def test_gaussian_kl_gradcheck_all_four(n, d, layout_mu_p, layout_logvar_p, transposed, reduction, seed):
    rng = np.random.default_rng(seed)
    inputs = [
        normal(rng, (n, d), transposed),
        normal(rng, (n, d)),
        normal(rng, LAYOUTS[layout_mu_p](n, d)),
        normal(rng, LAYOUTS[layout_logvar_p](n, d)),
    ]
    gradcheck(lambda mq, vq, mp, vp: gaussian_kl(mq, vq, mp, vp, reduction=reduction), inputs)


def test_gaussian_kl_closed_forms():
    rng = np.random.default_rng(0)
    mu, logvar = rng.standard_normal((5, 3)), rng.standard_normal((5, 3))
    # identical Gaussians: exactly 0, and so is the gradient
    same = [Tensor(mu.copy(), requires_grad=True), Tensor(logvar.copy(), requires_grad=True)]
    kl = gaussian_kl(same[0], same[1], mu, logvar, reduction="sum")
    kl.backward()
    assert kl.item() == 0.0
    assert np.all(same[0].grad == 0) and np.all(same[1].grad == 0)
    # the standard-normal KL is the general one with mu_p = 0, logvar_p = 0
    np.testing.assert_allclose(gaussian_kl_standard(mu, logvar, reduction="none").data, gaussian_kl(mu, logvar, 0.0, 0.0, reduction="none").data, rtol=1e-14)
    # both against the reference-sheet formulas
    mp, vp = rng.standard_normal(3), rng.standard_normal(3)
    direct = 0.5 * (vp - logvar + (np.exp(logvar) + (mu - mp) ** 2) / np.exp(vp) - 1)
    np.testing.assert_allclose(gaussian_kl(mu, logvar, mp, vp, reduction="none").data, direct, rtol=1e-11, atol=1e-14)
    np.testing.assert_allclose(gaussian_kl_standard(mu, logvar).item(), (0.5 * (mu**2 + np.exp(logvar) - logvar - 1)).sum(1).mean(), rtol=1e-12)


def test_gaussian_kl_standard_never_negative_near_zero_logvar():
    # float32 exp(v) - v - 1 goes negative for small v; the expm1 form must not, and must stay close.
    v = np.random.default_rng(1).uniform(-1e-3, 1e-3, 20000).astype(np.float32)
    kl = gaussian_kl_standard(np.zeros_like(v), v, reduction="none").data
    assert kl.dtype == np.float32 and np.all(kl >= 0)
    v64 = v.astype(np.float64)
    np.testing.assert_allclose(kl, 0.5 * (np.expm1(v64) - v64), rtol=0, atol=1e-9)


def test_gaussian_kl_errors():
    with pytest.raises(ValueError, match=r"gaussian_kl_standard: shapes mu \(4, 1\), logvar \(4,\) broadcast to \(4, 4\)"):
        gaussian_kl_standard(np.zeros((4, 1)), np.zeros(4))
    with pytest.raises(ValueError, match=r"gaussian_kl: shapes do not broadcast: mu_q \(2, 3\), logvar_q \(2, 3\), mu_p \(2,\)"):
        gaussian_kl(np.zeros((2, 3)), np.zeros((2, 3)), np.zeros(2), np.zeros(3))
    with pytest.raises(TypeError, match="gaussian_kl_standard: inputs mix floating dtypes"):
        gaussian_kl_standard(Tensor(np.zeros(2, np.float32)), Tensor(np.zeros(2)))


# ---- Bernoulli (sparsity) KL --------------------------------------------------------------------
@FAST
@given(st.integers(1, 8), st.floats(0.0, 1.0), st.sampled_from(REDUCTIONS), SEEDS)
def test_bernoulli_kl_gradcheck_and_value(h, rho, reduction, seed):
    rng = np.random.default_rng(seed)
    rho_hat = rng.uniform(0.02, 0.98, h)
    gradcheck(lambda q: bernoulli_kl(q, rho, reduction=reduction), [rho_hat])
    with np.errstate(divide="ignore", invalid="ignore"):
        entropy_terms = np.nan_to_num(rho * np.log(rho)) + np.nan_to_num((1 - rho) * np.log(1 - rho))
    direct = entropy_terms - rho * np.log(rho_hat) - (1 - rho) * np.log(1 - rho_hat)
    np.testing.assert_allclose(bernoulli_kl(rho_hat, rho, reduction="none").data, direct, rtol=1e-10, atol=1e-13)


def test_bernoulli_kl_per_unit_rho_and_clipping():
    rho = np.array([0.05, 0.1, 0.2])
    rho_hat = Tensor(np.array([0.3, 0.0, 1.0]), requires_grad=True)
    loss = bernoulli_kl(rho_hat, rho, reduction="sum")
    loss.backward()
    assert np.isfinite(loss.item())
    # away from the clip the gradient is exact: (q - rho) / (q (1 - q)); clipped units get 0
    np.testing.assert_allclose(rho_hat.grad, [(0.3 - 0.05) / (0.3 * 0.7), 0.0, 0.0], rtol=1e-14)
    q = BERNOULLI_KL_EPS
    np.testing.assert_allclose(bernoulli_kl(np.array([0.0]), 0.1, reduction="none").data, [0.1 * np.log(0.1 / q) + 0.9 * np.log(0.9 / (1 - q))], rtol=1e-12)
    assert bernoulli_kl(0.1, 0.1, reduction="sum").item() == pytest.approx(0.0, abs=1e-15)


def test_bernoulli_kl_float32_and_errors():
    rho_hat = Tensor(np.array([0.2, 0.5], np.float32), requires_grad=True)
    loss = bernoulli_kl(rho_hat, 0.05)
    loss.backward()
    assert loss.dtype == np.float32 and rho_hat.grad.dtype == np.float32
    with pytest.raises(ValueError, match=r"bernoulli_kl: rho must lie in \[0, 1\], got values from 1.5"):
        bernoulli_kl(rho_hat, 1.5)
    with pytest.raises(TypeError, match=r"bernoulli_kl: rho is the constant sparsity target.*bernoulli_kl\(rho_hat, rho\)"):
        bernoulli_kl(Tensor(np.array(0.1, np.float32)), rho_hat)  # the old order, target first
    with pytest.raises(ValueError, match=r"bernoulli_kl: shapes do not broadcast: rho_hat \(2,\), rho \(3,\)"):
        bernoulli_kl(rho_hat, np.full(3, 0.1))


# ---- L1 ------------------------------------------------------------------------------------------
@FAST
@given(st.integers(1, 4), st.integers(1, 4), st.booleans(), st.sampled_from(REDUCTIONS), SEEDS)
def test_l1_penalty(n, d, transposed, reduction, seed):
    rng = np.random.default_rng(seed)
    x = normal(rng, (n, d), transposed)
    x += 0.1 * np.sign(x)  # away from the kink at 0
    gradcheck(lambda a: l1_penalty(a, reduction=reduction), [x])
    expected = {"none": np.abs(x), "sum": np.abs(x).sum(), "mean": np.abs(x).mean(), "batch_sum": np.abs(x).sum() / n}[reduction]
    np.testing.assert_allclose(l1_penalty(Tensor(x), reduction=reduction).data, expected, rtol=1e-12)


# ---- reparameterisation --------------------------------------------------------------------------
@FAST
@given(st.integers(1, 4), st.integers(1, 4), st.sampled_from([(), (2,)]), layouts, st.booleans(), SEEDS)
def test_reparameterize_gradcheck(n, d, samples, logvar_layout, transposed, seed):
    rng = np.random.default_rng(seed)
    mu, logvar = normal(rng, (n, d), transposed), normal(rng, LAYOUTS[logvar_layout](n, d))
    eps = rng.standard_normal(samples + (n, d))
    gradcheck(lambda m, v: reparameterize(m, v, eps), [mu, logvar])
    gradcheck(reparameterize, [mu, logvar, eps])  # a differentiable eps gets dz/deps = std
    z = reparameterize(mu, logvar, eps).data
    np.testing.assert_allclose(z, mu + np.sqrt(np.exp(logvar)) * eps, rtol=1e-12)


def test_reparameterize_float32_and_errors():
    rng = np.random.default_rng(1)
    mu = Tensor(rng.standard_normal((3, 2)).astype(np.float32), requires_grad=True)
    logvar = Tensor(rng.standard_normal((3, 2)).astype(np.float32), requires_grad=True)
    z = reparameterize(mu, logvar, rng.standard_normal((3, 2)))  # float64 noise is converted
    z.sum().backward()
    assert z.dtype == np.float32 and mu.grad.dtype == np.float32 and logvar.grad.dtype == np.float32
    with pytest.raises(ValueError, match=r"reparameterize: shapes do not broadcast: mu \(3, 2\), logvar \(3, 2\), eps \(3, 3\)"):
        reparameterize(mu, logvar, np.zeros((3, 3)))


# ---- contractive penalty -----------------------------------------------------------------------
def encoder(x, w, b):
    return 1 / (1 + np.exp(-(x @ w.T + b)))


def jacobian_by_finite_differences(x_row, w, b, h=1e-6):
    """J[j, i] = dh_j / dx_i of one example, by central differences, one input coordinate at a time."""
    jac = np.zeros((w.shape[0], w.shape[1]))
    for i in range(w.shape[1]):
        step = np.zeros_like(x_row)
        step[i] = h
        jac[:, i] = (encoder(x_row + step, w, b) - encoder(x_row - step, w, b)) / (2 * h)
    return jac


def jacobian_by_loops(x_row, w, b):
    """J[j, i] = h_j (1 - h_j) W_ji, written out element by element."""
    hidden = encoder(x_row, w, b)
    jac = np.zeros((w.shape[0], w.shape[1]))
    for j in range(w.shape[0]):
        for i in range(w.shape[1]):
            jac[j, i] = hidden[j] * (1 - hidden[j]) * w[j, i]
    return jac


@FAST
@given(st.integers(1, 3), st.integers(1, 4), st.integers(1, 4), st.booleans(), SEEDS)
def test_contractive_penalty_equals_brute_force_jacobian(n, v, h, transposed, seed):
    rng = np.random.default_rng(seed)
    x, w, b = normal(rng, (n, v)), normal(rng, (h, v), transposed), rng.standard_normal(h)
    per_example = contractive_penalty(x, w, b, reduction="none").data
    by_loops = [np.sum(jacobian_by_loops(x[k], w, b) ** 2) for k in range(n)]
    by_differences = [np.sum(jacobian_by_finite_differences(x[k], w, b) ** 2) for k in range(n)]
    np.testing.assert_allclose(per_example, by_loops, rtol=1e-12)
    np.testing.assert_allclose(per_example, by_differences, rtol=1e-6, atol=1e-12)
    np.testing.assert_allclose(contractive_penalty(x, w, b).item(), np.mean(by_loops), rtol=1e-12)


@FAST
@given(st.integers(1, 3), st.integers(1, 4), st.integers(1, 4), st.booleans(), st.sampled_from(REDUCTIONS), SEEDS)
def test_contractive_penalty_gradcheck_x_weight_bias(n, v, h, transposed, reduction, seed):
    rng = np.random.default_rng(seed)
    x, w, b = normal(rng, (n, v), transposed), normal(rng, (h, v), transposed), rng.standard_normal(h)
    gradcheck(lambda a, c, d: contractive_penalty(a, c, d, reduction=reduction), [x, w, b])


def test_contractive_penalty_constant_input_skips_x_gradient():
    rng = np.random.default_rng(2)
    x, w, b = rng.standard_normal((4, 5)), rng.standard_normal((3, 5)), rng.standard_normal(3)
    grads = []
    for x_input in (x, Tensor(x.copy(), requires_grad=True)):
        tw, tb = Tensor(w.copy(), requires_grad=True), Tensor(b.copy(), requires_grad=True)
        contractive_penalty(x_input, tw, tb).backward()
        grads.append((tw.grad, tb.grad))
    np.testing.assert_allclose(grads[0][0], grads[1][0], rtol=1e-14)
    np.testing.assert_allclose(grads[0][1], grads[1][1], rtol=1e-14)
    gradcheck(lambda c, d: contractive_penalty(x, c, d), [w, b])


def test_contractive_penalty_float32_and_errors():
    rng = np.random.default_rng(3)
    x = rng.standard_normal((4, 5)).astype(np.float32)
    w = Tensor(rng.standard_normal((3, 5)).astype(np.float32), requires_grad=True)
    b = Tensor(np.zeros(3, np.float32), requires_grad=True)
    loss = contractive_penalty(x, w, b)
    loss.backward()
    assert loss.dtype == np.float32 and w.grad.dtype == np.float32 and b.grad.dtype == np.float32
    with pytest.raises(ValueError, match=r"contractive_penalty: input has 6 features, weight expects 5 \(weight shape \(3, 5\)\)"):
        contractive_penalty(np.zeros((4, 6), np.float32), w, b)
    with pytest.raises(ValueError, match=r"contractive_penalty: bias has shape \(4,\), expected \(3,\)"):
        contractive_penalty(x, w, np.zeros(4, np.float32))
    with pytest.raises(ValueError, match=r"contractive_penalty: input must be \(batch, visible\), got shape \(5,\)"):
        contractive_penalty(np.zeros(5, np.float32), w, b)


def test_kernels_registered():
    for name in ["gaussian_kl_standard", "gaussian_kl", "bernoulli_kl", "reparameterize", "contractive_penalty"]:
        assert "numpy" in registered_kernels()[f"{name}_forward"]
        assert "numpy" in registered_kernels()[f"{name}_backward"]


# ---- 0 * inf: finite true values that a naive formula turns into NaN ---------------------------
@pytest.mark.parametrize("dtype, logvar", [(np.float32, -200.0), (np.float64, -1000.0)])
def test_gaussian_kl_of_equal_gaussians_is_zero_at_tiny_variance(dtype, logvar):
    mu = np.array([[0.5, -1.0], [2.0, 0.0]], dtype)
    v = np.full((2, 2), logvar, dtype)
    inputs = [Tensor(a.copy(), requires_grad=True) for a in (mu, v, mu, v)]
    kl = gaussian_kl(*inputs, reduction="sum")
    kl.backward()
    assert kl.item() == 0.0
    for t in inputs:
        np.testing.assert_array_equal(t.grad, np.zeros((2, 2)))


@pytest.mark.parametrize("dtype, logvar", [(np.float32, 200.0), (np.float64, 1500.0)])
def test_reparameterize_with_zero_noise_is_mu_at_huge_variance(dtype, logvar):
    mu = Tensor(np.array([0.5, -1.0], dtype), requires_grad=True)
    v = Tensor(np.full(2, logvar, dtype), requires_grad=True)
    z = reparameterize(mu, v, np.zeros(2, dtype))
    z.sum().backward()
    np.testing.assert_array_equal(z.data, mu.data)
    np.testing.assert_array_equal(mu.grad, [1, 1])
    np.testing.assert_array_equal(v.grad, [0, 0])  # 0.5 g e^(v/2) eps with eps = 0


@pytest.mark.filterwarnings("ignore:overflow encountered")
def test_contractive_penalty_of_saturated_huge_weights_is_zero_not_nan():
    """W ~ 1e20 in float32: sum_i W_ji^2 overflows, but every sigmoid saturates, slope h (1 - h) = 0."""
    rng = np.random.default_rng(4)
    x = rng.standard_normal((4, 5)).astype(np.float32)
    w = Tensor(rng.standard_normal((3, 5)).astype(np.float32) * np.float32(1e20), requires_grad=True)
    b = Tensor(np.zeros(3, np.float32), requires_grad=True)
    loss = contractive_penalty(x, w, b)
    loss.backward()
    assert loss.item() == 0.0
    assert np.all(np.isfinite(w.grad)) and np.all(np.isfinite(b.grad))


# ---- the penalty from the encoder's own codes (what ContractiveAutoencoder uses) ------------------
@FAST
@given(st.integers(1, 3), st.integers(1, 4), st.integers(1, 4), st.sampled_from(REDUCTIONS), SEEDS)
def test_contractive_penalty_codes_equals_the_recomputing_op(n, v, h, reduction, seed):
    """Same value, and through the encoder the same gradients for x, W and b (float64)."""
    from scratchgen.ops import contractive_penalty_codes, linear, sigmoid

    rng = np.random.default_rng(seed)
    x, w, b = rng.standard_normal((n, v)), rng.standard_normal((h, v)), rng.standard_normal(h)
    results = []
    for codes in (False, True):
        tx, tw, tb = (Tensor(a.copy(), requires_grad=True) for a in (x, w, b))
        if codes:
            loss = contractive_penalty_codes(sigmoid(linear(tx, tw, tb)), tw, reduction=reduction)
        else:
            loss = contractive_penalty(tx, tw, tb, reduction=reduction)
        loss.backward(np.ones_like(loss.data))
        results.append((loss.data, tx.grad, tw.grad, tb.grad))
    for a, c in zip(*results):
        np.testing.assert_allclose(a, c, rtol=1e-11, atol=1e-13)
    gradcheck(lambda a, c, d: contractive_penalty_codes(sigmoid(linear(a, c, d)), c, reduction=reduction), [x, w, b])


@pytest.mark.filterwarnings("ignore:overflow encountered")
def test_contractive_penalty_codes_of_saturated_huge_weights_is_zero_not_nan():
    from scratchgen.ops import contractive_penalty_codes, linear, sigmoid

    rng = np.random.default_rng(4)
    x = rng.standard_normal((4, 5)).astype(np.float32)
    w = Tensor(rng.standard_normal((3, 5)).astype(np.float32) * np.float32(1e20), requires_grad=True)
    b = Tensor(np.zeros(3, np.float32), requires_grad=True)
    loss = contractive_penalty_codes(sigmoid(linear(x, w, b)), w)
    loss.backward()
    assert loss.item() == 0.0
    assert np.all(np.isfinite(w.grad)) and np.all(np.isfinite(b.grad))
