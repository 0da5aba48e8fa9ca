"""Batch normalisation, forward and backward: per channel, two reading passes and one writing pass.

x: (N, C, L) (an image batch (N, C, H, W) is passed as (N, C, H W), a feature batch as (N, C, 1)).
For each channel c, with M = N L values:

    forward:  mean = sum x / M,   var = sum (x - mean)^2 / M   (two passes: no E[x^2] - E[x]^2
              cancellation),  xhat = (x - mean) / sqrt(var + eps),  y = gamma xhat + beta
    backward: sum_g = sum g,  sum_gx = sum g xhat,
              dx = gamma / sqrt(var + eps) (g - sum_g / M - xhat sum_gx / M)

NumPy does each line as whole-array operations with temporaries ((N, C, L)-sized for
``x - mean``, ``centered**2``, ``xhat * gamma``, ...). Here each channel is one thread's job:
its sums accumulate in float64 registers and the outputs are written once.

Feature batches (L = 1, BatchNorm1d after a Linear layer) have each channel's values C apart
in memory; walking one channel at a time would gather. For them the loops run row by row and
keep C running sums side by side (the loop over channels is the vectorised one).
The running statistics (C,) are updated exactly as the reference does.

Layer normalisation, x: (M, D) rows (each example's features, contiguous): one row is one
iteration of the parallel loop, in cache from its first read to its last write.

    forward:  mean and variance of the row (two passes), then y = (x - mean) inv_std w + b in
              one pass (the only (M, D) array written; the backward recomputes xhat)
    backward: per row, sum gw and sum gw xhat (gw = g w), then dx = inv_std (gw - mean - xhat mean');
              dw = sum over rows of g xhat and db = sum over rows of g are column sums, which
              every thread would race on: rows go in fixed chunks, each chunk adds into its own
              float64 row of a (chunks, D) array, and NumPy adds the chunks up at the end
              (the same result for any thread count).

Row sums are accumulated in the data's dtype, so a float32 row is summed 8 lanes at a time
(D is a few hundred, where the vectorised sum's 8 partial sums are as accurate as the NumPy
reference's pairwise one). Numba types ``float32 / int`` and ``1.0 / float32`` as float64, so
the loops get ``zero`` and ``inv_width`` = 1/D as scalars of the data's dtype, and row
statistics round-trip through their float32 output arrays before use.
"""
from __future__ import annotations

import numpy as np
from numba import prange

from scratchgen.backend import register_kernel
from scratchgen.ops import normalization as reference

from ._jit import host_float_arrays, jit


@jit(reassociate=True)
def _channel_stats(x, mean, var):
    """Per-channel mean and (biased) variance of x (N, C, L), two-pass, float64 sums."""
    n_images, channels, length = x.shape
    count = n_images * length
    for c in prange(channels):
        total = 0.0
        for n in range(n_images):
            for k in range(length):
                total += x[n, c, k]
        m = total / count
        squares = 0.0
        for n in range(n_images):
            for k in range(length):
                d = x[n, c, k] - m
                squares += d * d
        mean[c] = m
        var[c] = squares / count


@jit(parallel=False)
def _feature_stats(x, mean, var):
    """As ``_channel_stats`` for x (N, C): rows outer, channels inner (contiguous, vectorised)."""
    n_rows, channels = x.shape
    total = np.zeros(channels)
    for n in range(n_rows):
        for c in range(channels):
            total[c] += x[n, c]
    for c in range(channels):
        mean[c] = total[c] / n_rows
        total[c] = 0.0
    for n in range(n_rows):
        for c in range(channels):
            d = x[n, c] - mean[c]
            total[c] += d * d
    for c in range(channels):
        var[c] = total[c] / n_rows


@jit(parallel=False)
def _feature_grad_sums(grad, xhat, sum_g, sum_gx):
    n_rows, channels = grad.shape
    total, total_x = np.zeros(channels), np.zeros(channels)
    for n in range(n_rows):
        for c in range(channels):
            total[c] += grad[n, c]
            total_x[c] += grad[n, c] * xhat[n, c]
    for c in range(channels):
        sum_g[c] = total[c]
        sum_gx[c] = total_x[c]


@jit
def _feature_normalize(x, mean, inv_std, gamma, beta, y, xhat):
    """As ``_normalize`` for x (N, C), rows in parallel, channels inner."""
    for n in prange(x.shape[0]):
        for c in range(x.shape[1]):
            h = (x[n, c] - mean[c]) * inv_std[c]
            xhat[n, c] = h
            y[n, c] = xhat[n, c] * gamma[c] + beta[c]


@jit
def _feature_input_grad(grad, xhat, scale, mean_g, mean_gx, training, out):
    for n in prange(grad.shape[0]):
        for c in range(grad.shape[1]):
            if training:
                out[n, c] = (grad[n, c] - mean_g[c] - xhat[n, c] * mean_gx[c]) * scale[c]
            else:
                out[n, c] = grad[n, c] * scale[c]


@jit
def _normalize(x, mean, inv_std, gamma, beta, y, xhat):
    """xhat = (x - mean) inv_std, y = xhat gamma + beta, per channel."""
    n_images, channels, length = x.shape
    for c in prange(channels):
        m, s, g, b = mean[c], inv_std[c], gamma[c], beta[c]
        for n in range(n_images):
            for k in range(length):
                h = (x[n, c, k] - m) * s
                xhat[n, c, k] = h
                y[n, c, k] = xhat[n, c, k] * g + b


@jit(reassociate=True)
def _grad_sums(grad, xhat, sum_g, sum_gx):
    n_images, channels, length = grad.shape
    for c in prange(channels):
        total, total_x = 0.0, 0.0
        for n in range(n_images):
            for k in range(length):
                total += grad[n, c, k]
                total_x += grad[n, c, k] * xhat[n, c, k]
        sum_g[c] = total
        sum_gx[c] = total_x


@jit
def _input_grad(grad, xhat, scale, mean_g, mean_gx, training, out):
    """out = scale (grad - mean_g - xhat mean_gx) in training, scale grad otherwise."""
    n_images, channels, length = grad.shape
    for c in prange(channels):
        s, mg, mgx = scale[c], mean_g[c], mean_gx[c]
        for n in range(n_images):
            for k in range(length):
                if training:
                    out[n, c, k] = (grad[n, c, k] - mg - xhat[n, c, k] * mgx) * s
                else:
                    out[n, c, k] = grad[n, c, k] * s


@register_kernel("batch_norm_forward", backend="numba")
def batch_norm_forward(x, gamma, beta, running_mean, running_var, training, momentum, eps):
    if not host_float_arrays(x, gamma, beta) or x.ndim != 3 or (not training and running_mean is None):
        return reference.batch_norm_forward(x, gamma, beta, running_mean, running_var, training, momentum, eps)
    x = np.ascontiguousarray(x)
    channels = x.shape[1]
    if training:
        count = x.shape[0] * x.shape[2]
        mean, var = np.empty(channels, x.dtype), np.empty(channels, x.dtype)
        if x.shape[2] == 1:
            _feature_stats(x[:, :, 0], mean, var)
        else:
            _channel_stats(x, mean, var)
        reference.update_running_stats(running_mean, running_var, mean, var, count, momentum)
    else:
        mean, var = running_mean.astype(x.dtype, copy=False), running_var.astype(x.dtype, copy=False)
    inv_std = 1.0 / np.sqrt(var + eps)
    y, xhat = np.empty_like(x), np.empty_like(x)
    mean = np.ascontiguousarray(mean)
    if x.shape[2] == 1:
        _feature_normalize(x[:, :, 0], mean, inv_std, gamma, beta, y[:, :, 0], xhat[:, :, 0])
    else:
        _normalize(x, mean, inv_std, gamma, beta, y, xhat)
    return y, xhat, inv_std


@register_kernel("batch_norm_backward", backend="numba")
def batch_norm_backward(grad, xhat, gamma, inv_std, training,
                        needs_input_grad=True, needs_gamma_grad=True, needs_beta_grad=True):
    if not host_float_arrays(grad, xhat, gamma, inv_std) or grad.ndim != 3:
        return reference.batch_norm_backward(grad, xhat, gamma, inv_std, training,
                                             needs_input_grad, needs_gamma_grad, needs_beta_grad)
    grad, xhat = np.ascontiguousarray(grad), np.ascontiguousarray(xhat)
    channels = grad.shape[1]
    need_sums = needs_gamma_grad or needs_beta_grad or (training and needs_input_grad)
    grad_beta = grad_gamma = grad_x = None
    if need_sums:
        grad_beta, grad_gamma = np.empty(channels, grad.dtype), np.empty(channels, grad.dtype)
        if grad.shape[2] == 1:
            _feature_grad_sums(grad[:, :, 0], xhat[:, :, 0], grad_beta, grad_gamma)
        else:
            _grad_sums(grad, xhat, grad_beta, grad_gamma)
    if needs_input_grad:
        count = grad.shape[0] * grad.shape[2]
        scale = gamma * inv_std
        mean_g = grad_beta / count if training else scale
        mean_gx = grad_gamma / count if training else scale
        grad_x = np.empty_like(grad)
        if grad.shape[2] == 1:
            _feature_input_grad(grad[:, :, 0], xhat[:, :, 0], scale, mean_g, mean_gx, bool(training), grad_x[:, :, 0])
        else:
            _input_grad(grad, xhat, scale, mean_g, mean_gx, bool(training), grad_x)
    return grad_x, (grad_gamma if needs_gamma_grad else None), (grad_beta if needs_beta_grad else None)


# ---- layer norm ----------------------------------------------------------------------------------
@jit(fma=True, reassociate=True)
def _layer_norm_rows(x, weight, bias, eps, zero, inv_width, y, mean, inv_std):
    rows, width = x.shape
    for r in prange(rows):
        total = zero
        for j in range(width):
            total += x[r, j]
        m = total * inv_width
        squares = zero
        for j in range(width):
            d = x[r, j] - m
            squares += d * d
        mean[r] = m
        inv_std[r] = 1.0 / np.sqrt(squares * inv_width + eps)
        s = inv_std[r]  # read back: in the data's dtype
        for j in range(width):
            y[r, j] = (x[r, j] - m) * s * weight[j] + bias[j]


@jit(fma=True, reassociate=True)
def _layer_norm_backward_rows(grad, x, mean, inv_std, weight, chunk, need_input, need_params, zero, inv_width,
                              grad_x, partial_w, partial_b):
    rows, width = grad.shape
    for c in prange(partial_w.shape[0]):
        for r in range(c * chunk, min(rows, (c + 1) * chunk)):
            m, s = mean[r], inv_std[r]
            if need_input:
                sum_g, sum_gx = zero, zero
                for j in range(width):
                    gw = grad[r, j] * weight[j]
                    sum_g += gw
                    sum_gx += gw * ((x[r, j] - m) * s)
                mean_g, mean_gx = sum_g * inv_width, sum_gx * inv_width
                for j in range(width):
                    grad_x[r, j] = (grad[r, j] * weight[j] - mean_g - (x[r, j] - m) * s * mean_gx) * s
            if need_params:
                for j in range(width):
                    partial_w[c, j] += grad[r, j] * ((x[r, j] - m) * s)
                    partial_b[c, j] += grad[r, j]


LAYER_NORM_CHUNKS = 64  # at most this many row chunks (partial column sums) per backward


@register_kernel("layer_norm_forward", backend="numba")
def layer_norm_forward(x, weight, bias, eps):
    present = [a for a in (weight, bias) if a is not None]
    if not host_float_arrays(x, *present) or x.ndim != 2 or x.size == 0:
        return reference.layer_norm_forward(x, weight, bias, eps)
    x = np.ascontiguousarray(x)
    rows, width = x.shape
    weight = np.ones(width, x.dtype) if weight is None else np.ascontiguousarray(weight)
    bias = np.zeros(width, x.dtype) if bias is None else np.ascontiguousarray(bias)
    y, mean, inv_std = np.empty_like(x), np.empty(rows, x.dtype), np.empty(rows, x.dtype)
    scalar = x.dtype.type
    _layer_norm_rows(x, weight, bias, scalar(eps), scalar(0), scalar(1 / width), y, mean, inv_std)
    return y, mean, inv_std


@register_kernel("layer_norm_backward", backend="numba")
def layer_norm_backward(grad, x, mean, inv_std, weight, needs_input_grad=True, needs_weight_grad=True,
                        needs_bias_grad=True):
    present = [weight] if weight is not None else []
    if not host_float_arrays(grad, x, mean, inv_std, *present) or grad.ndim != 2 or grad.size == 0:
        return reference.layer_norm_backward(grad, x, mean, inv_std, weight, needs_input_grad, needs_weight_grad,
                                             needs_bias_grad)
    grad, x = np.ascontiguousarray(grad), np.ascontiguousarray(x)
    rows, width = grad.shape
    needs_weight_grad = needs_weight_grad and weight is not None
    need_params = needs_weight_grad or needs_bias_grad
    weight = np.ones(width, grad.dtype) if weight is None else np.ascontiguousarray(weight)
    chunk = -(-rows // LAYER_NORM_CHUNKS)
    chunks = -(-rows // chunk)
    partial_w = np.zeros((chunks, width if need_params else 0))  # (chunks, 0) when not needed
    partial_b = np.zeros_like(partial_w)
    grad_x = np.empty_like(grad) if needs_input_grad else np.empty((0, width), grad.dtype)
    _layer_norm_backward_rows(grad, x, mean, inv_std, weight, chunk, bool(needs_input_grad), need_params,
                              grad.dtype.type(0), grad.dtype.type(1 / width), grad_x, partial_w, partial_b)
    grad_weight = partial_w.sum(axis=0).astype(grad.dtype) if needs_weight_grad else None
    grad_bias = partial_b.sum(axis=0).astype(grad.dtype) if needs_bias_grad else None
    return (grad_x if needs_input_grad else None), grad_weight, grad_bias
