"""Bernoulli naive Bayes: a generative classifier p(x, y) = p(y) prod_d p(x_d | y), fitted by counting.

The model, for binary features x in {0, 1}^D and K classes:

    p(y = k) = pi_k,        p(x | y = k) = prod_d theta_kd^x_d (1 - theta_kd)^(1 - x_d)

"naive": the features are independent *given the class*. Maximum likelihood is counting; with
alpha pseudo-counts of each outcome (alpha = 1: Laplace's rule of succession), so that a pixel
never seen on in class k does not get probability 0 (and log 0 = -inf) there:

    N_k = #{n : y_n = k},    C_kd = sum_{n : y_n = k} x_nd
    theta_kd = (C_kd + alpha) / (N_k + 2 alpha),     pi_k = (N_k + alpha) / (N + K alpha)

Grey levels x in [0, 1] count fractionally ("soft counts"); train on binarised pixels for the
model above (``scratchgen train naive-bayes`` binarises at 0.5 by default).

Classification by Bayes' rule, in log space:

    log p(x, y = k) = log pi_k + sum_d [x_d log theta_kd + (1 - x_d) log(1 - theta_kd)]
                    = log pi_k + sum_d log(1 - theta_kd) + x . w_k,      w_kd = log theta_kd - log(1 - theta_kd)
    log p(y = k | x) = log p(x, y = k) - logsumexp_k' log p(x, y = k')

So log p(y | x) is a softmax of a *linear* function of x: the same family of classifiers as
(multinomial) logistic regression. Naive Bayes picks the weights by counting (a model of x),
logistic regression by maximising the conditional likelihood (a model of y given x): Ng & Jordan
(2002) compare the two, ``scratchgen.experiments.generative_vs_discriminative`` repeats it.

Generation is ancestral: y ~ Categorical(pi), then x_d ~ Bernoulli(theta_yd) independently.

How counting fits the training loop (it is not a gradient step): ``train_step`` adds the batch's
counts into buffers (N_k, C_kd) and reports -log p(x, y) of the batch under the parameters of
the previous epoch; ``finish_epoch`` turns the epoch's counts into (pi, theta) and clears them.
One epoch is therefore one complete count of the training split, and every epoch recounts it
(with static binarisation every epoch gives the same estimate; with dynamic binarisation each
epoch counts a fresh draw). The counts are float64 buffers in the checkpoint, so an interrupted
epoch resumes exactly where it stopped.
"""
from __future__ import annotations

import os
from typing import Dict, Optional

import numpy as np

from ... import nn
from ...device import to_numpy
from ..base import DataInfo, GenerativeModel, register_model
from .log_space import flat_float64, log_sum_exp

__all__ = ["BernoulliNaiveBayes"]


class BernoulliNaiveBayes(GenerativeModel):
    """Naive Bayes over D binary features and K classes. alpha: pseudo-counts of each outcome (> 0).

    Parameters (fitted by counting, never by gradients: ``requires_grad`` is off): ``class_prior``
    pi (K,) and ``feature_prob`` theta (K, D), float64. Before the first count they are uniform
    (pi_k = 1/K, theta = 1/2). Buffers: ``class_counts`` N_k (K,) and ``feature_counts`` C_kd (K, D)
    of the epoch under way.
    """

    def __init__(self, image_shape, num_classes: int, alpha: float = 1.0):
        super().__init__()
        if int(num_classes) < 2:
            raise ValueError(f"BernoulliNaiveBayes: num_classes must be >= 2, got {num_classes}")
        if not alpha > 0:
            raise ValueError(f"BernoulliNaiveBayes: alpha must be > 0 (pseudo-counts keep log theta finite), got {alpha}")
        self.image_shape = tuple(int(s) for s in image_shape)
        self.num_features, self.num_classes, self.alpha = int(np.prod(self.image_shape)), int(num_classes), float(alpha)
        k, d = self.num_classes, self.num_features
        self.class_prior = nn.Parameter(np.full(k, 1.0 / k), requires_grad=False)
        self.feature_prob = nn.Parameter(np.full((k, d), 0.5), requires_grad=False)
        self.register_buffer("class_counts", np.zeros(k))
        self.register_buffer("feature_counts", np.zeros((k, d)))

    # ---- fitting: counting ------------------------------------------------------------------------
    def _labels(self, y, n: int) -> np.ndarray:
        if y is None:
            raise ValueError("BernoulliNaiveBayes: labels y are required (it models p(x, y))")
        y = to_numpy(y).astype(np.int64, copy=False).reshape(-1)
        if len(y) != n:
            raise ValueError(f"BernoulliNaiveBayes: {n} examples but {len(y)} labels")
        if len(y) and (y.min() < 0 or y.max() >= self.num_classes):
            raise ValueError(f"BernoulliNaiveBayes: labels must lie in [0, {self.num_classes}), got [{y.min()}, {y.max()}]")
        return y

    def count(self, x, y) -> None:
        """Add the counts of a batch: N_k += #{y_n = k}, C_kd += sum_{y_n = k} x_nd (one GEMM with one-hot y)."""
        x = flat_float64(x, self.num_features, "BernoulliNaiveBayes")
        y = self._labels(y, len(x))
        one_hot = np.zeros((len(y), self.num_classes))
        one_hot[np.arange(len(y)), y] = 1.0
        self.class_counts += one_hot.sum(axis=0)
        self.feature_counts += one_hot.T @ x

    def estimate(self) -> None:
        """(pi, theta) from the counts, with alpha pseudo-counts (module docstring); then clear the counts."""
        n_k, alpha = self.class_counts, self.alpha
        self.feature_prob.data[...] = (self.feature_counts + alpha) / (n_k[:, None] + 2 * alpha)
        self.class_prior.data[...] = (n_k + alpha) / (n_k.sum() + self.num_classes * alpha)
        self.class_counts[...] = 0.0
        self.feature_counts[...] = 0.0

    def train_step(self, x, y, rng: np.random.Generator) -> Dict[str, float]:
        """Count the batch. Reports -log p(x, y) per example under the parameters of the previous epoch."""
        neg_log_joint = -float(self.log_joint_of_labels(x, y).mean())
        self.count(x, y)
        return {"neg_log_joint": neg_log_joint}

    def finish_epoch(self, x, y) -> None:
        """The epoch's counts become the parameters (if anything was counted)."""
        if self.class_counts.sum() > 0:
            self.estimate()

    # ---- the model ----------------------------------------------------------------------------------
    def log_joint(self, x) -> np.ndarray:
        """log p(x, y = k) for every class: (N, K) = log pi + sum_d log(1 - theta) + x @ (log theta - log(1 - theta))^T."""
        x = flat_float64(x, self.num_features, "BernoulliNaiveBayes")
        theta = self.feature_prob.data
        log_on, log_off = np.log(theta), np.log1p(-theta)
        return np.log(self.class_prior.data) + log_off.sum(axis=1) + x @ (log_on - log_off).T

    def log_joint_of_labels(self, x, y) -> np.ndarray:
        """log p(x_n, y_n) (N,)."""
        joint = self.log_joint(x)
        return joint[np.arange(len(joint)), self._labels(y, len(joint))]

    def log_marginal(self, x) -> np.ndarray:
        """log p(x) = logsumexp_k log p(x, y = k): (N,)."""
        return log_sum_exp(self.log_joint(x), axis=1)

    def predict_log_proba(self, x) -> np.ndarray:
        """log p(y | x) (N, K) by Bayes' rule."""
        joint = self.log_joint(x)
        return joint - log_sum_exp(joint, axis=1)[:, None]

    def predict(self, x) -> np.ndarray:
        """The most probable class of each example (N,)."""
        return self.log_joint(x).argmax(axis=1)

    def evaluate(self, x, y, rng: Optional[np.random.Generator] = None) -> Dict[str, float]:
        """Test error of the Bayes classifier, -log p(x, y) and -log p(x) in nats per example."""
        joint = self.log_joint(x)
        y = self._labels(y, len(joint))
        return {"error": float((joint.argmax(axis=1) != y).mean()),
                "neg_log_joint": float(-joint[np.arange(len(y)), y].mean()),
                "neg_log_likelihood": float(-log_sum_exp(joint, axis=1).mean())}

    # ---- generation: ancestral sampling --------------------------------------------------------------
    def sample(self, n: int, rng: np.random.Generator, y=None) -> np.ndarray:
        """n binary images: y ~ Categorical(pi) (or the labels ``y`` given), then x_d ~ Bernoulli(theta_yd)."""
        if y is None:
            y = rng.choice(self.num_classes, size=n, p=self.class_prior.data / self.class_prior.data.sum())
        y = self._labels(y, n)
        x = (rng.random((n, self.num_features)) < self.feature_prob.data[y]).astype(np.float64)
        return x.reshape((n,) + self.image_shape)

    def save_pictures(self, out_dir, data, rng: np.random.Generator, tag: str = ""):
        """``class_means``: theta_k per class (the mean image of p(x | y = k)); ``samples``: row k holds
        10 draws of x ~ p(x | y = k) (the second step of ancestral sampling)."""
        from ...plots import save_image_grid

        suffix, scale = (f"_{tag}" if tag else ""), max(1, 84 // max(self.image_shape[1:]))
        means = self.feature_prob.data.reshape((self.num_classes,) + self.image_shape)
        labels = np.repeat(np.arange(self.num_classes), 10)
        return [save_image_grid(means, os.path.join(out_dir, f"class_means{suffix}.png"), nrow=self.num_classes, scale=scale),
                save_image_grid(self.sample(len(labels), rng, y=labels), os.path.join(out_dir, f"samples{suffix}.png"),
                                nrow=10, scale=scale)]


@register_model("naive-bayes", family="classical", defaults={"alpha": 1.0, "epochs": 1, "batch_size": 500,
                                                              "binarize": "static"},
                description="Bernoulli naive Bayes p(y) prod_d p(x_d | y), fitted by counting (one epoch = one count)")
def build_naive_bayes(config: Dict, data_info: DataInfo, rng) -> BernoulliNaiveBayes:
    return BernoulliNaiveBayes(data_info.image_shape, max(2, data_info.num_classes), alpha=float(config["alpha"]))
