"""Dropout, batch normalization and layer normalization.

Dropout (inverted): keep each unit with probability 1 - p and scale the kept ones by 1/(1 - p),
so the expected output equals the input and evaluation needs no rescaling:

    y = x * mask / (1 - p)        mask ~ Bernoulli(1 - p)        dL/dx = dL/dy * mask / (1 - p)

The mask can be passed in, which makes the op deterministic (gradcheck, reproducible runs).

Batch normalization (Ioffe & Szegedy 2015), per channel c over the M = N (H W) values of a batch:

    mu = mean(x),  var = mean((x - mu)^2)  (biased),  inv_std = 1 / sqrt(var + eps)
    xhat = (x - mu) inv_std,  y = gamma xhat + beta

Training normalises with the batch statistics and updates the running averages in place
(PyTorch's convention: running_var tracks the *unbiased* variance var M / (M - 1)):

    running_mean <- (1 - momentum) running_mean + momentum mu
    running_var  <- (1 - momentum) running_var  + momentum var M / (M - 1)

Evaluation normalises with the running statistics instead, so y is an affine map of x.

Backward in training, where mu and var depend on every x of the channel: with g = dL/dy,

    dL/dbeta  = sum g        dL/dgamma = sum g xhat
    dL/dx     = gamma inv_std / M * (M g - sum g - xhat sum g xhat)

(the compact form: the terms through mu and var collapse into the two sums), one pass over g.
In evaluation the statistics are constants and dL/dx = gamma inv_std g.

The kernels see every input as (N, C, L): (N, C) is (N, C, 1) and (N, C, H, W) is
(N, C, H W), so a kernel implementation handles one layout.

Layer normalization (Ba, Kiros & Hinton 2016) normalises each *example* over its last axis (D
features) instead of each feature over the batch, so it needs no running statistics and
behaves the same in training and evaluation (the transformer's normalisation):

    mu = mean(x),  var = mean((x - mu)^2),  inv_std = 1 / sqrt(var + eps)      per row, over D
    xhat = (x - mu) inv_std,  y = w xhat + b                                  w, b: (D,), optional

Backward: the batch-norm algebra with the roles of the axes swapped. With g = dL/dy and
gw = g w (g itself without a weight),

    dL/db = sum over rows of g        dL/dw = sum over rows of g xhat
    dL/dx = inv_std (gw - mean(gw) - xhat mean(gw xhat))                     means over D

(the two means are what the paths through mu and var contribute). One closed-form pass; the
kernels see x as (M, D) rows, M = the product of the leading axes.
"""
from __future__ import annotations

import numpy as np

from ..backend import get_array_module, kernel, register_kernel
from ..function import Function
from ..gradcheck import register_case
from ..tensor import Tensor

__all__ = ["dropout", "batch_norm", "layer_norm"]

# Dropout masks are drawn from this Generator when neither a mask nor an rng is given. It is
# looked up at each call, so ``scratchgen.ops.normalization.default_generator =
# np.random.default_rng(seed)`` reseeds every later dropout.
default_generator = np.random.default_rng()


# ---- dropout ---------------------------------------------------------------------------------
class Dropout(Function):
    @staticmethod
    def forward(ctx, x, mask, scale):
        ctx.save_for_backward(mask)
        ctx.scale = scale
        y = x * mask
        y *= scale
        return y

    @staticmethod
    def backward(ctx, grad):
        (mask,) = ctx.saved_arrays
        grad_x = grad * mask
        grad_x *= ctx.scale
        return grad_x


def dropout(x: Tensor, p: float = 0.5, training: bool = True, mask=None, rng=None) -> Tensor:
    """Inverted dropout: ``x * mask / (1 - p)``; the identity when not training.

    x: any shape. mask: keep-mask (True/1 = keep), of x's shape or broadcastable to it (e.g.
    (N, C, 1, 1) drops whole channels); drawn as ``uniform >= p`` from ``rng`` (a
    numpy.random.Generator) or the module's ``default_generator`` when not given.
    p = 1 drops everything (output 0).
    """
    if not 0.0 <= p <= 1.0:
        raise ValueError(f"dropout: p must be in [0, 1], got {p}")
    data = x.data if isinstance(x, Tensor) else x
    if not training or (p == 0.0 and mask is None):
        return x if isinstance(x, Tensor) else Tensor(x)
    xp = get_array_module(data)
    if mask is None:
        mask = (rng if rng is not None else default_generator).random(data.shape) >= p
        mask = xp.asarray(mask)
    else:
        mask = mask.data if isinstance(mask, Tensor) else xp.asarray(mask)
        try:
            np.broadcast_shapes(mask.shape, data.shape)
        except ValueError:
            raise ValueError(f"dropout: mask of shape {mask.shape} does not broadcast to input shape {data.shape}") from None
        if mask.dtype.kind == "f" and mask.dtype != data.dtype:
            mask = mask.astype(data.dtype)  # a float64 mask must not upcast a float32 input
    scale = 0.0 if p == 1.0 else 1.0 / (1.0 - p)  # a Python float keeps x's dtype
    return Dropout.apply(x, mask=mask, scale=scale)


# ---- batch norm: NumPy reference kernels ---------------------------------------------------
def update_running_stats(running_mean, running_var, mean, var, count: int, momentum: float) -> None:
    """Exponential moving averages of the batch statistics, in place (either buffer may be None).

    running_mean <- (1 - momentum) running_mean + momentum mean
    running_var  <- (1 - momentum) running_var  + momentum var * count / (count - 1)
    (the unbiased variance, as PyTorch keeps it; the batch itself is normalised with the biased one).
    Shared by the NumPy reference and the Numba kernels so the convention lives in one place.
    """
    if running_mean is not None:
        running_mean *= 1.0 - momentum
        running_mean += momentum * mean
    if running_var is not None:
        running_var *= 1.0 - momentum
        running_var += (momentum * count / (count - 1)) * var


@register_kernel("batch_norm_forward")
def batch_norm_forward(x, gamma, beta, running_mean, running_var, training: bool, momentum: float, eps: float):
    """Batch normalization of x: (N, C, L) per channel.

    gamma, beta: (C,); running_mean, running_var: (C,) arrays or None, updated *in place* when
    training (running_var with the unbiased variance); used as the statistics when not training.
    Returns (y: (N, C, L), xhat: (N, C, L), inv_std: (C,)), all in x's dtype; xhat and inv_std
    are what ``batch_norm_backward`` needs.
    """
    xp = get_array_module(x)
    if training:
        count = x.shape[0] * x.shape[2]
        mean = x.mean(axis=(0, 2))
        centered = x - mean[:, None]
        # Two passes (no E[x^2] - E[x]^2 cancellation); einsum forms the per-channel dot
        # product without a temporary the size of x.
        var = xp.einsum("ncl,ncl->c", centered, centered) / count
        update_running_stats(running_mean, running_var, mean, var, count, momentum)
    else:
        mean, var = running_mean.astype(x.dtype, copy=False), running_var.astype(x.dtype, copy=False)
        centered = x - mean[:, None]
    inv_std = 1.0 / xp.sqrt(var + eps)
    xhat = centered
    xhat *= inv_std[:, None]  # in place: ``centered`` is not needed any more
    y = xhat * gamma[:, None]
    y += beta[:, None]
    return y, xhat, inv_std


@register_kernel("batch_norm_backward")
def batch_norm_backward(grad, xhat, gamma, inv_std, training: bool,
                        needs_input_grad: bool = True, needs_gamma_grad: bool = True, needs_beta_grad: bool = True):
    """Gradients of batch normalization given grad = dL/dy.

    grad, xhat: (N, C, L); gamma, inv_std: (C,). Returns (grad_x: (N, C, L), grad_gamma: (C,),
    grad_beta: (C,)), each None when its ``needs_*`` flag is False. training selects the
    batch-statistics formula (dL/dx = gamma inv_std / M (M g - sum g - xhat sum g xhat))
    or the running-statistics one (dL/dx = gamma inv_std g).
    """
    need_sums = needs_gamma_grad or needs_beta_grad or (training and needs_input_grad)
    grad_beta = grad.sum(axis=(0, 2)) if need_sums else None
    grad_gamma = get_array_module(grad).einsum("ncl,ncl->c", grad, xhat) if need_sums else None
    grad_x = None
    if needs_input_grad:
        scale = (gamma * inv_std)[:, None]
        if training:
            count = grad.shape[0] * grad.shape[2]
            grad_x = grad - grad_beta[:, None] / count
            grad_x -= xhat * (grad_gamma[:, None] / count)
            grad_x *= scale
        else:
            grad_x = grad * scale
    return grad_x, (grad_gamma if needs_gamma_grad else None), (grad_beta if needs_beta_grad else None)


# ---- batch norm: the op ----------------------------------------------------------------------
class BatchNorm(Function):
    op_name = "batch_norm"

    @staticmethod
    def forward(ctx, x, gamma, beta, running_mean=None, running_var=None, training=True, momentum=0.1, eps=1e-5):
        shape = x.shape
        x3 = x.reshape(shape[0], shape[1], -1)  # (N, C, L): a view when x is contiguous
        y, xhat, inv_std = kernel("batch_norm_forward")(x3, gamma, beta, running_mean, running_var, training, momentum, eps)
        ctx.save_for_backward(xhat, gamma, inv_std)
        ctx.training = training
        return y.reshape(shape)

    @staticmethod
    def backward(ctx, grad):
        xhat, gamma, inv_std = ctx.saved_arrays
        needs = ctx.needs_input_grad
        grad_x, grad_gamma, grad_beta = kernel("batch_norm_backward")(
            grad.reshape(xhat.shape), xhat, gamma, inv_std, ctx.training,
            needs_input_grad=needs[0], needs_gamma_grad=needs[1], needs_beta_grad=needs[2])
        return (None if grad_x is None else grad_x.reshape(grad.shape)), grad_gamma, grad_beta


def _raw(array):
    return array.data if isinstance(array, Tensor) else array


def batch_norm(x: Tensor, gamma: Tensor = None, beta: Tensor = None, running_mean=None, running_var=None,
               training: bool = True, momentum: float = 0.1, eps: float = 1e-5) -> Tensor:
    """Batch normalization of x: (N, C) or (N, C, H, W), per channel C.

    gamma, beta: (C,) scale and shift (None: 1 and 0, not learned). running_mean, running_var:
    (C,) arrays (or Tensors; their data is used) of x's dtype, updated in place when training,
    required when not training. momentum: weight of the new batch in the running averages.
    """
    data = _raw(x)
    if data.ndim not in (2, 4):
        raise ValueError(f"batch_norm: input must be (N, C) or (N, C, H, W), got shape {data.shape}")
    n, c = data.shape[:2]
    xp = get_array_module(data)
    gamma = Tensor(xp.ones(c, dtype=data.dtype)) if gamma is None else gamma
    beta = Tensor(xp.zeros(c, dtype=data.dtype)) if beta is None else beta
    running_mean, running_var = _raw(running_mean), _raw(running_var)
    for name, value in (("gamma", gamma), ("beta", beta), ("running_mean", running_mean), ("running_var", running_var)):
        if value is not None and tuple(value.shape) != (c,):
            raise ValueError(f"batch_norm: {name} has shape {tuple(value.shape)}, expected ({c},) for input shape {data.shape}")
    for name, value in (("running_mean", running_mean), ("running_var", running_var)):
        if training and value is not None and value.dtype != data.dtype:
            raise TypeError(f"batch_norm: {name} is {value.dtype} but the input is {data.dtype}; "
                            f"keep running statistics in the input's dtype")
    if training and data.size // c <= 1:
        raise ValueError(f"batch_norm: training needs more than 1 value per channel, got input shape {data.shape}")
    if not training and (running_mean is None or running_var is None):
        raise ValueError("batch_norm: evaluation (training=False) needs running_mean and running_var")
    return BatchNorm.apply(x, gamma, beta, running_mean=running_mean, running_var=running_var,
                           training=training, momentum=momentum, eps=eps)


# ---- layer norm: NumPy reference kernels ---------------------------------------------------
@register_kernel("layer_norm_forward")
def layer_norm_forward(x, weight, bias, eps: float):
    """Layer normalization of the rows of x: (M, D).

    weight, bias: (D,) arrays or None (no scale / no shift). Returns (y: (M, D), mean: (M,),
    inv_std: (M,)), all in x's dtype. The backward recomputes xhat from x and the two row
    statistics (as torch does) rather than keeping an (M, D) xhat: the forward then writes
    one (M, D) array instead of two.
    """
    xp = get_array_module(x)
    count = x.shape[1]
    mean = x.mean(axis=1)
    centered = x - mean[:, None]
    var = xp.einsum("md,md->m", centered, centered) / count  # two passes: no E[x^2] - E[x]^2 cancellation
    inv_std = 1.0 / xp.sqrt(var + eps)
    y = centered
    y *= inv_std[:, None]  # xhat, in place: ``centered`` is not needed any more
    if weight is not None:
        y *= weight
    if bias is not None:
        y += bias
    return y, mean, inv_std


@register_kernel("layer_norm_backward")
def layer_norm_backward(grad, x, mean, inv_std, weight,
                        needs_input_grad: bool = True, needs_weight_grad: bool = True, needs_bias_grad: bool = True):
    """Gradients of layer normalization given grad = dL/dy.

    grad, x: (M, D); mean, inv_std: (M,) from the forward; weight: (D,) or None. Returns
    (grad_x: (M, D), grad_weight: (D,), grad_bias: (D,)), each None when its ``needs_*`` flag is
    False (or when there is no weight, for grad_weight).
    """
    xp = get_array_module(grad)
    xhat = x - mean[:, None]
    xhat *= inv_std[:, None]
    grad_bias = grad.sum(axis=0) if needs_bias_grad else None
    grad_weight = xp.einsum("md,md->d", grad, xhat) if needs_weight_grad and weight is not None else None
    grad_x = None
    if needs_input_grad:
        count = grad.shape[1]
        scaled = grad * weight if weight is not None else grad
        mean_g = scaled.sum(axis=1) / count
        mean_gx = xp.einsum("md,md->m", scaled, xhat) / count
        grad_x = scaled - mean_g[:, None]
        grad_x -= xhat * mean_gx[:, None]
        grad_x *= inv_std[:, None]
    return grad_x, grad_weight, grad_bias


# ---- layer norm: the op ----------------------------------------------------------------------
class LayerNorm(Function):
    op_name = "layer_norm"

    @staticmethod
    def forward(ctx, x, weight=None, bias=None, eps=1e-5):
        shape = x.shape
        rows = x.reshape(-1, shape[-1])  # (M, D): a view when x is contiguous
        y, mean, inv_std = kernel("layer_norm_forward")(rows, weight, bias, eps)
        ctx.save_for_backward(rows, mean, inv_std, weight)
        return y.reshape(shape)

    @staticmethod
    def backward(ctx, grad):
        rows, mean, inv_std, weight = ctx.saved_arrays
        needs = ctx.needs_input_grad
        grad_x, grad_weight, grad_bias = kernel("layer_norm_backward")(
            grad.reshape(rows.shape), rows, mean, inv_std, weight, needs_input_grad=needs[0],
            needs_weight_grad=len(needs) > 1 and needs[1], needs_bias_grad=len(needs) > 2 and needs[2])
        return (None if grad_x is None else grad_x.reshape(grad.shape)), grad_weight, grad_bias


def layer_norm(x: Tensor, weight: Tensor = None, bias: Tensor = None, eps: float = 1e-5) -> Tensor:
    """Layer normalization over the last axis of x: (..., D), then ``y = weight xhat + bias``.

    weight, bias: (D,) or None (no scale, no shift). Unlike torch's
    ``F.layer_norm(x, normalized_shape, weight, bias, eps)`` there is no ``normalized_shape``:
    the normalised axis is always the last one (what transformers use).
    """
    data = _raw(x)
    if data.ndim < 1 or data.shape[-1] == 0:
        raise ValueError(f"layer_norm: input needs a non-empty last axis, got shape {data.shape}")
    if eps <= 0:
        raise ValueError(f"layer_norm: eps must be positive, got {eps}")
    d = data.shape[-1]
    for name, value in (("weight", weight), ("bias", bias)):
        if value is not None and tuple(value.shape) != (d,):
            raise ValueError(f"layer_norm: {name} has shape {tuple(value.shape)}, expected ({d},) for input shape {data.shape}")
    return LayerNorm.apply(x, weight, bias, eps=float(eps))


# ---- gradcheck cases (python -m scratchgen.gradcheck) ------------------------------------------
def _bn_case(rng, shape, training):
    c = shape[1]
    running_mean, running_var = rng.standard_normal(c), rng.uniform(0.5, 2.0, c)
    fn = lambda x, g, b: batch_norm(x, g, b, running_mean, running_var, training=training)  # noqa: E731
    return fn, [rng.standard_normal(shape) * 2 + 1, rng.uniform(0.5, 2.0, c), rng.standard_normal(c)]


register_case("batch_norm_train_2d")(lambda rng: _bn_case(rng, (6, 3), True))
register_case("batch_norm_train_4d")(lambda rng: _bn_case(rng, (3, 2, 3, 4), True))
register_case("batch_norm_eval_4d")(lambda rng: _bn_case(rng, (2, 3, 2, 2), False))
register_case("dropout")(lambda rng: (
    (lambda x, m=rng.random((4, 5)) >= 0.3: dropout(x, p=0.3, mask=m)), [rng.standard_normal((4, 5))]))
register_case("layer_norm")(lambda rng: (
    layer_norm, [rng.standard_normal((2, 3, 5)) * 2 + 1, rng.uniform(0.5, 2.0, 5), rng.standard_normal(5)]))
register_case("layer_norm_no_affine")(lambda rng: (layer_norm, [rng.standard_normal((4, 6)) * 3 - 1]))
