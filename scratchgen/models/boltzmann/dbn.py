"""``DBN``: a deep belief net, RBMs stacked and trained greedily, layer by layer.

Hinton, Osindero & Teh (2006). Layer sizes [V, H1, H2, ..., HL]: RBM l models the hidden
activities of RBM l-1. Greedy training (``fit``):

    inputs = x
    for each RBM l:  train it on inputs (CD-k / PCD),  then inputs = p(h_l | inputs)

(the hidden *probabilities* are the next layer's data, as in Hinton's code). The result is a
generative model whose top two layers form an undirected RBM and whose lower layers are
directed (top-down) sigmoid belief nets with the RBMs' weights:

    generation:  Gibbs sampling in the top RBM (n_steps sweeps), then one downward pass
                 h_{l-1} ~ p(h_{l-1} | h_l) through the lower RBMs' visible conditionals;
                 the image is the bottom layer's mean E[v | h_1].

Uses: ``transform(x)`` gives the top-layer features p(h_L | ...) (a feature extractor), and
``dbn_classifier.to_classifier`` turns the stack into an MLP initialised from the RBM weights,
fine-tuned with backprop. ``first_layer="gaussian"`` makes the bottom RBM Gaussian-Bernoulli
for real-valued pixels.

``train_step`` (the CLI's per-batch loop) trains all layers on every batch, each on the current
hidden probabilities of the layer below: the streaming form of greedy training (upper layers
see a moving input early on). ``fit`` is the strict layer-after-layer version.
"""
from __future__ import annotations

import os
from typing import Dict, List, Sequence

import numpy as np

from ..base import GenerativeModel, register_model
from .gaussian_rbm import GaussianBernoulliRBM
from .bernoulli_rbm import BernoulliRBM
from .helpers import random_uniform, weight_tiles

__all__ = ["DBN", "parse_layer_sizes"]


def parse_layer_sizes(sizes) -> List[int]:
    """[784, 500, 500] from a list, a tuple, or a string "784,500,500"."""
    if isinstance(sizes, str):
        sizes = [part for part in sizes.replace(" ", "").split(",") if part]
    try:
        sizes = [int(s) for s in sizes]
    except (TypeError, ValueError):
        raise ValueError(f"DBN: layer sizes must be integers, got {sizes!r}") from None
    if len(sizes) < 2 or min(sizes) < 1:
        raise ValueError(f"DBN: need at least two positive layer sizes (visible, hidden...), got {sizes}")
    return sizes


class DBN(GenerativeModel):
    """A stack of RBMs: ``layers[0]`` sees the data, ``layers[-1]`` is the top (undirected) RBM."""

    def __init__(self, layer_sizes: Sequence[int], *, first_layer: str = "bernoulli", image_shape=None,
                 rng=None, **rbm_options):
        super().__init__()
        sizes = parse_layer_sizes(layer_sizes)
        if first_layer not in ("bernoulli", "gaussian"):
            raise ValueError(f"DBN: first_layer must be 'bernoulli' or 'gaussian', got {first_layer!r}")
        rng = np.random.default_rng(rng)
        self.layer_sizes, self.first_layer = sizes, first_layer
        for index, (n_in, n_out) in enumerate(zip(sizes[:-1], sizes[1:])):
            gaussian = index == 0 and first_layer == "gaussian"
            cls = GaussianBernoulliRBM if gaussian else BernoulliRBM
            shape = image_shape if index == 0 else None
            setattr(self, f"rbm{index}", cls(n_in, n_out, image_shape=shape, rng=rng, **rbm_options))
        self.image_shape = self.layers[0].image_shape
        # every RBM keeps its own optimiser; expose them all for checkpoints
        self.optimizers = {f"rbm{i}": layer.optimizers["rbm"] for i, layer in enumerate(self.layers)}

    @property
    def layers(self) -> List:
        return [getattr(self, f"rbm{i}") for i in range(len(self.layer_sizes) - 1)]

    def extra_repr(self) -> str:
        return f"layer_sizes={self.layer_sizes}, first_layer={self.first_layer!r}"

    # ---- up and down ---------------------------------------------------------------------------
    def propagate_up(self, x, n_layers: int = None):
        """Hidden probabilities after ``n_layers`` RBMs (default all): (N, H_n). x: data (images or (N, V))."""
        n_layers = len(self.layers) if n_layers is None else n_layers
        h = self.layers[0].check_data(x, "propagate_up") if n_layers else x
        for layer in self.layers[:n_layers]:
            h = layer.hidden_probabilities(h)
        return h

    def transform(self, x):
        """Top-layer features p(h_L = 1 | x), (N, H_L)."""
        return self.propagate_up(x)

    def propagate_down(self, h, rng, n_layers: int = None):
        """Top-down pass from the states of layer ``n_layers`` (default: the top RBM's visible layer)
        to the data: sample every intermediate layer, return the bottom *mean* in data units (N, V)."""
        layers = self.layers[: (len(self.layers) - 1 if n_layers is None else n_layers)]
        for depth, layer in enumerate(reversed(layers)):
            mean = layer.visible_means(h)
            is_bottom = depth == len(layers) - 1
            h = mean if is_bottom else (random_uniform(rng, mean.shape, mean) < mean).astype(mean.dtype)
        return self.layers[0].to_data_space(h) if layers else h

    # ---- training ------------------------------------------------------------------------------
    def fit(self, x, epochs=10, batch_size: int = 64, rng=None, verbose: bool = False) -> "DBN":
        """Greedy layer-wise training; ``epochs`` is one number or one per layer. Returns self."""
        rng = np.random.default_rng(0 if rng is None else rng)
        epochs = [epochs] * len(self.layers) if np.ndim(epochs) == 0 else list(epochs)
        if len(epochs) != len(self.layers):
            raise ValueError(f"DBN.fit: got {len(epochs)} epoch counts for {len(self.layers)} layers")
        inputs = x
        for index, (layer, n_epochs) in enumerate(zip(self.layers, epochs)):
            if verbose:
                print(f"DBN: training layer {index} ({layer.n_visible} -> {layer.n_hidden}) for {n_epochs} epochs")
            layer.fit(inputs, epochs=n_epochs, batch_size=batch_size, rng=rng, verbose=verbose)
            inputs = layer.transform(inputs)
        return self

    def train_step(self, x, y, rng) -> Dict[str, float]:
        """One update of every layer on this batch (streaming greedy training); returns each layer's
        reconstruction error."""
        metrics, inputs = {}, x
        for index, layer in enumerate(self.layers):
            step = layer.train_step(inputs, None, rng)
            metrics.update({f"layer{index}_{name}": value for name, value in step.items()})
            inputs = layer.transform(inputs)
        return metrics

    # ---- generation and evaluation -------------------------------------------------------------
    def sample(self, n: int, rng=None, y=None, n_steps: int = 1000, start=None):
        """Images (n, C, H, W): ``n_steps`` Gibbs sweeps in the top RBM (from the up-pass of ``start``
        data, or from random states), then the downward pass."""
        rng = np.random.default_rng(rng)
        top = self.layers[-1]
        if start is None:
            v_top = top.initial_visible(n, rng)
        else:
            probabilities = self.propagate_up(start, len(self.layers) - 1)
            v_top = (random_uniform(rng, probabilities.shape, probabilities) < probabilities).astype(probabilities.dtype)
        _, v_top = top.gibbs(v_top, n_steps, rng)
        return self.propagate_down(v_top, rng).reshape((-1,) + self.image_shape)

    def reconstruct(self, x):
        """Deterministic up-down pass: probabilities up to the top, means down to the data (N, C, H, W)."""
        h = self.propagate_up(x)
        for layer in reversed(self.layers):
            h = layer.visible_means(h)
        return self.layers[0].to_data_space(h).reshape((-1,) + self.image_shape)

    def evaluate(self, x, y=None, rng=None) -> Dict[str, float]:
        """Each layer's evaluation on its own input (prefixed ``layer<i>_``), and the whole stack's
        up-down reconstruction error."""
        metrics, inputs = {}, x
        for index, layer in enumerate(self.layers):
            metrics.update({f"layer{index}_{k}": v for k, v in layer.evaluate(inputs, None, rng).items()})
            inputs = layer.transform(inputs)
        flat = self.layers[0].to_data_space(self.layers[0].check_data(x, "evaluate"))
        error = flat - self.reconstruct(x).reshape(flat.shape)
        metrics["updown_reconstruction_error"] = float((error * error).sum(axis=1).mean())
        return metrics

    def save_pictures(self, out_dir, data, rng, tag: str = "") -> List[str]:
        from ... import plots

        rng = np.random.default_rng(rng)
        os.makedirs(out_dir, exist_ok=True)
        suffix = f"_{tag}" if tag else ""
        path = lambda what: os.path.join(out_dir, f"{what}{suffix}.png")  # noqa: E731
        paths = [plots.save_image_grid(self.sample(64, rng, n_steps=1000), path("dbn_samples")),
                 plots.save_image_grid(weight_tiles(self.layers[0].weight.data, self.image_shape), path("filters"))]
        if data is not None:
            originals = np.asarray(data.test.x[:16]).reshape((-1,) + self.image_shape)
            recon = self.reconstruct(originals)
            recon = recon.get() if hasattr(recon, "get") else recon
            paths.append(plots.save_image_grid(np.concatenate([originals, recon]), path("dbn_reconstructions"), nrow=16))
        return paths


DBN_DEFAULTS = {"hidden": [500, 500], "first_layer": "bernoulli", "k": 1, "persistent": True, "n_chains": 64,
                "lr": 0.01, "momentum": 0.5, "weight_decay": 0.0002, "init_std": 0.01, "binarize": "dynamic"}


@register_model("dbn", family="boltzmann", description="deep belief net: greedily stacked RBMs",
                defaults=DBN_DEFAULTS)
def build_dbn(config, data_info, rng) -> DBN:
    hidden = config["hidden"]
    hidden = hidden.split(",") if isinstance(hidden, str) else list(hidden)
    return DBN([data_info.num_features] + hidden, first_layer=config["first_layer"], image_shape=data_info.image_shape,
               rng=rng, k=config["k"], persistent=config["persistent"], n_chains=config["n_chains"], lr=config["lr"],
               momentum=config["momentum"], weight_decay=config["weight_decay"], init_std=config["init_std"])
