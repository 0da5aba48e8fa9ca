"""Fine-tuning: BERT's [CLS] vector -> a class, from pretrained weights or from random ones.

Transfer learning in two steps (Devlin et al. 2019, section 3.2): pretrain once on unlabelled
text (``bert.py``), then train the same encoder with a new output layer on a small labelled task:

    h = encoder([CLS] sentence [SEP])                     (N, L, D)   pretrained, or fresh
    pooled = tanh(W_p h_[CLS] + b_p)                      (N, D)      BERT's pooler (pretrained too)
    logits = W_c dropout(pooled) + b_c                    (N, K)      new, one row per class
    loss = mean -log softmax(logits)[label]

``encoder_init``:
    "pretrained"  encoder, pooler and vocabulary from ``--pretrained`` (a ``scratchgen train bert``
                  checkpoint); only the output layer starts random
    "random"      the same network from random weights; the vocabulary still comes from
                  ``--pretrained`` when one is given (else it is learnt from the training split),
                  so that the two differ in the weights alone

Same labelled data, same steps, same hyperparameters, several seeds: the gap between the two is
what pretraining bought (``scratchgen train bert-classifier --train-size 2000 ...``).

The pretrained checkpoint is read once, in ``prepare`` (the first step of training), never on
``--resume`` or by ``load_model``: a fine-tuned checkpoint carries its own weights and vocabulary.
Its sizes must equal this model's (the defaults are BERT's); a mismatch is one line naming both.

The task shipped with WordNet (``--dataset wordnet-definitions``): an entry, headword and
definition -> the lexicographer file its synset was filed in (45 supersenses: "kid: a young
person of either sex" -> noun.person; "speed: move fast" -> verb.motion). The entry is written as
the first sentence of a pretraining pair is, so that the fine-tuned encoder reads text like the
text it was pretrained on (on bare definitions, which it never saw without a headword before
them, the pretrained start lost to the random one by 2.1 points, 3 seeds).
Metrics: accuracy and cross-entropy on held-out entries, and the majority-class accuracy as the
baseline.
"""
from __future__ import annotations

import os
from typing import Dict, List

import numpy as np

from ... import nn, ops
from ...grad_mode import no_grad
from ...gradcheck import register_case
from ...tensor import Tensor
from ..base import DataInfo, load_model, register_model
from ..image_model import parameter_case
from .bert import BERT, BERT_SIZES, TINY_PIECES, encoder_options
from .text_model import TextTransformer, TokenizedTextModel, check_sizes, texts_of

__all__ = ["BertClassifier", "ENCODER_INITS"]

ENCODER_INITS = ("pretrained", "random")
EVAL_BATCH = 256


class BertClassifier(TokenizedTextModel):
    """A BERT encoder, its pooler and a new linear layer over ``num_classes`` (module docstring)."""

    cli_name = "bert-classifier"

    def __init__(self, num_classes: int, pretrained: str = "", encoder_init: str = "pretrained", vocab_size: int = 4096,
                 max_len: int = 64, hidden: int = 128, layers: int = 2, heads: int = 2, feedforward: int = 512,
                 dropout: float = 0.1, lr: float = 3e-4, warmup: int = 50, rng=None, dtype=np.float32):
        super().__init__(vocab_size, max_len, lr, warmup, dtype)
        check_sizes("BertClassifier", num_classes=num_classes, hidden=hidden, layers=layers, heads=heads,
                    feedforward=feedforward)
        if encoder_init not in ENCODER_INITS:
            raise ValueError(f"bert-classifier: encoder_init must be one of {', '.join(ENCODER_INITS)}, got {encoder_init!r}")
        if encoder_init == "pretrained" and not pretrained:
            raise ValueError("bert-classifier: encoder_init 'pretrained' needs --pretrained CHECKPOINT (a scratchgen train "
                             "bert checkpoint); or --encoder-init random")
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"bert-classifier: dropout must lie in [0, 1), got {dropout!r}")
        rng = np.random.default_rng(rng)
        self.pretrained, self.encoder_init, self.num_classes = str(pretrained), encoder_init, int(num_classes)
        self.encoder = TextTransformer(vocab_size, max_len, hidden, layers, heads, feedforward, dropout=dropout,
                                       segments=True, embedding_norm=True, rng=rng, dtype=dtype)
        self.pooler = nn.Linear(hidden, hidden, rng=rng, dtype=dtype)
        self.classifier_dropout = nn.Dropout(dropout)
        self.classifier = nn.Linear(hidden, num_classes, rng=rng, dtype=dtype)
        self.register_buffer("class_counts", np.zeros(num_classes, np.int64))  # the majority-class baseline
        self.build_optimizer()

    # ---- the two starts -------------------------------------------------------------------------------
    def prepare(self, x, y=None) -> None:
        """Vocabulary (and, for "pretrained", encoder and pooler) from the pretrained BERT; else learnt from x."""
        if not self.pretrained:
            self.learn_vocabulary(texts_of(x, 0))
            return
        bert, _ = load_model(self.pretrained)
        if not isinstance(bert, BERT):
            raise ValueError(f"--pretrained {self.pretrained}: a checkpoint of model {bert.cli_name!r}; "
                             f"fine-tuning needs one of 'bert'")
        theirs = encoder_options(bert.config)
        mine = {"vocab_size": self.vocab_size, "max_len": self.max_len, "hidden": self.encoder.hidden,
                "layers": len(self.encoder.blocks), "heads": self.encoder.blocks[0].num_heads,
                "feedforward": self.encoder.blocks[0].dim_feedforward}
        different = [f"{key} {mine[key]} here, {theirs[key]} there" for key in BERT_SIZES if mine[key] != theirs[key]]
        if different:
            raise ValueError(f"--pretrained {self.pretrained}: its encoder has other sizes ({'; '.join(different)}); "
                             f"give bert-classifier the same --vocab-size/--max-len/--hidden/--layers/--heads/--feedforward")
        self.set_tokenizer(bert.tokenizer)
        if self.encoder_init == "pretrained":
            self.encoder.load_state_dict(bert.encoder.state_dict())
            self.pooler.load_state_dict(bert.pooler.state_dict())

    def finish_epoch(self, x, y) -> None:
        """Count the training labels (the majority-class baseline of ``evaluate``)."""
        self.class_counts[...] = np.bincount(np.asarray(y, np.int64), minlength=self.num_classes)[:self.num_classes]

    # ---- the network ----------------------------------------------------------------------------------
    def forward(self, x) -> Tensor:
        """Class logits (N, K) of text examples x (N, 1, 1, B) (or (N, 1, K, B): the first text of each)."""
        ids, segments, lengths = self.encode_pairs(texts_of(x, 0))
        hidden = self.encoder(ids, segments, lengths)
        return self.classifier(self.classifier_dropout(ops.tanh(self.pooler(hidden[:, 0]))))

    def train_step(self, x, y, rng) -> Dict[str, float]:
        self.use_noise(rng)
        logits = self.forward(x)
        y = np.asarray(y, np.int64)
        loss = ops.softmax_cross_entropy(logits, y, reduction="mean")
        self.optimize(loss)
        return {"loss": float(loss.data), "accuracy": float((logits.data.argmax(-1) == y).mean())}

    def predict(self, x) -> np.ndarray:
        """The most probable class of each example (N,)."""
        return np.concatenate([self.logits(x[s:s + EVAL_BATCH]).argmax(-1) for s in range(0, len(x), EVAL_BATCH)])

    def logits(self, x) -> np.ndarray:
        self.eval()
        with no_grad():
            return self.forward(x).data

    def evaluate(self, x, y, rng=None) -> Dict[str, float]:
        """Accuracy and mean cross-entropy on (x, y); the majority class of the training labels as baseline."""
        y = np.asarray(y, np.int64)
        correct, loss = 0, 0.0
        for start in range(0, len(x), EVAL_BATCH):
            logits = self.logits(x[start:start + EVAL_BATCH])
            labels = y[start:start + EVAL_BATCH]
            correct += int((logits.argmax(-1) == labels).sum())
            loss += float(ops.softmax_cross_entropy(Tensor(logits), labels, reduction="sum").data)
        count = max(len(y), 1)
        return {"accuracy": correct / count, "cross_entropy": loss / count,
                "majority_accuracy": float((y == int(np.argmax(self.class_counts))).mean()) if len(y) else 0.0}

    def save_pictures(self, out_dir, data, rng, tag: str = "") -> List[str]:
        """attention_<tag>.png: every head of every layer on a held-out sentence."""
        from .text_pictures import save_attention_maps

        if self._tokenizer is None or data.test.num_examples == 0:
            return []
        suffix = f"_{tag}" if tag else ""
        return [save_attention_maps(self, os.path.join(out_dir, f"attention{suffix}.png"), texts_of(data.test.x[:1], 0)[0])]


# ---- CLI registration -------------------------------------------------------------------------------------
@register_model("bert-classifier", family="attention",
                description="BERT fine-tuned to classify sentences ([CLS] -> class), from --pretrained or random weights",
                defaults={**BERT_SIZES, "pretrained": "", "encoder_init": "pretrained", "dropout": 0.1, "lr": 3e-4,
                          "warmup": 50, "dataset": "wordnet-definitions", "epochs": 5, "batch_size": 32})
def build_bert_classifier(config: Dict, data_info: DataInfo, rng) -> BertClassifier:
    return BertClassifier(int(data_info.num_classes), pretrained=config["pretrained"], encoder_init=config["encoder_init"],
                          **encoder_options(config), dropout=float(config["dropout"]), lr=float(config["lr"]),
                          warmup=int(config["warmup"]), rng=rng)


# ---- gradcheck: the classification loss of a tiny float64 classifier ------------------------------------------
def _classifier_case(rng):
    from ...data.text import encode_texts
    from ...data.tokenizer import WordPieceTokenizer

    model = BertClassifier(3, encoder_init="random", vocab_size=10, max_len=7, hidden=4, layers=1, heads=2,
                           feedforward=6, dropout=0.0, rng=rng, dtype=np.float64)
    model.set_tokenizer(WordPieceTokenizer(TINY_PIECES))
    x = encode_texts(["the b", "a b ab", "ba the"], 16).reshape(3, 1, 1, 16)
    y = np.array([0, 2, 1])
    return parameter_case(model, lambda: ops.softmax_cross_entropy(model.forward(x), y, reduction="mean"))


register_case("bert_classifier_loss")(_classifier_case)
