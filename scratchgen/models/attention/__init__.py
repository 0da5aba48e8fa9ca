"""Attention: transformers that read text (BERT) and write it (a causal language model).

The lectures end here. Attention lets every position of a sequence read every other position,
weighted by how well its query matches their keys; positional encodings give the order back that
attention alone ignores; an encoder block is attention, add & normalise, feed-forward, add &
normalise (``scratchgen/nn/attention.py``, ops in ``scratchgen/ops/attention.py``). Stacked, the
blocks make two kinds of models, both trained on WordNet's glosses (``scratchgen/data/text.py``):

* BERT reads in both directions. Pretrained without labels, by guessing masked words and whether
  a second sentence follows the first, it is then fine-tuned on a small labelled task: transfer
  learning in two steps, measured against the same network trained from random weights.
* A decoder-only (causal) transformer reads left to right and predicts the next character: a
  generative model of text, p(x) = prod_t p(x_t | x_<t), that can be sampled.

In reading order:
    ../../data/tokenizer.py  WordPiece tokens; a vocabulary learnt by byte-pair merges
    text_model.py            the transformer stack shared by both (token + position (+ segment)
                             embeddings, pre-norm blocks), text in and out, the optimiser step
    bert.py                  BERT pretraining: 80/10/10 masking, next-sentence pairs, the two heads
    fine_tuning.py           [CLS] -> class: a pretrained (or freshly initialised) BERT fine-tuned
    language_model.py        the causal byte-level language model: bits per character, sampling
                             with a key/value cache
    text_pictures.py         attention maps (heads x positions) and a masked-word demo

CLI: ``scratchgen train bert``, ``scratchgen train bert-classifier --pretrained runs/bert/checkpoint.npz``,
``scratchgen train charlm``, ``scratchgen sample runs/charlm/checkpoint.npz``,
``scratchgen fill-mask runs/bert/checkpoint.npz "a [MASK] of the genus canis"``.
"""
from .bert import BERT
from .fine_tuning import BertClassifier
from .language_model import ByteLanguageModel

__all__ = ["BERT", "BertClassifier", "ByteLanguageModel"]  # importing them registers the models
