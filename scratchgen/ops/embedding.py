"""Embedding: a lookup table of vectors, one row per token id.

    y[n, ...] = W[ids[n, ...]]          W: (V, D), ids: any shape of integers in [0, V)
                                        y: ids.shape + (D,)

Forward is a gather. Backward is its adjoint, a *scatter-add*: row i of dL/dW is the sum of
the gradient rows of every position whose id is i,

    dL/dW[i] = sum_{positions p with ids[p] = i} dL/dy[p]

An id that occurs twice (the same word twice in a sentence: the rule, not the exception)
must add both contributions. ``W_grad[ids] += g`` would not: NumPy's buffered fancy
assignment keeps only the last write for a repeated index. ``np.add.at`` is unbuffered and
adds every one. ``padding_idx`` (as in torch): that row gets no gradient, so a padding vector
stays where it was initialised (usually 0).

ids are data, never differentiated; only W gets a gradient.
"""
from __future__ import annotations

import numpy as np

from ..backend import get_array_module, kernel, register_kernel
from ..function import Function
from ..gradcheck import register_case
from ..tensor import Tensor

__all__ = ["embedding"]


# ---- NumPy reference kernels -----------------------------------------------------------------
@register_kernel("embedding_forward")
def embedding_forward(weight, ids):
    """Rows of weight: (V, D) at ids (any shape, integers in [0, V)). Returns ids.shape + (D,)."""
    return get_array_module(weight).take(weight, ids, axis=0)


@register_kernel("embedding_backward")
def embedding_backward(grad, ids, num_embeddings: int, padding_idx=None):
    """Scatter-add of grad: ids.shape + (D,) into a (num_embeddings, D) zero array (repeats add up).

    padding_idx: a row index whose gradient is set to 0, or None.
    """
    xp = get_array_module(grad)
    d = grad.shape[-1]
    grad_weight = xp.zeros((num_embeddings, d), dtype=grad.dtype)
    xp.add.at(grad_weight, ids.reshape(-1), grad.reshape(-1, d))
    if padding_idx is not None:
        grad_weight[padding_idx] = 0
    return grad_weight


# ---- the op ----------------------------------------------------------------------------------
class Embedding(Function):
    op_name = "embedding"

    @staticmethod
    def forward(ctx, weight, ids=None, padding_idx=None):
        ctx.save_for_backward(ids)
        ctx.num_embeddings, ctx.padding_idx = weight.shape[0], padding_idx
        return kernel("embedding_forward")(weight, ids)

    @staticmethod
    def backward(ctx, grad):
        (ids,) = ctx.saved_arrays
        return kernel("embedding_backward")(grad, ids, ctx.num_embeddings, ctx.padding_idx)


def embedding(ids, weight: Tensor, padding_idx: int = None) -> Tensor:
    """Look up ``weight`` (V, D) at integer ``ids`` (any shape): returns ids.shape + (D,).

    Argument order as torch's ``F.embedding(input, weight, padding_idx)``. ids must be integers
    in [0, V); ``padding_idx`` (if given, in [-V, V)) is a row whose gradient is always 0.
    """
    data = weight.data if isinstance(weight, Tensor) else weight
    if data.ndim != 2:
        raise ValueError(f"embedding: weight must be (num_embeddings, embedding_dim), got shape {data.shape}")
    count = data.shape[0]
    xp = get_array_module(data)
    raw = ids.data if isinstance(ids, Tensor) else ids
    raw = xp.asarray(raw)
    if raw.dtype.kind not in "iu":
        raise TypeError(f"embedding: ids must be integers, got dtype {raw.dtype} (shape {raw.shape})")
    if raw.size:
        bad = (raw < 0) | (raw >= count)
        if bool(bad.any()):
            where = tuple(int(i) for i in np.unravel_index(int(xp.argmax(bad.ravel())), raw.shape))
            raise IndexError(f"embedding: id {int(raw[where])} at index {where} is out of range for "
                             f"{count} embeddings (ids must lie in [0, {count - 1}])")
    if padding_idx is not None:
        if not -count <= padding_idx < count:
            raise ValueError(f"embedding: padding_idx {padding_idx} is out of range for {count} embeddings")
        padding_idx = int(padding_idx) % count
    return Embedding.apply(weight, ids=raw, padding_idx=padding_idx)


# ---- gradcheck cases (python -m scratchgen.gradcheck) ------------------------------------------
register_case("embedding")(lambda rng: (lambda w: embedding(np.array([[1, 3, 1], [0, 3, 3]]), w), [rng.standard_normal((5, 3))]))
# (padding_idx deliberately gives a row no gradient although the output depends on it, so it is
# tested directly in tests/test_embedding.py rather than against finite differences.)
