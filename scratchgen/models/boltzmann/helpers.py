"""Small helpers shared by the Boltzmann family (RBMs, DBNs, Boltzmann machines).

    random_uniform / random_normal   noise with the dtype and device (NumPy or CuPy) of an array
    base_rate_visible_bias           the data's log-odds: where visible biases start
    as_feature_matrix                validate data (shape, dtype) and flatten images to (N, V)
    host64                           a float64 NumPy copy, for likelihoods
    weight_tiles                     hidden units' weight vectors as [0, 1] images, for pictures
"""
from __future__ import annotations

from typing import Dict, Tuple

import numpy as np

from ...backend import get_array_module
from ...tensor import Tensor

__all__ = ["random_uniform", "random_normal", "base_rate_visible_bias", "as_feature_matrix", "host64", "weight_tiles",
           "positive_int", "square_image_shape"]

_DEVICE_GENERATORS: Dict[int, tuple] = {}


def _device_generator(rng: np.random.Generator):
    """A CuPy generator seeded once from ``rng`` (cached per rng), so GPU noise is reproducible too."""
    entry = _DEVICE_GENERATORS.get(id(rng))
    if entry is None or entry[0] is not rng:
        import cupy

        entry = (rng, cupy.random.default_rng(int(rng.integers(2**63))))
        _DEVICE_GENERATORS[id(rng)] = entry
    return entry[1]


def random_uniform(rng: np.random.Generator, shape, like):
    """Uniforms in [0, 1) of ``shape`` with the dtype and device (NumPy or CuPy) of array ``like``."""
    if get_array_module(like) is np:
        return rng.random(shape, dtype=like.dtype)
    return _device_generator(rng).random(shape, dtype=like.dtype)


def random_normal(rng: np.random.Generator, shape, like):
    """Standard normal noise of ``shape`` with the dtype and device of array ``like``."""
    if get_array_module(like) is np:
        return rng.standard_normal(shape, dtype=like.dtype)
    return _device_generator(rng).standard_normal(shape, dtype=like.dtype)


def base_rate_visible_bias(data, smoothing: float = 0.5) -> np.ndarray:
    """Log-odds of the pixel means of ``data`` (N, V), with ``smoothing`` pseudo-counts (float64, host).

    p_i = (sum_n v_ni + smoothing) / (N + 2 smoothing);  b_i = log p_i - log(1 - p_i).
    The visible biases of the "base-rate" RBM (W = 0) that fits the data's pixel marginals: the
    starting point of training (Hinton 2010 sec. 8.1) and of AIS (Salakhutdinov & Murray 2008).
    """
    v = np.asarray(data.get() if hasattr(data, "get") else data)
    v = v.reshape(len(v), -1)
    # Summed in float64 without a float64 copy of the data (float32 pixels: the same sums, exactly).
    p = (v.sum(axis=0, dtype=np.float64) + smoothing) / (len(v) + 2 * smoothing)
    return np.log(p) - np.log1p(-p)


def host64(array) -> np.ndarray:
    """A float64 NumPy copy of a NumPy or CuPy array (for likelihoods, which want float64)."""
    return np.asarray(array.get() if hasattr(array, "get") else array, dtype=np.float64)


def weight_tiles(weight, image_shape, count: int = 100) -> np.ndarray:
    """The first ``count`` hidden units' weight vectors as images (count, C, H, W), each scaled to [0, 1].

    weight: (V, H) with V = C * H_img * W_img.
    """
    w = np.asarray(weight.get() if hasattr(weight, "get") else weight, dtype=np.float64)
    filters = w[:, : min(count, w.shape[1])].T  # (count, V)
    low = filters.min(axis=1, keepdims=True)
    span = filters.max(axis=1, keepdims=True) - low
    filters = (filters - low) / np.where(span > 0, span, 1.0)
    return filters.reshape((len(filters),) + tuple(image_shape)).astype(np.float32)


def as_feature_matrix(x, n_features: int, owner: str, like):
    """Validate shape and dtype of data and return it as (N, n_features) with the dtype/device of ``like``."""
    if isinstance(x, Tensor):
        x = x.data
    xp = get_array_module(like)
    if get_array_module(x) is not xp:
        x = xp.asarray(x)
    if x.ndim not in (2, 4):
        raise ValueError(f"{owner}: data must be (N, {n_features}) vectors or (N, C, H, W) images, got shape {tuple(x.shape)}")
    if x.dtype.kind not in "f":
        raise TypeError(f"{owner}: data must be floating point, got dtype {x.dtype} "
                        f"(convert integer pixels with x.astype(np.float32) / 255)")
    features = int(np.prod(x.shape[1:]))
    if features != n_features:
        raise ValueError(f"{owner}: data has {features} features per example (shape {tuple(x.shape)}), "
                         f"the model has {n_features} visible units")
    return x.reshape(x.shape[0], n_features).astype(like.dtype, copy=False)


def positive_int(owner: str, **values) -> None:
    for name, value in values.items():
        if not isinstance(value, (int, np.integer)) or value < 1:
            raise ValueError(f"{owner}: {name} must be a positive integer, got {value!r}")


def square_image_shape(n_visible: int) -> Tuple[int, int, int]:
    side = int(round(n_visible**0.5))
    return (1, side, side) if side * side == n_visible else (1, 1, n_visible)
