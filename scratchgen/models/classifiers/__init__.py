"""Discriminative models p(y | x), trained by the same loop as the generative ones.

Read in this order:
    supervised.py   SoftmaxClassifier: any network + softmax cross-entropy + Adam/SGD
    lenet.py        the LeNet-style classifier whose features score generated samples
"""
from .lenet import Classifier
from .supervised import SoftmaxClassifier

__all__ = ["SoftmaxClassifier", "Classifier"]
