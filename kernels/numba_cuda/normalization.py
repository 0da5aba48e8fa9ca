"""Batch normalisation on the GPU: per-channel reductions in shared memory, then elementwise kernels.

x: (N, C, L). Statistics: one *block* per channel. Its threads stride over the channel's
M = N L values, each keeping a private partial sum; the partial sums meet in shared memory
and are added pairwise in log2(threads) steps (a tree reduction):

    stride = threads / 2
    while stride > 0:
        if t < stride: partial[t] += partial[t + stride]
        syncthreads();  stride /= 2

Two passes, as in the reference (mean, then the sum of squared deviations from it), so no
E[x^2] - E[x]^2 cancellation. Sums are accumulated in float64. The normalisation and the
input gradient are elementwise kernels over all N C L values.

Layer normalisation, x: (M, D), is the same with the axes swapped: one block per *row*
(blocks stride over the rows), its statistics by the same tree reduction, and the row written
by the same block. Its weight and bias gradients are column sums over the rows: one thread
per column, walking down it (adjacent threads read adjacent addresses).
"""
from __future__ import annotations

import math

from numba import cuda, float64

from scratchgen.backend import get_array_module, register_kernel
from scratchgen.ops import normalization as reference

from ._launch import MAX_BLOCKS, THREADS, configure, device_float_arrays, launch

_BLOCK = THREADS  # threads per channel block; a power of two


@cuda.jit(device=True, inline=True)
def _block_sum(partial, value):
    """Sum ``value`` over the block's threads (tree reduction in shared memory); all threads get it."""
    t = cuda.threadIdx.x
    partial[t] = value
    cuda.syncthreads()
    stride = cuda.blockDim.x // 2
    while stride > 0:
        if t < stride:
            partial[t] += partial[t + stride]
        cuda.syncthreads()
        stride //= 2
    total = partial[0]
    cuda.syncthreads()  # everyone has read partial[0] before it is reused
    return total


@cuda.jit
def _channel_stats(x, mean, var):
    n_images, channels, length = x.shape
    c = cuda.blockIdx.x
    count = n_images * length
    partial = cuda.shared.array(_BLOCK, float64)
    local = 0.0
    for k in range(cuda.threadIdx.x, count, cuda.blockDim.x):
        local += x[k // length, c, k % length]
    m = _block_sum(partial, local) / count
    local = 0.0
    for k in range(cuda.threadIdx.x, count, cuda.blockDim.x):
        d = x[k // length, c, k % length] - m
        local += d * d
    v = _block_sum(partial, local) / count
    if cuda.threadIdx.x == 0:
        mean[c] = m
        var[c] = v


@cuda.jit
def _grad_sums(grad, xhat, sum_g, sum_gx):
    n_images, channels, length = grad.shape
    c = cuda.blockIdx.x
    count = n_images * length
    partial = cuda.shared.array(_BLOCK, float64)
    local_g, local_gx = 0.0, 0.0
    for k in range(cuda.threadIdx.x, count, cuda.blockDim.x):
        g = grad[k // length, c, k % length]
        local_g += g
        local_gx += g * xhat[k // length, c, k % length]
    total_g = _block_sum(partial, local_g)
    total_gx = _block_sum(partial, local_gx)
    if cuda.threadIdx.x == 0:
        sum_g[c] = total_g
        sum_gx[c] = total_gx


@cuda.jit
def _normalize(x, mean, inv_std, gamma, beta, y, xhat):
    n_images, channels, length = x.shape
    for index in range(cuda.grid(1), x.size, cuda.gridsize(1)):
        n, c, k = index // (channels * length), (index // length) % channels, index % length
        h = (x[n, c, k] - mean[c]) * inv_std[c]
        xhat[n, c, k] = h
        y[n, c, k] = xhat[n, c, k] * gamma[c] + beta[c]


@cuda.jit
def _input_grad(grad, xhat, scale, mean_g, mean_gx, training, out):
    n_images, channels, length = grad.shape
    for index in range(cuda.grid(1), grad.size, cuda.gridsize(1)):
        n, c, k = index // (channels * length), (index // length) % channels, index % length
        if training:
            out[n, c, k] = (grad[n, c, k] - mean_g[c] - xhat[n, c, k] * mean_gx[c]) * scale[c]
        else:
            out[n, c, k] = grad[n, c, k] * scale[c]


@register_kernel("batch_norm_forward", backend="numba-cuda")
def batch_norm_forward(x, gamma, beta, running_mean, running_var, training, momentum, eps):
    if not device_float_arrays(x, gamma, beta) or x.ndim != 3 or (not training and running_mean is None) or x.size == 0:
        return reference.batch_norm_forward(x, gamma, beta, running_mean, running_var, training, momentum, eps)
    xp = get_array_module(x)
    x = xp.ascontiguousarray(x)
    channels = x.shape[1]
    if training:
        count = x.shape[0] * x.shape[2]
        mean, var = xp.empty(channels, x.dtype), xp.empty(channels, x.dtype)
        configure(_channel_stats, channels, _BLOCK)(x, mean, var)
        reference.update_running_stats(running_mean, running_var, mean, var, count, momentum)
    else:
        mean, var = running_mean.astype(x.dtype, copy=False), running_var.astype(x.dtype, copy=False)
    inv_std = 1.0 / xp.sqrt(var + eps)
    y, xhat = xp.empty_like(x), xp.empty_like(x)
    launch(_normalize, x.size)(x, xp.ascontiguousarray(mean), inv_std, gamma, beta, y, xhat)
    return y, xhat, inv_std


@register_kernel("batch_norm_backward", backend="numba-cuda")
def batch_norm_backward(grad, xhat, gamma, inv_std, training,
                        needs_input_grad=True, needs_gamma_grad=True, needs_beta_grad=True):
    if not device_float_arrays(grad, xhat, gamma, inv_std) or grad.ndim != 3 or grad.size == 0:
        return reference.batch_norm_backward(grad, xhat, gamma, inv_std, training,
                                             needs_input_grad, needs_gamma_grad, needs_beta_grad)
    xp = get_array_module(grad)
    grad, xhat = xp.ascontiguousarray(grad), xp.ascontiguousarray(xhat)
    channels = grad.shape[1]
    need_sums = needs_gamma_grad or needs_beta_grad or (training and needs_input_grad)
    grad_beta = grad_gamma = grad_x = None
    if need_sums:
        grad_beta, grad_gamma = xp.empty(channels, grad.dtype), xp.empty(channels, grad.dtype)
        configure(_grad_sums, channels, _BLOCK)(grad, xhat, grad_beta, grad_gamma)
    if needs_input_grad:
        count = grad.shape[0] * grad.shape[2]
        scale = gamma * inv_std
        mean_g = grad_beta / count if training else scale
        mean_gx = grad_gamma / count if training else scale
        grad_x = xp.empty_like(grad)
        launch(_input_grad, grad.size)(grad, xhat, scale, mean_g, mean_gx, bool(training), grad_x)
    return grad_x, (grad_gamma if needs_gamma_grad else None), (grad_beta if needs_beta_grad else None)


# ---- layer norm ----------------------------------------------------------------------------------
@cuda.jit
def _layer_norm_rows(x, weight, bias, eps, y, mean, inv_std):
    rows, width = x.shape
    partial = cuda.shared.array(_BLOCK, float64)
    t, step = cuda.threadIdx.x, cuda.blockDim.x
    for r in range(cuda.blockIdx.x, rows, cuda.gridDim.x):
        local = 0.0
        for j in range(t, width, step):
            local += x[r, j]
        m = _block_sum(partial, local) / width
        local = 0.0
        for j in range(t, width, step):
            d = x[r, j] - m
            local += d * d
        s = 1.0 / math.sqrt(_block_sum(partial, local) / width + eps)
        if t == 0:
            mean[r] = m
            inv_std[r] = s
        for j in range(t, width, step):
            y[r, j] = (x[r, j] - m) * s * weight[j] + bias[j]


@cuda.jit
def _layer_norm_input_grad(grad, x, mean, inv_std, weight, grad_x):
    rows, width = grad.shape
    partial = cuda.shared.array(_BLOCK, float64)
    t, step = cuda.threadIdx.x, cuda.blockDim.x
    for r in range(cuda.blockIdx.x, rows, cuda.gridDim.x):
        m, s = mean[r], inv_std[r]
        local_g, local_gx = 0.0, 0.0
        for j in range(t, width, step):
            gw = grad[r, j] * weight[j]
            local_g += gw
            local_gx += gw * (x[r, j] - m) * s
        mean_g = _block_sum(partial, local_g) / width
        mean_gx = _block_sum(partial, local_gx) / width
        for j in range(t, width, step):
            grad_x[r, j] = (grad[r, j] * weight[j] - mean_g - (x[r, j] - m) * s * mean_gx) * s


@cuda.jit
def _layer_norm_param_grads(grad, x, mean, inv_std, grad_weight, grad_bias):
    rows, width = grad.shape
    for j in range(cuda.grid(1), width, cuda.gridsize(1)):
        total_w, total_b = 0.0, 0.0
        for r in range(rows):
            total_w += grad[r, j] * (x[r, j] - mean[r]) * inv_std[r]
            total_b += grad[r, j]
        grad_weight[j] = total_w
        grad_bias[j] = total_b


def _row_blocks(rows: int) -> int:
    return max(1, min(rows, MAX_BLOCKS))


@register_kernel("layer_norm_forward", backend="numba-cuda")
def layer_norm_forward(x, weight, bias, eps):
    if not device_float_arrays(x, weight, bias) or x.ndim != 2 or x.size == 0:
        return reference.layer_norm_forward(x, weight, bias, eps)
    xp = get_array_module(x)
    x = xp.ascontiguousarray(x)
    rows, width = x.shape
    weight = xp.ones(width, x.dtype) if weight is None else weight
    bias = xp.zeros(width, x.dtype) if bias is None else bias
    y, mean, inv_std = xp.empty_like(x), xp.empty(rows, x.dtype), xp.empty(rows, x.dtype)
    configure(_layer_norm_rows, _row_blocks(rows), _BLOCK)(x, weight, bias, float(eps), y, mean, inv_std)
    return y, mean, inv_std


@register_kernel("layer_norm_backward", backend="numba-cuda")
def layer_norm_backward(grad, x, mean, inv_std, weight, needs_input_grad=True, needs_weight_grad=True,
                        needs_bias_grad=True):
    if not device_float_arrays(grad, x, mean, inv_std, weight) or grad.ndim != 2 or grad.size == 0:
        return reference.layer_norm_backward(grad, x, mean, inv_std, weight, needs_input_grad, needs_weight_grad,
                                             needs_bias_grad)
    xp = get_array_module(grad)
    grad, x = xp.ascontiguousarray(grad), xp.ascontiguousarray(x)
    rows, width = grad.shape
    needs_weight_grad = needs_weight_grad and weight is not None
    grad_x = grad_weight = grad_bias = None
    if needs_weight_grad or needs_bias_grad:
        grad_weight, grad_bias = xp.empty(width, grad.dtype), xp.empty(width, grad.dtype)
        launch(_layer_norm_param_grads, width)(grad, x, mean, inv_std, grad_weight, grad_bias)
    if needs_input_grad:
        grad_x = xp.empty_like(grad)
        weight = xp.ones(width, grad.dtype) if weight is None else weight
        configure(_layer_norm_input_grad, _row_blocks(rows), _BLOCK)(grad, x, mean, inv_std, weight, grad_x)
    return grad_x, (grad_weight if needs_weight_grad else None), (grad_bias if needs_bias_grad else None)
