"""Convolutional autoencoder: strided convolutions down to a code, transposed convolutions back up.

    encoder  (C, H, W) -conv 4x4 s2, act-> (c1, H/2, W/2) -conv 4x4 s2, act-> (c2, H/4, W/4)
             -flatten, Linear, code activation-> h: (N, hidden)
    decoder  h -Linear, act-> (c2, H/4, W/4) -convT 4x4 s2, act-> (c1, H/2, W/2) -convT 4x4 s2-> (C, H, W) logits

Kernel 4, stride 2, padding 1 halves (conv) or doubles (transposed conv) each side exactly, so
H and W must be divisible by 4 (8x8 digits: 8 -> 4 -> 2; MNIST: 28 -> 14 -> 7). Weight sharing
across positions gives the convolutional code far fewer parameters than an MLP of the same
code size, and a built-in notion that a stroke is a stroke wherever it is.

Output layer, loss, training step, pictures and sampling are the ``Autoencoder``'s.
"""
from __future__ import annotations

from typing import Dict

import numpy as np

from ... import nn
from ...gradcheck import register_case
from ...optim import Adam
from ...tensor import Tensor
from ..image_model import ImageModel, activation_module, parameter_case
from .autoencoder import OUTPUTS, Autoencoder
from ..base import DataInfo, register_model

__all__ = ["ConvAutoencoder"]


class ConvAutoencoder(Autoencoder):
    """Conv encoder / transposed-conv decoder. channels (c1, c2); hidden: code size; activation: hidden layers'
    nonlinearity; code_activation: the code's (sigmoid keeps it in (0, 1) like the MLP autoencoder)."""

    def __init__(self, image_shape, channels=(16, 32), hidden: int = 32, activation: str = "relu",
                 code_activation: str = "sigmoid", output: str = "bernoulli", lr: float = 1e-3, num_classes: int = 1,
                 rng=None, dtype=np.float32):
        # The MLP autoencoder's __init__ builds Linear layers; only the shared bookkeeping is wanted here.
        ImageModel.__init__(self, image_shape, dtype)
        c, h, w = self.image_shape
        if h % 4 or w % 4:
            raise ValueError(f"ConvAutoencoder: image height and width must be divisible by 4, got {self.image_shape}")
        if output not in OUTPUTS:
            raise ValueError(f"ConvAutoencoder: output must be one of {OUTPUTS}, got {output!r}")
        c1, c2 = (int(ch) for ch in channels)
        rng = np.random.default_rng(rng)
        self.hidden, self.activation_name, self.output, self.tied = int(hidden), code_activation, output, False
        self.channels = (c1, c2)
        small = (c2, h // 4, w // 4)
        flat = int(np.prod(small))
        he = dict(init="he_uniform", rng=rng, dtype=dtype)
        self.encoder = nn.Sequential(
            nn.Reshape((c, h, w)),
            nn.Conv2d(c, c1, 4, stride=2, padding=1, **he), activation_module(activation),
            nn.Conv2d(c1, c2, 4, stride=2, padding=1, **he), activation_module(activation),
            nn.Flatten(),
            nn.Linear(flat, self.hidden, rng=rng, dtype=dtype),
        )
        self.encoder_activation = activation_module(code_activation)
        self.decoder = nn.Sequential(
            nn.Linear(self.hidden, flat, **he), activation_module(activation),
            nn.Reshape(small),
            nn.ConvTranspose2d(c2, c1, 4, stride=2, padding=1, **he), activation_module(activation),
            nn.ConvTranspose2d(c1, c, 4, stride=2, padding=1, rng=rng, dtype=dtype),
            nn.Flatten(),
        )
        self._code_buffers(num_classes)
        self.optimizers = {"model": Adam(self.parameters(), lr=lr)}

    def decode_logits(self, h: Tensor) -> Tensor:
        return self.decoder(h)

    def jacobian_frobenius(self, x):
        """Not in closed form for a multi-layer encoder: NaN per example (reported as such by ``evaluate``)."""
        return self._xp().full(len(self.as_flat(x)), np.nan, dtype=self.dtype)

    def evaluate(self, x, y, rng: np.random.Generator, batch_size: int = 1000) -> Dict[str, float]:
        metrics = super().evaluate(x, y, rng, batch_size)
        metrics.pop("jacobian_frobenius", None)
        return metrics


@register_model("conv-ae", family="autoencoder",
                defaults={"channels": [16, 32], "hidden": 32, "activation": "relu", "code_activation": "sigmoid",
                          "output": "bernoulli", "lr": 3e-3, "epochs": 20, "batch_size": 64},
                description="convolutional autoencoder (2 strided convs, 2 transposed convs); H, W divisible by 4")
def build_conv_autoencoder(config: Dict, data_info: DataInfo, rng) -> ConvAutoencoder:
    return ConvAutoencoder(data_info.image_shape, channels=tuple(config["channels"]), hidden=int(config["hidden"]),
                           activation=config["activation"], code_activation=config["code_activation"],
                           output=config["output"], lr=float(config["lr"]), num_classes=data_info.num_classes, rng=rng)


def _tiny_case(rng):
    model = ConvAutoencoder((1, 4, 4), channels=(2, 3), hidden=3, activation="tanh", rng=rng, dtype=np.float64)
    x = rng.uniform(0.05, 0.95, (2, 1, 4, 4))
    return parameter_case(model, lambda: model.loss(x)[0])


register_case("conv_ae_loss")(_tiny_case)
