"""VAE and contractive-AE training on Fashion-MNIST: scratchgen vs PyTorch CPU, epoch by epoch.

Protocol (issue 4's speed and quality target), identical on both sides:
    VAE 784-400-20 (ReLU MLP; fc1 784->400, mu/logvar heads 400->20, decoder 20->400->784),
    Bernoulli decoder on the grey-level intensities (no binarisation), one eps per example,
    loss = (BCE summed over pixels + KL) averaged over the batch, Adam lr 1e-3, batch 128,
    the 60,000 official training images, shuffled each epoch; test -ELBO on the 10,000 test
    images (one eps per example, analytic KL), nats per image.
    CAE 784-256 sigmoid encoder, sigmoid decoder + BCE, lambda = 0.1 closed-form ||J||_F^2
    (PyTorch: the same closed form through autograd), same optimiser and batches.

Epochs are *interleaved*: scratchgen epoch 1, PyTorch epoch 1, scratchgen epoch 2, ... so slow
drift of the machine hits both alike; the ratio is the median of the per-epoch ratios. Our epoch
is ``model.fit(x, epochs=1)``, the user's loop (the time of its batch loop, as metrics.json
records it; the autoencoder's per-epoch refit of its code Gaussians is outside it, as in the CLI). Both use
``threads`` BLAS/OpenMP threads (pinned with threadpoolctl and ``torch.set_num_threads``).
Weights start U(-1/sqrt(fan_in), 1/sqrt(fan_in)) on both sides (PyTorch's nn.Linear default; our
biases start at 0, PyTorch's uniform too), each from its own generator: the quality target is
"test -ELBO within 1%", not bit-equality.

    python -m benchmarks.bench_vae [--epochs 10] [--quick] [--threads 1] [--backends numpy,numba]
    run(epochs=10, quick=False, threads=1, backends=("numpy",)) -> list of row dicts (benchmarks/harness.py keys)
"""
from __future__ import annotations

import argparse
import json
import time
from typing import Dict, List, Optional

import numpy as np

BATCH_SIZE = 128
LR = 1e-3


def _load_fashion(quick: bool):
    from scratchgen.data import load_dataset

    data = load_dataset("fashion-mnist", val_fraction=0.0)
    x_train = data.train.x.reshape(len(data.train.x), -1)
    x_test = data.test.x.reshape(len(data.test.x), -1)
    if quick:
        x_train, x_test = x_train[:2048], x_test[:1000]
    return np.ascontiguousarray(x_train, np.float32), np.ascontiguousarray(x_test, np.float32), data.source


# ---- scratchgen side -------------------------------------------------------------------------------
class _OursModel:
    """What both scratchgen rows share: one epoch through ``model.fit``, the loop ``scratchgen train``
    runs (shuffled batches, the optimiser step, the per-epoch hook); its time is the loop's own
    (``history[-1]["seconds"]``, what the CLI writes to metrics.json), and the model keeps training
    from one call to the next."""

    def epoch(self, x: np.ndarray):
        """(mean train loss, seconds of the epoch's loop)."""
        self.calls = getattr(self, "calls", 0) + 1
        self.model.fit(x.reshape(len(x), 1, 28, 28), epochs=1, batch_size=BATCH_SIZE, rng=self.calls)
        record = self.model.history[-1]
        return record["train_loss"], record["seconds"]


class _OursVAE(_OursModel):
    def __init__(self, seed: int):
        from scratchgen.models.vae.vae import VAE

        self.model = VAE((1, 28, 28), hidden=400, latent=20, activation="relu", decoder="bernoulli", lr=LR, rng=seed)
        self.rng = np.random.default_rng(seed + 1)

    def test_neg_elbo(self, x: np.ndarray) -> float:
        from scratchgen.evaluation.likelihood import evaluate_elbo

        return float(-evaluate_elbo(self.model, x, np.random.default_rng(1234), batch_size=1000).mean())

    def test_likelihood(self, x: np.ndarray, iwae) -> Dict[str, float]:
        """-L_k (importance-weighted bound) for each (k, number of test examples) in ``iwae``, and active units."""
        from scratchgen.evaluation.likelihood import active_units, evaluate_elbo, iwae_bound

        out = {}
        for k, examples in iwae:
            m = len(x) if examples is None else min(examples, len(x))
            if m < len(x):  # the -ELBO of the same examples, so the two numbers compare
                out[f"test_neg_elbo_first{m}"] = float(-evaluate_elbo(self.model, x[:m], np.random.default_rng(1234)).mean())
            start = time.perf_counter()
            bound = iwae_bound(self.model, x[:m], k, np.random.default_rng(k), batch_size=100, max_rows=10_000)
            out[f"test_neg_iwae_k{k}"] = float(-bound.mean())
            out[f"test_neg_iwae_k{k}_examples"] = m
            out[f"test_neg_iwae_k{k}_seconds"] = time.perf_counter() - start
        out["active_units"] = active_units(self.model, x)["active"]
        return out


class _OursCAE(_OursModel):
    def __init__(self, seed: int):
        from scratchgen.models.autoencoders.contractive import ContractiveAutoencoder

        self.model = ContractiveAutoencoder((1, 28, 28), hidden=256, contraction=0.1, lr=LR, rng=seed)
        self.rng = np.random.default_rng(seed + 1)

    def test_metrics(self, x: np.ndarray) -> Dict[str, float]:
        """Reconstruction BCE, mean ||J||_F and the training objective BCE + 0.1 ||J||_F^2 (per image)."""
        from scratchgen import no_grad

        metrics = self.model.evaluate(x, None, np.random.default_rng(0))
        with no_grad():
            total = sum(float(self.model.loss(x[i : i + 1000])[0].data) * len(x[i : i + 1000]) for i in range(0, len(x), 1000))
        metrics["loss"] = total / len(x)
        return metrics


# ---- PyTorch side -----------------------------------------------------------------------------------
def _torch_vae(torch, seed: int):
    nn, F = torch.nn, torch.nn.functional
    torch.manual_seed(seed)

    class TorchVAE(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc1, self.fc21, self.fc22 = nn.Linear(784, 400), nn.Linear(400, 20), nn.Linear(400, 20)
            self.fc3, self.fc4 = nn.Linear(20, 400), nn.Linear(400, 784)

        def loss(self, x):
            h = F.relu(self.fc1(x))
            mu, logvar = self.fc21(h), self.fc22(h)
            z = mu + torch.exp(0.5 * logvar) * torch.randn_like(mu)
            logits = self.fc4(F.relu(self.fc3(z)))
            bce = F.binary_cross_entropy_with_logits(logits, x, reduction="sum")
            kl = 0.5 * torch.sum(mu.pow(2) + logvar.exp() - logvar - 1)
            return (bce + kl) / x.shape[0]

    return TorchVAE()


def _torch_cae(torch, seed: int):
    nn, F = torch.nn, torch.nn.functional
    torch.manual_seed(seed)

    class TorchCAE(nn.Module):
        def __init__(self):
            super().__init__()
            self.encoder, self.decoder = nn.Linear(784, 256), nn.Linear(256, 784)

        def loss(self, x):
            h = torch.sigmoid(self.encoder(x))
            bce = F.binary_cross_entropy_with_logits(self.decoder(h), x, reduction="sum")
            slope = h * (1 - h)
            jacobian = (slope * slope) @ (self.encoder.weight ** 2).sum(dim=1)  # closed form, (N,)
            return (bce + 0.1 * jacobian.sum()) / x.shape[0]

    return TorchCAE()


class _TorchRunner:
    def __init__(self, torch, model, seed: int):
        self.torch, self.model = torch, model
        self.optimizer = torch.optim.Adam(model.parameters(), lr=LR)
        self.generator = np.random.default_rng(seed + 1)

    def epoch(self, x) -> float:
        torch = self.torch
        order = torch.from_numpy(self.generator.permutation(len(x)))
        total = 0.0
        for start in range(0, len(x), BATCH_SIZE):
            batch = x[order[start : start + BATCH_SIZE]]
            self.optimizer.zero_grad()
            loss = self.model.loss(batch)
            loss.backward()
            self.optimizer.step()
            total += loss.item() * len(batch)
        return total / len(x)

    def test_loss(self, x) -> float:
        torch = self.torch
        torch.manual_seed(1234)
        with torch.no_grad():
            return float(sum(float(self.model.loss(x[i : i + 1000])) * len(x[i : i + 1000]) for i in range(0, len(x), 1000)) / len(x))


# ---- the run ----------------------------------------------------------------------------------------
def _summary(times: List[float]) -> Dict[str, float]:
    values = np.asarray(times, dtype=np.float64)
    q1, median, q3 = np.percentile(values, [25, 50, 75])
    return {"median_s": float(median), "q1_s": float(q1), "q3_s": float(q3), "min_s": float(values.min()),
            "max_s": float(values.max()), "repeats": int(values.size)}


def _interleaved(name: str, ours, peer, x_train, x_train_torch, epochs: int, threads: int, log) -> Dict:
    """Alternate epochs ours/peer; returns the per-epoch times and train losses of both."""
    ours_times, peer_times, ours_losses, peer_losses = [], [], [], []
    for epoch in range(1, epochs + 1):
        loss, seconds = ours.epoch(x_train)
        ours_losses.append(loss)
        ours_times.append(seconds)
        if peer is not None:
            start = time.perf_counter()
            peer_losses.append(peer.epoch(x_train_torch))
            peer_times.append(time.perf_counter() - start)
        log(f"[{name}, {threads} thread(s)] epoch {epoch}: scratchgen {ours_times[-1]:.2f} s (train loss {ours_losses[-1]:.2f})"
            + (f", pytorch {peer_times[-1]:.2f} s (train loss {peer_losses[-1]:.2f})" if peer is not None else ""))
    return {"ours_times": ours_times, "peer_times": peer_times, "ours_losses": ours_losses, "peer_losses": peer_losses}


def _row(name: str, size: str, backend: str, threads: int, result: Dict, metrics: Dict, peer_reason: Optional[str]) -> Dict:
    from benchmarks.harness import make_row

    # The first epoch (Numba's compilation or cache loading, cold caches) is reported apart, as
    # first_call_s; the median and the ratio are over the epochs after it (all of them if only one).
    skip = 1 if len(result["ours_times"]) > 1 else 0
    ours = _summary(result["ours_times"][skip:])
    fields = dict(suite="models", name=name, size=size, backend=backend, device="cpu", threads=threads, unit="s/epoch",
                  first_call_s=result["ours_times"][0], metrics=metrics,
                  extra={"train_loss_per_epoch": result["ours_losses"], "seconds_per_epoch": result["ours_times"]}, **ours)
    if result["peer_times"]:
        peer = _summary(result["peer_times"][skip:])
        ratios = np.asarray(result["ours_times"][skip:]) / np.asarray(result["peer_times"][skip:])
        q1, median, q3 = np.percentile(ratios, [25, 50, 75])
        fields.update(peer="pytorch", peer_median_s=peer["median_s"], peer_q1_s=peer["q1_s"], peer_q3_s=peer["q3_s"],
                      peer_min_s=peer["min_s"], peer_max_s=peer["max_s"], peer_first_call_s=result["peer_times"][0],
                      ratio=float(median), ratio_q1=float(q1), ratio_q3=float(q3),
                      ratio_method="median of per-epoch ratios (epochs interleaved)")
        fields["extra"].update(peer_train_loss_per_epoch=result["peer_losses"], peer_seconds_per_epoch=result["peer_times"])
    else:
        fields.update(reason=f"PyTorch side skipped: {peer_reason}")
    return make_row(**fields)


def run(epochs: int = 10, quick: bool = False, threads: int = 1, models=("vae", "cae"), seed: int = 0,
        iwae=((100, None), (5000, 200)), backends=("numpy",), log=print) -> List[Dict]:
    """Train the VAE (and CAE) on both frameworks with interleaved epochs; one row per model and backend.

    ``iwae``: (k, test examples or None for all) pairs for scratchgen's importance-weighted bounds
    (skipped when ``quick``). ``backends``: scratchgen kernel backends to run ("numpy", "numba");
    each gets its own interleaved PyTorch run."""
    from scratchgen.backend import BackendUnavailableError, use_backend

    rows = []
    for backend in backends:
        if backend in ("cupy", "numba-cuda"):
            from benchmarks.harness import skipped_row

            rows.append(skipped_row("models", "vae_fashion_mnist", "bench_vae measures the CPU protocol only "
                                    "(no device placement of model and data here)", backend=backend, threads=threads))
            continue
        try:
            with use_backend(backend):
                rows += _run_backend(backend, epochs, quick, threads, models, seed, iwae, log)
        except BackendUnavailableError as error:
            from benchmarks.harness import skipped_row

            rows.append(skipped_row("models", "vae_fashion_mnist", str(error), backend=backend, threads=threads))
    return rows


def _run_backend(backend, epochs, quick, threads, models, seed, iwae, log) -> List[Dict]:
    from benchmarks.harness import PeerMissing, load_peer, pin_threads

    pin_threads(threads)
    if quick:
        epochs = min(epochs, 2)
    x_train, x_test, source = _load_fashion(quick)
    try:
        torch = load_peer("torch")
        torch.set_num_threads(threads)
        x_train_torch, x_test_torch = torch.from_numpy(x_train), torch.from_numpy(x_test)
        peer_reason = None
    except PeerMissing as error:
        torch, x_train_torch, x_test_torch, peer_reason = None, None, None, str(error)
    rows = []
    if "vae" in models:
        ours = _OursVAE(seed)
        peer = _TorchRunner(torch, _torch_vae(torch, seed), seed) if torch is not None else None
        result = _interleaved(f"vae 784-400-20, {backend}", ours, peer, x_train, x_train_torch, epochs, threads, log)
        metrics = {"test_neg_elbo": ours.test_neg_elbo(x_test), "epochs": epochs, "train_examples": len(x_train),
                   "test_examples": len(x_test), "data": source}
        if peer is not None:
            metrics["peer_test_neg_elbo"] = peer.test_loss(x_test_torch)
            metrics["neg_elbo_relative_difference"] = metrics["test_neg_elbo"] / metrics["peer_test_neg_elbo"] - 1.0
        if not quick:
            metrics.update(ours.test_likelihood(x_test, iwae))
        rows.append(_row("vae_fashion_mnist", "784-400-20 b128", backend, threads, result, metrics, peer_reason))
    if "cae" in models:
        ours = _OursCAE(seed)
        peer = _TorchRunner(torch, _torch_cae(torch, seed), seed) if torch is not None else None
        result = _interleaved(f"cae 784-256, {backend}", ours, peer, x_train, x_train_torch, epochs, threads, log)
        test = ours.test_metrics(x_test)
        metrics = {"test_loss": test["loss"], "test_reconstruction": test["reconstruction"],
                   "test_jacobian_frobenius": test["jacobian_frobenius"], "epochs": epochs}
        if peer is not None:
            metrics["peer_test_loss"] = peer.test_loss(x_test_torch)
        rows.append(_row("cae_fashion_mnist", "784-256 lambda0.1 b128", backend, threads, result, metrics, peer_reason))
    return rows


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--models", default="vae,cae")
    parser.add_argument("--backends", default="numpy", help="comma-separated scratchgen backends, e.g. numpy,numba")
    parser.add_argument("--json", default=None, help="write the rows here")
    args = parser.parse_args(argv)
    rows = run(epochs=args.epochs, quick=args.quick, threads=args.threads, models=tuple(args.models.split(",")),
               backends=tuple(args.backends.split(",")))
    for row in rows:
        peer = f", pytorch {row['peer_median_s']:.2f} s/epoch, ratio {row['ratio']:.2f}" if row.get("peer_median_s") else ""
        if row["status"] != "ok":
            print(f"{row['name']} ({row['backend']}): {row['status']}: {row['reason']}")
            continue
        print(f"{row['name']} ({row['backend']}): scratchgen {row['median_s']:.2f} s/epoch{peer}; metrics {json.dumps(row['metrics'], default=str)}")
    if args.json:
        with open(args.json, "w") as handle:
            json.dump(rows, handle, indent=2, default=str)


if __name__ == "__main__":
    main()
