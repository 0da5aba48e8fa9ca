"""The training loop every model shares: batches, progress bar, metrics, pictures, checkpoints.

Exact resume. Two random generators drive a run, both seeded from ``--seed``:
* ``data_rng`` shuffles the batches and draws the dynamic binarisation. Its state is recorded at
  the *start* of every epoch, so a run resumed in the middle of an epoch rebuilds the same
  binarised data and batch order and skips the batches already done;
* ``noise_rng`` is what the model draws its noise from (epsilon, masks, Gibbs uniforms); its
  state is saved at the moment of the checkpoint.
Evaluation and pictures use generators of their own (seeded from the seed and the epoch), so
looking at a model never changes how it trains. On the NumPy backend, training 2 epochs equals
training 1, stopping, resuming and training 1 more, bit for bit.

Ctrl-C during training writes ``checkpoint.npz`` (with the position inside the epoch) before
exiting; ``--resume`` continues from it.
"""
from __future__ import annotations

import csv
import dataclasses
import json
import math
import os
import time
from typing import Dict, List, Optional

import numpy as np

from . import checkpoint as ckpt
from .progress import ProgressBar


@dataclasses.dataclass
class TrainOptions:
    epochs: int = 10
    batch_size: int = 64
    seed: int = 0
    binarize: str = "none"  # none | static | dynamic
    out_dir: str = "runs/model"
    progress: bool = True
    pictures: bool = True
    max_batches_per_epoch: Optional[int] = None  # for quick runs and tests


class Trainer:
    """Train ``model`` (a GenerativeModel) on ``data`` (a DatasetSplits) with ``options``."""

    def __init__(self, model, data, options: TrainOptions, run_info: Optional[Dict] = None):
        self.model, self.data, self.options = model, data, options
        self.run_info = dict(run_info or {})
        seeds = np.random.SeedSequence(options.seed).spawn(2)
        self.data_rng = np.random.default_rng(seeds[0])
        self.noise_rng = np.random.default_rng(seeds[1])
        self.epoch = 0  # epochs completed
        self.batch_in_epoch = 0  # batches done inside the current epoch (non-zero only when interrupted)
        self.step = 0
        self.epoch_start_state = ckpt.rng_state(self.data_rng)
        self.history: List[Dict] = []
        self.step_losses: Dict[str, List[float]] = {}

    # ---- checkpoints -------------------------------------------------------------------------
    @property
    def checkpoint_path(self) -> str:
        return os.path.join(self.options.out_dir, "checkpoint.npz")

    def save(self, path: Optional[str] = None) -> str:
        meta = {
            **self.run_info,
            "epoch": self.epoch,
            "batch_in_epoch": self.batch_in_epoch,
            "step": self.step,
            "options": dataclasses.asdict(self.options),
            "epoch_start_rng": self.epoch_start_state,
            "noise_rng": ckpt.rng_state(self.noise_rng),
            "history": self.history,
            "step_losses": self.step_losses,
        }
        return ckpt.save_checkpoint(path or self.checkpoint_path, self.model, meta)

    def resume(self, path: Optional[str] = None) -> None:
        meta = ckpt.load_into(self.model, path or self.checkpoint_path)
        self.epoch, self.batch_in_epoch, self.step = meta["epoch"], meta["batch_in_epoch"], meta["step"]
        self.epoch_start_state = meta["epoch_start_rng"]
        self.noise_rng = ckpt.restore_rng(meta["noise_rng"])
        self.history = meta.get("history", [])
        self.step_losses = meta.get("step_losses", {})

    # ---- the loop ------------------------------------------------------------------------------
    def _epoch_batches(self):
        """Rebuild this epoch's (binarised) data and batch order from the epoch-start RNG state."""
        from .data import binarize, iterate_batches

        self.data_rng = ckpt.restore_rng(self.epoch_start_state)
        x, y = self.data.train.x, self.data.train.y
        if self.options.binarize != "none":
            x = binarize(x, self.options.binarize, rng=self.data_rng)
        return iterate_batches(x, y, self.options.batch_size, rng=self.data_rng, shuffle=True, drop_last=False)

    def fit(self) -> List[Dict]:
        """Train until ``options.epochs`` epochs are done; returns the per-epoch history."""
        options = self.options
        os.makedirs(options.out_dir, exist_ok=True)
        n_train = len(self.data.train.y)
        batches_per_epoch = math.ceil(n_train / options.batch_size)
        if options.max_batches_per_epoch:
            batches_per_epoch = min(batches_per_epoch, options.max_batches_per_epoch)
        try:
            while self.epoch < options.epochs:
                self._run_epoch(batches_per_epoch)
        except KeyboardInterrupt:
            path = self.save()
            print(f"\ninterrupted at epoch {self.epoch + 1}, batch {self.batch_in_epoch}: checkpoint written to {path}; "
                  f"continue with --resume")
            raise
        self._finish()
        return self.history

    def _run_epoch(self, batches_per_epoch: int) -> None:
        options, model = self.options, self.model
        model.train()
        start = time.perf_counter()
        sums: Dict[str, float] = {}
        seen = 0
        description = f"epoch {self.epoch + 1}/{options.epochs}"
        total = min(batches_per_epoch * options.batch_size, len(self.data.train.y))
        with ProgressBar(total, description, enabled=options.progress) as bar:
            bar.update(self.batch_in_epoch * options.batch_size)
            for index, (x, y) in enumerate(self._epoch_batches()):
                if index >= batches_per_epoch:
                    break
                if index < self.batch_in_epoch:
                    continue  # done before an interruption
                losses = model.train_step(x, y, self.noise_rng)
                _check_losses(losses, self.epoch + 1, self.step + 1)
                self.step += 1
                self.batch_in_epoch = index + 1
                for name, value in losses.items():
                    sums[name] = sums.get(name, 0.0) + value * len(x)
                    self.step_losses.setdefault(name, []).append(float(value))
                seen += len(x)
                bar.update(len(x))
                bar.set_postfix({name: total / seen for name, total in sums.items()})
        seconds = time.perf_counter() - start
        self.epoch += 1
        self.batch_in_epoch = 0
        self.epoch_start_state = ckpt.rng_state(self.data_rng)
        record = {"epoch": self.epoch, "seconds": seconds, "examples_per_second": seen / max(seconds, 1e-9)}
        record.update({f"train_{name}": total / max(seen, 1) for name, total in sums.items()})
        model.eval()
        validation = self.data.validation
        eval_rng = np.random.default_rng([options.seed, self.epoch, 1])
        x_validation = self._held_out(validation.x, salt=5)
        record.update({f"validation_{k}": float(v) for k, v in model.evaluate(x_validation, validation.y, eval_rng).items()})
        self.history.append(record)
        if options.pictures:
            # Per-epoch pictures (same fixed noise every epoch, so a learner watches one sample converge)
            # go to a subfolder; the final ones sit at the top of the output directory.
            model.save_pictures(os.path.join(options.out_dir, "epochs"), self.data, np.random.default_rng([options.seed, 2]),
                                tag=f"epoch{self.epoch:03d}")
        self.save()
        summary = ", ".join(f"{k}={v:.4g}" for k, v in record.items() if k != "epoch")
        print(f"epoch {self.epoch}: {summary}", flush=True)

    def _finish(self) -> None:
        """Test metrics, metrics.json / metrics.csv, curves and final pictures."""
        options, model = self.options, self.model
        model.eval()
        test = self.data.test
        x_test = self._held_out(test.x, salt=6)
        test_metrics = {k: float(v) for k, v in model.evaluate(x_test, test.y, np.random.default_rng([options.seed, 3])).items()}
        results = {**self.run_info, "epochs": self.epoch, "steps": self.step, "test": test_metrics, "history": self.history}
        with open(os.path.join(options.out_dir, "metrics.json"), "w") as handle:
            json.dump(results, handle, indent=2)
        if self.history:
            keys = sorted({k for record in self.history for k in record}, key=lambda k: (k != "epoch", k))
            with open(os.path.join(options.out_dir, "metrics.csv"), "w", newline="") as handle:
                writer = csv.DictWriter(handle, fieldnames=keys)
                writer.writeheader()
                writer.writerows(self.history)
        if options.pictures:
            self._save_curves()
            model.save_pictures(options.out_dir, self.data, np.random.default_rng([options.seed, 2]), tag="final")
        print("test: " + ", ".join(f"{k}={v:.4g}" for k, v in test_metrics.items()), flush=True)

    def _held_out(self, x: np.ndarray, salt: int) -> np.ndarray:
        """Held-out images binarised like the training data: thresholded, or one fixed stochastic draw."""
        from .data import binarize

        if self.options.binarize == "none":
            return x
        return binarize(x, self.options.binarize, rng=np.random.default_rng([self.options.seed, salt]))

    def _save_curves(self) -> None:
        from .plots import save_curves

        if self.step_losses:
            smoothed = {name: _moving_average(values, 20) for name, values in self.step_losses.items()}
            save_curves(smoothed, os.path.join(self.options.out_dir, "curves_steps.png"), xlabel="step", ylabel="loss (moving average of 20)")
        per_epoch = {k: [r[k] for r in self.history if k in r] for k in self.history[0] if k.startswith(("train_", "validation_"))} if self.history else {}
        if per_epoch:
            save_curves(per_epoch, os.path.join(self.options.out_dir, "curves_epochs.png"), xlabel="epoch", ylabel="value")


def _moving_average(values: List[float], window: int) -> np.ndarray:
    values = np.asarray(values, dtype=float)
    if len(values) < window:
        return values
    kernel = np.ones(window) / window
    return np.convolve(values, kernel, mode="valid")


def _check_losses(losses: Dict[str, float], epoch: int, step: int) -> None:
    for name, value in losses.items():
        if not math.isfinite(value):
            raise FloatingPointError(
                f"training diverged: loss {name!r} is {value} at epoch {epoch}, step {step}; try a smaller --lr, "
                f"or run under scratchgen.detect_anomaly() to find the op that made it"
            )
