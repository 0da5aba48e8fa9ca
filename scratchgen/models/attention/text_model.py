"""What the text models share: the transformer stack, text in and out, one optimiser step, ``fit``.

``TextTransformer``: token ids -> contextual vectors, for BERT (bidirectional, two segments) and
for the language model (causal, one segment):

    x_0 = tok[ids] + pos[0 .. L) (+ seg[segments])                     (N, L, D)
    x_0 = LayerNorm(x_0)                                               (BERT only: embedding_norm)
    x_l = Block_l(x_{l-1}, mask)         l = 1 .. layers               pre-norm encoder blocks:
          x = x + Attention(LN(x));  x = x + FF(LN(x))                 nn.TransformerEncoderBlock,
          FF(x) = W_2 gelu(W_1 x + b_1) + b_2                          GELU in its tanh form
    out = LayerNorm(x_layers)                                          (N, L, D)

mask: the padding mask (N, 1, 1, L), True at the real tokens of each example, for BERT; the
causal mask (query i sees keys 0..i) for the language model. Token, position and segment
tables start N(0, 0.02^2), as BERT's do: unit-variance embeddings fed into tied output weights
would start with logits of standard deviation sqrt(D), and a loss far above log V.

Why pre-norm, when BERT is post-norm: without a learning-rate warm-up of thousands of steps,
post-norm stacks diverge or stall early (Xiong et al. 2020); pre-norm trains at full rate from the
first steps, which is what a short run on one CPU core needs. A short linear warm-up
(``warmup`` steps) is kept anyway: Adam's first steps, before its second-moment estimates
settle, are the large ones.

``TextModel``: a ``GenerativeModel`` whose data are texts (uint8 bytes, ``scratchgen.data.text``)
and whose ``sample`` returns strings (``sample_kind = "text"``: ``scratchgen sample`` prints them).
It holds the one optimiser step (``optimize``: warm-up, global gradient-norm clipping at 1, Adam),
sends every dropout draw to the loop's generator (``use_noise``), and gives ``fit`` for text.

``TokenizedTextModel``: a ``TextModel`` reading WordPiece tokens, with its vocabulary a registered
uint8 buffer (so the checkpoint carries it as a plain array, and a corrupt one is refused on
loading with the row at fault), and ``encode_pairs``: texts -> [CLS] a [SEP] (b [SEP]) ids.
"""
from __future__ import annotations

import functools
import math
from typing import List, Optional, Sequence

import numpy as np

from ... import nn, ops
from ...data.text import decode_texts
from ...data.tokenizer import CLS, PAD, PIECE_BYTES, SEP, WordPieceTokenizer
from ...nn.init import normal
from ...optim import Adam, clip_grad_norm
from ...tensor import Tensor
from ...training import Trainer, TrainOptions
from ..base import GenerativeModel

__all__ = ["TextTransformer", "TextModel", "TokenizedTextModel", "texts_of", "check_sizes"]

EMBEDDING_STD = 0.02
# GELU's tanh form, as in BERT's and GPT-2's own code: here a third of the exact (erfc) form's cost,
# which was a third of a whole BERT step.
ACTIVATION = "gelu_tanh"
MAX_GRAD_NORM = 1.0


def check_sizes(owner: str, **sizes) -> None:
    """Every size a positive integer, or a one-line ValueError naming the option and value."""
    for name, value in sizes.items():
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
            raise ValueError(f"{owner}: {name} must be a positive integer, got {value!r}")


def texts_of(x, slot: int = 0) -> List[str]:
    """Strings of text examples x (N, 1, K, B) uint8: text ``slot`` of every example."""
    x = np.asarray(x)
    if x.dtype != np.uint8 or x.ndim != 4 or not 0 <= slot < x.shape[2]:
        raise ValueError(f"text models read uint8 text bytes of shape (N, 1, texts, bytes) with at least {slot + 1} "
                         f"text(s) per example, got dtype {x.dtype} shape {x.shape} (is --dataset a text dataset?)")
    return decode_texts(x[:, 0, slot])


class TextTransformer(nn.Module):
    """ids (N, L) int -> (N, L, D) vectors; see the module docstring."""

    def __init__(self, vocab_size: int, max_len: int, hidden: int, layers: int, heads: int, feedforward: int,
                 dropout: float = 0.0, segments: bool = False, embedding_norm: bool = False, rng=None,
                 dtype=np.float32):
        super().__init__()
        check_sizes("TextTransformer", vocab_size=vocab_size, max_len=max_len, hidden=hidden, layers=layers,
                    heads=heads, feedforward=feedforward)
        if hidden % heads:
            raise ValueError(f"TextTransformer: hidden {hidden} is not divisible by heads {heads}")
        rng = np.random.default_rng(rng)
        small = functools.partial(normal, std=EMBEDDING_STD)
        self.vocab_size, self.max_len, self.hidden = int(vocab_size), int(max_len), int(hidden)
        self.token_embedding = nn.Embedding(vocab_size, hidden, init=small, rng=rng, dtype=dtype)
        self.position_embedding = nn.LearnedPositionalEncoding(max_len, hidden, init=small, rng=rng, dtype=dtype)
        self.segment_embedding = nn.Embedding(2, hidden, init=small, rng=rng, dtype=dtype) if segments else None
        self.embedding_norm = nn.LayerNorm(hidden, dtype=dtype) if embedding_norm else None
        self.embedding_dropout = nn.Dropout(dropout)
        self.blocks = nn.Sequential(*[nn.TransformerEncoderBlock(hidden, heads, feedforward, dropout=dropout,
                                                                 activation=ACTIVATION, rng=rng, dtype=dtype)
                                      for _ in range(layers)])
        self.final_norm = nn.LayerNorm(hidden, dtype=dtype)

    def embed(self, ids, segments=None) -> Tensor:
        """x_0 of the module docstring: (N, L, D). Raises on a length beyond ``max_len`` or an id outside the vocabulary."""
        x = self.position_embedding(self.token_embedding(ids))
        if self.segment_embedding is not None:
            x = x + self.segment_embedding(np.zeros_like(ids) if segments is None else segments)
        if self.embedding_norm is not None:
            x = self.embedding_norm(x)
        return self.embedding_dropout(x)

    def forward(self, ids, segments=None, lengths=None, causal: bool = False) -> Tensor:
        """ids, segments (N, L); lengths (N,) (None: no padding); causal: each position sees only those before it."""
        ids = np.asarray(ids)
        x = self.embed(ids, segments)
        mask = None if lengths is None else ops.padding_mask(np.asarray(lengths, np.int64), ids.shape[1])
        for block in self.blocks:
            x = block(x, mask=mask, is_causal=causal)
        return self.final_norm(x)


class TextModel(GenerativeModel):
    """Base of the text models: see the module docstring."""

    sample_kind = "text"  # ``sample`` returns strings; the CLI prints them instead of drawing a grid

    def __init__(self, lr: float, warmup: int, dtype=np.float32):
        super().__init__()
        self.dtype = np.dtype(dtype)
        if self.dtype.kind != "f":
            raise TypeError(f"{type(self).__name__}: dtype must be floating, got {self.dtype}")
        if not (isinstance(lr, (int, float)) and math.isfinite(lr) and lr > 0):
            raise ValueError(f"{type(self).__name__}: lr must be a positive number, got {lr!r}")
        if isinstance(warmup, bool) or not isinstance(warmup, (int, np.integer)) or warmup < 0:
            raise ValueError(f"{type(self).__name__}: warmup must be an integer >= 0, got {warmup!r}")
        self.base_lr, self.warmup = float(lr), int(warmup)

    def sample(self, n: int, rng: np.random.Generator, y=None, prompt: str = "", temperature: float = 1.0) -> List[str]:
        """``n`` generated texts; a model that only reads text (BERT) does not generate."""
        raise NotImplementedError(f"{type(self).__name__} does not generate samples (it reads text; try "
                                  f"scratchgen fill-mask, or sample a charlm checkpoint)")

    def build_optimizer(self) -> None:
        self.optimizers = {"model": Adam(self.parameters(), lr=self.base_lr)}

    def use_noise(self, rng: np.random.Generator) -> None:
        """Every dropout mask of the next forward pass is drawn from ``rng`` (the loop's generator),
        so the same seed gives the same run and ``--resume`` continues it exactly."""
        for module in self.modules():
            if isinstance(module, (nn.Dropout, nn.MultiHeadAttention)):
                module.rng = rng

    def learning_rate(self, step: int) -> float:
        """lr min(1, step / warmup) at optimiser step ``step`` (1, 2, ...)."""
        return self.base_lr * min(1.0, step / self.warmup) if self.warmup else self.base_lr

    def optimize(self, loss: Tensor) -> None:
        """zero_grad, backward, clip the global gradient norm at 1, one Adam step at the warm-up rate."""
        optimizer = self.optimizers["model"]
        optimizer.zero_grad()
        loss.backward()
        clip_grad_norm(self, MAX_GRAD_NORM)
        optimizer.lr = self.learning_rate(max(optimizer.steps, default=0) + 1)
        optimizer.step()

    def fit(self, data, y=None, epochs: int = 1, batch_size: int = 64, rng=None, verbose: bool = False,
            validation=None, shuffle: bool = True, out_dir: Optional[str] = None,
            max_batches_per_epoch: Optional[int] = None, **unused):
        """Train on a text ``DatasetSplits`` (``scratchgen.data.load_text_dataset``) with the one loop; returns self.

        The validation split is evaluated every epoch when it is not empty; ``self.history`` holds the records.
        """
        from ..base import _seed_from

        if not hasattr(data, "train") or np.asarray(data.train.x).dtype != np.uint8:
            raise TypeError(f"{type(self).__name__}.fit: expects text splits from scratchgen.data.load_text_dataset, "
                            f"got {type(data).__name__}")
        if unused:
            raise TypeError(f"{type(self).__name__}.fit: unexpected options {sorted(unused)}")
        options = TrainOptions(epochs=epochs, batch_size=batch_size, seed=_seed_from(rng), out_dir=out_dir,
                               progress=verbose, pictures=out_dir is not None, verbose=verbose, shuffle=shuffle,
                               evaluate=data.validation.num_examples > 0 or data.test.num_examples > 0,
                               max_batches_per_epoch=max_batches_per_epoch)
        self.history = Trainer(self, data, options).fit()
        return self


class TokenizedTextModel(TextModel):
    """A text model reading WordPiece tokens; its vocabulary is the uint8 buffer ``vocabulary`` (V, PIECE_BYTES)."""

    def __init__(self, vocab_size: int, max_len: int, lr: float, warmup: int, dtype=np.float32):
        super().__init__(lr, warmup, dtype)
        check_sizes(type(self).__name__, vocab_size=vocab_size, max_len=max_len)
        if max_len < 3:
            raise ValueError(f"{type(self).__name__}: max_len must be at least 3 ([CLS] a [SEP]), got {max_len}")
        self.vocab_size, self.max_len = int(vocab_size), int(max_len)
        self.register_buffer("vocabulary", np.zeros((self.vocab_size, PIECE_BYTES), np.uint8))
        self._tokenizer: Optional[WordPieceTokenizer] = None

    # ---- the vocabulary --------------------------------------------------------------------------
    @property
    def tokenizer(self) -> WordPieceTokenizer:
        if self._tokenizer is None:
            raise RuntimeError(f"{type(self).__name__}: no vocabulary yet; train the model (its first step learns one "
                               f"from the training text) or load a checkpoint")
        return self._tokenizer

    def set_tokenizer(self, tokenizer: WordPieceTokenizer) -> None:
        """Use ``tokenizer`` and store its vocabulary in the buffer (it must fit in vocab_size rows)."""
        self.vocabulary[...] = tokenizer.to_array(self.vocab_size)
        self._tokenizer = tokenizer

    def learn_vocabulary(self, texts: Sequence[str]) -> None:
        """Byte-pair merges on the training text up to vocab_size pieces (``WordPieceTokenizer.train``)."""
        self.set_tokenizer(WordPieceTokenizer.train(texts, self.vocab_size))

    def load_state_dict(self, state, strict: bool = True):
        """Load the arrays, then rebuild the tokenizer from the vocabulary buffer (a corrupt one: ValueError)."""
        result = super().load_state_dict(state, strict)
        self._tokenizer = WordPieceTokenizer.from_array(self.vocabulary)
        return result

    # ---- texts -> ids --------------------------------------------------------------------------------
    def encode_pairs(self, firsts: Sequence[str], seconds: Optional[Sequence[str]] = None):
        """``[CLS] a [SEP]`` or ``[CLS] a [SEP] b [SEP]`` for each example, padded with [PAD].

        Returns ids (N, L) int64, segments (N, L) int64 (0 for [CLS] a [SEP], 1 for b [SEP]) and
        lengths (N,) int64, with L the longest example. A pair longer than ``max_len`` is cut from
        the end of its longer sentence, one token at a time (BERT's rule: the shorter sentence loses
        least). Empty texts give ``[CLS] [SEP]``.
        """
        tokenizer = self.tokenizer
        rows = []
        for index, first in enumerate(firsts):
            a = tokenizer.encode(first)
            b = None if seconds is None else tokenizer.encode(seconds[index])
            budget = self.max_len - (2 if b is None else 3)
            if b is None:
                a = a[:budget]
            else:
                while len(a) + len(b) > budget:
                    (a if len(a) >= len(b) else b).pop()
            ids = [CLS] + a + [SEP] + ([] if b is None else b + [SEP])
            segments = [0] * (len(a) + 2) + ([] if b is None else [1] * (len(b) + 1))
            rows.append((ids, segments))
        length = max(len(ids) for ids, _ in rows)
        ids = np.full((len(rows), length), PAD, np.int64)
        segments = np.zeros((len(rows), length), np.int64)
        lengths = np.zeros(len(rows), np.int64)
        for row, (row_ids, row_segments) in enumerate(rows):
            ids[row, :len(row_ids)] = row_ids
            segments[row, :len(row_segments)] = row_segments
            lengths[row] = len(row_ids)
        return ids, segments, lengths
