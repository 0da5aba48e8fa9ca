"""Adam and SGD for all parameters in ONE kernel launch (a CUDA C++ RawModule).

The kernel gets four tables of device pointers (parameters, gradients, first and second
moments) and the running offsets of the arrays in their concatenation; each thread walks a
grid-stride loop over the concatenated index and finds its array by binary search in the
offsets. One launch replaces one launch per parameter array (each ~10 us of overhead, more
than a bias update costs).

The pointer tables are built once per set of arrays and cached (a training loop updates
the same arrays every step), so a step makes no host-to-device copy at all.
Arithmetic: the reference's, in its order, in the parameters' dtype ``T``.
"""
from __future__ import annotations

import math
from collections import OrderedDict

import cupy
import numpy as np

from scratchgen import optim as reference
from scratchgen.backend import register_kernel

from ._elementwise import RawKernels, cupy_float_arrays

_SOURCE = r"""
template <typename T>
__device__ __forceinline__ int find_array(const long long* offsets, int count, long long index) {
    // The k with offsets[k] <= index < offsets[k + 1] (offsets has count + 1 entries).
    int lo = 0, hi = count - 1;
    while (lo < hi) {
        int mid = (lo + hi + 1) / 2;
        if (offsets[mid] <= index) lo = mid; else hi = mid - 1;
    }
    return lo;
}

template <typename T>
__global__ void adam_multi(T** params, const T** grads, T** exp_avgs, T** exp_avg_sqs,
                           const long long* offsets, int count, long long total,
                           T step_size, T root_bias2, T beta1, T one_minus_beta1,
                           T beta2, T one_minus_beta2, T eps, T weight_decay) {
    for (long long flat = blockIdx.x * (long long)blockDim.x + threadIdx.x; flat < total;
         flat += (long long)gridDim.x * blockDim.x) {
        int k = find_array<T>(offsets, count, flat);
        long long i = flat - offsets[k];
        T* p = params[k]; T* m = exp_avgs[k]; T* v = exp_avg_sqs[k];
        T g = grads[k][i];
        if (weight_decay != (T)0) g = g + weight_decay * p[i];
        m[i] = m[i] * beta1 + one_minus_beta1 * g;
        v[i] = v[i] * beta2 + one_minus_beta2 * (g * g);
        T denom = sqrt(v[i]) / root_bias2 + eps;
        p[i] -= (m[i] / denom) * step_size;
    }
}

template <typename T>
__global__ void sgd_multi(T** params, const T** grads, T** velocities,
                          const long long* offsets, int count, long long total,
                          T lr, T momentum, int nesterov, T weight_decay) {
    for (long long flat = blockIdx.x * (long long)blockDim.x + threadIdx.x; flat < total;
         flat += (long long)gridDim.x * blockDim.x) {
        int k = find_array<T>(offsets, count, flat);
        long long i = flat - offsets[k];
        T* p = params[k];
        T g = grads[k][i];
        if (weight_decay != (T)0) g = g + weight_decay * p[i];
        T direction = g;
        if (momentum != (T)0) {
            T* vel = velocities[k];
            vel[i] = vel[i] * momentum + g;
            direction = nesterov ? g + momentum * vel[i] : vel[i];
        }
        p[i] -= lr * direction;
    }
}
"""
_NAMES = ["adam_multi<float>", "adam_multi<double>", "sgd_multi<float>", "sgd_multi<double>"]
_TABLES: "OrderedDict[tuple, tuple]" = OrderedDict()  # pointers -> device tables (a small LRU cache)
_THREADS = 256


_function = RawKernels(_SOURCE, _NAMES).function  # (name, dtype) -> launcher of name<float|double>


def _tables(*lists):
    """Device arrays of pointers, one per list, plus the offsets; cached by the pointers."""
    key = tuple(a.data.ptr for lst in lists for a in lst) + tuple(a.size for a in lists[0])
    if key not in _TABLES:
        pointers = [cupy.asarray(np.array([a.data.ptr for a in lst], dtype=np.uint64)) for lst in lists]
        offsets = cupy.asarray(np.concatenate([[0], np.cumsum([a.size for a in lists[0]])]).astype(np.int64))
        _TABLES[key] = (pointers, offsets)
        if len(_TABLES) > 16:
            _TABLES.popitem(last=False)
    _TABLES.move_to_end(key)
    return _TABLES[key]


def _fusable(params, *lists) -> bool:
    arrays = list(params) + [a for lst in lists for a in lst]
    return (len(params) > 0 and cupy_float_arrays(*arrays) and all(a.flags.c_contiguous for a in arrays)
            and all(a.shape == p.shape for lst in lists for a, p in zip(lst, params)))


def _blocks(total: int) -> int:
    return max(1, min(65_535, math.ceil(total / _THREADS)))


@register_kernel("adam_update", backend="cupy")
def adam_update(params, grads, exp_avgs, exp_avg_sqs, step, lr, beta1, beta2, eps, weight_decay):
    if step < 1:
        raise ValueError(f"adam_update: step counts from 1, got {step}")
    grads = [cupy.ascontiguousarray(g) for g in grads]
    if not _fusable(params, grads, exp_avgs, exp_avg_sqs):
        return reference.adam_update(params, grads, exp_avgs, exp_avg_sqs, step, lr, beta1, beta2, eps, weight_decay)
    (p_ptr, g_ptr, m_ptr, v_ptr), offsets = _tables(params, grads, exp_avgs, exp_avg_sqs)
    total = int(sum(p.size for p in params))
    f = params[0].dtype.type
    _function("adam_multi", params[0].dtype)(
        (_blocks(total),), (_THREADS,),
        (p_ptr, g_ptr, m_ptr, v_ptr, offsets, np.int32(len(params)), np.int64(total),
         f(lr / (1.0 - beta1**step)), f(math.sqrt(1.0 - beta2**step)), f(beta1), f(1.0 - beta1),
         f(beta2), f(1.0 - beta2), f(eps), f(weight_decay)))


@register_kernel("sgd_update", backend="cupy")
def sgd_update(params, grads, velocities, lr, momentum, nesterov, weight_decay):
    grads = [cupy.ascontiguousarray(g) for g in grads]
    state = [velocities] if momentum else []
    if not _fusable(params, grads, *state):
        return reference.sgd_update(params, grads, velocities, lr, momentum, nesterov, weight_decay)
    lists = (params, grads, velocities if momentum else params)  # velocities unused when momentum = 0
    (p_ptr, g_ptr, vel_ptr), offsets = _tables(*lists)
    total = int(sum(p.size for p in params))
    f = params[0].dtype.type
    _function("sgd_multi", params[0].dtype)(
        (_blocks(total),), (_THREADS,),
        (p_ptr, g_ptr, vel_ptr, offsets, np.int32(len(params)), np.int64(total),
         f(lr), f(momentum), np.int32(bool(nesterov)), f(weight_decay)))
