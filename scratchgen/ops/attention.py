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
fully masked row. Everything is six batched GEMMs (two forward, four backward) plus two fused
softmax kernels (``masked_softmax_forward`` / ``masked_softmax_backward``, which the Numba and
GPU backends replace). The scale is applied to q (L/d times fewer multiplications than to S),
and the saved q is the scaled one: dL/dk = dL/dS^T (scale q) then needs no extra factor.
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
def masked_softmax_forward(x, mask, out=None):
    """Softmax over the last axis of x: (..., L), restricted to ``mask``.

    mask: boolean, broadcastable to x's shape (True = take part), or None (a plain softmax).
    Masked entries are 0; a row with no allowed entry is all 0. Returns x's shape and dtype,
    written into ``out`` when given (an array of x's shape and dtype; it may be x itself, which
    saves attention an (..., L, L) allocation).
    """
    xp = get_array_module(x)
    if mask is None:
        row_max = x.max(axis=-1, keepdims=True)
    else:
        filled = xp.where(mask, x, -xp.inf)
        row_max = filled.max(axis=-1, keepdims=True)
        row_max = xp.where(row_max == -xp.inf, 0, row_max)  # a fully masked row: any finite shift will do
        x = filled
    e = xp.subtract(x, row_max, out=out)
    xp.exp(e, out=e)  # exp(-inf) = 0 at the masked entries
    total = e.sum(axis=-1, keepdims=True)
    if mask is not None:
        total = xp.where(total == 0, 1, total)  # 0 / 1 = 0 for a fully masked row
    e /= total
    return e


@register_kernel("masked_softmax_backward")
def masked_softmax_backward(grad, y, out=None):
    """dL/dx = y (grad - sum(grad y)) over the last axis, given y = masked_softmax(x, mask).

    grad, y: (..., L). Needs no mask: y is 0 wherever the mask was False. ``out``: as in the
    forward (it may be grad itself).
    """
    dot = (grad * y).sum(axis=-1, keepdims=True)
    result = get_array_module(grad).subtract(grad, dot, out=out)
    result *= y
    return result


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


# On host arrays attention runs over blocks of heads whose (Lq, Lk) scores hold about this many
# elements (512 KiB of float32, an L2 cache). Forward, each block's scores are computed into
# their slice of P, normalised in place and multiplied by v while still in cache. Backward,
# dL/dP never exists at full size: each block's is computed, turned into dL/dS in place and
# used by two GEMMs, in one small buffer. (A fresh (N, H, L, L) temporary costs more than its
# arithmetic: the operating system maps and zeroes every page of it, ~2000 page faults per 8 MB,
# a quarter of attention's time at L = 128.) The arithmetic is the same as on whole arrays.
BLOCK_SCORES = 1 << 17


def _blocks(count: int, lq: int, lk: int):
    per_block = max(1, BLOCK_SCORES // max(1, lq * lk))
    return [slice(start, min(count, start + per_block)) for start in range(0, count, per_block)]


def _blockable(q, k, v, dropout_mask) -> bool:
    """Host arrays with the same leading axes (no broadcasting between q, k, v) and no dropout."""
    lead = q.shape[:-2]
    return get_array_module(q) is np and dropout_mask is None and len(lead) > 0 and k.shape[:-2] == v.shape[:-2] == lead


class ScaledDotProductAttention(Function):
    op_name = "scaled_dot_product_attention"

    @staticmethod
    def forward(ctx, q, k, v, mask=None, dropout_mask=None, scale=1.0):
        ctx.scale = scale
        q = q * scale  # scale q, not the (L, L) scores: L / d times fewer multiplications
        if _blockable(q, k, v, dropout_mask):
            out, probs = _attention_forward_blocked(q, k, v, mask)
        else:
            scores = q @ k.swapaxes(-1, -2)
            probs = kernel("masked_softmax_forward")(scores, mask, out=scores)  # in place: scores is ours
            out = (probs if dropout_mask is None else probs * dropout_mask) @ v
        ctx.save_for_backward(q, k, v, probs, dropout_mask)  # q already scaled
        return out

    @staticmethod
    def backward(ctx, grad):
        q, k, v, probs, dropout_mask = ctx.saved_arrays
        needs = ctx.needs_input_grad[:3]
        if _blockable(q, k, v, dropout_mask):
            grads = _attention_backward_blocked(grad, q, k, v, probs, needs)
        else:
            grads = _attention_backward(grad, q, k, v, probs, dropout_mask, needs)
        grad_q, grad_k, grad_v = grads
        # with S = (scale q) k^T: dL/dq = scale dS k (the GEMM's result is scaled, not dS), and
        # dL/dk = dS^T (scale q) needs nothing more: the saved q is already scaled
        if grad_q is not None:
            grad_q *= ctx.scale
        return grad_q, grad_k, grad_v


def _attention_forward_blocked(q, k, v, mask):
    """(out, probs) of scaled q, k, v with equal leading axes, block of heads by block of heads."""
    lead, (lq, d), lk, dv = q.shape[:-2], q.shape[-2:], k.shape[-2], v.shape[-1]
    count = math.prod(lead)
    q3, k3, v3 = q.reshape(count, lq, d), k.reshape(count, lk, d), v.reshape(count, lk, dv)
    probs = np.empty((count, lq, lk), q.dtype)
    out = np.empty((count, lq, dv), q.dtype)
    if mask is not None and mask.ndim > 2 and all(n == 1 for n in mask.shape[:-2]):
        mask = mask.reshape(mask.shape[-2:])
    if mask is not None and mask.ndim > 2:  # a mask with leading axes is sliced along with the heads
        mask = np.broadcast_to(mask, lead + (lq, lk)).reshape(count, lq, lk)
    for b in _blocks(count, lq, lk):
        scores = np.matmul(q3[b], k3[b].swapaxes(-1, -2), out=probs[b])
        kernel("masked_softmax_forward")(scores, mask if mask is None or mask.ndim <= 2 else mask[b], out=scores)
        np.matmul(scores, v3[b], out=out[b])
    return out.reshape(lead + (lq, dv)), probs.reshape(lead + (lq, lk))


def _attention_backward(grad, q, k, v, probs, dropout_mask, needs):
    """The backward of the module docstring on whole arrays (any broadcasting, dropout, CuPy),
    for the scaled q; the caller scales dL/dq."""
    needs_q, needs_k, needs_v = needs
    grad_v = None
    if needs_v:
        weights = probs if dropout_mask is None else probs * dropout_mask
        grad_v = weights.swapaxes(-1, -2) @ grad
    if not (needs_q or needs_k):
        return None, None, grad_v
    grad_probs = grad @ v.swapaxes(-1, -2)
    if dropout_mask is not None:
        grad_probs *= dropout_mask
    grad_scores = kernel("masked_softmax_backward")(grad_probs, probs, out=grad_probs)
    grad_q = grad_scores @ k if needs_q else None
    grad_k = grad_scores.swapaxes(-1, -2) @ q if needs_k else None
    return grad_q, grad_k, grad_v


def _attention_backward_blocked(grad, q, k, v, probs, needs):
    """The same, block of heads by block of heads (see BLOCK_SCORES); q, k, v share their leading axes."""
    lead, (lq, lk), d, dv = probs.shape[:-2], probs.shape[-2:], q.shape[-1], v.shape[-1]
    count = math.prod(lead)
    p3, g3 = probs.reshape(count, lq, lk), grad.reshape(count, lq, dv)
    q3, k3, v3 = q.reshape(count, lq, d), k.reshape(count, lk, d), v.reshape(count, lk, dv)
    grad_q = np.empty((count, lq, d), q.dtype) if needs[0] else None
    grad_k = np.empty((count, lk, d), k.dtype) if needs[1] else None
    grad_v = np.empty((count, lk, dv), v.dtype) if needs[2] else None
    for b in _blocks(count, lq, lk):
        if grad_v is not None:
            np.matmul(p3[b].swapaxes(-1, -2), g3[b], out=grad_v[b])
        if grad_q is None and grad_k is None:
            continue
        grad_scores = g3[b] @ v3[b].swapaxes(-1, -2)
        kernel("masked_softmax_backward")(grad_scores, p3[b], out=grad_scores)
        if grad_q is not None:
            np.matmul(grad_scores, k3[b], out=grad_q[b])
        if grad_k is not None:
            np.matmul(grad_scores.swapaxes(-1, -2), q3[b], out=grad_k[b])
    shaped = [None if g is None else g.reshape(lead + g.shape[1:]) for g in (grad_q, grad_k, grad_v)]
    return tuple(shaped)


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
