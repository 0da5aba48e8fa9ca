"""Layer normalisation as CUDA C++ (a RawModule): one block per row, reductions in shared memory.

The algorithm of ``kernels/numba_cuda/normalization.py``: a block takes a row of x (M, D),
computes its mean and variance by tree reductions (double sums, two passes), and writes the
row of y = (x - mean) inv_std w + b. Backward: the same per row for dx, and one thread per
column for dw = sum over rows of g xhat and db = sum over rows of g. (Batch norm stays on the
reference: CuPy's reductions are single kernels already.)
"""
from __future__ import annotations


import cupy
import numpy as np

from scratchgen.backend import register_kernel
from scratchgen.ops import normalization as reference

from ._elementwise import RawKernels, cupy_float_arrays

# The block's sum (tree reduction in shared memory), every thread gets it; attention.py uses it too.
BLOCK_SUM_SOURCE = r"""
__device__ __forceinline__ double block_sum(double value, double* partial) {
    int t = threadIdx.x;
    partial[t] = value;
    __syncthreads();
    for (int stride = blockDim.x / 2; stride > 0; stride >>= 1) {
        if (t < stride) partial[t] += partial[t + stride];
        __syncthreads();
    }
    double total = partial[0];
    __syncthreads();  // everyone has read partial[0] before it is reused
    return total;
}
"""

_SOURCE = BLOCK_SUM_SOURCE + r"""

template <typename T>
__global__ void layer_norm_rows(const T* x, const T* weight, const T* bias, int has_weight, int has_bias,
                                double eps, T* y, T* mean, T* inv_std, long long rows, int width) {
    extern __shared__ double partial[];
    for (long long r = blockIdx.x; r < rows; r += gridDim.x) {
        const T* row = x + r * width;
        double local = 0.0;
        for (int j = threadIdx.x; j < width; j += blockDim.x) local += (double)row[j];
        double m = block_sum(local, partial) / width;
        local = 0.0;
        for (int j = threadIdx.x; j < width; j += blockDim.x) {
            double d = (double)row[j] - m;
            local += d * d;
        }
        double s = 1.0 / sqrt(block_sum(local, partial) / width + eps);
        if (threadIdx.x == 0) { mean[r] = (T)m; inv_std[r] = (T)s; }
        for (int j = threadIdx.x; j < width; j += blockDim.x) {
            double v = ((double)row[j] - m) * s;
            if (has_weight) v *= (double)weight[j];
            if (has_bias) v += (double)bias[j];
            y[r * width + j] = (T)v;
        }
    }
}

template <typename T>
__global__ void layer_norm_input_grad(const T* grad, const T* x, const T* mean, const T* inv_std, const T* weight,
                                      int has_weight, T* grad_x, long long rows, int width) {
    extern __shared__ double partial[];
    for (long long r = blockIdx.x; r < rows; r += gridDim.x) {
        const T* g = grad + r * width;
        const T* row = x + r * width;
        double m = (double)mean[r], s = (double)inv_std[r];
        double local_g = 0.0, local_gx = 0.0;
        for (int j = threadIdx.x; j < width; j += blockDim.x) {
            double gw = has_weight ? (double)g[j] * (double)weight[j] : (double)g[j];
            local_g += gw;
            local_gx += gw * ((double)row[j] - m) * s;
        }
        double mean_g = block_sum(local_g, partial) / width;
        double mean_gx = block_sum(local_gx, partial) / width;
        for (int j = threadIdx.x; j < width; j += blockDim.x) {
            double gw = has_weight ? (double)g[j] * (double)weight[j] : (double)g[j];
            grad_x[r * width + j] = (T)((gw - mean_g - ((double)row[j] - m) * s * mean_gx) * s);
        }
    }
}

template <typename T>
__global__ void layer_norm_param_grads(const T* grad, const T* x, const T* mean, const T* inv_std,
                                       T* grad_weight, T* grad_bias, long long rows, int width) {
    for (int j = blockIdx.x * blockDim.x + threadIdx.x; j < width; j += gridDim.x * blockDim.x) {
        double total_w = 0.0, total_b = 0.0;
        for (long long r = 0; r < rows; ++r) {
            double g = (double)grad[r * width + j];
            total_w += g * ((double)x[r * width + j] - (double)mean[r]) * (double)inv_std[r];
            total_b += g;
        }
        grad_weight[j] = (T)total_w;
        grad_bias[j] = (T)total_b;
    }
}
"""
_NAMES = [f"{kernel}<{t}>" for kernel in ("layer_norm_rows", "layer_norm_input_grad", "layer_norm_param_grads")
          for t in ("float", "double")]
_THREADS = 128


_function = RawKernels(_SOURCE, _NAMES).function  # (name, dtype) -> launcher of name<float|double>


def _row_blocks(rows: int) -> int:
    return max(1, min(int(rows), 65_535))


@register_kernel("layer_norm_forward", backend="cupy")
def layer_norm_forward(x, weight, bias, eps):
    if not cupy_float_arrays(x, weight, bias) or x.ndim != 2 or x.size == 0:
        return reference.layer_norm_forward(x, weight, bias, eps)
    x = cupy.ascontiguousarray(x)
    rows, width = x.shape
    y, mean, inv_std = cupy.empty_like(x), cupy.empty(rows, x.dtype), cupy.empty(rows, x.dtype)
    dummy = x[0]  # stands in for a missing weight or bias (never read)
    _function("layer_norm_rows", x.dtype)(
        (_row_blocks(rows),), (_THREADS,),
        (x, dummy if weight is None else cupy.ascontiguousarray(weight), dummy if bias is None else cupy.ascontiguousarray(bias),
         np.int32(weight is not None), np.int32(bias is not None), np.float64(eps), y, mean, inv_std,
         np.int64(rows), np.int32(width)), shared_mem=_THREADS * 8)
    return y, mean, inv_std


@register_kernel("layer_norm_backward", backend="cupy")
def layer_norm_backward(grad, x, mean, inv_std, weight, needs_input_grad=True, needs_weight_grad=True,
                        needs_bias_grad=True):
    if not cupy_float_arrays(grad, x, mean, inv_std, weight) or grad.ndim != 2 or grad.size == 0:
        return reference.layer_norm_backward(grad, x, mean, inv_std, weight, needs_input_grad, needs_weight_grad,
                                             needs_bias_grad)
    grad, x = cupy.ascontiguousarray(grad), cupy.ascontiguousarray(x)
    mean, inv_std = cupy.ascontiguousarray(mean), cupy.ascontiguousarray(inv_std)
    rows, width = grad.shape
    needs_weight_grad = needs_weight_grad and weight is not None
    grad_x = grad_weight = grad_bias = None
    if needs_weight_grad or needs_bias_grad:
        grad_weight, grad_bias = cupy.empty(width, grad.dtype), cupy.empty(width, grad.dtype)
        _function("layer_norm_param_grads", grad.dtype)(
            (max(1, -(-width // _THREADS)),), (_THREADS,),
            (grad, x, mean, inv_std, grad_weight, grad_bias, np.int64(rows), np.int32(width)))
    if needs_input_grad:
        grad_x = cupy.empty_like(grad)
        _function("layer_norm_input_grad", grad.dtype)(
            (_row_blocks(rows),), (_THREADS,),
            (grad, x, mean, inv_std, grad[0] if weight is None else cupy.ascontiguousarray(weight),
             np.int32(weight is not None), grad_x, np.int64(rows), np.int32(width)), shared_mem=_THREADS * 8)
    return grad_x, (grad_weight if needs_weight_grad else None), (grad_bias if needs_bias_grad else None)
