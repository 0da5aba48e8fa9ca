"""Classical generative models: fitted by counting and by EM, not by gradients.

The lectures define a generative model as a model of the joint p(x, y) (or p(x, z) with z
latent): naive Bayes, mixtures, hidden Markov models, Boltzmann machines, GANs, VAEs. It can
classify through Bayes' rule, p(y | x) = p(x, y) / sum_y' p(x, y'), and it can generate by
ancestral sampling (first y or z from its prior, then x given it). A discriminative model
(logistic regression, ``classifiers/supervised.py``) models p(y | x) alone.

    log_space.py         float64 features and log-sum-exp (densities of 784 pixels underflow)
    naive_bayes.py       Bernoulli naive Bayes: counting, Bayes' rule, ancestral samples
    gaussian_mixture.py  a mixture of diagonal Gaussians: EM, one iteration per epoch of the loop

Neither takes a gradient step: ``train_step`` accumulates sufficient statistics over the batches
of an epoch and ``finish_epoch`` turns them into parameters, so both train through the same loop,
checkpoints and ``--resume`` as every other model. ``scratchgen.experiments.generative_vs_discriminative``
sets naive Bayes against logistic regression (Ng & Jordan 2002).
"""
from .gaussian_mixture import GaussianMixture
from .naive_bayes import BernoulliNaiveBayes

__all__ = ["BernoulliNaiveBayes", "GaussianMixture"]  # importing them registers the models
