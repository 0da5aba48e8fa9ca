"""The models, grouped by family as the lectures tell them.

    base.py          Model / GenerativeModel (the contract the training loop needs), the registry,
                     ``fit`` on arrays, ``load_model`` from a checkpoint
    image_model.py   what the autoencoder and VAE families share: image bookkeeping, MLPs, one step

    autoencoders/    reconstruction through a bottleneck: plain, tied, sparse, denoising,
                     contractive, convolutional
    vae/             the variational autoencoder: reparameterisation, ELBO; beta-VAE, conv VAE,
                     conditional VAE, the semi-supervised M2
    gan/             adversarial training: minimax GAN, DCGAN, conditional GAN, LAPGAN, SR-GAN
    boltzmann/       energy-based models: RBMs (CD-k, PCD), Gaussian-Bernoulli RBM, deep belief
                     nets, the fully connected Boltzmann machine
    classifiers/     discriminative models p(y | x), trained by the same loop
    classical/       naive Bayes (counting) and the Gaussian mixture (EM): generative, no gradients
    attention/       transformers on text (BERT pretraining and fine-tuning, a causal language
                     model) and on images (ViT); end-to-end memory networks

Importing a family registers its models' CLI names (``scratchgen train MODEL``); every model class
is also here by name: ``from scratchgen.models import BernoulliRBM, VAE``.
"""
from .base import MODEL_REGISTRY, DataInfo, GenerativeModel, Model, ModelSpec, build_model, load_model, register_model  # noqa: F401

from . import autoencoders, vae, gan, boltzmann, classifiers, classical, attention  # noqa: F401,E402  (registers every family's models)
from .attention import *  # noqa: F401,F403,E402
from .autoencoders import *  # noqa: F401,F403,E402
from .boltzmann import *  # noqa: F401,F403,E402
from .classical import *  # noqa: F401,F403,E402
from .classifiers import *  # noqa: F401,F403,E402
from .gan import *  # noqa: F401,F403,E402
from .vae import *  # noqa: F401,F403,E402

__all__ = (["MODEL_REGISTRY", "DataInfo", "Model", "GenerativeModel", "ModelSpec", "build_model", "load_model",
            "register_model"] + autoencoders.__all__ + vae.__all__ + gan.__all__ + boltzmann.__all__ + classifiers.__all__
            + classical.__all__ + attention.__all__)
