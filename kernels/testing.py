"""Parity cases: inputs for every kernel, and the comparison each backend must pass against NumPy.

Used by ``tests/test_kernels_*.py`` (with hypothesis drawing the sizes) and by the benchmarks'
self-check. A *case builder* takes ``(rng, dtype, dim)`` where ``dim(low, high)`` returns an int
in [low, high] (hypothesis draws them in the tests) and returns the positional arguments of
the kernel. ``compare`` checks one backend's result against the reference's:

    max |got - expected| / max |expected|  <  1e-12 (float64)  or  1e-5 (float32)

a norm-wise relative error per output array (element-wise relative errors are meaningless
where a sum cancels to near 0). Arrays the kernel updates in place (Adam's moments, batch
norm's running statistics) are compared the same way. Bernoulli samples must be equal except
where the uniform lies within rounding of its probability.
"""
from __future__ import annotations

import copy
from typing import Callable, Dict, Tuple

import numpy as np

from scratchgen.device import to_numpy

RTOL = {np.dtype(np.float64): 1e-12, np.dtype(np.float32): 1e-5}

Dim = Callable[[int, int], int]

# Draws with an upper bound at most this are geometry (kernel size, stride, padding, flags),
# which must keep its relation to other draws; larger bounds are sizes, free to scale up.
GEOMETRY_MAX = 3


def scaled_dim(rng, low: int, high: int, factor: int) -> int:
    """A ``dim`` for larger-than-test sizes: sizes drawn from [high, factor * high], geometry at its maximum."""
    if high <= GEOMETRY_MAX:
        return high
    return int(rng.integers(high, factor * high + 1))


def _normal(rng, dtype, *shape):
    return rng.standard_normal(shape).astype(dtype)


def _uniform(rng, dtype, *shape):
    return rng.random(shape).astype(dtype)


def _away_from_zero(rng, dtype, *shape):
    """Normal draws pushed >= 0.1 away from 0 (relu's kink: any backend may round there differently)."""
    x = rng.standard_normal(shape)
    return (x + 0.1 * np.sign(x)).astype(dtype)


# ---- case builders: (rng, dtype, dim) -> positional arguments ---------------------------------
def _unary(scale=3.0):
    return lambda rng, dt, dim: (_normal(rng, dt, dim(1, 5), dim(1, 9)) * dt.type(scale),)


def _grad_and(builder):
    """(grad, *inputs): the backward of an elementwise op given the forward's inputs."""

    def build(rng, dt, dim):
        inputs = builder(rng, dt, dim)
        return (_normal(rng, dt, *inputs[0].shape),) + inputs

    return build


def _output_in_unit(rng, dt, dim):
    return (_uniform(rng, dt, dim(1, 5), dim(1, 9)),)


def _relu_case(rng, dt, dim):
    return (_away_from_zero(rng, dt, dim(1, 5), dim(1, 9)),)


def _bce(rng, dt, dim):
    n, d = dim(1, 5), dim(1, 9)
    return _normal(rng, dt, n, d) * dt.type(8), _uniform(rng, dt, n, d)


def _two_normal(rng, dt, dim):
    n, d = dim(1, 5), dim(1, 9)
    return _normal(rng, dt, n, d), _normal(rng, dt, n, d)


def _four_normal(rng, dt, dim):
    n, d = dim(1, 5), dim(1, 9)
    return tuple(_normal(rng, dt, n, d) for _ in range(4))


def _reparameterize(rng, dt, dim):
    n, d, samples = dim(1, 5), dim(1, 9), dim(1, 2)
    return _normal(rng, dt, n, d), _normal(rng, dt, n, d), _normal(rng, dt, samples, n, d)


def _reparameterize_backward(rng, dt, dim):
    mu, logvar, eps = _reparameterize(rng, dt, dim)
    return _normal(rng, dt, *eps.shape), logvar, eps


def _contractive_forward(rng, dt, dim):
    n, v, h = dim(1, 5), dim(1, 9), dim(1, 6)
    return _normal(rng, dt, n, v), _normal(rng, dt, h, v) * dt.type(0.5), _normal(rng, dt, h)


def _contractive_backward(rng, dt, dim):
    x, weight, bias = _contractive_forward(rng, dt, dim)
    hidden = _uniform(rng, dt, x.shape[0], weight.shape[0])
    return _normal(rng, dt, x.shape[0]), x, weight, hidden


def _contractive_codes_forward(rng, dt, dim):
    n, v, h = dim(1, 5), dim(1, 9), dim(1, 6)
    return _uniform(rng, dt, n, h), _normal(rng, dt, h, v) * dt.type(0.5)


def _contractive_codes_backward(rng, dt, dim):
    hidden, weight = _contractive_codes_forward(rng, dt, dim)
    return _normal(rng, dt, hidden.shape[0]), hidden, weight, (weight * weight).sum(axis=1), (bool(dim(0, 1)), True)


def _binary(rng, dt, *shape):
    return (rng.random(shape) < 0.5).astype(dt)


def _rbm_hidden(rng, dt, dim):
    n, v, h = dim(1, 5), dim(1, 9), dim(1, 6)
    return _binary(rng, dt, n, v), _normal(rng, dt, v, h), _normal(rng, dt, h), _uniform(rng, dt, n, h)


def _rbm_visible(rng, dt, dim):
    n, v, h = dim(1, 5), dim(1, 9), dim(1, 6)
    return _binary(rng, dt, n, h), _normal(rng, dt, v, h), _normal(rng, dt, v), _uniform(rng, dt, n, v)


def _rbm_gibbs(rng, dt, dim):
    n, v, h = dim(1, 5), dim(1, 9), dim(1, 6)
    return (_binary(rng, dt, n, v), _normal(rng, dt, v, h), _normal(rng, dt, v), _normal(rng, dt, h),
            _uniform(rng, dt, n, h), _uniform(rng, dt, n, v))


def _rbm_pcd_hidden(rng, dt, dim):
    n, m, v, h = dim(1, 5), dim(1, 4), dim(1, 9), dim(1, 6)
    return _binary(rng, dt, n, v), _binary(rng, dt, m, v), _normal(rng, dt, v, h), _normal(rng, dt, h), _uniform(rng, dt, m, h)


def _rbm_statistics(rng, dt, dim):
    n, m, v, h = dim(1, 5), dim(1, 4), dim(1, 9), dim(1, 6)
    return _binary(rng, dt, n, v), _uniform(rng, dt, n, h), _binary(rng, dt, m, v), _uniform(rng, dt, m, h)


def _conv_geometry(dim):
    """(kernel, stride, padding) pairs, plus an input size at least as large as the padded kernel."""
    kh, kw = dim(1, 3), dim(1, 3)
    sh, sw = dim(1, 2), dim(1, 2)
    ph, pw = dim(0, kh - 1), dim(0, kw - 1)
    h, w = dim(max(1, kh - 2 * ph), 6), dim(max(1, kw - 2 * pw), 6)
    return (kh, kw), (sh, sw), (ph, pw), h, w


def _out(size, k, s, p):
    return (size + 2 * p - k) // s + 1


def _im2col(rng, dt, dim):
    k, s, p, h, w = _conv_geometry(dim)
    return _normal(rng, dt, dim(1, 2), dim(1, 3), h, w), k, s, p


def _col2im(rng, dt, dim):
    (kh, kw), s, p, h, w = _conv_geometry(dim)
    n, c = dim(1, 2), dim(1, 3)
    oh, ow = _out(h, kh, s[0], p[0]), _out(w, kw, s[1], p[1])
    return _normal(rng, dt, c * kh * kw, n * oh * ow), (n, c, h, w), (kh, kw), s, p


def _conv_to_columns(rng, dt, dim):
    return _normal(rng, dt, dim(1, 3), dim(1, 4), dim(1, 6), dim(1, 6)), False


def _conv_from_columns(rng, dt, dim):
    n, c, h, w = dim(1, 3), dim(1, 4), dim(1, 6), dim(1, 6)
    bias = _normal(rng, dt, c) if dim(0, 1) else None
    return _normal(rng, dt, c, n * h * w), bias, (n, c, h, w), False


def _winograd_geometry(dim):
    n, c, h, w, p = dim(1, 2), dim(1, 3), dim(1, 6), dim(1, 6), dim(0, 2)
    h, w = max(h, 3 - 2 * p), max(w, 3 - 2 * p)
    from scratchgen.ops.conv_winograd import tiles

    return n, c, h, w, p, tiles(h, p), tiles(w, p)


def _winograd_input(rng, dt, dim):
    n, c, h, w, p, th, tw = _winograd_geometry(dim)
    return _normal(rng, dt, n, c, h, w), p, th, tw


def _winograd_output(rng, dt, dim):
    n, c, h, w, p, th, tw = _winograd_geometry(dim)
    bias = _normal(rng, dt, c) if dim(0, 1) else None
    return _normal(rng, dt, 16, n * th * tw, c), bias, (n, c, h + 2 * p - 2, w + 2 * p - 2)


def _winograd_output_adjoint(rng, dt, dim):
    n, c, h, w, p, th, tw = _winograd_geometry(dim)
    return (_normal(rng, dt, n, c, h + 2 * p - 2, w + 2 * p - 2),)


def _winograd_input_adjoint(rng, dt, dim):
    n, c, h, w, p, th, tw = _winograd_geometry(dim)
    return _normal(rng, dt, 16, n * th * tw, c), (n, c, h, w), p


def _batch_norm_forward(rng, dt, dim):
    n, c, length = dim(2, 5), dim(1, 4), dim(1, 5)
    training = bool(dim(0, 1))
    running_mean, running_var = _normal(rng, dt, c), _uniform(rng, dt, c) + dt.type(0.5)
    return (_normal(rng, dt, n, c, length) * dt.type(2) + dt.type(1), _normal(rng, dt, c), _normal(rng, dt, c),
            running_mean, running_var, training, 0.1, 1e-5)


def _batch_norm_backward(rng, dt, dim):
    n, c, length = dim(2, 5), dim(1, 4), dim(1, 5)
    return (_normal(rng, dt, n, c, length), _normal(rng, dt, n, c, length), _normal(rng, dt, c),
            _uniform(rng, dt, c) + dt.type(0.5), bool(dim(0, 1)))


def _layer_norm_forward(rng, dt, dim):
    rows, width = dim(1, 5), dim(1, 9)
    weight = _normal(rng, dt, width) if dim(0, 1) else None
    bias = _normal(rng, dt, width) if dim(0, 1) else None
    return _normal(rng, dt, rows, width) * dt.type(2) + dt.type(1), weight, bias, 1e-5


def _layer_norm_backward(rng, dt, dim):
    rows, width = dim(1, 5), dim(1, 9)
    x = _normal(rng, dt, rows, width) * dt.type(2) + dt.type(1)
    mean, inv_std = x.mean(axis=1), _uniform(rng, dt, rows) + dt.type(0.5)
    weight = _normal(rng, dt, width) if dim(0, 1) else None
    return (_normal(rng, dt, rows, width), x, mean, inv_std, weight, bool(dim(0, 1)), bool(dim(0, 1)), bool(dim(0, 1)))


def _scores_shape(dim):
    """(batch, heads, Lq, Lk)-like score shapes, small: the CUDA simulator runs a block per row."""
    return dim(1, 2), dim(1, 2), dim(1, 3), dim(1, 7)


def _softmax_mask(rng, shape, kind):
    """None, a causal (Lq, Lk), a padding (N, 1, 1, Lk) or a full random mask (some rows fully masked)."""
    n, h, lq, lk = shape
    if kind == 0:
        return None
    if kind == 1:
        return np.arange(lq)[:, None] >= np.arange(lk)[None, :]
    if kind == 2:
        return rng.random((n, 1, 1, lk)) < 0.7
    return rng.random(shape) < 0.6


def _masked_softmax_forward(rng, dt, dim):
    shape = _scores_shape(dim)
    return _normal(rng, dt, *shape) * dt.type(4), _softmax_mask(rng, shape, dim(0, 3))


def _masked_softmax_backward(rng, dt, dim):
    """(grad, y) with y a masked softmax of unit-scale scores: a near one-hot y would make the whole
    output g - sum(g y) ~ 0 a cancellation, where float32 rounding order alone exceeds 1e-5."""
    shape = _scores_shape(dim)
    from scratchgen.ops.attention import masked_softmax_forward

    y = masked_softmax_forward(_normal(rng, dt, *shape), _softmax_mask(rng, shape, dim(0, 3)))
    return _normal(rng, dt, *shape), y


def _bias_activation_forward(rng, dt, dim):
    n, o = dim(1, 5), dim(1, 9)
    activation = ("relu", "sigmoid", "tanh", "leaky_relu")[dim(0, 3)]
    bias = _normal(rng, dt, o) if dim(0, 1) else None
    y = _away_from_zero(rng, dt, n, o) * dt.type(3)
    if bias is not None:  # keep y + bias away from relu's kink too
        y = y - bias
    return y, bias, activation, 0.2


def _bias_activation_backward(rng, dt, dim):
    n, o = dim(1, 5), dim(1, 9)
    activation = ("relu", "sigmoid", "tanh", "leaky_relu")[dim(0, 3)]
    h = _uniform(rng, dt, n, o) if activation in ("sigmoid", "tanh") else _away_from_zero(rng, dt, n, o)
    return _normal(rng, dt, n, o), h, activation, 0.2, bool(dim(0, 1))


def _parameters(rng, dt, dim):
    count = dim(1, 3)
    return [_normal(rng, dt, dim(1, 6), dim(1, 5)) if i % 2 == 0 else _normal(rng, dt, dim(1, 7)) for i in range(count)]


def _adam(rng, dt, dim):
    params = _parameters(rng, dt, dim)
    grads = [_normal(rng, dt, *p.shape) for p in params]
    exp_avgs = [_normal(rng, dt, *p.shape) * dt.type(0.1) for p in params]
    exp_avg_sqs = [_uniform(rng, dt, *p.shape) * dt.type(0.1) for p in params]
    weight_decay = 0.01 if dim(0, 1) else 0.0
    return params, grads, exp_avgs, exp_avg_sqs, dim(1, 20), 1e-2, 0.9, 0.999, 1e-8, weight_decay


def _sgd(rng, dt, dim):
    params = _parameters(rng, dt, dim)
    grads = [_normal(rng, dt, *p.shape) for p in params]
    momentum = 0.9 if dim(0, 1) else 0.0
    velocities = [_normal(rng, dt, *p.shape) for p in params] if momentum else [None] * len(params)
    return params, grads, velocities, 0.1, momentum, bool(dim(0, 1)), 0.01 if dim(0, 1) else 0.0


# Kernels that return a decision, not arrays: each backend answers for itself and no result depends
# on the answer (conv's column order: the same products in another order), so there is no parity.
POLICIES = ("conv_batch_last", "conv_algorithm")

CASES: Dict[str, Callable] = {
    "sigmoid_forward": _unary(8.0),
    "sigmoid_backward": _grad_and(_output_in_unit),
    "tanh_forward": _unary(3.0),
    "tanh_backward": _grad_and(_output_in_unit),
    "relu_forward": _relu_case,
    "relu_backward": _grad_and(_relu_case),
    "leaky_relu_forward": lambda rng, dt, dim: _relu_case(rng, dt, dim) + (0.2,),
    "leaky_relu_backward": lambda rng, dt, dim: _grad_and(_relu_case)(rng, dt, dim) + (0.2,),
    "softplus_forward": _unary(8.0),
    "softplus_backward": _grad_and(_unary(8.0)),
    "sigmoid_bce_with_logits_forward": _bce,
    "sigmoid_bce_with_logits_backward": _grad_and(_bce),
    "sigmoid_bce_with_logits_reduced": lambda rng, dt, dim: _bce(rng, dt, dim) + (dim(1, 5),),
    "gaussian_kl_standard_forward": _two_normal,
    "gaussian_kl_standard_backward": _grad_and(_two_normal),
    "gaussian_kl_forward": _four_normal,
    "gaussian_kl_backward": _grad_and(_four_normal),
    "reparameterize_forward": _reparameterize,
    "reparameterize_backward": _reparameterize_backward,
    "contractive_penalty_forward": _contractive_forward,
    "contractive_penalty_backward": _contractive_backward,
    "contractive_penalty_codes_forward": _contractive_codes_forward,
    "contractive_penalty_codes_backward": _contractive_codes_backward,
    "rbm_sample_hidden": _rbm_hidden,
    "rbm_sample_visible": _rbm_visible,
    "rbm_gibbs_step": _rbm_gibbs,
    "rbm_pcd_hidden": _rbm_pcd_hidden,
    "rbm_cd_statistics": _rbm_statistics,
    "im2col": _im2col,
    "col2im": _col2im,
    "conv_to_columns": _conv_to_columns,
    "conv_from_columns": _conv_from_columns,
    "winograd_input": _winograd_input,
    "winograd_output": _winograd_output,
    "winograd_output_adjoint": _winograd_output_adjoint,
    "winograd_input_adjoint": _winograd_input_adjoint,
    "batch_norm_forward": _batch_norm_forward,
    "batch_norm_backward": _batch_norm_backward,
    "layer_norm_forward": _layer_norm_forward,
    "layer_norm_backward": _layer_norm_backward,
    "gelu_forward": _unary(4.0),
    "gelu_backward": _grad_and(_unary(4.0)),
    "gelu_tanh_forward": _unary(4.0),
    "gelu_tanh_backward": _grad_and(_unary(4.0)),
    "masked_softmax_forward": _masked_softmax_forward,
    "masked_softmax_backward": _masked_softmax_backward,
    "bias_activation_forward": _bias_activation_forward,
    "bias_activation_backward": _bias_activation_backward,
    "adam_update": _adam,
    "sgd_update": _sgd,
}


# ---- extreme inputs: an exactly-zero factor times an overflowing exp ----------------------------
def extreme_cases(dtype) -> Dict[str, Tuple]:
    """Arguments at which a naive formula computes 0 * inf = NaN although the true value is finite.

    Every kernel here multiplies an exp by a factor that can be exactly 0: the residual mu_q - mu_p
    of two equal Gaussians times e^-logvar_p (logvar_p = -200), the noise eps = 0 times e^(logvar/2)
    (logvar = 200), and a saturated sigmoid's slope h (1 - h) = 0 times a squared row norm of W
    that overflows (W ~ 1e20 in float32). The exponents overflow float32 (e^88.7) and float64
    (e^709.8) alike. A backend must return finite values there, as the reference does.
    """
    dt = np.dtype(dtype)
    big = dt.type(200.0 if dt == np.float32 else 1500.0)  # exp(big / 2) overflows in this dtype
    huge = dt.type(1e20 if dt == np.float32 else 1e200)  # huge ** 2 overflows in this dtype
    rng = np.random.default_rng(0)
    mu = np.array([[0.5, -1.0, 0.0], [2.0, 0.25, -3.0]], dtype=dt)
    grad = _normal(rng, dt, *mu.shape)
    low, high = np.full(mu.shape, -big, dt), np.full(mu.shape, big, dt)
    zero = np.zeros(mu.shape, dt)
    x, weight = _normal(rng, dt, 4, 5), _normal(rng, dt, 3, 5) * huge
    saturated = (rng.random((4, 3)) < 0.5).astype(dt)  # h exactly 0 or 1, as sigmoid(+-1e20) gives
    return {
        "gaussian_kl_forward": (mu, low, mu.copy(), low.copy()),
        "gaussian_kl_backward": (grad, mu, low, mu.copy(), low.copy()),
        "reparameterize_forward": (mu, high, zero),
        "reparameterize_backward": (grad, high, zero),
        "contractive_penalty_forward": (x, weight, np.zeros(3, dt)),
        "contractive_penalty_backward": (_normal(rng, dt, 4), x, weight, saturated),
        "contractive_penalty_codes_backward": (_normal(rng, dt, 4), saturated, weight,
                                               np.full(3, np.inf, dt), (True, True)),
    }


def check_extreme(name: str, implementation: Callable, reference: Callable, dtype,
                  to_backend: Callable = lambda a: a) -> None:
    """Run ``extreme_cases(dtype)[name]``: every output finite, and equal to the reference's."""
    args = extreme_cases(dtype)[name]
    expected = reference(*copy.deepcopy(args))
    got = implementation(*_map_arrays(copy.deepcopy(args), to_backend))
    for index, leaf in enumerate(_flatten(got)):
        if leaf is not None and not np.all(np.isfinite(to_numpy(leaf))):
            raise AssertionError(f"{name}: output {index} is not finite at the extreme inputs: {to_numpy(leaf)}")
    compare(name, got, expected, dtype)


# ---- comparison ----------------------------------------------------------------------------------
def relative_error(got, expected) -> float:
    """max |got - expected| / max |expected| (0 when both are empty or all zero and equal)."""
    got, expected = np.asarray(to_numpy(got), np.float64), np.asarray(to_numpy(expected), np.float64)
    if got.shape != expected.shape:
        raise AssertionError(f"shape {got.shape} != reference shape {expected.shape}")
    if got.size == 0:
        return 0.0
    both_nan = np.isnan(got) & np.isnan(expected)
    difference = np.where(both_nan, 0.0, np.abs(got - expected))
    scale = np.max(np.abs(np.where(both_nan, 0.0, expected)))
    error = float(np.max(difference))
    return error / scale if scale > 0 else error


def _samples_match(name, sample, expected_sample, uniforms, prob, rtol):
    """Bernoulli draws agree except where |u - p| is within rounding (either side may round it)."""
    sample, expected_sample = to_numpy(sample), to_numpy(expected_sample)
    if sample.dtype != expected_sample.dtype:
        raise AssertionError(f"{name}: sample dtype {sample.dtype} != reference {expected_sample.dtype}")
    near = np.abs(np.asarray(uniforms, np.float64) - np.asarray(to_numpy(prob), np.float64)) <= 10 * rtol
    bad = (sample != expected_sample) & ~near
    if bad.any():
        raise AssertionError(f"{name}: {int(bad.sum())} Bernoulli samples differ from the reference")


def _flatten(value):
    if isinstance(value, (tuple, list)):
        return [leaf for item in value for leaf in _flatten(item)]
    return [value]


def compare(name: str, got, expected, dtype, args=None, expected_args=None, floors=None) -> float:
    """Raise AssertionError unless ``got`` matches ``expected`` (and in-place args match); return the error.

    ``floors``: per output, the reference's own relative error against a float64 run of it. An output
    may differ from the reference by up to 4x that (or ``RTOL``, whichever is larger): where a sum
    cancels, float32 rounding of either side alone exceeds RTOL, and agreeing better than the
    reference agrees with the truth cannot be asked.
    """
    rtol = RTOL[np.dtype(dtype)]
    worst = 0.0
    got_leaves, expected_leaves = _flatten(got), _flatten(expected)
    if len(got_leaves) != len(expected_leaves):
        raise AssertionError(f"{name}: {len(got_leaves)} outputs, reference has {len(expected_leaves)}")
    samples = {"rbm_sample_hidden": [(1, 0, 3)], "rbm_sample_visible": [(1, 0, 3)],
               "rbm_gibbs_step": [(1, 0, 4), (3, 2, 5)], "rbm_pcd_hidden": [(2, 1, 4)]}.get(name, [])
    sample_slots = {s for s, _, _ in samples}
    for index, (a, b) in enumerate(zip(got_leaves, expected_leaves)):
        if (a is None) != (b is None):
            raise AssertionError(f"{name}: output {index} is {a is None and 'None' or 'an array'}, reference disagrees")
        if a is None or index in sample_slots:
            continue
        error = relative_error(a, b)
        limit = max(rtol, 4 * floors[index]) if floors else rtol
        if not error < limit:
            raise AssertionError(f"{name}: output {index} relative error {error:.3g} >= {limit:.3g} ({np.dtype(dtype)}; "
                                 f"the reference's own float32 error is {floors[index] if floors else 0:.3g})")
        worst = max(worst, error)
    for slot, prob_slot, uniform_arg in samples:
        _samples_match(name, got_leaves[slot], expected_leaves[slot], args[uniform_arg], expected_leaves[prob_slot], rtol)
    if args is not None:
        for index, (a, b) in enumerate(zip(_flatten(list(args)), _flatten(list(expected_args)))):
            if hasattr(b, "shape") and hasattr(b, "dtype") and np.dtype(b.dtype).kind == "f":
                error = relative_error(a, b)
                if not error < rtol:
                    raise AssertionError(f"{name}: in-place argument {index} relative error {error:.3g} >= {rtol:g}")
                worst = max(worst, error)
    return worst


def run_parity(name: str, implementation: Callable, reference: Callable, args: Tuple, dtype,
               to_backend: Callable = lambda a: a) -> float:
    """Run ``implementation`` on ``to_backend``-moved copies of ``args`` and ``reference`` on host
    copies; compare the outputs and the in-place-updated arguments. Returns the worst error."""
    host_args = copy.deepcopy(args)
    backend_args = _map_arrays(copy.deepcopy(args), to_backend)
    expected = reference(*host_args)
    got = implementation(*backend_args)
    return compare(name, got, expected, dtype, backend_args, host_args, _reference_floors(reference, args, expected, dtype))


def _reference_floors(reference, args, expected, dtype):
    """For float32: each output's relative error against the reference run in float64 (None otherwise)."""
    if np.dtype(dtype) != np.float32:
        return None
    wide = _map_arrays(copy.deepcopy(args), lambda a: a.astype(np.float64) if a.dtype == np.float32 else a)
    try:
        exact = _flatten(reference(*wide))
    except Exception:  # a reference that insists on float32 (a dtype check): no floor
        return None
    floors = []
    for a, b in zip(_flatten(expected), exact):
        try:
            floors.append(0.0 if a is None or b is None else relative_error(a, b))
        except (AssertionError, TypeError, ValueError):
            floors.append(0.0)
    return floors


def _map_arrays(value, fn):
    if isinstance(value, np.ndarray):
        return fn(value)
    if isinstance(value, tuple):
        return tuple(_map_arrays(v, fn) for v in value)
    if isinstance(value, list):
        return [_map_arrays(v, fn) for v in value]
    return value
