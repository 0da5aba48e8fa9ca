"""What every generative model offers the CLI, checkpoints, plots and benchmarks.

A model family (autoencoders, VAEs, GANs, RBMs, ...) implements ``GenerativeModel`` and registers
a builder under its CLI name::

    @register_model("vae", family="vae", description="VAE, MLP encoder/decoder, Bernoulli decoder",
                    defaults={"hidden": 400, "latent": 20, "lr": 1e-3})
    def build_vae(config, data_info, rng):
        return VAE(...)

The generic training loop (``scratchgen/training.py``) then does, for every model alike::

    model = build_model(name, config, data_info, rng)
    for epoch ...:
        for x, y in batches:                       # x: (N, C, H, W) float32 in [0, 1], y: (N,) int64
            losses = model.train_step(x, y, rng)   # forward, backward, optimiser step(s); floats out
        metrics = model.evaluate(x_val, y_val, rng)
        model.save_pictures(out_dir, data, rng, tag=f"epoch{epoch}")

Contract:
* ``config`` is a JSON-serialisable dict (the builder's defaults updated by the user's options);
  it is stored in checkpoints so a model can be rebuilt exactly.
* ``train_step`` owns its optimisers (``self.optimizers``: a dict name -> Optimizer, so a GAN has
  "generator" and "discriminator"); it returns plain floats and raises on NaN/Inf loss with a
  message naming the loss and the step.
* All randomness comes from the ``rng`` argument (a ``numpy.random.Generator``) or explicit noise
  arguments, never from global state: the same seed gives the same run.
* ``state_dict`` (from ``Module``) holds the parameters and buffers; ``optimizer_state`` the
  optimisers' arrays. Both are plain arrays, so checkpoints never need pickle.
"""
from __future__ import annotations

import dataclasses
from typing import Callable, Dict, List, Optional, Tuple

import numpy as np

from ..nn import Module


@dataclasses.dataclass
class DataInfo:
    """What a builder needs to know about the data: image shape (C, H, W) and class count."""

    image_shape: Tuple[int, int, int]
    num_classes: int

    @property
    def num_features(self) -> int:
        c, h, w = self.image_shape
        return c * h * w


class GenerativeModel(Module):
    """Base class of every model the CLI can train. Subclasses override what applies to them."""

    cli_name: str = "model"

    def __init__(self) -> None:
        super().__init__()
        self.config: Dict = {}
        self.optimizers: Dict = {}

    def train_step(self, x: np.ndarray, y: np.ndarray, rng: np.random.Generator) -> Dict[str, float]:
        """One optimisation step on a batch; returns the named losses as floats."""
        raise NotImplementedError

    def evaluate(self, x: np.ndarray, y: np.ndarray, rng: np.random.Generator) -> Dict[str, float]:
        """Metrics on held-out data (e.g. test -ELBO, reconstruction error)."""
        return {}

    def sample(self, n: int, rng: np.random.Generator, y: Optional[np.ndarray] = None) -> np.ndarray:
        """``n`` generated images (n, C, H, W) in [0, 1]."""
        raise NotImplementedError(f"{type(self).__name__} does not generate samples")

    def reconstruct(self, x: np.ndarray) -> np.ndarray:
        """Reconstructions (N, C, H, W) in [0, 1] of images x (N, C, H, W)."""
        raise NotImplementedError(f"{type(self).__name__} does not reconstruct")

    def save_pictures(self, out_dir, data, rng: np.random.Generator, tag: str = "") -> List[str]:
        """Write the family's PNGs (grids, traversals, ...) into ``out_dir``; return the paths."""
        return []

    def optimizer_state(self) -> Dict[str, np.ndarray]:
        """Every optimiser's state flattened into ``{"<name>/<key>": array}`` for checkpoints."""
        state = {}
        for name, optimizer in self.optimizers.items():
            for key, value in optimizer.state_dict().items():
                state[f"{name}/{key}"] = value
        return state

    def load_optimizer_state(self, state: Dict[str, np.ndarray]) -> None:
        for name, optimizer in self.optimizers.items():
            prefix = f"{name}/"
            optimizer.load_state_dict({k[len(prefix):]: v for k, v in state.items() if k.startswith(prefix)})


@dataclasses.dataclass
class ModelSpec:
    name: str
    family: str
    description: str
    defaults: Dict
    build: Callable  # build(config: dict, data_info: DataInfo, rng) -> GenerativeModel


MODEL_REGISTRY: Dict[str, ModelSpec] = {}


def register_model(name: str, family: str, description: str, defaults: Optional[Dict] = None):
    """Decorator registering ``build(config, data_info, rng)`` under CLI name ``name``."""

    def decorate(build: Callable) -> Callable:
        MODEL_REGISTRY[name] = ModelSpec(name, family, description, dict(defaults or {}), build)
        return build

    return decorate


def build_model(name: str, config: Dict, data_info: DataInfo, rng: np.random.Generator) -> GenerativeModel:
    """Build a registered model; ``config`` overrides its defaults. Unknown names list the valid ones."""
    if name not in MODEL_REGISTRY:
        raise KeyError(f"unknown model {name!r}; valid models: {', '.join(sorted(MODEL_REGISTRY))}")
    spec = MODEL_REGISTRY[name]
    unknown = sorted(set(config) - set(spec.defaults))
    if unknown:
        raise KeyError(f"model {name!r} has no option(s) {unknown}; its options: {', '.join(sorted(spec.defaults))}")
    full = {**spec.defaults, **config}
    model = spec.build(full, data_info, rng)
    model.config = full
    model.cli_name = name
    return model
