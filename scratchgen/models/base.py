"""What every model offers the training loop, checkpoints, plots and benchmarks.

A model family (autoencoders, VAEs, GANs, RBMs, ...) implements ``GenerativeModel`` and registers
a builder under its CLI name::

    @register_model("vae", family="vae", description="VAE, MLP encoder/decoder, Bernoulli decoder",
                    defaults={"hidden": 400, "latent": 20, "lr": 1e-3})
    def build_vae(config, data_info, rng):
        return VAE(...)

The one training loop (``scratchgen/training.py``) then does, for every model alike, whether it
was started by ``scratchgen train vae`` or by ``model.fit(x)``::

    model.prepare(x_train, y_train)                # data-dependent initialisation (RBM biases, a frozen classifier, ...)
    model.plan_training(epochs, steps_per_epoch)   # how long the run is (learning-rate schedules)
    for epoch ...:
        for x, y in batches:                       # x: (N, C, H, W) float32 in [0, 1], y: (N,) int64
            losses = model.train_step(x, y, rng)   # forward, backward, optimiser step(s); floats out
        model.finish_epoch(x_train, y_train)       # e.g. an autoencoder refits its code distribution
        metrics = model.evaluate(x_val, y_val, rng)
        model.save_pictures(out_dir, data, rng, tag=f"epoch{epoch}")

Contract:
* ``config`` is a JSON-serialisable dict (the builder's defaults updated by the user's options);
  it is stored in checkpoints so a model can be rebuilt exactly (``load_model``).
* ``train_step`` owns its optimisers (``self.optimizers``: a dict name -> Optimizer, so a GAN has
  "generator" and "discriminator") and returns plain floats; the loop checks them for NaN/Inf.
* All randomness comes from the ``rng`` argument (a ``numpy.random.Generator``) or explicit noise
  arguments, never from global state: the same seed gives the same run.
* Everything the model needs to train, sample or evaluate after a restart is in its
  ``state_dict`` (parameters and registered buffers) or ``optimizer_state``: plain arrays, so
  checkpoints never need pickle, and a resumed run continues exactly.
"""
from __future__ import annotations

import dataclasses
from typing import Callable, Dict, List, Optional, Tuple

import numpy as np

from .. import checkpoint as ckpt
from ..data.splits import DatasetSplits, Split
from ..nn import Module
from ..training import Trainer, TrainOptions

__all__ = ["DataInfo", "Model", "GenerativeModel", "ModelSpec", "MODEL_REGISTRY", "register_model", "build_model",
           "load_model", "TRAINING_KEYS"]

# Options the training loop reads; a model's registered defaults may set their default values.
TRAINING_KEYS = ("epochs", "batch_size", "lr", "binarize")
# Of those, the ones only the loop uses: they go to ModelSpec.training, not into the model's config
# (with "dataset": the data a model trains on unless told otherwise, e.g. text for BERT, babi-1 for memnet).
LOOP_KEYS = ("epochs", "batch_size", "binarize", "dataset")


@dataclasses.dataclass
class DataInfo:
    """What a builder needs to know about the data: image shape (C, H, W) and class count."""

    image_shape: Tuple[int, int, int]
    num_classes: int

    @property
    def num_features(self) -> int:
        c, h, w = self.image_shape
        return c * h * w


class Model(Module):
    """A model the training loop can train: the contract above, and ``fit`` on arrays."""

    cli_name: str = "model"

    def __init__(self) -> None:
        super().__init__()
        self.config: Dict = {}
        self.optimizers: Dict = {}

    def prepare(self, x: np.ndarray, y: Optional[np.ndarray] = None) -> None:
        """Initialise from the training data before the first step (not on resume). Default: nothing.

        x: (N, C, H, W) in [0, 1], as the model will see it on average (probabilities when the
        loop binarises each batch afresh); y: (N,) its labels (zeros when ``fit`` got none). What
        ``prepare`` sets must be saved in the state dict: a resumed run does not call it again.
        """

    def plan_training(self, epochs: int, steps_per_epoch: int) -> None:
        """Told by the loop before the first step of every run, fresh or resumed: the run's length in
        epochs and steps per epoch, all a learning-rate schedule needs. Default: nothing.

        The step a schedule is at must come from saved state (an optimiser's step count), so that a
        resumed run takes the same rates as an uninterrupted one.
        """

    def train_step(self, x: np.ndarray, y: np.ndarray, rng: np.random.Generator) -> Dict[str, float]:
        """One optimisation step on a batch; returns the named losses as floats."""
        raise NotImplementedError

    def finish_epoch(self, x: np.ndarray, y: np.ndarray) -> None:
        """After every epoch's last step, with the whole training split: refresh whatever ``sample``
        or ``evaluate`` needs besides the weights (an autoencoder's code distribution). Default: nothing."""

    def evaluate(self, x: np.ndarray, y: np.ndarray, rng: np.random.Generator) -> Dict[str, float]:
        """Metrics on held-out data (e.g. test -ELBO, reconstruction error)."""
        return {}

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

    def fit(self, x, y=None, epochs: int = 10, batch_size: int = 64, rng=None, verbose: bool = False,
            validation=None, binarize: str = "none", shuffle: bool = True, out_dir: Optional[str] = None,
            max_batches_per_epoch: Optional[int] = None):
        """Train on arrays with the same loop as ``scratchgen train``; returns self.

        x: (N, C, H, W) images in [0, 1] (or (N, D) vectors; they are trained as (N, 1, 1, D)
        images); y: (N,) int labels or None. ``rng``: an int seed or a Generator (None: seed 0,
        so runs repeat). ``validation``: held-out x (or an (x, y) pair), evaluated every epoch
        and recorded in ``self.history`` when given. ``verbose``: a progress bar and one line
        per epoch. ``out_dir``: also write checkpoints, metrics and pictures there, like the CLI.
        """
        data = _array_splits(x, y, validation)
        options = TrainOptions(epochs=epochs, batch_size=batch_size, seed=_seed_from(rng), binarize=binarize,
                               out_dir=out_dir, progress=verbose, pictures=out_dir is not None,
                               evaluate=validation is not None, verbose=verbose, shuffle=shuffle,
                               max_batches_per_epoch=max_batches_per_epoch)
        self.history = Trainer(self, data, options).fit()
        return self


class GenerativeModel(Model):
    """Base class of every generative model the CLI can train. Subclasses override what applies."""

    def sample(self, n: int, rng: np.random.Generator, y: Optional[np.ndarray] = None) -> np.ndarray:
        """``n`` generated images (n, C, H, W) in [0, 1]."""
        raise NotImplementedError(f"{type(self).__name__} does not generate samples")

    def reconstruct(self, x: np.ndarray) -> np.ndarray:
        """Reconstructions (N, C, H, W) in [0, 1] of images x (N, C, H, W)."""
        raise NotImplementedError(f"{type(self).__name__} does not reconstruct")


def _seed_from(rng) -> int:
    if rng is None:
        return 0
    if isinstance(rng, (int, np.integer)) and not isinstance(rng, bool):
        return int(rng)
    if isinstance(rng, np.random.Generator):
        return int(rng.integers(2**63))
    raise TypeError(f"fit: rng must be an int seed, a numpy Generator or None, got {type(rng).__name__}")


def _as_images(x, where: str) -> np.ndarray:
    """Arrays -> (N, C, H, W) host float arrays (vectors become (N, 1, 1, D))."""
    x = np.asarray(x.get() if hasattr(x, "get") else x)
    if x.ndim == 2:
        x = x.reshape(len(x), 1, 1, x.shape[1])
    if x.ndim != 4:
        raise ValueError(f"{where}: x must be (N, D) vectors or (N, C, H, W) images, got shape {x.shape}")
    if x.dtype.kind != "f":
        raise TypeError(f"{where}: x must be floating point, got dtype {x.dtype} "
                        f"(convert integer pixels with x.astype(np.float32) / 255)")
    if x.size and not bool(np.isfinite(x).all()):
        raise ValueError(f"{where}: x holds NaN or Inf values")
    return x


def _array_splits(x, y, validation) -> DatasetSplits:
    """A DatasetSplits around arrays, for ``fit``: no test split; the validation split if given."""
    x = _as_images(x, "fit")
    y = np.zeros(len(x), np.int64) if y is None else np.asarray(y, dtype=np.int64)
    if len(y) != len(x):
        raise ValueError(f"fit: x has {len(x)} examples but y has {len(y)}")
    if validation is None:
        held_out = Split(x[:0], y[:0])
    else:
        vx, vy = validation if isinstance(validation, tuple) else (validation, None)
        vx = _as_images(vx, "fit (validation)")
        held_out = Split(vx, np.zeros(len(vx), np.int64) if vy is None else np.asarray(vy, dtype=np.int64))
    num_classes = int(max(y.max(initial=0), held_out.y.max(initial=0))) + 1
    return DatasetSplits("arrays", Split(x, y), held_out, Split(x[:0], y[:0]), tuple(x.shape[1:]), num_classes,
                         tuple(str(k) for k in range(num_classes)), "arrays passed to fit()")


@dataclasses.dataclass
class ModelSpec:
    name: str
    family: str
    description: str
    defaults: Dict  # the model's options (its config), lr included: the model builds its optimisers
    build: Callable  # build(config: dict, data_info: DataInfo, rng) -> GenerativeModel
    training: Dict = dataclasses.field(default_factory=dict)  # the loop's defaults: epochs, batch_size, binarize


MODEL_REGISTRY: Dict[str, ModelSpec] = {}


def register_model(name: str, family: str, description: str, defaults: Optional[Dict] = None):
    """Decorator registering ``build(config, data_info, rng)`` under CLI name ``name``.

    ``defaults`` may include the loop's settings a model trains best with (``epochs``, ``batch_size``,
    ``binarize``, ``dataset``): they become ``ModelSpec.training`` (what ``scratchgen train`` uses unless told
    otherwise), not part of the model's config, which nothing in the model would read.
    """

    def decorate(build: Callable) -> Callable:
        options = dict(defaults or {})
        training = {key: options.pop(key) for key in LOOP_KEYS if key in options}
        MODEL_REGISTRY[name] = ModelSpec(name, family, description, options, build, training)
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


def _check_config_types(path: str, config: Dict, defaults: Dict) -> None:
    """Every config value must have the type of the model's registered default (a file may lie)."""
    def fits(value, default) -> bool:
        if isinstance(default, bool) or isinstance(value, bool):
            return isinstance(value, bool) and isinstance(default, bool)
        if isinstance(default, int):
            return isinstance(value, int)
        if isinstance(default, float) or default is None:
            return value is None if default is None and value is None else isinstance(value, (int, float))
        if isinstance(default, (list, tuple)):
            return isinstance(value, list) and all(fits(v, default[0]) for v in value) if default else isinstance(value, list)
        return isinstance(value, type(default))

    for key, value in config.items():
        if not fits(value, defaults[key]):
            raise ckpt.CheckpointError(f"{path}: config key {key!r} must be a {type(defaults[key]).__name__} like its "
                                       f"default {defaults[key]!r}, got {value!r:.60}")


def load_model(path: str, with_optimizer: bool = False):
    """Rebuild the model saved in checkpoint ``path`` and load its weights; returns ``(model, meta)``.

    The checkpoint is untrusted: its metadata is validated and its config checked against the
    shapes of the arrays it stores (``checkpoint.check_sizes``) *before* anything is built.
    """
    headers = ckpt.array_headers(path)
    meta, _, _, _ = ckpt.read_checkpoint(path)
    spec = MODEL_REGISTRY.get(meta["model"])
    if spec is None:
        raise ckpt.CheckpointError(f"{path}: model {meta['model']!r} is not known to this scratchgen; "
                                   f"known: {', '.join(sorted(MODEL_REGISTRY))}")
    info = meta.get("data_info") or {"image_shape": [1, 8, 8], "num_classes": 10}
    config = {k: v for k, v in meta["config"].items() if k in spec.defaults}
    _check_config_types(path, config, spec.defaults)
    ckpt.check_sizes(path, config, info, headers, exempt=TRAINING_KEYS)
    try:
        model = build_model(meta["model"], config, DataInfo(tuple(info["image_shape"]), int(info["num_classes"])),
                            np.random.default_rng(0))
    except (ValueError, TypeError, KeyError) as error:
        message = error.args[0] if isinstance(error, KeyError) and error.args else error
        raise ckpt.CheckpointError(f"{path}: its config does not build a {meta['model']!r} model ({message})") from None
    ckpt.load_into(model, path, with_optimizer=with_optimizer)
    model.eval()
    return model, meta
