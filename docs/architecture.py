"""Draw docs/architecture.png: scratchgen's layers, and the path of one training step through them.

    python docs/architecture.py            (needs matplotlib: pip install scratchgen[plot])

The layers are the ones tests/test_layers.py enforces (imports go downward only); the numbered
path is what ``scratchgen train vae`` runs for one step, with the file of every stop.
"""
import os

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.patches import FancyArrowPatch, FancyBboxPatch  # noqa: E402

LAYERS = [  # bottom to top: (name, modules)
    ("0  foundation", "backend.py  device.py  threads.py  memory.py  data/ (images, text, stories)  metrics.py  plots.py  progress.py  info.py"),
    ("1  autograd", "tensor.py (Tensor, backward)  function.py (Function)  grad_mode.py  gradcheck/"),
    ("2  ops", "ops/: each op = NumPy reference kernel + backward + gradcheck case"),
    ("3  nn, optim", "nn/ (Module, Linear, Conv2d, ...)  optim.py (SGD, Adam)"),
    ("4  kernels", "kernels/ = scratchgen.kernels: numba_cpu/  numba_cuda/  cupy_backend/"),
    ("5  training", "training.py (the one loop)  checkpoint.py"),
    ("6  models", "models/: autoencoders/  vae/  gan/  boltzmann/  classifiers/  classical/  attention/"),
    ("7  evaluation", "evaluation/: likelihood (IWAE)  ais  sample_quality  report"),
    ("8  experiments", "experiments/: gan_1d  gradient estimators  generative vs discriminative  transfer learning"),
    ("9  entry points", "cli.py (scratchgen ...)  __init__.py (the API: import scratchgen as sg)"),
]

STEPS = [  # (layer index, x position, label)
    (9, 0.89, "1 cli.command_train"),
    (5, 0.89, "2 Trainer.fit -> train_step"),
    (6, 0.71, "3 VAE.train_step: loss(x, eps)"),
    (2, 0.71, "4 ops: linear, reparameterize, BCE, KL"),
    (1, 0.71, "5 Function.apply: forward"),
    (0, 0.71, "6 backend.kernel(name)"),
    (4, 0.50, "7 numba_cpu/losses.py (or the NumPy reference)"),
    (1, 0.33, "8 Tensor.backward: walk the graph"),
    (3, 0.33, "9 Adam.step -> kernel('adam_update')"),
    (5, 0.33, "10 check_losses; the next batch"),
]


def main(path: str = os.path.join(os.path.dirname(os.path.abspath(__file__)), "architecture.png")) -> str:
    figure, axes = plt.subplots(figsize=(13, 8.5))
    axes.set_xlim(0, 1)
    axes.set_ylim(-0.5, len(LAYERS))
    axes.axis("off")
    for index, (name, modules) in enumerate(LAYERS):
        shade = 0.93 - 0.045 * (index % 2)
        axes.add_patch(FancyBboxPatch((0.01, index - 0.42), 0.98, 0.84, boxstyle="round,pad=0.005,rounding_size=0.02",
                                      facecolor=(shade, shade, 0.99), edgecolor="0.55", linewidth=0.8))
        axes.text(0.02, index + 0.12, name, fontsize=11, fontweight="bold", va="center")
        axes.text(0.02, index - 0.2, modules, fontsize=8.5, va="center", color="0.25")
    points = []
    for layer, x, label in STEPS:
        axes.text(x, layer, label, fontsize=8.5, ha="center", va="center",
                  bbox=dict(boxstyle="round,pad=0.25", facecolor="white", edgecolor="tab:red", linewidth=0.9))
        points.append((x, layer))
    for (x0, y0), (x1, y1) in zip(points[:-1], points[1:]):
        axes.add_patch(FancyArrowPatch((x0, y0 - 0.18 if y1 < y0 else y0 + 0.18), (x1, y1 + 0.18 if y1 < y0 else y1 - 0.18),
                                       arrowstyle="-|>", mutation_scale=10, color="tab:red", linewidth=1.0,
                                       shrinkA=0, shrinkB=0))
    axes.set_title("scratchgen: layers (imports only go down; tests/test_layers.py) and one step of `scratchgen train vae`",
                   fontsize=11.5)
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)
    return path


if __name__ == "__main__":
    print(main())
