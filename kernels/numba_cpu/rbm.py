"""RBM block-Gibbs sampling: a BLAS GEMM, then one fused pass for bias + sigmoid + Bernoulli draw.

    h_prob = sigmoid(v @ W + c),   h_sample = (u < h_prob)        W: (V, H), v: (N, V)

The GEMM is BLAS's job (NumPy's ``@``); everything after it is elementwise, and NumPy spends
more time there than in the GEMM at RBM sizes: it adds the bias, runs its eight-pass sigmoid
and a compare-and-cast, five temporaries in all. The loop below does all of it in one pass,
writing the probabilities over the GEMM result (no extra array) and the 0/1 samples next to
them. The arithmetic is the reference's, in the data's dtype, so float64 probabilities match
to ~1e-16 and samples match except when a uniform lies within rounding of its probability.

Uniforms are arguments (parity with the reference); ``rbm_gibbs_step_rng`` instead draws them
inside the loop from Numba's own generator (seed it with ``seed_rng``) and never materialises
them: one pass less, not comparable element by element.

The CD statistics ``v_pos^T h_pos / N - v_neg^T h_neg / M`` are two GEMMs plus three cheap
passes: BLAS does the work either way, so the backend keeps the NumPy reference for them.
"""
from __future__ import annotations

import numpy as np
from numba import njit, prange

from scratchgen.backend import register_kernel
from scratchgen.ops import rbm as reference

from . import _math
from ._jit import host_float_arrays, jit


@jit(fma=True)
def _bias_sigmoid_sample(pre, bias, uniforms, sample):
    """pre (N, K) := sigmoid(pre + bias) in place; sample = (uniforms < pre) as 0/1."""
    for n in prange(pre.shape[0]):
        for k in range(pre.shape[1]):
            pre[n, k] = _math.sigmoid(pre[n, k] + bias[k])
            sample[n, k] = 1.0 if uniforms[n, k] < pre[n, k] else 0.0


@jit(fma=True)
def _bias_sigmoid_sample_rng(pre, bias, sample):
    """As ``_bias_sigmoid_sample`` with uniforms drawn here (Numba's per-thread generator)."""
    for n in prange(pre.shape[0]):
        for k in range(pre.shape[1]):
            pre[n, k] = _math.sigmoid(pre[n, k] + bias[k])
            sample[n, k] = 1.0 if np.random.random() < pre[n, k] else 0.0


def _sample_layer(inputs, weight_view, bias, uniforms):
    """(prob, sample) of the layer whose pre-activation is inputs @ weight_view + bias."""
    prob = np.ascontiguousarray(inputs @ weight_view)
    sample = np.empty_like(prob)
    if uniforms is None:
        _bias_sigmoid_sample_rng(prob, bias, sample)
    else:
        _bias_sigmoid_sample(prob, bias, np.ascontiguousarray(uniforms), sample)
    return prob, sample


def _check_uniforms(name, uniforms, shape):
    if uniforms is not None and uniforms.shape != shape:
        raise ValueError(f"{name}: uniforms have shape {uniforms.shape}, expected {shape}")


@register_kernel("rbm_sample_hidden", backend="numba")
def rbm_sample_hidden(v, weight, hidden_bias, uniforms):
    if not host_float_arrays(v, weight, hidden_bias) or type(uniforms) is not np.ndarray:
        return reference.rbm_sample_hidden(v, weight, hidden_bias, uniforms)
    _check_uniforms("rbm_sample_hidden", uniforms, (v.shape[0], weight.shape[1]))
    return _sample_layer(v, weight, hidden_bias, uniforms)


@register_kernel("rbm_sample_visible", backend="numba")
def rbm_sample_visible(h, weight, visible_bias, uniforms):
    if not host_float_arrays(h, weight, visible_bias) or type(uniforms) is not np.ndarray:
        return reference.rbm_sample_visible(h, weight, visible_bias, uniforms)
    _check_uniforms("rbm_sample_visible", uniforms, (h.shape[0], weight.shape[0]))
    return _sample_layer(h, weight.T, visible_bias, uniforms)


@jit(fma=True)
def _bias_sigmoid(pre, bias):
    """pre (N, K) := sigmoid(pre + bias) in place."""
    for n in prange(pre.shape[0]):
        for k in range(pre.shape[1]):
            pre[n, k] = _math.sigmoid(pre[n, k] + bias[k])


@register_kernel("rbm_pcd_hidden", backend="numba")
def rbm_pcd_hidden(v_data, v_neg, weight, hidden_bias, uniforms):
    """One stacked product [v_data; v_neg] @ W for both hidden layers (a 128-row GEMM runs ~20%
    faster than two of 64 rows), then the fused bias + sigmoid (+ draw) passes on its two halves."""
    if not host_float_arrays(v_data, v_neg, weight, hidden_bias) or type(uniforms) is not np.ndarray:
        return reference.rbm_pcd_hidden(v_data, v_neg, weight, hidden_bias, uniforms)
    n = v_data.shape[0]
    _check_uniforms("rbm_pcd_hidden", uniforms, (v_neg.shape[0], weight.shape[1]))
    pre = np.ascontiguousarray(np.concatenate([v_data, v_neg]) @ weight)
    h_pos_prob, h_neg_prob = pre[:n], pre[n:]
    _bias_sigmoid(h_pos_prob, hidden_bias)
    h_next = np.empty_like(h_neg_prob)
    _bias_sigmoid_sample(h_neg_prob, hidden_bias, np.ascontiguousarray(uniforms), h_next)
    return h_pos_prob, h_neg_prob, h_next


@register_kernel("rbm_gibbs_step", backend="numba")
def rbm_gibbs_step(v, weight, visible_bias, hidden_bias, uniforms_h, uniforms_v):
    h_prob, h_sample = rbm_sample_hidden(v, weight, hidden_bias, uniforms_h)
    v_prob, v_sample = rbm_sample_visible(h_sample, weight, visible_bias, uniforms_v)
    return h_prob, h_sample, v_prob, v_sample


def rbm_gibbs_step_rng(v, weight, visible_bias, hidden_bias):
    """``rbm_gibbs_step`` with uniforms drawn inside the fused loops (see ``seed_rng``)."""
    h_prob, h_sample = _sample_layer(v, weight, hidden_bias, None)
    v_prob, v_sample = _sample_layer(h_sample, weight.T, visible_bias, None)
    return h_prob, h_sample, v_prob, v_sample


@njit
def _seed(seed):
    np.random.seed(seed)


def seed_rng(seed: int) -> None:
    """Seed Numba's generator (separate from NumPy's) used by ``rbm_gibbs_step_rng``.

    With more than one Numba thread each thread has its own stream, so runs are reproducible
    only with NUMBA_NUM_THREADS=1.
    """
    _seed(int(seed))
