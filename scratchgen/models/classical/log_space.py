"""What the classical models share: float64 feature vectors, and log-sum-exp.

Naive Bayes and the mixture work with probabilities that underflow: one 784-pixel image has
p(x | class) around e^-100 to e^-300, and e^-746 is already 0 in float64. So every probability
stays a logarithm, and a sum of probabilities becomes

    log sum_k e^(a_k) = m + log sum_k e^(a_k - m),   m = max_k a_k,

where the largest term is e^0 = 1: nothing overflows and the sum cannot underflow to 0
(``ops.logsumexp``, the same op the autograd models use; here on plain arrays, no graph).
"""
from __future__ import annotations

import numpy as np

from ... import ops
from ...device import to_numpy
from ...grad_mode import no_grad
from ...tensor import Tensor

__all__ = ["flat_float64", "log_sum_exp"]


def flat_float64(x, num_features: int, where: str) -> np.ndarray:
    """Images (N, C, H, W) or vectors (N, D) -> a host float64 (N, D) array; one line naming ``where`` if D is wrong."""
    x = to_numpy(x.data if isinstance(x, Tensor) else x, np.float64)
    if x.ndim < 2:
        raise ValueError(f"{where}: input must be (N, C, H, W) or (N, D), got shape {x.shape}")
    x = x.reshape(len(x), -1)
    if x.shape[1] != num_features:
        raise ValueError(f"{where}: input has {x.shape[1]} features, the model expects {num_features}")
    return x


def log_sum_exp(a: np.ndarray, axis: int) -> np.ndarray:
    """log sum exp(a) along ``axis`` (that axis removed), computed stably by ``ops.logsumexp``."""
    with no_grad():
        return ops.logsumexp(Tensor(np.asarray(a)), axis=axis).data
