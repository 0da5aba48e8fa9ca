"""Adam and SGD updates: one fused, in-place pass over every parameter, all parameters in one call.

NumPy's Adam does about ten array passes per parameter (m *= b1, m += (1 - b1) g, g * g, ...,
p -= update), allocating three temporaries; the loop below reads p, g, m, v once and writes
p, m, v once. The arithmetic is the reference's, in the same order and in the parameter's own
dtype (the scalars are cast to it first, as NumPy does), so the results are bit-identical.

All parameters go to one compiled call, as tuples of flat arrays: ``GROUP`` arrays per tuple
(the last tuple padded with empty arrays), so one compiled version serves every model, whatever
its number of parameters. One call per parameter cost ~7 us of dispatch each (10-16 per step
for the models here); the tuples cost ~1 us per array to unbox.
"""
from __future__ import annotations

import math

import numpy as np
from numba import prange

from scratchgen import optim as reference
from scratchgen.backend import FLOAT_DTYPES, register_kernel

from ._jit import jit


GROUP = 8  # arrays per tuple argument (see the module docstring)

# The arrays of parameter k are taken out of the tuples one statement each. Written as one
# tuple assignment (``p, g, m, v = ps[k], gs[k], ms[k], vs[k]``), Numba 0.68's parallel version
# of the loop below lost its writes to the parameters: they were never updated, with any number
# of threads (the serial version was right). Found when the models first ran at 2 threads;
# ``tests/test_kernels_numba_cpu.py`` now runs every kernel's parallel version against NumPy.


@jit
def _adam(ps, gs, ms, vs, step_size, root_bias2, beta1, one_minus_beta1, beta2, one_minus_beta2, eps, weight_decay):
    for k in range(len(ps)):
        p = ps[k]
        g = gs[k]
        m = ms[k]
        v = vs[k]
        for i in prange(p.size):
            grad = g[i]
            if weight_decay != 0:
                grad = grad + weight_decay * p[i]
            m[i] = m[i] * beta1 + one_minus_beta1 * grad
            v[i] = v[i] * beta2 + one_minus_beta2 * (grad * grad)
            denom = np.sqrt(v[i]) / root_bias2 + eps
            p[i] -= (m[i] / denom) * step_size


@jit
def _sgd(ps, gs, velocities, lr, momentum, nesterov, weight_decay):
    for k in range(len(ps)):
        p = ps[k]
        g = gs[k]
        velocity = velocities[k]
        for i in prange(p.size):
            grad = g[i]
            if weight_decay != 0:
                grad = grad + weight_decay * p[i]
            if momentum != 0:
                velocity[i] = velocity[i] * momentum + grad
                if nesterov:
                    direction = grad + momentum * velocity[i]
                else:
                    direction = velocity[i]
            else:
                direction = grad
            p[i] -= lr * direction


def _groups(dtype, *columns):
    """Split parallel lists of flat arrays into tuples of ``GROUP``, the last padded with empty arrays.
    Yields (total elements, tuple per column)."""
    empty = np.empty(0, dtype)
    count = len(columns[0])
    for start in range(0, count, GROUP):
        chunk = [column[start:start + GROUP] for column in columns]
        pad = GROUP - len(chunk[0])
        size = sum(a.size for a in chunk[0])
        yield size, [tuple(c) + (empty,) * pad for c in chunk]


def _updatable(p, *state) -> bool:
    """In-place flat updates need C-contiguous float arrays of one dtype."""
    return (type(p) is np.ndarray and p.dtype in FLOAT_DTYPES and p.flags.c_contiguous
            and all(type(s) is np.ndarray and s.dtype == p.dtype and s.flags.c_contiguous for s in state))


def _flat(g, dtype):
    return np.ascontiguousarray(g, dtype=dtype).reshape(-1)


@register_kernel("adam_update", backend="numba")
def adam_update(params, grads, exp_avgs, exp_avg_sqs, step, lr, beta1, beta2, eps, weight_decay):
    if step < 1:
        raise ValueError(f"adam_update: step counts from 1, got {step}")
    step_size = lr / (1.0 - beta1**step)
    root_bias2 = math.sqrt(1.0 - beta2**step)
    by_dtype = {}
    for p, g, m, v in zip(params, grads, exp_avgs, exp_avg_sqs):
        if not _updatable(p, m, v) or g.shape != p.shape:
            reference.adam_update([p], [g], [m], [v], step, lr, beta1, beta2, eps, weight_decay)
            continue
        columns = by_dtype.setdefault(p.dtype, ([], [], [], []))
        for column, array in zip(columns, (p.reshape(-1), _flat(g, p.dtype), m.reshape(-1), v.reshape(-1))):
            column.append(array)
    for dtype, columns in by_dtype.items():
        f = dtype.type  # the scalars in the parameters' dtype, as NumPy would use them
        scalars = (f(step_size), f(root_bias2), f(beta1), f(1.0 - beta1), f(beta2), f(1.0 - beta2), f(eps), f(weight_decay))
        for size, tuples in _groups(dtype, *columns):
            _adam.call_sized(size, *tuples, *scalars)


@register_kernel("sgd_update", backend="numba")
def sgd_update(params, grads, velocities, lr, momentum, nesterov, weight_decay):
    by_dtype = {}
    for p, g, velocity in zip(params, grads, velocities):
        state = (velocity,) if momentum else ()
        if not _updatable(p, *state) or g.shape != p.shape:
            reference.sgd_update([p], [g], [velocity], lr, momentum, nesterov, weight_decay)
            continue
        flat_velocity = velocity.reshape(-1) if momentum else p.reshape(-1)[:0]  # unused when momentum = 0
        columns = by_dtype.setdefault(p.dtype, ([], [], []))
        for column, array in zip(columns, (p.reshape(-1), _flat(g, p.dtype), flat_velocity)):
            column.append(array)
    for dtype, columns in by_dtype.items():
        f = dtype.type
        for size, tuples in _groups(dtype, *columns):
            _sgd.call_sized(size, *tuples, f(lr), f(momentum), bool(nesterov), f(weight_decay))
