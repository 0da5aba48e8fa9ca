"""What every restricted Boltzmann machine shares: parameters, CD-k / PCD training, the API.

An RBM is an energy-based model p(v, h) = exp(-E(v, h)) / Z over visible units v (V,) and hidden
units h (H,) with no visible-visible or hidden-hidden connections. The subclasses fix the
visible units (``BernoulliRBM``: binary; ``GaussianBernoulliRBM``: real-valued) and supply

    sample_hidden(v, rng) -> (h_prob, h_sample)       p(h | v), one matrix product
    sample_visible(h, rng) -> (v_mean, v_sample)      p(v | h), one matrix product
    free_energy(v) -> (N,)                            F(v) = -log sum_h exp(-E(v, h))
    statistics_gradient(v_pos, h_pos, v_neg, h_neg)   data minus model statistics

Training maximises the mean log-likelihood  log p(v) = -F(v) - log Z, whose gradient is

    d log p(v) / d theta = -dF(v)/d theta + E_model[dF(v')/d theta]

The model expectation is intractable; contrastive divergence estimates it from Gibbs chains
(Hinton 2002; Hinton 2010, "A practical guide to training RBMs"):

* CD-k starts each chain at the data and runs k sweeps;
* PCD (Tieleman 2008) keeps ``n_chains`` persistent chains and advances them k sweeps per update.

One update, in the order the code runs it (k = 1 costs 5 matrix products, like scikit-learn)::

    h_pos_prob, h0 = p(h | v_data)                  # positive phase (statistics from probabilities)
    h = h0 (CD) or the stored chain states (PCD)
    v = sample p(v | h); then k - 1 more sweeps     # the chain runs on samples
    h_neg_prob, h_next = p(h | v)                   # negative phase; h_next is the next PCD state
    step = statistics_gradient(...) - weight_decay W + sparsity term
    optimizer (SGD with momentum) adds lr * step

With PCD the stored hidden states were drawn under the previous parameters (scikit-learn does
the same); after a small update that is still a valid transition of the chain.

Options: learning rate, momentum, L2 weight decay on W only (not the biases, Hinton 2010 sec. 10),
and a sparsity target p with cost lambda (sec. 11): a running mean q of each hidden unit's
activity pulls the hidden bias by lambda (p - q) and the weights by lambda <v> (p - q).

Randomness: every sampling method takes ``rng`` (a ``numpy.random.Generator``), or explicit
``uniforms``/``noise``; nothing reads global state. Data: (N, V) matrices or (N, C, H, W) images.
"""
from __future__ import annotations

from typing import Dict, List, Optional, Tuple

import numpy as np

from ...backend import get_array_module
from ...nn import Parameter
from ...optim import SGD
from ..base import GenerativeModel
from . import monitors
from .helpers import positive_int, random_uniform, square_image_shape

__all__ = ["RBMBase", "EXACT_MAX_UNITS", "MONITOR_EVERY", "RECENT_ROWS"]

EXACT_MAX_UNITS = 20  # enumerate log Z exactly (2^20 states in blocks) when the smaller layer is this small
MONITOR_EVERY = 10  # measure the training reconstruction error on every 10th update
RECENT_ROWS = 1000  # training rows kept for the free-energy gap

class RBMBase(GenerativeModel):
    """Shared parameters and training of RBMs. Subclasses define the visible units (see module doc)."""

    def __init__(self, n_visible: int, n_hidden: int, *, k: int = 1, persistent: bool = False,
                 n_chains: int = 64, lr: float = 0.01, momentum: float = 0.0, weight_decay: float = 0.0,
                 sparsity_target: Optional[float] = None, sparsity_cost: float = 0.0, sparsity_decay: float = 0.9,
                 init_std: float = 0.01, image_shape=None, dtype=np.float32, rng=None):
        super().__init__()
        owner = type(self).__name__
        positive_int(owner, n_visible=n_visible, n_hidden=n_hidden, k=k, n_chains=n_chains)
        if not lr > 0:
            raise ValueError(f"{owner}: lr must be > 0, got {lr}")
        if weight_decay < 0 or sparsity_cost < 0 or init_std < 0:
            raise ValueError(f"{owner}: weight_decay, sparsity_cost and init_std must be >= 0, "
                             f"got {weight_decay}, {sparsity_cost}, {init_std}")
        if sparsity_target is not None and not 0 < sparsity_target < 1:
            raise ValueError(f"{owner}: sparsity_target must be in (0, 1), got {sparsity_target}")
        dtype = np.dtype(dtype)
        if dtype.kind != "f":
            raise TypeError(f"{owner}: dtype must be floating, got {dtype}")
        rng = np.random.default_rng(rng)
        self.n_visible, self.n_hidden = int(n_visible), int(n_hidden)
        self.k, self.persistent, self.momentum = int(k), bool(persistent), float(momentum)
        self.weight_decay, self.sparsity_cost, self.sparsity_decay = float(weight_decay), float(sparsity_cost), float(sparsity_decay)
        self.sparsity_target = None if sparsity_target is None else float(sparsity_target)
        self.image_shape = tuple(image_shape) if image_shape is not None else square_image_shape(self.n_visible)
        if int(np.prod(self.image_shape)) != self.n_visible:
            raise ValueError(f"{owner}: image_shape {self.image_shape} has {int(np.prod(self.image_shape))} pixels, "
                             f"n_visible is {self.n_visible}")

        # Weights N(0, 0.01^2), biases 0 (Hinton 2010 sec. 8); weight is (V, H) as in the kernels.
        self.weight = Parameter(rng.normal(0.0, init_std, (self.n_visible, self.n_hidden)).astype(dtype))
        self.visible_bias = Parameter(np.zeros(self.n_visible, dtype=dtype))
        self.hidden_bias = Parameter(np.zeros(self.n_hidden, dtype=dtype))
        if self.persistent:
            # The persistent chains' hidden states; a buffer, so checkpoints resume the chains.
            self.register_buffer("chain_hidden", (rng.random((n_chains, self.n_hidden)) < 0.5).astype(dtype))
        if self.sparsity_target is not None:
            self.register_buffer("hidden_activity", np.full(self.n_hidden, self.sparsity_target, dtype=dtype))
        # The last RECENT_ROWS training examples seen (a ring buffer; ``recent_seen`` counts every row
        # written), for the free-energy gap. Buffers, so a resumed run reports the same gap.
        self.register_buffer("recent_training_rows", np.zeros((RECENT_ROWS, self.n_visible), dtype=dtype))
        self.register_buffer("recent_seen", np.zeros(1, dtype=np.int64))
        self.optimizers = {"rbm": SGD([self.weight, self.visible_bias, self.hidden_bias], lr=lr, momentum=momentum)}
        self.history: List[Dict[str, float]] = []  # per-epoch metrics recorded by ``fit``

    # ---- facts ---------------------------------------------------------------------------------
    @property
    def dtype(self):
        return self.weight.data.dtype

    @property
    def lr(self) -> float:
        return self.optimizers["rbm"].lr

    @property
    def enumerated_units(self) -> int:
        """How many units an exact log Z must enumerate (2^this states): the smaller layer."""
        return min(self.n_visible, self.n_hidden)

    def extra_repr(self) -> str:
        chain = f"PCD-{self.k}" if self.persistent else f"CD-{self.k}"
        return f"n_visible={self.n_visible}, n_hidden={self.n_hidden}, {chain}, lr={self.lr}"

    # ---- what subclasses define ----------------------------------------------------------------
    def sample_hidden(self, v, rng=None, uniforms=None):
        raise NotImplementedError

    def sample_visible(self, h, rng=None, noise=None):
        raise NotImplementedError

    def free_energy(self, v):
        raise NotImplementedError

    def statistics_gradient(self, v_pos, h_pos_prob, v_neg, h_neg_prob) -> Dict[str, object]:
        raise NotImplementedError

    def check_data(self, x, where: str):
        """Validate data and return it as an (N, V) matrix in the model's space, dtype and device."""
        raise NotImplementedError

    def to_data_space(self, v):
        """Map model-space visible values back to data values (identity except for standardised data)."""
        return v

    # ---- conditionals and chains ---------------------------------------------------------------
    def hidden_probabilities(self, v):
        """p(h = 1 | v): (N, V) -> (N, H), deterministic."""
        raise NotImplementedError

    def visible_means(self, h):
        """E[v | h]: (N, H) -> (N, V), the mean-field visible values (probabilities for binary units)."""
        raise NotImplementedError

    def gibbs_step(self, v, rng):
        """One sweep v -> h -> v'. Returns (h_prob, h_sample, v_mean, v_sample)."""
        h_prob, h = self.sample_hidden(v, rng)
        v_mean, v_next = self.sample_visible(h, rng)
        return h_prob, h, v_mean, v_next

    def gibbs(self, v, n_steps: int = 1, rng=None):
        """Run ``n_steps`` Gibbs sweeps from visible states v (N, V) (model space). Returns (v_mean, v_sample)."""
        rng = np.random.default_rng(rng)
        v_mean = v
        for _ in range(n_steps):
            _, _, v_mean, v = self.gibbs_step(v, rng)
        return v_mean, v

    # ---- training ------------------------------------------------------------------------------
    def negative_phase(self, h_start, rng) -> Tuple[object, object, object, object]:
        """Run the chain k sweeps from hidden states h_start (M, H).

        Returns (v_neg, h_neg_prob, h_next, v_first_mean): the chain's visible states after k
        sweeps, p(h | v_neg), the hidden states it continues from, and E[v | h_start] (the first
        sweep's visible means, which CD's reconstruction monitor reuses).
        """
        v, v_first_mean = self.visible_chain(h_start, rng)
        h_neg_prob, h_next = self.sample_hidden(v, rng)
        return v, h_neg_prob, h_next, v_first_mean

    def visible_chain(self, h_start, rng):
        """The visible half of ``negative_phase``: v ~ p(v | h_start), then k - 1 sweeps. Returns
        (v, E[v | h_start])."""
        v_first_mean, v = self.sample_visible(h_start, rng)
        for _ in range(self.k - 1):
            _, _, _, v = self.gibbs_step(v, rng)
        return v, v_first_mean

    def pcd_hidden(self, v_data, v_neg, rng):
        """(p(h | v_data), p(h | v_neg), a sample of the latter): PCD's positive phase and the end of
        its negative phase. Subclasses may compute both in one product (``BernoulliRBM``)."""
        h_pos_prob = self.hidden_probabilities(v_data)
        h_neg_prob, h_next = self.sample_hidden(v_neg, rng)
        return h_pos_prob, h_neg_prob, h_next

    def contrastive_divergence(self, v_data, rng) -> Tuple[Dict[str, object], Dict[str, object]]:
        """The CD-k / PCD-k estimate of the log-likelihood gradient on a batch (model space).

        Returns ``(gradients, info)``: gradients maps each parameter name to its *ascent*
        direction (data minus model statistics, before weight decay and sparsity); info has
        ``h_pos_prob``, ``v_neg``, ``h_next`` and ``v_first_mean`` (E[v | h] for h ~ p(h | v_data)
        with CD; None with PCD, whose chains do not start at the data).
        """
        if self.persistent:
            # The chains do not start at the data: run their visible part first, then both hidden
            # layers together (one stacked product on compiled backends; the same draws in the
            # same order as hidden_probabilities(v_data) followed by negative_phase).
            v_neg, v_first_mean = self.visible_chain(self.chain_hidden, rng)
            h_pos_prob, h_neg_prob, h_next = self.pcd_hidden(v_data, v_neg, rng)
        else:
            h_pos_prob, h_start = self.sample_hidden(v_data, rng)
            v_neg, h_neg_prob, h_next, v_first_mean = self.negative_phase(h_start, rng)
        gradients = self.statistics_gradient(v_data, h_pos_prob, v_neg, h_neg_prob)
        info = {"h_pos_prob": h_pos_prob, "v_neg": v_neg, "h_next": h_next,
                "v_first_mean": None if self.persistent else v_first_mean}
        return gradients, info

    def _regularise(self, gradients, v_data, h_pos_prob) -> None:
        """Add the weight-decay and sparsity terms to the ascent directions, in place."""
        if self.weight_decay:  # in place: the statistics' array is ours (the same numbers as a - wd W)
            gradients["weight"] -= self.dtype.type(self.weight_decay) * self.weight.data
        if self.sparsity_target is not None:
            decay = self.dtype.type(self.sparsity_decay)
            self.hidden_activity[...] = decay * self.hidden_activity + (1 - decay) * h_pos_prob.mean(axis=0)
            if self.sparsity_cost:
                pull = self.dtype.type(self.sparsity_cost) * (self.dtype.type(self.sparsity_target) - self.hidden_activity)
                gradients["hidden_bias"] = gradients["hidden_bias"] + pull
                gradients["weight"] = gradients["weight"] + v_data.mean(axis=0)[:, None] * pull[None, :]

    def apply_gradients(self, gradients) -> None:
        """Hand the ascent directions to the optimisers as descent gradients (``p.grad = -ascent``) and step.

        The arrays in ``gradients`` are consumed: they are negated in place.
        """
        for name, ascent in gradients.items():
            # the arrays are ours (fresh from the statistics): negate in place, no new allocation
            getattr(self, name).grad = get_array_module(ascent).negative(ascent, out=ascent)
        for optimizer in self.optimizers.values():
            optimizer.step()
            optimizer.zero_grad()

    def update(self, v_data, rng, monitor: bool = True) -> Dict[str, float]:
        """One CD/PCD parameter update on a validated model-space batch v_data (N, V).

        With ``monitor``, returns ``reconstruction_error``: the mean over the batch of
        sum_i (v_i - E[v_i | h])^2 with h ~ p(h | v) one sample (Hinton 2010 sec. 5), in data units.
        For CD that E[v | h] is the chain's first visible mean, already computed; PCD pays one
        more matrix product for it.
        """
        gradients, info = self.contrastive_divergence(v_data, rng)
        self._regularise(gradients, v_data, info["h_pos_prob"])
        if self.persistent:
            self.chain_hidden = info["h_next"]  # the chains' new states (still a registered buffer)
        metrics = {}
        if monitor:
            v_mean = info["v_first_mean"]
            if v_mean is None:
                h = (random_uniform(rng, info["h_pos_prob"].shape, v_data) < info["h_pos_prob"]).astype(v_data.dtype)
                v_mean = self.visible_means(h)
            error = self.to_data_space(v_data) - self.to_data_space(v_mean)
            metrics["reconstruction_error"] = float((error * error).sum(axis=1).mean())
        self.apply_gradients(gradients)
        return metrics

    def train_step(self, x, y, rng) -> Dict[str, float]:
        """One update on a batch of images x (N, C, H, W) or vectors (N, V); ``y`` is ignored.

        The reconstruction error is measured on every ``MONITOR_EVERY``-th update only (it is a
        rough monitor, and for PCD it costs a fifth of an update); the loop averages what it gets.
        """
        v = self.check_data(x, "train_step")
        monitor = self.optimizers["rbm"].steps[0] % MONITOR_EVERY == 0
        metrics = self.update(v, rng, monitor=monitor)
        self._remember_training_rows(v)
        return metrics

    def prepare(self, x, y=None) -> None:
        """Before the first update: the data-dependent initialisation of the visible units (see subclasses)."""

    def _remember_training_rows(self, v) -> None:
        """Write batch v (N, V) into the ring buffer of recent training rows."""
        xp = get_array_module(v)
        keep = self.recent_training_rows.shape[0]
        rows = v[-keep:]
        seen = int(self.recent_seen[0])
        positions = (seen + np.arange(len(rows))) % keep
        self.recent_training_rows[xp.asarray(positions)] = rows
        self.recent_seen[0] = seen + len(rows)

    @property
    def recent_count(self) -> int:
        """How many rows of the ring buffer hold training data."""
        return int(min(int(self.recent_seen[0]), self.recent_training_rows.shape[0]))

    @property
    def recent_training_data(self):
        """The recent training rows (recent_count, V), model space (their order does not matter)."""
        return self.recent_training_rows[: self.recent_count]

    def partial_fit(self, x, rng=None) -> Dict[str, float]:
        """scikit-learn style: one update on batch x. Returns the reconstruction error."""
        return self.update(self.check_data(x, "partial_fit"), np.random.default_rng(rng), monitor=True)

    # ---- using a trained model -----------------------------------------------------------------
    def transform(self, x):
        """Hidden probabilities p(h = 1 | x) (N, H): the learned features (scikit-learn's ``transform``)."""
        return self.hidden_probabilities(self.check_data(x, "transform"))

    def reconstruct(self, x):
        """Mean-field reconstruction E[v | h = p(h | x)], as images (N, C, H, W) in data units."""
        v = self.check_data(x, "reconstruct")
        return self.to_data_space(self.visible_means(self.hidden_probabilities(v))).reshape((-1,) + self.image_shape)

    def initial_visible(self, n: int, rng):
        """Starting states for chains when none are given: random bits (subclasses may override)."""
        return (random_uniform(rng, (n, self.n_visible), self.weight.data) < 0.5).astype(self.dtype)

    def sample(self, n: int, rng=None, y=None, n_steps: int = 1000, start=None):
        """Images (n, C, H, W) after ``n_steps`` Gibbs sweeps from ``start`` (data, any shape the model
        accepts) or from random states. Returns the final visible *means* (the usual picture of a sample).
        """
        rng = np.random.default_rng(rng)
        v = self.initial_visible(n, rng) if start is None else self.check_data(start, "sample")
        v_mean, _ = self.gibbs(v, n_steps, rng)
        return self.to_data_space(v_mean).reshape((-1,) + self.image_shape)

    # ---- likelihood ----------------------------------------------------------------------------
    binary_visible = False  # binary units: likelihoods are only reported for binary data

    @property
    def exact_max_units(self) -> int:
        """Enumerate log Z exactly when the smaller layer has at most this many units (2^20 states)."""
        return int(self.config.get("exact_max_units", EXACT_MAX_UNITS))

    def exact_log_partition(self, block_size: int = 4096) -> float:
        """log Z by enumerating the smaller layer (each RBM knows its own sum; see enumeration.py)."""
        raise NotImplementedError

    def log_likelihood(self, x, log_partition=None) -> np.ndarray:
        """log p(x) = -F(x) - log Z per example (N,), float64 on host, in nats of the *data* density.

        ``log_partition``: a number, an ``AISResult`` (``scratchgen.evaluation.ais``), or None for the
        exact value (models whose smaller layer has at most ``exact_max_units`` units).
        """
        return self._log_likelihood(self.check_data(x, "log_likelihood"), log_partition)

    def _log_likelihood(self, v, log_partition=None) -> np.ndarray:
        if log_partition is None:
            if self.enumerated_units > self.exact_max_units:
                raise ValueError(f"{type(self).__name__}: log Z cannot be enumerated for {self.n_visible} visible and "
                                 f"{self.n_hidden} hidden units (limit {self.exact_max_units}); pass an estimate, "
                                 f"log_partition=scratchgen.evaluation.ais.ais_log_partition(model, data=x_train)")
            log_partition = self.exact_log_partition()
        log_z = float(getattr(log_partition, "log_z", log_partition))
        return -self.free_energy_float64(v) - log_z + self.log_data_jacobian()

    def log_data_jacobian(self) -> float:
        """log |dv/dx| of the map from data x to model-space v (0 unless the data are standardised)."""
        return 0.0

    def score(self, x, log_partition=None) -> float:
        """Mean log-likelihood of x in nats (exact log Z when small; else pass an AIS estimate)."""
        return float(self.log_likelihood(x, log_partition).mean())

    # ---- the CLI contract ----------------------------------------------------------------------
    def evaluate(self, x, y=None, rng=None) -> Dict[str, float]:
        """Held-out metrics: mean-field reconstruction error, mean free energy, the free-energy gap
        (held-out minus recent training data; it grows when the model overfits), and the exact
        log-likelihood when the smaller layer has at most ``exact_max_units`` units, else the
        deterministic pseudo-log-likelihood of up to 1,000 examples (binary units). Binary units with
        grey-level data get no likelihood at all (it would not be one). An AIS log-likelihood for
        large models is ``scratchgen eval``'s work (``scratchgen.evaluation``), not every epoch's."""
        v = self.check_data(x, "evaluate")
        metrics = {"reconstruction_error": monitors.reconstruction_error(self, v),
                   "free_energy": float(self.free_energy(v).mean())}
        if self.recent_count:
            metrics["free_energy_gap"] = monitors.free_energy_gap(self, self.recent_training_data, v[:1000])
        if self.binary_visible and not bool(((v == 0) | (v == 1)).all()):
            return metrics  # grey levels (e.g. a DBN's upper layers): log p(v) is not a likelihood of them
        if self.enumerated_units <= self.exact_max_units:
            metrics["log_likelihood"] = float(self._log_likelihood(v).mean())
        elif self.binary_visible:
            metrics["pseudo_log_likelihood"] = float(monitors.pseudo_log_likelihood(self, v[:1000]).mean())
        return metrics

    def save_pictures(self, out_dir, data, rng, tag: str = "") -> List[str]:
        """Filters, Gibbs chains from noise and from test data, reconstructions, fit() curves (rbm_pictures.py)."""
        from .pictures import save_rbm_pictures

        return save_rbm_pictures(self, out_dir, data, rng, tag)
