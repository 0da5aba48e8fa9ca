"""Adam and SGD over *all* parameters in one kernel launch.

A model has tens of parameter arrays, many of them small (biases). One launch per array
costs ~10-20 us of launch overhead each, more than the update itself; so the kernel takes
the parameters as tuples of flat arrays and one grid-stride loop walks the concatenation of
all of them. Thread i finds its array by subtracting sizes:

    k = 0;  while i >= size(p_k): i -= size(p_k); k += 1        then update p_k[i]

(a linear scan over a few dozen sizes: cheap next to the memory traffic). Numba compiles one
version per tuple length, i.e. once per model.

The parameter lists become tuples of Numba views (``_launch.as_numba``, cached: the same
parameters every step) and the sizes a device array cached by shape, so a step makes no
host-to-device copy. Each element's update is the reference's arithmetic in the reference's order (see
scratchgen/optim.py): m = b1 m + (1 - b1) g, v = b2 v + (1 - b2) g^2,
p -= step_size m / (sqrt(v) / sqrt(1 - b2^t) + eps).
"""
from __future__ import annotations

import math

import numpy as np
from numba import cuda

from scratchgen import optim as reference
from scratchgen.backend import get_array_module, register_kernel

from ._launch import as_numba, device_float_arrays, launch


@cuda.jit(device=True, inline=True)
def _locate(sizes, index):
    """(array number, index inside it) of element ``index`` of the concatenated arrays."""
    k = 0
    while k < len(sizes) - 1 and index >= sizes[k]:
        index -= sizes[k]
        k += 1
    return k, index


@cuda.jit
def _adam(params, grads, exp_avgs, exp_avg_sqs, sizes, total, step_size, root_bias2, beta1, beta2, eps, weight_decay):
    for flat in range(cuda.grid(1), total, cuda.gridsize(1)):
        k, i = _locate(sizes, flat)
        p, m, v = params[k], exp_avgs[k], exp_avg_sqs[k]
        # Four loads first, arithmetic in registers, three stores: each array touched once.
        g, p_i, m_i, v_i = grads[k][i], p[i], m[i], v[i]
        if weight_decay != 0:
            g = g + weight_decay * p_i
        m_i = m_i * beta1 + (1.0 - beta1) * g
        v_i = v_i * beta2 + (1.0 - beta2) * (g * g)
        denom = math.sqrt(v_i) / root_bias2 + eps
        m[i], v[i] = m_i, v_i
        p[i] = p_i - (m_i / denom) * step_size


@cuda.jit
def _sgd(params, grads, velocities, sizes, total, lr, momentum, nesterov, weight_decay):
    for flat in range(cuda.grid(1), total, cuda.gridsize(1)):
        k, i = _locate(sizes, flat)
        p = params[k]
        g = grads[k][i]
        if weight_decay != 0:
            g = g + weight_decay * p[i]
        if momentum != 0:
            velocity = velocities[k]
            velocity[i] = velocity[i] * momentum + g
            direction = g + momentum * velocity[i] if nesterov else velocity[i]
        else:
            direction = g
        p[i] -= lr * direction


def _fusable(params, *lists) -> bool:
    """One launch needs device float arrays of one dtype, contiguous (flat views share memory)."""
    arrays = list(params) + [a for lst in lists for a in lst]
    return (len(params) > 0 and device_float_arrays(*arrays)
            and all(a.flags.c_contiguous for a in arrays)
            and all(a.shape == p.shape for lst in lists for a, p in zip(lst, params)))


def _flat_tuple(arrays):
    return tuple(as_numba(a.reshape(-1)) for a in arrays)


_SIZES = {}  # (array module, sizes) -> the sizes as a device array: no host-to-device copy per step


def _sizes(params):
    xp = get_array_module(params[0])
    key = (xp.__name__, tuple(p.size for p in params))
    if key not in _SIZES:
        if len(_SIZES) > 64:
            _SIZES.clear()
        _SIZES[key] = xp.asarray(np.array(key[1], dtype=np.int64))
    return _SIZES[key]


@register_kernel("adam_update", backend="numba-cuda")
def adam_update(params, grads, exp_avgs, exp_avg_sqs, step, lr, beta1, beta2, eps, weight_decay):
    if step < 1:
        raise ValueError(f"adam_update: step counts from 1, got {step}")
    xp = get_array_module(*params) if params else np
    grads = [xp.ascontiguousarray(g) for g in grads]
    if not _fusable(params, grads, exp_avgs, exp_avg_sqs):
        return reference.adam_update(params, grads, exp_avgs, exp_avg_sqs, step, lr, beta1, beta2, eps, weight_decay)
    total = sum(p.size for p in params)
    if total:
        launch(_adam, total)(_flat_tuple(params), _flat_tuple(grads), _flat_tuple(exp_avgs), _flat_tuple(exp_avg_sqs),
                             _sizes(params), total, lr / (1.0 - beta1**step), math.sqrt(1.0 - beta2**step),
                             float(beta1), float(beta2), float(eps), float(weight_decay))


@register_kernel("sgd_update", backend="numba-cuda")
def sgd_update(params, grads, velocities, lr, momentum, nesterov, weight_decay):
    xp = get_array_module(*params) if params else np
    grads = [xp.ascontiguousarray(g) for g in grads]
    state = [velocities] if momentum else []
    if not _fusable(params, grads, *state):
        return reference.sgd_update(params, grads, velocities, lr, momentum, nesterov, weight_decay)
    total = sum(p.size for p in params)
    flat_velocities = _flat_tuple(velocities) if momentum else _flat_tuple(params)  # unused when momentum = 0
    if total:
        launch(_sgd, total)(_flat_tuple(params), _flat_tuple(grads), flat_velocities, _sizes(params), total,
                            float(lr), float(momentum), bool(nesterov), float(weight_decay))
