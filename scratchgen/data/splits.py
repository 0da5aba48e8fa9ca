"""Containers for a dataset's splits, and the seeded split that makes them.

Every loader in ``scratchgen.data`` returns a ``DatasetSplits``: three ``Split(x, y)`` pairs with

    x: (N, C, H, W) float32 in [0, 1]        y: (N,) int64 class labels in [0, num_classes)

plus what a training script needs to build a model (``image_shape``, ``num_classes``,
``class_names``) and to report honestly where the data came from (``source``).

``train_val_test_split`` draws one permutation from ``np.random.default_rng(seed)`` and cuts it
into consecutive pieces, so the pieces are disjoint by construction and the same seed always
gives the same pieces. Within a piece the examples keep the order they had in the file.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple, Sequence

import numpy as np

__all__ = ["Split", "DatasetSplits", "train_val_test_split", "split_sizes"]


class Split(NamedTuple):
    """One split: ``x`` (N, C, H, W) float32 in [0, 1] and ``y`` (N,) int64. Unpacks as ``x, y``."""

    x: np.ndarray
    y: np.ndarray

    @property
    def num_examples(self) -> int:
        return int(self.x.shape[0])


@dataclass(frozen=True)
class DatasetSplits:
    """A dataset ready for training: train / validation / test splits and their description.

    ``image_shape`` is (C, H, W); ``class_names[k]`` names label k; ``source`` says where the
    arrays were read from and how they were split (e.g. that only the MNIST test files existed).
    """

    name: str
    train: Split
    validation: Split
    test: Split
    image_shape: tuple
    num_classes: int
    class_names: tuple
    source: str

    @property
    def num_features(self) -> int:
        """C * H * W: the input size of a fully connected model on flattened images."""
        return int(np.prod(self.image_shape))

    def summary(self) -> str:
        """One line for logs: sizes, shape, classes and source."""
        shape = "x".join(str(d) for d in self.image_shape)
        return (f"{self.name}: train {self.train.num_examples}, validation {self.validation.num_examples}, "
                f"test {self.test.num_examples}; images {shape}; {self.num_classes} classes; "
                f"source: {self.source}")


def split_sizes(total: int, sizes: Sequence) -> tuple:
    """Resolve ``sizes`` against ``total`` examples.

    Each entry is an int (that many examples), a float in [0, 1) (that fraction of ``total``,
    rounded to the nearest int) or ``None`` (whatever is left; at most one entry). The sizes may
    add up to less than ``total`` (the rest is left out), never to more.
    """
    if sum(size is None for size in sizes) > 1:
        raise ValueError(f"train_val_test_split: at most one size may be None (the remainder), got {list(sizes)}")
    resolved = []
    for size in sizes:
        if size is None:
            resolved.append(None)
        elif isinstance(size, (float, np.floating)):
            if not 0.0 <= size < 1.0:
                raise ValueError(f"train_val_test_split: a fraction must lie in [0, 1), got {size}")
            resolved.append(int(round(size * total)))
        elif isinstance(size, (int, np.integer)) and not isinstance(size, bool) and size >= 0:
            resolved.append(int(size))
        else:
            raise ValueError(f"train_val_test_split: sizes must be ints >= 0, fractions or None, got {size!r}")
    fixed = sum(size for size in resolved if size is not None)
    if fixed > total:
        raise ValueError(f"train_val_test_split: sizes {resolved} add up to {fixed}, "
                         f"but there are only {total} examples")
    return tuple(total - fixed if size is None else size for size in resolved)


def train_val_test_split(x, y, sizes: Sequence = (None, 0.1, 0.1), seed: int = 0) -> tuple:
    """Split ``(x, y)`` into disjoint random pieces of the given sizes; returns one ``Split`` each.

    x: (N, ...) any array, y: (N,). ``sizes`` as in ``split_sizes`` (default: 80% / 10% / 10%);
    any number of pieces works, e.g. ``(None, 10000)`` for train / validation.
    The permutation comes from ``np.random.default_rng(seed)``: same seed, same pieces.
    """
    x = np.asarray(x)
    y = np.asarray(y)
    if x.shape[0] != y.shape[0]:
        raise ValueError(f"train_val_test_split: x has {x.shape[0]} examples (shape {x.shape}) "
                         f"but y has {y.shape[0]} (shape {y.shape})")
    counts = split_sizes(x.shape[0], sizes)
    order = np.random.default_rng(seed).permutation(x.shape[0])
    pieces = []
    start = 0
    for count in counts:
        # Sorting keeps file order inside a piece: which examples land where depends on the
        # seed only, and a piece's first k examples are a stable subset.
        index = np.sort(order[start:start + count])
        pieces.append(Split(x[index], y[index]))
        start += count
    return tuple(pieces)
