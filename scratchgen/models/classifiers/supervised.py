"""``SoftmaxClassifier``: any network trained by softmax cross-entropy, through the one training loop.

A discriminative model p(y | x): the network maps x to logits z (N, K) and training minimises

    mean_n  -log softmax(z_n)_{y_n}

with Adam or SGD. It meets the same contract as the generative models (``train_step``,
``evaluate``, ``fit``), so ``fit(x, y)`` runs in ``scratchgen.training.Trainer`` like everything
else: the LeNet that scores GAN samples (``lenet.py``) and the fine-tuned DBN
(``boltzmann/dbn_classifier.py``) are both trained here.
"""
from __future__ import annotations

from typing import Dict

import numpy as np

from ... import nn, ops
from ...grad_mode import no_grad
from ...optim import SGD, Adam
from ...tensor import Tensor
from ..base import Model

__all__ = ["SoftmaxClassifier"]


class SoftmaxClassifier(Model):
    """net: a Module from inputs to logits (N, K). ``flatten``: feed (N, D) vectors (an MLP) instead of images.

    optimizer: "adam", "adamw" (decoupled ``weight_decay``) or "sgd" (with ``momentum``); ``lr`` its
    learning rate.
    """

    cli_name = "classifier"

    def __init__(self, net: nn.Module, optimizer: str = "adam", lr: float = 1e-3, momentum: float = 0.9,
                 flatten: bool = False, weight_decay: float = 0.0):
        super().__init__()
        if optimizer not in ("adam", "adamw", "sgd"):
            raise ValueError(f"SoftmaxClassifier: optimizer must be 'adam', 'adamw' or 'sgd', got {optimizer!r}")
        self.net, self.flatten = net, bool(flatten)
        parameters = net.parameters()
        self.dtype = parameters[0].dtype
        if optimizer == "sgd":
            chosen = SGD(parameters, lr=lr, momentum=momentum, weight_decay=weight_decay)
        else:
            chosen = Adam(parameters, lr=lr, weight_decay=weight_decay, decoupled=optimizer == "adamw")
        self.optimizers = {"classifier": chosen}

    def inputs(self, x) -> Tensor:
        """x as the network takes it: (N, D) when ``flatten``, else as given; the model's dtype."""
        x = np.asarray(x.get() if hasattr(x, "get") else x, dtype=self.dtype)
        return Tensor(x.reshape(len(x), -1) if self.flatten else x)

    def forward(self, x) -> Tensor:
        """Logits (N, K)."""
        return self.net(self.inputs(x))

    def train_step(self, x, y, rng) -> Dict[str, float]:
        optimizer = self.optimizers["classifier"]
        optimizer.zero_grad()
        loss = ops.softmax_cross_entropy(self.forward(x), np.asarray(y), reduction="mean")
        loss.backward()
        optimizer.step()
        return {"cross_entropy": float(loss.data)}

    def logits(self, x, batch_size: int = 500) -> np.ndarray:
        self.eval()
        with no_grad():
            return np.concatenate([self.forward(x[s:s + batch_size]).numpy() for s in range(0, len(x), batch_size)])

    def predict(self, x, batch_size: int = 500) -> np.ndarray:
        return self.logits(x, batch_size).argmax(axis=1)

    def accuracy(self, x, y, batch_size: int = 500) -> float:
        """Fraction of examples whose largest logit is the label."""
        return float((self.predict(x, batch_size) == np.asarray(y)).mean())

    def evaluate(self, x, y, rng=None) -> Dict[str, float]:
        logits = self.logits(x)
        with no_grad():
            loss = ops.softmax_cross_entropy(Tensor(logits), np.asarray(y), reduction="mean")
        return {"accuracy": float((logits.argmax(axis=1) == np.asarray(y)).mean()), "cross_entropy": float(loss.data)}
