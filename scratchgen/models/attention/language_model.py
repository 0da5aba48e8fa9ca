"""A decoder-only (causal) transformer over bytes: a generative model of text.

    p(x_1 .. x_T) = prod_t p(x_t | x_1 .. x_{t-1})

Training reads windows of W = 129 consecutive bytes of WordNet's entries ("dog: a member of the
genus canis ...", one per line, ``--dataset wordnet-stream``) and predicts each byte from the
ones before it, all positions at once, the causal mask keeping position t from seeing t+1 ...:

    h = TextTransformer(bytes[:, :-1], causal=True)             (N, W-1, D)
    logits = h E^T + c                                          (N, W-1, 256), E the byte table (tied)
    loss = mean_t -log softmax(logits_t)[bytes_{t+1}]            nats per byte
    bits per character = loss / ln 2                           (ASCII text: one byte is one character)

Why characters (bytes), not subwords. The number wanted is the text's probability, so the model
must be able to write every text exactly: bytes spell anything (capitals, punctuation, spacing,
words never seen), where BERT's uncased WordPiece vocabulary lower-cases, normalises spaces and
maps unspellable words to [UNK], which would leave information out of the count. Bits per
character are then comparable with any compressor run on the same bytes (the report compares
xz). The price is length: a WordNet entry is 90 characters but 20 subword tokens, so attention
sees less text per position; with a 128-byte context most entries (and the end of the one
before) fit whole. The softmax over 256 bytes is cheap next to one over 4,096 pieces.

Sizes (defaults): D = 128, 3 layers, 4 heads of 32, feed-forward 512, context 128: 0.6M
parameters, about a second per step of 32 windows on one CPU core.

Generation (``sample``): start after a newline (the start of an entry), optionally with a prompt,
then draw each byte from softmax(logits / temperature). Without a cache, step t would rerun the
whole prefix (t positions through every layer: O(T^2) work for T bytes); with a key/value cache
each step runs one position through every layer, reusing the keys and values of the past
positions, which a causal model never changes (``KeyValueCache``; ``tests/test_language_model.py``
checks that it gives the full forward pass's logits). When the window is full the cache is rebuilt
from its last half.

Metrics (``evaluate``): held-out bits per character (on the first ``eval_windows`` = 2,048 windows of
the split, 262,144 predictions: enough for three decimals, a quarter of the cost of all 8,064),
and the baseline of the unigram byte distribution of the training text (no context at all).
"""
from __future__ import annotations

import math
import os
import unicodedata
from typing import Dict, List, Optional, Tuple

import numpy as np

from ... import nn, ops
from ...grad_mode import no_grad
from ...gradcheck import register_case
from ...tensor import Tensor
from ..base import DataInfo, register_model
from ..image_model import parameter_case
from .text_model import ACTIVATION, TextModel, TextTransformer, check_sizes

__all__ = ["ByteLanguageModel", "KeyValueCache", "NEWLINE"]

NEWLINE = 10  # the byte that ends an entry: where generation starts and stops
PRINTABLE_STANDIN = "\ufffd"  # shown for a generated control character: a sample never moves a terminal's cursor
BYTES = 256
EVAL_BATCH = 64


class KeyValueCache:
    """Per layer, the keys and values (N, heads, t, head_dim) of the t positions generated so far."""

    def __init__(self, layers: int):
        self.keys: List[Optional[np.ndarray]] = [None] * layers
        self.values: List[Optional[np.ndarray]] = [None] * layers
        self.length = 0

    def append(self, layer: int, key: np.ndarray, value: np.ndarray):
        """Add one position's key and value (N, heads, 1, head_dim); returns all of them so far."""
        if self.keys[layer] is None:
            self.keys[layer], self.values[layer] = key, value
        else:
            self.keys[layer] = np.concatenate([self.keys[layer], key], axis=2)
            self.values[layer] = np.concatenate([self.values[layer], value], axis=2)
        return self.keys[layer], self.values[layer]


class ByteLanguageModel(TextModel):
    """The causal byte-level transformer language model of the module docstring (``scratchgen train charlm``)."""

    cli_name = "charlm"

    def __init__(self, context: int = 128, hidden: int = 128, layers: int = 3, heads: int = 4, feedforward: int = 512,
                 dropout: float = 0.0, lr: float = 1e-3, warmup: int = 100, sample_length: int = 300,
                 eval_windows: int = 2048, rng=None, dtype=np.float32):
        super().__init__(lr, warmup, dtype)
        check_sizes("charlm", context=context, hidden=hidden, layers=layers, heads=heads, feedforward=feedforward,
                    sample_length=sample_length, eval_windows=eval_windows)
        if context < 2:
            raise ValueError(f"charlm: context must be at least 2 bytes, got {context}")
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"charlm: dropout must lie in [0, 1), got {dropout!r}")
        rng = np.random.default_rng(rng)
        self.context, self.sample_length, self.eval_windows = int(context), int(sample_length), int(eval_windows)
        self.encoder = TextTransformer(BYTES, context, hidden, layers, heads, feedforward, dropout=dropout, rng=rng,
                                       dtype=dtype)
        self.output_bias = nn.Parameter(np.zeros(BYTES, dtype=dtype))
        self.register_buffer("byte_counts", np.zeros(BYTES, np.int64))  # the unigram baseline of ``evaluate``
        self.build_optimizer()

    # ---- the network -------------------------------------------------------------------------------------
    def windows(self, x) -> np.ndarray:
        """Text windows (N, 1, 1, W) uint8 -> byte ids (M, min(W, context + 1)) int64.

        A window longer than the model reads (W > context + 1) is cut into floor((W - 1) / context)
        windows of context + 1 bytes that overlap by one byte, as the dataset cuts the text itself
        (the last (W - 1) mod context bytes are left out); so ``--context 32`` trains on the 129-byte
        windows of ``wordnet-stream`` without a dataset option of its own.
        """
        x = np.asarray(x)
        if x.dtype != np.uint8 or x.ndim != 4 or x.shape[1:3] != (1, 1) or x.shape[3] < 2:
            raise ValueError(f"charlm: reads byte windows of shape (N, 1, 1, W >= 2) uint8 (--dataset wordnet-stream "
                             f"or stream:FILE), got dtype {x.dtype} shape {x.shape}")
        ids = x[:, 0, 0].astype(np.int64)
        if ids.shape[1] > self.context + 1:
            pieces = (ids.shape[1] - 1) // self.context
            starts = np.arange(pieces) * self.context
            ids = ids[:, starts[:, None] + np.arange(self.context + 1)].reshape(-1, self.context + 1)
        return ids

    def output(self, hidden: Tensor) -> Tensor:
        """(N, L, D) -> byte logits (N, L, 256), the output layer tied to the byte table."""
        n, length, d = hidden.shape
        logits = ops.matmul(hidden.reshape((n * length, d)), self.encoder.token_embedding.weight.T) + self.output_bias
        return logits.reshape((n, length, BYTES))

    def logits(self, ids) -> Tensor:
        """Byte logits (N, L, 256) for ids (N, L): position t predicts byte t + 1."""
        return self.output(self.encoder(ids, causal=True))

    def loss(self, ids) -> Tensor:
        """Mean negative log-likelihood, nats per predicted byte, of windows ids (N, W)."""
        return ops.softmax_cross_entropy(self.logits(ids[:, :-1]), ids[:, 1:], reduction="mean")

    # ---- the loop's contract -----------------------------------------------------------------------------
    def prepare(self, x, y=None) -> None:
        """Count the training bytes (the unigram baseline)."""
        self.byte_counts[...] = np.bincount(self.windows(x)[:, 1:].ravel(), minlength=BYTES)

    def train_step(self, x, y, rng) -> Dict[str, float]:
        self.use_noise(rng)
        loss = self.loss(self.windows(x))
        self.optimize(loss)
        return {"loss": float(loss.data), "bits_per_character": float(loss.data) / math.log(2)}

    def evaluate(self, x, y, rng=None) -> Dict[str, float]:
        """Held-out bits per character on the first ``eval_windows`` windows of x (a split's order is
        random; 2,048 windows are 262,144 predicted bytes), and those of the training text's unigram
        byte distribution on the same bytes."""
        ids = self.windows(x)[:self.eval_windows]
        self.eval()
        nats, count = 0.0, 0
        with no_grad():
            for start in range(0, len(ids), EVAL_BATCH):
                chunk = ids[start:start + EVAL_BATCH]
                nats += float(ops.softmax_cross_entropy(self.logits(chunk[:, :-1]), chunk[:, 1:], reduction="sum").data)
                count += chunk[:, 1:].size
        unigram = (self.byte_counts + 1.0) / (self.byte_counts.sum() + BYTES)  # add-one: unseen bytes stay possible
        unigram_bits = -np.log2(unigram[ids[:, 1:]]).mean() if count else 0.0
        return {"bits_per_character": nats / max(count, 1) / math.log(2), "unigram_bits_per_character": float(unigram_bits)}

    # ---- generation ------------------------------------------------------------------------------------------
    def step(self, byte_ids: np.ndarray, cache: KeyValueCache) -> np.ndarray:
        """Logits (N, 256) of the next byte after feeding one byte per sequence (N,) at position ``cache.length``.

        One position through every pre-norm block, attending to the cached keys and values:
            x = tok[b] + pos[t];  per block: h = LN_1(x), q k v = h W^T + b, cache k v,
            x += W_o attention(q, K_<=t, V_<=t);  x += FF(LN_2(x));  logits = LN(x) E^T + c
        """
        encoder = self.encoder
        position = cache.length
        if position >= self.context:
            raise ValueError(f"charlm: position {position} is beyond the context of {self.context} bytes")
        n = len(byte_ids)
        with no_grad():
            x = encoder.token_embedding(np.asarray(byte_ids, np.int64)[:, None]) + encoder.position_embedding.weight[position:position + 1]
            for layer, block in enumerate(encoder.blocks):
                attention = block.self_attn
                e, heads = attention.embed_dim, attention.num_heads
                h = block.norm1(x).reshape((n, e))
                qkv = ops.linear(h, attention.in_proj_weight, attention.in_proj_bias).data
                q, k, v = (qkv[:, i * e:(i + 1) * e].reshape(n, heads, 1, e // heads) for i in range(3))
                keys, values = cache.append(layer, k, v)
                heads_out = ops.scaled_dot_product_attention(Tensor(q), Tensor(keys), Tensor(values))
                x = x + attention.out_proj(heads_out.reshape((n, e))).reshape((n, 1, e))
                inner = block.linear1(block.norm2(x).reshape((n, e)))
                ff = block.linear2(ops.gelu(inner, approximate="tanh" if ACTIVATION == "gelu_tanh" else "none"))
                x = x + ff.reshape((n, 1, e))
            logits = self.output(encoder.final_norm(x)).data[:, 0]
        cache.length += 1
        return logits

    def _refill(self, history: np.ndarray) -> Tuple[KeyValueCache, np.ndarray]:
        """A fresh cache from the last ``context // 2`` bytes of ``history`` (N, T); returns it and the next logits."""
        cache = KeyValueCache(len(self.encoder.blocks))
        logits = None
        for column in history[:, -max(1, self.context // 2):].T:
            logits = self.step(column, cache)
        return cache, logits

    def generate(self, n: int, rng: np.random.Generator, prompt: str = "", length: Optional[int] = None,
                 temperature: float = 1.0) -> List[str]:
        """``n`` texts: ``prompt`` then bytes drawn from softmax(logits / temperature) until a newline
        (not included) or ``length`` bytes (default ``sample_length``). Bytes that are not UTF-8, and
        control characters (escape sequences, carriage returns, ...), come out as U+FFFD."""
        if not (isinstance(temperature, (int, float)) and math.isfinite(temperature) and temperature > 0):
            raise ValueError(f"charlm: temperature must be a positive number, got {temperature!r}")
        if "\n" in prompt:
            raise ValueError("charlm: the prompt must be one line (a newline ends an entry)")
        length = self.sample_length if length is None else int(length)
        self.eval()
        start = np.frombuffer(b"\n" + prompt.encode("utf-8"), np.uint8).astype(np.int64)
        history = np.tile(start, (n, 1))
        if len(start) <= self.context:
            cache = KeyValueCache(len(self.encoder.blocks))
            for column in history.T:
                logits = self.step(column, cache)
        else:  # a prompt longer than the window: its last half-window is the context
            cache, logits = self._refill(history)
        done = np.zeros(n, bool)
        for _ in range(length):
            scaled = logits.astype(np.float64) / temperature
            probabilities = np.exp(scaled - scaled.max(axis=1, keepdims=True))
            probabilities /= probabilities.sum(axis=1, keepdims=True)
            draws = rng.random(n)
            chosen = np.minimum((probabilities.cumsum(axis=1) < draws[:, None]).sum(axis=1), BYTES - 1)
            chosen[done] = NEWLINE
            history = np.concatenate([history, chosen[:, None]], axis=1)
            done |= chosen == NEWLINE
            if done.all():
                break
            if cache.length >= self.context:
                cache, logits = self._refill(history)
            else:
                logits = self.step(chosen, cache)
        texts = []
        for row in history[:, 1:]:
            text = bytes(row.astype(np.uint8).tolist()).split(b"\n", 1)[0].decode("utf-8", errors="replace")
            texts.append("".join(PRINTABLE_STANDIN if unicodedata.category(c) in ("Cc", "Zl", "Zp") and c != "\t" else c
                                 for c in text))
        return texts

    def sample(self, n: int, rng: np.random.Generator, y=None, prompt: str = "", temperature: float = 1.0) -> List[str]:
        """``n`` generated WordNet-like entries (strings); see ``generate``."""
        return self.generate(n, rng, prompt=prompt, temperature=temperature)

    def save_pictures(self, out_dir, data, rng, tag: str = "") -> List[str]:
        """samples_<tag>.txt (ten generated entries) and attention_<tag>.png (a held-out line, heads x positions)."""
        from ...data.text import decode_texts
        from .text_pictures import attention_weights, plot_attention

        suffix = f"_{tag}" if tag else ""
        os.makedirs(out_dir, exist_ok=True)
        path = os.path.join(out_dir, f"samples{suffix}.txt")
        with open(path, "w", encoding="utf-8") as handle:
            handle.write("\n".join(self.generate(10, rng)) + "\n")
        paths = [path]
        if data.test.num_examples:
            line = decode_texts(data.test.x[0, 0, 0]).split("\n")
            text = max(line, key=len)[:48] or "a"
            ids = np.frombuffer(text.encode("utf-8"), np.uint8).astype(np.int64)
            weights = attention_weights(self.encoder, ids, causal=True)
            labels = [chr(b) if 32 < b < 127 else "\u2423" if b == 32 else "?" for b in ids]
            paths.append(plot_attention(weights, labels, os.path.join(out_dir, f"attention{suffix}.png"),
                                        title=f"charlm attention (causal): {text}"))
        return paths


# ---- CLI registration --------------------------------------------------------------------------------------
@register_model("charlm", family="attention",
                description="causal (decoder-only) transformer language model over bytes: bits per character, text samples",
                defaults={"context": 128, "hidden": 128, "layers": 3, "heads": 4, "feedforward": 512, "dropout": 0.0,
                          "lr": 1e-3, "warmup": 100, "sample_length": 300, "eval_windows": 2048,
                          "dataset": "wordnet-stream", "epochs": 1, "batch_size": 32})
def build_byte_language_model(config: Dict, data_info: DataInfo, rng) -> ByteLanguageModel:
    shape = tuple(data_info.image_shape)
    if len(shape) != 3 or shape[:2] != (1, 1) or shape[2] < 2:
        raise ValueError(f"charlm: needs byte windows (--dataset wordnet-stream or stream:FILE), got examples of "
                         f"shape {shape}")
    return ByteLanguageModel(**{key: config[key] for key in ("context", "hidden", "layers", "heads", "feedforward",
                                                             "sample_length", "eval_windows", "warmup")},
                             dropout=float(config["dropout"]), lr=float(config["lr"]), rng=rng)


# ---- gradcheck: the next-byte loss of a tiny float64 model ------------------------------------------------------
def _language_model_case(rng):
    model = ByteLanguageModel(context=5, hidden=4, layers=1, heads=2, feedforward=4, rng=rng, dtype=np.float64)
    ids = np.frombuffer(b"abcab\nba cab", np.uint8).astype(np.int64).reshape(2, 6)
    return parameter_case(model, lambda: model.loss(ids))


register_case("charlm_loss")(_language_model_case)
