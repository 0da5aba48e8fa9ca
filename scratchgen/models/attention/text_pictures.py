"""Looking inside the text transformers: attention maps (heads x positions) and a masked-word demo.

``attention_weights`` recomputes, for one sequence, every head's attention probabilities in every
layer of a pre-norm ``TextTransformer``, from the block's own weights:

    h = LayerNorm_1(x)                                 the block's input as attention sees it
    q_h = h W_q,h^T + b_q,h,   k_h = h W_k,h^T + b_k,h  rows of the packed in_proj_weight (3E, E)
    A_h = softmax(q_h k_h^T / sqrt(E / heads) + mask)   (L, L): row i, how much token i reads token j

(``tests/test_bert.py`` checks that A_h v_h, merged and projected, is exactly the attention
module's output.) ``plot_attention`` draws them as a grid: one row per layer, one column per head.
"""
from __future__ import annotations

import math
import os
from typing import List, Optional, Sequence

import numpy as np

from ...data.tokenizer import MASK, SPECIAL_TOKENS, pre_tokenize
from ...grad_mode import no_grad
from ...plots import _require, save_figure

__all__ = ["attention_weights", "plot_attention", "save_attention_maps", "write_fill_mask_demo"]


def attention_weights(encoder, ids: np.ndarray, segments: Optional[np.ndarray] = None, causal: bool = False) -> np.ndarray:
    """(layers, heads, L, L) attention probabilities of ``encoder`` (a TextTransformer) on ids (L,)."""
    ids = np.asarray(ids)[None, :]
    segments = None if segments is None else np.asarray(segments)[None, :]
    length = ids.shape[1]
    maps = []
    training = encoder.training
    encoder.eval()
    try:
        with no_grad():
            x = encoder.embed(ids, segments)
            for block in encoder.blocks:
                if not block.norm_first:
                    raise ValueError("attention_weights: reads pre-norm blocks (norm_first=True) only")
                attention = block.self_attn
                e, heads = attention.embed_dim, attention.num_heads
                h = block.norm1(x).data[0].astype(np.float64)
                weight = attention.in_proj_weight.data.astype(np.float64)
                bias = (np.zeros(3 * e) if attention.in_proj_bias is None
                        else attention.in_proj_bias.data.astype(np.float64))

                def project(which):
                    rows = slice(which * e, (which + 1) * e)
                    return (h @ weight[rows].T + bias[rows]).reshape(length, heads, e // heads).transpose(1, 0, 2)

                q, k = project(0), project(1)
                scores = q @ k.transpose(0, 2, 1) / math.sqrt(e // heads)
                if causal:
                    scores[:, ~np.tri(length, dtype=bool)] = -np.inf
                scores -= scores.max(axis=-1, keepdims=True)
                probabilities = np.exp(scores)
                probabilities /= probabilities.sum(axis=-1, keepdims=True)
                maps.append(probabilities)
                x = block(x, is_causal=causal)
    finally:
        encoder.train(training)
    return np.stack(maps)


def plot_attention(weights: np.ndarray, labels: Sequence[str], path: str, title: str = "") -> str:
    """A PNG grid of ``weights`` (layers, heads, L, L): one panel per head, token labels on both axes."""
    _require("matplotlib")
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    layers, heads, length, _ = weights.shape
    size = max(3.0, 0.16 * length + 1.0)
    figure, axes = plt.subplots(layers, heads, figsize=(size * heads, size * layers), squeeze=False)
    font = max(4, min(9, int(220 / max(length, 1))))
    for layer in range(layers):
        for head in range(heads):
            axis = axes[layer, head]
            axis.imshow(weights[layer, head], cmap="viridis", vmin=0.0, vmax=1.0)
            axis.set_title(f"layer {layer + 1}, head {head + 1}", fontsize=9)
            axis.set_xticks(range(length))
            axis.set_yticks(range(length))
            axis.set_xticklabels(labels, rotation=90, fontsize=font)
            axis.set_yticklabels(labels, fontsize=font)
            axis.set_xlabel("attended to (key)", fontsize=8)
            axis.set_ylabel("attending (query)", fontsize=8)
    if title:
        figure.suptitle(title, fontsize=10)
    return save_figure(figure, path, dpi=90)


def save_attention_maps(model, path: str, first: str, second: Optional[str] = None) -> str:
    """Attention maps of a tokenized model (BERT, its classifier) on "[CLS] first [SEP] (second [SEP])"."""
    ids, segments, lengths = model.encode_pairs([first], None if second is None else [second])
    ids, segments = ids[0, :lengths[0]], segments[0, :lengths[0]]
    weights = attention_weights(model.encoder, ids, segments)
    labels = [model.tokenizer.pieces[i] for i in ids]
    shown = first if second is None else f"{first} | {second}"
    return plot_attention(weights, labels, path, title=f"{type(model).__name__} attention: {shown[:110]}")


def write_fill_mask_demo(model, path: str, sentences: Sequence[str], rng: np.random.Generator, top_k: int = 5) -> str:
    """For each sentence, one word that is a single vocabulary piece hidden by [MASK], and BERT's guesses."""
    lines: List[str] = []
    for sentence in sentences:
        words = pre_tokenize(sentence)
        single = [i for i, word in enumerate(words) if word.isalpha() and len(model.tokenizer.word_ids(word)) == 1
                  and model.tokenizer.word_ids(word)[0] >= len(SPECIAL_TOKENS)]
        if not single or len(model.tokenizer.encode(sentence)) + 2 > model.max_len:
            continue
        hidden = single[int(rng.integers(len(single)))]
        masked = " ".join(SPECIAL_TOKENS[MASK] if i == hidden else word for i, word in enumerate(words))
        (_, guesses), = model.fill_mask(masked, top_k=top_k)
        lines.append(masked)
        lines.append(f"    truth: {words[hidden]}    guesses: " + ", ".join(f"{piece} {p:.2f}" for piece, p in guesses))
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with open(path, "w", encoding="utf-8") as handle:
        handle.write("\n".join(lines) + "\n")
    return path
