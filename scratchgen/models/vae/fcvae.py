"""The feature-consistent VAE (Hou, Shen, Sun & Qiu 2017, "deep feature consistent VAE").

A VAE's pixel loss scores a reconstruction pixel by pixel: a stroke drawn one pixel to the side
costs as much as a missing stroke, so the decoder learns to hedge with blur. The deep feature
consistent VAE adds a loss measured where blur costs more and small shifts cost less: the
hidden activations of a fixed classifier trained on the same data. With phi_l the activations
of layer l of that classifier and x_hat = E[x | z] the decoder's mean image,

    loss = -log p(x | z) + feature_weight * sum_l ||phi_l(x_hat) - phi_l(x)||^2 + beta * KL(q(z|x) || p(z))

(per example, averaged over the batch; z = mu + exp(logvar / 2) eps as in the VAE). The sum
over l runs over ``feature_layers`` of the LeNet in ``models/classifiers/lenet.py``:

    "conv1"  after the first convolution and its ReLU    (N, w, H/2, W/2)
    "conv2"  after the second convolution and its ReLU   (N, 2w, H/4, W/4)
    "fc"     the 128 penultimate features                (N, F)

Hou et al. drop the pixel term and keep only feature terms of VGG (trained on ImageNet); here
the pixel term stays (the brief of this project: feature *plus* pixel loss, and it keeps the
ELBO's reconstruction term in place, so -ELBO remains reported and comparable), and the network
is a small LeNet trained on the dataset itself. The total is no longer a bound on log p(x):
the feature term is a penalty, not a likelihood.

The classifier. Trained once, in ``prepare`` (before the first step, with the training labels;
``classifier_epochs`` epochs of Adam, its own seed ``classifier_seed``), then frozen: its
parameters stop requiring gradients and are not in the VAE's optimiser, so every step's
backward passes *through* it to x_hat but never changes it. Its weights are part of the model's
state dict, so a checkpoint alone rebuilds the FCVAE (``scratchgen sample`` and ``eval`` never
retrain it), and a resumed run uses the same classifier.

What it does here (README, "Experiments from the lectures"; MNIST split, 20 epochs): with
feature_weight 0.5 (the default) the reconstructions move closer to the inputs in both pixel
error and feature distance, but the code carries more information (KL 40 against the VAE's 24
nats), so -ELBO and the prior's samples get worse: the feature term is extra reconstruction
pressure, which the KL term has to be weighed against (beta). At 0.05 it changes almost nothing.

Beware when scoring samples with a classifier-Fréchet distance: this model was trained to match
one LeNet's features. ``scratchgen eval`` scores with its own cached LeNet (another seed and
width), never with this one, but the two share an architecture, so the score may favour the
FCVAE somewhat: state the classifier beside the number.
"""
from __future__ import annotations

from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np

from ... import ops
from ...grad_mode import no_grad
from ...gradcheck import register_case
from ...tensor import Tensor
from ..classifiers.lenet import Classifier
from ..image_model import parameter_case
from ..base import DataInfo, register_model
from .vae import VAE, _VAE_DEFAULTS, _vae_kwargs

__all__ = ["FeatureConsistentVAE", "FEATURE_LAYERS"]

# Name -> index in the LeNet body (conv, ReLU, conv, ReLU, Flatten, Linear, ReLU) whose output is used.
FEATURE_LAYERS = {"conv1": 1, "conv2": 3, "fc": 6}


class FeatureConsistentVAE(VAE):
    """A VAE (MLP encoder and decoder, as ``VAE``) whose loss adds a frozen LeNet's feature distances.

    feature_layers: names from ``FEATURE_LAYERS``; feature_weight: their weight against the pixel
    loss; classifier_width, classifier_features: the LeNet's width w and feature size F;
    classifier_epochs, classifier_seed: how ``prepare`` trains it. Other options as in ``VAE``.
    """

    def __init__(self, image_shape, num_classes: int = 10, feature_layers: Sequence[str] = ("conv1", "conv2"),
                 feature_weight: float = 0.5, classifier_width: int = 16, classifier_features: int = 64,
                 classifier_epochs: int = 2, classifier_seed: int = 1, rng=None, **kwargs):
        unknown = [name for name in feature_layers if name not in FEATURE_LAYERS]
        if unknown or not feature_layers:
            raise ValueError(f"FeatureConsistentVAE: feature_layers must be a non-empty list of {', '.join(FEATURE_LAYERS)}, "
                             f"got {list(feature_layers)}")
        if feature_weight < 0:
            raise ValueError(f"FeatureConsistentVAE: feature_weight must be >= 0, got {feature_weight}")
        if int(num_classes) < 2:
            raise ValueError(f"FeatureConsistentVAE: the classifier needs at least 2 classes, got num_classes={num_classes}")
        rng = np.random.default_rng(rng)
        super().__init__(image_shape, rng=rng, **kwargs)  # builds the VAE and its optimiser (VAE parameters only)
        self.feature_layers, self.feature_weight = tuple(feature_layers), float(feature_weight)
        self.classifier_epochs, self.classifier_seed = int(classifier_epochs), int(classifier_seed)
        self.classifier = Classifier(self.image_shape, int(num_classes), width=int(classifier_width),
                                     feature_dim=int(classifier_features), rng=rng, dtype=self.dtype)
        self.classifier.requires_grad_(False)  # frozen, except while prepare trains it
        self.register_buffer("classifier_trained", np.zeros(1, dtype=np.int64))
        self.register_buffer("classifier_accuracy", np.zeros(1, dtype=np.float64))

    # ---- the frozen classifier ---------------------------------------------------------------------
    def prepare(self, x, y=None) -> None:
        """Train the classifier on the training images and labels, then freeze it (not on resume:
        its weights are in the checkpoint)."""
        labels = np.zeros(len(x), np.int64) if y is None else np.asarray(y, dtype=np.int64)
        if len(np.unique(labels)) < 2:
            raise ValueError("FeatureConsistentVAE.prepare: its feature classifier needs labels of at least 2 classes, "
                             f"got only {np.unique(labels).tolist()} (pass y to fit)")
        print(f"fcvae: training its feature classifier (LeNet, {self.classifier_epochs} epochs on {len(x)} images), "
              f"then freezing it", flush=True)
        self.classifier.requires_grad_(True)
        self.classifier.fit(x, labels, epochs=self.classifier_epochs, batch_size=64, rng=self.classifier_seed)
        self.classifier.requires_grad_(False)
        self.classifier_trained[0] = 1
        self.classifier_accuracy[0] = self.classifier.accuracy(x, labels)

    def features(self, images: Tensor) -> List[Tensor]:
        """The classifier's activations at ``feature_layers`` for images (N, C, H, W) (a Tensor: gradients
        flow to the images, never to the frozen weights)."""
        wanted = {FEATURE_LAYERS[name] for name in self.feature_layers}
        found, h = [], images
        for index, layer in enumerate(self.classifier.body):
            h = layer(h)
            if index in wanted:
                found.append(h)
            if index >= max(wanted):
                break
        return found

    def feature_loss(self, mean_images: Tensor, x) -> Tensor:
        """sum_l ||phi_l(x_hat) - phi_l(x)||^2, summed over each layer's elements, averaged over the batch.

        mean_images: x_hat (N, D) as a Tensor; x: (N, D) data. phi(x) is a constant (computed without a graph).
        """
        shape = (-1,) + self.image_shape
        with no_grad():
            targets = [t.data for t in self.features(Tensor(self._xp().asarray(x).reshape(shape)))]
        total = None
        for predicted, target in zip(self.features(ops.reshape(mean_images, shape)), targets):
            term = ops.mse_loss(predicted, target, reduction="batch_sum")
            total = term if total is None else total + term
        return total

    # ---- the loss ------------------------------------------------------------------------------------
    def loss(self, x, eps, y=None, kl_weight: Optional[float] = None) -> Tuple[Tensor, Dict[str, Tensor]]:
        """-log p(x|z) + feature_weight * feature distance + beta * KL for x (N, D) and noise eps (N, latent).

        Parts: "reconstruction" (the pixel term), "features" (unweighted), "kl": batch means.
        ``kl_weight``: instead of beta (the KL warm-up's weight, from ``train_step``).
        """
        x = self._flat_tensor(x)
        eps = self._check_eps(eps, (x.shape[0], self.latent_dim))
        mu, logvar = self.encode(x)
        out = self.decode(ops.reparameterize(mu, logvar, eps))
        reconstruction = self.reconstruction_nll(out, x.data)
        kl = ops.gaussian_kl_standard(mu, logvar, reduction="batch_sum")
        mean_images = ops.sigmoid(out) if self.decoder_kind == "bernoulli" else out
        features = self.feature_loss(mean_images, x.data)
        weight = self.beta if kl_weight is None else kl_weight
        total = reconstruction + self.feature_weight * features + (weight * kl if weight != 1.0 else kl)
        return total, {"reconstruction": reconstruction, "features": features, "kl": kl}

    def train_step(self, x, y, rng: np.random.Generator) -> Dict[str, float]:
        if not int(self.classifier_trained[0]):
            raise RuntimeError("FeatureConsistentVAE: its feature classifier is untrained; train with fit() or "
                               "scratchgen train (which call prepare(x, y) first), or call prepare(x, y) yourself")
        return super().train_step(x, y, rng)

    def evaluate(self, x, y, rng: np.random.Generator, batch_size: int = 1000) -> Dict[str, float]:
        """The VAE's metrics (-ELBO of the Bernoulli/Gaussian decoder, its terms, active units), the
        feature distance of the posterior-mean reconstructions, and the classifier's training accuracy."""
        metrics = super().evaluate(x, y, rng, batch_size)
        total = 0.0
        with no_grad():
            for start in range(0, len(x), batch_size):
                xb = self.as_flat(x[start:start + batch_size])
                mu, _ = self.encode(xb)
                out = self.decode(mu)
                mean_images = ops.sigmoid(out) if self.decoder_kind == "bernoulli" else out
                total += float(self.feature_loss(mean_images, xb).data) * len(xb)
        metrics["feature_distance"] = total / len(x)
        metrics["classifier_train_accuracy"] = float(self.classifier_accuracy[0])
        return metrics


# ---- CLI registration ----------------------------------------------------------------------------
@register_model("fcvae", family="vae",
                defaults={**_VAE_DEFAULTS, "feature_layers": ["conv1", "conv2"], "feature_weight": 0.5,
                          "classifier_width": 16, "classifier_features": 64, "classifier_epochs": 2, "classifier_seed": 1},
                description="feature-consistent VAE: pixel loss + distances in a frozen LeNet's features (Hou et al. 2017)")
def build_fcvae(config: Dict, data_info: DataInfo, rng) -> FeatureConsistentVAE:
    return FeatureConsistentVAE(data_info.image_shape, num_classes=data_info.num_classes,
                                feature_layers=list(config["feature_layers"]), feature_weight=float(config["feature_weight"]),
                                classifier_width=int(config["classifier_width"]),
                                classifier_features=int(config["classifier_features"]),
                                classifier_epochs=int(config["classifier_epochs"]),
                                classifier_seed=int(config["classifier_seed"]),
                                hidden_layers=int(config["hidden_layers"]), rng=rng, **_vae_kwargs(config))


# ---- gradcheck case: the whole loss, through the frozen classifier, noise held fixed ---------------
def _tiny_case(rng):
    model = FeatureConsistentVAE((1, 4, 4), num_classes=3, feature_layers=("conv1", "conv2", "fc"), feature_weight=0.7,
                                 classifier_width=2, classifier_features=3, hidden=4, latent=2, activation="tanh",
                                 rng=rng, dtype=np.float64)
    x = rng.uniform(0.05, 0.95, (3, 16))
    eps = rng.standard_normal((3, 2))
    return parameter_case(model, lambda: model.loss(x, eps)[0])


register_case("fcvae_loss")(_tiny_case)
