"""Attention: masked softmax, scaled dot-product attention, causal and padding masks.

Scaled dot-product attention (Vaswani et al. 2017) on (..., L, d) arrays, torch's conventions:

    q: (..., Lq, d)   k: (..., Lk, d)   v: (..., Lk, dv)      leading axes broadcast
    S = scale q k^T                   (..., Lq, Lk)   scale = 1 / sqrt(d) unless given
    P = masked_softmax(S, mask)       (..., Lq, Lk)   softmax over the keys (last axis)
    W = P * dropout_mask              (..., Lq, Lk)   (W = P without dropout)
    O = W v                           (..., Lq, dv)

``mask`` is boolean, broadcastable to (..., Lq, Lk), and **True where attention is allowed**
(torch's ``F.scaled_dot_product_attention`` convention; note that ``nn.MultiheadAttention``'s
``attn_mask`` and ``key_padding_mask`` use the opposite one, True = masked out).

Masked softmax, stably: with m = max of the allowed x of a row,

    y_j = exp(x_j - m) / sum_{allowed i} exp(x_i - m)    where allowed,    y_j = 0 where masked

A row with *no* allowed entry (a padded query, or a causal mask with Lq > Lk) has no softmax
at all; we define its output as 0 and so its gradient as 0, instead of the 0/0 = NaN a
``-inf`` fill would give. In attention, such a query then attends to nothing and its output
row is 0.

Backward, with G = dL/dO (the one non-obvious step is the softmax Jacobian):

    dL/dv = W^T G                         (..., Lk, dv)
    dL/dW = G v^T,   dL/dP = dL/dW * dropout_mask
    dL/dS = P * (dL/dP - sum_j (dL/dP * P))                                  per row
    dL/dq = scale dL/dS k,   dL/dk = scale dL/dS^T q

The softmax line is the Jacobian diag(p) - p p^T of each row applied to a vector, which costs
O(L) per row: the (L, L) Jacobian of a row (an (..., Lq, Lk, Lk) tensor for all rows) is never
formed. Masked entries have P = 0, so they get gradient 0 with no special case, and so does a
fully masked row. Everything is four batched GEMMs plus two fused softmax kernels
(``masked_softmax_forward`` / ``masked_softmax_backward``, which the Numba and GPU backends
replace).
"""
from __future__ import annotations

import math

import numpy as np

from ..backend import get_array_module, kernel, register_kernel
from ..function import Function
from ..gradcheck import register_case
from ..tensor import Tensor

__all__ = ["masked_softmax", "scaled_dot_product_attention", "causal_mask", "padding_mask"]


# ---- NumPy reference kernels -----------------------------------------------------------------
@register_kernel("masked_softmax_forward")
def masked_softmax_forward(x, mask):
    """Softmax over the last axis of x: (..., L), restricted to ``mask``.

    mask: boolean, broadcastable to x's shape (True = take part), or None (a plain softmax).
    Masked entries are 0; a row with no allowed entry is all 0. Returns x's shape and dtype.
    """
    xp = get_array_module(x)
    if mask is None:
        e = xp.exp(x - x.max(axis=-1, keepdims=True))
        e /= e.sum(axis=-1, keepdims=True)
        return e
    filled = xp.where(mask, x, -xp.inf)
    row_max = filled.max(axis=-1, keepdims=True)
    row_max = xp.where(row_max == -xp.inf, 0, row_max)  # a fully masked row: any finite shift will do
    e = xp.exp(filled - row_max)  # exp(-inf) = 0 at the masked entries
    total = e.sum(axis=-1, keepdims=True)
    e /= xp.where(total == 0, 1, total)  # 0 / 1 = 0 for a fully masked row
    return e


@register_kernel("masked_softmax_backward")
def masked_softmax_backward(grad, y):
    """dL/dx = y (grad - sum(grad y)) over the last axis, given y = masked_softmax(x, mask).

    grad, y: (..., L). Needs no mask: y is 0 wherever the mask was False.
    """
    dot = (grad * y).sum(axis=-1, keepdims=True)
    out = grad - dot
    out *= y
    return out


# ---- ops -------------------------------------------------------------------------------------
class MaskedSoftmax(Function):
    op_name = "masked_softmax"

    @staticmethod
    def forward(ctx, x, mask=None, axis=-1):
        xp = get_array_module(x)
        ctx.axis = axis
        last = axis in (-1, x.ndim - 1)
        if not last:  # the kernels work along the last axis
            x = xp.moveaxis(x, axis, -1)
            if mask is not None:
                mask = xp.moveaxis(mask.reshape((1,) * (x.ndim - mask.ndim) + mask.shape), axis, -1)
        y = kernel("masked_softmax_forward")(x, mask)
        ctx.save_for_backward(y)
        return y if last else xp.moveaxis(y, -1, axis)

    @staticmethod
    def backward(ctx, grad):
        (y,) = ctx.saved_arrays
        axis = ctx.axis
        xp = get_array_module(grad)
        if axis in (-1, y.ndim - 1):
            return kernel("masked_softmax_backward")(grad, y)
        grad_x = kernel("masked_softmax_backward")(xp.moveaxis(grad, axis, -1), y)
        return xp.moveaxis(grad_x, -1, axis)


class ScaledDotProductAttention(Function):
    op_name = "scaled_dot_product_attention"

    @staticmethod
    def forward(ctx, q, k, v, mask=None, dropout_mask=None, scale=1.0):
        scores = q @ k.swapaxes(-1, -2)
        scores *= scale  # a Python float: keeps the dtype
        probs = kernel("masked_softmax_forward")(scores, mask)
        weights = probs if dropout_mask is None else probs * dropout_mask
        ctx.save_for_backward(q, k, v, probs, dropout_mask)
        ctx.scale = scale
        return weights @ v

    @staticmethod
    def backward(ctx, grad):
        q, k, v, probs, dropout_mask = ctx.saved_arrays
        needs_q, needs_k, needs_v = ctx.needs_input_grad[:3]
        grad_v = None
        if needs_v:
            weights = probs if dropout_mask is None else probs * dropout_mask
            grad_v = weights.swapaxes(-1, -2) @ grad
        if not (needs_q or needs_k):
            return None, None, grad_v
        grad_probs = grad @ v.swapaxes(-1, -2)
        if dropout_mask is not None:
            grad_probs *= dropout_mask
        grad_scores = kernel("masked_softmax_backward")(grad_probs, probs)
        grad_scores *= ctx.scale
        grad_q = grad_scores @ k if needs_q else None
        grad_k = grad_scores.swapaxes(-1, -2) @ q if needs_k else None
        return grad_q, grad_k, grad_v


# ---- masks -----------------------------------------------------------------------------------
def causal_mask(size: int, size_k: int = None, like=None):
    """(size, size_k) boolean mask, True on and below the diagonal: query i attends to keys 0..i.

    ``size_k`` defaults to ``size`` (self-attention). With size_k != size the diagonal starts at
    the top left, as torch's ``is_causal=True``. ``like``: an array or Tensor whose array module
    (NumPy or CuPy) the mask is made with.
    """
    size_k = size if size_k is None else size_k
    if int(size) != size or int(size_k) != size_k or size < 0 or size_k < 0:
        raise ValueError(f"causal_mask: sizes must be non-negative ints, got {size!r} and {size_k!r}")
    xp = get_array_module(like.data if isinstance(like, Tensor) else like) if like is not None else np
    return xp.arange(int(size))[:, None] >= xp.arange(int(size_k))[None, :]


def padding_mask(lengths, max_length: int, like=None):
    """(N, 1, 1, max_length) boolean mask, True at the first lengths[n] positions of example n.

    Broadcasts against attention scores (N, heads, Lq, Lk): every query of example n may attend
    to its real keys only. ``lengths``: (N,) integers in [0, max_length].
    """
    lengths = lengths.data if isinstance(lengths, Tensor) else lengths
    xp = get_array_module(like.data if isinstance(like, Tensor) else like) if like is not None else get_array_module(lengths)
    lengths = xp.asarray(lengths)
    if lengths.ndim != 1 or lengths.dtype.kind not in "iu":
        raise TypeError(f"padding_mask: lengths must be a 1-D integer array, got shape {lengths.shape} dtype {lengths.dtype}")
    if lengths.size and (int(lengths.min()) < 0 or int(lengths.max()) > max_length):
        raise ValueError(f"padding_mask: lengths must lie in [0, {max_length}], got values from "
                         f"{int(lengths.min())} to {int(lengths.max())}")
    return (xp.arange(int(max_length))[None, :] < lengths[:, None])[:, None, None, :]


# ---- public functions ------------------------------------------------------------------------
def _raw(value):
    return value.data if isinstance(value, Tensor) else value


def _check_mask(op: str, mask, target_shape, xp):
    """A boolean mask (array or Tensor) on xp that broadcasts to ``target_shape``, or a one-line error."""
    mask = xp.asarray(_raw(mask))
    if mask.dtype != np.bool_:
        raise TypeError(f"{op}: mask must be boolean (True = attend), got dtype {mask.dtype}")
    try:
        fits = np.broadcast_shapes(mask.shape, target_shape) == tuple(target_shape)
    except ValueError:
        fits = False
    if not fits:
        raise ValueError(f"{op}: mask of shape {tuple(mask.shape)} does not broadcast to the scores' shape {tuple(target_shape)}")
    return mask


def masked_softmax(x: Tensor, mask=None, axis: int = -1) -> Tensor:
    """Softmax of x along ``axis`` over the entries where ``mask`` is True; 0 elsewhere.

    mask: boolean, broadcastable to x's shape, or None (plain softmax). A slice along ``axis``
    with no True entry gives 0 (and gradient 0), not NaN.
    """
    data = _raw(x)
    if data.ndim == 0:
        raise ValueError("masked_softmax: input needs at least one axis, got a scalar")
    if not -data.ndim <= axis < data.ndim:
        raise ValueError(f"masked_softmax: axis {axis} is out of range for input shape {data.shape}")
    if mask is not None:
        mask = _check_mask("masked_softmax", mask, data.shape, get_array_module(data))
    return MaskedSoftmax.apply(x, mask=mask, axis=axis)


def scaled_dot_product_attention(q: Tensor, k: Tensor, v: Tensor, mask=None, dropout_mask=None,
                                 scale: float = None, is_causal: bool = False) -> Tensor:
    """softmax(q k^T scale + masking) v, with scale = 1/sqrt(d) by default; returns (..., Lq, dv).

    q: (..., Lq, d), k: (..., Lk, d), v: (..., Lk, dv); leading axes broadcast (e.g. (N, heads)).
    mask: boolean, broadcastable to (..., Lq, Lk), True where query i may attend to key j
    (``causal_mask(L)`` for a decoder, ``padding_mask(lengths, L)`` for padded batches);
    ``is_causal=True`` adds a causal mask (and-ed with ``mask`` if both are given).
    dropout_mask: attention dropout as explicit noise, broadcastable to (..., Lq, Lk), with
    entries 0 or 1/(1 - p) (so the op is deterministic and gradcheckable). Names and argument
    order follow torch's F.scaled_dot_product_attention (``attn_mask`` is ``mask`` here,
    ``dropout_p`` is replaced by the explicit ``dropout_mask``).
    """
    op = "scaled_dot_product_attention"
    qd, kd, vd = _raw(q), _raw(k), _raw(v)
    for name, array in (("q", qd), ("k", kd), ("v", vd)):
        if array.ndim < 2:
            raise ValueError(f"{op}: {name} must be (..., L, d), got shape {array.shape}")
        if array.dtype.kind != "f":
            raise TypeError(f"{op}: {name} must be floating, got dtype {array.dtype}")
    if qd.shape[-1] != kd.shape[-1]:
        raise ValueError(f"{op}: q has width {qd.shape[-1]} and k width {kd.shape[-1]} (shapes {qd.shape}, {kd.shape}); they must match")
    if kd.shape[-2] != vd.shape[-2]:
        raise ValueError(f"{op}: k has {kd.shape[-2]} keys and v {vd.shape[-2]} values (shapes {kd.shape}, {vd.shape}); they must match")
    try:
        batch = np.broadcast_shapes(qd.shape[:-2], kd.shape[:-2], vd.shape[:-2])
    except ValueError:
        raise ValueError(f"{op}: the leading axes of q {qd.shape}, k {kd.shape} and v {vd.shape} do not broadcast") from None
    scores_shape = tuple(batch) + (qd.shape[-2], kd.shape[-2])
    xp = get_array_module(qd)
    if mask is not None:
        mask = _check_mask(op, mask, scores_shape, xp)
    if is_causal:
        causal = causal_mask(qd.shape[-2], kd.shape[-2], like=qd)
        mask = causal if mask is None else mask & causal
    if dropout_mask is not None:
        dropout_mask = xp.asarray(_raw(dropout_mask))
        try:
            fits = np.broadcast_shapes(dropout_mask.shape, scores_shape) == scores_shape
        except ValueError:
            fits = False
        if not fits:
            raise ValueError(f"{op}: dropout_mask of shape {tuple(dropout_mask.shape)} does not broadcast to the scores' shape {scores_shape}")
        if dropout_mask.dtype != qd.dtype:
            dropout_mask = dropout_mask.astype(qd.dtype)
    scale = 1.0 / math.sqrt(qd.shape[-1]) if scale is None else float(scale)
    return ScaledDotProductAttention.apply(q, k, v, mask=mask, dropout_mask=dropout_mask, scale=scale)


# ---- gradcheck cases (python -m scratchgen.gradcheck) ------------------------------------------
def _qkv(rng, batch, lq, lk, d, dv):
    return [rng.standard_normal(batch + (lq, d)), rng.standard_normal(batch + (lk, d)), rng.standard_normal(batch + (lk, dv))]


register_case("masked_softmax")(lambda rng: (
    lambda x, m=rng.random((3, 5)) < 0.6: masked_softmax(x, m & np.array([1, 1, 0, 1, 1], bool)), [rng.standard_normal((2, 3, 5))]))
register_case("masked_softmax_axis0")(lambda rng: (
    lambda x, m=rng.random((4, 1)) < 0.7: masked_softmax(x, m, axis=0), [rng.standard_normal((4, 3))]))
register_case("scaled_dot_product_attention")(lambda rng: (scaled_dot_product_attention, _qkv(rng, (2,), 3, 4, 3, 2)))
register_case("scaled_dot_product_attention_causal")(lambda rng: (
    lambda q, k, v: scaled_dot_product_attention(q, k, v, mask=causal_mask(4)), _qkv(rng, (2, 1), 4, 4, 3, 3)))
register_case("scaled_dot_product_attention_dropout")(lambda rng: (
    lambda q, k, v, d=(rng.random((2, 3, 4)) >= 0.25) / 0.75: scaled_dot_product_attention(q, k, v, dropout_mask=d, scale=0.7),
    _qkv(rng, (2,), 3, 4, 2, 3)))
