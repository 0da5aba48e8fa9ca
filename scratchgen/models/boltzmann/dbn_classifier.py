"""A DBN as the initialisation of a classifier, fine-tuned with backprop (Hinton & Salakhutdinov 2006).

The up-pass of a DBN is an MLP with sigmoid units: RBM l computes p(h_l | h_{l-1}) =
sigmoid(h_{l-1} W_l + c_l), which is ``Linear(W_l^T, c_l)`` followed by ``Sigmoid``. Add a
softmax output layer, and the pretrained stack is a classifier whose hidden layers start where
unsupervised learning left them; backprop then fine-tunes all the weights on the labels.

    to_classifier(dbn, 10)                  Sequential(Linear, Sigmoid, ..., Linear(H_L, 10)) from the RBMs
    random_classifier([784, 500, 500], 10)  the same architecture, randomly initialised (the baseline)
    train_classifier(net, x, y, ...)        softmax cross-entropy + SGD with momentum (or Adam), through
                                            the shared training loop (``classifiers.SoftmaxClassifier``)
    accuracy(net, x, y)                     fraction of correct argmax predictions

A Gaussian-Bernoulli bottom layer sees standardised inputs v = (x - m) / (std s); its hidden
input (v / s) W + c is folded into one affine map of the raw pixels x:
    W' = W / (std s)[:, None],   c' = c - ((m / (std s)) W)
so the classifier takes the same [0, 1] images as everything else.
"""
from __future__ import annotations

from typing import Dict, List, Sequence

import numpy as np

from ... import nn
from ..classifiers.supervised import SoftmaxClassifier
from .gaussian_rbm import GaussianBernoulliRBM
from .helpers import host64

__all__ = ["to_classifier", "random_classifier", "train_classifier", "accuracy", "evaluate_features"]


def _flat(x) -> np.ndarray:
    x = np.asarray(x)
    return x.reshape(len(x), -1)


def random_classifier(layer_sizes: Sequence[int], num_classes: int, rng=None, dtype=np.float32) -> nn.Sequential:
    """Sigmoid MLP layer_sizes[0] -> ... -> layer_sizes[-1] -> num_classes, Glorot-initialised."""
    rng = np.random.default_rng(rng)
    layers: List[nn.Module] = []
    for n_in, n_out in zip(layer_sizes[:-1], layer_sizes[1:]):
        layers += [nn.Linear(n_in, n_out, rng=rng, dtype=dtype), nn.Sigmoid()]
    layers.append(nn.Linear(layer_sizes[-1], num_classes, rng=rng, dtype=dtype))
    return nn.Sequential(*layers)


def to_classifier(dbn, num_classes: int, rng=None) -> nn.Sequential:
    """The DBN's up-pass as a sigmoid MLP plus a fresh output layer; the RBMs' weights are copied."""
    net = random_classifier(dbn.layer_sizes, num_classes, rng=rng, dtype=dbn.layers[0].dtype)
    for index, rbm in enumerate(dbn.layers):
        weight, bias = host64(rbm.weight.data), host64(rbm.hidden_bias.data)  # (V, H), (H,)
        if isinstance(rbm, GaussianBernoulliRBM):
            scale = host64(rbm.data_std) * host64(rbm.sigma)  # v / s = (x - m) / (std s)
            bias = bias - (host64(rbm.data_mean) / scale) @ weight
            weight = weight / scale[:, None]
        linear = net[2 * index]
        linear.weight.data[...] = weight.T
        linear.bias.data[...] = bias
    return net


def train_classifier(net: nn.Module, x, y, epochs: int = 10, batch_size: int = 64, lr: float = 0.1,
                     momentum: float = 0.9, optimizer: str = "sgd", rng=None, verbose: bool = False) -> List[float]:
    """Minimise the mean softmax cross-entropy of ``net`` on (x, y); returns the per-epoch mean loss."""
    x, y = _flat(x), np.asarray(y, dtype=np.int64)
    if len(x) != len(y):
        raise ValueError(f"train_classifier: {len(x)} inputs but {len(y)} labels")
    model = SoftmaxClassifier(net, optimizer=optimizer, lr=lr, momentum=momentum, flatten=True)
    model.fit(x, y, epochs=epochs, batch_size=batch_size, rng=rng, verbose=verbose)
    return [record["train_cross_entropy"] for record in model.history]


def accuracy(net: nn.Module, x, y, batch_size: int = 1000) -> float:
    """Fraction of examples whose largest logit is the label."""
    return SoftmaxClassifier(net, flatten=True).accuracy(_flat(x), y, batch_size)


def evaluate_features(train_features, y_train, test_features, y_test, epochs: int = 30, rng=None) -> Dict[str, float]:
    """Accuracy of a softmax (logistic) classifier trained on fixed features: the DBN as a feature extractor."""
    net = nn.Sequential(nn.Linear(train_features.shape[1], int(max(y_train.max(), y_test.max())) + 1, rng=rng))
    train_classifier(net, train_features, y_train, epochs=epochs, lr=0.01, optimizer="adam", rng=rng)
    return {"train_accuracy": accuracy(net, train_features, y_train), "test_accuracy": accuracy(net, test_features, y_test)}
