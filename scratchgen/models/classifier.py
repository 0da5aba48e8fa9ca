"""A LeNet-style convolutional classifier, trained with scratchgen: the feature extractor of the
sample-quality score (``scratchgen.evaluation.sample_quality``).

FID embeds images with an Inception network trained on ImageNet, which knows nothing of 28x28
grey clothes or digits. The same idea works with any network trained on the data at hand: a
classifier's penultimate layer maps images to features that separate the classes, so the
Fréchet distance between the feature distributions of real and generated images measures both
fidelity and diversity *in terms that matter for this data*, and the classifier's predicted labels
give the mode-coverage histogram. The score is only comparable between runs that use the
same classifier (same data, seed and training), so the classifier is saved and reused.

Architecture (LeNet-5 in spirit: two convolutions, two fully connected layers; stride-2
convolutions instead of pooling), for images (C, H, W):

    x (N, C, H, W) -> Conv2d(C, w, 5, stride 2, pad 2) -> ReLU          (N, w, H/2, W/2)
                   -> Conv2d(w, 2w, 5, stride 2, pad 2) -> ReLU         (N, 2w, H/4, W/4)
                   -> Flatten -> Linear(., F) -> ReLU  = features       (N, F)
                   -> Linear(F, K) = logits                             (N, K)

trained with softmax cross-entropy and Adam.
"""
from __future__ import annotations

import os
import time
from typing import Dict, Optional, Tuple

import numpy as np

from .. import nn, ops
from ..function import no_grad
from ..optim import Adam
from ..tensor import Tensor


def _conv_size(n: int) -> int:
    return (n + 2 * 2 - 5) // 2 + 1  # kernel 5, stride 2, padding 2


class Classifier(nn.Module):
    """LeNet-style classifier. ``features(x)``: penultimate activations (N, feature_dim); ``predict(x)``: labels."""

    def __init__(self, image_shape, num_classes: int, width: int = 32, feature_dim: int = 128, rng=None, dtype=np.float32):
        super().__init__()
        rng = np.random.default_rng(rng)
        c, h, w = image_shape
        self.image_shape, self.num_classes, self.feature_dim = tuple(image_shape), int(num_classes), int(feature_dim)
        flat = 2 * width * _conv_size(_conv_size(h)) * _conv_size(_conv_size(w))
        self.body = nn.Sequential(
            nn.Conv2d(c, width, 5, stride=2, padding=2, rng=rng, dtype=dtype, init="he_uniform"), nn.ReLU(),
            nn.Conv2d(width, 2 * width, 5, stride=2, padding=2, rng=rng, dtype=dtype, init="he_uniform"), nn.ReLU(),
            nn.Flatten(),
            nn.Linear(flat, feature_dim, rng=rng, dtype=dtype, init="he_uniform"), nn.ReLU(),
        )
        self.head = nn.Linear(feature_dim, num_classes, rng=rng, dtype=dtype)
        self.dtype = np.dtype(dtype)

    def forward(self, x) -> Tensor:
        """Logits (N, K) for images x (N, C, H, W) in [0, 1]."""
        return self.head(self.body(x))

    def _check(self, x) -> np.ndarray:
        x = np.asarray(x, dtype=self.dtype)
        if x.shape[1:] != self.image_shape:
            raise ValueError(f"Classifier: expected images (N, {', '.join(map(str, self.image_shape))}), got shape {x.shape}")
        return x

    def _batched(self, fn, x, batch_size: int) -> np.ndarray:
        x = self._check(x)
        self.eval()
        with no_grad():
            return np.concatenate([fn(Tensor(x[s : s + batch_size])).data for s in range(0, len(x), batch_size)])

    def features(self, x, batch_size: int = 500) -> np.ndarray:
        """Penultimate-layer features (N, feature_dim) of images (N, C, H, W) in [0, 1]."""
        return self._batched(self.body, x, batch_size)

    def logits(self, x, batch_size: int = 500) -> np.ndarray:
        return self._batched(self.forward, x, batch_size)

    def predict(self, x, batch_size: int = 500) -> np.ndarray:
        return self.logits(x, batch_size).argmax(axis=1)

    def accuracy(self, x, y, batch_size: int = 500) -> float:
        return float((self.predict(x, batch_size) == np.asarray(y)).mean())


def train_classifier(data, epochs: int = 3, batch_size: int = 64, lr: float = 1e-3, seed: int = 0,
                     max_steps: Optional[int] = None, verbose: bool = True, **kwargs) -> Tuple[Classifier, Dict]:
    """Train a Classifier on ``data.train`` (a DatasetSplits); report validation and test accuracy."""
    rng = np.random.default_rng(seed)
    model = Classifier(data.image_shape, data.num_classes, rng=rng, **kwargs)
    optimizer = Adam(model.parameters(), lr=lr)
    x, y = data.train.x, data.train.y
    step, start = 0, time.perf_counter()
    for epoch in range(epochs):
        order = rng.permutation(len(x))
        model.train()
        for s in range(0, len(x), batch_size):
            index = order[s : s + batch_size]
            optimizer.zero_grad()
            loss = ops.softmax_cross_entropy(model(Tensor(x[index])), y[index])
            loss.backward()
            optimizer.step()
            step += 1
            if max_steps and step >= max_steps:
                break
        if verbose:
            print(f"classifier epoch {epoch + 1}: loss {float(loss.data):.4f}, validation accuracy "
                  f"{model.accuracy(data.validation.x, data.validation.y):.4f}", flush=True)
        if max_steps and step >= max_steps:
            break
    info = {
        "steps": step, "seconds": time.perf_counter() - start,
        "validation_accuracy": model.accuracy(data.validation.x, data.validation.y),
        "test_accuracy": model.accuracy(data.test.x, data.test.y),
    }
    return model, info


def load_or_train_classifier(path: str, data, **train_options) -> Tuple[Classifier, Dict]:
    """The classifier saved at ``path`` (.npz) if there is one, else a freshly trained one saved there."""
    if os.path.exists(path):
        model = Classifier(data.image_shape, data.num_classes, **{k: v for k, v in train_options.items() if k in ("width", "feature_dim")})
        model.load(path)
        return model, {"loaded_from": path, "test_accuracy": model.accuracy(data.test.x, data.test.y)}
    model, info = train_classifier(data, **train_options)
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    model.save(path)
    return model, info
