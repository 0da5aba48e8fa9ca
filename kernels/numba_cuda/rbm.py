"""RBM block-Gibbs sampling on the GPU: cuBLAS GEMM, then one kernel for bias + sigmoid + draw.

    h_prob = sigmoid(v @ W + c) (computed in place over the GEMM output),  h_sample = (u < h_prob)

The GEMM goes to cuBLAS through CuPy's ``@``. The fused kernel takes the uniforms as an
argument (parity with the NumPy reference), or draws them itself from per-thread
xoroshiro128p generators (``rbm_gibbs_step_rng``, states from ``make_rng_states``): then the
(N, H) and (N, V) uniform arrays are never written to memory at all.

The CD statistics are GEMM-bound; the backend leaves them to the reference, which runs on
CuPy arrays (cuBLAS) unchanged.
"""
from __future__ import annotations

import functools
import math

from numba import cuda

from scratchgen.backend import get_array_module, register_kernel
from scratchgen.ops import rbm as reference

from ._launch import SIMULATED, THREADS, configure, device_float_arrays, grid
from .activations import sigmoid

ROWS = 4  # rows per thread per trip of the sampling kernel
MAX_ROW_BLOCKS = 1 if SIMULATED else 65_535


@cuda.jit(device=True, inline=True)
def _draw(pre, u, b):
    """(p, sample) = (sigmoid(pre + b), 1 if u < p else 0) for one unit, its values already loaded."""
    p = sigmoid(pre + b)
    return p, 1.0 if u < p else 0.0


@cuda.jit
def _bias_sigmoid_sample(pre, bias, uniforms, sample):
    """A 2-D grid: x gives each thread one column k (neighbours read neighbouring addresses), blocks
    stride over the rows in y, ROWS rows per trip with all loads first (the map kernels' idea,
    ``_launch.py``). No division per element: a flat index would need n = i // width, k = i % width,
    64-bit divisions that would cost more than the memory traffic at H200 bandwidth."""
    rows, width = pre.shape
    k = cuda.blockIdx.x * cuda.blockDim.x + cuda.threadIdx.x
    if k >= width:
        return
    b = bias[k]
    for n0 in range(cuda.blockIdx.y * ROWS, rows, cuda.gridDim.y * ROWS):
        n1, n2, n3 = min(n0 + 1, rows - 1), min(n0 + 2, rows - 1), min(n0 + 3, rows - 1)  # clamped: loaded, not stored
        a0, a1, a2, a3 = pre[n0, k], pre[n1, k], pre[n2, k], pre[n3, k]
        u0, u1, u2, u3 = uniforms[n0, k], uniforms[n1, k], uniforms[n2, k], uniforms[n3, k]
        pre[n0, k], sample[n0, k] = _draw(a0, u0, b)
        if n0 + 1 < rows:
            pre[n1, k], sample[n1, k] = _draw(a1, u1, b)
        if n0 + 2 < rows:
            pre[n2, k], sample[n2, k] = _draw(a2, u2, b)
        if n0 + 3 < rows:
            pre[n3, k], sample[n3, k] = _draw(a3, u3, b)


def _sample_grid(rows: int, width: int):
    """((blocks over columns, blocks over row groups), threads) for ``_bias_sigmoid_sample``."""
    column_blocks = math.ceil(width / THREADS)
    row_blocks = max(1, min(MAX_ROW_BLOCKS, math.ceil(rows / ROWS)))
    return (column_blocks, row_blocks), THREADS


@functools.lru_cache(maxsize=None)
def _rng_kernel():
    """The on-device-RNG variant, built on first use (numba.cuda.random is slow to import)."""
    from numba.cuda.random import xoroshiro128p_uniform_float64

    @cuda.jit
    def _bias_sigmoid_sample_rng(pre, bias, states, sample):
        thread = cuda.grid(1)
        rows, width = pre.shape
        for i in range(thread, rows * width, cuda.gridsize(1)):
            n, k = i // width, i % width
            pre[n, k] = sigmoid(pre[n, k] + bias[k])
            sample[n, k] = 1.0 if xoroshiro128p_uniform_float64(states, thread) < pre[n, k] else 0.0

    return _bias_sigmoid_sample_rng


def _sample_layer(inputs, weight_view, bias, uniforms=None, states=None):
    xp = get_array_module(inputs)
    prob = xp.ascontiguousarray(inputs @ weight_view)
    sample = xp.empty_like(prob)
    if prob.size:
        if states is None:
            configure(_bias_sigmoid_sample, *_sample_grid(*prob.shape))(prob, bias, xp.ascontiguousarray(uniforms), sample)
        else:
            # One state per launched thread: launch no more threads than there are states (the
            # grid-stride loop covers the rest).
            blocks, threads = grid(prob.size)
            blocks = min(blocks, len(states) // threads)
            if blocks < 1:
                raise ValueError(f"rbm_gibbs_step_rng: {len(states)} RNG states, need at least {threads}")
            configure(_rng_kernel(), blocks, threads)(prob, bias, states, sample)
    return prob, sample


@register_kernel("rbm_sample_hidden", backend="numba-cuda")
def rbm_sample_hidden(v, weight, hidden_bias, uniforms):
    if not device_float_arrays(v, weight, hidden_bias):
        return reference.rbm_sample_hidden(v, weight, hidden_bias, uniforms)
    if uniforms.shape != (v.shape[0], weight.shape[1]):
        raise ValueError(f"rbm_sample_hidden: uniforms have shape {uniforms.shape}, expected {(v.shape[0], weight.shape[1])}")
    return _sample_layer(v, weight, hidden_bias, uniforms)


@register_kernel("rbm_sample_visible", backend="numba-cuda")
def rbm_sample_visible(h, weight, visible_bias, uniforms):
    if not device_float_arrays(h, weight, visible_bias):
        return reference.rbm_sample_visible(h, weight, visible_bias, uniforms)
    if uniforms.shape != (h.shape[0], weight.shape[0]):
        raise ValueError(f"rbm_sample_visible: uniforms have shape {uniforms.shape}, expected {(h.shape[0], weight.shape[0])}")
    return _sample_layer(h, weight.T, visible_bias, uniforms)


@register_kernel("rbm_gibbs_step", backend="numba-cuda")
def rbm_gibbs_step(v, weight, visible_bias, hidden_bias, uniforms_h, uniforms_v):
    h_prob, h_sample = rbm_sample_hidden(v, weight, hidden_bias, uniforms_h)
    v_prob, v_sample = rbm_sample_visible(h_sample, weight, visible_bias, uniforms_v)
    return h_prob, h_sample, v_prob, v_sample


def make_rng_states(threads: int = None, seed: int = 0):
    """xoroshiro128p states for ``rbm_gibbs_step_rng``: one independent stream per GPU thread.

    A launch uses at most ``threads`` threads (each draws several numbers when the layer is
    larger). Default: 1,024 blocks' worth on a GPU (4 MiB of state), one block in the simulator.
    """
    from numba.cuda.random import create_xoroshiro128p_states

    if threads is None:
        threads = THREADS * (1 if SIMULATED else 1024)
    return create_xoroshiro128p_states(threads, seed=seed)


def rbm_gibbs_step_rng(v, weight, visible_bias, hidden_bias, states):
    """``rbm_gibbs_step`` drawing its uniforms on the device from ``states`` (see make_rng_states)."""
    h_prob, h_sample = _sample_layer(v, weight, hidden_bias, states=states)
    v_prob, v_sample = _sample_layer(h_sample, weight.T, visible_bias, states=states)
    return h_prob, h_sample, v_prob, v_sample
