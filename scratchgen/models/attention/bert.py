"""BERT (Devlin et al. 2019): a bidirectional transformer pretrained on masked tokens and next sentences.

Input: two sentences a and b as one sequence, with which sentence each token belongs to and where:

    tokens     [CLS]  the  dog  barked  [SEP]  it  was  late  [SEP]  [PAD] ...
    segments     0     0    0     0       0     1   1    1      1
    positions    0     1    2     3       4     5   6    7      8

    x_0 = LayerNorm(tok[tokens] + pos[positions] + seg[segments]),  then the encoder blocks
    (``text_model.TextTransformer``): h = encoder(x_0) (N, L, D), padding never attended to.

Pretraining: two tasks on pairs of consecutive sentences, with the loop's random generator.

1. Masked language model. In each sequence choose round(15%) of the non-special tokens (at
   least one) uniformly; of the chosen, replace 80% by [MASK], 10% by a random token and leave
   10% unchanged (the model cannot tell which inputs are real, so it must represent every
   token well, not only [MASK]s); predict the original token at the chosen positions only:

       logits_p = LayerNorm(gelu(W h_p + b)) E^T + c          E: the token table (tied), c (V,)
       L_mlm    = mean over chosen p of -log softmax(logits_p)[token_p]

   The chosen positions are gathered into (N, K) (K: the most in any sequence), shorter rows
   padded with a target of ``IGNORE`` that ``softmax_cross_entropy(..., ignore_index=IGNORE)``
   leaves out, as in BERT's own code (masked_lm_positions / weights). The output layer then
   costs K/L = 15% of computing it at every position.
2. Next sentence prediction. With probability 1/2 sentence b is replaced by the b of another
   example of the batch (a batch is a uniform draw from the corpus, so this is a random
   sentence); a classifier on the [CLS] vector decides whether b follows a:

       pooled = tanh(W_p h_[CLS] + b_p);   L_nsp = -log softmax(W_c pooled + b_c)[is_next]

   loss = L_mlm + L_nsp.

Metrics (``evaluate``, on held-out pairs with the same masking drawn from a fixed generator):
masked-token accuracy, its cross-entropy and perplexity exp(L_mlm) (over masked positions; not a
language model's perplexity), next-sentence accuracy; and the baselines: the accuracy and
perplexity of the unigram distribution of the training tokens (always guess the most frequent
token, the best a model blind to context can do), and 0.5 for next sentences.

Sizes (defaults): BERT-Tiny's shape (Turc et al. 2019, "Well-Read Students Learn Better": L=2,
H=128, A=2, feed-forward 4H), the smallest published BERT, with a vocabulary of 4,096 pieces
(BERT's is 30,522; WordNet's glosses have 40,000 distinct words and 4,096 pieces spell them in
about 12 tokens per sentence), 0.97M parameters. Length: the default 12 epochs of WordNet's
36,726 training pairs (6,888 steps of 64 pairs) is what the sanity gate needs. Measured on one
CPU core with ``--backend numba`` (0.24 s a step, 28 minutes in all), next-sentence accuracy on
held-out pairs rose 0.60, 0.65, 0.67, 0.70, 0.72, 0.73, 0.75 over the first seven epochs and
settled at 0.76-0.77 from the ninth (test 0.772 after 12; masked-token accuracy 0.401 against the
unigram baseline's 0.048); after two epochs it was 0.65. The numpy backend is about 3.5x slower
per step (two epochs took 16 minutes there). Tiny next to BERT-Tiny's own million steps, but
enough for both tasks to be learnt.

Shapes: x (N, 1, 2, B) uint8 (sentence a and b); ids, segments (N, L); h (N, L, D);
masked positions (N, K); logits (N, K, V) and (N, 2).
"""
from __future__ import annotations

import math
import os
from typing import Dict, List, NamedTuple, Sequence, Tuple

import numpy as np

from ... import nn, ops
from ...data.tokenizer import MASK, SPECIAL_TOKENS, WordPieceTokenizer
from ...grad_mode import no_grad
from ...gradcheck import register_case
from ...tensor import Tensor
from ..base import DataInfo, register_model
from ..image_model import parameter_case
from .text_model import TextTransformer, TokenizedTextModel, check_sizes, texts_of

__all__ = ["BERT", "BertBatch", "mask_tokens", "next_sentence_pairs", "IGNORE", "MaskedLMHead"]

IGNORE = -100  # the target of a padded masked position (PyTorch's ignore_index default)
EVAL_BATCH = 256


class BertBatch(NamedTuple):
    """One pretraining batch: inputs (N, L) after masking, segments (N, L), lengths (N,), the masked
    positions (N, K) and their original tokens (N, K) (``IGNORE`` where a row has fewer), is_next (N,)."""

    inputs: np.ndarray
    segments: np.ndarray
    lengths: np.ndarray
    positions: np.ndarray
    targets: np.ndarray
    is_next: np.ndarray


def mask_tokens(ids: np.ndarray, rng: np.random.Generator, rate: float, vocab_used: int,
                first_regular: int = len(SPECIAL_TOKENS)):
    """BERT's 80/10/10 rule on ids (N, L): returns ``(inputs, positions, targets)``.

    Candidates are the regular tokens (id >= ``first_regular``; never [CLS], [SEP], [PAD], [UNK]).
    Row n gets k_n = max(1, floor(rate c_n + 1/2)) of its c_n candidates, chosen uniformly; each
    chosen input becomes [MASK] with probability 0.8, a uniform random regular token (ids
    first_regular .. vocab_used - 1) with probability 0.1, or stays. positions, targets: (N, K)
    with K = max k_n; a row's unused slots hold position 0 and target ``IGNORE``.
    The draws are rng.random((N, L)), rng.random((N, K)), rng.integers(.., (N, K)), always in that order.
    """
    ids = np.asarray(ids)
    n, length = ids.shape
    candidates = ids >= first_regular
    counts = candidates.sum(axis=1)
    picks = np.where(counts > 0, np.maximum(1, np.floor(rate * counts + 0.5)), 0).astype(np.int64)
    keys = rng.random((n, length))
    keys[~candidates] = 2.0  # after every candidate (keys of candidates are < 1)
    order = np.argsort(keys, axis=1, kind="stable")
    k = max(int(picks.max(initial=0)), 1)
    valid = np.arange(k)[None, :] < picks[:, None]
    positions = np.where(valid, order[:, :k], 0)
    targets = np.where(valid, np.take_along_axis(ids, positions, axis=1), IGNORE)
    choice = rng.random((n, k))
    random_ids = rng.integers(first_regular, max(vocab_used, first_regular + 1), (n, k))
    rows = np.arange(n)[:, None]
    current = ids[rows, positions]
    replaced = np.where(choice < 0.8, MASK, np.where(choice < 0.9, random_ids, current))
    inputs = ids.copy()
    inputs[rows, positions] = np.where(valid, replaced, current)  # unused slots write position 0 back unchanged
    return inputs, positions, targets


def next_sentence_pairs(seconds: Sequence[str], rng: np.random.Generator) -> Tuple[List[str], np.ndarray]:
    """Half the second sentences replaced by another example's: ``(seconds, is_next)``, is_next (N,) int64.

    Example n keeps its own b with probability 1/2, else takes b of example (n + s) mod N with s
    uniform in 1..N-1 (never itself). A batch of one keeps its pair (there is no other sentence).
    """
    n = len(seconds)
    keep = rng.random(n) < 0.5
    if n < 2:
        return list(seconds), np.ones(n, np.int64)
    partner = (np.arange(n) + rng.integers(1, n, n)) % n
    chosen = [seconds[i] if keep[i] else seconds[partner[i]] for i in range(n)]
    return chosen, keep.astype(np.int64)


class MaskedLMHead(nn.Module):
    """h_p (M, D) -> LayerNorm(gelu(W h_p + b)) E^T + c: logits (M, V) over the vocabulary, E tied to the token table."""

    def __init__(self, hidden: int, vocab_size: int, rng=None, dtype=np.float32):
        super().__init__()
        self.dense = nn.Linear(hidden, hidden, rng=rng, dtype=dtype)
        self.norm = nn.LayerNorm(hidden, dtype=dtype)
        self.bias = nn.Parameter(np.zeros(vocab_size, dtype=dtype))

    def forward(self, h, token_table) -> Tensor:
        return ops.matmul(self.norm(ops.gelu(self.dense(h), approximate="tanh")), token_table.T) + self.bias


class BERT(TokenizedTextModel):
    """BERT for pretraining: the encoder, the masked-token head and the next-sentence head (module docstring)."""

    cli_name = "bert"

    def __init__(self, vocab_size: int = 4096, max_len: int = 64, hidden: int = 128, layers: int = 2, heads: int = 2,
                 feedforward: int = 512, dropout: float = 0.0, mask_rate: float = 0.15, lr: float = 1e-3,
                 warmup: int = 100, rng=None, dtype=np.float32):
        super().__init__(vocab_size, max_len, lr, warmup, dtype)
        if not 0.0 < mask_rate < 1.0:
            raise ValueError(f"BERT: mask_rate must lie in (0, 1), got {mask_rate!r}")
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"BERT: dropout must lie in [0, 1), got {dropout!r}")
        check_sizes("BERT", hidden=hidden, layers=layers, heads=heads, feedforward=feedforward)
        rng = np.random.default_rng(rng)
        self.mask_rate = float(mask_rate)
        self.encoder = TextTransformer(vocab_size, max_len, hidden, layers, heads, feedforward, dropout=dropout,
                                       segments=True, embedding_norm=True, rng=rng, dtype=dtype)
        self.mlm_head = MaskedLMHead(hidden, vocab_size, rng=rng, dtype=dtype)
        self.pooler = nn.Linear(hidden, hidden, rng=rng, dtype=dtype)
        self.nsp_head = nn.Linear(hidden, 2, rng=rng, dtype=dtype)
        # How often each token occurs in the training text: the unigram baseline of ``evaluate``.
        self.register_buffer("token_counts", np.zeros(vocab_size, np.int64))
        self.build_optimizer()
        self.curve_groups = {"curves_losses": ("mlm_loss", "nsp_loss"),
                             "curves_accuracy": ("mlm_accuracy", "nsp_accuracy")}

    # ---- data -> batches ------------------------------------------------------------------------------
    def prepare(self, x, y=None) -> None:
        """Learn the vocabulary from the training pairs and count their tokens (the unigram baseline)."""
        texts = texts_of(x, 0) + texts_of(x, 1)
        self.learn_vocabulary(texts)
        counts = np.bincount([i for text in texts for i in self.tokenizer.encode(text)], minlength=self.vocab_size)
        self.token_counts[...] = counts[:self.vocab_size]

    def make_batch(self, x, rng: np.random.Generator) -> BertBatch:
        """Pairs (N, 1, 2, B) -> next-sentence draws, tokens, masking (all noise from ``rng``)."""
        seconds, is_next = next_sentence_pairs(texts_of(x, 1), rng)
        ids, segments, lengths = self.encode_pairs(texts_of(x, 0), seconds)
        inputs, positions, targets = mask_tokens(ids, rng, self.mask_rate, len(self.tokenizer))
        return BertBatch(inputs, segments, lengths, positions, targets, is_next)

    # ---- the network ---------------------------------------------------------------------------------
    def masked_logits(self, hidden: Tensor, positions: np.ndarray) -> Tensor:
        """Vocabulary logits (N, K, V) at ``positions`` (N, K) of ``hidden`` (N, L, D)."""
        n, k = positions.shape
        picked = hidden[np.arange(n)[:, None], positions].reshape((n * k, self.encoder.hidden))
        return self.mlm_head(picked, self.encoder.token_embedding.weight).reshape((n, k, self.vocab_size))

    def next_sentence_logits(self, hidden: Tensor) -> Tensor:
        """(N, 2) logits of [not next, next] from the [CLS] vectors of ``hidden`` (N, L, D)."""
        return self.nsp_head(ops.tanh(self.pooler(hidden[:, 0])))

    def losses(self, batch: BertBatch):
        """``(loss, mlm_loss, nsp_loss, mlm_logits, nsp_logits)`` of a batch (Tensors)."""
        hidden = self.encoder(batch.inputs, batch.segments, batch.lengths)
        mlm_logits = self.masked_logits(hidden, batch.positions)
        nsp_logits = self.next_sentence_logits(hidden)
        mlm_loss = ops.softmax_cross_entropy(mlm_logits, batch.targets, reduction="mean", ignore_index=IGNORE)
        nsp_loss = ops.softmax_cross_entropy(nsp_logits, batch.is_next, reduction="mean")
        return mlm_loss + nsp_loss, mlm_loss, nsp_loss, mlm_logits, nsp_logits

    # ---- the loop's contract -------------------------------------------------------------------------
    def train_step(self, x, y, rng) -> Dict[str, float]:
        self.use_noise(rng)
        batch = self.make_batch(x, rng)
        loss, mlm_loss, nsp_loss, mlm_logits, nsp_logits = self.losses(batch)
        self.optimize(loss)
        counted = batch.targets != IGNORE
        return {"loss": float(loss.data), "mlm_loss": float(mlm_loss.data), "nsp_loss": float(nsp_loss.data),
                "mlm_accuracy": float((mlm_logits.data.argmax(-1) == batch.targets)[counted].mean()),
                "nsp_accuracy": float((nsp_logits.data.argmax(-1) == batch.is_next).mean())}

    def evaluate(self, x, y, rng) -> Dict[str, float]:
        """Masked-token accuracy and perplexity, next-sentence accuracy, and the unigram baselines."""
        self.eval()
        counts = self.token_counts.astype(np.float64)
        counts[:len(SPECIAL_TOKENS)] = 0
        unigram_guess = int(np.argmax(counts))
        unigram_log_p = np.log((counts + 1) / (counts + 1)[len(SPECIAL_TOKENS):len(self.tokenizer)].sum())
        total = {"masked": 0, "correct": 0, "nll": 0.0, "unigram_correct": 0, "unigram_nll": 0.0, "pairs": 0, "nsp": 0}
        with no_grad():
            for start in range(0, len(x), EVAL_BATCH):
                batch = self.make_batch(x[start:start + EVAL_BATCH], rng)
                _, _, _, mlm_logits, nsp_logits = self.losses(batch)
                counted = batch.targets != IGNORE
                targets = batch.targets[counted]
                total["masked"] += int(counted.sum())
                total["correct"] += int((mlm_logits.data.argmax(-1)[counted] == targets).sum())
                total["nll"] += float(ops.softmax_cross_entropy(mlm_logits, batch.targets, reduction="sum",
                                                                ignore_index=IGNORE).data)
                total["unigram_correct"] += int((targets == unigram_guess).sum())
                total["unigram_nll"] -= float(unigram_log_p[targets].sum())
                total["pairs"] += len(batch.is_next)
                total["nsp"] += int((nsp_logits.data.argmax(-1) == batch.is_next).sum())
        masked = max(total["masked"], 1)
        return {"mlm_accuracy": total["correct"] / masked, "mlm_loss": total["nll"] / masked,
                "mlm_perplexity": math.exp(total["nll"] / masked), "nsp_accuracy": total["nsp"] / max(total["pairs"], 1),
                "unigram_accuracy": total["unigram_correct"] / masked,
                "unigram_perplexity": math.exp(total["unigram_nll"] / masked)}

    # ---- looking inside ------------------------------------------------------------------------------
    def fill_mask(self, text: str, top_k: int = 5) -> List[Tuple[int, List[Tuple[str, float]]]]:
        """The ``top_k`` most probable pieces at every [MASK] of ``text``: ``[(position, [(piece, p), ...]), ...]``.

        ``text`` is one sentence ([CLS] text [SEP], segment 0). Raises ValueError for an empty
        text, a text without [MASK], or one longer than the position table.
        """
        if not isinstance(text, str) or not text.strip():
            raise ValueError("fill-mask: the text is empty; give a sentence with [MASK] in it")
        tokens = self.tokenizer.encode(text)
        if MASK not in tokens:
            raise ValueError(f"fill-mask: the text {text[:60]!r} has no [MASK] token to fill")
        if len(tokens) + 2 > self.max_len:
            raise ValueError(f"fill-mask: the text is {len(tokens)} tokens, [CLS] and [SEP] make {len(tokens) + 2}, "
                             f"more than this model's {self.max_len} positions (max_len)")
        ids, segments, lengths = self.encode_pairs([text])
        self.eval()
        with no_grad():
            hidden = self.encoder(ids, segments, lengths)
            positions = np.flatnonzero(ids[0] == MASK)[None, :]
            logits = self.masked_logits(hidden, positions).data[0].astype(np.float64)
        logits[:, :len(SPECIAL_TOKENS)] = -np.inf  # a filled word is a word
        logits[:, len(self.tokenizer):] = -np.inf  # rows the vocabulary left unused
        probabilities = np.exp(logits - logits.max(axis=1, keepdims=True))
        probabilities /= probabilities.sum(axis=1, keepdims=True)
        results = []
        for row, position in enumerate(positions[0]):
            best = np.argsort(-probabilities[row], kind="stable")[:top_k]
            results.append((int(position), [(self.tokenizer.pieces[i], float(probabilities[row, i])) for i in best]))
        return results

    def save_pictures(self, out_dir, data, rng, tag: str = "") -> List[str]:
        """attention_<tag>.png (every head of every layer on a held-out pair) and fill_mask_<tag>.txt."""
        from .text_pictures import save_attention_maps, write_fill_mask_demo

        if self._tokenizer is None or data.test.num_examples == 0:
            return []
        first, second = texts_of(data.test.x[:1], 0)[0], texts_of(data.test.x[:1], 1)[0]
        suffix = f"_{tag}" if tag else ""
        paths = [save_attention_maps(self, os.path.join(out_dir, f"attention{suffix}.png"), first, second)]
        paths.append(write_fill_mask_demo(self, os.path.join(out_dir, f"fill_mask{suffix}.txt"),
                                          texts_of(data.test.x[:8], 0), rng))
        return [path for path in paths if path]


# ---- CLI registration --------------------------------------------------------------------------------
BERT_SIZES = {"vocab_size": 4096, "max_len": 64, "hidden": 128, "layers": 2, "heads": 2, "feedforward": 512}


def encoder_options(config: Dict) -> Dict:
    """The encoder's sizes from a config (BERT's and the fine-tuned classifier's share them)."""
    return {key: int(config[key]) for key in BERT_SIZES}


@register_model("bert", family="attention",
                description="BERT pretraining (masked tokens + next sentence) on sentence pairs: text",
                defaults={**BERT_SIZES, "dropout": 0.0, "mask_rate": 0.15, "lr": 1e-3, "warmup": 100,
                          "dataset": "wordnet-pairs", "epochs": 12, "batch_size": 64})
def build_bert(config: Dict, data_info: DataInfo, rng) -> BERT:
    if tuple(data_info.image_shape)[:2] != (1, 2):
        raise ValueError(f"bert: needs sentence pairs (--dataset wordnet-pairs or pairs:FILE), got examples of "
                         f"shape {tuple(data_info.image_shape)}")
    return BERT(**encoder_options(config), dropout=float(config["dropout"]), mask_rate=float(config["mask_rate"]),
                lr=float(config["lr"]), warmup=int(config["warmup"]), rng=rng)


# ---- gradcheck: the pretraining loss of a tiny float64 BERT, masks and pairs held fixed ------------------
TINY_PIECES = list(SPECIAL_TOKENS) + ["a", "b", "##a", "##b", "the"]


def tiny_bert(rng, dtype=np.float64) -> BERT:
    """A BERT small enough to check every parameter by finite differences (316 of them)."""
    model = BERT(vocab_size=10, max_len=9, hidden=4, layers=1, heads=2, feedforward=6, rng=rng, dtype=dtype)
    model.set_tokenizer(WordPieceTokenizer(TINY_PIECES))
    return model


def _bert_case(rng):
    from ...data.text import encode_texts

    model = tiny_bert(rng)
    pairs = encode_texts(["the ab", "a b ba", "b the", "ab the"], 16).reshape(2, 1, 2, 16)
    batch = model.make_batch(pairs, np.random.default_rng(1))
    return parameter_case(model, lambda: model.losses(batch)[0])


register_case("bert_pretraining_loss")(_bert_case)
