"""Attention models: transformers on images, and networks that read an explicit memory.

    vit.py              the vision transformer: patches, [CLS], learned positions, encoder blocks
    vit_pictures.py     the [CLS] token's attention over the patches, per head, as a PNG
    memory_network.py   the end-to-end memory network (Sukhbaatar et al. 2015) on bAbI-style stories
"""
from . import vit, memory_network  # noqa: F401  (register the models)
