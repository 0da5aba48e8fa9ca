"""Neural-network building blocks: ``Module`` and ``Parameter``, layers, and weight initialisers.

    module.py   Parameter, Module (registration, train/eval, state_dict, save/load, to)
    layers.py   Linear Conv2d ConvTranspose2d BatchNorm1d BatchNorm2d Dropout Sequential
                Flatten Unflatten Reshape Identity Sigmoid Tanh ReLU LeakyReLU Softplus
    attention.py  Embedding LayerNorm MultiHeadAttention SinusoidalPositionalEncoding
                LearnedPositionalEncoding TransformerEncoderBlock
    init.py     glorot_uniform glorot_normal he_uniform he_normal normal uniform zeros ones

Optimisers live in ``scratchgen.optim``.
"""
from . import init  # noqa: F401
from .attention import *  # noqa: F401,F403
from .attention import __all__ as _attention_all
from .layers import *  # noqa: F401,F403
from .layers import __all__ as _layers_all
from .module import LoadResult, Module, Parameter, StateDictError  # noqa: F401

__all__ = ["init", "Module", "Parameter", "StateDictError", "LoadResult"] + list(_layers_all) + list(_attention_all)
