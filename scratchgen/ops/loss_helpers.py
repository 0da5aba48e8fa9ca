"""The one convention of every loss and divergence, and the helpers that implement it.

Every loss in losses.py and divergences.py follows two rules:

1. Arguments: the prediction first (the model's output: logits, a prediction, or the predicted
   distribution q), then the target (data, labels, the target distribution p, the sparsity
   target). gaussian_nll then takes the prediction's log-variance, PyTorch's
   ``gaussian_nll_loss(input, target, var)`` order. Options (``reduction``, ``eps``, ``kind``,
   ``ignore_index``) follow; pass them by keyword.
2. Default reduction: "batch_sum" for every one of them.

    function                 arguments                         default     per element (reduced by ``reduction``)
    sigmoid_bce_with_logits  (logits, target)                  batch_sum   max(z, 0) - z t + log1p(e^-|z|)
    mse_loss                 (prediction, target)              batch_sum   (p - t)^2
    gaussian_nll             (mean, target, logvar)            batch_sum   0.5 (log 2pi + v + (t - m)^2 e^-v)
    softmax_cross_entropy    (logits, target)                  batch_sum   -sum_k t_k log softmax(z)_k per example
                                                                           or position (classes last)
    gan_discriminator_loss   (real_logits, fake_logits)        batch_sum   softplus(-l_real), softplus(l_fake):
                                                                           each reduced over its own batch, added
    gan_generator_loss       (fake_logits, kind)               batch_sum   softplus(-l) (non-saturating), -softplus(l)
    gaussian_kl_standard     (mu, logvar)                      batch_sum   0.5 (mu^2 + expm1(v) - v) = KL(q || N(0, 1))
    gaussian_kl              (mu_q, logvar_q, mu_p, logvar_p)  batch_sum   KL(q || p), see divergences.py
    bernoulli_kl             (rho_hat, rho)                    batch_sum   KL(Bern(rho) || Bern(rho_hat))
    l1_penalty               (x)                               batch_sum   |x|
    contractive_penalty      (x, weight, bias)                 batch_sum   ||dh/dx||_F^2 per example (N,)

Why "batch_sum": it is the per-example convention of the generative models here. A VAE's ELBO,
a decoder's log-likelihood, a KL term are sums over the dimensions of one example, reported in
nats per example; averaging over the batch keeps the number (and the gradient scale, so the
learning rate) independent of the batch size; and summing over the features keeps a loss
term's weight against a KL term independent of how the features are flattened, which "mean"
(divide by N D) does not. For a loss with one value per example - softmax CE on (N, K)
logits, the GAN losses on (N,) or (N, 1) logits - "batch_sum" *is* the batch mean.
Defaults that changed to follow it: mse_loss (was "mean": it now divides by N, not N D),
l1_penalty and bernoulli_kl (were "sum"), softmax_cross_entropy (was "mean": the same number on
(N, K) logits). bernoulli_kl's rho_hat (H,) has no batch axis, so its "batch_sum" is the mean
over units; SparseAutoencoder asks for "sum" explicitly.

Reductions (``reduce_loss``; softmax_cross_entropy's ``ignore_index`` narrows "mean"):
    "none"       the unreduced loss, shape of the broadcast inputs (softmax CE: (N,) or (N, L))
    "sum"        sum over everything
    "mean"       mean over everything
    "batch_sum"  sum over every axis but the first, mean over the first (the batch)
All three sum a float32 loss in float64 (``ReduceLoss``), so a mean of finite losses never
overflows.

Inputs broadcast like NumPy, with one guard (``broadcast_shape``): the broadcast shape must be
the shape of one of the inputs. Mixing a (N,) target with (N, 1) predictions would otherwise
silently give an (N, N) loss; here it is an error. Constant inputs (arrays, numbers) are
converted to the floating dtype of the Tensor inputs (``float_dtype``, ``float_inputs``), so a
float32 model never computes in float64 by accident; integer and boolean constants (uint8 pixels,
masks) are converted too, and complex ones refused with the op's and the argument's name.
Integer class labels (softmax_cross_entropy's target) are indices, never converted.
"""
from __future__ import annotations

import numpy as np

from ..backend import get_array_module
from ..function import Function
from ..tensor import Tensor

__all__ = ["REDUCTIONS", "reduce_loss"]

REDUCTIONS = ("none", "sum", "mean", "batch_sum")


def check_reduction(op_name: str, reduction: str) -> None:
    if reduction not in REDUCTIONS:
        raise ValueError(f"{op_name}: reduction must be one of {', '.join(map(repr, REDUCTIONS))}, got {reduction!r}")


class ReduceLoss(Function):
    """``sum(loss) / divisor``, summed in float64: the one reduction behind "sum", "mean", "batch_sum".

    Why float64 for a float32 loss: the float32 sum of N finite losses overflows once it passes
    3.4e38 (four GAN losses of 1e38 each) although the mean, the number wanted, is finite. NumPy
    sums float16 in float32 for the same reason; summing float32 in float64 also rounds once,
    at the end. The result is cast back to the loss's dtype. (float64 losses sum as before.)

        y = (sum_i l_i) / d        dL/dl_i = g / d   (every element, broadcast back)
    """

    op_name = "reduce_loss"

    @staticmethod
    def forward(ctx, loss, divisor=1):
        xp = get_array_module(loss)
        ctx.shape, ctx.divisor = loss.shape, divisor
        accumulate = np.result_type(loss.dtype, np.float64)
        total = loss.sum(axis=tuple(range(loss.ndim)), dtype=accumulate) / divisor
        return xp.asarray(total).astype(loss.dtype, copy=False)

    @staticmethod
    def backward(ctx, grad):
        xp = get_array_module(grad)
        return xp.broadcast_to(grad / ctx.divisor, ctx.shape)


def reduce_loss(loss: Tensor, reduction: str, op_name: str = "reduce_loss") -> Tensor:
    """Reduce an unreduced loss tensor: "none", "sum", "mean" or "batch_sum" (see module docstring)."""
    check_reduction(op_name, reduction)
    if reduction == "none":
        return loss
    if reduction == "sum":
        return ReduceLoss.apply(loss, divisor=1)
    if reduction == "mean":
        return ReduceLoss.apply(loss, divisor=max(loss.size, 1))
    if loss.ndim == 0:
        raise ValueError(f"{op_name}: reduction 'batch_sum' needs a batch axis, but the loss is a scalar")
    return ReduceLoss.apply(loss, divisor=max(loss.shape[0], 1))


def reduction_divisor(shape, reduction: str, op_name: str = "reduce_loss") -> int:
    """What ``reduce_loss`` divides the sum of a loss of ``shape`` by: 1 ("sum"), the element
    count ("mean", at least 1) or the batch size ("batch_sum", at least 1; a scalar loss has no
    batch axis). For ops that reduce inside their own forward (a fused loss)."""
    check_reduction(op_name, reduction)
    if reduction == "sum":
        return 1
    if reduction == "mean":
        return max(int(np.prod(shape, dtype=np.int64)), 1)
    if reduction == "batch_sum":
        if len(shape) == 0:
            raise ValueError(f"{op_name}: reduction 'batch_sum' needs a batch axis, but the loss is a scalar")
        return max(int(shape[0]), 1)
    raise ValueError(f"{op_name}: reduction {reduction!r} has no divisor")


def float_dtype(*values):
    """The floating dtype to compute in: that of the first float Tensor, else of the first float array."""
    for want_tensor in (True, False):
        for value in values:
            if isinstance(value, Tensor) != want_tensor:
                continue
            dtype = getattr(value, "dtype", None)
            if dtype is not None and np.dtype(dtype).kind == "f":
                return np.dtype(dtype)
    return np.dtype(np.float64)


def float_input(value, dtype, op_name: str, name: str):
    """A float Tensor stays as it is (``Function.apply`` refuses mixed float dtypes); an array, a
    number or a non-float Tensor (e.g. uint8 binarised pixels, bool masks) becomes an array of
    ``dtype``. A complex input is refused, naming the op and the argument: casting it would
    silently drop the imaginary part."""
    if isinstance(value, Tensor):
        if value.dtype.kind == "f":
            return value
        value = value.data
    array = get_array_module(value).asarray(value)
    if array.dtype.kind not in "biuf":
        raise TypeError(f"{op_name}: {name} has dtype {array.dtype}; losses take real numbers "
                        f"(a complex input would lose its imaginary part)")
    return array if array.dtype == dtype else array.astype(dtype)


def float_inputs(op_name: str, dtype, **named) -> tuple:
    """``float_input`` of each named input, in order: ``x, y = float_inputs("op", dtype, x=x, y=y)``."""
    return tuple(float_input(value, dtype, op_name, name) for name, value in named.items())


def broadcast_shape(op_name: str, **named) -> tuple:
    """The broadcast shape of the named inputs; a clear error if they do not broadcast, or if
    broadcasting would make the result larger than every input (the (N,) vs (N, 1) mix-up)."""
    shapes = {name: tuple(getattr(value, "shape", ())) for name, value in named.items()}
    described = ", ".join(f"{name} {shape}" for name, shape in shapes.items())
    try:
        shape = tuple(np.broadcast_shapes(*shapes.values()))
    except ValueError:
        raise ValueError(f"{op_name}: shapes do not broadcast: {described}") from None
    if shape not in shapes.values():
        raise ValueError(
            f"{op_name}: shapes {described} broadcast to {shape}, larger than every input; "
            f"reshape them to match (a (N,) vs (N, 1) mix-up?)"
        )
    return shape


# ---- 0 times an overflow ---------------------------------------------------------------------
def times_exp(factor, exponent):
    """``factor * exp(exponent)`` elementwise, exactly 0 where ``factor`` is 0.

    Where exp(exponent) overflows to inf (exponent > 88.7 in float32, > 709.8 in float64) a zero
    factor would give 0 * inf = NaN, although the true product of an exact 0 and a finite (if
    huge) number is 0: a zero residual under a tiny variance (Gaussian NLL and KL at logvar =
    -200), zero noise under a huge one (reparameterisation at logvar = 200). So the exponent is
    replaced by 0 where the factor is 0 (exp(0) = 1, and 0 * 1 = 0, no warning raised). Every
    other element is computed exactly as ``factor * exp(exponent)``.
    """
    xp = get_array_module(factor, exponent)
    return factor * xp.exp(xp.where(factor == 0, 0, exponent))
