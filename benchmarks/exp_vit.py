"""Experiment: the vision transformer on Fashion-MNIST, beside the same network in PyTorch and the
project's own MLP and LeNet classifiers; and the ViT's epoch time per backend against PyTorch.

Protocol, identical for scratchgen's ViT and the PyTorch one:
    data      Fashion-MNIST: 50,000 training images, 10,000 validation images (drawn from the
              official training set with the seed), the official 10,000 test images
    network   patch P, width D, depth, heads, feed-forward width (``VIT_DEFAULTS`` unless told):
              linear patch embedding, [CLS] token, learned positions, pre-norm encoder blocks with
              exact GELU and no dropout, LayerNorm on [CLS], linear head
    init      PyTorch starts from *our* initial weights (the state dict copied in), so the two
              runs differ only in the arithmetic
    order     the training loop's: batch order ``default_rng([seed, epoch]).permutation``, the
              augmentation (flips then shifts, ``scratchgen.data.augmentation``) drawn from the
              loop's noise generator in the same order: both see the very same batches
    optimiser AdamW (betas 0.9, 0.999, eps 1e-8, decoupled weight decay on every parameter),
              learning rate ``warmup_cosine`` (linear warm-up, half-cosine to 0), batch 128
    metrics   validation accuracy every epoch, test accuracy at the end; seconds per epoch
              (wall and this process's CPU time)

scratchgen's ViT is trained by ``scratchgen train vit`` itself (``scratchgen.cli.main``, in this
process), so the figure is the one a user gets. The MLP (784-256-10, ReLU) and LeNet
(``models/classifiers/lenet.py``) are trained through ``fit`` (the same loop), Adam 1e-3, batch
128, no augmentation.

    python -m benchmarks.exp_vit vit     [--epochs 18] [--backend numba] [--out runs/exp_vit]
    python -m benchmarks.exp_vit torch   [--epochs 18]            # the PyTorch twin of the vit run
    python -m benchmarks.exp_vit mlp     [--epochs 18]
    python -m benchmarks.exp_vit lenet   [--epochs 18]
    python -m benchmarks.exp_vit speed   [--steps 20]             # time per step: numpy, numba, PyTorch
    python -m benchmarks.exp_vit report                           # the table of every part run so far

Each part writes ``OUT/<part>.json``; ``report`` prints them side by side and draws
``OUT/learning_curves.png``. Run one part at a time (each a single thread: pinned below).
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time

for _name in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMBA_NUM_THREADS"):
    os.environ.setdefault(_name, "1")  # before NumPy loads: one thread unless the caller says otherwise

import numpy as np  # noqa: E402

DEFAULT_OUT = os.path.join("runs", "exp_vit")
SEED = 0


# ---- the PyTorch twin --------------------------------------------------------------------------------
def torch_vit_class():
    """``TorchViT``: the network of ``scratchgen.models.attention.vit.VisionTransformer`` in PyTorch,
    with the same parameter names, so our ``state_dict`` loads into it as it is."""
    import torch
    from torch import nn

    class LearnedPositions(nn.Module):
        def __init__(self, length: int, dim: int):
            super().__init__()
            self.weight = nn.Parameter(torch.zeros(length, dim))

    class TorchViT(nn.Module):
        def __init__(self, image_shape, num_classes, patch, dim, depth, heads, mlp_dim):
            super().__init__()
            c, h, w = image_shape
            self.patch, self.image_shape = patch, tuple(image_shape)
            self.patch_embedding = nn.Linear(c * patch * patch, dim)
            self.cls_token = nn.Parameter(torch.zeros(1, 1, dim))
            self.positions = LearnedPositions((h // patch) * (w // patch) + 1, dim)
            self.blocks = nn.Sequential(*[nn.TransformerEncoderLayer(dim, heads, mlp_dim, dropout=0.0, activation="gelu",
                                                                     batch_first=True, norm_first=True)
                                          for _ in range(depth)])
            self.norm = nn.LayerNorm(dim)
            self.head = nn.Linear(dim, num_classes)

        def forward(self, x):
            n, c, h, w = x.shape
            p = self.patch
            patches = x.reshape(n, c, h // p, p, w // p, p).permute(0, 2, 4, 1, 3, 5).reshape(n, -1, c * p * p)
            tokens = torch.cat([self.cls_token.expand(n, -1, -1), self.patch_embedding(patches)], dim=1)
            tokens = self.blocks(tokens + self.positions.weight)
            return self.head(self.norm(tokens[:, 0]))

    return TorchViT


def torch_twin(model):
    """A ``TorchViT`` holding the weights of our ``ViT`` (or ``VisionTransformer``) ``model``, in its dtype."""
    import torch

    network = getattr(model, "net", model)
    state = {name: torch.from_numpy(np.array(value)) for name, value in network.state_dict().items()}
    twin = torch_vit_class()(network.image_shape, network.head.out_features, network.patch, network.dim, network.depth,
                             network.heads, network.blocks[0].dim_feedforward)
    twin = twin.to(state["head.weight"].dtype)  # before loading: a float64 state must not pass through float32
    twin.load_state_dict(state, strict=True)
    return twin


# ---- parts -----------------------------------------------------------------------------------------
def _config(args) -> dict:
    from scratchgen.models.attention.vit import VIT_DEFAULTS

    config = {k: v for k, v in VIT_DEFAULTS.items() if k not in ("epochs", "batch_size")}
    for key in ("patch", "dim", "depth", "heads", "mlp_dim", "lr", "weight_decay", "warmup_epochs", "shift"):
        if getattr(args, key, None) is not None:
            config[key] = getattr(args, key)
    return config


def _data(train_size=None):
    import dataclasses

    from scratchgen.data import Split, load_dataset

    data = load_dataset("fashion-mnist", seed=SEED)
    if train_size:
        data = dataclasses.replace(data, train=Split(data.train.x[:train_size], data.train.y[:train_size]))
    return data


def _save(out: str, part: str, result: dict) -> None:
    os.makedirs(out, exist_ok=True)
    with open(os.path.join(out, f"{part}.json"), "w") as handle:
        json.dump(result, handle, indent=2)
    print(json.dumps({k: v for k, v in result.items() if k != "history"}, indent=2), flush=True)


def run_vit(args) -> dict:
    """``scratchgen train vit`` with this protocol; returns its history and test accuracy."""
    from scratchgen.cli import main

    config = _config(args)
    run_dir = os.path.join(args.out, "vit_run")
    argv = ["train", "vit", "--dataset", "fashion-mnist", "--epochs", str(args.epochs), "--batch-size", "128",
            "--seed", str(SEED), "--backend", args.backend, "--out", run_dir, "--no-progress"]
    for key, value in config.items():
        argv += [f"--{key.replace('_', '-')}", str(value).lower() if isinstance(value, bool) else str(value)]
    if args.train_size:
        argv += ["--train-size", str(args.train_size)]
    if os.path.exists(os.path.join(run_dir, "checkpoint.npz")):
        argv.append("--resume")  # a part stopped half-way continues exactly where it stopped
    start_cpu, start = time.process_time(), time.perf_counter()
    status = main(argv)
    if status != 0:
        raise SystemExit(f"scratchgen train vit failed with status {status}")
    metrics = json.load(open(os.path.join(run_dir, "metrics.json")))
    return {"name": f"scratchgen ViT ({args.backend})", "command": "scratchgen " + " ".join(argv), "config": config,
            "epochs": args.epochs, "test_accuracy": metrics["test"]["accuracy"],
            "history": [{"epoch": r["epoch"], "seconds": r["seconds"], "validation_accuracy": r["validation_accuracy"],
                         "train_cross_entropy": r["train_cross_entropy"]} for r in metrics["history"]],
            "seconds_this_call": time.perf_counter() - start, "cpu_seconds_this_call": time.process_time() - start_cpu,
            "parameters": None}


def train_twin(twin, data, config: dict, epochs: int, seed: int = SEED, batch_size: int = 128,
               max_batches=None, after_epoch=None, state_path=None):
    """Train the PyTorch ``twin`` with ``scratchgen train vit``'s protocol: the loop's batch order and
    noise generator, the model's augmentation draws, AdamW and ``warmup_cosine`` per step.

    ``max_batches``: as ``--max-batches``. ``after_epoch(epoch, record)`` may add to each epoch's record.
    ``state_path``: an .npz written after every epoch (weights, AdamW's moments, the noise
    generator, the history); when it exists the run continues from it, as ``scratchgen train
    --resume`` does on our side, so a long schedule can span several sittings.
    Returns the per-epoch history (seconds, CPU seconds, training cross-entropy).
    """
    import torch

    from scratchgen.data.augmentation import augment_images
    from scratchgen.models.attention.vit import warmup_cosine

    optimizer = torch.optim.AdamW(twin.parameters(), lr=config["lr"], betas=(0.9, 0.999), eps=1e-8,
                                  weight_decay=config["weight_decay"])
    n = data.train.num_examples
    steps_per_epoch = -(-n // batch_size) if max_batches is None else min(-(-n // batch_size), max_batches)
    total, warmup = epochs * steps_per_epoch, int(round(config["warmup_epochs"] * steps_per_epoch))
    noise_rng = np.random.default_rng(np.random.SeedSequence(seed).spawn(2)[1])  # the loop's noise generator
    history, step, first_epoch = [], 0, 0
    protocol = {"config": config, "epochs": epochs, "seed": seed, "batch_size": batch_size, "max_batches": max_batches}
    if state_path and os.path.exists(state_path):
        history, step, first_epoch = _load_twin_state(state_path, twin, optimizer, noise_rng, protocol)
        print(f"torch: resumed from {state_path} after epoch {first_epoch} (step {step})", flush=True)
    for epoch in range(first_epoch, epochs):
        twin.train()
        start_cpu, start = time.process_time(), time.perf_counter()
        order = np.random.default_rng([seed, epoch]).permutation(n)
        total_loss, seen = 0.0, 0
        for index in range(steps_per_epoch):
            rows = order[index * batch_size:(index + 1) * batch_size]
            x = augment_images(data.train.x[rows], noise_rng, max_shift=config["shift"], flip=config["flip"])
            for group in optimizer.param_groups:
                group["lr"] = config["lr"] * warmup_cosine(step, total, warmup)
            optimizer.zero_grad()
            loss = torch.nn.functional.cross_entropy(twin(torch.from_numpy(x.astype(np.float32))),
                                                     torch.from_numpy(data.train.y[rows]))
            loss.backward()
            optimizer.step()
            total_loss, seen, step = total_loss + loss.item() * len(rows), seen + len(rows), step + 1
        record = {"epoch": epoch + 1, "seconds": time.perf_counter() - start, "cpu_seconds": time.process_time() - start_cpu,
                  "train_cross_entropy": total_loss / seen}
        if after_epoch is not None:
            after_epoch(epoch, record)
        history.append(record)
        if state_path:
            _save_twin_state(state_path, twin, optimizer, noise_rng, history, step, protocol)
    return history


def _save_twin_state(path: str, twin, optimizer, noise_rng, history, step: int, protocol: dict) -> None:
    """Everything the twin's loop needs to continue, as plain arrays (no pickle), written atomically;
    ``protocol`` (config, epochs, seed, batching) is kept so that another run refuses to continue it."""
    arrays = {f"model.{name}": value.detach().numpy() for name, value in twin.state_dict().items()}
    for index, state in optimizer.state_dict()["state"].items():
        for key, value in state.items():
            arrays[f"optimizer.{index}.{key}"] = value.detach().numpy() if hasattr(value, "detach") else np.asarray(value)
    meta = {"history": history, "step": step, "noise_rng": noise_rng.bit_generator.state, "protocol": protocol}
    arrays["meta"] = np.array(json.dumps(meta))
    partial = path + ".partial.npz"
    np.savez(partial, **arrays)
    os.replace(partial, path)


def _load_twin_state(path: str, twin, optimizer, noise_rng, protocol: dict):
    """Restore what ``_save_twin_state`` wrote; returns (history, step, epochs done). A state
    written under another protocol (a changed --epochs changes the learning-rate schedule) is
    refused rather than continued."""
    import torch

    with np.load(path, allow_pickle=False) as stored:
        meta = json.loads(str(stored["meta"]))
        if meta.get("protocol") != json.loads(json.dumps(protocol)):
            raise ValueError(f"{path}: written by a twin run with {meta.get('protocol')}, not {protocol}; "
                             f"remove it (or use another --out) to start afresh")
        twin.load_state_dict({name[len("model."):]: torch.from_numpy(stored[name].copy())
                              for name in stored.files if name.startswith("model.")})
        state_dict = optimizer.state_dict()
        state: dict = {}
        for name in stored.files:
            if name.startswith("optimizer."):
                _, index, key = name.split(".", 2)
                state.setdefault(int(index), {})[key] = torch.from_numpy(stored[name].copy())
        state_dict["state"] = state
        optimizer.load_state_dict(state_dict)
    noise_rng.bit_generator.state = meta["noise_rng"]
    return meta["history"], int(meta["step"]), len(meta["history"])


def torch_accuracy(twin, x, y) -> float:
    import torch

    twin.eval()
    with torch.no_grad():
        predicted = torch.cat([twin(torch.from_numpy(x[s:s + 500])).argmax(1) for s in range(0, len(x), 500)])
    return float((predicted.numpy() == y).mean())


def run_torch(args) -> dict:
    """The PyTorch twin, trained on the very batches, augmentation and learning rates of ``run_vit``."""
    import torch

    from scratchgen.models import DataInfo, build_model

    torch.set_num_threads(1)
    config = _config(args)
    data = _data(args.train_size)
    ours = build_model("vit", config, DataInfo(tuple(data.image_shape), data.num_classes), np.random.default_rng(SEED))
    twin = torch_twin(ours)

    def after_epoch(epoch, record):
        record["validation_accuracy"] = torch_accuracy(twin, data.validation.x, data.validation.y)
        print(f"torch epoch {epoch + 1}: " + ", ".join(f"{k}={v:.4g}" for k, v in record.items() if k != "epoch"), flush=True)

    history = train_twin(twin, data, config, args.epochs, after_epoch=after_epoch,
                         state_path=os.path.join(args.out, "torch_state.npz"))
    return {"name": f"PyTorch {torch.__version__} ViT (same protocol)", "command": "python -m benchmarks.exp_vit torch "
            + " ".join(sys.argv[2:]), "config": config, "epochs": args.epochs,
            "test_accuracy": torch_accuracy(twin, data.test.x, data.test.y), "history": history}


def run_baseline(args, kind: str) -> dict:
    """The project's MLP or LeNet, through ``fit`` (the one loop), Adam 1e-3, batch 128, no augmentation."""
    from scratchgen import backend, nn
    from scratchgen.models.classifiers.lenet import Classifier
    from scratchgen.models.classifiers.supervised import SoftmaxClassifier

    backend.set_backend(args.backend)
    data = _data(args.train_size)
    rng = np.random.default_rng(SEED)
    if kind == "mlp":
        model = SoftmaxClassifier(nn.Sequential(nn.Linear(784, 256, init="he_uniform", rng=rng), nn.ReLU(),
                                                nn.Linear(256, 10, rng=rng)), lr=1e-3, flatten=True)
        name = "scratchgen MLP 784-256-10"
    else:
        model = Classifier(data.image_shape, data.num_classes, rng=rng, lr=1e-3)
        name = "scratchgen LeNet (models/classifiers/lenet.py)"
    model.fit(data.train.x, data.train.y, epochs=args.epochs, batch_size=128, rng=SEED, verbose=True,
              validation=(data.validation.x, data.validation.y))
    history = [{"epoch": r["epoch"], "seconds": r["seconds"], "validation_accuracy": r["validation_accuracy"],
                "train_cross_entropy": r["train_cross_entropy"]} for r in model.history]
    return {"name": f"{name} ({args.backend})", "command": f"python -m benchmarks.exp_vit {kind} " + " ".join(sys.argv[2:]),
            "epochs": args.epochs, "test_accuracy": model.accuracy(data.test.x, data.test.y), "history": history,
            "parameters": model.num_parameters()}


def run_speed(args) -> dict:
    """Seconds per training step (batch 128) of the ViT: numpy and numba backends against PyTorch, paired A B A B."""
    import torch

    from benchmarks import harness
    from scratchgen import backend
    from scratchgen.models import DataInfo, build_model

    torch.set_num_threads(1)
    config = _config(args)
    data = _data(2048)
    x, y = data.train.x[:128], data.train.y[:128]
    rows = []
    for name in ("numpy", "numba"):
        backend.set_backend(name)
        ours = build_model("vit", config, DataInfo(tuple(data.image_shape), data.num_classes), np.random.default_rng(SEED))
        twin = torch_twin(ours)
        optimizer = torch.optim.AdamW(twin.parameters(), lr=config["lr"], weight_decay=config["weight_decay"])
        xt, yt = torch.from_numpy(x), torch.from_numpy(y)
        noise = np.random.default_rng(1)

        def ours_step():
            ours.train_step(x, y, noise)

        def torch_step():
            optimizer.zero_grad()
            torch.nn.functional.cross_entropy(twin(xt), yt).backward()
            optimizer.step()

        result = harness.measure_pair(ours_step, torch_step, repeat=args.steps, target_s=0.0)
        steps = -(-50000 // 128)
        rows.append({"backend": name, "ours_step_s": result["ours"]["median_s"], "torch_step_s": result["peer"]["median_s"],
                     "ours_epoch_s": result["ours"]["median_s"] * steps, "torch_epoch_s": result["peer"]["median_s"] * steps,
                     "ratio_wall": result["ratio"], "ratio_cpu": result["ratio_cpu"],
                     "ours_cpu_share": result["ours"]["cpu_share"], "torch_cpu_share": result["peer"]["cpu_share"]})
        print(json.dumps(rows[-1]), flush=True)
    return {"name": "ViT step time, 1 thread", "command": "python -m benchmarks.exp_vit speed " + " ".join(sys.argv[2:]),
            "config": config, "torch": torch.__version__, "rows": rows}


def report(out: str) -> None:
    """Print every part's result found in ``out``, and draw the validation curves."""
    parts = {}
    for part in ("vit", "torch", "mlp", "lenet", "speed"):
        path = os.path.join(out, f"{part}.json")
        if os.path.exists(path):
            parts[part] = json.load(open(path))
    print("| model | test accuracy | epochs | seconds per epoch (median, wall) | total training seconds |")
    print("|---|---|---|---|---|")
    for part in ("vit", "torch", "mlp", "lenet"):
        if part in parts:
            result = parts[part]
            seconds = [r["seconds"] for r in result["history"]]
            print(f"| {result['name']} | {100 * result['test_accuracy']:.2f}% | {result['epochs']} | "
                  f"{np.median(seconds):.0f} | {sum(seconds):.0f} |")
    if "speed" in parts:
        print("\n| backend | scratchgen s/step | PyTorch s/step | ratio (wall) | ratio (CPU time) |\n|---|---|---|---|---|")
        for row in parts["speed"]["rows"]:
            print(f"| {row['backend']} | {row['ours_step_s']:.3f} | {row['torch_step_s']:.3f} | {row['ratio_wall']:.2f} | "
                  f"{row['ratio_cpu']:.2f} |")
    curves = {parts[p]["name"]: [r["validation_accuracy"] for r in parts[p]["history"]]
              for p in ("vit", "torch", "mlp", "lenet") if p in parts}
    if curves:
        from scratchgen.plots import save_curves

        path = save_curves(curves, os.path.join(out, "learning_curves.png"), xlabel="epoch", ylabel="validation accuracy",
                           title="Fashion-MNIST, validation accuracy per epoch")
        print(f"\nwrote {path}")


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m benchmarks.exp_vit", description=__doc__.split("\n\n")[0])
    parser.add_argument("part", choices=("vit", "torch", "mlp", "lenet", "speed", "report"))
    parser.add_argument("--epochs", type=int, default=18)
    parser.add_argument("--backend", default="numba")
    parser.add_argument("--out", default=DEFAULT_OUT)
    parser.add_argument("--train-size", type=int, default=None, help="only the first N training images (quick checks)")
    parser.add_argument("--steps", type=int, default=20, help="speed: timed pairs of steps per backend")
    for key, kind in (("patch", int), ("dim", int), ("depth", int), ("heads", int), ("mlp-dim", int), ("lr", float),
                      ("weight-decay", float), ("warmup-epochs", float), ("shift", int)):
        parser.add_argument(f"--{key}", type=kind, default=None)
    args = parser.parse_args(argv)
    if args.part == "report":
        return report(args.out)
    runners = {"vit": run_vit, "torch": run_torch, "speed": run_speed,
               "mlp": lambda a: run_baseline(a, "mlp"), "lenet": lambda a: run_baseline(a, "lenet")}
    _save(args.out, args.part, runners[args.part](args))


if __name__ == "__main__":
    main()
