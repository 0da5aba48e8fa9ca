"""The ``scratchgen`` command (also ``python -m scratchgen``).

    scratchgen train MODEL [--dataset digits] [--backend numpy] [--epochs N] [--batch-size B]
                           [--lr LR] [--seed S] [--out DIR] [--resume] [--binarize MODE]
                           [the model's own options, e.g. --latent 2]
    scratchgen sample CHECKPOINT [--n 64] [--out FILE] [--prompt TEXT] [--temperature T]
    scratchgen fill-mask CHECKPOINT "a [MASK] of the genus canis" [--top-k 5]
    scratchgen eval CHECKPOINT [--dataset NAME] [--quick]
    scratchgen gradcheck [OP|MODEL ...] [--mode fast|richardson|complex] [--plot PNG|DIR]
    scratchgen bench [SUITE ...] [--quick]
    scratchgen info

Every model's own options come from the defaults it registered (``scratchgen train MODEL -h``
lists them). Errors speak to a person, in one line that names the option, file or value at
fault: bad input (an option out of range, a corrupt file, a missing dataset, an unavailable
backend) exits with status 2, a failure during a run (training diverged) with 1, Ctrl-C with
130 after the training loop has written its checkpoint. ``SCRATCHGEN_DEBUG=1`` shows tracebacks.
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import math
import os
import signal
import sys
import time
from typing import Dict, List, Optional

import numpy as np

from . import backend, device

# What counts as the user's fault (exit 2): a value, a file, a name, a missing package or GPU.
BAD_INPUT = (ValueError, KeyError, TypeError, LookupError, FileNotFoundError, NotADirectoryError,
             IsADirectoryError, ImportError, backend.BackendUnavailableError)


class UsageError(Exception):
    """A command-line option that cannot be used; its message names the option and the value."""


# ---- option types: each refuses what it cannot use, naming the value ----------------------------------
def _integer(text: str, minimum: int, what: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = minimum - 1
    if value < minimum:
        raise argparse.ArgumentTypeError(f"must be {what}, got {text!r}")
    return value


def positive_int(text: str) -> int:
    return _integer(text, 1, "a positive integer")


def non_negative_int(text: str) -> int:
    return _integer(text, 0, "an integer >= 0")


def finite_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a number, got {text!r}") from None
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"must be a finite number, got {text!r}")
    return value


def positive_float(text: str) -> float:
    value = finite_float(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be a number > 0, got {text!r}")
    return value


def boolean(text: str) -> bool:
    lowered = text.strip().lower()
    if lowered in ("true", "yes", "1", "on"):
        return True
    if lowered in ("false", "no", "0", "off"):
        return False
    raise argparse.ArgumentTypeError(f"must be true/false (or yes/no, 1/0), got {text!r}")


def optional_float(text: str) -> Optional[float]:
    return None if text.strip().lower() == "none" else finite_float(text)


def _option_type(default):
    """The parser of a model option, from the type of its registered default."""
    if isinstance(default, bool):
        return boolean
    if isinstance(default, int):
        return int if default <= 0 else positive_int
    if isinstance(default, float):
        return finite_float
    if default is None:
        return optional_float
    if isinstance(default, (list, tuple)):
        item = _option_type(default[0]) if default else str

        def parse_list(text: str):
            parts = [part for part in text.split(",") if part.strip()]
            if not parts:
                raise argparse.ArgumentTypeError(f"must be a comma-separated list, got {text!r}")
            return [item(part) for part in parts]

        return parse_list
    return str


class _Parser(argparse.ArgumentParser):
    """argparse, but a bad option is one line (raised, printed by ``main``), never usage text and exit."""

    def error(self, message: str):
        raise UsageError(f"{self.prog}: {message}")


# ---- the parser ---------------------------------------------------------------------------------------
def _models():
    from .models import MODEL_REGISTRY

    return MODEL_REGISTRY


def _add_train_parser(subparsers) -> None:
    from .models.base import TRAINING_KEYS

    train = subparsers.add_parser("train", help="train a model", description="Train a model; `scratchgen train MODEL -h` lists its options.")
    models = train.add_subparsers(dest="model", metavar="MODEL", title="models")
    for name, spec in sorted(_models().items()):
        parser = models.add_parser(name, help=spec.description, description=f"{spec.description} (family: {spec.family})")
        # Defaults of None are filled in later: with --resume, an option the user did not give comes
        # from the checkpoint, and one they gave is compared with it.
        parser.add_argument("--dataset", default=None, help=f"default: {spec.training.get('dataset', 'digits')}; images: digits, "
                            "mnist, fashion-mnist, synthetic or an IDX directory; text: wordnet-pairs, wordnet-stream, "
                            "wordnet-definitions, or pairs:FILE, stream:FILE, labelled:FILE; stories: babi-1..3")
        parser.add_argument("--data-root", default=None, help="where named datasets are looked for (default: $SCRATCHGEN_DATA)")
        parser.add_argument("--download", action="store_true", help="download the dataset if it is not found locally")
        parser.add_argument("--backend", default=None, help="numpy, numba, numba-cuda or cupy (default: $SCRATCHGEN_BACKEND or numpy)")
        parser.add_argument("--epochs", type=positive_int, default=None, help=f"default: {spec.training.get('epochs', 10)}")
        parser.add_argument("--batch-size", type=positive_int, default=None, help=f"default: {spec.training.get('batch_size', 64)}")
        parser.add_argument("--lr", type=positive_float, default=None, help=f"default: {spec.defaults.get('lr')}")
        parser.add_argument("--binarize", choices=("none", "static", "dynamic"), default=None,
                            help=f"default: {spec.training.get('binarize', 'none')}")
        parser.add_argument("--seed", type=non_negative_int, default=None, help="default: 0")
        parser.add_argument("--out", default=None, help="output directory (default: runs/MODEL)")
        parser.add_argument("--resume", action="store_true", help="continue from OUT/checkpoint.npz")
        parser.add_argument("--max-batches", type=positive_int, default=None, help="at most this many batches per epoch (quick runs)")
        parser.add_argument("--train-size", type=positive_int, default=None, help="use only the first N training examples")
        parser.add_argument("--no-progress", action="store_true")
        parser.add_argument("--no-pictures", action="store_true")
        group = parser.add_argument_group(f"{name} options")
        for key, default in sorted(spec.defaults.items()):
            if key in TRAINING_KEYS or key == "dataset":
                continue
            group.add_argument("--" + key.replace("_", "-"), dest=f"model__{key}", type=_option_type(default), default=None,
                               help=f"default: {default}")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="scratchgen", description="Deep generative models from scratch in NumPy.")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    _add_train_parser(subparsers)
    sample = subparsers.add_parser("sample", help="draw samples from a checkpoint into a PNG grid (text models: text)")
    sample.add_argument("checkpoint")
    sample.add_argument("--n", type=positive_int, default=64)
    sample.add_argument("--seed", type=non_negative_int, default=0)
    sample.add_argument("--out", default=None, help="PNG path (default: samples.png beside the checkpoint; "
                                                     "text models: samples.txt)")
    sample.add_argument("--prompt", default=None, help="text models: the text every sample starts with")
    sample.add_argument("--temperature", type=positive_float, default=None, help="text models: sharpen (< 1) or "
                                                                                   "flatten (> 1) each draw; default 1")
    fill = subparsers.add_parser("fill-mask", help="a BERT checkpoint's best guesses for each [MASK] of a sentence")
    fill.add_argument("checkpoint")
    fill.add_argument("text", help='a sentence with [MASK] in it, e.g. "a [MASK] of the genus canis"')
    fill.add_argument("--top-k", type=positive_int, default=5)
    evaluate = subparsers.add_parser("eval", help="a checkpoint's metrics on the test split")
    evaluate.add_argument("checkpoint")
    evaluate.add_argument("--dataset", default=None, help="default: the dataset it was trained on")
    evaluate.add_argument("--data-root", default=None)
    evaluate.add_argument("--seed", type=non_negative_int, default=0)
    evaluate.add_argument("--quick", action="store_true", help="fewer importance samples, AIS runs and generated images")
    evaluate.add_argument("--ks", type=lambda text: [positive_int(p) for p in text.split(",")], default=None,
                          help="importance samples of the IWAE bounds, e.g. 1,10,5000 (latent-variable models)")
    evaluate.add_argument("--iwae-examples", type=positive_int, default=None, help="test images for the IWAE bounds")
    gradcheck = subparsers.add_parser("gradcheck", help="gradient-check ops and model losses (a table)")
    gradcheck.add_argument("names", nargs="*", help="ops or models (default: all)")
    gradcheck.add_argument("--list", action="store_true")
    gradcheck.add_argument("--seed", type=non_negative_int, default=0)
    gradcheck.add_argument("--mode", choices=("fast", "richardson", "complex"), default="fast",
                           help="fast: central differences, catches a backward wrong by a relative 2e-6; richardson "
                                "(3x the time): 2e-8; complex: complex step, 2e-9 where the forward is complex-analytic, "
                                "else richardson (the table says why). Default: fast")
    gradcheck.add_argument("--plot", metavar="PNG|DIR", default=None,
                           help="draw analytic vs numeric derivative and the relative error of every check: into PNG "
                                "(a path ending in .png, one case) or one DIR/<case>.png per case (needs matplotlib)")
    bench = subparsers.add_parser("bench", help="run the benchmarks (python -m benchmarks, from a source checkout)")
    bench.add_argument("rest", nargs=argparse.REMAINDER, help="arguments for python -m benchmarks")
    subparsers.add_parser("info", help="backends, devices, threads, versions, datasets found")
    return parser


# ---- train -------------------------------------------------------------------------------------------
def _load_data(name: str, root: Optional[str], seed: int, download: bool = False, train_size: Optional[int] = None):
    from .data import Split, load_dataset

    data = load_dataset(name, root=root, seed=seed, download=download)
    if train_size is not None:
        available = data.train.num_examples
        if train_size > available:
            raise ValueError(f"--train-size {train_size}: {name} has only {available} training examples")
        data = dataclasses.replace(data, train=Split(data.train.x[:train_size], data.train.y[:train_size]))
    return data


def _resolve_training_options(args, spec, meta: Optional[Dict]) -> Dict:
    """The run's settings: the user's options, else the checkpoint's (with --resume), else the defaults.

    With --resume, ``--lr`` and ``--epochs`` may change and are applied (and said); any other
    option that contradicts the checkpoint is refused, naming it, since the run would no longer
    continue the same training.
    """
    given_model = {key[len("model__"):]: value for key, value in vars(args).items()
                   if key.startswith("model__") and value is not None}
    shared = {"dataset": args.dataset, "batch_size": args.batch_size, "binarize": args.binarize, "seed": args.seed,
              "epochs": args.epochs, "lr": args.lr}
    defaults = {"dataset": spec.training.get("dataset", "digits"), "batch_size": spec.training.get("batch_size", 64),
                "binarize": spec.training.get("binarize", "none"), "seed": 0, "epochs": spec.training.get("epochs", 10),
                "lr": spec.defaults.get("lr")}
    notes: List[str] = []
    if meta is None:
        settings = {key: defaults[key] if value is None else value for key, value in shared.items()}
        config = dict(given_model)
    else:
        options = meta.get("options", {})
        stored = {"dataset": meta.get("dataset"), "batch_size": options.get("batch_size"), "binarize": options.get("binarize"),
                  "seed": meta.get("seed", options.get("seed")), "epochs": options.get("epochs"),
                  "lr": meta["config"].get("lr")}
        settings, conflicts = {}, []
        for key, value in shared.items():
            if value is None or value == stored[key]:
                settings[key] = stored[key] if stored[key] is not None else defaults[key]
            elif key in ("lr", "epochs"):
                settings[key] = value
                notes.append(f"--{key.replace('_', '-')} {value} applied (the checkpoint had {stored[key]})")
            else:
                conflicts.append(f"--{key.replace('_', '-')} {value} (the checkpoint has {stored[key]})")
        config = {k: v for k, v in meta["config"].items() if k in spec.defaults}
        for key, value in given_model.items():
            if config.get(key) != value:
                conflicts.append(f"--{key.replace('_', '-')} {value} (the checkpoint has {config.get(key)})")
        if args.train_size is not None and args.train_size != meta.get("train_size"):
            conflicts.append(f"--train-size {args.train_size} (the checkpoint trained on {meta.get('train_size')} examples)")
        if conflicts:
            raise ValueError("--resume: these options contradict the checkpoint, so the run would not continue the same "
                             "training: " + "; ".join(conflicts) + ". Drop them, or train into a new --out")
    if "lr" in spec.defaults and settings["lr"] is not None:
        config["lr"] = settings["lr"]
    return {"settings": settings, "config": config, "notes": notes}


def command_train(args) -> int:
    from . import checkpoint as ckpt
    from .models import DataInfo, build_model
    from .training import Trainer, TrainingInterrupted, TrainOptions

    if args.backend:  # for this command only (main() may be called in-process, by tests or a notebook)
        with backend.use_backend(args.backend):
            return _train(args)
    return _train(args)


def _train(args) -> int:
    from . import checkpoint as ckpt
    from .models import DataInfo, build_model
    from .training import Trainer, TrainingInterrupted, TrainOptions

    spec = _models()[args.model]
    out_dir = args.out or os.path.join("runs", args.model)
    checkpoint_path = os.path.join(out_dir, "checkpoint.npz")
    meta = None
    if args.resume:
        meta, _, _, _ = ckpt.read_checkpoint(checkpoint_path)
        if meta["model"] != args.model:
            raise ValueError(f"--resume: {checkpoint_path} is a checkpoint of model {meta['model']!r}, not {args.model!r}")
    resolved = _resolve_training_options(args, spec, meta)
    settings, config = resolved["settings"], resolved["config"]
    data = _load_data(settings["dataset"], args.data_root, settings["seed"], args.download, args.train_size)
    data_info = DataInfo(tuple(data.image_shape), int(data.num_classes))
    model = build_model(args.model, config, data_info, np.random.default_rng(settings["seed"]))
    target = device.backend_device(backend.get_backend())
    if target.kind == "cuda":  # a GPU backend runs on the model's device: move it there, never run on the host quietly
        model.to(str(target))
    options = TrainOptions(epochs=settings["epochs"], batch_size=settings["batch_size"], seed=settings["seed"],
                           binarize=settings["binarize"], out_dir=out_dir, progress=not args.no_progress,
                           pictures=not args.no_pictures, max_batches_per_epoch=args.max_batches)
    run_info = {"dataset": settings["dataset"], "data_source": getattr(data, "source", ""), "backend": backend.get_backend(),
                "train_size": int(data.train.num_examples), "seed": settings["seed"],
                "data_info": {"image_shape": [int(d) for d in data.image_shape], "num_classes": int(data.num_classes)}}
    trainer = Trainer(model, data, options, run_info)
    if args.resume:
        trainer.resume(checkpoint_path)
        if "lr" in settings and settings["lr"] is not None:
            for optimizer in model.optimizers.values():
                optimizer.lr = float(settings["lr"])
        for note in resolved["notes"]:
            print(f"resume: {note}")
        if trainer.epoch >= options.epochs and _run_finished(out_dir, trainer.epoch):
            print(f"{checkpoint_path} already holds {trainer.epoch} epochs (--epochs {options.epochs}); nothing to train")
            return 0
        # Otherwise there is training left, or the last epoch was interrupted before the test
        # metrics and final pictures were written: fit() then trains no epoch and finishes the run.
        print(f"resumed from {checkpoint_path} {trainer.position()}")
    print(f"training {args.model} ({model.num_parameters():,} parameters) on {settings['dataset']} "
          f"({data.train.num_examples} examples of shape {tuple(data.image_shape)}) with backend {backend.get_backend()}; "
          f"output in {out_dir}", flush=True)
    try:
        trainer.fit()
    except TrainingInterrupted:
        return 130
    # Training is over and everything is written: a Ctrl-C from here on (while printing the summary
    # or while the interpreter shuts down) must not turn a finished run into an interrupted one, nor
    # kill the process by the signal. Only as the program itself: main(argv) called from Python
    # (tests, notebooks) keeps its Ctrl-C.
    if _AS_PROGRAM:
        _ignore_sigint()
    names = [os.path.relpath(path, out_dir) for path in trainer.written if not path.startswith(os.path.join(out_dir, "epochs"))]
    pictures = [n for n in names if n.endswith(".png")]
    files = [n for n in names if not n.endswith(".png")] + ([f"{len(pictures)} PNGs"] if pictures else [])
    print(f"wrote {', '.join(files)} in {out_dir}")
    return 0


def _run_finished(out_dir: str, epochs: int) -> bool:
    """Whether metrics.json says the run ended: its test metrics (possibly none) are written only
    after the last epoch, so a run interrupted between its last checkpoint and them is not."""
    try:
        with open(os.path.join(out_dir, "metrics.json")) as handle:
            results = json.load(handle)
    except (OSError, ValueError):
        return False
    return isinstance(results, dict) and "test" in results and results.get("epochs") == epochs


def _ignore_sigint() -> None:
    import threading

    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGINT, signal.SIG_IGN)


# ---- sample and eval -----------------------------------------------------------------------------------
def command_sample(args) -> int:
    from .models import load_model
    from .plots import save_image_grid

    text = args.prompt is not None or args.temperature is not None
    out = args.out or os.path.join(os.path.dirname(os.path.abspath(args.checkpoint)), "samples.png")
    if os.path.isdir(out):
        raise ValueError(f"--out {out}: is a directory; give the path of a {'text' if text else 'PNG'} file")
    model, meta = load_model(args.checkpoint)
    if getattr(model, "sample_kind", "images") == "text":
        return _sample_text(model, args)
    if text:
        raise ValueError(f"--prompt / --temperature: {args.checkpoint} holds an image model ({model.cli_name!r})")
    if not callable(getattr(model, "sample", None)):
        raise ValueError(f"{args.checkpoint}: {meta['model']!r} is a classifier, not a generative model: it has no "
                         f"samples to draw; `scratchgen eval {args.checkpoint}` reports its accuracy")
    images = np.asarray(model.sample(args.n, np.random.default_rng(args.seed)))
    if not bool(np.isfinite(images).all()):
        print(f"scratchgen sample: the model produced non-finite pixels; {out} was not written", file=sys.stderr)
        return 1
    save_image_grid(images, out)
    print(f"wrote {args.n} samples to {out}")
    return 0


def _sample_text(model, args) -> int:
    """A text model's samples: printed, one per line, and written to --out (default samples.txt)."""
    out = args.out or os.path.join(os.path.dirname(os.path.abspath(args.checkpoint)), "samples.txt")
    texts = model.sample(args.n, np.random.default_rng(args.seed), prompt=args.prompt or "",
                         temperature=1.0 if args.temperature is None else args.temperature)
    with open(out, "w", encoding="utf-8") as handle:
        handle.write("\n".join(texts) + "\n")
    print("\n".join(texts))
    print(f"wrote {len(texts)} samples to {out}", file=sys.stderr)
    return 0


def command_fill_mask(args) -> int:
    """The top guesses for each [MASK] of a sentence, from a BERT checkpoint."""
    from .models import load_model

    model, _ = load_model(args.checkpoint)
    if not hasattr(model, "fill_mask"):
        raise ValueError(f"fill-mask: {args.checkpoint} holds a {model.cli_name!r} model; fill-mask needs a 'bert' checkpoint")
    results = model.fill_mask(args.text, top_k=args.top_k)
    print("input: [CLS] " + " ".join(model.tokenizer.tokens(args.text)) + " [SEP]")
    for position, guesses in results:
        print(f"[MASK] at position {position}: " + ", ".join(f"{piece} {p:.3f}" for piece, p in guesses))
    return 0


def command_eval(args) -> int:
    from .evaluation.report import full_evaluation
    from .models import load_model

    model, meta = load_model(args.checkpoint)
    dataset = args.dataset or meta.get("dataset", "digits")
    data = _load_data(dataset, args.data_root, meta.get("seed", 0))
    start = time.perf_counter()

    def progress(stage: str) -> None:
        print(f"eval [{time.perf_counter() - start:6.1f} s] {stage}", file=sys.stderr, flush=True)

    metrics = full_evaluation(model, data, np.random.default_rng(args.seed), quick=args.quick, progress=progress,
                              binarize=meta.get("options", {}).get("binarize", "none"), ks=args.ks,
                              iwae_examples=args.iwae_examples)
    progress("done")
    print(json.dumps(metrics, indent=2))
    return 0


# ---- gradcheck, bench, info ----------------------------------------------------------------------------
def command_gradcheck(args) -> int:
    from . import models  # noqa: F401  (registers the model-loss cases beside the op cases)
    from .gradcheck import registered_cases, run_cases

    if args.list:
        print("\n".join(registered_cases()))
        return 0
    return 0 if run_cases(args.names, seed=args.seed, method=args.mode, plot=args.plot) else 1


def command_bench(args) -> int:
    """Run ``python -m benchmarks`` from the source checkout this scratchgen came from.

    The benchmarks are part of the repository, not of the installed library (they import
    peers such as PyTorch and must never be imported by it), so they run as a separate process.
    """
    import subprocess

    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    if not os.path.isfile(os.path.join(root, "benchmarks", "__main__.py")):
        print("scratchgen bench: the benchmarks are not installed with the library; run it from a source "
              "checkout (git clone, then `python -m benchmarks` or `scratchgen bench` there)", file=sys.stderr)
        return 2
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [root, os.environ.get("PYTHONPATH")])))
    return subprocess.call([sys.executable, "-m", "benchmarks", *args.rest], cwd=root, env=env)


def command_info(args) -> int:
    from . import info

    print(f"scratchgen {info.VERSION}, numpy {np.__version__}, python {sys.version.split()[0]}")
    print(info.describe())
    print(info.datasets_found())
    print("models: " + ", ".join(sorted(_models())))
    return 0


COMMANDS = {"train": command_train, "sample": command_sample, "eval": command_eval, "gradcheck": command_gradcheck,
            "bench": command_bench, "info": command_info, "fill-mask": command_fill_mask}


_AS_PROGRAM = False  # set by run(): we are the `scratchgen` process itself, not main(argv) inside Python


def main(argv: Optional[List[str]] = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["bench"]:  # everything after `bench` belongs to python -m benchmarks, options first or not
        return command_bench(argparse.Namespace(rest=argv[1:]))
    command = argv[0] if argv else None
    try:
        if command != "info" and backend.environment_error() is not None:
            raise backend.environment_error()
        if command == "train" and len(argv) >= 2 and not argv[1].startswith("-") and argv[1] not in _models():
            raise UsageError(f"scratchgen train: unknown model {argv[1]!r}; valid models: {', '.join(sorted(_models()))}")
        parser = build_parser()
        args = parser.parse_args(argv)
        if args.command is None or (args.command == "train" and args.model is None):
            parser.print_help()
            return 2
        return COMMANDS[args.command](args)
    except KeyboardInterrupt as interrupt:  # Ctrl-C, or a signal during a download (its .part file is gone)
        signum = getattr(interrupt, "signum", None)
        print(f"\nscratchgen {command}: {interrupt or 'interrupted'}", file=sys.stderr)
        return 128 + signum if signum else 130
    except UsageError as error:
        print(str(error), file=sys.stderr)
        return 2
    except BrokenPipeError:  # `scratchgen info | head`: the reader has gone; say nothing more, like a shell tool
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141  # 128 + SIGPIPE, what a shell reports for a writer the pipe closed on
    except Exception as error:  # one line for a person; SCRATCHGEN_DEBUG=1 for the traceback
        if os.environ.get("SCRATCHGEN_DEBUG"):
            raise
        message = error.args[0] if isinstance(error, KeyError) and error.args else error
        print(f"scratchgen {command}: {message}  (set SCRATCHGEN_DEBUG=1 for the traceback)", file=sys.stderr)
        return 2 if isinstance(error, BAD_INPUT) or _is_bad_input(error) else 1


def run() -> None:
    """The ``scratchgen`` program: ``main()``, then exit with its status.

    Once ``main`` has returned the work is done and written; a Ctrl-C that lands while the
    interpreter shuts down (joining threads, flushing files) would only print a traceback over a
    finished run, so it is ignored from here on (``train`` ignores it already once its files are
    written, see ``command_train``).
    """
    global _AS_PROGRAM
    _AS_PROGRAM = True
    status = main()
    _ignore_sigint()
    sys.exit(status)


def _is_bad_input(error: Exception) -> bool:
    """Refusals that are not ValueErrors: a busy output directory, a file that is not what it claims."""
    from .data import ChecksumError
    from .training import OutputDirectoryBusy

    return isinstance(error, (OutputDirectoryBusy, ChecksumError))


if __name__ == "__main__":
    run()
