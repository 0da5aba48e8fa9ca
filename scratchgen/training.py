"""The one training loop: every model, from the command line and from the API.

``scratchgen train MODEL`` and ``model.fit(x)`` both end here, in ``Trainer.fit``::

    model.prepare(x_train, y_train)                            # fresh runs only: data-dependent init
    model.plan_training(epochs, batches_per_epoch)             # also on resume: for lr schedules
    for epoch in epochs:
        order = permutation(seed, epoch)                       # a function of (seed, epoch)
        for batch in order:
            x = binarize(x, seed, epoch, batch)                # a function of (seed, epoch, batch)
            losses = model.train_step(x, y, noise_rng)         # forward, backward, optimiser step(s)
            check_losses(losses)                               # the one NaN/Inf check
        metrics = model.evaluate(validation)                   # then pictures, metrics.json, checkpoint

The model only has to meet the contract of ``scratchgen.models.base.Model`` (``train_step``,
``evaluate``, ``save_pictures``, ``prepare``, state and optimiser state); this module never
imports a model, which is why it sits below ``models/`` and both the CLI and every model's
``fit`` can use it.

Exact resume. The batch order and the binarisation noise are functions of ``(seed, epoch,
batch)``, so they need no saved state; the only generator with a history is ``noise_rng``, from
which the model draws its noise (epsilon, masks, Gibbs uniforms). A checkpoint holds the model,
the optimisers, ``noise_rng``'s state and the position (epoch, batch, step), and is only ever
taken *between* two steps: a Ctrl-C (SIGINT) or SIGTERM in the middle of a step is deferred
until the step has finished (a second Ctrl-C quits at once, keeping the previous checkpoint).
So on the NumPy backend, training N epochs equals training, interrupting anywhere, resuming
with ``--resume`` and finishing, bit for bit (``tests/test_resume_cli.py`` does this with real
signals to a real ``scratchgen train``).

Evaluation and pictures draw from generators of their own (seeded from the seed and the
epoch), so looking at a model never changes how it trains.

Files in ``out_dir`` (nothing is written when ``out_dir`` is None, as in ``model.fit``):
``checkpoint.npz`` (every epoch and on interruption), ``config.json`` (what was trained, how),
``metrics.json`` and ``metrics.csv`` (the per-epoch history, rewritten every epoch; the test
metrics at the end), ``curves_*.png`` and the model's pictures. A lock file (``train.lock``,
holding the writer's pid) keeps a second run from writing to the same directory at once.
"""
from __future__ import annotations

import contextlib
import csv
import dataclasses
import json
import math
import os
import signal
import threading
import time
from typing import Dict, List, Optional

import numpy as np

from . import checkpoint as ckpt
from .data import binarize
from .optional import MissingOptionalPackage
from .progress import ProgressBar
from .threads import training_threads

__all__ = ["TrainOptions", "Trainer", "TrainingInterrupted", "OutputDirectoryBusy", "check_losses"]


class TrainingInterrupted(KeyboardInterrupt):
    """Ctrl-C or SIGTERM stopped training at a step boundary (a checkpoint was written if there is an out_dir)."""


class OutputDirectoryBusy(RuntimeError):
    """Another live process is training into the same output directory."""


@dataclasses.dataclass
class TrainOptions:
    """How to train. ``out_dir=None`` writes nothing (the API's ``fit``)."""

    epochs: int = 10
    batch_size: int = 64
    seed: int = 0
    binarize: str = "none"  # none | static | dynamic
    out_dir: Optional[str] = "runs/model"
    progress: bool = True
    pictures: bool = True
    evaluate: bool = True  # validation metrics at the end of every epoch
    verbose: bool = True  # print one line per epoch
    shuffle: bool = True
    max_batches_per_epoch: Optional[int] = None  # for quick runs and tests

    def __post_init__(self):
        for name in ("epochs", "batch_size"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
                raise ValueError(f"TrainOptions: {name} must be a positive integer, got {value!r}")
        limit = self.max_batches_per_epoch
        if limit is not None and (isinstance(limit, bool) or not isinstance(limit, (int, np.integer)) or limit < 1):
            raise ValueError(f"TrainOptions: max_batches_per_epoch must be a positive integer or None, got {limit!r}")
        if self.binarize not in ("none", "static", "dynamic"):
            raise ValueError(f"TrainOptions: binarize must be 'none', 'static' or 'dynamic', got {self.binarize!r}")


class Trainer:
    """Train ``model`` on ``data`` (a ``scratchgen.data.DatasetSplits``) with ``options``."""

    def __init__(self, model, data, options: TrainOptions, run_info: Optional[Dict] = None):
        if data.train.num_examples < 1:
            raise ValueError(f"Trainer: the training split of {data.name!r} is empty")
        self.model, self.data, self.options = model, data, options
        self.run_info = dict(run_info or {})
        self.noise_rng = np.random.default_rng(np.random.SeedSequence(options.seed).spawn(2)[1])
        self.epoch = 0  # epochs completed
        self.batch_in_epoch = 0  # batches done inside the current epoch
        self.step = 0
        self.epoch_sums: Dict[str, List[float]] = {}  # name -> [sum of value * batch size, examples]
        self.history: List[Dict] = []
        self.step_losses: Dict[str, List[float]] = {}
        self.resumed = False
        self.written: List[str] = []  # files this run wrote, for the CLI's last line
        self._saved_at = -1  # the step of the last checkpoint written

    # ---- position and checkpoints --------------------------------------------------------------
    @property
    def batches_per_epoch(self) -> int:
        count = math.ceil(self.data.train.num_examples / self.options.batch_size)
        limit = self.options.max_batches_per_epoch
        return min(count, limit) if limit else count

    @property
    def checkpoint_path(self) -> Optional[str]:
        return None if self.options.out_dir is None else os.path.join(self.options.out_dir, "checkpoint.npz")

    def position(self) -> str:
        """Where training stands, in the words both the interruption and the resume messages use."""
        if self.batch_in_epoch == 0:
            return f"after epoch {self.epoch} (step {self.step})"
        return f"in epoch {self.epoch + 1} after batch {self.batch_in_epoch} of {self.batches_per_epoch} (step {self.step})"

    def save(self, path: Optional[str] = None) -> str:
        meta = {
            **self.run_info,
            "epoch": self.epoch,
            "batch_in_epoch": self.batch_in_epoch,
            "step": self.step,
            "options": {k: v for k, v in dataclasses.asdict(self.options).items() if k != "out_dir"},
            "noise_rng": ckpt.rng_state(self.noise_rng),
            "epoch_sums": self.epoch_sums,
            "history": self.history,
        }
        extra = {f"step_losses/{name}": np.asarray(values, dtype=np.float64) for name, values in self.step_losses.items()}
        path = ckpt.save_checkpoint(path or self.checkpoint_path, self.model, meta, extra_arrays=extra)
        self._saved_at = self.step
        self._wrote(path)
        return path

    def resume(self, path: Optional[str] = None) -> Dict:
        """Load the model, optimisers and position from a checkpoint; returns its metadata."""
        path = path or self.checkpoint_path
        meta, extra = ckpt.load_into(self.model, path)
        self.epoch, self.batch_in_epoch, self.step = meta["epoch"], meta["batch_in_epoch"], meta["step"]
        self.noise_rng = ckpt.restore_rng(meta["noise_rng"], path)
        self.epoch_sums = {k: list(v) for k, v in meta.get("epoch_sums", {}).items()}
        self.history = list(meta.get("history", []))
        self.step_losses = {k[len("step_losses/"):]: v.tolist() for k, v in extra.items() if k.startswith("step_losses/")}
        self.resumed = True
        return meta

    # ---- the loop --------------------------------------------------------------------------------
    def fit(self) -> List[Dict]:
        """Train until ``options.epochs`` epochs are done; returns the per-epoch history."""
        options = self.options
        with _output_lock(options.out_dir), _deferred_interrupts() as interrupt, training_threads():
            if not self.resumed and self.step == 0:
                self.model.prepare(self._prepare_data(), self.data.train.y)
            self.model.plan_training(options.epochs, self.batches_per_epoch)
            try:
                while self.epoch < options.epochs:
                    self._run_epoch(interrupt)
            except TrainingInterrupted:
                where = self.position()
                if self.checkpoint_path is not None:
                    path = self.save() if self._saved_at != self.step else self.checkpoint_path
                    print(f"\ninterrupted {where}: checkpoint written to {path}; continue with --resume", flush=True)
                raise
            self._finish()
        return self.history

    def _prepare_data(self) -> np.ndarray:
        """The training images as the model will see them on average (binarised statically, or
        as probabilities for dynamic binarisation): what ``model.prepare`` initialises from."""
        x = self.data.train.x
        return binarize(x, "static") if self.options.binarize == "static" else x

    def _batch(self, order: np.ndarray, index: int):
        """Batch ``index`` of this epoch, binarised with noise that depends on (seed, epoch, batch) only."""
        rows = order[index * self.options.batch_size:(index + 1) * self.options.batch_size]
        x, y = self.data.train.x[rows], self.data.train.y[rows]
        if self.options.binarize != "none":
            x = binarize(x, self.options.binarize, rng=np.random.default_rng([self.options.seed, self.epoch, index, 7]))
        return x, y

    def _run_epoch(self, interrupt: "_InterruptFlag") -> None:
        options, model = self.options, self.model
        model.train()
        n_train = self.data.train.num_examples
        order = (np.random.default_rng([options.seed, self.epoch]).permutation(n_train) if options.shuffle
                 else np.arange(n_train))
        batches = self.batches_per_epoch
        total = min(batches * options.batch_size, n_train)
        start = time.perf_counter()
        with ProgressBar(total, f"epoch {self.epoch + 1}/{options.epochs}", enabled=options.progress) as bar:
            bar.update(min(self.batch_in_epoch * options.batch_size, total))
            for index in range(self.batch_in_epoch, batches):
                x, y = self._batch(order, index)
                with interrupt.deferred():
                    losses = model.train_step(x, y, self.noise_rng)
                check_losses(losses, self.epoch + 1, self.step + 1)
                self.step += 1
                self.batch_in_epoch = index + 1
                for name, value in losses.items():
                    sums = self.epoch_sums.setdefault(name, [0.0, 0])
                    sums[0] += float(value) * len(x)
                    sums[1] += len(x)
                    self.step_losses.setdefault(name, []).append(float(value))
                bar.update(len(x))
                bar.set_postfix({name: s / max(n, 1) for name, (s, n) in self.epoch_sums.items()})
                interrupt.raise_if_requested()
        seconds = time.perf_counter() - start
        record = {"epoch": self.epoch + 1, "seconds": seconds, "examples_per_second": total / max(seconds, 1e-9)}
        record.update({f"train_{name}": s / max(n, 1) for name, (s, n) in self.epoch_sums.items()})
        model.eval()
        model.finish_epoch(self._prepare_data(), self.data.train.y)
        validation = self.data.validation
        if options.evaluate and validation.num_examples:
            eval_rng = np.random.default_rng([options.seed, self.epoch + 1, 1])
            x_validation = self._held_out(validation.x, salt=5)
            record.update({f"validation_{k}": float(v) for k, v in model.evaluate(x_validation, validation.y, eval_rng).items()})
        self.epoch += 1
        self.batch_in_epoch = 0
        self.epoch_sums = {}
        self.history.append(record)
        if options.out_dir is not None:
            if self._pictures_possible():
                # Per-epoch pictures (the same fixed noise every epoch, so a learner watches one
                # sample converge) go to a subfolder; the final ones sit at the top of out_dir.
                for path in model.save_pictures(os.path.join(options.out_dir, "epochs"), self._picture_data(),
                                                np.random.default_rng([options.seed, 2]), tag=f"epoch{self.epoch:03d}"):
                    self._wrote(path)
            self._write_metrics()
            self.save()
        if options.verbose:
            summary = ", ".join(f"{k}={v:.4g}" for k, v in record.items() if k != "epoch")
            print(f"epoch {self.epoch}: {summary}", flush=True)
        interrupt.raise_if_requested()

    def _finish(self) -> None:
        """Test metrics, metrics.json / metrics.csv, curves and final pictures."""
        options, model = self.options, self.model
        model.eval()
        test = self.data.test
        test_metrics: Dict[str, float] = {}
        if options.evaluate and test.num_examples:
            x_test = self._held_out(test.x, salt=6)
            test_metrics = {k: float(v) for k, v in model.evaluate(x_test, test.y, np.random.default_rng([options.seed, 3])).items()}
        if options.out_dir is not None:
            self._write_metrics(test_metrics)
            if self._pictures_possible():
                self._save_curves()
                for path in model.save_pictures(options.out_dir, self._picture_data(), np.random.default_rng([options.seed, 2]),
                                                tag="final"):
                    self._wrote(path)
        if options.verbose and test_metrics:
            print("test: " + ", ".join(f"{k}={v:.4g}" for k, v in test_metrics.items()), flush=True)

    def _write_metrics(self, test_metrics: Optional[Dict[str, float]] = None) -> None:
        results = {**self.run_info, "epochs": self.epoch, "steps": self.step, "history": self.history}
        if test_metrics is not None:
            results["test"] = test_metrics
        self._wrote(_write_atomically(os.path.join(self.options.out_dir, "metrics.json"),
                                      lambda handle: json.dump(results, handle, indent=2)))
        if self.history:
            keys = sorted({k for record in self.history for k in record}, key=lambda k: (k != "epoch", k))

            def write_csv(handle):
                writer = csv.DictWriter(handle, fieldnames=keys)
                writer.writeheader()
                writer.writerows(self.history)

            self._wrote(_write_atomically(os.path.join(self.options.out_dir, "metrics.csv"), write_csv))

    def _pictures_possible(self) -> bool:
        """Pictures are on, and matplotlib and Pillow are installed; if they are not, say so once and
        train on without pictures (they are a view of training, never a reason to stop it)."""
        if not self.options.pictures:
            return False
        try:
            from .plots import _require

            _require("matplotlib")
            _require("PIL")
            return True
        except MissingOptionalPackage as error:
            print(f"no pictures: {error}", flush=True)
            self.options.pictures = False
            return False

    def _picture_data(self):
        """The data the model draws its pictures from: its test images, or (for a dataset too small
        to hold out any) the validation or even the training images, so pictures never need an
        empty split."""
        for split in (self.data.test, self.data.validation, self.data.train):
            if split.num_examples:
                return dataclasses.replace(self.data, test=split,
                                           validation=self.data.validation if self.data.validation.num_examples else split)
        return self.data

    def _held_out(self, x: np.ndarray, salt: int) -> np.ndarray:
        """Held-out images binarised like the training data: thresholded, or one fixed stochastic draw."""
        if self.options.binarize == "none":
            return x
        return binarize(x, self.options.binarize, rng=np.random.default_rng([self.options.seed, salt]))

    def _save_curves(self) -> None:
        from .plots import moving_average, save_curves

        out = self.options.out_dir
        # One picture of every per-step value, and one per group the model asks for (a GAN's losses
        # apart from its discriminator outputs, say): moving averages of 20 steps.
        groups = {"curves_steps": tuple(self.step_losses), **getattr(self.model, "curve_groups", {})}
        for filename, names in groups.items():
            smoothed = {name: moving_average(self.step_losses[name], 20) for name in names if name in self.step_losses}
            if smoothed:
                self._wrote(save_curves(smoothed, os.path.join(out, f"{filename}.png"), xlabel="step",
                                        ylabel="moving average of 20 steps"))
        per_epoch = {k: [r[k] for r in self.history if k in r] for k in self.history[0]
                     if k.startswith(("train_", "validation_"))} if self.history else {}
        if per_epoch:
            self._wrote(save_curves(per_epoch, os.path.join(out, "curves_epochs.png"), xlabel="epoch", ylabel="value"))

    def _wrote(self, path: Optional[str]) -> None:
        if path and path not in self.written:
            self.written.append(path)


def check_losses(losses: Dict[str, float], epoch: int, step: int) -> None:
    """The one NaN/Inf check of training: raise ``FloatingPointError`` naming the loss, epoch and step."""
    for name, value in losses.items():
        if not math.isfinite(value):
            raise FloatingPointError(
                f"training diverged: loss {name!r} is {value} at epoch {epoch}, step {step}; try a smaller --lr, "
                f"or run under scratchgen.detect_anomaly() to find the op that made it"
            )


def _write_atomically(path: str, write) -> str:
    """Write a text file through a uniquely named temporary file and an atomic rename."""
    temporary = ckpt.temporary_name(path)
    try:
        with open(temporary, "w", newline="") as handle:
            write(handle)
        os.replace(temporary, path)
    finally:
        if os.path.exists(temporary):
            os.remove(temporary)
    return path


# ---- interruptions --------------------------------------------------------------------------------
class _InterruptFlag:
    """Records a Ctrl-C / SIGTERM that arrived while a step ran, to act on it at the step's end."""

    def __init__(self):
        self.requested: Optional[str] = None
        self.in_step = False

    @contextlib.contextmanager
    def deferred(self):
        self.in_step = True
        try:
            yield
        finally:
            self.in_step = False

    def request(self, what: str) -> None:
        """The signal handler's work: remember the request; a second one quits at once.

        It never raises ``TrainingInterrupted`` itself: the loop does, at a step boundary or after
        an epoch's evaluation and checkpoint, where the state it saves is whole.
        """
        if self.requested is not None:
            raise KeyboardInterrupt  # the second Ctrl-C: quit now, keeping the previous checkpoint
        self.requested = what
        when = "after this step" if self.in_step else "at the next step boundary"
        print(f"\n{what}: stopping {when} (press Ctrl-C again to quit at once)", flush=True)

    def raise_if_requested(self) -> None:
        if self.requested is not None:
            raise TrainingInterrupted(self.requested)


@contextlib.contextmanager
def _deferred_interrupts():
    """Turn SIGINT and SIGTERM into a request honoured at the next step boundary (main thread only)."""
    flag = _InterruptFlag()
    if threading.current_thread() is not threading.main_thread():
        yield flag
        return
    names = {signal.SIGINT: "interrupted (Ctrl-C)", signal.SIGTERM: "terminated (SIGTERM)"}
    previous = {signum: signal.getsignal(signum) for signum in names}
    for signum, what in names.items():
        signal.signal(signum, lambda received, frame, what=what: flag.request(what))
    try:
        yield flag
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


# ---- one writer per output directory ----------------------------------------------------------------
@contextlib.contextmanager
def _output_lock(out_dir: Optional[str]):
    """Hold ``out_dir/train.lock`` (our pid) for the run; refuse if a live process holds it.

    A lock left by a process that no longer exists (killed with SIGKILL, say) is taken over.
    While holding it, stray temporary files of earlier, killed saves are removed.
    """
    if out_dir is None:
        yield
        return
    os.makedirs(out_dir, exist_ok=True)
    path = os.path.join(out_dir, "train.lock")
    for _ in range(2):
        try:
            descriptor = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
            break
        except FileExistsError:
            owner = _lock_owner(path)
            if owner is not None and owner != os.getpid() and _alive(owner):
                raise OutputDirectoryBusy(f"{out_dir}: another scratchgen run (pid {owner}) is writing to this "
                                          f"directory; wait for it, or choose another --out") from None
            with contextlib.suppress(FileNotFoundError):
                os.remove(path)  # stale: its owner is gone
    else:
        raise OutputDirectoryBusy(f"{out_dir}: could not take the lock file {path}")
    with os.fdopen(descriptor, "w") as handle:
        handle.write(f"{os.getpid()}\n")
    ckpt.remove_stale_temporaries(out_dir)
    try:
        yield
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.remove(path)


def _lock_owner(path: str) -> Optional[int]:
    try:
        with open(path) as handle:
            return int(handle.read().strip() or "0") or None
    except (OSError, ValueError):
        return None


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # exists, owned by someone else
    return True
