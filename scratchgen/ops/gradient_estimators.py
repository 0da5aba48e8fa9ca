"""Two estimators of the gradient of an expectation under a Gaussian: score function and reparameterisation.

The problem. q(z) = N(mu, diag exp(logvar)) over R^L, f: R^L -> R, and we want

    g = grad_{mu, logvar} E_q[f(z)].

The expectation has no closed form, so g is estimated from samples z_1..z_S ~ q. A VAE's
encoder gets exactly this gradient (f(z) = log p(x | z)), then passes it down by the chain rule.

Score function (the log-derivative trick; REINFORCE, Williams 1992; black-box variational
inference, Ranganath et al. 2014). Differentiate the density, not f:

    grad E_q[f] = int f(z) grad q(z) dz = int f(z) q(z) grad log q(z) dz = E_q[f(z) grad log q(z)]

and for the diagonal Gaussian (v = logvar, z = mu + e^{v/2} eps), per coordinate j,

    d log q / d mu_j     = (z_j - mu_j) e^{-v_j}            = eps_j e^{-v_j/2}
    d log q / d logvar_j = 0.5 ((z_j - mu_j)^2 e^{-v_j} - 1) = 0.5 (eps_j^2 - 1).

One sample gives (f(z) - b) grad log q(z). f is only evaluated, never differentiated (it may be
a black box, discrete, or not differentiable). Any *baseline* b that does not depend on z keeps
the estimator unbiased, because E_q[grad log q] = grad int q = grad 1 = 0; a good b (close to
E_q[f]) removes most of the variance that the size of f itself causes: a control variate.

Reparameterisation (Kingma & Welling 2014; Rezende et al. 2014). Write z = mu + e^{v/2} eps with
eps ~ N(0, I) not depending on (mu, v), so E_q[f(z)] = E_eps[f(mu + e^{v/2} eps)] and the gradient
moves inside:

    d/d mu_j     = E[f'_j(z)]                        one sample: f'_j(z)
    d/d logvar_j = E[f'_j(z) 0.5 e^{v_j/2} eps_j]    one sample: f'_j(z) 0.5 e^{v_j/2} eps_j

It needs f differentiable, and uses f's slope where the score function uses only its value, which
is why its variance is usually far lower (``scratchgen.experiments.quadratic_estimators`` derives
both variances for f(z) = z^2; ``scratchgen.experiments.elbo_gradient_variance`` measures them on
a trained VAE). A baseline would change nothing: the gradient of a constant b is 0.

The leave-one-out baseline. With S samples, b_s = the mean of f over the *other* S - 1 samples
does not depend on z_s, so the estimator stays unbiased, and the S-sample average becomes

    (1/S) sum_s (f_s - b_s) score_s = 1/(S - 1) sum_s (f_s - fbar) score_s,

the unbiased sample covariance of f and the score (since f_s - b_s = S/(S-1) (f_s - fbar)), whose
expectation Cov(f, score) = E[f score] is the gradient. (Kool et al. 2019 call it REINFORCE
with "leave-one-out" baseline; it needs S >= 2.)

What is here:

    gaussian_score(z, mu, logvar)                        the two derivatives of log q above (kernel)
    score_function_estimates(f, z, mu, logvar, baseline) one score-function gradient per sample
    reparameterization_estimates(f_grad, eps, logvar)    one reparameterised gradient per sample
    leave_one_out_baseline(f)                            b_s for each of S samples
    score_function_surrogate(mu, logvar, z, weights)     the op: REINFORCE inside autograd

``score_function_surrogate`` is how the score-function estimator enters a graph: its forward is
(1/S) sum_s w_s log q(z_s; mu, logvar) with the samples z and the weights w = f - b held constant
(a "stop-gradient"), so its backward is exactly the estimator. Its *value* means nothing; only
its gradient does.

Shapes: S samples of N examples with L latent dimensions. z, eps: (S, N, L); mu, logvar: (N, L);
f, f's baseline, weights: (S, N) (f summed over the L dimensions: one number per sample); f_grad:
(S, N, L). A single distribution is N = 1, L = 1.
"""
from __future__ import annotations

import numpy as np

from ..backend import get_array_module, kernel, register_kernel
from ..function import Function
from ..gradcheck import register_case
from ..tensor import Tensor
from .loss_helpers import check_reduction, float_dtype, float_inputs, reduce_loss, times_exp

__all__ = ["gaussian_score", "score_function_estimates", "reparameterization_estimates", "leave_one_out_baseline",
           "score_function_surrogate"]

LOG_2PI = float(np.log(2 * np.pi))


# ---- NumPy reference kernels -----------------------------------------------------------------
@register_kernel("gaussian_score")
def gaussian_score(z, mu, logvar):
    """grad_{mu, logvar} log N(z; mu, diag e^logvar) at a fixed sample z: the "score".

    ``z``: (S, N, L) (or any shape broadcasting against mu); ``mu``, ``logvar``: (N, L).
    Returns ``(score_mu, score_logvar)`` of the broadcast shape:
        score_mu     = (z - mu) e^-logvar
        score_logvar = 0.5 ((z - mu)^2 e^-logvar - 1)
    """
    diff = z - mu
    scaled = times_exp(diff, -logvar)  # (z - mu) e^-v, exactly 0 where z = mu even if e^-v overflows
    return scaled, 0.5 * (diff * scaled - 1)


def score_function_estimates(f_values, z, mu, logvar, baseline=None):
    """One score-function (REINFORCE) gradient estimate per sample: (f(z_s) - b_s) grad log q(z_s).

    ``f_values``: (S, N) f at the samples; ``z``: (S, N, L) samples from q = N(mu, e^logvar);
    ``mu``, ``logvar``: (N, L); ``baseline``: None (no baseline), a number, an (N,) or an (S, N)
    array (e.g. ``leave_one_out_baseline(f_values)``). Returns ``(g_mu, g_logvar)``, each
    (S, N, L); their mean over the S samples is the S-sample estimator. Unbiased for any baseline
    that does not depend on z_s.
    """
    xp = get_array_module(z)
    weights = xp.asarray(f_values) if baseline is None else xp.asarray(f_values) - xp.asarray(baseline)
    score_mu, score_logvar = kernel("gaussian_score")(z, mu, logvar)
    return weights[..., None] * score_mu, weights[..., None] * score_logvar


def reparameterization_estimates(f_grad, eps, logvar):
    """One reparameterised gradient estimate per sample, from f's gradient at z = mu + e^{v/2} eps.

    ``f_grad``: (S, N, L) df/dz at the samples; ``eps``: (S, N, L) the standard normal noise that
    made them; ``logvar``: (N, L). Returns ``(g_mu, g_logvar)`` = (f'(z), f'(z) 0.5 e^{v/2} eps),
    each (S, N, L): the chain rule through the reparameterisation, which is what autograd computes
    through ``ops.reparameterize`` (the same kernel).
    """
    return f_grad, kernel("reparameterize_backward")(f_grad, logvar, eps)


def leave_one_out_baseline(f_values):
    """b_s = mean of f over the other S - 1 samples, for each sample s: (S, N) -> (S, N).

    Independent of z_s, so REINFORCE stays unbiased with it; needs S >= 2.
    """
    xp = get_array_module(f_values)
    f_values = xp.asarray(f_values)
    s = f_values.shape[0]
    if s < 2:
        raise ValueError(f"leave_one_out_baseline: needs at least 2 samples along axis 0, got {s} (shape {f_values.shape})")
    return (f_values.sum(axis=0, keepdims=True) - f_values) / (s - 1)


# ---- the op ----------------------------------------------------------------------------------
class ScoreFunctionSurrogate(Function):
    """s_n = (1/S) sum_s w_sn sum_j log N(z_snj; mu_nj, e^{v_nj}), with z and w constant.

    Forward: log N(z; mu, e^v) = -0.5 (log 2pi + v + (z - mu)^2 e^-v), weighted and averaged over
    the S samples: (N,). Backward, for L = sum_n g_n s_n, per (n, j):
        dL/dmu_nj     = g_n (1/S) sum_s w_sn (z_snj - mu_nj) e^{-v_nj}
        dL/dlogvar_nj = g_n (1/S) sum_s w_sn 0.5 ((z_snj - mu_nj)^2 e^{-v_nj} - 1)
    i.e. g_n times the S-sample score-function estimator. z and w get no gradient: that is the
    stop-gradient that makes the surrogate's gradient the REINFORCE estimator.
    """

    op_name = "score_function_surrogate"

    @staticmethod
    def forward(ctx, mu, logvar, z, weights):
        ctx.save_for_backward(mu, logvar, z, weights)
        diff = z - mu
        log_q = -0.5 * (LOG_2PI + logvar + times_exp(diff * diff, -logvar))  # (S, N, L)
        return (weights * log_q.sum(axis=-1)).mean(axis=0)

    @staticmethod
    def backward(ctx, grad):
        mu, logvar, z, weights = ctx.saved_arrays
        score_mu, score_logvar = kernel("gaussian_score")(z, mu, logvar)
        w = (weights * grad)[..., None] / z.shape[0]  # (S, N, 1): g_n w_sn / S
        return (w * score_mu).sum(axis=0), (w * score_logvar).sum(axis=0), None, None


def score_function_surrogate(mu, logvar, z, weights, reduction: str = "batch_sum") -> Tensor:
    """The REINFORCE surrogate: its gradient with respect to (mu, logvar) is the score-function estimator.

    ``mu``, ``logvar``: (N, L) Tensors (the encoder's outputs); ``z``: (S, N, L) samples from
    N(mu, e^logvar), and ``weights``: (S, N) the values f(z_s) minus a baseline, both constants
    (arrays; a Tensor's value is used and no gradient flows into it). Returns the per-example
    surrogate (N,) reduced by ``reduction`` (default "batch_sum": the batch mean). Calling
    ``backward`` on it puts (1/N) times the per-example estimates into mu and logvar's graph.
    """
    check_reduction("score_function_surrogate", reduction)
    dtype = float_dtype(mu, logvar)
    mu, logvar = float_inputs("score_function_surrogate", dtype, mu=mu, logvar=logvar)
    z = z.data if isinstance(z, Tensor) else z
    weights = weights.data if isinstance(weights, Tensor) else weights
    (z, weights) = float_inputs("score_function_surrogate", dtype, z=z, weights=weights)
    if mu.ndim != 2 or tuple(logvar.shape) != tuple(mu.shape):
        raise ValueError(f"score_function_surrogate: mu and logvar must both be (N, L), got {tuple(mu.shape)} and "
                         f"{tuple(logvar.shape)}")
    if z.ndim != 3 or tuple(z.shape[1:]) != tuple(mu.shape):
        raise ValueError(f"score_function_surrogate: z must be (S, N, L) = (S, {mu.shape[0]}, {mu.shape[1]}), "
                         f"got shape {tuple(z.shape)}")
    if tuple(weights.shape) != tuple(z.shape[:2]):
        raise ValueError(f"score_function_surrogate: weights must be (S, N) = {tuple(z.shape[:2])}, got shape "
                         f"{tuple(weights.shape)}")
    return reduce_loss(ScoreFunctionSurrogate.apply(mu, logvar, z, weights), reduction, "score_function_surrogate")


# ---- gradcheck case ----------------------------------------------------------------------------
def _surrogate_case(rng):
    mu, logvar = rng.standard_normal((3, 2)), 0.5 * rng.standard_normal((3, 2))
    z = mu + np.exp(0.5 * logvar) * rng.standard_normal((4, 3, 2))
    weights = rng.standard_normal((4, 3))
    return (lambda m, v: score_function_surrogate(m, v, z, weights, reduction="none")), [mu, logvar]


register_case("score_function_surrogate")(_surrogate_case)
