"""Losses: sigmoid_bce_with_logits, mse_loss, gaussian_nll, softmax_cross_entropy, GAN losses.

Each loss is one fused op: its forward computes the *unreduced* loss (one value per element, or
per example for softmax cross-entropy) with a NumPy reference kernel, its backward calls the
matching backward kernel, and ``reduce_loss`` (loss_helpers.py) then reduces it.

The argument order (prediction first, then target), the default reduction ("batch_sum"), the
broadcasting guard and the conversion of constant inputs are shared with divergences.py: the
table in loss_helpers.py lists every loss with its arguments, default and formula.

Formulas (z logits, x targets, g the incoming gradient):
    BCE with logits   l = max(z, 0) - z x + log1p(exp(-|z|))    dl/dz = sigmoid(z) - x
                      (exp never overflows: finite at |z| = 1e4)  dl/dx = -z
    MSE               l = (p - t)^2                              dl/dp = 2 (p - t) = -dl/dt
    Gaussian NLL      l = 0.5 (log 2pi + v + (x - m)^2 e^-v)     dl/dx = (x - m) e^-v = -dl/dm
                      (m = mean, x = target, v = logvar)         dl/dv = 0.5 (1 - (x - m)^2 e^-v)
    softmax CE        l_n = -sum_k t_nk log softmax(z_n)_k       dl/dz_n = softmax(z_n) sum_k t_nk - t_n
                      (integer labels: t is one-hot; a row per   dl/dt_n = -log softmax(z_n)
                      example or position; ignored rows: l = 0)  (0 on ignored rows)
    GAN (D logits l)  D: softplus(-l_real) + softplus(l_fake)    (each reduced over its own batch)
                      G non-saturating: softplus(-l_fake)       G minimax: -softplus(l_fake)

Exact zeros stay exact where a naive formula would compute 0 * inf = NaN: a zero residual
x = mean under a tiny variance (e^-v overflows at v = -200 in float32, at v = -710 in float64)
adds 0 (``times_exp``), and a zero soft target adds 0 even where its log-probability is -inf
(0 log 0 = 0). The reductions sum float32 losses in float64, so that a mean of finite losses
(GAN logits of 1e38) never overflows (loss_helpers.py).
"""
from __future__ import annotations

import math

import numpy as np

from ..backend import get_array_module, kernel, register_kernel
from ..function import Function
from ..gradcheck import register_case
from ..tensor import Tensor
from .activations import sigmoid_forward, softplus
from .arithmetic import neg
from .loss_helpers import (
    ReduceLoss,
    broadcast_shape,
    check_reduction,
    float_dtype,
    float_inputs,
    reduce_loss,
    reduction_divisor,
    times_exp,
)

__all__ = [
    "sigmoid_bce_with_logits",
    "mse_loss",
    "gaussian_nll",
    "softmax_cross_entropy",
    "gan_discriminator_loss",
    "gan_generator_loss",
]

LOG_2PI = math.log(2 * math.pi)  # a Python float, so float32 arrays stay float32


# ---- NumPy reference kernels -----------------------------------------------------------------
@register_kernel("sigmoid_bce_with_logits_forward")
def sigmoid_bce_with_logits_forward(logits, target):
    """Elementwise binary cross-entropy of targets given logits.

    ``logits``, ``target``: float arrays of shapes that broadcast (target in [0, 1]).
    Returns the loss, broadcast shape, dtype of the inputs:
        max(z, 0) - z x + log1p(exp(-|z|))
    """
    xp = get_array_module(logits)
    return xp.maximum(logits, 0) - logits * target + xp.log1p(xp.exp(-xp.abs(logits)))


@register_kernel("sigmoid_bce_with_logits_backward")
def sigmoid_bce_with_logits_backward(grad, logits, target):
    """Gradient with respect to the logits: ``grad * (sigmoid(z) - x)``.

    ``grad``: the broadcast shape (may be a read-only broadcast view); ``logits``, ``target`` as
    in the forward. Returns the broadcast shape (the engine sums it down to the logits' shape).
    """
    return grad * (sigmoid_forward(logits) - target)


@register_kernel("sigmoid_bce_with_logits_reduced")
def sigmoid_bce_with_logits_reduced(logits, target, divisor):
    """The reduced loss and its gradient with respect to the logits, in one call.

    ``logits``, ``target`` as in the forward; ``divisor``: the reduction's (1 for "sum", the
    element count for "mean", the batch size for "batch_sum"). Returns ``(total, grad_logits)``:

        total       = sum(l) / divisor            0-d array of the inputs' dtype, summed in float64
        grad_logits = (1 / divisor) (sigmoid(z) - x)   broadcast shape: d total / d logits

    The same arithmetic as ``sigmoid_bce_with_logits_forward`` reduced by ``ReduceLoss``, and as
    its backward for an incoming gradient of 1 (``1 / divisor`` rounded to the dtype first), so a
    loss computed either way is the same number and has the same gradient, bit for bit.
    """
    xp = get_array_module(logits)
    loss = sigmoid_bce_with_logits_forward(logits, target)
    total = loss.sum(axis=tuple(range(loss.ndim)), dtype=np.result_type(loss.dtype, np.float64)) / divisor
    scale = xp.ones((), dtype=loss.dtype) / divisor
    return xp.asarray(total).astype(loss.dtype, copy=False), sigmoid_bce_with_logits_backward(scale, logits, target)


@register_kernel("mse_loss_forward")
def mse_loss_forward(prediction, target):
    """Elementwise squared error ``(p - t)^2``; inputs broadcast, returns the broadcast shape."""
    diff = prediction - target
    return diff * diff


@register_kernel("mse_loss_backward")
def mse_loss_backward(grad, prediction, target):
    """Gradient with respect to the prediction, ``2 grad (p - t)``, broadcast shape.
    The target's gradient is its negative."""
    return 2 * grad * (prediction - target)


@register_kernel("gaussian_nll_forward")
def gaussian_nll_forward(x, mean, logvar):
    """Elementwise -log N(x; mean, exp(logvar)) = 0.5 (log 2pi + logvar + (x - mean)^2 exp(-logvar)).

    ``x``, ``mean``, ``logvar``: float arrays that broadcast; returns the broadcast shape.
    """
    diff = x - mean
    # times_exp: a zero residual (x = mean) adds exactly 0, even where e^-logvar overflows.
    return 0.5 * (LOG_2PI + logvar + times_exp(diff * diff, -logvar))


@register_kernel("gaussian_nll_backward")
def gaussian_nll_backward(grad, x, mean, logvar):
    """Returns ``(grad_x, grad_logvar)``, both of the broadcast shape:
        grad_x      = grad (x - mean) exp(-logvar)        (grad_mean = -grad_x)
        grad_logvar = 0.5 grad (1 - (x - mean)^2 exp(-logvar))
    """
    diff = x - mean
    scaled = times_exp(diff, -logvar)  # (x - mean) e^-logvar, 0 for a zero residual
    return grad * scaled, 0.5 * grad * (1 - diff * scaled)


@register_kernel("softmax_cross_entropy_forward")
def softmax_cross_entropy_forward(logits, target, ignore_index=None):
    """Cross-entropy of each row's softmax against its target.

    ``logits``: (R, K) float (one row per example, or per position). ``target``: (R,) integer
    labels in [0, K) or (R, K) float target probabilities (one-hot or soft). ``ignore_index``
    (integer labels only): rows whose label equals it get loss 0, whatever their logits.
    Returns ``(loss, log_probs)``: loss (R,), and the row-wise log-softmax (R, K) that the
    backward needs. Stable: log_probs = z - max z - log sum exp(z - max z).
    """
    xp = get_array_module(logits)
    shifted = logits - logits.max(axis=1, keepdims=True)
    log_probs = shifted - xp.log(xp.exp(shifted).sum(axis=1, keepdims=True))
    if target.ndim == 1:
        keep = _kept(target, ignore_index, xp)
        # An ignored row's label may be any integer (-100): gather at class 0 instead, then drop it.
        picked = log_probs[xp.arange(target.shape[0]), xp.where(keep, target, 0)]
        loss = xp.where(keep, -picked, 0)
    else:
        # 0 log 0 = 0: a zero target entry adds 0 even where its log-probability is -inf
        # (float32 logits [3e38, -3e38] shift to -inf), where 0 * -inf would be NaN.
        loss = -(target * xp.where(target == 0, 0, log_probs)).sum(axis=1)
    return loss, log_probs


@register_kernel("softmax_cross_entropy_backward")
def softmax_cross_entropy_backward(grad, log_probs, target, ignore_index=None):
    """Gradient with respect to the logits, (R, K).

    ``grad``: (R,) (may be a broadcast view); ``log_probs``: (R, K) from the forward; ``target``,
    ``ignore_index`` as in the forward. Integer labels: grad_r (softmax(z_r) - onehot(label_r)),
    0 on ignored rows. Soft targets: grad_r (softmax(z_r) sum_k t_rk - t_r), exact also when a
    row of t does not sum to 1.
    """
    xp = get_array_module(log_probs)
    probs = xp.exp(log_probs)
    if target.ndim == 1:
        keep = _kept(target, ignore_index, xp)
        probs[xp.arange(target.shape[0]), xp.where(keep, target, 0)] -= 1
        probs = xp.where(keep[:, None], probs, 0)
    else:
        probs = probs * target.sum(axis=1, keepdims=True) - target
    return grad[:, None] * probs


def _kept(labels, ignore_index, xp):
    """True for the rows that count: every row, or those whose label is not ``ignore_index``."""
    if ignore_index is None:
        return xp.ones(labels.shape, dtype=bool)
    return labels != ignore_index


# ---- ops -------------------------------------------------------------------------------------
class SigmoidBCEWithLogits(Function):
    op_name = "sigmoid_bce_with_logits"

    @staticmethod
    def forward(ctx, logits, target):
        ctx.save_for_backward(logits, target)
        return kernel("sigmoid_bce_with_logits_forward")(logits, target)

    @staticmethod
    def backward(ctx, grad):
        logits, target = ctx.saved_arrays
        grad_logits = kernel("sigmoid_bce_with_logits_backward")(grad, logits, target) if ctx.needs_input_grad[0] else None
        grad_target = -grad * logits if ctx.needs_input_grad[1] else None
        return grad_logits, grad_target


class SigmoidBCEWithLogitsReduced(Function):
    """The BCE summed and divided in the forward (reduction "sum", "mean" or "batch_sum").

    One kernel computes the total and, in the same pass over the logits, the gradient for an
    incoming gradient of 1, which is what training always passes down: the backward then
    hands that array on without touching it. NumPy's unfused route is two array passes for the
    loss's exp and log1p, a reduction, and in the backward a third pass for sigmoid(z) - x; the
    fused route is one. Any other incoming gradient (a weighted loss, say) recomputes from the
    saved logits and target. The gradient with respect to a target that requires grad is
    -(g / divisor) z, as in the unreduced op.
    """

    op_name = "sigmoid_bce_with_logits"

    @staticmethod
    def forward(ctx, logits, target, divisor=1):
        total, grad_logits = kernel("sigmoid_bce_with_logits_reduced")(logits, target, divisor)
        ctx.save_for_backward(logits, target, grad_logits)
        ctx.divisor = divisor
        return total

    @staticmethod
    def backward(ctx, grad):
        logits, target, grad_logits = ctx.saved_arrays
        scale = grad / ctx.divisor  # ReduceLoss's backward: the incoming gradient of each element
        out_logits = out_target = None
        if ctx.needs_input_grad[0]:
            if bool(grad == 1):
                out_logits = grad_logits
            else:
                xp = get_array_module(logits)
                shape = grad_logits.shape
                out_logits = kernel("sigmoid_bce_with_logits_backward")(xp.broadcast_to(scale, shape), logits, target)
        if ctx.needs_input_grad[1]:
            out_target = -scale * logits
        return out_logits, out_target


class MSELoss(Function):
    op_name = "mse_loss"

    @staticmethod
    def forward(ctx, prediction, target):
        ctx.save_for_backward(prediction, target)
        return kernel("mse_loss_forward")(prediction, target)

    @staticmethod
    def backward(ctx, grad):
        prediction, target = ctx.saved_arrays
        grad_prediction = kernel("mse_loss_backward")(grad, prediction, target)
        return grad_prediction, -grad_prediction if ctx.needs_input_grad[1] else None


class GaussianNLL(Function):
    """Inputs in the losses' order (mean, target, logvar); the kernels take (x = target, mean, logvar)."""

    op_name = "gaussian_nll"

    @staticmethod
    def forward(ctx, mean, target, logvar):
        ctx.save_for_backward(target, mean, logvar)
        return kernel("gaussian_nll_forward")(target, mean, logvar)

    @staticmethod
    def backward(ctx, grad):
        grad_target, grad_logvar = kernel("gaussian_nll_backward")(grad, *ctx.saved_arrays)
        grad_mean = -grad_target if ctx.needs_input_grad[0] else None
        return grad_mean, grad_target, grad_logvar


class SoftmaxCrossEntropy(Function):
    op_name = "softmax_cross_entropy"

    @staticmethod
    def forward(ctx, logits, target, ignore_index=None):
        loss, log_probs = kernel("softmax_cross_entropy_forward")(logits, target, ignore_index)
        ctx.save_for_backward(log_probs, target)
        ctx.ignore_index = ignore_index
        return loss

    @staticmethod
    def backward(ctx, grad):
        log_probs, target = ctx.saved_arrays
        grad_logits = None
        if ctx.needs_input_grad[0]:
            grad_logits = kernel("softmax_cross_entropy_backward")(grad, log_probs, target, ctx.ignore_index)
        grad_target = -grad[:, None] * log_probs if ctx.needs_input_grad[1] else None
        return grad_logits, grad_target


# ---- public functions ------------------------------------------------------------------------
def sigmoid_bce_with_logits(logits, target, reduction: str = "batch_sum") -> Tensor:
    """Binary cross-entropy of ``target`` under Bernoulli(sigmoid(logits)), computed from the logits.

    ``logits``: (N, D) (any shape); ``target``: values in [0, 1], broadcastable to ``logits``
    (a Tensor, an array or a number; it is differentiable too, with gradient -z).
    Default reduction "batch_sum": summed over features, averaged over the batch.
    Finite for any finite logits (|z| = 1e4 included), gradient sigmoid(z) - x exactly.
    """
    check_reduction("sigmoid_bce_with_logits", reduction)
    dtype = float_dtype(logits, target)
    logits, target = float_inputs("sigmoid_bce_with_logits", dtype, logits=logits, target=target)
    shape = broadcast_shape("sigmoid_bce_with_logits", logits=logits, target=target)
    if reduction == "none":
        return SigmoidBCEWithLogits.apply(logits, target)
    divisor = reduction_divisor(shape, reduction, "sigmoid_bce_with_logits")
    return SigmoidBCEWithLogitsReduced.apply(logits, target, divisor=divisor)


def mse_loss(prediction, target, reduction: str = "batch_sum") -> Tensor:
    """Squared error ``(prediction - target)^2``. Default "batch_sum": summed over the features,
    averaged over the batch (a Gaussian decoder with unit variance, up to constants); pass
    reduction="mean" for the mean over every element (PyTorch's default). Shapes broadcast;
    both inputs are differentiable."""
    check_reduction("mse_loss", reduction)
    dtype = float_dtype(prediction, target)
    prediction, target = float_inputs("mse_loss", dtype, prediction=prediction, target=target)
    broadcast_shape("mse_loss", prediction=prediction, target=target)
    return reduce_loss(MSELoss.apply(prediction, target), reduction, "mse_loss")


def gaussian_nll(mean, target, logvar, reduction: str = "batch_sum") -> Tensor:
    """Negative log-density of ``target`` under the predicted N(mean, diag exp(logvar)):
        0.5 (log 2pi + logvar + (target - mean)^2 exp(-logvar))   per element.

    The order of ``torch.nn.functional.gaussian_nll_loss(input, target, var)``: the predicted
    mean, the target, then the prediction's log-variance. ``mean``, ``target``, ``logvar``:
    broadcastable (e.g. mean, target (N, D) and a learned logvar (D,)); all three are
    differentiable. The variance is parameterised by its log so it stays positive. Default
    "batch_sum": nats per example. Exact (no NaN) for target = mean at any logvar.
    """
    check_reduction("gaussian_nll", reduction)
    dtype = float_dtype(mean, target, logvar)
    mean, target, logvar = float_inputs("gaussian_nll", dtype, mean=mean, target=target, logvar=logvar)
    broadcast_shape("gaussian_nll", mean=mean, target=target, logvar=logvar)
    return reduce_loss(GaussianNLL.apply(mean, target, logvar), reduction, "gaussian_nll")


def _check_labels(logits_shape, labels, ignore_index, xp) -> None:
    k = logits_shape[-1]
    if labels.dtype.kind not in "iu":
        raise TypeError(
            f"softmax_cross_entropy: target of shape {labels.shape} must be integers (class indices) "
            f"or {tuple(logits_shape)} target probabilities, got dtype {labels.dtype}"
        )
    if labels.shape != tuple(logits_shape[:-1]):
        raise ValueError(
            f"softmax_cross_entropy: target of shape {labels.shape} does not match logits {tuple(logits_shape)} "
            f"(class indices need shape {tuple(logits_shape[:-1])}: the logits without their last, class axis)"
        )
    bad = (labels < 0) | (labels >= k)
    if ignore_index is not None:
        bad &= labels != ignore_index
    if bool(bad.any()):
        index = tuple(int(i) for i in np.unravel_index(int(xp.argmax(bad.ravel())), labels.shape))
        index = index[0] if len(index) == 1 else index
        raise ValueError(
            f"softmax_cross_entropy: label {int(labels[index])} at index {index} is out of range "
            f"for K = {k} classes (labels must lie in [0, {k - 1}]"
            + (f" or equal ignore_index = {ignore_index})" if ignore_index is not None else ")")
        )


def softmax_cross_entropy(logits, target, reduction: str = "batch_sum", ignore_index=None) -> Tensor:
    """Cross-entropy of softmax(logits) against a target, via a stable log-softmax over the last axis.

    Shapes (classes last, as in a language model's (batch, length, vocabulary) logits):
        logits (N, K)     target (N,) integer class indices, or (N, K) probabilities
        logits (N, L, K)  target (N, L) integer class indices, or (N, L, K) probabilities
    (any number of middle axes works the same way). Probabilities may be one-hot or soft, and
    are differentiable if a Tensor that requires grad. The loss of one row (example or
    position) is -sum_k t_k log softmax(z)_k = -log softmax(z)[label]; reduction "none" gives
    it as (N,) or (N, L).

    ``ignore_index`` (PyTorch's name; integer targets only): positions whose label equals it
    contribute neither loss nor gradient, e.g. the unmasked tokens of a BERT-style masked-token
    loss (their label may be any integer, such as -100). With it, "mean" averages over the
    positions that are not ignored (0 if every position is: PyTorch gives NaN there), and
    "batch_sum" sums them and divides by N.

    Default "batch_sum": on (N, K) logits the mean over the N examples; on (N, L, K) the sum
    over the L positions, averaged over the batch.
    """
    check_reduction("softmax_cross_entropy", reduction)
    if ignore_index is not None and not isinstance(ignore_index, (int, np.integer)):
        raise TypeError(f"softmax_cross_entropy: ignore_index must be an integer label, got {ignore_index!r}")
    dtype = float_dtype(logits)
    (logits,) = float_inputs("softmax_cross_entropy", dtype, logits=logits)
    if logits.ndim < 2:
        raise ValueError(f"softmax_cross_entropy: logits must be (N, K) or (N, L, K), classes last, got shape {logits.shape}")
    raw = target.data if isinstance(target, Tensor) else get_array_module(target).asarray(target)
    lead, k = tuple(logits.shape[:-1]), logits.shape[-1]
    if raw.ndim == logits.ndim - 1:
        _check_labels(logits.shape, raw, ignore_index, get_array_module(raw))
        rows = raw.reshape(-1)  # class indices are never differentiated
    elif raw.ndim == logits.ndim:
        if raw.shape != logits.shape:
            raise ValueError(f"softmax_cross_entropy: target probabilities of shape {raw.shape} do not match logits {logits.shape}")
        if ignore_index is not None:
            raise ValueError("softmax_cross_entropy: ignore_index applies to integer class targets, not to target probabilities")
        (rows,) = float_inputs("softmax_cross_entropy", dtype, target=target)
        rows = rows.reshape((-1, k))
    else:
        raise ValueError(
            f"softmax_cross_entropy: target must be {lead} integers or {tuple(logits.shape)} probabilities "
            f"for logits {tuple(logits.shape)}, got shape {raw.shape}"
        )
    # One row per example (or position): the op and its kernels work on (R, K) and (R,).
    flat_logits = logits.reshape((-1, k)) if len(lead) > 1 else logits
    loss = SoftmaxCrossEntropy.apply(flat_logits, rows, ignore_index=ignore_index)
    if len(lead) > 1:
        loss = loss.reshape(lead)
    if reduction == "mean" and ignore_index is not None:
        counted = max(int((raw != ignore_index).sum()), 1)  # every position ignored: 0 / 1 = 0, not NaN
        return ReduceLoss.apply(loss, divisor=counted)
    return reduce_loss(loss, reduction, "softmax_cross_entropy")


def gan_discriminator_loss(real_logits: Tensor, fake_logits: Tensor, reduction: str = "batch_sum") -> Tensor:
    """The discriminator's loss from its logits: softplus(-l_real) and softplus(l_fake), each reduced
    over its own batch, then added: with the default "batch_sum" and logits (N,) or (N, 1),
    mean softplus(-l_real) + mean softplus(l_fake).

    That is -mean log D(x) - mean log(1 - D(G(z))) with D = sigmoid(l), written with softplus
    so that it never takes the log of 0. Real and fake batches may differ in size (so "none"
    is refused: there is no one shape to return).
    """
    check_reduction("gan_discriminator_loss", reduction)
    real_logits, fake_logits = float_inputs("gan_discriminator_loss", float_dtype(real_logits, fake_logits),
                                            real_logits=real_logits, fake_logits=fake_logits)
    if reduction == "none":
        raise ValueError("gan_discriminator_loss: reduction 'none' has no single shape (real and fake batches "
                         "may differ); call softplus(-real_logits) and softplus(fake_logits) instead")
    real_term = reduce_loss(softplus(neg(real_logits)), reduction, "gan_discriminator_loss")
    return real_term + reduce_loss(softplus(fake_logits), reduction, "gan_discriminator_loss")


def gan_generator_loss(fake_logits: Tensor, kind: str = "non_saturating", reduction: str = "batch_sum") -> Tensor:
    """The generator's loss from the discriminator's logits on generated samples.

    ``kind="non_saturating"``: softplus(-l) = -log D(G(z)) (Goodfellow et al. 2014's practical
    choice: strong gradients while D still rejects the samples).
    ``kind="minimax"``: -softplus(l) = log(1 - D(G(z))), the original minimax objective.
    Default "batch_sum": the mean over the batch for logits (N,) or (N, 1).
    """
    check_reduction("gan_generator_loss", reduction)
    (fake_logits,) = float_inputs("gan_generator_loss", float_dtype(fake_logits), fake_logits=fake_logits)
    if kind == "non_saturating":
        return reduce_loss(softplus(neg(fake_logits)), reduction, "gan_generator_loss")
    if kind == "minimax":
        return neg(reduce_loss(softplus(fake_logits), reduction, "gan_generator_loss"))
    raise ValueError(f"gan_generator_loss: kind must be 'non_saturating' or 'minimax', got {kind!r}")


# ---- gradcheck cases (python -m scratchgen.gradcheck) ------------------------------------------
register_case("sigmoid_bce_with_logits")(
    lambda rng: (lambda z, x: sigmoid_bce_with_logits(z, x, reduction="none"), [rng.standard_normal((3, 5)) * 3, rng.uniform(0, 1, (3, 5))])
)
register_case("sigmoid_bce_with_logits_reduced")(
    lambda rng: (lambda z, x: sigmoid_bce_with_logits(z, x, reduction="batch_sum") * 1.5,
                 [rng.standard_normal((3, 5)) * 3, rng.uniform(0, 1, (3, 5))])
)
register_case("sigmoid_bce_with_logits_mean_broadcast")(
    lambda rng: (lambda z, x: sigmoid_bce_with_logits(z, x, reduction="mean"), [rng.standard_normal((3, 5)) * 3, rng.uniform(0, 1, 5)])
)
register_case("mse_loss")(lambda rng: (lambda p, t: mse_loss(p, t, reduction="batch_sum"), [rng.standard_normal((3, 4)), rng.standard_normal((4,))]))
register_case("gaussian_nll")(
    lambda rng: (lambda m, x, v: gaussian_nll(m, x, v, reduction="none"), [rng.standard_normal((3, 4)), rng.standard_normal((3, 4)), rng.standard_normal(4)])
)
register_case("softmax_cross_entropy")(
    lambda rng: (lambda z, labels=rng.integers(0, 5, 4): softmax_cross_entropy(z, labels, reduction="none"), [rng.standard_normal((4, 5)) * 2])
)
register_case("softmax_cross_entropy_ignore_index")(
    lambda rng: (
        lambda z, t=np.array([[0, -100, 3], [-100, 2, 2]]): softmax_cross_entropy(z, t, reduction="mean", ignore_index=-100),
        [rng.standard_normal((2, 3, 4)) * 2],
    )
)
register_case("softmax_cross_entropy_soft")(
    lambda rng: (lambda z, t: softmax_cross_entropy(z, t, reduction="sum"), [rng.standard_normal((4, 5)), rng.dirichlet(np.ones(5), 4)])
)
register_case("gan_discriminator_loss")(lambda rng: (gan_discriminator_loss, [rng.standard_normal(6) * 3, rng.standard_normal(4) * 3]))
register_case("gan_generator_loss")(lambda rng: (gan_generator_loss, [rng.standard_normal(6) * 3]))
register_case("gan_generator_loss_minimax")(lambda rng: (lambda l: gan_generator_loss(l, "minimax"), [rng.standard_normal(6) * 3]))
