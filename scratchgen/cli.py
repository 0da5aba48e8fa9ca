"""The ``scratchgen`` command (also ``python -m scratchgen``).

    scratchgen train MODEL [--dataset digits] [--backend numpy] [--epochs N] [--batch-size B]
                           [--lr LR] [--seed S] [--out DIR] [--resume] [--binarize MODE]
                           [the model's own options, e.g. --latent 2]
    scratchgen sample CHECKPOINT [--n 64] [--out FILE]
    scratchgen eval CHECKPOINT [--dataset NAME]
    scratchgen gradcheck [OP|MODEL ...]
    scratchgen bench [SUITE ...] [--quick]
    scratchgen info

Every model's own options come from the defaults it registered (``scratchgen train MODEL -h``
lists them). Errors speak to a person: an unknown model or dataset lists the valid ones, a
missing optional dependency names the extra to install.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
from typing import List, Optional

import numpy as np

# Options every model shares; a model's defaults may set their default values.
TRAINING_KEYS = ("epochs", "batch_size", "lr", "binarize")


def _models():
    from .models import MODEL_REGISTRY

    return MODEL_REGISTRY


def _option_type(default):
    if isinstance(default, bool):
        return lambda text: text.lower() in ("1", "true", "yes", "on")
    if isinstance(default, int):
        return int
    if isinstance(default, float):
        return float
    if isinstance(default, (list, tuple)):
        return lambda text: [type(default[0])(part) if default else part for part in text.split(",")]
    return str


def _add_train_parser(subparsers) -> None:
    train = subparsers.add_parser("train", help="train a model", description="Train a model; `scratchgen train MODEL -h` lists its options.")
    models = train.add_subparsers(dest="model", metavar="MODEL", title="models")
    for name, spec in sorted(_models().items()):
        parser = models.add_parser(name, help=spec.description, description=f"{spec.description} (family: {spec.family})")
        parser.add_argument("--dataset", default=spec.defaults.get("dataset", "digits"), help="digits (default), mnist, fashion-mnist, synthetic, or an IDX directory")
        parser.add_argument("--data-root", default=None, help="where named datasets are looked for (default: $SCRATCHGEN_DATA)")
        parser.add_argument("--download", action="store_true", help="download the dataset if it is not found locally")
        parser.add_argument("--backend", default=None, help="numpy, numba, numba-cuda or cupy (default: $SCRATCHGEN_BACKEND or numpy)")
        parser.add_argument("--epochs", type=int, default=spec.defaults.get("epochs", 10))
        parser.add_argument("--batch-size", type=int, default=spec.defaults.get("batch_size", 64))
        parser.add_argument("--lr", type=float, default=spec.defaults.get("lr"))
        parser.add_argument("--binarize", choices=("none", "static", "dynamic"), default=spec.defaults.get("binarize", "none"))
        parser.add_argument("--seed", type=int, default=0)
        parser.add_argument("--out", default=None, help="output directory (default: runs/MODEL)")
        parser.add_argument("--resume", action="store_true", help="continue from OUT/checkpoint.npz")
        parser.add_argument("--max-batches", type=int, default=None, help="at most this many batches per epoch (quick runs)")
        parser.add_argument("--train-size", type=int, default=None, help="use only the first N training examples")
        parser.add_argument("--no-progress", action="store_true")
        parser.add_argument("--no-pictures", action="store_true")
        group = parser.add_argument_group(f"{name} options")
        for key, default in sorted(spec.defaults.items()):
            if key in TRAINING_KEYS or key == "dataset":
                continue
            group.add_argument("--" + key.replace("_", "-"), dest=f"model__{key}", type=_option_type(default), default=None,
                               help=f"default: {default}")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="scratchgen", description="Deep generative models from scratch in NumPy.")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    _add_train_parser(subparsers)
    sample = subparsers.add_parser("sample", help="draw samples from a checkpoint into a PNG grid")
    sample.add_argument("checkpoint")
    sample.add_argument("--n", type=int, default=64)
    sample.add_argument("--seed", type=int, default=0)
    sample.add_argument("--out", default=None, help="PNG path (default: beside the checkpoint)")
    evaluate = subparsers.add_parser("eval", help="a checkpoint's metrics on the test split")
    evaluate.add_argument("checkpoint")
    evaluate.add_argument("--dataset", default=None, help="default: the dataset it was trained on")
    evaluate.add_argument("--data-root", default=None)
    evaluate.add_argument("--seed", type=int, default=0)
    evaluate.add_argument("--quick", action="store_true", help="fewer importance samples, AIS runs and generated images")
    gradcheck = subparsers.add_parser("gradcheck", help="gradient-check ops and model losses (a table)")
    gradcheck.add_argument("names", nargs="*", help="ops or models (default: all)")
    gradcheck.add_argument("--list", action="store_true")
    bench = subparsers.add_parser("bench", help="run the benchmarks (python -m benchmarks)")
    bench.add_argument("rest", nargs=argparse.REMAINDER, help="arguments for python -m benchmarks")
    subparsers.add_parser("info", help="backends, devices, versions, datasets found")
    return parser


def _load_data(name: str, root: Optional[str], seed: int, download: bool = False, train_size: Optional[int] = None):
    from .data import load_dataset

    data = load_dataset(name, root=root, seed=seed, download=download) if download else load_dataset(name, root=root, seed=seed)
    if train_size:
        train = data.train
        data.train = type(train)(train.x[:train_size], train.y[:train_size])
    return data


def command_train(args) -> int:
    from . import backend
    from .models import DataInfo, build_model
    from .training import Trainer, TrainOptions

    if args.backend:
        backend.set_backend(args.backend)
    spec = _models()[args.model]
    config = {key[len("model__"):]: value for key, value in vars(args).items() if key.startswith("model__") and value is not None}
    if "lr" in spec.defaults and args.lr is not None:
        config["lr"] = args.lr
    for key in ("epochs", "batch_size", "binarize"):
        if key in spec.defaults:
            config[key] = getattr(args, key)
    data = _load_data(args.dataset, args.data_root, args.seed, args.download, args.train_size)
    out_dir = args.out or os.path.join("runs", args.model)
    rng = np.random.default_rng(args.seed)
    model = build_model(args.model, config, DataInfo(tuple(data.image_shape), int(data.num_classes)), rng)
    if model.optimizers == {} and hasattr(model, "configure_optimizers"):
        model.configure_optimizers()
    options = TrainOptions(epochs=args.epochs, batch_size=args.batch_size, seed=args.seed, binarize=args.binarize,
                           out_dir=out_dir, progress=not args.no_progress, pictures=not args.no_pictures,
                           max_batches_per_epoch=args.max_batches)
    run_info = {"dataset": args.dataset, "data_source": getattr(data, "source", ""), "backend": backend.get_backend(),
                "train_size": int(len(data.train.y)), "seed": args.seed,
                "data_info": {"image_shape": list(data.image_shape), "num_classes": int(data.num_classes)}}
    trainer = Trainer(model, data, options, run_info)
    if args.resume:
        trainer.resume()
        print(f"resumed from {trainer.checkpoint_path} at epoch {trainer.epoch}, batch {trainer.batch_in_epoch}")
    print(f"training {args.model} ({model.num_parameters():,} parameters) on {args.dataset} "
          f"({len(data.train.y)} examples, image {tuple(data.image_shape)}) with backend {backend.get_backend()}; output in {out_dir}")
    try:
        trainer.fit()
    except KeyboardInterrupt:
        return 130
    print(f"wrote {out_dir}/metrics.json, metrics.csv, checkpoint.npz and PNGs")
    return 0


def _rebuild(checkpoint_path: str):
    from . import checkpoint as ckpt
    from .models import DataInfo, build_model

    meta, _, _ = ckpt.read_checkpoint(checkpoint_path)
    info = meta.get("data_info") or {}
    spec = _models().get(meta["model"])
    if spec is None:
        raise ckpt.CheckpointError(f"{checkpoint_path}: model {meta['model']!r} is not known to this scratchgen")
    config = {k: v for k, v in meta["config"].items() if k in spec.defaults}
    data_info = DataInfo(tuple(info.get("image_shape", (1, 8, 8))), int(info.get("num_classes", 10)))
    model = build_model(meta["model"], config, data_info, np.random.default_rng(0))
    ckpt.load_into(model, checkpoint_path, with_optimizer=False)
    model.eval()
    return model, meta


def command_sample(args) -> int:
    from .plots import save_image_grid

    model, _ = _rebuild(args.checkpoint)
    images = model.sample(args.n, np.random.default_rng(args.seed))
    out = args.out or os.path.join(os.path.dirname(os.path.abspath(args.checkpoint)), "samples.png")
    save_image_grid(images, out)
    print(f"wrote {args.n} samples to {out}")
    return 0


def command_eval(args) -> int:
    model, meta = _rebuild(args.checkpoint)
    data = _load_data(args.dataset or meta.get("dataset", "digits"), args.data_root, meta.get("seed", 0))
    from .evaluation.report import full_evaluation

    metrics = full_evaluation(model, data, np.random.default_rng(args.seed), quick=args.quick)
    print(json.dumps(metrics, indent=2))
    return 0


def command_gradcheck(args) -> int:
    from .gradcheck import registered_cases, run_cases

    if args.list:
        print("\n".join(registered_cases()))
        return 0
    return 0 if run_cases(args.names) else 1


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
    from . import backend

    describe = getattr(backend, "describe", None)
    print(f"scratchgen {__import__('scratchgen').__version__}, numpy {np.__version__}, python {sys.version.split()[0]}")
    if describe is not None:
        print(describe() if isinstance(describe(), str) else json.dumps(describe(), indent=2, default=str))
    else:
        print(f"backend: {backend.get_backend()}")
    print(_datasets_found())
    print("models: " + ", ".join(sorted(_models())))
    return 0


def _datasets_found() -> str:
    """One line per named dataset: where it was found, or where it was looked for."""
    from .data import dataset_dirs, find_idx_files

    lines = ["datasets:"]
    try:
        import sklearn  # noqa: F401

        lines.append("  digits          scikit-learn's bundled 8x8 digits (the default)")
    except ImportError:
        lines.append("  digits          needs scikit-learn: pip install scratchgen[data]")
    lines.append("  synthetic       built in")
    for name in ("mnist", "fashion-mnist"):
        found = [str(d) for d in dataset_dirs(name) if d.is_dir() and find_idx_files(d)]
        where = f"found at {found[0]}" if found else "not found (set $SCRATCHGEN_DATA, or train with --download)"
        lines.append(f"  {name:<15} {where}")
    return "\n".join(lines)


COMMANDS = {"train": command_train, "sample": command_sample, "eval": command_eval, "gradcheck": command_gradcheck,
            "bench": command_bench, "info": command_info}


def main(argv: Optional[List[str]] = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["bench"]:  # everything after `bench` belongs to python -m benchmarks, options first or not
        return command_bench(argparse.Namespace(rest=argv[1:]))
    if len(argv) >= 2 and argv[0] == "train" and not argv[1].startswith("-") and argv[1] not in _models():
        print(f"scratchgen: unknown model {argv[1]!r}; valid models: {', '.join(sorted(_models()))}", file=sys.stderr)
        return 2
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None or (args.command == "train" and args.model is None):
        parser.print_help()
        return 2
    try:
        return COMMANDS[args.command](args)
    except (KeyError, ValueError, TypeError, ImportError, OSError, RuntimeError, FloatingPointError) as error:
        if os.environ.get("SCRATCHGEN_DEBUG"):
            raise
        message = error.args[0] if isinstance(error, KeyError) and error.args else error
        print(f"scratchgen {args.command}: {message}  (set SCRATCHGEN_DEBUG=1 for the traceback)", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
