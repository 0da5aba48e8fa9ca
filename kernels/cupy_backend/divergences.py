"""Gaussian KL, reparameterisation and the contractive penalty's elementwise parts as CuPy kernels.

A backward with several gradients is one kernel with several outputs (CuPy allocates them,
all of the broadcast shape). The contractive penalty keeps its GEMMs on cuBLAS (``@``).

Every product of an exactly-zero factor and an exp (or a row norm) that may overflow is written
``f != 0 ? f * exp(..) : f``: 0, not 0 * inf = NaN, as the reference's ``times_exp`` (equal means
under logvar_p = -200, zero noise under logvar = 200, saturated units under W ~ 1e20).
"""
from __future__ import annotations

from scratchgen.backend import register_kernel
from scratchgen.ops import divergences as reference

from ._elementwise import Kernel, cupy_float_arrays

_kl_standard_forward = Kernel(
    "T mu, T lv", "T kl", "kl = (T)0.5 * (mu * mu + expm1(lv) - lv);", "sg_kl_standard_forward")
_kl_standard_backward = Kernel(
    "T g, T mu, T lv", "T g_mu, T g_lv", "g_mu = g * mu; g_lv = (T)0.5 * g * expm1(lv);", "sg_kl_standard_backward")
_kl_forward = Kernel(
    "T mq, T lq, T mp, T lp", "T kl",
    "T d = lq - lp; T sq = (mq - mp) * (mq - mp);"
    "kl = (T)0.5 * (expm1(d) - d + (sq != (T)0 ? sq * exp(-lp) : sq));", "sg_kl_forward")
_kl_backward = Kernel(
    "T g, T mq, T lq, T mp, T lp", "T g_mq, T g_lq, T g_lp",
    """T r = expm1(lq - lp); T diff = mq - mp; T scaled = diff != (T)0 ? diff * exp(-lp) : diff;
       g_mq = g * scaled; g_lq = (T)0.5 * g * r; g_lp = (T)-0.5 * g * (r + diff * scaled);""",
    "sg_kl_backward")
_reparameterize_forward = Kernel(
    "T mu, T lv, T eps", "T z", "z = mu + (eps != (T)0 ? eps * exp((T)0.5 * lv) : eps);", "sg_reparameterize_forward")
_reparameterize_backward = Kernel(
    "T g, T lv, T eps", "T out",
    "T f = eps != (T)0 ? (T)0.5 * g : (T)0; out = (f != (T)0 ? f * exp((T)0.5 * lv) : f) * eps;",
    "sg_reparameterize_backward")
# Contractive penalty: h = sigmoid(a + b) and its penalty terms (h (1 - h))^2 r_j in one pass ...
_contractive_terms = Kernel(
    "T a, T b, T r", "T h, T term",
    "T s = a + b; T e = exp(-fabs(s)); h = (s >= (T)0 ? (T)1 : e) / ((T)1 + e); T slope = h * ((T)1 - h);"
    "T s2 = slope * slope; term = s2 != (T)0 ? s2 * r : s2;", "sg_contractive_terms")
# ... and, backward, dL/da = 2 g s^2 (1 - 2h) r with s^2 kept for grad_W's second term.
_contractive_grad = Kernel(
    "T g, T h, T r", "T grad_pre, T slope_sq",
    "T slope = h * ((T)1 - h); slope_sq = slope * slope;"
    "grad_pre = (T)2 * g * slope_sq * ((T)1 - (T)2 * h) * (slope_sq != (T)0 ? r : (T)0);",
    "sg_contractive_grad")


@register_kernel("gaussian_kl_standard_forward", backend="cupy")
def gaussian_kl_standard_forward(mu, logvar):
    if not cupy_float_arrays(mu, logvar):
        return reference.gaussian_kl_standard_forward(mu, logvar)
    return _kl_standard_forward(mu, logvar)


@register_kernel("gaussian_kl_standard_backward", backend="cupy")
def gaussian_kl_standard_backward(grad, mu, logvar):
    if not cupy_float_arrays(grad, mu, logvar):
        return reference.gaussian_kl_standard_backward(grad, mu, logvar)
    return _kl_standard_backward(grad, mu, logvar)


@register_kernel("gaussian_kl_forward", backend="cupy")
def gaussian_kl_forward(mu_q, logvar_q, mu_p, logvar_p):
    if not cupy_float_arrays(mu_q, logvar_q, mu_p, logvar_p):
        return reference.gaussian_kl_forward(mu_q, logvar_q, mu_p, logvar_p)
    return _kl_forward(mu_q, logvar_q, mu_p, logvar_p)


@register_kernel("gaussian_kl_backward", backend="cupy")
def gaussian_kl_backward(grad, mu_q, logvar_q, mu_p, logvar_p):
    if not cupy_float_arrays(grad, mu_q, logvar_q, mu_p, logvar_p):
        return reference.gaussian_kl_backward(grad, mu_q, logvar_q, mu_p, logvar_p)
    return _kl_backward(grad, mu_q, logvar_q, mu_p, logvar_p)


@register_kernel("reparameterize_forward", backend="cupy")
def reparameterize_forward(mu, logvar, eps):
    if not cupy_float_arrays(mu, logvar, eps):
        return reference.reparameterize_forward(mu, logvar, eps)
    return _reparameterize_forward(mu, logvar, eps)


@register_kernel("reparameterize_backward", backend="cupy")
def reparameterize_backward(grad, logvar, eps):
    if not cupy_float_arrays(grad, logvar, eps):
        return reference.reparameterize_backward(grad, logvar, eps)
    return _reparameterize_backward(grad, logvar, eps)


@register_kernel("contractive_penalty_forward", backend="cupy")
def contractive_penalty_forward(x, weight, bias):
    if not cupy_float_arrays(x, weight, bias) or x.ndim != 2:
        return reference.contractive_penalty_forward(x, weight, bias)
    row_norms = (weight * weight).sum(axis=1)
    hidden, terms = _contractive_terms(x @ weight.T, bias, row_norms)
    return terms.sum(axis=1), hidden


@register_kernel("contractive_penalty_backward", backend="cupy")
def contractive_penalty_backward(grad, x, weight, hidden, needs=(True, True, True)):
    if not cupy_float_arrays(grad, x, weight, hidden):
        return reference.contractive_penalty_backward(grad, x, weight, hidden, needs)
    row_norms = (weight * weight).sum(axis=1)
    grad_pre, slope_sq = _contractive_grad(grad[:, None], hidden, row_norms)
    grad_x = grad_pre @ weight if needs[0] else None
    grad_weight = grad_pre.T @ x + 2 * (grad @ slope_sq)[:, None] * weight if needs[1] else None
    grad_bias = grad_pre.sum(axis=0) if needs[2] else None
    return grad_x, grad_weight, grad_bias
