"""Evaluation: likelihood estimates and sample-quality scores, one concept per module.

Import the module you need, e.g. ``from scratchgen.evaluation import ais``.

Energy models (the Boltzmann family):
    partition.py          exact log Z by enumerating the smaller layer (in blocks), exact log-likelihoods
    ais.py                annealed importance sampling: log Z of an RBM with its 3-sigma spread
    pseudo_likelihood.py  pseudo-log-likelihood (all bits, or scikit-learn's one random bit)
    monitors.py           reconstruction error and the free-energy gap (overfitting monitor)
"""
