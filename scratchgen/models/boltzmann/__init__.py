"""Energy-based models: p(v, h) = exp(-E(v, h)) / Z, trained from Gibbs samples.

In reading order:
    rbm.py                 RBMBase: what every restricted Boltzmann machine shares, CD-k and PCD
    bernoulli_rbm.py       binary visible and hidden units (the Gibbs kernels and the free-energy
                           op are in ``scratchgen/ops/rbm.py``)
    gaussian_rbm.py        real-valued visible units
    enumeration.py         exact log Z by enumerating the smaller layer, in blocks
    monitors.py            reconstruction error, free-energy gap, pseudo-likelihood
    dbn.py                 a deep belief net: RBMs trained greedily, layer by layer
    dbn_classifier.py      the DBN as the initialisation of a classifier, fine-tuned by backprop
    boltzmann_machine.py   the fully connected Boltzmann machine (visible-visible, hidden-hidden weights)
    helpers.py, pictures.py  noise on the model's device, data checks, filters and chains as PNGs

The annealed-importance-sampling estimate of log Z for large RBMs is ``scratchgen.evaluation.ais``.
"""
from .bernoulli_rbm import BernoulliRBM
from .boltzmann_machine import BoltzmannMachine
from .dbn import DBN
from .gaussian_rbm import GaussianBernoulliRBM
from .rbm import RBMBase

__all__ = ["RBMBase", "BernoulliRBM", "GaussianBernoulliRBM", "DBN", "BoltzmannMachine"]  # importing them registers the models
