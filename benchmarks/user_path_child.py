"""One measured process of ``bench_user_path.py``: our CLI, our API, the peer, or a cold start.

    python -m benchmarks.user_path_child cli   MODEL BACKEND EPOCHS RESULT.json [--max-batches N]
    python -m benchmarks.user_path_child api   MODEL BACKEND EPOCHS RESULT.json [--max-batches N]
    python -m benchmarks.user_path_child peer  MODEL EPOCHS RESULT.json [--max-batches N] [--dtype float32]
    python -m benchmarks.user_path_child first-step MODEL BACKEND START_TIME RESULT.json

Each writes RESULT.json: the per-epoch seconds (``cli``: from the run's own metrics.json, what a
user reads; ``api``: ``model.fit``'s history, the same loop; ``peer``: the loop around its
batches), and memory: ``peak_rss`` (the process's high-water mark, data and libraries
included), ``rss_before_training`` (the resident size when the second epoch starts: data,
libraries, model, optimiser state and, on the numba backend, the kernels loaded by the first
epoch) and ``training_peak_rss`` (the high-water mark from there on, restarted at that moment;
``training_peak_rss - rss_before_training`` is what a training epoch itself adds). With a
single epoch the mark restarts before it. The data is the CLI's: Fashion-MNIST with its
validation split (50,000 training images), on both sides.

``first-step`` measures time to the end of the first training step from ``START_TIME``
(the parent's ``time.time()`` just before it started this process): interpreter start, imports,
data, model, Numba's compilation or cache loading, one step. It exits right after that step.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time

import numpy as np

DATASET = "fashion-mnist"
SEED = 0

# The command line each model is trained with (both sides use these settings).
CLI_OPTIONS = {
    "vae": ["--hidden", "400", "--latent", "20", "--batch-size", "128", "--lr", "0.001"],
    "contractive-ae": ["--hidden", "256", "--contraction", "0.1", "--batch-size", "128", "--lr", "0.001"],
    "dcgan": ["--batch-size", "64"],
    "rbm": [],  # its defaults: 256 hidden, PCD-1, 64 chains, lr 0.01, momentum 0.5, weight decay 1e-4, dynamic binarisation
}
BATCH = {"vae": 128, "contractive-ae": 128, "dcgan": 64, "rbm": 64}
CONFIG = {  # the same options for build_model (the API side)
    "vae": {"hidden": 400, "latent": 20, "lr": 1e-3},
    "contractive-ae": {"hidden": 256, "contraction": 0.1, "lr": 1e-3},
    "dcgan": {},
    "rbm": {},
}


# ---- memory -----------------------------------------------------------------------------------
class Memory:
    """The high-water marks around training (Linux /proc; None elsewhere)."""

    def __init__(self):
        from scratchgen import memory

        self.memory = memory
        self.before = None
        self.peak_before = None

    def start(self):
        self.peak_before = self.memory.peak_rss_bytes()
        self.before = self.memory.rss_bytes()
        self.reset = self.memory.reset_peak_rss()

    def result(self):
        if self.before is None:  # training never started (or failed before its first epoch)
            return {"peak_rss": self.memory.peak_rss_bytes(), "rss_before_training": None, "training_peak_rss": None}
        peak_now = self.memory.peak_rss_bytes()
        return {"peak_rss": max(peak_now, self.peak_before or 0), "rss_before_training": self.before,
                "training_peak_rss": peak_now if self.reset else None}


def _write(path, result):
    with open(path, "w") as handle:
        json.dump(result, handle)


def _load():
    from scratchgen.data import load_dataset

    return load_dataset(DATASET, seed=SEED)


# ---- ours -------------------------------------------------------------------------------------
def _watch_trainer(training, epochs, stats):
    """Restart the memory high-water mark when the second epoch starts (the first when there is one),
    and record the marks when training ends. It only reads /proc around the user's own loop."""
    memory = Memory()
    real_fit, real_epoch = training.Trainer.fit, training.Trainer._run_epoch
    calls = []

    def run_epoch(self, interrupt):
        calls.append(1)
        if len(calls) == min(2, epochs):
            memory.start()
        return real_epoch(self, interrupt)

    def fit(self):
        try:
            return real_fit(self)
        finally:
            stats.update(memory.result())

    training.Trainer.fit, training.Trainer._run_epoch = fit, run_epoch


def run_cli(model, backend, epochs, result_path, max_batches=None):
    import tempfile

    from scratchgen import cli, training

    stats = {}
    _watch_trainer(training, epochs, stats)
    with tempfile.TemporaryDirectory(prefix="scratchgen-bench-cli-") as out:
        argv = ["train", model, "--dataset", DATASET, "--backend", backend, "--epochs", str(epochs), "--out", out,
                "--no-pictures", "--no-progress", "--seed", str(SEED)] + CLI_OPTIONS[model]
        if max_batches:
            argv += ["--max-batches", str(max_batches)]
        started = time.perf_counter()
        status = cli.main(argv)
        wall = time.perf_counter() - started
        with open(os.path.join(out, "metrics.json")) as handle:
            metrics = json.load(handle)
    if status != 0:
        raise SystemExit(f"scratchgen train {model} exited with status {status}")
    history = metrics["history"]
    _write(result_path, {"seconds": [r["seconds"] for r in history], "examples_per_second": [r["examples_per_second"] for r in history],
                         "wall_s": wall, "command": "scratchgen " + " ".join(argv), **stats})


def run_api(model, backend, epochs, result_path, max_batches=None):
    import scratchgen
    from scratchgen.models import DataInfo, build_model

    scratchgen.set_backend(backend)
    data = _load()
    net = build_model(model, CONFIG[model], DataInfo(tuple(data.image_shape), int(data.num_classes)),
                      np.random.default_rng(SEED))
    binarize = "dynamic" if model == "rbm" else "none"
    from scratchgen import training

    stats = {}
    _watch_trainer(training, epochs, stats)
    net.fit(data.train.x, data.train.y, epochs=epochs, batch_size=BATCH[model], rng=SEED, binarize=binarize,
            max_batches_per_epoch=max_batches)
    _write(result_path, {"seconds": [r["seconds"] for r in net.history], **stats})


# ---- the peers ----------------------------------------------------------------------------------
def _torch_loop(step, x, batch, epochs, max_batches, memory):
    """Epochs of shuffled batches (an index tensor for a torch tensor, as bench_vae's runner does)."""
    rng = np.random.default_rng(SEED + 1)
    seconds = []
    batches = -(-len(x) // batch)
    if max_batches:
        batches = min(batches, max_batches)
    for epoch in range(epochs):
        if epoch == min(1, epochs - 1):
            memory.start()  # as on our side: from the second epoch on
        order = rng.permutation(len(x))
        if not isinstance(x, np.ndarray):
            import torch

            order = torch.from_numpy(order)
        start = time.perf_counter()
        for index in range(batches):
            step(x[order[index * batch:(index + 1) * batch]])
        seconds.append(time.perf_counter() - start)
    return seconds


def run_peer(model, epochs, result_path, max_batches=None, dtype="float64"):
    data = _load()
    x = np.ascontiguousarray(data.train.x.reshape(len(data.train.x), -1), np.float32)
    memory = Memory()
    if model == "rbm":
        from sklearn.neural_network import BernoulliRBM

        from scratchgen.data import binarize

        # scikit-learn binarised once (it has no per-batch binarisation), in its computing dtype.
        xs = binarize(x, "static").astype(dtype)
        if max_batches:
            xs = xs[: max_batches * BATCH[model]]
        seconds = []
        for epoch in range(epochs):  # a fresh model per epoch, like bench_rbm: fit runs exactly one epoch
            if epoch == min(1, epochs - 1):
                memory.start()
            start = time.perf_counter()
            BernoulliRBM(n_components=256, learning_rate=0.01, batch_size=64, n_iter=1, random_state=epoch).fit(xs)
            seconds.append(time.perf_counter() - start)
        _write(result_path, {"seconds": seconds, "dtype": dtype, **memory.result()})
        return
    import torch

    torch.manual_seed(SEED)
    if model in ("vae", "contractive-ae"):
        from benchmarks.bench_vae import _TorchRunner, _torch_cae, _torch_vae

        net = (_torch_vae if model == "vae" else _torch_cae)(torch, SEED)
        runner = _TorchRunner(torch, net, SEED)
        xt = torch.from_numpy(x)

        def step(batch):
            runner.optimizer.zero_grad()
            loss = net.loss(batch)
            loss.backward()
            runner.optimizer.step()

        seconds = _torch_loop(step, xt, BATCH[model], epochs, max_batches, memory)
    elif model == "dcgan":
        from benchmarks.bench_dcgan import TorchDCGAN, build_ours

        peer = TorchDCGAN(torch, build_ours(SEED))
        images = np.ascontiguousarray(data.train.x, np.float32)
        noise = np.random.default_rng(SEED + 2)
        seconds = _torch_loop(lambda batch: peer.train_step(batch, noise), images, BATCH[model], epochs, max_batches, memory)
    else:
        raise SystemExit(f"no peer for {model}")
    _write(result_path, {"seconds": seconds, **memory.result()})


# ---- cold start ----------------------------------------------------------------------------------
def run_first_step(model, backend, start_time, result_path):
    """Time from the parent's spawn to the end of the first training step; exits right after it."""
    import scratchgen
    from scratchgen.models import DataInfo, build_model

    scratchgen.set_backend(backend)
    data = _load()
    net = build_model(model, CONFIG[model], DataInfo(tuple(data.image_shape), int(data.num_classes)),
                      np.random.default_rng(SEED))
    ready = time.time()
    real_step = net.train_step

    def first_step(*args, **kwargs):
        result = real_step(*args, **kwargs)
        done = time.time()
        _write(result_path, {"first_step_s": done - start_time, "setup_s": ready - start_time, "step_s": done - ready})
        sys.stdout.flush()
        os._exit(0)
        return result

    net.train_step = first_step
    net.fit(data.train.x, data.train.y, epochs=1, batch_size=BATCH[model], rng=SEED,
            binarize="dynamic" if model == "rbm" else "none", max_batches_per_epoch=1)


def main(argv=None):
    parser = argparse.ArgumentParser()
    parser.add_argument("mode", choices=("cli", "api", "peer", "first-step"))
    parser.add_argument("model")
    parser.add_argument("rest", nargs="*")
    parser.add_argument("--max-batches", type=int, default=None)
    parser.add_argument("--dtype", default="float64")
    args = parser.parse_args(argv)
    if args.mode == "cli":
        backend, epochs, result = args.rest
        run_cli(args.model, backend, int(epochs), result, args.max_batches)
    elif args.mode == "api":
        backend, epochs, result = args.rest
        run_api(args.model, backend, int(epochs), result, args.max_batches)
    elif args.mode == "peer":
        epochs, result = args.rest
        run_peer(args.model, int(epochs), result, args.max_batches, args.dtype)
    else:
        backend, start, result = args.rest
        run_first_step(args.model, backend, float(start), result)


if __name__ == "__main__":
    main()
