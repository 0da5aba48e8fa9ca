"""How noisy is each ELBO gradient estimator on a trained VAE? Variance per parameter against samples.

The quantity estimated: the gradient, with respect to the encoder's parameters phi, of the
reconstruction term of the ELBO for a fixed batch of N images,

    G = grad_phi (1/N) sum_n E_{q(z | x_n)}[ f_n(z) ],     f_n(z) = log p(x_n | z)

(the KL term has a closed form and needs no estimator). Every estimator reaches phi the same
way - a gradient with respect to (mu_n, logvar_n), pushed through the encoder by backprop - and
differs only in that first gradient (``scratchgen/ops/gradient_estimators.py``):

    reparameterization       backward through z = mu + e^{v/2} eps and the decoder
    score                    REINFORCE, f(z) grad log q(z) (``score_function_surrogate``)
    score_leave_one_out      REINFORCE with the mean of f over the other S - 1 samples as baseline
    score_mean_baseline      REINFORCE with b_n ~ E_q[f_n], estimated once per image from
                             ``--baseline-draws`` independent samples and then held fixed

For S samples per image, R independent repetitions give R estimates of G; their variance per
parameter element, averaged over the elements of each parameter tensor, is what the table and
the plot show (and the squared mean gradient beside it, for scale: the signal-to-noise ratio is
their quotient). All four are unbiased, so their means agree up to noise: the ``bias_z`` column
is, over every encoder element, the mean of |m - m_rep| / sqrt(v / R + v_rep / R) (m, v: an
estimator's mean and variance over its R repetitions; rep: the reparameterised run at the same
S, independent draws). Without bias each term is |N(0, 1)|-like, whose mean is sqrt(2 / pi) = 0.80.

    python -m scratchgen.experiments.elbo_gradient_variance CHECKPOINT [--images 16] [--samples 1,2,5,10,50,100]
                                                           [--repeats 100] [--out runs/elbo_gradient_variance]

CHECKPOINT: a ``scratchgen train vae`` checkpoint (MLP VAE; any decoder). The test images are the
first ``--images`` of the test split of the dataset it was trained on, binarised as in training.
"""
from __future__ import annotations

import argparse
import json
import os
import time
from typing import Dict, List, Sequence

import numpy as np

from .. import ops
from ..data import binarize, load_dataset
from ..grad_mode import no_grad
from ..models import load_model
from ..ops.gradient_estimators import leave_one_out_baseline, score_function_surrogate
from ..tensor import Tensor

__all__ = ["ESTIMATORS", "log_likelihoods", "estimate_gradient", "gradient_variances", "main"]

ESTIMATORS = ("reparameterization", "score", "score_leave_one_out", "score_mean_baseline")


def encoder_parameters(model) -> Dict[str, object]:
    """The parameters the estimators are compared on: every parameter of the encoder and its two heads."""
    named = dict(model.named_parameters())
    return {name: p for name, p in named.items() if name.startswith(("encoder.", "mu_head.", "logvar_head."))}


def log_likelihoods(model, x, z) -> np.ndarray:
    """f(z) = log p(x_n | z_sn) for samples z (S, N, L) of the N images x (N, D): (S, N), no graph."""
    s, n, latent = z.shape
    with no_grad():
        out = model.decode(z.reshape(s * n, latent)).data.reshape(s, n, -1)
        return -model.reconstruction_nll(Tensor(out), x, reduction="none").data.sum(axis=2)


def estimate_gradient(model, x, eps, estimator: str, baseline=None) -> Dict[str, np.ndarray]:
    """One estimate of G from the noise eps (S, N, L): {parameter name: gradient array}.

    ``baseline``: (N,) the fixed b_n of "score_mean_baseline".
    """
    parameters = encoder_parameters(model)
    for p in parameters.values():
        p.grad = None
    mu, logvar = model.encode(x)
    if estimator == "reparameterization":
        z = ops.reparameterize(mu, logvar, eps)  # (S, N, L), differentiable in mu and logvar
        s, n, latent = eps.shape
        out = ops.reshape(model.decode(ops.reshape(z, (s * n, latent))), (s, n, -1))
        # -mean_{s, n} f: the "sum" over (S, N, D) divided by S N
        objective = model.reconstruction_nll(out, x, reduction="sum") * (1.0 / (s * n))
    else:
        z = mu.data + np.exp(0.5 * logvar.data) * eps  # samples, held constant by the surrogate
        f = log_likelihoods(model, x, z)
        if estimator == "score":
            weights = f
        elif estimator == "score_leave_one_out":
            weights = f - leave_one_out_baseline(f)
        elif estimator == "score_mean_baseline":
            weights = f - np.asarray(baseline)[None, :]
        else:
            raise ValueError(f"estimate_gradient: estimator must be one of {', '.join(ESTIMATORS)}, got {estimator!r}")
        objective = -score_function_surrogate(mu, logvar, z, weights.astype(mu.dtype))  # batch_sum: mean over N
    objective.backward()
    # the gradient of E[f] (ascent direction): minus the gradient of the objective minimised above
    return {name: -p.grad.astype(np.float64) for name, p in parameters.items()}


def gradient_variances(model, x, samples: Sequence[int], repeats: int, rng: np.random.Generator, baseline_draws: int = 1000,
                       log=print) -> List[Dict]:
    """For every S in ``samples`` and every estimator: per parameter tensor, the mean (over its elements)
    of the variance over ``repeats`` estimates, and the mean squared mean gradient. A list of rows."""
    latent = model.latent_dim
    x = model.as_flat(x)
    with no_grad():
        mu, logvar = (t.data for t in model.encode(x))
    z = mu + np.exp(0.5 * logvar) * rng.standard_normal((baseline_draws,) + mu.shape).astype(mu.dtype)
    baseline = log_likelihoods(model, x, z).mean(axis=0)  # b_n: E_q[f_n] from independent draws, then fixed
    model.decoder.requires_grad_(False)  # only the encoder's gradient is compared
    rows, reference = [], {}
    try:
        for s in samples:
            for estimator in ESTIMATORS:
                if estimator == "score_leave_one_out" and s < 2:
                    continue
                start = time.perf_counter()
                draws = [estimate_gradient(model, x, rng.standard_normal((s, len(x), latent)).astype(model.dtype),
                                           estimator, baseline) for _ in range(repeats)]
                row = {"samples": int(s), "estimator": estimator}
                means, variances = [], []
                for name in draws[0]:
                    stacked = np.stack([d[name] for d in draws])
                    means.append(stacked.mean(axis=0).ravel())
                    variances.append(stacked.var(axis=0, ddof=1).ravel())
                    row[f"variance/{name}"] = float(variances[-1].mean())
                    row[f"squared_mean/{name}"] = float((means[-1] ** 2).mean())
                mean, variance = np.concatenate(means), np.concatenate(variances)
                if estimator == "reparameterization":
                    reference[s] = (mean, variance)
                    row["bias_z"] = None
                else:
                    spread = np.sqrt((variance + reference[s][1]) / repeats)
                    moving = spread > 0  # elements whose gradient is exactly 0 every time (dead units) say nothing
                    row["bias_z"] = float((np.abs(mean - reference[s][0])[moving] / spread[moving]).mean())
                rows.append(row)
                log(f"S={s:4d} {estimator:22s} " + "  ".join(f"{k.split('/')[1]} {v:.3g}" for k, v in row.items()
                                                             if k.startswith("variance/")) +
                    f"  bias_z {row['bias_z']} ({time.perf_counter() - start:.1f} s)")
    finally:
        model.decoder.requires_grad_(True)
    return rows


def markdown_table(rows: List[Dict], parameters: Sequence[str]) -> str:
    lines = ["| S | estimator | " + " | ".join(f"Var {p}" for p in parameters) + " | bias_z |",
             "|---:|---|" + "---:|" * (len(parameters) + 1)]
    for row in rows:
        lines.append(f"| {row['samples']} | {row['estimator']} | "
                     + " | ".join(f"{row['variance/' + p]:.3g}" for p in parameters)
                     + (" | - |" if row["bias_z"] is None else f" | {row['bias_z']:.2f} |"))
    signal = {p: max(r[f"squared_mean/{p}"] for r in rows if r["estimator"] == "reparameterization") for p in parameters}
    lines.append("| | (squared mean gradient, reparameterised, largest S) | "
                 + " | ".join(f"{signal[p]:.3g}" for p in parameters) + " | |")
    return "\n".join(lines)


def plot(rows: List[Dict], parameters: Sequence[str], path: str, title: str) -> str:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from ..plots import save_figure

    figure, axes = plt.subplots(1, len(parameters), figsize=(4.2 * len(parameters), 3.8), squeeze=False)
    for axis, parameter in zip(axes[0], parameters):
        for estimator, marker in zip(ESTIMATORS, "osv^"):
            at = [r for r in rows if r["estimator"] == estimator]
            axis.plot([r["samples"] for r in at], [r[f"variance/{parameter}"] for r in at], marker=marker, label=estimator)
        signal = [r[f"squared_mean/{parameter}"] for r in rows if r["estimator"] == "reparameterization"]
        axis.axhline(max(signal), color="grey", linestyle=":", label="squared mean gradient")
        axis.set_xscale("log")
        axis.set_yscale("log")
        axis.set_xlabel("samples S per image")
        axis.set_title(parameter, fontsize=10)
        axis.grid(alpha=0.3, which="both")
    axes[0][0].set_ylabel("variance per element (mean)")
    axes[0][-1].legend(fontsize=8)
    figure.suptitle(title, fontsize=10)
    return save_figure(figure, path)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(prog="python -m scratchgen.experiments.elbo_gradient_variance",
                                     description="variance of the ELBO gradient estimators on a trained VAE")
    parser.add_argument("checkpoint")
    parser.add_argument("--data-root", default=None, help="default: $SCRATCHGEN_DATA")
    parser.add_argument("--images", type=int, default=16)
    parser.add_argument("--samples", default="1,2,5,10,50,100")
    parser.add_argument("--repeats", type=int, default=100)
    parser.add_argument("--baseline-draws", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default="runs/elbo_gradient_variance")
    args = parser.parse_args(argv)

    model, meta = load_model(args.checkpoint)
    if meta["model"] != "vae":
        raise SystemExit(f"{args.checkpoint}: a checkpoint of {meta['model']!r}; this experiment reads an MLP 'vae'")
    data = load_dataset(meta.get("dataset", "digits"), root=args.data_root, seed=meta.get("seed", 0))
    mode = meta.get("options", {}).get("binarize", "none")
    x = data.test.x[: args.images]
    x = binarize(x, mode, rng=np.random.default_rng([0, 6])) if mode != "none" else x
    samples = [int(s) for s in args.samples.split(",") if s.strip()]
    rows = gradient_variances(model, x, samples, args.repeats, np.random.default_rng(args.seed), args.baseline_draws)
    parameters = ["encoder.0.weight", "mu_head.weight", "logvar_head.weight"]
    table = markdown_table(rows, parameters)
    print(table)
    os.makedirs(args.out, exist_ok=True)
    title = (f"VAE on {meta.get('dataset')}: gradient of E_q[log p(x|z)] for {args.images} test images, "
             f"{args.repeats} repetitions per point")
    plot(rows, parameters, os.path.join(args.out, "elbo_gradient_variance.png"), title)
    with open(os.path.join(args.out, "elbo_gradient_variance.md"), "w") as handle:
        handle.write(table + "\n")
    with open(os.path.join(args.out, "elbo_gradient_variance.json"), "w") as handle:
        json.dump({"config": vars(args), "rows": rows}, handle, indent=2)


if __name__ == "__main__":
    main()
