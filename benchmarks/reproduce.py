"""``python -m benchmarks reproduce [--quick] [--only KEY,...]``: every README figure, rerun, claimed vs measured.

Each README figure is a ``Figure`` here: the command a user runs to get it (the CLI where one
exists), the seeds, where the number is read (``metrics.json`` of the run, or a script's JSON),
and what the README claims (a mean, and the spread over the seeds). ``reproduce`` runs them
(``--quick``: the cheap ones, a few minutes on one core), prints a table of claimed against
measured, writes it as JSON and markdown, and exits 1 if a figure falls outside its claim by
more than its tolerance (2 standard deviations of the claim's spread, or the stated tolerance).

The commands run in child processes with every thread pool pinned to one thread, the numpy
backend, and the data found the usual way (``--data-root`` / ``$SCRATCHGEN_DATA``; a figure whose
data is missing is reported as skipped with the reason, never as a failure).
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import math
import os
import subprocess
import sys
import tempfile
import time
from typing import Callable, Dict, List, Optional, Sequence

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@dataclasses.dataclass
class Figure:
    key: str
    readme: str  # what the README says the number is
    command: List[str]  # after "scratchgen" for the CLI; ["-m", module, ...] for a script
    read: Callable[[str], float]  # run directory -> the number
    claim: Optional[float] = None  # the README's mean over the seeds
    spread: Optional[float] = None  # its standard deviation over the seeds
    tolerance: Optional[float] = None  # an absolute tolerance instead of 2 spreads
    seeds: Sequence[int] = (0,)
    quick: bool = False  # part of --quick
    needs: Optional[str] = None  # a dataset that must be found ("mnist", "fashion-mnist")

    @property
    def is_cli(self) -> bool:
        return self.command[0] != "-m"

    def argv(self, out: str, seed: int) -> List[str]:
        prefix = [sys.executable, "-m", "scratchgen"] if self.is_cli else [sys.executable]
        extra = ["--out", out, "--seed", str(seed)] + (["--no-progress", "--no-pictures"] if self.is_cli else [])
        return prefix + list(self.command) + extra

    def claimed(self) -> Optional[str]:
        """The claim as the README writes it: "15.18 ± 0.13" (mean ± sd over seeds), or "0.01112"."""
        if self.claim is None:
            return None
        return f"{self.claim:.4g}" + (f" ± {self.spread:.2g}" if self.spread else "")

    def shown(self) -> str:
        return ("scratchgen " if self.is_cli else "python ") + " ".join(self.command) + " --seed S"


def test_metric(name: str) -> Callable[[str], float]:
    """The test metric ``name`` of a CLI run (metrics.json's ``test``)."""
    return lambda out: float(json.load(open(os.path.join(out, "metrics.json")))["test"][name])


def json_value(*path: str, file: str = "results.json") -> Callable[[str], float]:
    """A number in a script's JSON output (written into the run directory)."""
    def read(out: str) -> float:
        value = json.load(open(os.path.join(out, file)))
        for key in path:
            value = value[key]
        return float(value)
    return read


MNIST = ["--dataset", "mnist"]
FASHION = ["--dataset", "fashion-mnist"]

FIGURES: List[Figure] = [
    Figure("ae", "Autoencoder: test BCE per image (nats), digits, 50 epochs (the main job)",
           ["train", "ae"], test_metric("reconstruction"), seeds=(0, 1, 2), quick=True, claim=15.18, spread=0.13),
    Figure("ae-jacobian", "plain autoencoder, hidden 64: mean ||J_f(x)||_F on test, digits",
           ["train", "ae", "--hidden", "64"], test_metric("jacobian_frobenius"), seeds=(0, 1, 2), quick=True, claim=10.23, spread=0.14),
    Figure("contractive-jacobian", "contractive autoencoder (lambda 0.1), hidden 64: mean ||J_f(x)||_F on test, digits",
           ["train", "contractive-ae"], test_metric("jacobian_frobenius"), seeds=(0, 1, 2), quick=True, claim=2.628, spread=0.015),
    Figure("denoising-noisy", "denoising AE (Gaussian, sigma 0.3): test PSNR of the noisy images (dB), digits",
           ["train", "denoising-ae"], test_metric("psnr_noisy"), seeds=(0, 1, 2), quick=True, claim=12.94, spread=0.028),
    Figure("denoising-denoised", "denoising AE (Gaussian, sigma 0.3): test PSNR of the denoised images (dB), digits",
           ["train", "denoising-ae"], test_metric("psnr_denoised"), seeds=(0, 1, 2), quick=True, claim=17.75, spread=0.12),
    Figure("rbm16-pcd1", "Bernoulli RBM, 16 hidden, PCD-1, 50 epochs: test log-likelihood (nats, exact log Z), MNIST split",
           ["train", "rbm", *MNIST, "--hidden", "16", "--epochs", "50"], test_metric("log_likelihood"),
           seeds=(0, 1, 2), quick=True, needs="mnist", claim=-157.0, spread=1.9),
    Figure("rbm16-cd1", "Bernoulli RBM, 16 hidden, CD-1, 50 epochs: test log-likelihood (nats), MNIST split",
           ["train", "rbm", *MNIST, "--hidden", "16", "--epochs", "50", "--persistent", "false"],
           test_metric("log_likelihood"), seeds=(0, 1, 2), needs="mnist", claim=-172.7, spread=1.4),
    Figure("rbm16-cd10", "Bernoulli RBM, 16 hidden, CD-10, 50 epochs: test log-likelihood (nats), MNIST split",
           ["train", "rbm", *MNIST, "--hidden", "16", "--epochs", "50", "--persistent", "false", "--k", "10"],
           test_metric("log_likelihood"), seeds=(0, 1, 2), needs="mnist", claim=-157.4, spread=1.2),
    Figure("vae-fashion", "VAE 784-400-20: test -ELBO (nats) after 10 epochs, Fashion-MNIST, dynamic binarisation",
           ["train", "vae", *FASHION, "--epochs", "10", "--binarize", "dynamic"], test_metric("neg_elbo"),
           seeds=(0, 1, 2), needs="fashion-mnist", claim=243.3, spread=0.12),
    Figure("m2-error", "M2, 100 labels: test error of q(y | x), MNIST split, 50 epochs",
           ["train", "m2", *MNIST], test_metric("error"), seeds=(0,), needs="mnist", claim=0.154,
           tolerance=0.03),
    Figure("srgan-psnr", "SR-GAN 14 -> 28: test PSNR (dB) on 2,000 Fashion-MNIST test images after 600 steps",
           ["-m", "scratchgen.experiments.gan_family", "--models", "srgan", "--steps", "600"],
           json_value("srgan", "psnr_srgan"), seeds=(0,), needs="fashion-mnist", claim=21.24,
           tolerance=0.5),
    Figure("cgan-agreement", "conditional GAN: how often a classifier agrees with the requested label, 1,000 steps",
           ["-m", "scratchgen.experiments.gan_family", "--models", "cgan", "--steps", "1000"],
           json_value("cgan", "classifier_agrees_with_label"), seeds=(0,), needs="fashion-mnist",
           claim=0.8382, tolerance=0.05),
    Figure("gan-1d", "1-D GAN: max |D - D*| on the data's support after 2,000 steps",
           ["-m", "scratchgen.experiments.gan_1d"], json_value("max_abs_error_vs_d_star"), seeds=(0,), quick=True, claim=0.01112, tolerance=0.005),
    Figure("gan-1d-value", "1-D GAN: the trained discriminator's value V(D, G) when p_g = p_data (-log 4 = -1.38629)",
           ["-m", "scratchgen.experiments.gan_1d"], json_value("value_equal_distributions_trained"), seeds=(0,), quick=True, claim=-1.386, tolerance=0.002),
]


def dataset_found(name: str) -> Optional[str]:
    """None if ``load_dataset(name)`` finds the data, else why not (one line)."""
    from scratchgen.data import load_dataset

    try:
        load_dataset(name)
        return None
    except Exception as error:  # FileNotFoundError, DataFileError: the reason is the message
        return str(error).splitlines()[0]


def run_figure(figure: Figure, work: str, log=print, done: Optional[Dict] = None) -> Dict:
    """Run (or reuse: ``done`` maps a command and seed to its finished run) the figure's command per seed."""
    row = {"key": figure.key, "readme": figure.readme, "command": figure.shown(), "seeds": list(figure.seeds),
           "claim": figure.claim, "spread": figure.spread, "claimed": figure.claimed()}
    if figure.needs:
        missing = dataset_found(figure.needs)
        if missing:
            return {**row, "status": "skipped", "reason": missing}
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [ROOT, os.environ.get("PYTHONPATH")])),
               SCRATCHGEN_BACKEND="numpy", OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1", MKL_NUM_THREADS="1",
               NUMBA_NUM_THREADS="1")
    values, start, done = [], time.perf_counter(), {} if done is None else done
    for seed in figure.seeds:
        run_key = (tuple(figure.command), seed)
        if run_key not in done:  # two figures read one run (a denoising AE's noisy and denoised PSNR)
            out = os.path.join(work, f"{figure.key}-{seed}")
            result = subprocess.run(figure.argv(out, seed), cwd=ROOT, env=env, capture_output=True, text=True)
            if result.returncode != 0:
                return {**row, "status": "error", "reason": (result.stderr.strip().splitlines() or ["?"])[-1]}
            done[run_key] = out
        values.append(figure.read(done[run_key]))
        log(f"  {figure.key} seed {seed}: {values[-1]:.4g}")
    mean = sum(values) / len(values)
    sd = math.sqrt(sum((v - mean) ** 2 for v in values) / (len(values) - 1)) if len(values) > 1 else 0.0
    row.update(status="measured", values=values, measured=mean, measured_spread=sd, seconds=time.perf_counter() - start)
    if figure.claim is not None:
        allowed = figure.tolerance if figure.tolerance is not None else 2 * max(figure.spread or 0.0, sd, 1e-9) + 1e-6
        row["agrees"] = abs(mean - figure.claim) <= allowed
        row["allowed"] = allowed
    return row


def markdown(rows: List[Dict]) -> str:
    lines = ["| figure | command | README | measured | agrees |", "|---|---|---|---|---|"]
    for r in rows:
        claim = r.get("claimed") or "-"
        if r["status"] == "measured":
            got = f"{r['measured']:.4g}" + (f" ± {r['measured_spread']:.2g}" if len(r["values"]) > 1 else "")
            verdict = {True: "yes", False: "NO", None: "-"}[r.get("agrees")]
        else:
            got, verdict = f"{r['status']}: {r['reason']}", "-"
        lines.append(f"| {r['readme']} | `{r['command']}` | {claim} | {got} | {verdict} |")
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks reproduce", description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="only the cheap figures (a few minutes)")
    parser.add_argument("--only", default=None, help="comma-separated figure keys")
    parser.add_argument("--list", action="store_true", help="list the figures and their commands")
    parser.add_argument("--out", default=os.path.join(ROOT, "benchmarks", "results"), help="where reproduce.json/.md go")
    args = parser.parse_args(argv)
    figures = [f for f in FIGURES if (not args.quick or f.quick) and (not args.only or f.key in args.only.split(","))]
    if args.list:
        for f in figures:
            print(f"{f.key:22s} {f.shown()}   ({len(f.seeds)} seed(s){', quick' if f.quick else ''})")
        return 0
    os.makedirs(args.out, exist_ok=True)
    rows, done = [], {}
    with tempfile.TemporaryDirectory(prefix="scratchgen-reproduce-") as work:
        for figure in figures:
            print(f"{figure.key}: {figure.shown()}", flush=True)
            rows.append(run_figure(figure, work, done=done))
    text = markdown(rows)
    print(text)
    with open(os.path.join(args.out, "reproduce.json"), "w") as handle:
        json.dump(rows, handle, indent=2)
    with open(os.path.join(args.out, "reproduce.md"), "w") as handle:
        handle.write(text + "\n")
    failed = [r["key"] for r in rows if r.get("agrees") is False or r["status"] == "error"]
    if failed:
        print(f"reproduce: {', '.join(failed)} did not reproduce", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
