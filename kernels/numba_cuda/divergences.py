"""Gaussian KL, reparameterisation and the contractive penalty as CUDA kernels.

The elementwise ones are one grid-stride kernel each (a backward with several gradients
writes them all from one read of its inputs); the one-output ones that run on (samples, N, latent)
arrays are map kernels (``_launch.py``: four elements per thread, loads first). An exactly-zero factor times an exp that
overflows gives 0, not 0 * inf = NaN (``times_exp``, as the reference's), and a saturated
unit of the contractive penalty adds 0 even where its row norm r_j overflowed. The contractive penalty keeps its two GEMMs on
cuBLAS (CuPy's ``@``) and fuses the elementwise work between them:

    forward:  H = sigmoid(A + b) over A = x W^T (in place), T_nj = (h (1 - h))^2 r_j,
              penalty = T.sum(axis=1)                          r_j = sum_i W_ji^2
    backward: P_nj = 2 g_n s_nj^2 (1 - 2 h_nj) r_j and S_nj = s_nj^2 in one kernel, then
              grad_x = P W, grad_W = P^T x + 2 (g^T S)_j W_ji, grad_b = sum_n P_n
"""
from __future__ import annotations

import math

from numba import cuda

from scratchgen.backend import get_array_module, register_kernel
from scratchgen.ops import divergences as reference

from ._launch import binary_map, device_float_arrays, launch, run_elementwise, ternary_map
from .activations import sigmoid


@cuda.jit(device=True, inline=True)
def times_exp(factor, exponent):
    """factor * e^exponent, exactly ``factor`` (0) where factor is 0 even if e^exponent overflows:
    0 * inf would be NaN (the reference's ``times_exp``)."""
    return factor * math.exp(exponent) if factor != 0 else factor


@cuda.jit(device=True, inline=True)
def kl_standard_element(mu, logvar):
    return 0.5 * (mu * mu + math.expm1(logvar) - logvar)


_kl_standard_forward = binary_map(kl_standard_element)


@cuda.jit
def _kl_standard_backward(grad, mu, logvar, grad_mu, grad_logvar):
    for i in range(cuda.grid(1), grad.size, cuda.gridsize(1)):
        grad_mu[i] = grad[i] * mu[i]
        grad_logvar[i] = 0.5 * grad[i] * math.expm1(logvar[i])


@cuda.jit
def _kl_forward(mu_q, logvar_q, mu_p, logvar_p, out):
    for i in range(cuda.grid(1), mu_q.size, cuda.gridsize(1)):
        d = logvar_q[i] - logvar_p[i]
        diff = mu_q[i] - mu_p[i]
        out[i] = 0.5 * (math.expm1(d) - d + times_exp(diff * diff, -logvar_p[i]))


@cuda.jit
def _kl_backward(grad, mu_q, logvar_q, mu_p, logvar_p, grad_mu_q, grad_logvar_q, grad_logvar_p):
    for i in range(cuda.grid(1), grad.size, cuda.gridsize(1)):
        ratio_minus_one = math.expm1(logvar_q[i] - logvar_p[i])
        diff = mu_q[i] - mu_p[i]
        scaled = times_exp(diff, -logvar_p[i])
        g = grad[i]
        grad_mu_q[i] = g * scaled
        grad_logvar_q[i] = 0.5 * g * ratio_minus_one
        grad_logvar_p[i] = -0.5 * g * (ratio_minus_one + diff * scaled)


@cuda.jit(device=True, inline=True)
def reparameterize_element(mu, logvar, eps):
    return mu + times_exp(eps, 0.5 * logvar)


@cuda.jit(device=True, inline=True)
def reparameterize_backward_element(grad, logvar, eps):
    g = grad if eps != 0 else 0.0  # 0 where eps is 0: (0.5 g e^(v/2)) eps, never inf * 0
    return times_exp(0.5 * g, 0.5 * logvar) * eps


_reparameterize_forward = ternary_map(reparameterize_element)
_reparameterize_backward = ternary_map(reparameterize_backward_element)


@register_kernel("gaussian_kl_standard_forward", backend="numba-cuda")
def gaussian_kl_standard_forward(mu, logvar):
    return run_elementwise(_kl_standard_forward, reference.gaussian_kl_standard_forward, mu, logvar)


@register_kernel("gaussian_kl_standard_backward", backend="numba-cuda")
def gaussian_kl_standard_backward(grad, mu, logvar):
    return run_elementwise(_kl_standard_backward, reference.gaussian_kl_standard_backward, grad, mu, logvar, outputs=2)


@register_kernel("gaussian_kl_forward", backend="numba-cuda")
def gaussian_kl_forward(mu_q, logvar_q, mu_p, logvar_p):
    return run_elementwise(_kl_forward, reference.gaussian_kl_forward, mu_q, logvar_q, mu_p, logvar_p)


@register_kernel("gaussian_kl_backward", backend="numba-cuda")
def gaussian_kl_backward(grad, mu_q, logvar_q, mu_p, logvar_p):
    return run_elementwise(_kl_backward, reference.gaussian_kl_backward, grad, mu_q, logvar_q, mu_p, logvar_p,
                           outputs=3)


@register_kernel("reparameterize_forward", backend="numba-cuda")
def reparameterize_forward(mu, logvar, eps):
    return run_elementwise(_reparameterize_forward, reference.reparameterize_forward, mu, logvar, eps)


@register_kernel("reparameterize_backward", backend="numba-cuda")
def reparameterize_backward(grad, logvar, eps):
    return run_elementwise(_reparameterize_backward, reference.reparameterize_backward, grad, logvar, eps)


# ---- contractive penalty -------------------------------------------------------------------------
@cuda.jit
def _contractive_forward_terms(pre, bias, row_norms, terms):
    """pre (N, H) := sigmoid(pre + b) in place; terms = (h (1 - h))^2 r_j. Flat index over N H."""
    n_rows, width = pre.shape
    for i in range(cuda.grid(1), n_rows * width, cuda.gridsize(1)):
        n, j = i // width, i % width
        pre[n, j] = sigmoid(pre[n, j] + bias[j])
        h = pre[n, j]
        slope = h * (1.0 - h)
        s2 = slope * slope
        terms[n, j] = s2 * row_norms[j] if s2 != 0 else 0.0  # saturated: 0, even if r_j overflowed


@cuda.jit
def _contractive_backward_terms(grad, hidden, row_norms, grad_pre, slope_sq):
    n_rows, width = hidden.shape
    for i in range(cuda.grid(1), n_rows * width, cuda.gridsize(1)):
        n, j = i // width, i % width
        h = hidden[n, j]
        slope = h * (1.0 - h)
        s2 = slope * slope
        slope_sq[n, j] = s2
        grad_pre[n, j] = 2.0 * grad[n] * s2 * (1.0 - 2.0 * h) * (row_norms[j] if s2 != 0 else 0.0)


@register_kernel("contractive_penalty_forward", backend="numba-cuda")
def contractive_penalty_forward(x, weight, bias):
    if not device_float_arrays(x, weight, bias) or x.ndim != 2:
        return reference.contractive_penalty_forward(x, weight, bias)
    xp = get_array_module(x)
    hidden = xp.ascontiguousarray(x @ weight.T)
    row_norms = (weight * weight).sum(axis=1)
    terms = xp.empty_like(hidden)
    if hidden.size:
        launch(_contractive_forward_terms, hidden.size)(hidden, bias, row_norms, terms)
    return terms.sum(axis=1), hidden


@register_kernel("contractive_penalty_backward", backend="numba-cuda")
def contractive_penalty_backward(grad, x, weight, hidden, needs=(True, True, True)):
    if not device_float_arrays(grad, x, weight, hidden):
        return reference.contractive_penalty_backward(grad, x, weight, hidden, needs)
    xp = get_array_module(x)
    hidden = xp.ascontiguousarray(hidden)
    row_norms = (weight * weight).sum(axis=1)
    grad_pre, slope_sq = xp.empty_like(hidden), xp.empty_like(hidden)
    if hidden.size:
        launch(_contractive_backward_terms, hidden.size)(xp.ascontiguousarray(grad), hidden, row_norms, grad_pre, slope_sq)
    grad_x = grad_pre @ weight if needs[0] else None
    grad_weight = grad_pre.T @ x + 2 * (grad @ slope_sq)[:, None] * weight if needs[1] else None
    grad_bias = grad_pre.sum(axis=0) if needs[2] else None
    return grad_x, grad_weight, grad_bias
