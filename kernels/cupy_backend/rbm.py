"""RBM block-Gibbs sampling with CuPy: cuBLAS GEMM, then one fused bias + sigmoid + draw kernel.

``rbm_gibbs_step_rng`` draws the uniforms with CuPy's own generator (``cupy.random``) on the
device instead of taking them as arguments. The CD statistics stay on the reference (GEMMs).
"""
from __future__ import annotations

import cupy

from scratchgen.backend import register_kernel
from scratchgen.ops import rbm as reference

from ._elementwise import Kernel, cupy_float_arrays

_sample = Kernel(
    "T pre, T bias, U u", "T prob, T sample",
    "T s = pre + bias; T e = exp(-fabs(s)); prob = (s >= (T)0 ? (T)1 : e) / ((T)1 + e);"
    "sample = ((double)u < (double)prob) ? (T)1 : (T)0;",
    "sg_rbm_sample")


@register_kernel("rbm_sample_hidden", backend="cupy")
def rbm_sample_hidden(v, weight, hidden_bias, uniforms):
    if not cupy_float_arrays(v, weight, hidden_bias) or not cupy_float_arrays(uniforms):
        return reference.rbm_sample_hidden(v, weight, hidden_bias, uniforms)
    return _sample(v @ weight, hidden_bias, uniforms)


@register_kernel("rbm_sample_visible", backend="cupy")
def rbm_sample_visible(h, weight, visible_bias, uniforms):
    if not cupy_float_arrays(h, weight, visible_bias) or not cupy_float_arrays(uniforms):
        return reference.rbm_sample_visible(h, weight, visible_bias, uniforms)
    return _sample(h @ weight.T, visible_bias, uniforms)


@register_kernel("rbm_gibbs_step", backend="cupy")
def rbm_gibbs_step(v, weight, visible_bias, hidden_bias, uniforms_h, uniforms_v):
    h_prob, h_sample = rbm_sample_hidden(v, weight, hidden_bias, uniforms_h)
    v_prob, v_sample = rbm_sample_visible(h_sample, weight, visible_bias, uniforms_v)
    return h_prob, h_sample, v_prob, v_sample


def rbm_gibbs_step_rng(v, weight, visible_bias, hidden_bias, generator=None):
    """``rbm_gibbs_step`` with uniforms from ``generator`` (a ``cupy.random`` generator; default: the global one)."""
    random = generator if generator is not None else cupy.random
    h_prob, h_sample = _sample(v @ weight, hidden_bias, random.random((v.shape[0], weight.shape[1]), dtype=v.dtype))
    v_prob, v_sample = _sample(h_sample @ weight.T, visible_bias,
                               random.random((v.shape[0], weight.shape[0]), dtype=v.dtype))
    return h_prob, h_sample, v_prob, v_sample
