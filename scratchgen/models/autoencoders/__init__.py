"""Autoencoders: learn a code h = f(x) from which g(h) reconstructs x.

The lecture's story, in reading order:
    autoencoder.py     the plain autoencoder: encoder, decoder, reconstruction loss (BCE from
                       logits or squared error); undercomplete (hidden < input) or overcomplete,
                       optionally with tied weights (decoder = encoder^T); SparseAutoencoder adds
                       KL(rho || rho_hat) or an L1 activity penalty
    denoising.py       reconstruct x from a corrupted copy: Gaussian, masking, salt-and-pepper
                       noise drawn explicitly, so the loss stays a deterministic function
    contractive.py     penalise ||J_f(x)||_F^2, in closed form (``ops.contractive_penalty``)
    convolutional.py   convolutional encoder, transposed-convolution decoder
"""
from .autoencoder import Autoencoder, SparseAutoencoder
from .contractive import ContractiveAutoencoder
from .convolutional import ConvAutoencoder
from .denoising import DenoisingAutoencoder

__all__ = ["Autoencoder", "SparseAutoencoder", "DenoisingAutoencoder", "ContractiveAutoencoder", "ConvAutoencoder"]  # importing them registers the models
