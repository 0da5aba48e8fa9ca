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

from ... import nn
from ...nn import StateDictError
from ...grad_mode import no_grad
from ...tensor import Tensor
from .supervised import SoftmaxClassifier


def _conv_size(n: int) -> int:
    return (n + 2 * 2 - 5) // 2 + 1  # kernel 5, stride 2, padding 2


class Classifier(SoftmaxClassifier):
    """LeNet-style classifier. ``features(x)``: penultimate activations (N, feature_dim); ``predict(x)``: labels."""

    cli_name = "lenet"

    def __init__(self, image_shape, num_classes: int, width: int = 32, feature_dim: int = 128, rng=None,
                 dtype=np.float32, lr: float = 1e-3):
        rng = np.random.default_rng(rng)
        c, h, w = image_shape
        flat = 2 * width * _conv_size(_conv_size(h)) * _conv_size(_conv_size(w))
        body = nn.Sequential(
            nn.Conv2d(c, width, 5, stride=2, padding=2, rng=rng, dtype=dtype, init="he_uniform"), nn.ReLU(),
            nn.Conv2d(width, 2 * width, 5, stride=2, padding=2, rng=rng, dtype=dtype, init="he_uniform"), nn.ReLU(),
            nn.Flatten(),
            nn.Linear(flat, feature_dim, rng=rng, dtype=dtype, init="he_uniform"), nn.ReLU(),
        )
        head = nn.Linear(feature_dim, num_classes, rng=rng, dtype=dtype)
        super().__init__(nn.Sequential(body, head), optimizer="adam", lr=lr)
        self.image_shape, self.num_classes, self.feature_dim = tuple(image_shape), int(num_classes), int(feature_dim)

    @property
    def body(self) -> nn.Module:
        return self.net[0]

    def inputs(self, x) -> Tensor:
        x = np.asarray(x.get() if hasattr(x, "get") else x, dtype=self.dtype)
        if x.shape[1:] != self.image_shape:
            raise ValueError(f"Classifier: expected images (N, {', '.join(map(str, self.image_shape))}), got shape {x.shape}")
        return Tensor(x)

    def features(self, x, batch_size: int = 500) -> np.ndarray:
        """Penultimate-layer features (N, feature_dim) of images (N, C, H, W) in [0, 1]."""
        self.eval()
        with no_grad():
            return np.concatenate([self.body(self.inputs(x[s:s + batch_size])).numpy()
                                   for s in range(0, len(x), batch_size)])


def train_classifier(data, epochs: int = 3, batch_size: int = 64, lr: float = 1e-3, seed: int = 0,
                     max_batches_per_epoch: Optional[int] = None, verbose: bool = True,
                     **kwargs) -> Tuple[Classifier, Dict]:
    """Train a Classifier on ``data.train`` (a DatasetSplits) with the shared loop; report validation
    and test accuracy."""
    model = Classifier(data.image_shape, data.num_classes, rng=np.random.default_rng(seed), lr=lr, **kwargs)
    start = time.perf_counter()
    model.fit(data.train.x, data.train.y, epochs=epochs, batch_size=batch_size, rng=seed, verbose=verbose,
              validation=(data.validation.x, data.validation.y) if data.validation.num_examples else None,
              max_batches_per_epoch=max_batches_per_epoch)
    info = {
        "steps": model.optimizers["classifier"].steps[0], "seconds": time.perf_counter() - start,
        "validation_accuracy": model.accuracy(data.validation.x, data.validation.y) if data.validation.num_examples else None,
        "test_accuracy": model.accuracy(data.test.x, data.test.y),
    }
    return model, info


def load_or_train_classifier(path: str, data, **train_options) -> Tuple[Classifier, Dict]:
    """The classifier saved at ``path`` (.npz) if there is one that fits, else a freshly trained one saved there."""
    if os.path.exists(path):
        model = Classifier(data.image_shape, data.num_classes, **{k: v for k, v in train_options.items() if k in ("width", "feature_dim")})
        try:
            model.load(path)
            return model, {"loaded_from": path, "test_accuracy": model.accuracy(data.test.x, data.test.y)}
        except (StateDictError, KeyError, ValueError, OSError):
            pass  # a cache from another version or architecture: train afresh and replace it
    model, info = train_classifier(data, **train_options)
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    model.save(path)
    return model, info
