"""VAE and contractive-autoencoder kernels: Gaussian KL, the reparameterisation, the contractive penalty.

Elementwise (fused loops, vectorisable exp/expm1 from ``_math.py``):

    gaussian_kl_standard   0.5 (mu^2 + expm1(lv) - lv)          -> (grad mu, 0.5 grad expm1(lv))
    gaussian_kl            0.5 (expm1(d) - d + (mq - mp)^2 e^-lp),  d = lq - lp
    reparameterize         z = mu + exp(0.5 lv) eps             -> 0.5 grad exp(0.5 lv) eps

Where an exactly-zero factor meets an exp that overflows (equal means under logvar_p = -200, zero
noise under logvar = 200) the product is 0, not 0 * inf = NaN: ``_times_exp``, as the reference.
The backward kernels that return several gradients compute them in one pass (NumPy computes
expm1/exp once but writes a temporary for every product). The standard-normal KL is shelved
(the backend keeps NumPy): with only expm1 to compute, NumPy's AVX-512 expm1 wins at the
cache-resident sizes a VAE's latent arrays have.

The contractive penalty (sigmoid encoder h = sigmoid(x W^T + b), W: (H, V)) is two GEMMs
(BLAS, through NumPy) around fused row loops:

    forward:  h = sigmoid(A + b) in place of A = x W^T,  penalty_n = sum_j (h_nj (1 - h_nj))^2 r_j
    backward: P_nj = 2 g_n s_nj^2 (1 - 2 h_nj) r_j   (s = h (1 - h), r_j = sum_i W_ji^2)
              grad_x = P W,  grad_W = P^T x + 2 (g^T s^2)_j W_ji,  grad_b = sum_n P_n

A saturated unit (s = 0) contributes exactly 0 to both, also where r_j overflowed (W ~ 1e20).
"""
from __future__ import annotations

import numpy as np
from numba import prange

from scratchgen.backend import register_kernel
from scratchgen.ops import divergences as reference

from . import _math
from ._jit import host_float_arrays, inline, jit, run_elementwise

# Constants exact in float32: float32 loops stay in float32, float64 loops are not demoted.
HALF, ZERO = np.float32(0.5), np.float32(0)


@inline
def _times_exp(factor, exponent):
    """factor * e^exponent, exactly ``factor`` (0) where factor is 0 even if e^exponent overflows:
    0 * inf would be NaN. The reference's ``times_exp``; every other element is the plain product."""
    return factor * _math.exp(exponent) if factor != 0 else factor


# ---- Gaussian KL against N(0, I) ---------------------------------------------------------------
@jit(fma=True)
def _kl_standard_forward(mu, logvar, out):
    for i in prange(mu.size):
        lv = logvar[i]
        out[i] = HALF * (mu[i] * mu[i] + _math.expm1(lv) - lv)


@jit(fma=True)
def _kl_standard_backward(grad, mu, logvar, grad_mu, grad_logvar):
    for i in prange(grad.size):
        grad_mu[i] = grad[i] * mu[i]
        grad_logvar[i] = HALF * grad[i] * _math.expm1(logvar[i])


_KL_NOTE = ("NumPy's AVX-512 expm1 (16 float32 lanes) beats our 8-lane polynomial at VAE sizes, where the "
            "(N, latent) arrays sit in cache; the fused loop only wins once memory-bound (millions of elements)")


@register_kernel("gaussian_kl_standard_forward", backend="numba", active=False, note=_KL_NOTE)
def gaussian_kl_standard_forward(mu, logvar):
    return run_elementwise(_kl_standard_forward, reference.gaussian_kl_standard_forward, mu, logvar)


@register_kernel("gaussian_kl_standard_backward", backend="numba", active=False, note=_KL_NOTE)
def gaussian_kl_standard_backward(grad, mu, logvar):
    return run_elementwise(_kl_standard_backward, reference.gaussian_kl_standard_backward, grad, mu, logvar, outputs=2)


# ---- Gaussian KL between two diagonal Gaussians ------------------------------------------------
@jit(fma=True)
def _kl_forward(mu_q, logvar_q, mu_p, logvar_p, out):
    for i in prange(mu_q.size):
        d = logvar_q[i] - logvar_p[i]
        diff = mu_q[i] - mu_p[i]
        out[i] = HALF * (_math.expm1(d) - d + _times_exp(diff * diff, -logvar_p[i]))


@jit(fma=True)
def _kl_backward(grad, mu_q, logvar_q, mu_p, logvar_p, grad_mu_q, grad_logvar_q, grad_logvar_p):
    for i in prange(grad.size):
        ratio_minus_one = _math.expm1(logvar_q[i] - logvar_p[i])
        diff = mu_q[i] - mu_p[i]
        scaled = _times_exp(diff, -logvar_p[i])
        g = grad[i]
        grad_mu_q[i] = g * scaled
        grad_logvar_q[i] = HALF * g * ratio_minus_one
        grad_logvar_p[i] = -HALF * g * (ratio_minus_one + diff * scaled)


@register_kernel("gaussian_kl_forward", backend="numba")
def gaussian_kl_forward(mu_q, logvar_q, mu_p, logvar_p):
    return run_elementwise(_kl_forward, reference.gaussian_kl_forward, mu_q, logvar_q, mu_p, logvar_p)


@register_kernel("gaussian_kl_backward", backend="numba")
def gaussian_kl_backward(grad, mu_q, logvar_q, mu_p, logvar_p):
    return run_elementwise(_kl_backward, reference.gaussian_kl_backward, grad, mu_q, logvar_q, mu_p, logvar_p,
                           outputs=3)


# ---- reparameterisation --------------------------------------------------------------------------
@jit(fma=True)
def _reparameterize_forward(mu, logvar, eps, out):
    for i in prange(mu.size):
        out[i] = mu[i] + _times_exp(eps[i], HALF * logvar[i])


@jit(fma=True)
def _reparameterize_backward(grad, logvar, eps, out):
    for i in prange(grad.size):
        g = grad[i] if eps[i] != 0 else ZERO  # 0 where eps is 0: (0.5 g e^(v/2)) eps, never inf * 0
        out[i] = _times_exp(HALF * g, HALF * logvar[i]) * eps[i]


@register_kernel("reparameterize_forward", backend="numba")
def reparameterize_forward(mu, logvar, eps):
    return run_elementwise(_reparameterize_forward, reference.reparameterize_forward, mu, logvar, eps)


@register_kernel("reparameterize_backward", backend="numba")
def reparameterize_backward(grad, logvar, eps):
    return run_elementwise(_reparameterize_backward, reference.reparameterize_backward, grad, logvar, eps)


# ---- contractive penalty -------------------------------------------------------------------------
@jit(reassociate=True)
def _row_sq_norms(weight, out):
    """out_j = sum_i W_ji^2, W: (H, V)."""
    for j in prange(weight.shape[0]):
        total = 0.0
        for i in range(weight.shape[1]):
            total += weight[j, i] * weight[j, i]
        out[j] = total


@jit(fma=True, reassociate=True)
def _contractive_forward_rows(pre, bias, row_norms, penalty):
    """pre (N, H) := sigmoid(pre + b) in place; penalty_n = sum_j (h (1 - h))^2 r_j."""
    for n in prange(pre.shape[0]):
        total = 0.0
        for j in range(pre.shape[1]):
            pre[n, j] = _math.sigmoid(pre[n, j] + bias[j])
            h = pre[n, j]  # the stored (possibly float32-rounded) value, as the reference uses
            slope = h * (1.0 - h)
            s2 = slope * slope
            # A saturated unit (s = 0) adds exactly 0, even where its row norm overflowed.
            total += s2 * row_norms[j] if s2 != 0.0 else 0.0
        penalty[n] = total


@jit
def _contractive_backward_rows(grad, hidden, row_norms, grad_pre, slope_sq):
    """grad_pre_nj = 2 g_n s_nj^2 (1 - 2 h_nj) r_j and slope_sq_nj = s_nj^2, s = h (1 - h)."""
    for n in prange(hidden.shape[0]):
        g2 = 2.0 * grad[n]
        for j in range(hidden.shape[1]):
            h = hidden[n, j]
            slope = h * (1.0 - h)
            s2 = slope * slope
            slope_sq[n, j] = s2
            grad_pre[n, j] = g2 * s2 * (1.0 - 2.0 * h) * (row_norms[j] if s2 != 0.0 else 0.0)


@jit
def _add_scaled_rows(out, scale, weight):
    """out_ji += 2 scale_j W_ji."""
    for j in prange(out.shape[0]):
        s = 2.0 * scale[j]
        for i in range(out.shape[1]):
            out[j, i] += s * weight[j, i]


@register_kernel("contractive_penalty_forward", backend="numba")
def contractive_penalty_forward(x, weight, bias):
    if not host_float_arrays(x, weight, bias) or x.ndim != 2:
        return reference.contractive_penalty_forward(x, weight, bias)
    hidden = np.ascontiguousarray(x @ weight.T)  # (N, H), sigmoid applied in place below
    row_norms = np.empty(weight.shape[0], dtype=x.dtype)
    _row_sq_norms(weight, row_norms)
    penalty = np.empty(x.shape[0], dtype=x.dtype)
    _contractive_forward_rows(hidden, bias, row_norms, penalty)
    return penalty, hidden


@register_kernel("contractive_penalty_backward", backend="numba")
def contractive_penalty_backward(grad, x, weight, hidden, needs=(True, True, True)):
    if not host_float_arrays(grad, x, weight, hidden):
        return reference.contractive_penalty_backward(grad, x, weight, hidden, needs)
    hidden = np.ascontiguousarray(hidden)
    row_norms = np.empty(weight.shape[0], dtype=x.dtype)
    _row_sq_norms(weight, row_norms)
    grad_pre = np.empty_like(hidden)
    slope_sq = np.empty_like(hidden)
    _contractive_backward_rows(np.ascontiguousarray(grad), hidden, row_norms, grad_pre, slope_sq)
    grad_x = grad_pre @ weight if needs[0] else None
    grad_weight = None
    if needs[1]:
        grad_weight = np.ascontiguousarray(grad_pre.T @ x)
        _add_scaled_rows(grad_weight, grad @ slope_sq, weight)
    grad_bias = grad_pre.sum(axis=0) if needs[2] else None
    return grad_x, grad_weight, grad_bias


# ---- contractive penalty from the encoder's codes (no GEMM) ------------------------------------
@jit(reassociate=True)
def _codes_penalty_rows(hidden, row_norms, penalty):
    """penalty_n = sum_j (h (1 - h))^2 r_j (a saturated unit adds exactly 0)."""
    for n in prange(hidden.shape[0]):
        total = 0.0
        for j in range(hidden.shape[1]):
            h = hidden[n, j]
            slope = h * (1.0 - h)
            s2 = slope * slope
            total += s2 * row_norms[j] if s2 != 0.0 else 0.0
        penalty[n] = total


@jit
def _codes_grad_hidden(grad, hidden, row_norms, out):
    """out_nj = 2 g_n s_nj (1 - 2 h_nj) r_j, 0 for a saturated unit."""
    for n in prange(hidden.shape[0]):
        g2 = 2.0 * grad[n]
        for j in range(hidden.shape[1]):
            h = hidden[n, j]
            slope = h * (1.0 - h)
            out[n, j] = g2 * slope * (1.0 - 2.0 * h) * (row_norms[j] if slope * slope != 0.0 else 0.0)


@jit
def _codes_weighted_slopes(grad, hidden, out):
    """out_j = sum_n g_n s_nj^2 (rows in order)."""
    for j in range(hidden.shape[1]):
        out[j] = 0.0
    for n in range(hidden.shape[0]):
        g = grad[n]
        for j in range(hidden.shape[1]):
            h = hidden[n, j]
            slope = h * (1.0 - h)
            out[j] += g * (slope * slope)


@jit
def _scaled_rows(scale, weight, out):
    """out_ji = 2 scale_j W_ji."""
    for j in prange(weight.shape[0]):
        s = 2.0 * scale[j]
        for i in range(weight.shape[1]):
            out[j, i] = s * weight[j, i]


@register_kernel("contractive_penalty_codes_forward", backend="numba")
def contractive_penalty_codes_forward(hidden, weight):
    if not host_float_arrays(hidden, weight) or hidden.ndim != 2 or weight.ndim != 2:
        return reference.contractive_penalty_codes_forward(hidden, weight)
    row_norms = np.empty(weight.shape[0], dtype=weight.dtype)
    _row_sq_norms(np.ascontiguousarray(weight), row_norms)
    penalty = np.empty(hidden.shape[0], dtype=hidden.dtype)
    _codes_penalty_rows(np.ascontiguousarray(hidden), row_norms, penalty)
    return penalty, row_norms


@register_kernel("contractive_penalty_codes_backward", backend="numba")
def contractive_penalty_codes_backward(grad, hidden, weight, row_norms, needs=(True, True)):
    if not host_float_arrays(grad, hidden, weight, row_norms) or hidden.ndim != 2:
        return reference.contractive_penalty_codes_backward(grad, hidden, weight, row_norms, needs)
    grad, hidden = np.ascontiguousarray(grad), np.ascontiguousarray(hidden)
    grad_hidden = grad_weight = None
    if needs[0]:
        grad_hidden = np.empty_like(hidden)
        _codes_grad_hidden(grad, hidden, row_norms, grad_hidden)
    if needs[1]:
        scale = np.empty(hidden.shape[1], dtype=hidden.dtype)
        _codes_weighted_slopes(grad, hidden, scale)
        grad_weight = np.empty(weight.shape, dtype=weight.dtype)
        _scaled_rows(scale, np.ascontiguousarray(weight), grad_weight)
    return grad_hidden, grad_weight
