"""DCGAN on Fashion-MNIST: scratchgen vs PyTorch CPU, the same networks, weights, batches and noise.

Protocol (issue 5's targets), identical on both sides:
    the DCGAN of ``scratchgen/models/dcgan.py`` for 28x28 images, width 64, z in R^100:
        G: Linear(100, 128*7*7) -> BN -> ReLU -> ConvT(128, 64, 4, 2, 1) -> BN -> ReLU
           -> ConvT(64, 1, 4, 2, 1) -> tanh
        D: Conv(1, 64, 4, 2, 1) -> LeakyReLU(0.2) -> Conv(64, 128, 4, 2, 1) -> BN -> LeakyReLU(0.2)
           -> Linear(128*7*7, 1)
    PyTorch starts from *our* initial weights (copied), Adam(lr 2e-4, betas (0.5, 0.999)),
    batch 64, one D step then one non-saturating G step per training step; both sides draw
    the same noise (same generator, same order) and see the same batches.

Speed (``run``): seconds per training step (D step + G step), scratchgen and PyTorch
interleaved A B A B (``benchmarks/harness.py``); the ratio is the median of the pair ratios.

Quality (``quality``): train both for the same number of steps, then score 10,000 samples of
each with the classifier-Fréchet distance and mode coverage of
``scratchgen/evaluation/sample_quality.py`` (LeNet-style classifier trained once and cached),
next to the real-vs-real floor and noisy / blurred references.

    python -m benchmarks.bench_dcgan [--quick] [--threads 1] [--repeat 10] [--backends numpy,numba]
    python -m benchmarks.bench_dcgan --quality --steps 1500 [--out runs/dcgan_fashion]
    run(quick=False, threads=1, steps=None, backends=("numpy",)) -> list of row dicts (benchmarks/harness.py keys)
"""
from __future__ import annotations

import argparse
import json
import os
import time
from typing import Dict, List, Optional

import numpy as np

BATCH_SIZE = 64
LATENT = 100
WIDTH = 64
LR, BETAS = 2e-4, (0.5, 0.999)


def _fashion():
    from scratchgen.data import load_dataset

    return load_dataset("fashion-mnist", seed=0)


# ---- scratchgen side -------------------------------------------------------------------------------
def build_ours(seed: int):
    from scratchgen.models import DataInfo, build_model

    return build_model("dcgan", {"latent_dim": LATENT, "width": WIDTH, "lr": LR, "beta1": BETAS[0]},
                       DataInfo((1, 28, 28), 10), np.random.default_rng(seed))


# ---- PyTorch side, built from our weights ----------------------------------------------------------
def build_torch(torch, ours):
    """The same G and D in PyTorch, initialised with a copy of ``ours``' parameters."""
    nn = torch.nn
    generator = nn.Sequential(
        nn.Linear(LATENT, 2 * WIDTH * 49), nn.Unflatten(1, (2 * WIDTH, 7, 7)), nn.BatchNorm2d(2 * WIDTH), nn.ReLU(),
        nn.ConvTranspose2d(2 * WIDTH, WIDTH, 4, 2, 1), nn.BatchNorm2d(WIDTH), nn.ReLU(),
        nn.ConvTranspose2d(WIDTH, 1, 4, 2, 1), nn.Tanh(),
    )
    discriminator = nn.Sequential(
        nn.Conv2d(1, WIDTH, 4, 2, 1), nn.LeakyReLU(0.2),
        nn.Conv2d(WIDTH, 2 * WIDTH, 4, 2, 1), nn.BatchNorm2d(2 * WIDTH), nn.LeakyReLU(0.2),
        nn.Flatten(), nn.Linear(2 * WIDTH * 49, 1),
    )
    for torch_net, our_net in ((generator, ours.generator), (discriminator, ours.discriminator)):
        ours_params = [p.data for p in our_net.parameters()]
        torch_params = list(torch_net.parameters())
        if [tuple(p.shape) for p in torch_params] != [a.shape for a in ours_params]:
            raise RuntimeError("bench_dcgan: PyTorch and scratchgen DCGAN parameters do not line up")
        with torch.no_grad():
            for target, source in zip(torch_params, ours_params):
                target.copy_(torch.from_numpy(np.array(source)))
    return generator, discriminator


class TorchDCGAN:
    """The training step of ``scratchgen.models.gan.GAN`` written in PyTorch."""

    def __init__(self, torch, ours):
        self.torch = torch
        self.generator, self.discriminator = build_torch(torch, ours)
        self.opt_g = torch.optim.Adam(self.generator.parameters(), lr=LR, betas=BETAS)
        self.opt_d = torch.optim.Adam(self.discriminator.parameters(), lr=LR, betas=BETAS)

    def train_step(self, x: np.ndarray, rng: np.random.Generator) -> Dict[str, float]:
        torch, F = self.torch, self.torch.nn.functional
        self.generator.train()
        self.discriminator.train()
        real = torch.from_numpy(x * np.float32(2) - np.float32(1))
        z = torch.from_numpy(rng.standard_normal((len(x), LATENT)).astype(np.float32))
        with torch.no_grad():
            fake = self.generator(z)
        self.opt_d.zero_grad()
        d_loss = F.softplus(-self.discriminator(real)).mean() + F.softplus(self.discriminator(fake)).mean()
        d_loss.backward()
        self.opt_d.step()
        z = torch.from_numpy(rng.standard_normal((len(x), LATENT)).astype(np.float32))
        self.opt_g.zero_grad()
        for p in self.discriminator.parameters():
            p.requires_grad_(False)
        g_loss = F.softplus(-self.discriminator(self.generator(z))).mean()
        g_loss.backward()
        for p in self.discriminator.parameters():
            p.requires_grad_(True)
        self.opt_g.step()
        return {"d_loss": d_loss.item(), "g_loss": g_loss.item()}

    def sample(self, n: int, rng: np.random.Generator, batch_size: int = 500) -> np.ndarray:
        torch = self.torch
        self.generator.eval()
        out = []
        with torch.no_grad():
            for start in range(0, n, batch_size):
                z = torch.from_numpy(rng.standard_normal((min(batch_size, n - start), LATENT)).astype(np.float32))
                out.append(self.generator(z).numpy())
        return np.clip((np.concatenate(out) + 1) * 0.5, 0, 1)


def _load_torch(threads: int):
    from benchmarks.harness import PeerMissing, load_peer, pinned_threads

    try:
        torch = load_peer("torch")
    except PeerMissing as error:
        return None, str(error)
    if pinned_threads() is None:
        torch.set_num_threads(threads)
    return torch, None


# ---- speed -----------------------------------------------------------------------------------------
def run(quick: bool = False, threads: int = 1, steps: Optional[int] = None, seed: int = 0, backends=("numpy",),
        log=print) -> List[Dict]:
    """Seconds per DCGAN training step (batch 64, 28x28), scratchgen vs PyTorch CPU, A B A B; one row
    per CPU backend in ``backends`` (each against a PyTorch twin built from that run's weights)."""
    from benchmarks.harness import skipped_row
    from scratchgen.backend import backend_status, use_backend

    rows, data = [], None
    for backend in backends:
        ok, why = backend_status(backend)
        if backend in ("cupy", "numba-cuda"):
            ok, why = False, "GPU backends are measured by benchmarks/gpu.py (no device placement of the DCGAN here)"
        if not ok:
            rows.append(skipped_row("models", "dcgan_train_step", why, backend=backend, threads=threads))
            continue
        data = data or _fashion()
        with use_backend(backend):
            rows += _run_backend(backend, data, quick, threads, steps, seed, log)
    return rows


def _run_backend(backend: str, data, quick: bool, threads: int, steps: Optional[int], seed: int, log) -> List[Dict]:
    from benchmarks.harness import measure, measure_pair, row_from_pair

    repeat = steps or (3 if quick else 10)
    ours = build_ours(seed)
    torch, reason = _load_torch(threads)
    batches = [data.train.x[i : i + BATCH_SIZE] for i in range(0, 20 * BATCH_SIZE, BATCH_SIZE)]
    state = {"ours": 0, "peer": 0}
    rng_ours, rng_peer = np.random.default_rng(seed + 1), np.random.default_rng(seed + 1)

    def ours_step():
        ours.train_step(batches[state["ours"] % len(batches)], None, rng_ours)
        state["ours"] += 1

    fields = dict(suite="models", name="dcgan_train_step", size=f"28x28 batch {BATCH_SIZE}", backend=backend,
                  device="cpu", threads=threads, unit="s/step", peer="torch")
    if torch is None:
        return [row_from_pair(measure(ours_step, repeat, target_s=0.0), **fields, reason=f"no peer: {reason}")]
    peer = TorchDCGAN(torch, ours)

    def peer_step():
        peer.train_step(batches[state["peer"] % len(batches)], rng_peer)
        state["peer"] += 1

    result = measure_pair(ours_step, peer_step, repeat, target_s=0.0)
    row = row_from_pair(result, **fields)
    log(f"dcgan train step, {backend}, {threads} thread(s): scratchgen {row['median_s']:.4f} s, "
        f"PyTorch {row['peer_median_s']:.4f} s, ratio {row['ratio']:.2f}")
    return [row]


# ---- quality ---------------------------------------------------------------------------------------
def quality(steps: int = 1500, threads: int = 1, seed: int = 0, out_dir: str = "runs/dcgan_fashion",
            classifier_path: Optional[str] = None, samples: int = 10000, log=print) -> Dict:
    """Train both sides ``steps`` steps on the same batches and noise; score 10,000 samples of each."""
    from scratchgen.evaluation.parzen import parzen_evaluation
    from scratchgen.evaluation.sample_quality import sample_quality_report
    from scratchgen.models.classifiers.lenet import load_or_train_classifier
    from scratchgen.plots import save_image_grid

    os.makedirs(out_dir, exist_ok=True)
    data = _fashion()
    classifier, classifier_info = load_or_train_classifier(
        classifier_path or os.path.join(out_dir, "classifier_fashion.npz"), data, epochs=3, seed=0, verbose=False)
    log(f"classifier test accuracy {classifier_info['test_accuracy']:.4f}")
    ours = build_ours(seed)
    torch, reason = _load_torch(threads)
    peer = TorchDCGAN(torch, ours) if torch is not None else None
    rng_ours, rng_peer = np.random.default_rng(seed + 1), np.random.default_rng(seed + 1)
    order_rng = np.random.default_rng(seed + 2)
    order = np.concatenate([order_rng.permutation(len(data.train.x)) for _ in range(steps * BATCH_SIZE // len(data.train.x) + 1)])
    seconds = {"ours": 0.0, "peer": 0.0}
    for step in range(steps):
        x = data.train.x[order[step * BATCH_SIZE : (step + 1) * BATCH_SIZE]]
        start = time.perf_counter()
        losses = ours.train_step(x, None, rng_ours)
        seconds["ours"] += time.perf_counter() - start
        if peer is not None:
            start = time.perf_counter()
            peer_losses = peer.train_step(x, rng_peer)
            seconds["peer"] += time.perf_counter() - start
        if (step + 1) % 100 == 0 or step == 0:
            line = f"step {step + 1}: ours D {losses['d_loss']:.3f} G {losses['g_loss']:.3f}"
            if peer is not None:
                line += f" | torch D {peer_losses['d_loss']:.3f} G {peer_losses['g_loss']:.3f}"
            log(line, flush=True)
        if (step + 1) % 500 == 0:
            ours.save_pictures(out_dir, data, np.random.default_rng(0), tag=f"step{step + 1:05d}")
    reference = data.train.x[:samples]  # disjoint from the test images: the real-vs-real floor
    results = {"steps": steps, "threads": threads, "classifier": classifier_info}
    ours.save(os.path.join(out_dir, "dcgan_scratchgen.npz"))
    sides = {"scratchgen": (ours, seconds["ours"])}
    if peer is not None:
        sides["pytorch"] = (peer, seconds["peer"])
    else:
        results["pytorch"] = {"skipped": reason}
    for side, (model, total_seconds) in sides.items():
        generated = model.sample(samples, np.random.default_rng(seed + 4))
        report = sample_quality_report(classifier, generated, data.test.x, reference, np.random.default_rng(seed + 3))
        report["seconds_per_step"] = total_seconds / steps
        # Parzen window (Goodfellow et al. 2014), sigma on 1,000 validation images: continuity only.
        window = parzen_evaluation(generated, data.validation.x[:1000], data.test.x)
        report.update(parzen_sigma=window["sigma"], parzen_test_log_likelihood=window["test_log_likelihood"],
                      parzen_standard_error=window["test_standard_error"])
        results[side] = report
        save_image_grid(generated[:100], os.path.join(out_dir, f"samples_{side}.png"), nrow=10)
        log(f"{side}: " + json.dumps({k: v for k, v in report.items() if k != "class_histogram"}, default=float), flush=True)
    if peer is not None:
        results["fd_ratio_scratchgen_over_pytorch"] = results["scratchgen"]["classifier_fd"] / results["pytorch"]["classifier_fd"]
    ours.save_pictures(out_dir, data, np.random.default_rng(0), tag="final")
    with open(os.path.join(out_dir, "quality.json"), "w") as handle:
        json.dump(results, handle, indent=2, default=float)
    return results


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--backends", default="numpy", help="comma-separated scratchgen backends, e.g. numpy,numba")
    parser.add_argument("--repeat", type=int, default=None, help="timed steps per side (speed)")
    parser.add_argument("--quality", action="store_true", help="train both and score samples instead of timing")
    parser.add_argument("--steps", type=int, default=1500, help="training steps for --quality")
    parser.add_argument("--out", default="runs/dcgan_fashion")
    parser.add_argument("--classifier", default=None, help="cached classifier .npz (trained and saved if missing)")
    args = parser.parse_args(argv)
    for variable in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        if os.environ.get(variable) != str(args.threads):
            print(f"note: set {variable}={args.threads} before starting Python to pin NumPy's BLAS threads")
            break
    if args.quality:
        print(json.dumps(quality(args.steps, args.threads, out_dir=args.out, classifier_path=args.classifier), indent=2, default=float))
    else:
        backends = tuple(b.strip() for b in args.backends.split(",") if b.strip())
        print(json.dumps(run(quick=args.quick, threads=args.threads, steps=args.repeat, backends=backends), indent=2,
                         default=float))


if __name__ == "__main__":
    main()
