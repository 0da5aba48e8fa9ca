"""Which memory slots each hop of a memory network reads, for a few stories, as a PNG.

One panel per story: its sentences top to bottom in the order they were told (the oldest first),
one column per hop, each cell the attention p_i that hop gives the sentence (its number written
in); the title holds the question, the answer and the network's answer. A network that solves a
two- or three-fact task usually shows a chain: the first hop finds the sentence that names the
object or person asked about, the next finds where that one went.
"""
from __future__ import annotations

import os

import numpy as np

from ...data import babi

__all__ = ["save_hop_attention"]


def save_hop_attention(x: np.ndarray, y: np.ndarray, predicted: np.ndarray, attention: np.ndarray, out_dir: str,
                       tag: str = "") -> str:
    """x (N, M + 1, S) or (N, 1, M + 1, S) encoded stories, y / predicted (N,) answer ids, attention (N, hops, M).

    Writes ``hop_attention[_tag].png`` in ``out_dir``; returns its path.
    """
    from ...plots import _require, save_figure

    _require("matplotlib")
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    x = x[:, 0] if x.ndim == 4 else x  # a dataset's channel axis
    n, hops, _ = attention.shape
    lengths = [int((x[i, :-1] != babi.PAD).any(axis=-1).sum()) for i in range(n)]
    heights = [max(2.0, 0.28 * length + 1.2) for length in lengths]
    figure, axes = plt.subplots(n, 1, figsize=(7.5, sum(heights)), gridspec_kw={"height_ratios": heights}, squeeze=False)
    for i, axis in enumerate(axes[:, 0]):
        length = lengths[i]
        slots = [slot for slot in range(x.shape[1] - 1) if (x[i, slot] != babi.PAD).any()]
        order = slots[::-1]                                    # slot 0 is the latest: tell the story in order
        weights = attention[i][:, order].T                     # (sentences, hops)
        axis.imshow(weights, cmap="Blues", vmin=0, vmax=1, aspect="auto")
        axis.set_yticks(range(length))
        axis.set_yticklabels([f"{k + 1}. {babi.decode_sentence(x[i, slot])}" for k, slot in enumerate(order)], fontsize=7)
        axis.set_xticks(range(hops))
        axis.set_xticklabels([f"hop {h + 1}" for h in range(hops)], fontsize=7)
        for row in range(length):
            for hop in range(hops):
                value = weights[row, hop]
                axis.text(hop, row, f"{value:.2f}", ha="center", va="center", fontsize=6,
                          color="white" if value > 0.6 else "black")
        mark = "right" if predicted[i] == y[i] else "wrong"
        axis.set_title(f"{babi.decode_sentence(x[i, -1])}?  answer: {babi.VOCABULARY[int(y[i])]}; "
                       f"network: {babi.VOCABULARY[int(predicted[i])]} ({mark})", fontsize=8)
    return save_figure(figure, os.path.join(out_dir, f"hop_attention_{tag}.png" if tag else "hop_attention.png"), dpi=110)
