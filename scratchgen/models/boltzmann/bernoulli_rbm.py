"""``BernoulliRBM``: binary visible and hidden units, trained with CD-k or PCD-k.

Energy and free energy (v (V,) visible, h (H,) hidden, W (V, H), b (V,), c (H,)):

    E(v, h) = -b.v - c.h - v^T W h
    F(v)    = -log sum_h exp(-E(v, h)) = -b.v - sum_j softplus(c_j + v.W_j)

softplus(a) = log(1 + e^a) is the stable ``softplus_forward`` kernel (max(a, 0) + log1p(e^-|a|), never
overflowing; ``numpy.logaddexp(0, a)`` is as stable but about 5x slower). The
conditionals are the Gibbs kernels of ``scratchgen/ops/rbm.py`` (called through ``kernel(...)``, so
the Numba/CUDA/CuPy versions run when their backend is selected), and F(v) is the differentiable
op ``scratchgen.bernoulli_free_energy`` there, so that ``F`` can be put through autograd.

Why W is (V, H), not (out, in) like ``linear``: an RBM has no direction. The same W_ij joins
visible unit i and hidden unit j in both conditionals (v W for the hidden units, h W^T for the
visible ones) and in the energy v^T W h, which is how the RBM literature writes it (Hinton 2010);
(V, H) keeps every formula here letter for letter the same as in the papers. The data and model statistics:

    dlogp/dW = <v h^T>_data - <v h^T>_model     dlogp/db = <v>_data - <v>_model     dlogp/dc = <h>_data - <h>_model

Data: values in [0, 1]. Binary data is the model's domain, but probabilities (grey levels) are
accepted and used as they are in the positive phase (the "mean-field data" of many RBM codes);
binarise first (``scratchgen.data.binarize``) for likelihoods comparable with the literature.
Anything else (integers, NaN, values outside [0, 1], the wrong number of features) is an error.

Familiar to scikit-learn users: ``fit``, ``partial_fit``, ``transform``, ``score``; unlike
scikit-learn, ``score`` is a real log-likelihood (exact or AIS), not a one-bit pseudo-likelihood.

    rbm = BernoulliRBM(784, 500, k=1, persistent=True, lr=0.01, rng=0)
    rbm.fit(x_train, epochs=10, batch_size=64)        # the same loop as `scratchgen train rbm`
    log_z = scratchgen.evaluation.ais.ais_log_partition(rbm, data=x_train)
    print(rbm.score(x_test, log_z))

By default the visible biases start at the log-odds of the training data's pixel means
(``visible_bias_init="data"``, Hinton 2010 sec. 8.1): ``fit`` and ``scratchgen train`` both do it
before the first update (the training loop calls ``prepare``).
"""
from __future__ import annotations

import numpy as np

from ...backend import get_array_module, kernel
from ...ops.rbm import bernoulli_free_energy_forward
from ..base import register_model
from .enumeration import bernoulli_rbm_log_partition
from .helpers import as_feature_matrix, base_rate_visible_bias, host64, random_uniform
from .rbm import EXACT_MAX_UNITS, RBMBase

__all__ = ["BernoulliRBM"]


class BernoulliRBM(RBMBase):
    """Binary-binary RBM. See ``RBMBase`` for the options (k, persistent, lr, momentum, ...).

    ``visible_bias_init``: "data" (default: the training data's log-odds, set by ``prepare``) or
    "zero" (b = 0 until trained).
    """

    binary_visible = True

    def __init__(self, n_visible: int, n_hidden: int, *, visible_bias_init: str = "data", **options):
        super().__init__(n_visible, n_hidden, **options)
        if visible_bias_init not in ("data", "zero"):
            raise ValueError(f"BernoulliRBM: visible_bias_init must be 'data' or 'zero', got {visible_bias_init!r}")
        self.visible_bias_init = visible_bias_init

    def prepare(self, x, y=None) -> None:
        """Start the visible biases at the data's log-odds (unless ``visible_bias_init="zero"``)."""
        if self.visible_bias_init == "data":
            self.initialize_visible_bias(x)

    # ---- conditionals (the kernels) ------------------------------------------------------------
    def hidden_probabilities(self, v):
        """sigmoid(v W + c): (N, V) -> (N, H)."""
        return kernel("sigmoid_forward")(v @ self.weight.data + self.hidden_bias.data)

    def pcd_hidden(self, v_data, v_neg, rng):
        """Both hidden layers of a PCD update in one kernel (``rbm_pcd_hidden``)."""
        uniforms = random_uniform(rng, (v_neg.shape[0], self.n_hidden), v_neg)
        return kernel("rbm_pcd_hidden")(v_data, v_neg, self.weight.data, self.hidden_bias.data, uniforms)

    def visible_means(self, h):
        """p(v = 1 | h) = sigmoid(h W^T + b): (N, H) -> (N, V)."""
        return kernel("sigmoid_forward")(h @ self.weight.data.T + self.visible_bias.data)

    def sample_hidden(self, v, rng=None, uniforms=None):
        """(h_prob, h_sample) from p(h | v); ``uniforms`` (N, H) or drawn from ``rng``."""
        if uniforms is None:
            uniforms = random_uniform(rng, (v.shape[0], self.n_hidden), v)
        return kernel("rbm_sample_hidden")(v, self.weight.data, self.hidden_bias.data, uniforms)

    def sample_visible(self, h, rng=None, uniforms=None):
        """(v_prob, v_sample) from p(v | h); ``uniforms`` (N, V) or drawn from ``rng``."""
        if uniforms is None:
            uniforms = random_uniform(rng, (h.shape[0], self.n_visible), h)
        return kernel("rbm_sample_visible")(h, self.weight.data, self.visible_bias.data, uniforms)

    def gibbs_step(self, v, rng=None, uniforms_h=None, uniforms_v=None):
        """One fused sweep v -> h -> v' (the ``rbm_gibbs_step`` kernel). Returns (h_prob, h, v_prob, v')."""
        if uniforms_h is None:
            uniforms_h = random_uniform(rng, (v.shape[0], self.n_hidden), v)
        if uniforms_v is None:
            uniforms_v = random_uniform(rng, (v.shape[0], self.n_visible), v)
        return kernel("rbm_gibbs_step")(v, self.weight.data, self.visible_bias.data, self.hidden_bias.data,
                                        uniforms_h, uniforms_v)

    # ---- energies ------------------------------------------------------------------------------
    def energy(self, v, h):
        """E(v, h) = -b.v - c.h - v^T W h per example: (N, V), (N, H) -> (N,)."""
        return -(v @ self.visible_bias.data) - (h @ self.hidden_bias.data) - ((v @ self.weight.data) * h).sum(axis=1)

    def free_energy(self, v):
        """F(v) per example (N,) in the model's dtype, on arrays (``scratchgen.bernoulli_free_energy``
        is the same function as a differentiable op on Tensors)."""
        return bernoulli_free_energy_forward(v, self.weight.data, self.visible_bias.data, self.hidden_bias.data)

    def free_energy_float64(self, v):
        """F(v) (N,) in float64 on the host: what likelihoods and monitors use."""
        return bernoulli_free_energy_forward(host64(v), host64(self.weight.data), host64(self.visible_bias.data),
                                             host64(self.hidden_bias.data))

    def flipped_free_energies_float64(self, v: np.ndarray, bits: np.ndarray) -> np.ndarray:
        """F(v^(i)) for each example of v (N, V) and each bit i in ``bits``: (N, len(bits)), float64.

        Flipping bit i changes the hidden inputs a = c + v W by d_i W_i (d_i = 1 - 2 v_i), so all
        the flips cost O(N len(bits) H) from one product (the pseudo-likelihood's inner loop).
        """
        w, b, c = host64(self.weight.data), host64(self.visible_bias.data), host64(self.hidden_bias.data)
        a = v @ w + c  # (N, H)
        flips = 1.0 - 2.0 * v[:, bits]  # (N, B): +1 turns a bit on, -1 off
        a_flipped = a[:, None, :] + flips[:, :, None] * w[bits][None, :, :]  # (N, B, H)
        return -(v @ b)[:, None] - flips * b[bits][None, :] - kernel("softplus_forward")(a_flipped).sum(axis=2)

    def exact_log_partition(self, block_size: int = 4096) -> float:
        """log Z, enumerating the smaller layer (``enumeration.bernoulli_rbm_log_partition``)."""
        return bernoulli_rbm_log_partition(self.weight.data, self.visible_bias.data, self.hidden_bias.data, block_size)

    def statistics_gradient(self, v_pos, h_pos_prob, v_neg, h_neg_prob):
        grad_w, grad_b, grad_c = kernel("rbm_cd_statistics")(v_pos, h_pos_prob, v_neg, h_neg_prob)
        return {"weight": grad_w, "visible_bias": grad_b, "hidden_bias": grad_c}

    # ---- data ----------------------------------------------------------------------------------
    def check_data(self, x, where: str):
        """x: (N, V) or (N, C, H, W) floating, values in [0, 1] -> (N, V) in the model's dtype and device."""
        owner = f"{type(self).__name__}.{where}"
        x = as_feature_matrix(x, self.n_visible, owner, self.weight.data)
        xp = get_array_module(x)
        if x.size:
            low, high = float(xp.min(x)), float(xp.max(x))
            if not (0.0 <= low and high <= 1.0):  # also catches NaN
                raise ValueError(f"{owner}: visible values must be in [0, 1] (binary, or probabilities), "
                                 f"got values in [{low}, {high}]")
        return x

    def initialize_visible_bias(self, x, smoothing: float = 0.5) -> "BernoulliRBM":
        """Set b to the log-odds of the pixel means of data x (Hinton 2010 sec. 8.1): with W small, the
        model then starts as the data's base-rate model instead of a uniform one. Returns self."""
        bias = base_rate_visible_bias(self.check_data(x, "initialize_visible_bias"), smoothing)
        self.visible_bias.data[...] = get_array_module(self.weight.data).asarray(bias, dtype=self.dtype)
        return self

    def initial_visible(self, n: int, rng):
        """Chain starts: independent bits with the model's visible base rates sigmoid(b)."""
        p = kernel("sigmoid_forward")(self.visible_bias.data)
        return (random_uniform(rng, (n, self.n_visible), self.weight.data) < p).astype(self.dtype)


# Hinton's recipe (2010, sec. 8-10): momentum 0.5, L2 weight decay 1e-4, visible biases at the
# data's log-odds; PCD-1 on dynamically binarised data.
RBM_DEFAULTS = {"hidden": 256, "k": 1, "persistent": True, "n_chains": 64, "lr": 0.01, "momentum": 0.5,
                "weight_decay": 1e-4, "sparsity_target": None, "sparsity_cost": 0.0, "init_std": 0.01,
                "visible_bias_init": "data", "exact_max_units": EXACT_MAX_UNITS, "binarize": "dynamic"}


@register_model("rbm", family="boltzmann", description="Bernoulli RBM, CD-k or PCD-k (binarise the data)",
                defaults=RBM_DEFAULTS)
def build_bernoulli_rbm(config, data_info, rng) -> BernoulliRBM:
    return BernoulliRBM(
        data_info.num_features, config["hidden"], k=config["k"], persistent=config["persistent"],
        n_chains=config["n_chains"], lr=config["lr"], momentum=config["momentum"],
        weight_decay=config["weight_decay"], sparsity_target=config["sparsity_target"],
        sparsity_cost=config["sparsity_cost"], init_std=config["init_std"],
        visible_bias_init=config["visible_bias_init"], image_shape=data_info.image_shape, rng=rng,
    )
