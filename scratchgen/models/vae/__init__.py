"""Variational autoencoders: a latent-variable model p(x | z) p(z) with an amortised posterior q(z | x).

In reading order:
    vae.py     the VAE: z = mu + exp(logvar / 2) * eps (the reparameterisation, eps explicit),
               ELBO = E_q[log p(x | z)] - KL(q || p); beta-VAE (beta * KL) and the conv VAE
    cvae.py    the conditional VAE: p(x | y, z), q(z | x, y)
    m2.py      the semi-supervised M2 (Kingma et al. 2014): y is a latent variable when unlabelled
    hvae.py    two stochastic layers x -> z1 -> z2 with a top-down p(z1 | z2) (Burda et al. 2015)
    fcvae.py   the feature-consistent VAE: pixel loss + distances in a frozen classifier's features
"""
from .cvae import CVAE
from .fcvae import FeatureConsistentVAE
from .hvae import HierarchicalVAE
from .m2 import M2
from .vae import VAE, ConvVAE

__all__ = ["VAE", "ConvVAE", "CVAE", "M2", "HierarchicalVAE", "FeatureConsistentVAE"]  # importing them registers the models
