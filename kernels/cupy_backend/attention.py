"""Masked softmax as CUDA C++ (a RawModule): one block per row of scores, reductions in shared memory.

The same algorithm as ``kernels/numba_cuda/attention.py``: a block takes a row (blocks stride
over the rows), its threads stride over the row's L entries, and two tree reductions give the
row's maximum over the allowed entries and the sum of the exponentials (in double):

    forward:  e_j = exp(x_j - m) if allowed else 0;  y = e / sum e   (all 0 if nothing is allowed)
    backward: y (g - sum g y)

The mask arrives as its distinct rows (R', L) and an index (R,) (built by ``mask_rows`` with
CuPy), so a causal or padding mask is never expanded to the scores' size. ``out`` may be the
input itself: each thread reads and writes only its own entries.
"""
from __future__ import annotations


import cupy
import numpy as np

from scratchgen.backend import register_kernel
from scratchgen.ops import attention as reference

from ._elementwise import RawKernels, cupy_float_arrays
from .normalization import BLOCK_SUM_SOURCE

_SOURCE = BLOCK_SUM_SOURCE + r"""
__device__ __forceinline__ double block_max(double value, double* partial) {
    int t = threadIdx.x;
    partial[t] = value;
    __syncthreads();
    for (int stride = blockDim.x / 2; stride > 0; stride >>= 1) {
        if (t < stride && partial[t + stride] > partial[t]) partial[t] = partial[t + stride];
        __syncthreads();
    }
    double result = partial[0];
    __syncthreads();
    return result;
}

template <typename T>
__global__ void masked_softmax_rows(const T* x, const bool* mask, const long long* mask_index, int has_mask,
                                    T* out, long long rows, int length) {
    extern __shared__ double partial[];
    const double minus_inf = -__longlong_as_double(0x7ff0000000000000LL);
    for (long long r = blockIdx.x; r < rows; r += gridDim.x) {
        const T* row = x + r * length;
        T* result = out + r * length;
        const bool* allowed = has_mask ? mask + mask_index[r] * length : mask;
        double local = minus_inf;
        for (int j = threadIdx.x; j < length; j += blockDim.x)
            if ((!has_mask || allowed[j]) && (double)row[j] > local) local = row[j];
        double m = block_max(local, partial);  // the same in every thread: the branch below is uniform
        if (m == minus_inf) {
            for (int j = threadIdx.x; j < length; j += blockDim.x) result[j] = (T)0;
            continue;
        }
        local = 0.0;
        for (int j = threadIdx.x; j < length; j += blockDim.x) {
            T e = (!has_mask || allowed[j]) ? exp(row[j] - (T)m) : (T)0;
            result[j] = e;
            local += (double)e;
        }
        double scale = 1.0 / block_sum(local, partial);
        for (int j = threadIdx.x; j < length; j += blockDim.x) result[j] = (T)(result[j] * scale);
    }
}

template <typename T>
__global__ void softmax_backward_rows(const T* grad, const T* y, T* out, long long rows, int length) {
    extern __shared__ double partial[];
    for (long long r = blockIdx.x; r < rows; r += gridDim.x) {
        const T* g = grad + r * length;
        const T* p = y + r * length;
        T* result = out + r * length;
        double local = 0.0;
        for (int j = threadIdx.x; j < length; j += blockDim.x) local += (double)g[j] * (double)p[j];
        T dot = (T)block_sum(local, partial);
        for (int j = threadIdx.x; j < length; j += blockDim.x) result[j] = (g[j] - dot) * p[j];
    }
}
"""
_NAMES = [f"{kernel}<{t}>" for kernel in ("masked_softmax_rows", "softmax_backward_rows") for t in ("float", "double")]
_THREADS = 128  # threads per row: attention rows are a few hundred entries


_function = RawKernels(_SOURCE, _NAMES).function  # (name, dtype) -> launcher of name<float|double>


def mask_rows(mask, shape):
    """``(rows (R', L) bool, index (R,) int64)`` with mask broadcast to ``shape`` row r = rows[index[r]]."""
    length = shape[-1]
    mask = mask.reshape((1,) * (len(shape) - mask.ndim) + mask.shape)
    rows = cupy.ascontiguousarray(cupy.broadcast_to(mask, mask.shape[:-1] + (length,)))
    lead = rows.shape[:-1]
    index = cupy.broadcast_to(cupy.arange(int(np.prod(lead)), dtype=np.int64).reshape(lead), tuple(shape[:-1]))
    return rows.reshape(-1, length), cupy.ascontiguousarray(index).reshape(-1)


def _output(out, like):
    if out is not None and out.shape == like.shape and out.dtype == like.dtype and out.flags.c_contiguous:
        return out
    return cupy.empty(like.shape, like.dtype)


def _launch(name, dtype, rows, *args):
    blocks = max(1, min(int(rows), 65_535))
    _function(name, dtype)((blocks,), (_THREADS,), args, shared_mem=_THREADS * 8)


@register_kernel("masked_softmax_forward", backend="cupy")
def masked_softmax_forward(x, mask, out=None):
    if (not cupy_float_arrays(x) or x.ndim == 0 or x.size == 0
            or (mask is not None and (not type(mask).__module__.startswith("cupy") or mask.dtype != np.bool_))):
        return reference.masked_softmax_forward(x, mask, out)
    length = x.shape[-1]
    result = _output(out, x)
    rows = cupy.ascontiguousarray(x).reshape(-1, length)
    if mask is None:
        table, index = cupy.ones((1, 1), np.bool_), cupy.zeros(1, np.int64)
    else:
        table, index = mask_rows(mask, x.shape)
    _launch("masked_softmax_rows", x.dtype, rows.shape[0], rows, table, index, np.int32(mask is not None),
            result.reshape(-1, length), np.int64(rows.shape[0]), np.int32(length))
    return result


@register_kernel("masked_softmax_backward", backend="cupy")
def masked_softmax_backward(grad, y, out=None):
    if not cupy_float_arrays(grad, y) or grad.shape != y.shape or grad.ndim == 0 or grad.size == 0:
        return reference.masked_softmax_backward(grad, y, out)
    length = grad.shape[-1]
    result = _output(out, grad)
    rows = grad.size // length
    _launch("softmax_backward_rows", grad.dtype, rows, cupy.ascontiguousarray(grad).reshape(-1, length),
            cupy.ascontiguousarray(y).reshape(-1, length), result.reshape(-1, length), np.int64(rows), np.int32(length))
    return result
