"""Losses: float64 gradchecks of every differentiable input, closed forms, stability, clear errors."""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from scratchgen import Tensor, gradcheck
from scratchgen.backend import registered_kernels
from scratchgen.ops.losses import (
    gan_discriminator_loss,
    gan_generator_loss,
    gaussian_nll,
    mse_loss,
    reduce_loss,
    sigmoid_bce_with_logits,
    softmax_cross_entropy,
)

FAST = settings(max_examples=25, deadline=None)
REDUCTIONS = ["none", "sum", "mean", "batch_sum"]


def normal(rng, shape, transposed=False):
    """A float64 array of ``shape``; with ``transposed`` a non-contiguous transposed view."""
    if transposed and len(shape) == 2:
        return rng.standard_normal(shape[::-1]).T
    return rng.standard_normal(shape)


def sigmoid(z):
    return 1 / (1 + np.exp(-z))


# Broadcast layouts of a second input against a main input of shape (n, d).
LAYOUTS = ["same", "row", "keepdims_row", "column", "scalar"]


def partner_shape(layout, n, d):
    return {"same": (n, d), "row": (d,), "keepdims_row": (1, d), "column": (n, 1), "scalar": ()}[layout]


cases = st.tuples(
    st.integers(1, 4),  # n
    st.integers(1, 4),  # d
    st.sampled_from(LAYOUTS),
    st.booleans(),  # transposed main input
    st.sampled_from(REDUCTIONS),
    st.integers(0, 2**31 - 1),
)


# ---- sigmoid_bce_with_logits -------------------------------------------------------------------
@FAST
@given(cases)
def test_bce_gradcheck_logits_and_target(case):
    n, d, layout, transposed, reduction, seed = case
    rng = np.random.default_rng(seed)
    logits = normal(rng, (n, d), transposed) * 3
    target = rng.uniform(0, 1, partner_shape(layout, n, d))
    gradcheck(lambda z, x: sigmoid_bce_with_logits(z, x, reduction=reduction), [logits, target])


def test_bce_matches_naive_formula_and_reductions():
    rng = np.random.default_rng(0)
    z, x = rng.standard_normal((4, 3)), rng.uniform(0, 1, (4, 3))
    naive = -(x * np.log(sigmoid(z)) + (1 - x) * np.log(1 - sigmoid(z)))
    np.testing.assert_allclose(sigmoid_bce_with_logits(z, x, reduction="none").data, naive, rtol=1e-12)
    np.testing.assert_allclose(sigmoid_bce_with_logits(z, x, reduction="sum").item(), naive.sum(), rtol=1e-12)
    np.testing.assert_allclose(sigmoid_bce_with_logits(z, x, reduction="mean").item(), naive.mean(), rtol=1e-12)
    np.testing.assert_allclose(sigmoid_bce_with_logits(z, x).item(), naive.sum(1).mean(), rtol=1e-12)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_bce_finite_at_huge_logits_with_exact_gradient(dtype):
    z = Tensor(np.array([1e4, -1e4, 1e4, -1e4, 0.0], dtype=dtype), requires_grad=True)
    x = np.array([1.0, 0.0, 0.0, 1.0, 0.3], dtype=dtype)
    loss = sigmoid_bce_with_logits(z, x, reduction="none")
    assert np.all(np.isfinite(loss.data)) and loss.dtype == dtype
    np.testing.assert_allclose(loss.data, [0.0, 0.0, 1e4, 1e4, np.log(2)], rtol=1e-6)
    loss.sum().backward()
    expected = np.array([1.0, 0.0, 1.0, 0.0, 0.5], dtype=dtype) - x  # sigmoid(z) - x
    np.testing.assert_array_equal(z.grad, expected)


def test_bce_accepts_uint8_targets_and_keeps_float32():
    z = Tensor(np.zeros((2, 3), np.float32), requires_grad=True)
    loss = sigmoid_bce_with_logits(z, np.array([[0, 1, 1], [1, 0, 0]], dtype=np.uint8))
    loss.backward()
    assert loss.dtype == np.float32 and z.grad.dtype == np.float32
    np.testing.assert_allclose(loss.item(), 3 * np.log(2), rtol=1e-6)
    # a float64 constant target is converted, never an accidental float64 result
    assert sigmoid_bce_with_logits(z, np.full((2, 3), 0.5)).dtype == np.float32


def test_bce_shape_errors():
    with pytest.raises(ValueError, match=r"sigmoid_bce_with_logits: shapes logits \(3, 1\), target \(3,\) broadcast to \(3, 3\)"):
        sigmoid_bce_with_logits(np.zeros((3, 1)), np.zeros(3))
    with pytest.raises(ValueError, match=r"sigmoid_bce_with_logits: shapes do not broadcast: logits \(3, 4\), target \(5,\)"):
        sigmoid_bce_with_logits(np.zeros((3, 4)), np.zeros(5))
    with pytest.raises(ValueError, match="sigmoid_bce_with_logits: reduction must be one of"):
        sigmoid_bce_with_logits(np.zeros(3), np.zeros(3), reduction="avg")


# ---- mse_loss ----------------------------------------------------------------------------------
@FAST
@given(cases)
def test_mse_gradcheck(case):
    n, d, layout, transposed, reduction, seed = case
    rng = np.random.default_rng(seed)
    prediction, target = normal(rng, (n, d), transposed), normal(rng, partner_shape(layout, n, d))
    gradcheck(lambda p, t: mse_loss(p, t, reduction=reduction), [prediction, target])


def test_mse_values():
    rng = np.random.default_rng(1)
    p, t = rng.standard_normal((5, 3)), rng.standard_normal((5, 3))
    np.testing.assert_allclose(mse_loss(p, t).item(), ((p - t) ** 2).sum(1).mean(), rtol=1e-12)  # batch_sum
    np.testing.assert_allclose(mse_loss(p, t, reduction="mean").item(), ((p - t) ** 2).mean(), rtol=1e-12)
    with pytest.raises(ValueError, match=r"mse_loss: shapes prediction \(5, 1\), target \(5,\)"):
        mse_loss(np.zeros((5, 1)), np.zeros(5))


# ---- gaussian_nll ------------------------------------------------------------------------------
@FAST
@given(cases, st.sampled_from(LAYOUTS))
def test_gaussian_nll_gradcheck_all_inputs(case, mean_layout):
    n, d, layout, transposed, reduction, seed = case
    rng = np.random.default_rng(seed)
    x = normal(rng, (n, d), transposed)
    mean = normal(rng, partner_shape(mean_layout, n, d))
    logvar = 0.5 * normal(rng, partner_shape(layout, n, d))
    gradcheck(lambda m, a, v: gaussian_nll(m, a, v, reduction=reduction), [mean, x, logvar])


def test_gaussian_nll_equals_log_density():
    rng = np.random.default_rng(2)
    x, m, v = rng.standard_normal((3, 4)), rng.standard_normal((3, 4)), rng.standard_normal(4)
    sigma = np.exp(0.5 * v)
    density = np.exp(-0.5 * ((x - m) / sigma) ** 2) / (sigma * np.sqrt(2 * np.pi))
    np.testing.assert_allclose(gaussian_nll(m, x, v, reduction="none").data, -np.log(density), rtol=1e-12)
    with pytest.raises(ValueError, match=r"gaussian_nll: shapes do not broadcast: mean \(3, 4\), target \(3, 4\), logvar \(3,\)"):
        gaussian_nll(m, x, np.zeros(3))


# ---- softmax_cross_entropy ---------------------------------------------------------------------
def log_softmax(z):
    shifted = z - z.max(axis=1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))


@FAST
@given(st.integers(1, 5), st.integers(2, 6), st.booleans(), st.sampled_from(REDUCTIONS), st.integers(0, 2**31 - 1))
def test_softmax_ce_integer_labels(n, k, transposed, reduction, seed):
    rng = np.random.default_rng(seed)
    logits, labels = normal(rng, (n, k), transposed) * 2, rng.integers(0, k, n)
    gradcheck(lambda z: softmax_cross_entropy(z, labels, reduction=reduction), [logits])
    per_example = softmax_cross_entropy(logits, labels, reduction="none").data
    np.testing.assert_allclose(per_example, -log_softmax(logits)[np.arange(n), labels], rtol=1e-12)


@FAST
@given(st.integers(1, 4), st.integers(2, 5), st.booleans(), st.sampled_from(REDUCTIONS), st.integers(0, 2**31 - 1))
def test_softmax_ce_soft_targets_gradcheck_both(n, k, transposed, reduction, seed):
    rng = np.random.default_rng(seed)
    logits, target = normal(rng, (n, k), transposed), rng.uniform(0, 1, (n, k))  # rows need not sum to 1
    gradcheck(lambda z, t: softmax_cross_entropy(z, t, reduction=reduction), [logits, target])


def test_softmax_ce_one_hot_equals_labels_and_is_stable():
    rng = np.random.default_rng(3)
    logits, labels = rng.standard_normal((4, 3)) * 1e4, np.array([0, 2, 1, 2])
    z1, z2 = Tensor(logits, requires_grad=True), Tensor(logits.copy(), requires_grad=True)
    a = softmax_cross_entropy(z1, labels)
    b = softmax_cross_entropy(z2, np.eye(3)[labels])
    a.backward(), b.backward()
    assert np.isfinite(a.item())
    np.testing.assert_allclose(a.item(), b.item(), rtol=1e-12)
    np.testing.assert_allclose(z1.grad, z2.grad, atol=1e-15)


def test_softmax_ce_float32():
    z = Tensor(np.random.default_rng(4).standard_normal((3, 4)).astype(np.float32), requires_grad=True)
    loss = softmax_cross_entropy(z, np.array([1, 0, 3]))
    loss.backward()
    assert loss.dtype == np.float32 and z.grad.dtype == np.float32
    assert softmax_cross_entropy(z, np.full((3, 4), 0.25)).dtype == np.float32


def test_softmax_ce_errors():
    z = np.zeros((3, 4))
    with pytest.raises(ValueError, match=r"softmax_cross_entropy: label 4 at index 1 is out of range for K = 4 classes"):
        softmax_cross_entropy(z, np.array([0, 4, 1]))
    with pytest.raises(ValueError, match=r"softmax_cross_entropy: label -1 at index 2 is out of range for K = 4"):
        softmax_cross_entropy(z, np.array([0, 1, -1]))
    with pytest.raises(ValueError, match=r"softmax_cross_entropy: target of shape \(2,\) does not match logits \(3, 4\)"):
        softmax_cross_entropy(z, np.array([0, 1]))
    with pytest.raises(TypeError, match=r"softmax_cross_entropy: target of shape \(3,\) must be integers"):
        softmax_cross_entropy(z, np.array([0.0, 1.0, 2.0]))
    with pytest.raises(ValueError, match=r"softmax_cross_entropy: target probabilities of shape \(3, 5\) do not match logits \(3, 4\)"):
        softmax_cross_entropy(z, np.zeros((3, 5)))
    with pytest.raises(ValueError, match=r"softmax_cross_entropy: logits must be \(N, K\) or \(N, L, K\), classes last, got shape \(4,\)"):
        softmax_cross_entropy(np.zeros(4), np.array([0]))
    with pytest.raises(ValueError, match=r"label 7 at index \(1, 0\) is out of range for K = 4 classes \(labels must lie in \[0, 3\] or equal ignore_index = -100\)"):
        softmax_cross_entropy(np.zeros((2, 2, 4)), np.array([[0, -100], [7, 1]]), ignore_index=-100)
    with pytest.raises(ValueError, match="softmax_cross_entropy: ignore_index applies to integer class targets"):
        softmax_cross_entropy(z, np.full((3, 4), 0.25), ignore_index=0)
    with pytest.raises(TypeError, match="softmax_cross_entropy: ignore_index must be an integer label"):
        softmax_cross_entropy(z, np.array([0, 1, 2]), ignore_index=1.0)


# ---- softmax_cross_entropy over positions, with ignore_index (masked-token losses) -----------------
def ce_reference(logits, target, reduction, ignore_index=None):
    """Loops over positions: -log softmax(z)[label], skipping ignored labels."""
    lead = logits.shape[:-1]
    losses, kept = np.zeros(lead), 0
    for index in np.ndindex(*lead):
        if ignore_index is not None and target[index] == ignore_index:
            continue
        z = logits[index]
        losses[index] = -(z[target[index]] - z.max() - np.log(np.exp(z - z.max()).sum()))
        kept += 1
    return {"none": losses, "sum": losses.sum(), "batch_sum": losses.sum() / lead[0],
            "mean": losses.sum() / max(kept if ignore_index is not None else losses.size, 1)}[reduction]


@FAST
@given(st.integers(1, 3), st.integers(1, 4), st.integers(2, 5), st.sampled_from(REDUCTIONS), st.sampled_from([None, -100, 0]),
       st.integers(0, 2**31 - 1))
def test_softmax_ce_over_positions_with_ignore_index(n, length, k, reduction, ignore_index, seed):
    rng = np.random.default_rng(seed)
    logits = rng.standard_normal((n, length, k)) * 2
    target = rng.integers(0, k, (n, length))
    if ignore_index is not None:
        target[rng.random((n, length)) < 0.4] = ignore_index
    loss = softmax_cross_entropy(logits, target, reduction=reduction, ignore_index=ignore_index)
    np.testing.assert_allclose(loss.data, ce_reference(logits, target, reduction, ignore_index), rtol=1e-12, atol=1e-15)
    gradcheck(lambda z: softmax_cross_entropy(z, target, reduction=reduction, ignore_index=ignore_index), [logits])
    # an ignored position gets no gradient at all
    z = Tensor(logits.copy(), requires_grad=True)
    softmax_cross_entropy(z, target, reduction="sum", ignore_index=ignore_index).backward()
    if ignore_index is not None:
        assert np.all(z.grad[target == ignore_index] == 0)


def test_softmax_ce_ignore_index_extremes():
    z = Tensor(np.array([[1e4, -1e4, 0.0], [0.5, 0.2, -0.1]]), requires_grad=True)
    loss = softmax_cross_entropy(z, np.array([1, -100]), reduction="mean", ignore_index=-100)  # -log p = 2e4, one position
    loss.backward()
    np.testing.assert_allclose(loss.item(), 2e4)
    np.testing.assert_array_equal(z.grad[1], 0)
    everything_ignored = Tensor(np.zeros((2, 3)), requires_grad=True)
    loss = softmax_cross_entropy(everything_ignored, np.array([-100, -100]), reduction="mean", ignore_index=-100)
    loss.backward()
    assert loss.item() == 0.0 and np.all(everything_ignored.grad == 0)  # PyTorch: NaN


def test_softmax_ce_matches_torch_with_ignore_index():
    torch = pytest.importorskip("torch", reason="the cross-check against PyTorch needs torch")
    rng = np.random.default_rng(11)
    logits = rng.standard_normal((3, 5, 7))
    target = rng.integers(0, 7, (3, 5))
    target[rng.random((3, 5)) < 0.3] = -100
    for reduction in ("none", "sum", "mean"):
        z = Tensor(logits.copy(), requires_grad=True)
        ours = softmax_cross_entropy(z, target, reduction=reduction, ignore_index=-100)
        ours.backward(np.ones(ours.shape))
        zt = torch.tensor(logits, requires_grad=True)
        # torch wants the class axis second: (N, K, L)
        theirs = torch.nn.functional.cross_entropy(zt.permute(0, 2, 1), torch.tensor(target), ignore_index=-100,
                                                   reduction=reduction)
        theirs.backward(torch.ones_like(theirs))
        np.testing.assert_allclose(ours.data, theirs.detach().numpy(), rtol=1e-12, atol=1e-15)
        np.testing.assert_allclose(z.grad, zt.grad.numpy(), rtol=1e-12, atol=1e-15)


def test_softmax_ce_soft_targets_over_positions():
    rng = np.random.default_rng(12)
    logits, target = rng.standard_normal((2, 3, 4)), rng.dirichlet(np.ones(4), (2, 3))
    gradcheck(lambda z, t: softmax_cross_entropy(z, t, reduction="mean"), [logits, target])
    flat = softmax_cross_entropy(logits.reshape(6, 4), target.reshape(6, 4), reduction="none").data
    np.testing.assert_allclose(softmax_cross_entropy(logits, target, reduction="none").data, flat.reshape(2, 3), rtol=1e-14)


# ---- GAN losses --------------------------------------------------------------------------------
@FAST
@given(st.integers(1, 6), st.integers(1, 6), st.integers(0, 2**31 - 1))
def test_gan_losses_gradcheck_and_values(n_real, n_fake, seed):
    rng = np.random.default_rng(seed)
    real, fake = rng.standard_normal(n_real) * 3, rng.standard_normal(n_fake) * 3
    gradcheck(gan_discriminator_loss, [real, fake])
    gradcheck(lambda f: gan_generator_loss(f, "non_saturating"), [fake])
    gradcheck(lambda f: gan_generator_loss(f, "minimax"), [fake])
    d_loss = -np.log(sigmoid(real)).mean() - np.log(1 - sigmoid(fake)).mean()
    np.testing.assert_allclose(gan_discriminator_loss(Tensor(real), Tensor(fake)).item(), d_loss, rtol=1e-10)
    np.testing.assert_allclose(gan_generator_loss(Tensor(fake)).item(), -np.log(sigmoid(fake)).mean(), rtol=1e-10)
    np.testing.assert_allclose(gan_generator_loss(Tensor(fake), "minimax").item(), np.log(1 - sigmoid(fake)).mean(), rtol=1e-10)


def test_gan_losses_finite_at_saturation_and_errors():
    real = Tensor(np.array([-1e4, 1e4], np.float32), requires_grad=True)
    fake = Tensor(np.array([1e4, -1e4], np.float32), requires_grad=True)
    loss = gan_discriminator_loss(real, fake) + gan_generator_loss(fake)
    loss.backward()
    assert np.isfinite(loss.item()) and loss.dtype == np.float32
    assert np.all(np.isfinite(real.grad)) and np.all(np.isfinite(fake.grad))
    with pytest.raises(ValueError, match="gan_generator_loss: kind must be"):
        gan_generator_loss(fake, "wasserstein")


# ---- reductions and kernels --------------------------------------------------------------------
def test_reduce_loss():
    loss = Tensor(np.arange(6.0).reshape(2, 3))
    assert reduce_loss(loss, "batch_sum").item() == 7.5
    assert reduce_loss(loss, "none") is loss
    with pytest.raises(ValueError, match="batch_sum' needs a batch axis"):
        reduce_loss(Tensor(np.float64(1.0)), "batch_sum")


def test_kernels_registered_and_float32_preserving():
    names = ["sigmoid_bce_with_logits", "mse_loss", "gaussian_nll", "softmax_cross_entropy"]
    for name in names:
        assert "numpy" in registered_kernels()[f"{name}_forward"]
        assert "numpy" in registered_kernels()[f"{name}_backward"]
    rng = np.random.default_rng(5)
    a, b, c = (rng.standard_normal((3, 4)).astype(np.float32) for _ in range(3))
    ta, tb, tc = (Tensor(v, requires_grad=True) for v in (a, b, c))
    for loss in [sigmoid_bce_with_logits(ta, tb), mse_loss(ta, tb), gaussian_nll(tb, ta, tc)]:
        assert loss.dtype == np.float32
        loss.backward()
    assert all(t.grad.dtype == np.float32 for t in (ta, tb, tc))


# ---- 0 * inf: finite true values that a naive formula turns into NaN ---------------------------
@pytest.mark.parametrize("dtype, logvar", [(np.float32, -200.0), (np.float64, -710.0), (np.float64, -1000.0)])
def test_gaussian_nll_of_the_mean_itself_is_finite_at_tiny_variance(dtype, logvar):
    """x = mean: the residual is exactly 0, so 0 * e^-logvar = 0 even where e^-logvar overflows."""
    x = Tensor(np.array([0.3, -2.0], dtype), requires_grad=True)
    mean = Tensor(x.data.copy(), requires_grad=True)
    v = Tensor(np.full(2, logvar, dtype), requires_grad=True)
    loss = gaussian_nll(mean, x, v, reduction="sum")
    loss.backward()
    np.testing.assert_allclose(loss.item(), 2 * 0.5 * (np.log(2 * np.pi) + logvar), rtol=1e-6)
    np.testing.assert_array_equal(v.grad, [0.5, 0.5])  # d/dlogvar = 0.5 (1 - 0)
    np.testing.assert_array_equal(x.grad, [0, 0])
    np.testing.assert_array_equal(mean.grad, [0, 0])


@pytest.mark.filterwarnings("ignore:overflow encountered")
def test_softmax_ce_zero_target_times_minus_inf_log_prob_is_zero():
    """A soft target's 0 entries contribute 0 even where log softmax is -inf (0 log 0 = 0)."""
    z = Tensor(np.array([[3e38, -3e38, 0.0]], np.float32), requires_grad=True)
    loss = softmax_cross_entropy(z, np.array([[1.0, 0.0, 0.0]], np.float32), reduction="sum")
    loss.backward()
    assert loss.item() == 0.0
    np.testing.assert_array_equal(z.grad, [[0.0, 0.0, 0.0]])


def test_gan_losses_mean_does_not_overflow_in_float32():
    """softplus(1e38) = 1e38 is finite; the float32 sum of four of them (4e38) is not, their mean is."""
    real = Tensor(np.full(4, -1e38, np.float32), requires_grad=True)
    fake = Tensor(np.full(4, 1e38, np.float32), requires_grad=True)
    d_loss = gan_discriminator_loss(real, fake)
    d_loss.backward()
    np.testing.assert_allclose(d_loss.item(), 2e38, rtol=1e-6)
    np.testing.assert_allclose(real.grad, -0.25) and np.testing.assert_allclose(fake.grad, 0.25)
    np.testing.assert_allclose(gan_generator_loss(Tensor(-fake.data)).item(), 1e38, rtol=1e-6)
    np.testing.assert_allclose(gan_generator_loss(fake, "minimax").item(), -1e38, rtol=1e-6)
    np.testing.assert_allclose(sigmoid_bce_with_logits(Tensor(np.full((4, 1), 1e38, np.float32)), np.zeros((4, 1))).item(),
                               1e38, rtol=1e-6)


# ---- the one convention (ops/loss_helpers.py) ----------------------------------------------------
def test_every_loss_and_divergence_takes_prediction_first_and_defaults_to_batch_sum():
    import inspect

    from scratchgen.ops import divergences, losses

    expected = {
        losses.sigmoid_bce_with_logits: ["logits", "target"],
        losses.mse_loss: ["prediction", "target"],
        losses.gaussian_nll: ["mean", "target", "logvar"],
        losses.softmax_cross_entropy: ["logits", "target"],
        losses.gan_discriminator_loss: ["real_logits", "fake_logits"],
        losses.gan_generator_loss: ["fake_logits", "kind"],
        divergences.gaussian_kl_standard: ["mu", "logvar"],
        divergences.gaussian_kl: ["mu_q", "logvar_q", "mu_p", "logvar_p"],
        divergences.bernoulli_kl: ["rho_hat", "rho"],
        divergences.l1_penalty: ["x"],
        divergences.contractive_penalty: ["x", "weight", "bias"],
    }
    for fn, leading in expected.items():
        parameters = inspect.signature(fn).parameters
        assert list(parameters)[: len(leading)] == leading, fn.__name__
        assert parameters["reduction"].default == "batch_sum", fn.__name__
    # ... and the table in the module docstring lists every one of them
    from scratchgen.ops import loss_helpers

    for fn in expected:
        assert f"\n    {fn.__name__} " in loss_helpers.__doc__, fn.__name__


def test_gan_losses_take_a_reduction():
    rng = np.random.default_rng(7)
    real, fake = Tensor(rng.standard_normal((5, 1))), Tensor(rng.standard_normal((3, 1)))
    softplus = lambda x: np.logaddexp(0, x)  # noqa: E731
    np.testing.assert_allclose(gan_discriminator_loss(real, fake).item(),
                               softplus(-real.data).mean() + softplus(fake.data).mean(), rtol=1e-12)
    np.testing.assert_allclose(gan_discriminator_loss(real, fake, reduction="sum").item(),
                               softplus(-real.data).sum() + softplus(fake.data).sum(), rtol=1e-12)
    np.testing.assert_allclose(gan_generator_loss(fake, reduction="sum").item(), softplus(-fake.data).sum(), rtol=1e-12)
    with pytest.raises(ValueError, match="gan_discriminator_loss: reduction 'none' has no single shape"):
        gan_discriminator_loss(real, fake, reduction="none")
    with pytest.raises(ValueError, match="gan_generator_loss: reduction must be one of"):
        gan_generator_loss(fake, reduction="avg")
