"""AIS and exact log partition functions."""
import os

import numpy as np
import pytest

from scratchgen.evaluation import ais
from scratchgen.models.boltzmann import enumeration
from scratchgen.models.boltzmann.bernoulli_rbm import BernoulliRBM

def binary_training_images(count=2000):
    """Binarised real images: 2,000 MNIST digits where MNIST is found (``$SCRATCHGEN_DATA``), else
    scikit-learn's 8x8 digits."""
    from scratchgen.data import binarize, load_dataset
    from scratchgen.data.idx import DataFileError

    try:
        data = load_dataset("mnist")
    except (FileNotFoundError, DataFileError, ValueError):
        data = load_dataset("digits")
    x = data.train.x[:count]
    return binarize(x, "static", np.random.default_rng(0)), data.image_shape


@pytest.fixture(scope="module")
def trained_rbm():
    x, shape = binary_training_images()
    rbm = BernoulliRBM(x[0].size, 16, persistent=True, lr=0.05, momentum=0.5, rng=0, image_shape=shape,
                       visible_bias_init="zero")  # starts far from the base-rate model AIS anneals from
    rbm.fit(x, epochs=3, batch_size=64, rng=0)
    return rbm, x


def test_ais_within_half_a_nat_of_exact_log_z_on_a_trained_16_hidden_rbm(trained_rbm):
    rbm, x = trained_rbm
    exact = rbm.exact_log_partition()
    result = ais.ais_log_partition(rbm, data=x, n_betas=1000, n_runs=100, rng=0)
    assert abs(result.log_z - exact) < 0.5, (result, exact)
    assert result.log_z_low <= exact <= result.log_z_high, (result, exact)  # the 3-sigma interval holds the truth
    assert result.log_weights.shape == (100,) and result.samples.shape == (100, rbm.n_visible)
    assert result.effective_sample_size > 10  # the runs agree: annealing reached the model's modes
    # a trained model is far from the base-rate model: the estimate moved from log Z_A by far more than its error
    assert abs(exact - result.log_z_base) > 5 * max(abs(result.log_z - exact), 3 * result.log_z_std, 0.1)
    # any set of distinct states bounds log Z from below; duplicates are counted once
    states = np.concatenate([x.reshape(len(x), -1), result.samples])
    bound = ais.log_partition_lower_bound(rbm, np.concatenate([states, states]))
    assert bound <= exact
    assert abs(bound - ais.log_partition_lower_bound(rbm, states)) < 1e-9
    # the log-likelihood from either log Z agrees to the same half nat
    assert abs(rbm.score(x[:200], result) - rbm.score(x[:200], exact)) < 0.5


def test_ais_is_exact_when_the_weights_are_zero():
    # With W = 0 every intermediate distribution factorises and the base model already is the
    # target when b_A = b_B: every run gets the same weight, and log Z comes out exactly.
    rbm = BernoulliRBM(10, 7, init_std=0.0, dtype=np.float64, rng=0)
    rng = np.random.default_rng(1)
    rbm.visible_bias.data[...] = rng.normal(size=10)
    rbm.hidden_bias.data[...] = rng.normal(size=7)
    result = ais.ais_log_partition(rbm, base_visible_bias=rbm.visible_bias.data, n_betas=50, n_runs=10, rng=0)
    assert abs(result.log_z - rbm.exact_log_partition()) < 1e-9
    assert result.log_z_std < 1e-12


def test_beta_schedule_and_base_rate():
    betas = ais.beta_schedule()
    assert len(betas) == 15001 and betas[0] == 0 and betas[-1] == 1 and np.all(np.diff(betas) > 0)
    assert np.sum(betas <= 0.5) == 1001 and np.sum((betas > 0.5) & (betas <= 0.9)) == 4000
    small = ais.beta_schedule(150)
    assert len(small) == 151 and small[-1] == 1
    with pytest.raises(ValueError, match="must end at 1"):
        ais.beta_schedule(segments=((0.5, 10),))
    data = np.array([[1, 0], [1, 0], [1, 1], [1, 0]], dtype=np.float32)
    bias = ais.base_rate_visible_bias(data, smoothing=0.5)
    np.testing.assert_allclose(1 / (1 + np.exp(-bias)), [4.5 / 5, 1.5 / 5])


def test_ais_rejects_bad_arguments():
    rbm = BernoulliRBM(4, 3, rng=0)
    with pytest.raises(ValueError, match="n_runs"):
        ais.ais_log_partition(rbm, n_runs=1)
    with pytest.raises(ValueError, match="increase strictly"):
        ais.ais_log_partition(rbm, betas=[0.0, 0.5, 0.4, 1.0])
    with pytest.raises(TypeError, match="BernoulliRBM"):
        ais.ais_log_partition(object())


def test_exact_enumeration_limits_and_blocks():
    with pytest.raises(ValueError, match="too many to enumerate"):
        enumeration.logsumexp_over_states(lambda s: s.sum(1), 40)
    # sum over all 2^n states of exp(a.s) = prod (1 + e^a): a closed form, any block size
    a = np.random.default_rng(0).normal(size=9)
    exact = np.logaddexp(0, a).sum()
    for block in (1, 7, 512, 4096):
        assert abs(enumeration.logsumexp_over_states(lambda s: s @ a, 9, block) - exact) < 1e-10
    # several sums at once: (N, B) log-weights give (N,) results
    rows = np.stack([a, 2 * a])
    np.testing.assert_allclose(enumeration.logsumexp_over_states(lambda s: rows @ s.T, 9, 100),
                               np.logaddexp(0, rows).sum(1), rtol=1e-12)
