"""The generative models. Each family module registers its CLI names with ``register_model``.

    base.py          GenerativeModel (the contract every model meets), the model registry
"""
from .base import MODEL_REGISTRY, DataInfo, GenerativeModel, ModelSpec, build_model, register_model  # noqa: F401

# Family modules (importing them registers their models). One line per family module:
from . import gan, dcgan, cgan, lapgan, srgan  # noqa: F401,E402  (GAN family)
from . import rbm, gbrbm, dbn, boltzmann  # noqa: F401,E402  (Boltzmann family: rbm, gbrbm, dbn, bm)
from . import autoencoder, denoising_autoencoder, contractive_autoencoder, conv_autoencoder, vae, cvae, m2  # noqa: F401,E402  (autoencoder and VAE families)
