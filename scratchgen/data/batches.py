"""Minibatches: a seeded, resumable shuffling iterator.

One pass over a ``BatchIterator`` is one epoch. With ``shuffle=True`` each epoch draws a fresh
permutation ``rng.permutation(N)`` and serves it in slices of ``batch_size``, so

* the same seed gives the same sequence of epochs (a seeded ``np.random.Generator``);
* training can stop and resume *exactly*: save ``iterator.rng.bit_generator.state`` (a plain
  dict) at the start of an epoch together with the number of batches already used, then
  restore the state and continue with ``iterator.epoch(start_batch=k)``.

Each batch is ``(x[index], y[index])`` with ``index`` the batch's slice of the permutation
(a copy: fancy indexing), or ``(x[index], None)`` when there are no labels.
"""
from __future__ import annotations

import numpy as np

__all__ = ["BatchIterator", "iterate_batches"]


def _as_generator(rng) -> np.random.Generator:
    if isinstance(rng, np.random.Generator):
        return rng
    if rng is None:
        # Seed 0, not OS entropy: a run that passes no rng is still reproducible.
        return np.random.default_rng(0)
    if isinstance(rng, (int, np.integer)) and not isinstance(rng, bool):
        return np.random.default_rng(int(rng))
    raise TypeError(f"BatchIterator: rng must be a np.random.Generator, an int seed or None, got {type(rng).__name__}")


class BatchIterator:
    """Iterate over (x, y) in minibatches, one epoch per ``iter()``.

    x: (N, ...) array; y: (N,) array or None; batch_size >= 1.
    rng: ``np.random.Generator`` or int seed (None means seed 0); exposed as ``self.rng``.
    shuffle: new permutation each epoch; otherwise the file order every epoch.
    drop_last: skip the final short batch (keeps every batch the same size).
    """

    def __init__(self, x, y=None, batch_size: int = 128, rng=None, shuffle: bool = True, drop_last: bool = False):
        if y is not None and len(x) != len(y):
            raise ValueError(f"BatchIterator: x has {len(x)} examples (shape {np.shape(x)}) "
                             f"but y has {len(y)} (shape {np.shape(y)})")
        if not isinstance(batch_size, (int, np.integer)) or isinstance(batch_size, bool) or batch_size < 1:
            raise ValueError(f"BatchIterator: batch_size must be a positive int, got {batch_size!r}")
        self.x = x
        self.y = y
        self.batch_size = int(batch_size)
        self.rng = _as_generator(rng)
        self.shuffle = shuffle
        self.drop_last = drop_last

    @property
    def num_examples(self) -> int:
        return len(self.x)

    def __len__(self) -> int:
        """Batches per epoch."""
        full, rest = divmod(self.num_examples, self.batch_size)
        return full if (self.drop_last or rest == 0) else full + 1

    def epoch_order(self) -> np.ndarray:
        """The example order for the next epoch (consumes one permutation from ``rng`` if shuffling)."""
        if self.shuffle:
            return self.rng.permutation(self.num_examples)
        return np.arange(self.num_examples)

    def epoch(self, start_batch: int = 0):
        """Yield one epoch of ``(x_batch, y_batch)``, skipping the first ``start_batch`` batches.

        The permutation is drawn when the generator starts, so to resume an epoch restore
        ``rng.bit_generator.state`` as it was at that epoch's start, then call ``epoch(k)``.
        """
        order = self.epoch_order()
        for batch in range(start_batch, len(self)):
            index = order[batch * self.batch_size:(batch + 1) * self.batch_size]
            yield self.x[index], (None if self.y is None else self.y[index])

    def __iter__(self):
        return self.epoch()


def iterate_batches(x, y=None, batch_size: int = 128, rng=None, shuffle: bool = True, drop_last: bool = False):
    """One epoch of minibatches: ``for xb, yb in iterate_batches(x, y, 64, rng): ...``.

    A shortcut for ``iter(BatchIterator(...))``; pass the same Generator every epoch so that each
    epoch gets a new order (a fresh int seed would repeat the first epoch's order).
    """
    return BatchIterator(x, y, batch_size, rng=rng, shuffle=shuffle, drop_last=drop_last).epoch()
