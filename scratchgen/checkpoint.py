"""Checkpoints: one ``.npz`` (weights, optimiser state) with the metadata as a JSON string inside.

Layout of ``checkpoint.npz`` (loaded with ``allow_pickle=False``, so loading never unpickles):

    model/<name>              every parameter and buffer of the model (its ``state_dict``)
    optimizer/<opt>/<key>     every optimiser's arrays (Adam's moments, step counts, ...)
    __meta__                  a JSON string: format version, model name, config, dataset,
                              training position (epoch, step, batch), RNG states, metric history

A ``config.json`` beside it repeats the metadata for people to read. RNG states are JSON
because NumPy's PCG64 state holds 128-bit integers that no ``.npz`` dtype can carry.

A checkpoint from another model, or whose arrays have other shapes, is refused with a message
naming the model, the key and both shapes.
"""
from __future__ import annotations

import json
import os
from typing import Dict, Tuple

import numpy as np

from .device import to_numpy

FORMAT_VERSION = 1


class CheckpointError(ValueError):
    """A checkpoint file that cannot be used: corrupt, another model, other shapes."""


def save_checkpoint(path: str, model, meta: Dict) -> str:
    """Write ``model`` (a GenerativeModel) and ``meta`` to ``path`` atomically; returns ``path``."""
    arrays = {f"model/{k}": to_numpy(v) for k, v in model.state_dict().items()}
    arrays.update({f"optimizer/{k}": to_numpy(v) for k, v in model.optimizer_state().items()})
    meta = {"format_version": FORMAT_VERSION, "model": model.cli_name, "config": model.config, **meta}
    arrays["__meta__"] = np.array(json.dumps(meta, default=_json_default))
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    temporary = path + ".partial.npz"
    np.savez(temporary, **arrays)
    os.replace(temporary, path)  # atomic: an interrupted save never leaves a half-written checkpoint
    with open(os.path.join(os.path.dirname(os.path.abspath(path)), "config.json"), "w") as handle:
        json.dump(meta, handle, indent=2, default=_json_default)
    return path


def read_checkpoint(path: str) -> Tuple[Dict, Dict[str, np.ndarray], Dict[str, np.ndarray]]:
    """Return ``(meta, model_state, optimizer_state)`` from a checkpoint file."""
    if not os.path.exists(path):
        raise CheckpointError(f"{path}: no such checkpoint file")
    try:
        with np.load(path, allow_pickle=False) as archive:
            contents = {key: archive[key] for key in archive.files}
    except Exception as error:  # zipfile.BadZipFile, ValueError (pickled content), OSError ...
        raise CheckpointError(f"{path}: not a readable scratchgen checkpoint ({type(error).__name__}: {error})") from None
    if "__meta__" not in contents:
        raise CheckpointError(f"{path}: no __meta__ entry; not a scratchgen checkpoint")
    meta = json.loads(str(contents.pop("__meta__")))
    if meta.get("format_version") != FORMAT_VERSION:
        raise CheckpointError(f"{path}: checkpoint format {meta.get('format_version')}, this scratchgen reads {FORMAT_VERSION}")
    model_state = {k[len("model/"):]: v for k, v in contents.items() if k.startswith("model/")}
    optimizer_state = {k[len("optimizer/"):]: v for k, v in contents.items() if k.startswith("optimizer/")}
    return meta, model_state, optimizer_state


def load_into(model, path: str, with_optimizer: bool = True) -> Dict:
    """Load a checkpoint into an already built ``model``; refuses other models and shapes."""
    meta, model_state, optimizer_state = read_checkpoint(path)
    if meta.get("model") != model.cli_name:
        raise CheckpointError(f"{path}: checkpoint is of model {meta.get('model')!r}, cannot load into {model.cli_name!r}")
    own = model.state_dict()
    for key, value in model_state.items():
        if key in own and tuple(own[key].shape) != tuple(value.shape):
            raise CheckpointError(
                f"{path}: {key} has shape {tuple(value.shape)} in the checkpoint but {tuple(own[key].shape)} in model "
                f"{model.cli_name!r} (built with another config?)"
            )
    try:
        model.load_state_dict(model_state)
    except (KeyError, ValueError) as error:
        raise CheckpointError(f"{path}: {error}") from None
    if with_optimizer and optimizer_state:
        model.load_optimizer_state(optimizer_state)
    return meta


def rng_state(rng: np.random.Generator) -> Dict:
    return rng.bit_generator.state


def restore_rng(state: Dict) -> np.random.Generator:
    bit_generator = getattr(np.random, state["bit_generator"])()
    bit_generator.state = state
    return np.random.Generator(bit_generator)


def _json_default(value):
    if isinstance(value, (np.integer,)):
        return int(value)
    if isinstance(value, (np.floating,)):
        return float(value)
    if isinstance(value, np.ndarray):
        return value.tolist()
    raise TypeError(f"checkpoint metadata: cannot store {type(value).__name__} as JSON")
