"""Checkpoints: one ``.npz`` (weights, optimiser state) with the metadata as a JSON string inside.

Layout of ``checkpoint.npz`` (loaded with ``allow_pickle=False``, so loading never unpickles):

    model/<name>              every parameter and buffer of the model (its ``state_dict``)
    optimizer/<opt>/<key>     every optimiser's arrays (Adam's moments, step counts, ...)
    extra/<key>               the training loop's own arrays (the per-step loss history)
    __meta__                  a JSON object: format version, model name, config, data facts,
                              training position (epoch, batch, step), the noise generator's state

A small ``config.json`` beside it says, for people, what was trained and how (no history, no
generator state). RNG states are JSON because NumPy's PCG64 state holds 128-bit integers that
no ``.npz`` dtype can carry.

A checkpoint is untrusted input: ``read_checkpoint`` checks the archive's array headers (shape,
dtype, size) before reading any array, validates every key of ``__meta__`` (type and range),
refuses NaN/Inf weights, and restores only the bit generator this project writes. Every refusal
is a ``CheckpointError`` naming the file and the key at fault.

Saving is atomic: the arrays go to a temporary file with a name unique to this process, which
is then renamed over ``checkpoint.npz``; a save killed halfway leaves the previous checkpoint
whole (and the next run in that directory removes the stray temporary file).
"""
from __future__ import annotations

import json
import math
import os
import uuid
import zipfile
from typing import Dict, Optional, Tuple

import numpy as np

from .device import to_numpy

FORMAT_VERSION = 2
MAX_ARRAY_BYTES = 8 * 2**30  # no checkpoint of this project comes near; a header claiming more is hostile
MAX_COMPRESSION_RATIO = 1000  # a compressed member may inflate at most this much (zip bombs)
BIT_GENERATORS = ("PCG64",)  # the only generator state this project writes, so the only one restored
SMALL_SIZE = 4096  # config integers up to this need no array of that size in the file (see check_sizes)
_TEMPORARY_MARK = ".partial-"

__all__ = ["CheckpointError", "save_checkpoint", "read_checkpoint", "load_into", "array_headers",
           "rng_state", "restore_rng", "temporary_name", "remove_stale_temporaries", "FORMAT_VERSION"]


class CheckpointError(ValueError):
    """A checkpoint file that cannot be used: corrupt, hostile, another model, other shapes."""


# ---- writing ------------------------------------------------------------------------------------
def temporary_name(path: str) -> str:
    """A temporary file name beside ``path``, unique to this process and call."""
    return f"{path}{_TEMPORARY_MARK}{os.getpid()}-{uuid.uuid4().hex[:8]}"


def remove_stale_temporaries(directory: str) -> None:
    """Delete temporary files that killed saves left in ``directory`` (call only while holding its lock)."""
    for name in os.listdir(directory):
        if _TEMPORARY_MARK in name:
            try:
                os.remove(os.path.join(directory, name))
            except OSError:
                pass


def save_checkpoint(path: str, model, meta: Dict, extra_arrays: Optional[Dict[str, np.ndarray]] = None) -> str:
    """Write ``model`` (a scratchgen model), ``meta`` and ``extra_arrays`` to ``path`` atomically."""
    arrays = {f"model/{k}": to_numpy(v) for k, v in model.state_dict().items()}
    arrays.update({f"optimizer/{k}": to_numpy(v) for k, v in model.optimizer_state().items()})
    arrays.update({f"extra/{k}": np.asarray(v) for k, v in (extra_arrays or {}).items()})
    meta = {"format_version": FORMAT_VERSION, "model": model.cli_name, "config": model.config, **meta}
    arrays["__meta__"] = np.array(json.dumps(meta, default=_json_default))
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    temporary = temporary_name(path)
    try:
        with open(temporary, "wb") as handle:
            np.savez(handle, **arrays)
        os.replace(temporary, path)  # atomic: an interrupted save never leaves a half-written checkpoint
    finally:
        if os.path.exists(temporary):
            os.remove(temporary)
    readable = {k: meta[k] for k in ("model", "config", "dataset", "data_source", "backend", "train_size", "seed",
                                     "data_info", "options", "epoch", "step") if k in meta}
    config_path = os.path.join(directory, "config.json")
    temporary = temporary_name(config_path)
    try:
        with open(temporary, "w") as handle:
            json.dump(readable, handle, indent=2, default=_json_default)
        os.replace(temporary, config_path)
    finally:
        if os.path.exists(temporary):
            os.remove(temporary)
    return path


# ---- reading --------------------------------------------------------------------------------------
def array_headers(path: str) -> Dict[str, Tuple[Tuple[int, ...], np.dtype]]:
    """``{key: (shape, dtype)}`` of every array in an ``.npz``, read from the headers alone.

    Refuses (CheckpointError) object dtypes, sizes over ``MAX_ARRAY_BYTES`` in all, and members
    whose declared size is larger than the archive could inflate to, before any data is read.
    """
    if not os.path.isfile(path):
        raise CheckpointError(f"{path}: no such checkpoint file")
    try:
        archive = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError, ValueError) as error:
        raise CheckpointError(f"{path}: not a readable scratchgen checkpoint ({type(error).__name__}: {error})") from None
    headers, total = {}, 0
    with archive:
        for info in archive.infolist():
            if not info.filename.endswith(".npy"):
                raise CheckpointError(f"{path}: unexpected member {info.filename!r}; not a scratchgen checkpoint")
            key = info.filename[:-4]
            try:
                with archive.open(info) as member:
                    version = np.lib.format.read_magic(member)
                    if version == (1, 0):
                        shape, fortran, dtype = np.lib.format.read_array_header_1_0(member)
                    elif version == (2, 0):
                        shape, fortran, dtype = np.lib.format.read_array_header_2_0(member)
                    else:
                        raise ValueError(f"unsupported .npy version {version}")
            except Exception as error:  # zipfile.BadZipFile, zlib.error, ValueError: a broken member
                raise CheckpointError(f"{path}: entry {key!r} is not a readable array "
                                      f"({type(error).__name__}: {error})") from None
            if dtype.hasobject or dtype.kind not in "biufcU?":
                raise CheckpointError(f"{path}: entry {key!r} has dtype {dtype}; checkpoints hold numbers only")
            nbytes = math.prod(int(d) for d in shape) * dtype.itemsize  # Python ints: no overflow
            inflatable = info.file_size if info.compress_type == zipfile.ZIP_STORED else info.compress_size * MAX_COMPRESSION_RATIO
            if nbytes > inflatable:
                raise CheckpointError(f"{path}: entry {key!r} claims shape {tuple(shape)} ({nbytes:,} bytes), "
                                      f"more than the archive holds")
            total += nbytes
            if total > MAX_ARRAY_BYTES:
                raise CheckpointError(f"{path}: the arrays add up to more than {MAX_ARRAY_BYTES:,} bytes; refused")
            headers[key] = (tuple(int(d) for d in shape), dtype)
    return headers


def read_checkpoint(path: str) -> Tuple[Dict, Dict[str, np.ndarray], Dict[str, np.ndarray], Dict[str, np.ndarray]]:
    """``(meta, model_state, optimizer_state, extra)`` from a checkpoint file, every part checked."""
    headers = array_headers(path)
    if "__meta__" not in headers:
        raise CheckpointError(f"{path}: no __meta__ entry; not a scratchgen checkpoint")
    shape, dtype = headers["__meta__"]
    if shape != () or dtype.kind != "U":
        raise CheckpointError(f"{path}: __meta__ must be one JSON string, got shape {shape} dtype {dtype}")
    try:
        with np.load(path, allow_pickle=False) as archive:
            contents = {key: archive[key] for key in archive.files}
    except Exception as error:  # zipfile.BadZipFile, ValueError (pickled content), OSError ...
        raise CheckpointError(f"{path}: not a readable scratchgen checkpoint ({type(error).__name__}: {error})") from None
    try:
        meta = json.loads(str(contents.pop("__meta__")))
    except json.JSONDecodeError as error:
        raise CheckpointError(f"{path}: __meta__ is not valid JSON ({error})") from None
    validate_meta(meta, path)
    sections = {"model/": {}, "optimizer/": {}, "extra/": {}}
    for key, value in contents.items():
        prefix = next((p for p in sections if key.startswith(p)), None)
        if prefix is None:
            raise CheckpointError(f"{path}: unexpected entry {key!r}; not a scratchgen checkpoint")
        if value.dtype.kind in "fc" and not bool(np.isfinite(value).all()):
            bad = int(value.size - np.isfinite(value).sum())
            raise CheckpointError(f"{path}: {key} holds {bad} NaN/Inf value(s); the checkpoint is corrupt "
                                  f"(it was not written by a healthy run)")
        sections[prefix][key[len(prefix):]] = value
    return meta, sections["model/"], sections["optimizer/"], sections["extra/"]


def _is_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def validate_meta(meta, path: str) -> None:
    """Check the types and ranges of ``__meta__`` (a JSON object written by ``save_checkpoint``)."""
    if not isinstance(meta, dict):
        raise CheckpointError(f"{path}: __meta__ must be a JSON object, got {type(meta).__name__}")

    def need(key, check, what):
        if key not in meta:
            raise CheckpointError(f"{path}: __meta__ has no {key!r}")
        if not check(meta[key]):
            raise CheckpointError(f"{path}: __meta__ key {key!r} must be {what}, got {meta[key]!r:.80}")

    need("format_version", lambda v: v == FORMAT_VERSION, f"{FORMAT_VERSION} (this scratchgen's checkpoint format)")
    need("model", lambda v: isinstance(v, str) and 0 < len(v) <= 100, "a model name")
    need("config", lambda v: isinstance(v, dict), "a JSON object")
    for key in ("epoch", "batch_in_epoch", "step"):
        if key in meta:
            need(key, lambda v: _is_int(v) and 0 <= v < 2**53, "a non-negative integer")
    if "noise_rng" in meta:
        need("noise_rng", lambda v: isinstance(v, dict) and v.get("bit_generator") in BIT_GENERATORS,
             f"a generator state of one of {BIT_GENERATORS}")
    if "data_info" in meta:
        need("data_info", lambda v: isinstance(v, dict) and isinstance(v.get("image_shape"), list)
             and len(v["image_shape"]) == 3 and all(_is_int(d) and d > 0 for d in v["image_shape"])
             and _is_int(v.get("num_classes")) and v["num_classes"] > 0,
             "an object with image_shape (3 positive integers) and num_classes (a positive integer)")
    for key in ("history",):
        if key in meta:
            need(key, lambda v: isinstance(v, list) and all(isinstance(r, dict) for r in v), "a list of objects")
    if "epoch_sums" in meta:
        need("epoch_sums", lambda v: isinstance(v, dict) and all(
            isinstance(s, list) and len(s) == 2 and all(isinstance(x, (int, float)) and not isinstance(x, bool) for x in s)
            for s in v.values()), "an object of [sum, count] pairs")


def check_sizes(path: str, config: Dict, data_info: Dict, headers: Dict, exempt=()) -> None:
    """Refuse a config whose sizes could not have produced the arrays in the file, before building.

    Every integer in the config (and in the data facts) must be at most the largest dimension of
    any array stored in the file, or at most ``SMALL_SIZE`` (counts such as ``k`` or ``levels``
    that allocate nothing). A hostile ``hidden: 1e9`` or ``image_shape: [1, 1e5, 1e5]`` is then
    refused before a model is built, instead of trying to allocate terabytes.
    """
    largest = max([d for shape, _ in headers.values() for d in shape] + [0])
    limit = max(largest, SMALL_SIZE)

    def walk(key, value):
        if isinstance(value, bool) or value is None:
            return
        if isinstance(value, (int, float)) and not (isinstance(value, float) and not math.isfinite(value)):
            if isinstance(value, float) and not value.is_integer():
                return  # rates, weights: not sizes
            if abs(value) > limit:
                raise CheckpointError(f"{path}: {key} = {value!r} is larger than any array in the file "
                                      f"(largest dimension {largest}); the checkpoint's config was altered")
        elif isinstance(value, float):
            raise CheckpointError(f"{path}: {key} = {value!r} is not a finite number")
        elif isinstance(value, (list, tuple)):
            for item in value:
                walk(key, item)

    for key, value in config.items():
        if key not in exempt:
            walk(f"config key {key!r}", value)
    for key, value in (data_info or {}).items():
        walk(f"data_info key {key!r}", value)



def load_into(model, path: str, with_optimizer: bool = True) -> Tuple[Dict, Dict[str, np.ndarray]]:
    """Load a checkpoint into an already built ``model``; refuses other models and shapes.

    Returns ``(meta, extra)``: the metadata and the training loop's own arrays.
    """
    meta, model_state, optimizer_state, extra = read_checkpoint(path)
    if meta["model"] != model.cli_name:
        raise CheckpointError(f"{path}: checkpoint is of model {meta['model']!r}, cannot load into {model.cli_name!r}")
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
        try:
            model.load_optimizer_state(optimizer_state)
        except (KeyError, ValueError) as error:
            raise CheckpointError(f"{path}: optimiser state: {error}") from None
    return meta, extra


def rng_state(rng: np.random.Generator) -> Dict:
    return rng.bit_generator.state


def restore_rng(state: Dict, path: str = "checkpoint") -> np.random.Generator:
    """A Generator in ``state``; only bit generators in ``BIT_GENERATORS`` are accepted (never a name
    looked up blindly in ``np.random``, which would call whatever function the file names)."""
    name = state.get("bit_generator") if isinstance(state, dict) else None
    if name not in BIT_GENERATORS:
        raise CheckpointError(f"{path}: generator {name!r} is not one this project writes ({', '.join(BIT_GENERATORS)})")
    bit_generator = np.random.PCG64()
    try:
        bit_generator.state = state
    except (TypeError, ValueError, KeyError) as error:
        raise CheckpointError(f"{path}: the generator state is malformed ({error})") from None
    return np.random.Generator(bit_generator)


def _json_default(value):
    if isinstance(value, (np.integer,)):
        return int(value)
    if isinstance(value, (np.floating,)):
        return float(value)
    if isinstance(value, np.ndarray):
        return value.tolist()
    raise TypeError(f"checkpoint metadata: cannot store {type(value).__name__} as JSON")
