"""Divergences and regularisers: Gaussian KLs, sparsity KL, L1, reparameterisation, contractive penalty.

Formulas (v = logvar; g the incoming gradient; everything elementwise unless summed):
    KL(N(mu, e^v) || N(0, 1))   = 0.5 (mu^2 + e^v - v - 1) = 0.5 (mu^2 + expm1(v) - v)
                                   d/dmu = mu,  d/dv = 0.5 expm1(v)
    KL(N(mu_q, e^vq) || N(mu_p, e^vp)), with d = vq - vp and r = (mu_q - mu_p) e^-vp:
                                 = 0.5 (expm1(d) - d + (mu_q - mu_p)^2 e^-vp)
                                   d/dmu_q = r = -d/dmu_p,  d/dvq = 0.5 expm1(d),
                                   d/dvp = -0.5 (expm1(d) + (mu_q - mu_p) r)
    KL(Bern(rho) || Bern(q))     = rho log(rho/q) + (1 - rho) log((1 - rho)/(1 - q))
                                   d/dq = (q - rho) / (q (1 - q))
    reparameterisation           z = mu + exp(0.5 v) eps;  dz/dmu = 1, dz/dv = 0.5 exp(0.5 v) eps
    L1                           sum |x|  (subgradient 0 at x = 0)

Why ``expm1``: near v = 0, ``exp(v) - v - 1`` in float32 is off by up to ~2e-7 and is negative
for about 5% of v in [-1e-3, 1e-3]; ``expm1(v) - v`` is never negative (expm1(v) >= v survives
rounding) and is off by ~1e-10 there. The Gaussian KL is exactly 0 for identical Gaussians.

Why ``times_exp``: an exactly-zero factor times an exp that overflows is 0, not 0 * inf = NaN.
Two equal Gaussians with logvar = -200 have KL 0 although e^200 overflows float32; zero noise
under logvar = 200 reparameterises to mu exactly. The contractive penalty's saturated units
(slope h (1 - h) = 0) likewise add 0 even where their squared row norm overflows (W ~ 1e20).

The contractive penalty (Rifai et al. 2011) is the one op with a non-elementwise backward; its
class docstring derives it. Reductions and the broadcasting guard are those of loss_helpers.py.
"""
from __future__ import annotations

from ..backend import get_array_module, kernel, register_kernel
from ..function import Function
from ..gradcheck import register_case
from ..tensor import Tensor
from .activations import sigmoid, sigmoid_forward
from .arithmetic import abs as abs_op
from .linalg import check_linear_shapes, linear
from .loss_helpers import broadcast_shape, check_reduction, float_dtype, float_inputs, reduce_loss, times_exp

__all__ = [
    "gaussian_kl_standard",
    "gaussian_kl",
    "bernoulli_kl",
    "l1_penalty",
    "reparameterize",
    "contractive_penalty",
    "contractive_penalty_codes",
    "BERNOULLI_KL_EPS",
]

# rho_hat is clipped into [eps, 1 - eps] before the logs. 1e-6 keeps 1 - eps distinct from 1 in
# float32 (spacing 6e-8 near 1) and bounds the penalty by about 14 nats per unit.
BERNOULLI_KL_EPS = 1e-6


# ---- NumPy reference kernels -----------------------------------------------------------------
@register_kernel("gaussian_kl_standard_forward")
def gaussian_kl_standard_forward(mu, logvar):
    """Elementwise KL(N(mu, exp(logvar)) || N(0, 1)) = 0.5 (mu^2 + expm1(logvar) - logvar).

    ``mu``, ``logvar``: float arrays that broadcast, typically (N, latent). Returns the broadcast shape.
    """
    xp = get_array_module(mu)
    return 0.5 * (mu * mu + xp.expm1(logvar) - logvar)


@register_kernel("gaussian_kl_standard_backward")
def gaussian_kl_standard_backward(grad, mu, logvar):
    """Returns ``(grad_mu, grad_logvar) = (grad mu, 0.5 grad expm1(logvar))``, broadcast shape."""
    xp = get_array_module(mu)
    return grad * mu, 0.5 * grad * xp.expm1(logvar)


@register_kernel("gaussian_kl_forward")
def gaussian_kl_forward(mu_q, logvar_q, mu_p, logvar_p):
    """Elementwise KL(N(mu_q, exp(logvar_q)) || N(mu_p, exp(logvar_p))), four broadcastable arrays:
        0.5 (expm1(d) - d + (mu_q - mu_p)^2 exp(-logvar_p)),   d = logvar_q - logvar_p.
    Returns the broadcast shape."""
    xp = get_array_module(mu_q)
    d = logvar_q - logvar_p
    diff = mu_q - mu_p
    # times_exp: equal means add exactly 0, even where e^-logvar_p overflows (logvar_p = -200).
    return 0.5 * (xp.expm1(d) - d + times_exp(diff * diff, -logvar_p))


@register_kernel("gaussian_kl_backward")
def gaussian_kl_backward(grad, mu_q, logvar_q, mu_p, logvar_p):
    """Returns ``(grad_mu_q, grad_logvar_q, grad_logvar_p)``, each of the broadcast shape:
        grad_mu_q     = grad (mu_q - mu_p) exp(-logvar_p)          (grad_mu_p = -grad_mu_q)
        grad_logvar_q = 0.5 grad expm1(logvar_q - logvar_p)
        grad_logvar_p = -0.5 grad (expm1(logvar_q - logvar_p) + (mu_q - mu_p)^2 exp(-logvar_p))
    """
    xp = get_array_module(mu_q)
    ratio_minus_one = xp.expm1(logvar_q - logvar_p)
    diff = mu_q - mu_p
    scaled = times_exp(diff, -logvar_p)  # (mu_q - mu_p) e^-logvar_p, 0 for equal means
    return grad * scaled, 0.5 * grad * ratio_minus_one, -0.5 * grad * (ratio_minus_one + diff * scaled)


def _xlogx(p, xp):
    """p log p with 0 log 0 = 0 (for the constant sparsity target rho, which may be 0 or 1)."""
    return xp.where(p > 0, p * xp.log(xp.where(p > 0, p, 1)), 0)


@register_kernel("bernoulli_kl_forward")
def bernoulli_kl_forward(rho, rho_hat, eps):
    """Elementwise KL(Bernoulli(rho) || Bernoulli(q)), q = clip(rho_hat, eps, 1 - eps).

    ``rho``: constant target in [0, 1] (array or 0-d, broadcastable); ``rho_hat``: (H,) mean
    activations (any shape); ``eps``: Python float. Returns the broadcast shape, computed as
    (cross-entropy) - (entropy): -rho log q - (1 - rho) log1p(-q) + rho log rho + (1 - rho) log(1 - rho).
    """
    xp = get_array_module(rho_hat)
    q = xp.clip(rho_hat, eps, 1 - eps)
    return _xlogx(rho, xp) + _xlogx(1 - rho, xp) - rho * xp.log(q) - (1 - rho) * xp.log1p(-q)


@register_kernel("bernoulli_kl_backward")
def bernoulli_kl_backward(grad, rho, rho_hat, eps):
    """Gradient with respect to rho_hat: ``grad (q - rho) / (q (1 - q))`` where rho_hat lies in
    [eps, 1 - eps], 0 where it was clipped. Broadcast shape."""
    xp = get_array_module(rho_hat)
    inside = (rho_hat >= eps) & (rho_hat <= 1 - eps)
    q = xp.clip(rho_hat, eps, 1 - eps)
    return grad * inside * (q - rho) / (q * (1 - q))


@register_kernel("reparameterize_forward")
def reparameterize_forward(mu, logvar, eps):
    """z = mu + exp(0.5 logvar) eps (the standard deviation, not the variance, scales the noise).

    ``mu``, ``logvar``: (N, latent); ``eps``: standard normal noise broadcastable with them, e.g.
    (N, latent) or (S, N, latent) for S samples per example. Returns the broadcast shape.
    """
    return mu + times_exp(eps, 0.5 * logvar)  # zero noise gives mu exactly, even where e^(logvar/2) overflows


@register_kernel("reparameterize_backward")
def reparameterize_backward(grad, logvar, eps):
    """Gradient with respect to logvar: ``0.5 grad exp(0.5 logvar) eps``, broadcast shape.
    (The gradient with respect to mu is grad itself; std is recomputed rather than stored.)"""
    # (0.5 grad e^(v/2)) eps, the factor zeroed where eps is: 0 where grad or eps is 0, never 0 * inf.
    return times_exp(0.5 * grad * (eps != 0), 0.5 * logvar) * eps


@register_kernel("contractive_penalty_forward")
def contractive_penalty_forward(x, weight, bias):
    """Squared Frobenius norm of the encoder Jacobian dh/dx, per example, for h = sigmoid(x W^T + b).

    ``x``: (N, V), ``weight``: (H, V), ``bias``: (H,). Returns ``(penalty, hidden)``:
    penalty (N,) = sum_j (h_nj (1 - h_nj))^2 sum_i W_ji^2, and hidden (N, H) for the backward.
    One (N, V) x (V, H) GEMM plus O(N H + H V) elementwise work.
    """
    xp = get_array_module(x)
    hidden = sigmoid_forward(x @ weight.T + bias)
    slope = hidden * (1 - hidden)
    slope_sq = slope * slope
    row_norms = (weight * weight).sum(axis=1)
    # A saturated unit (h = 0 or 1 exactly, slope 0) adds exactly 0, even where its row norm
    # overflows (W ~ 1e20 in float32): 0 * inf would be NaN. So the sum is written out rather
    # than as the GEMV slope_sq @ row_norms, whose 0 * inf we could not intercept.
    return (slope_sq * xp.where(slope_sq == 0, 0, row_norms)).sum(axis=1), hidden


@register_kernel("contractive_penalty_backward")
def contractive_penalty_backward(grad, x, weight, hidden, needs=(True, True, True)):
    """Gradients ``(grad_x (N, V), grad_weight (H, V), grad_bias (H,))`` of sum_n grad_n penalty_n.

    ``grad``: (N,); ``x``, ``weight`` as in the forward; ``hidden``: (N, H) from the forward;
    ``needs``: which of the three to compute (None for the others; x is usually data, and
    skipping its gradient saves one of the two GEMMs). Formulas: see ContractivePenalty.
    """
    xp = get_array_module(x)
    slope = hidden * (1 - hidden)
    slope_sq = slope * slope
    row_norms = (weight * weight).sum(axis=1)
    # dL/da_nj for the pre-activation a = x W^T + b: 2 g_n s_nj^2 (1 - 2 h_nj) r_j, and exactly 0
    # for a saturated unit (s = 0) even where r_j overflows (see the forward).
    grad_pre = (2 * grad)[:, None] * slope_sq * (1 - 2 * hidden) * xp.where(slope_sq == 0, 0, row_norms)
    grad_x = grad_pre @ weight if needs[0] else None
    grad_weight = grad_pre.T @ x + 2 * (grad @ slope_sq)[:, None] * weight if needs[1] else None
    grad_bias = grad_pre.sum(axis=0) if needs[2] else None
    return grad_x, grad_weight, grad_bias


@register_kernel("contractive_penalty_codes_forward")
def contractive_penalty_codes_forward(hidden, weight):
    """The contractive penalty from the codes the encoder already computed: no GEMM.

    ``hidden``: (N, H) = sigmoid(x W^T + b); ``weight``: (H, V). Returns ``(penalty, row_norms)``:
    penalty (N,) = sum_j (h_nj (1 - h_nj))^2 r_j with r_j = sum_i W_ji^2, and r (H,) for the backward.
    The same numbers as ``contractive_penalty_forward`` when hidden is its hidden.
    """
    xp = get_array_module(hidden)
    slope = hidden * (1 - hidden)
    slope_sq = slope * slope
    row_norms = (weight * weight).sum(axis=1)
    return (slope_sq * xp.where(slope_sq == 0, 0, row_norms)).sum(axis=1), row_norms


@register_kernel("contractive_penalty_codes_backward")
def contractive_penalty_codes_backward(grad, hidden, weight, row_norms, needs=(True, True)):
    """Gradients ``(grad_hidden (N, H), grad_weight (H, V))`` of sum_n grad_n penalty_n, with h and W
    independent inputs (the encoder's own backward then carries grad_hidden on to W, b and x):

        dP/dh_nj = 2 g_n s_nj (1 - 2 h_nj) r_j      (s = h (1 - h), ds/dh = 1 - 2h)
        dP/dW_ji = 2 (sum_n g_n s_nj^2) W_ji        (through r only)

    A saturated unit (s = 0) gets exactly 0, even where its row norm overflowed (see the forward)."""
    xp = get_array_module(hidden)
    slope = hidden * (1 - hidden)
    slope_sq = slope * slope
    grad_hidden = grad_weight = None
    if needs[0]:
        grad_hidden = (2 * grad)[:, None] * slope * (1 - 2 * hidden) * xp.where(slope_sq == 0, 0, row_norms)
    if needs[1]:
        grad_weight = 2 * (grad @ slope_sq)[:, None] * weight
    return grad_hidden, grad_weight


# ---- ops -------------------------------------------------------------------------------------
class GaussianKLStandard(Function):
    op_name = "gaussian_kl_standard"

    @staticmethod
    def forward(ctx, mu, logvar):
        ctx.save_for_backward(mu, logvar)
        return kernel("gaussian_kl_standard_forward")(mu, logvar)

    @staticmethod
    def backward(ctx, grad):
        return kernel("gaussian_kl_standard_backward")(grad, *ctx.saved_arrays)


class GaussianKL(Function):
    op_name = "gaussian_kl"

    @staticmethod
    def forward(ctx, mu_q, logvar_q, mu_p, logvar_p):
        ctx.save_for_backward(mu_q, logvar_q, mu_p, logvar_p)
        return kernel("gaussian_kl_forward")(mu_q, logvar_q, mu_p, logvar_p)

    @staticmethod
    def backward(ctx, grad):
        grad_mu_q, grad_logvar_q, grad_logvar_p = kernel("gaussian_kl_backward")(grad, *ctx.saved_arrays)
        grad_mu_p = -grad_mu_q if ctx.needs_input_grad[2] else None
        return grad_mu_q, grad_logvar_q, grad_mu_p, grad_logvar_p


class BernoulliKL(Function):
    op_name = "bernoulli_kl"

    @staticmethod
    def forward(ctx, rho_hat, rho, eps):
        ctx.save_for_backward(rho_hat, rho)
        ctx.eps = eps
        return kernel("bernoulli_kl_forward")(rho, rho_hat, eps)

    @staticmethod
    def backward(ctx, grad):
        rho_hat, rho = ctx.saved_arrays
        return kernel("bernoulli_kl_backward")(grad, rho, rho_hat, ctx.eps), None


class Reparameterize(Function):
    @staticmethod
    def forward(ctx, mu, logvar, eps):
        ctx.save_for_backward(logvar, eps)
        return kernel("reparameterize_forward")(mu, logvar, eps)

    @staticmethod
    def backward(ctx, grad):
        logvar, eps = ctx.saved_arrays
        grad_logvar = kernel("reparameterize_backward")(grad, logvar, eps) if ctx.needs_input_grad[1] else None
        # eps is noise and normally a constant; if it is a Tensor that requires grad, dz/deps = std.
        grad_eps = times_exp(grad, 0.5 * logvar) if ctx.needs_input_grad[2] else None
        return grad, grad_logvar, grad_eps


class ContractivePenalty(Function):
    """Per-example ||dh/dx||_F^2 for a sigmoid encoder h = sigmoid(a), a = x W^T + b.

    Forward. The Jacobian of one example is J_ji = dh_j/dx_i = s_j W_ji with s = h (1 - h), so
        P_n = sum_j s_nj^2 r_j,    r_j = sum_i W_ji^2,
    which needs h (one GEMM) and the row norms of W; the (N, H, V) Jacobian is never formed.

    Backward, for L = sum_n g_n P_n. P depends on W twice: through a (hence s) and through r.
    With ds/da = s (1 - 2h):
        dL/da_nj = D_nj = 2 g_n s_nj^2 (1 - 2 h_nj) r_j                   (N, H)
        dL/dx    = D W                                                     (N, V), a GEMM
        dL/db    = sum_n D_n                                               (H,)
        dL/dW    = D^T x  +  2 (sum_n g_n s_nj^2) W_ji                     (H, V), a GEMM
    where the last term is the direct dependence dr_j/dW_ji = 2 W_ji.
    """

    op_name = "contractive_penalty"

    @staticmethod
    def forward(ctx, x, weight, bias):
        penalty, hidden = kernel("contractive_penalty_forward")(x, weight, bias)
        ctx.save_for_backward(x, weight, hidden)
        return penalty

    @staticmethod
    def backward(ctx, grad):
        x, weight, hidden = ctx.saved_arrays
        return kernel("contractive_penalty_backward")(grad, x, weight, hidden, needs=ctx.needs_input_grad)


class ContractivePenaltyCodes(Function):
    """Per-example ||dh/dx||_F^2 of a sigmoid encoder from its codes h and its weight W.

    ``ContractivePenalty`` recomputes h = sigmoid(x W^T + b) (a GEMM) and in its backward forms
    D^T x (a second GEMM) for W's gradient. A model that has just computed h for its decoder can
    hand h itself to this op instead: the penalty's gradient then reaches W, b and x through the
    encoder's own backward, where it is added to the reconstruction's before the encoder's one
    weight-gradient GEMM. Same values and gradients, two GEMMs less per step.
    """

    op_name = "contractive_penalty"

    @staticmethod
    def forward(ctx, hidden, weight):
        penalty, row_norms = kernel("contractive_penalty_codes_forward")(hidden, weight)
        ctx.save_for_backward(hidden, weight, row_norms)
        return penalty

    @staticmethod
    def backward(ctx, grad):
        return kernel("contractive_penalty_codes_backward")(grad, *ctx.saved_arrays, needs=ctx.needs_input_grad)


# ---- public functions ------------------------------------------------------------------------
def gaussian_kl_standard(mu, logvar, reduction: str = "batch_sum") -> Tensor:
    """KL(N(mu, diag exp(logvar)) || N(0, I)) = 0.5 sum(mu^2 + exp(logvar) - logvar - 1).

    ``mu``, ``logvar``: (N, latent), broadcastable. Default "batch_sum": summed over the latent
    dimensions, averaged over the batch (the VAE's KL term in nats per example).
    """
    check_reduction("gaussian_kl_standard", reduction)
    dtype = float_dtype(mu, logvar)
    mu, logvar = float_inputs("gaussian_kl_standard", dtype, mu=mu, logvar=logvar)
    broadcast_shape("gaussian_kl_standard", mu=mu, logvar=logvar)
    return reduce_loss(GaussianKLStandard.apply(mu, logvar), reduction, "gaussian_kl_standard")


def gaussian_kl(mu_q, logvar_q, mu_p, logvar_p, reduction: str = "batch_sum") -> Tensor:
    """KL(q || p) between diagonal Gaussians q = N(mu_q, exp(logvar_q)), p = N(mu_p, exp(logvar_p)):
        0.5 sum(logvar_p - logvar_q + (exp(logvar_q) + (mu_q - mu_p)^2) / exp(logvar_p) - 1).

    All four inputs broadcast (e.g. a learned prior (latent,) against posteriors (N, latent))
    and all four are differentiable. Exactly 0 when q and p are the same Gaussian.
    """
    check_reduction("gaussian_kl", reduction)
    dtype = float_dtype(mu_q, logvar_q, mu_p, logvar_p)
    mu_q, logvar_q, mu_p, logvar_p = float_inputs("gaussian_kl", dtype, mu_q=mu_q, logvar_q=logvar_q, mu_p=mu_p, logvar_p=logvar_p)
    broadcast_shape("gaussian_kl", mu_q=mu_q, logvar_q=logvar_q, mu_p=mu_p, logvar_p=logvar_p)
    return reduce_loss(GaussianKL.apply(mu_q, logvar_q, mu_p, logvar_p), reduction, "gaussian_kl")


def bernoulli_kl(rho_hat, rho, reduction: str = "batch_sum", eps: float = BERNOULLI_KL_EPS) -> Tensor:
    """Sparsity penalty KL(Bernoulli(rho) || Bernoulli(rho_hat_j)) per hidden unit j.

    The losses' order: the prediction ``rho_hat`` first, then the target ``rho``.
    ``rho_hat``: (H,) the mean activation of each hidden unit over the batch, e.g.
    ``h.mean(axis=0)``. ``rho``: the target mean activation, a constant in [0, 1] (a number, or
    an array broadcastable to rho_hat). rho_hat is clipped into [eps, 1 - eps] before the logs
    (eps defaults to BERNOULLI_KL_EPS = 1e-6); the gradient is exact inside that range and 0
    where it clipped.

    Reduction: rho_hat (H,) has no batch axis, so the default "batch_sum" is the *mean* over
    the H units; pass reduction="sum" for the classic penalty sum_j KL(rho || rho_hat_j)
    (what SparseAutoencoder does).
    """
    check_reduction("bernoulli_kl", reduction)
    if isinstance(rho, Tensor):
        if rho.requires_grad:
            raise TypeError("bernoulli_kl: rho is the constant sparsity target; pass a number or an array, not a Tensor "
                            "that requires grad (the order is bernoulli_kl(rho_hat, rho): prediction first)")
        rho = rho.data
    if not 0 < eps < 0.5:
        raise ValueError(f"bernoulli_kl: eps must lie in (0, 0.5), got {eps}")
    dtype = float_dtype(rho_hat, rho)
    rho_hat, rho = float_inputs("bernoulli_kl", dtype, rho_hat=rho_hat, rho=rho)
    if bool(((rho < 0) | (rho > 1)).any()):
        raise ValueError(f"bernoulli_kl: rho must lie in [0, 1], got values from {float(rho.min())} to {float(rho.max())}")
    broadcast_shape("bernoulli_kl", rho_hat=rho_hat, rho=rho)
    return reduce_loss(BernoulliKL.apply(rho_hat, rho, eps=float(eps)), reduction, "bernoulli_kl")


def l1_penalty(x: Tensor, reduction: str = "batch_sum") -> Tensor:
    """|x| per element, reduced: by default ("batch_sum") summed over the features and averaged
    over the batch; "sum" for sum |x|, or "mean" / "none". The gradient at exactly 0 is 0 (a
    subgradient)."""
    check_reduction("l1_penalty", reduction)
    (x,) = float_inputs("l1_penalty", float_dtype(x), x=x)
    return reduce_loss(abs_op(x), reduction, "l1_penalty")


def reparameterize(mu, logvar, eps) -> Tensor:
    """z = mu + exp(0.5 logvar) * eps, one fused op.

    ``mu``, ``logvar``: (N, latent). ``eps``: standard normal noise that the caller draws
    (``rng.standard_normal(mu.shape)``), so the op is deterministic and gradcheckable; it may have
    extra leading axes for several samples per example, e.g. (S, N, latent).
    """
    dtype = float_dtype(mu, logvar, eps)
    mu, logvar, eps = float_inputs("reparameterize", dtype, mu=mu, logvar=logvar, eps=eps)
    broadcast_shape("reparameterize", mu=mu, logvar=logvar, eps=eps)
    return Reparameterize.apply(mu, logvar, eps)


def contractive_penalty(x, weight, bias, reduction: str = "batch_sum") -> Tensor:
    """||dh/dx||_F^2 of the sigmoid encoder h = sigmoid(x W^T + b), per example, in closed form:
        sum_j (h_j (1 - h_j))^2 sum_i W_ji^2.

    ``x``: (N, V), ``weight``: (H, V), ``bias``: (H,). Cost O(N H V) (one GEMM forward, two
    backward); no (N, H, V) Jacobian is built. All three inputs are differentiable (see
    ContractivePenalty for the backward). Default "batch_sum" = mean over the batch of the
    per-example norm; "none" gives it as (N,).
    """
    check_reduction("contractive_penalty", reduction)
    dtype = float_dtype(weight, x, bias)
    x, weight, bias = float_inputs("contractive_penalty", dtype, x=x, weight=weight, bias=bias)
    check_linear_shapes("contractive_penalty", x, weight, bias, ("hidden", "visible"), ("batch", "visible"))
    return reduce_loss(ContractivePenalty.apply(x, weight, bias), reduction, "contractive_penalty")


def contractive_penalty_codes(hidden, weight, reduction: str = "batch_sum") -> Tensor:
    """``contractive_penalty(x, weight, bias)`` from codes already computed: hidden = sigmoid(x W^T + b).

    ``hidden``: (N, H), the encoder's output (a Tensor in the graph, so that the penalty's
    gradient flows back through the encoder); ``weight``: (H, V). Same value as
    ``contractive_penalty`` and, through the encoder, the same gradients, without its two GEMMs
    (``ContractivePenaltyCodes``). Values of hidden must be the sigmoid of the pre-activations.
    """
    check_reduction("contractive_penalty_codes", reduction)
    dtype = float_dtype(weight, hidden)
    hidden, weight = float_inputs("contractive_penalty_codes", dtype, hidden=hidden, weight=weight)
    if weight.ndim != 2 or hidden.ndim != 2 or hidden.shape[1] != weight.shape[0]:
        raise ValueError(f"contractive_penalty_codes: need hidden (N, H) and weight (H, V), got shapes "
                         f"{tuple(hidden.shape)} and {tuple(weight.shape)}")
    return reduce_loss(ContractivePenaltyCodes.apply(hidden, weight), reduction, "contractive_penalty_codes")


# ---- gradcheck cases (python -m scratchgen.gradcheck) ------------------------------------------
register_case("gaussian_kl_standard")(lambda rng: (lambda m, v: gaussian_kl_standard(m, v, reduction="none"), [rng.standard_normal((3, 4)), rng.standard_normal((3, 4))]))
register_case("gaussian_kl")(
    lambda rng: (
        lambda mq, vq, mp, vp: gaussian_kl(mq, vq, mp, vp, reduction="none"),
        [rng.standard_normal((3, 4)), rng.standard_normal((3, 4)), rng.standard_normal(4), rng.standard_normal((3, 1))],
    )
)
register_case("bernoulli_kl")(lambda rng: (lambda q: bernoulli_kl(q, 0.1, reduction="none"), [rng.uniform(0.05, 0.95, 6)]))
register_case("l1_penalty")(lambda rng: (lambda x: l1_penalty(x, reduction="batch_sum"), [rng.uniform(0.1, 1, (3, 4)) * rng.choice([-1, 1], (3, 4))]))
register_case("reparameterize")(
    lambda rng: (lambda m, v, e=rng.standard_normal((2, 3, 4)): reparameterize(m, v, e), [rng.standard_normal((3, 4)), rng.standard_normal((3, 4))])
)
register_case("contractive_penalty")(
    lambda rng: (lambda x, w, b: contractive_penalty(x, w, b, reduction="none"), [rng.standard_normal((3, 4)), rng.standard_normal((5, 4)), rng.standard_normal(5)])
)
register_case("contractive_penalty_codes")(
    lambda rng: (lambda x, w, b: contractive_penalty_codes(sigmoid(linear(x, w, b)), w, reduction="none"),
                 [rng.standard_normal((3, 4)), rng.standard_normal((5, 4)), rng.standard_normal(5)])
)
