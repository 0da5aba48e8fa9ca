"""Weight initialisers: Glorot (Xavier), He (Kaiming), normal, uniform, zeros, ones.

Every initialiser is a plain function ``fn(shape, rng=None, dtype=np.float32, ...) -> array``
that *returns* a new host array; layers wrap the result in a ``Parameter``. ``rng`` is a
``numpy.random.Generator`` (or an int seed, or None for fresh entropy), so a model built with
``rng=np.random.default_rng(0)`` is the same model every time. Values are drawn in float64
and then cast, so a float32 and a float64 model built from the same seed hold the same
weights up to rounding (handy when gradchecking a float32 architecture in float64).

Fans (how many inputs feed one output unit, and how many outputs one input unit feeds):

    Linear weight             (out, in)                fan_in = in                fan_out = out
    Conv2d weight             (C_out, C_in, kH, kW)    fan_in = C_in kH kW        fan_out = C_out kH kW
    ConvTranspose2d weight    (C_in, C_out, kH, kW)    fan_in = C_in kH kW        fan_out = C_out kH kW

``compute_fans(shape)`` reads the first two rows (dimension 1 is the input side, dimension 0
the output side, times the kernel's receptive field). A transposed convolution stores its
weight the other way round, so ``ConvTranspose2d`` passes ``fans=`` explicitly; every
initialiser takes that override. (Strides are ignored: with stride s a transposed conv output
really sums about C_in kH kW / s^2 terms; like every common library we keep the simple count.)

The rules, with ``gain`` from ``calculate_gain`` (1 for linear/sigmoid, 5/3 for tanh,
sqrt(2) for relu, sqrt(2 / (1 + slope^2)) for leaky_relu):

    glorot_uniform   U(-a, a),   a   = gain sqrt(6 / (fan_in + fan_out))    (Glorot & Bengio 2010)
    glorot_normal    N(0, s^2),  s   = gain sqrt(2 / (fan_in + fan_out))
    he_uniform       U(-a, a),   a   = gain sqrt(3 / fan)                   (He et al. 2015)
    he_normal        N(0, s^2),  s   = gain / sqrt(fan)
                     (fan = fan_in by default, keeping forward activations' variance;
                      mode="fan_out" keeps the backward gradients' variance instead;
                      gain defaults to relu's sqrt(2))

A uniform U(-a, a) has variance a^2 / 3, so each uniform rule has the same variance as its
normal twin.
"""
from __future__ import annotations

import math
from typing import Callable, Optional, Sequence, Tuple

import numpy as np

__all__ = [
    "calculate_gain", "compute_fans", "glorot_uniform", "glorot_normal", "he_uniform", "he_normal",
    "normal", "uniform", "zeros", "ones", "get_initializer", "INITIALIZERS",
]

Fans = Optional[Tuple[int, int]]


def calculate_gain(nonlinearity: str, param: Optional[float] = None) -> float:
    """The factor by which to scale a weight's std for a following nonlinearity.

    linear/identity/sigmoid: 1;  tanh: 5/3;  relu: sqrt(2);  leaky_relu(slope): sqrt(2 / (1 + slope^2)).
    """
    if nonlinearity in ("linear", "identity", "sigmoid", "conv2d", "conv_transpose2d"):
        return 1.0
    if nonlinearity == "tanh":
        return 5.0 / 3.0
    if nonlinearity == "relu":
        return math.sqrt(2.0)
    if nonlinearity == "leaky_relu":
        slope = 0.01 if param is None else float(param)
        return math.sqrt(2.0 / (1.0 + slope**2))
    raise ValueError(
        f"calculate_gain: unknown nonlinearity {nonlinearity!r}; "
        f"choose linear, identity, sigmoid, tanh, relu or leaky_relu"
    )


def compute_fans(shape: Sequence[int]) -> Tuple[int, int]:
    """``(fan_in, fan_out)`` of a weight: ``shape[1] * receptive``, ``shape[0] * receptive``.

    ``receptive`` is the product of the dimensions after the first two (1 for a Linear weight,
    kH kW for a conv weight). A 1-D shape (a bias-like vector) has fan_in = fan_out = its length.
    """
    shape = tuple(int(s) for s in shape)
    if len(shape) == 0:
        raise ValueError("compute_fans: a scalar has no fans; initialise vectors or matrices")
    if len(shape) == 1:
        return shape[0], shape[0]
    receptive = math.prod(shape[2:])
    return shape[1] * receptive, shape[0] * receptive


def _generator(rng) -> np.random.Generator:
    # default_rng passes a Generator through unchanged, seeds from an int, or from entropy for None.
    return np.random.default_rng(rng)


def _fans(shape, fans: Fans) -> Tuple[int, int]:
    fan_in, fan_out = compute_fans(shape) if fans is None else (int(fans[0]), int(fans[1]))
    if fan_in <= 0 or fan_out <= 0:
        raise ValueError(f"init: fans must be positive, got fan_in={fan_in}, fan_out={fan_out} for shape {tuple(shape)}")
    return fan_in, fan_out


def _check_dtype(dtype):
    dtype = np.dtype(dtype)
    if dtype.kind != "f":
        raise TypeError(f"init: weights must have a floating dtype, got {dtype}")
    return dtype


def uniform(shape, low: float = -0.05, high: float = 0.05, rng=None, dtype=np.float32, fans: Fans = None) -> np.ndarray:
    """U(low, high) entries. ``fans`` is accepted (and ignored) so every initialiser has one signature."""
    return _generator(rng).uniform(low, high, size=tuple(shape)).astype(_check_dtype(dtype))


def normal(shape, std: float = 0.01, mean: float = 0.0, rng=None, dtype=np.float32, fans: Fans = None) -> np.ndarray:
    """N(mean, std^2) entries (e.g. std=0.01 for RBM weights, std=0.02 for DCGAN)."""
    return (mean + std * _generator(rng).standard_normal(tuple(shape))).astype(_check_dtype(dtype))


def zeros(shape, rng=None, dtype=np.float32, fans: Fans = None) -> np.ndarray:
    return np.zeros(tuple(shape), dtype=_check_dtype(dtype))


def ones(shape, rng=None, dtype=np.float32, fans: Fans = None) -> np.ndarray:
    return np.ones(tuple(shape), dtype=_check_dtype(dtype))


def glorot_uniform(shape, gain: float = 1.0, rng=None, dtype=np.float32, fans: Fans = None) -> np.ndarray:
    """U(-a, a) with a = gain sqrt(6 / (fan_in + fan_out)): variance 2 gain^2 / (fan_in + fan_out)."""
    fan_in, fan_out = _fans(shape, fans)
    bound = gain * math.sqrt(6.0 / (fan_in + fan_out))
    return uniform(shape, -bound, bound, rng=rng, dtype=dtype)


def glorot_normal(shape, gain: float = 1.0, rng=None, dtype=np.float32, fans: Fans = None) -> np.ndarray:
    """N(0, s^2) with s = gain sqrt(2 / (fan_in + fan_out))."""
    fan_in, fan_out = _fans(shape, fans)
    return normal(shape, std=gain * math.sqrt(2.0 / (fan_in + fan_out)), rng=rng, dtype=dtype)


def _he_std(shape, gain, mode, nonlinearity, slope, fans) -> float:
    if mode not in ("fan_in", "fan_out"):
        raise ValueError(f"he init: mode must be 'fan_in' or 'fan_out', got {mode!r}")
    fan_in, fan_out = _fans(shape, fans)
    fan = fan_in if mode == "fan_in" else fan_out
    if gain is None:
        gain = calculate_gain(nonlinearity, slope)
    return gain / math.sqrt(fan)


def he_uniform(shape, gain: Optional[float] = None, mode: str = "fan_in", nonlinearity: str = "relu",
               slope: Optional[float] = None, rng=None, dtype=np.float32, fans: Fans = None) -> np.ndarray:
    """U(-a, a) with a = sqrt(3) * gain / sqrt(fan); gain from ``nonlinearity`` unless given."""
    bound = math.sqrt(3.0) * _he_std(shape, gain, mode, nonlinearity, slope, fans)
    return uniform(shape, -bound, bound, rng=rng, dtype=dtype)


def he_normal(shape, gain: Optional[float] = None, mode: str = "fan_in", nonlinearity: str = "relu",
              slope: Optional[float] = None, rng=None, dtype=np.float32, fans: Fans = None) -> np.ndarray:
    """N(0, s^2) with s = gain / sqrt(fan); gain from ``nonlinearity`` unless given."""
    return normal(shape, std=_he_std(shape, gain, mode, nonlinearity, slope, fans), rng=rng, dtype=dtype)


INITIALIZERS = {
    "glorot_uniform": glorot_uniform,
    "xavier_uniform": glorot_uniform,
    "glorot_normal": glorot_normal,
    "xavier_normal": glorot_normal,
    "he_uniform": he_uniform,
    "kaiming_uniform": he_uniform,
    "he_normal": he_normal,
    "kaiming_normal": he_normal,
    "normal": normal,
    "uniform": uniform,
    "zeros": zeros,
    "ones": ones,
}


def get_initializer(init) -> Callable:
    """An initialiser from its name (see ``INITIALIZERS``) or a callable, which is returned as is.

    A custom callable is called as ``init(shape, rng=rng, dtype=dtype, fans=(fan_in, fan_out))``;
    bind extra arguments with ``functools.partial(he_normal, nonlinearity="leaky_relu", slope=0.2)``.
    """
    if callable(init):
        return init
    if init not in INITIALIZERS:
        raise ValueError(f"unknown initialiser {init!r}; choose one of {', '.join(sorted(INITIALIZERS))} or pass a callable")
    return INITIALIZERS[init]
