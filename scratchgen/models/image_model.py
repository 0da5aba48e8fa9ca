"""What the autoencoder and VAE families share: images as vectors, MLPs, one optimiser step, pictures.

* ``ImageModel`` is the base of every model in autoencoder.py, conv_autoencoder.py, vae.py,
  cvae.py and m2.py. It knows the image shape (C, H, W), turns a batch of images into the
  (N, D) float array a fully connected model reads (on the model's device and in its dtype),
  binarises batches as configured, and runs one optimiser step on a loss while refusing
  NaN/Inf losses with a message that names the loss and the step.
* ``mlp`` builds Linear -> activation -> ... -> Linear from a list of sizes.
* ``reconstruction_grid`` puts inputs above their reconstructions for the PNGs.
"""
from __future__ import annotations

import functools
import math
import os
from typing import Dict, List, Optional, Sequence

import numpy as np

from .. import nn
from ..backend import get_array_module
from ..grad_mode import no_grad
from ..tensor import Tensor
from .base import GenerativeModel

__all__ = ["ACTIVATIONS", "activation_module", "fan_in_uniform", "mlp", "ImageModel", "reconstruction_grid", "parameter_case"]

ACTIVATIONS = {
    "sigmoid": nn.Sigmoid,
    "tanh": nn.Tanh,
    "relu": nn.ReLU,
    "leaky_relu": lambda: nn.LeakyReLU(0.2),
    "softplus": nn.Softplus,
    "linear": nn.Identity,
}


def activation_module(name: str) -> nn.Module:
    """The activation layer called ``name`` (one of ``ACTIVATIONS``)."""
    if name not in ACTIVATIONS:
        raise ValueError(f"unknown activation {name!r}; choose one of {', '.join(ACTIVATIONS)}")
    return ACTIVATIONS[name]()


# U(-1/sqrt(fan_in), 1/sqrt(fan_in)), PyTorch's nn.Linear default (He-uniform with gain 1/sqrt(3)).
# The VAEs use it: smaller first steps than He init, and with it the MLP VAE of bench_vae.py ends
# within a few tenths of a nat of PyTorch's run of the same protocol (He init: ~0.8% worse after 10 epochs).
fan_in_uniform = functools.partial(nn.init.he_uniform, gain=1.0 / math.sqrt(3.0))


def _init_for(activation: str) -> str:
    # He initialisation keeps ReLU-family activations at unit scale; Glorot suits sigmoid/tanh.
    return "he_uniform" if activation in ("relu", "leaky_relu") else "glorot_uniform"


def mlp(sizes: Sequence[int], activation: str, rng, dtype, final_activation: Optional[str] = None, init=None) -> nn.Sequential:
    """Linear(sizes[0] -> sizes[1]), activation, ..., Linear(sizes[-2] -> sizes[-1]) [, final_activation].

    Hidden layers use ``activation``; the last Linear is followed by ``final_activation`` if given.
    ``init``: one initialiser for every layer (default: He for ReLU-family layers, else Glorot).
    """
    if len(sizes) < 2:
        raise ValueError(f"mlp: needs at least an input and an output size, got {list(sizes)}")
    layers: List[nn.Module] = []
    for i, (n_in, n_out) in enumerate(zip(sizes[:-1], sizes[1:])):
        last = i == len(sizes) - 2
        act = final_activation if last else activation
        layers.append(nn.Linear(n_in, n_out, init=init or _init_for(act or "linear"), rng=rng, dtype=dtype))
        if act is not None:
            layers.append(activation_module(act))
    return nn.Sequential(*layers)


def parameter_case(model, loss):
    """A gradcheck case for a model loss: ``(fn, parameters)`` with ``fn(*parameters) = loss()``.

    gradcheck perturbs each parameter's array in place, so ``loss`` (a closure over the model and
    fixed data and noise) sees the perturbation without taking the parameters as arguments.
    The model must be float64.
    """
    return (lambda *parameters: loss()), model.parameters()


def reconstruction_grid(inputs, outputs, per_row: int = 10):
    """Interleave rows: inputs[0:per_row], outputs[0:per_row], inputs[per_row:2 per_row], ...

    inputs, outputs: (N, C, H, W). Returns (2N, C, H, W) for ``save_image_grid(..., nrow=per_row)``,
    so each reconstruction sits directly below its input.
    """
    if inputs.shape != outputs.shape:
        raise ValueError(f"reconstruction_grid: inputs {inputs.shape} and outputs {outputs.shape} differ")
    rows = []
    for start in range(0, len(inputs), per_row):
        rows.append(inputs[start : start + per_row])
        rows.append(outputs[start : start + per_row])
    return np.concatenate(rows)


class ImageModel(GenerativeModel):
    """Base of the autoencoder/VAE families: image bookkeeping and the optimiser step.

    image_shape: (C, H, W); dtype: float32 to train, float64 for gradchecks. Binarisation is
    the training loop's (``fit(x, binarize="dynamic")``, ``scratchgen train --binarize``), not
    the model's.
    """

    def __init__(self, image_shape, dtype=np.float32):
        super().__init__()
        if len(image_shape) != 3:
            raise ValueError(f"{type(self).__name__}: image_shape must be (C, H, W), got {tuple(image_shape)}")
        self.image_shape = tuple(int(s) for s in image_shape)
        self.num_features = int(np.prod(self.image_shape))
        self.dtype = np.dtype(dtype)
        if self.dtype.kind != "f":
            raise TypeError(f"{type(self).__name__}: dtype must be floating, got {self.dtype}")

    # ---- arrays in, arrays out -------------------------------------------------------------------
    def _xp(self):
        """numpy or cupy: where the parameters live (cached; ``_apply``, behind ``to()``, resets it)."""
        xp = self.__dict__.get("_array_module")
        if xp is None:
            params = self.parameters()
            xp = get_array_module(params[0].data) if params else np
            self._array_module = xp
        return xp

    def _apply(self, fn):
        self._array_module = None  # the parameters may move between host and device
        return super()._apply(fn)

    def as_flat(self, x) -> object:
        """Images (N, C, H, W) or vectors (N, D) -> (N, D) array in the model's dtype, on its device."""
        if isinstance(x, Tensor):
            x = x.data
        xp = self._xp()
        x = xp.asarray(x)
        if x.ndim < 2:
            raise ValueError(f"{type(self).__name__}: input must be (N, C, H, W) or (N, D), got shape {x.shape}")
        x = x.reshape(len(x), -1)
        if x.shape[1] != self.num_features:
            raise ValueError(
                f"{type(self).__name__}: input has {x.shape[1]} features, the model expects "
                f"{self.num_features} (images {self.image_shape})"
            )
        return x.astype(self.dtype, copy=False)

    def as_images(self, x_flat) -> np.ndarray:
        """(N, D) -> host (N, C, H, W) array."""
        if isinstance(x_flat, Tensor):
            x_flat = x_flat.data
        x_flat = x_flat.get() if hasattr(x_flat, "get") else np.asarray(x_flat)
        return x_flat.reshape((len(x_flat),) + self.image_shape)

    def training_batch(self, x, rng: np.random.Generator):
        """The (N, D) batch a train_step fits: flattened, in the model's dtype and on its device."""
        return self.as_flat(x)

    def standard_normal(self, rng: np.random.Generator, shape):
        """N(0, 1) noise of ``shape`` in the model's dtype and on its device (drawn on the host)."""
        return self._xp().asarray(rng.standard_normal(shape).astype(self.dtype))

    # ---- one optimisation step -------------------------------------------------------------------
    def optimize(self, loss: Tensor, parts: Dict[str, Tensor], optimizer: str = "model") -> Dict[str, float]:
        """zero_grad, backward, step; returns {"loss": ..., **parts} as floats (the loop checks them)."""
        values = {"loss": float(loss.data)}
        values.update({name: float(p.data if isinstance(p, Tensor) else p) for name, p in parts.items()})
        opt = self.optimizers[optimizer]
        opt.zero_grad()
        loss.backward()
        opt.step()
        return values

    # ---- pictures ---------------------------------------------------------------------------------
    def reconstruct(self, x) -> np.ndarray:
        raise NotImplementedError(f"{type(self).__name__} does not reconstruct")

    def save_reconstructions(self, out_dir: str, x, tag: str = "", name: str = "reconstructions", per_row: int = 10,
                             y=None) -> str:
        """Five rows of inputs, each above its reconstructions (labels ``y`` for conditional models)."""
        from ..plots import save_image_grid

        x = np.asarray(x[: 5 * per_row])
        with no_grad():
            recon = self.reconstruct(x) if y is None else self.reconstruct(x, y=np.asarray(y[: 5 * per_row]))
        grid = reconstruction_grid(x.reshape((len(x),) + self.image_shape), recon, per_row)
        return save_image_grid(grid, os.path.join(out_dir, _tagged(name, tag)), nrow=per_row, scale=_scale(self.image_shape))

    def save_samples(self, out_dir: str, rng: np.random.Generator, tag: str = "", n: int = 100, name: str = "samples") -> str:
        from ..plots import save_image_grid

        with no_grad():
            samples = self.sample(n, rng)
        return save_image_grid(samples, os.path.join(out_dir, _tagged(name, tag)), nrow=int(math.sqrt(n)) or 1,
                               scale=_scale(self.image_shape))


def _tagged(name: str, tag: str) -> str:
    return f"{name}_{tag}.png" if tag else f"{name}.png"


def _scale(image_shape) -> int:
    # 8x8 digits need a larger zoom than 28x28 MNIST to be readable.
    return max(1, 84 // max(image_shape[1], image_shape[2]))
