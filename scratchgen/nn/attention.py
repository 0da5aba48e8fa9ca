"""Transformer layers: Embedding, LayerNorm, MultiHeadAttention, positional encodings, an encoder block.

Thin ``Module``s around the ops of ``scratchgen/ops/attention.py``, ``embedding.py`` and
``normalization.py``, with torch's names *and parameter names*, so that a learner can copy
weights across (``model.load_state_dict({k: v.numpy() for k, v in torch_model.state_dict().items()})``):

    Embedding(V, D)               ids (any shape) -> ids.shape + (D,)        weight (V, D)
    LayerNorm(D)                  (..., D) -> (..., D)                       weight (D,), bias (D,)
    MultiHeadAttention(E, H)      (N, Lq, E), (N, Lk, E), (N, Lk, E) -> (N, Lq, E)
                                  in_proj_weight (3E, E), in_proj_bias (3E,), out_proj (Linear E -> E)
                                  (torch.nn.MultiheadAttention's packed layout, batch_first=True)
    SinusoidalPositionalEncoding  (..., L, D) -> x + PE[:L]                  fixed table, a buffer
    LearnedPositionalEncoding     (..., L, D) -> x + weight[:L]              weight (max_len, D)
    TransformerEncoderBlock       (N, L, E) -> (N, L, E)                     torch's
                                  nn.TransformerEncoderLayer names: self_attn, linear1, linear2, norm1, norm2

Batches are always batch-first: (N, L, E). Masks follow ``scaled_dot_product_attention``:
boolean, **True where attention is allowed**, broadcastable to (N, heads, Lq, Lk), e.g.
``causal_mask(L)`` (L, L) or ``padding_mask(lengths, L)`` (N, 1, 1, L). torch's
``nn.MultiheadAttention`` takes the opposite (True = masked out): pass ``~mask`` there.
"""
from __future__ import annotations

import functools
import math

import numpy as np

from .. import ops
from ..backend import get_array_module
from ..tensor import Tensor, as_tensor
from . import init as init_
from .layers import Dropout, Linear
from .module import Module, Parameter

__all__ = [
    "Embedding", "LayerNorm", "MultiHeadAttention", "SinusoidalPositionalEncoding", "LearnedPositionalEncoding",
    "TransformerEncoderBlock",
]


def _float_dtype(dtype, module: str):
    dtype = np.dtype(dtype)
    if dtype.kind != "f":
        raise TypeError(f"{module}: dtype must be floating (float32 or float64), got {dtype}")
    return dtype


def _positive(module: str, **sizes) -> None:
    for name, value in sizes.items():
        if int(value) != value or value <= 0:
            raise ValueError(f"{module}: {name} must be a positive int, got {value!r}")


def _rows(layer: Linear, x: Tensor) -> Tensor:
    """A Linear layer applied to the last axis of x: (..., in) -> (..., out)."""
    shape = tuple(x.shape)
    return layer(x.reshape((-1, shape[-1]))).reshape(shape[:-1] + (layer.out_features,))


# ---- embedding and normalisation -----------------------------------------------------------------
class Embedding(Module):
    """A table of ``num_embeddings`` vectors of size ``embedding_dim``: ids -> ids.shape + (embedding_dim,).

    Initialised N(0, 1) like torch (``init`` takes any ``nn.init`` name or callable instead);
    the ``padding_idx`` row starts at 0 and never gets a gradient.
    """

    def __init__(self, num_embeddings: int, embedding_dim: int, padding_idx: int = None, init=None, rng=None,
                 dtype=np.float32):
        super().__init__()
        _positive("Embedding", num_embeddings=num_embeddings, embedding_dim=embedding_dim)
        dtype = _float_dtype(dtype, "Embedding")
        self.num_embeddings, self.embedding_dim = int(num_embeddings), int(embedding_dim)
        if padding_idx is not None:
            if not -self.num_embeddings <= padding_idx < self.num_embeddings:
                raise ValueError(f"Embedding: padding_idx {padding_idx} is out of range for {num_embeddings} embeddings")
            padding_idx = int(padding_idx) % self.num_embeddings
        self.padding_idx = padding_idx
        shape = (self.num_embeddings, self.embedding_dim)
        initializer = functools.partial(init_.normal, std=1.0) if init is None else init_.get_initializer(init)
        weight = initializer(shape, rng=np.random.default_rng(rng), dtype=dtype, fans=init_.compute_fans(shape))
        if padding_idx is not None:
            weight[padding_idx] = 0
        self.weight = Parameter(weight)

    def forward(self, ids):
        return ops.embedding(ids, self.weight, padding_idx=self.padding_idx)

    def extra_repr(self) -> str:
        pad = f", padding_idx={self.padding_idx}" if self.padding_idx is not None else ""
        return f"{self.num_embeddings}, {self.embedding_dim}{pad}"


class LayerNorm(Module):
    """Normalise each example over its last axis (size ``normalized_shape``), then scale and shift.

    ``elementwise_affine=False``: no weight and no bias; ``bias=False``: a weight only (torch's options).
    """

    def __init__(self, normalized_shape, eps: float = 1e-5, elementwise_affine: bool = True, bias: bool = True,
                 dtype=np.float32):
        super().__init__()
        if isinstance(normalized_shape, (tuple, list)):
            if len(normalized_shape) != 1:
                raise ValueError(f"LayerNorm: only the last axis is normalised; normalized_shape must be an int "
                                 f"or a 1-tuple, got {tuple(normalized_shape)}")
            normalized_shape = normalized_shape[0]
        _positive("LayerNorm", normalized_shape=normalized_shape)
        if eps <= 0:
            raise ValueError(f"LayerNorm: eps must be positive, got {eps}")
        dtype = _float_dtype(dtype, "LayerNorm")
        self.normalized_shape, self.eps = int(normalized_shape), float(eps)
        self.elementwise_affine = bool(elementwise_affine)
        d = self.normalized_shape
        self.weight = Parameter(np.ones(d, dtype=dtype)) if elementwise_affine else None
        self.bias = Parameter(np.zeros(d, dtype=dtype)) if elementwise_affine and bias else None

    def forward(self, x):
        if x.ndim < 1 or x.shape[-1] != self.normalized_shape:
            raise ValueError(f"LayerNorm({self.normalized_shape}): expected a last axis of size {self.normalized_shape}, "
                             f"got input shape {tuple(x.shape)}")
        return ops.layer_norm(x, self.weight, self.bias, self.eps)

    def extra_repr(self) -> str:
        return f"{self.normalized_shape}, eps={self.eps}, elementwise_affine={self.elementwise_affine}"


# ---- attention -------------------------------------------------------------------------------------
class MultiHeadAttention(Module):
    """Multi-head attention: project, split into heads, attend, merge, project.

        q_h = query W_q,h + b_q,h   (and k_h, v_h likewise; head h has width E / num_heads)
        head_h = scaled_dot_product_attention(q_h, k_h, v_h, mask)
        out = concat_h(head_h) W_o^T + b_o

    The three input projections are stored packed, as torch.nn.MultiheadAttention stores them
    (``in_proj_weight`` (3E, E): rows [0, E) project queries, [E, 2E) keys, [2E, 3E) values),
    so its state dict loads as it is. Initialisation matches torch too: Glorot-uniform on the
    packed (3E, E) matrix, zero biases (``out_proj`` is a Glorot-initialised Linear).

    ``forward(query, key=None, value=None, mask=None, is_causal=False)``: key defaults to query
    (self-attention) and value to key. ``dropout`` drops attention weights in training, with
    masks drawn from this module's ``rng``.
    """

    def __init__(self, embed_dim: int, num_heads: int, dropout: float = 0.0, bias: bool = True, rng=None,
                 dtype=np.float32):
        super().__init__()
        _positive("MultiHeadAttention", embed_dim=embed_dim, num_heads=num_heads)
        if embed_dim % num_heads:
            raise ValueError(f"MultiHeadAttention: embed_dim {embed_dim} is not divisible by num_heads {num_heads}")
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"MultiHeadAttention: dropout must be in [0, 1), got {dropout}")
        dtype = _float_dtype(dtype, "MultiHeadAttention")
        self.embed_dim, self.num_heads = int(embed_dim), int(num_heads)
        self.head_dim = self.embed_dim // self.num_heads
        self.dropout = float(dropout)
        self.rng = np.random.default_rng(rng)
        e = self.embed_dim
        self.in_proj_weight = Parameter(init_.glorot_uniform((3 * e, e), rng=self.rng, dtype=dtype))
        self.in_proj_bias = Parameter(np.zeros(3 * e, dtype=dtype)) if bias else None
        self.out_proj = Linear(e, e, bias=bias, rng=self.rng, dtype=dtype)

    def _project(self, x: Tensor, which: int) -> Tensor:
        """Rows [which E, (which + 1) E) of the packed projection, split into heads: (N, H, L, E/H)."""
        e = self.embed_dim
        rows = slice(which * e, (which + 1) * e)
        bias = self.in_proj_bias[rows] if self.in_proj_bias is not None else None
        n, length, _ = x.shape
        y = ops.linear(x.reshape((n * length, e)), self.in_proj_weight[rows], bias)
        return y.reshape((n, length, self.num_heads, self.head_dim)).transpose((0, 2, 1, 3))

    def _check(self, name: str, x: Tensor, batch=None) -> None:
        if x.ndim != 3 or x.shape[2] != self.embed_dim or (batch is not None and x.shape[0] != batch):
            expected = f"(N, L, {self.embed_dim})" if batch is None else f"({batch}, L, {self.embed_dim})"
            raise ValueError(f"{self.describe()}: expected {name} of shape {expected}, got {tuple(x.shape)}")

    def forward(self, query, key=None, value=None, mask=None, is_causal: bool = False) -> Tensor:
        query = as_tensor(query)
        key = query if key is None else as_tensor(key)
        value = key if value is None else as_tensor(value)
        self._check("query", query)
        self._check("key", key, query.shape[0])
        self._check("value", value, query.shape[0])
        if value.shape[1] != key.shape[1]:
            raise ValueError(f"{self.describe()}: key has {key.shape[1]} positions, value {value.shape[1]}")
        n, length_q, e = query.shape
        q, k, v = self._project(query, 0), self._project(key, 1), self._project(value, 2)
        dropout_mask = None
        if self.training and self.dropout > 0.0:
            shape = (n, self.num_heads, length_q, key.shape[1])
            keep = self.rng.random(shape) >= self.dropout
            dropout_mask = keep.astype(query.dtype) * query.dtype.type(1.0 / (1.0 - self.dropout))
            dropout_mask = get_array_module(query.data).asarray(dropout_mask)
        heads = ops.scaled_dot_product_attention(q, k, v, mask=mask, dropout_mask=dropout_mask, is_causal=is_causal)
        merged = heads.transpose((0, 2, 1, 3)).reshape((n * length_q, e))
        return self.out_proj(merged).reshape((n, length_q, e))

    def describe(self) -> str:
        return f"MultiHeadAttention(embed_dim={self.embed_dim}, num_heads={self.num_heads})"

    def extra_repr(self) -> str:
        return f"embed_dim={self.embed_dim}, num_heads={self.num_heads}, dropout={self.dropout}"


# ---- positional encodings --------------------------------------------------------------------------
def sinusoidal_table(max_len: int, d_model: int, dtype=np.float32) -> np.ndarray:
    """PE[pos, 2i] = sin(pos / 10000^(2i/d)), PE[pos, 2i + 1] = cos(pos / 10000^(2i/d)): (max_len, d_model).

    Each pair of columns is a rotation at its own frequency, so PE[pos + k] is a fixed linear
    function of PE[pos] (Vaswani et al. 2017): relative positions are easy to read off.
    """
    position = np.arange(max_len, dtype=np.float64)[:, None]
    frequency = np.exp(-math.log(10000.0) * np.arange(0, d_model, 2, dtype=np.float64) / d_model)
    table = np.zeros((max_len, d_model))
    table[:, 0::2] = np.sin(position * frequency)
    table[:, 1::2] = np.cos(position * frequency[: d_model // 2])
    return table.astype(dtype)


class _PositionalEncoding(Module):
    def _check_length(self, x) -> int:
        if x.ndim < 2 or x.shape[-1] != self.d_model:
            raise ValueError(f"{type(self).__name__}: expected input (..., L, {self.d_model}), got shape {tuple(x.shape)}")
        length = x.shape[-2]
        if length > self.max_len:
            raise ValueError(f"{type(self).__name__}: sequence length {length} exceeds max_len {self.max_len} "
                             f"(the length of its position table)")
        return length

    def extra_repr(self) -> str:
        return f"max_len={self.max_len}, d_model={self.d_model}"


class SinusoidalPositionalEncoding(_PositionalEncoding):
    """x + PE[:L] with the fixed sinusoidal table of ``sinusoidal_table`` (a buffer, not trained)."""

    def __init__(self, d_model: int, max_len: int = 512, dtype=np.float32):
        super().__init__()
        _positive("SinusoidalPositionalEncoding", d_model=d_model, max_len=max_len)
        self.d_model, self.max_len = int(d_model), int(max_len)
        self.register_buffer("pe", sinusoidal_table(self.max_len, self.d_model, _float_dtype(dtype, "SinusoidalPositionalEncoding")))

    def forward(self, x):
        return as_tensor(x) + self.pe[: self._check_length(x)]


class LearnedPositionalEncoding(_PositionalEncoding):
    """x + weight[:L] with a trained (max_len, d_model) table (BERT's and GPT-2's), initialised N(0, 0.02^2)."""

    def __init__(self, max_len: int, d_model: int, init=None, rng=None, dtype=np.float32):
        super().__init__()
        _positive("LearnedPositionalEncoding", max_len=max_len, d_model=d_model)
        self.d_model, self.max_len = int(d_model), int(max_len)
        shape = (self.max_len, self.d_model)
        initializer = functools.partial(init_.normal, std=0.02) if init is None else init_.get_initializer(init)
        self.weight = Parameter(initializer(shape, rng=np.random.default_rng(rng),
                                            dtype=_float_dtype(dtype, "LearnedPositionalEncoding"), fans=init_.compute_fans(shape)))

    def forward(self, x):
        return as_tensor(x) + self.weight[: self._check_length(x)]


# ---- the encoder block ---------------------------------------------------------------------------
class TransformerEncoderBlock(Module):
    """Self-attention and a feed-forward network, each wrapped in a residual connection and layer norm.

        norm_first=True  (pre-norm, the default):   x = x + attn(norm1(x));   x = x + ff(norm2(x))
        norm_first=False (post-norm):               x = norm1(x + attn(x));   x = norm2(x + ff(x))
        ff(x) = linear2(dropout(gelu(linear1(x))))       attn and ff outputs pass dropout1 / dropout2

    Why pre-norm by default: the residual path from input to output then carries no
    normalisation, gradients reach early layers unscaled, and deep stacks train stably at the
    full learning rate without a warm-up schedule (Xiong et al. 2020, "On Layer Normalization in
    the Transformer Architecture"); GPT-2 onwards and ViT use it. The original Transformer and
    BERT are post-norm (torch's ``nn.TransformerEncoderLayer`` default too): pass
    ``norm_first=False`` to reproduce them, and give them a warm-up. A pre-norm stack usually
    ends with one more LayerNorm after its last block.

    Submodule names are torch's (``self_attn``, ``linear1``, ``linear2``, ``norm1``, ``norm2``),
    so a ``nn.TransformerEncoderLayer(d, h, ff, activation="gelu", batch_first=True)``'s state
    dict loads as it is. ``dim_feedforward`` defaults to 4 d_model (BERT's ratio; torch's
    default is 2048).
    """

    def __init__(self, d_model: int, num_heads: int, dim_feedforward: int = None, dropout: float = 0.1,
                 norm_first: bool = True, eps: float = 1e-5, activation: str = "gelu", bias: bool = True, rng=None,
                 dtype=np.float32):
        super().__init__()
        dim_feedforward = 4 * d_model if dim_feedforward is None else dim_feedforward
        _positive("TransformerEncoderBlock", d_model=d_model, num_heads=num_heads, dim_feedforward=dim_feedforward)
        if activation not in ("gelu", "gelu_tanh", "relu"):
            raise ValueError(f"TransformerEncoderBlock: activation must be 'gelu', 'gelu_tanh' or 'relu', got {activation!r}")
        rng = np.random.default_rng(rng)
        self.d_model, self.num_heads, self.dim_feedforward = int(d_model), int(num_heads), int(dim_feedforward)
        self.norm_first, self.activation = bool(norm_first), activation
        self.self_attn = MultiHeadAttention(d_model, num_heads, dropout=dropout, bias=bias, rng=rng, dtype=dtype)
        self.linear1 = Linear(d_model, dim_feedforward, bias=bias, rng=rng, dtype=dtype)
        self.linear2 = Linear(dim_feedforward, d_model, bias=bias, rng=rng, dtype=dtype)
        self.norm1 = LayerNorm(d_model, eps=eps, bias=bias, dtype=dtype)
        self.norm2 = LayerNorm(d_model, eps=eps, bias=bias, dtype=dtype)
        self.dropout = Dropout(dropout, rng=rng)
        self.dropout1 = Dropout(dropout, rng=rng)
        self.dropout2 = Dropout(dropout, rng=rng)

    def _activate(self, x):
        if self.activation == "relu":
            return ops.relu(x)
        return ops.gelu(x, approximate="tanh" if self.activation == "gelu_tanh" else "none")

    def _attention_block(self, x, mask, is_causal):
        return self.dropout1(self.self_attn(x, mask=mask, is_causal=is_causal))

    def _feed_forward_block(self, x):
        return self.dropout2(_rows(self.linear2, self.dropout(self._activate(_rows(self.linear1, x)))))

    def forward(self, x, mask=None, is_causal: bool = False) -> Tensor:
        x = as_tensor(x)
        if x.ndim != 3 or x.shape[2] != self.d_model:
            raise ValueError(f"TransformerEncoderBlock(d_model={self.d_model}): expected input (N, L, {self.d_model}), "
                             f"got {tuple(x.shape)}")
        if self.norm_first:
            x = x + self._attention_block(self.norm1(x), mask, is_causal)
            return x + self._feed_forward_block(self.norm2(x))
        x = self.norm1(x + self._attention_block(x, mask, is_causal))
        return self.norm2(x + self._feed_forward_block(x))

    def extra_repr(self) -> str:
        return (f"d_model={self.d_model}, num_heads={self.num_heads}, dim_feedforward={self.dim_feedforward}, "
                f"norm_first={self.norm_first}, activation={self.activation}")
