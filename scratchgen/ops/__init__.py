"""Every differentiable op, as a function on Tensors.

One file per family; each file holds the ``Function`` classes (forward and backward on raw
arrays), the NumPy reference kernels they call, and the gradcheck cases that prove them:

    arithmetic.py     add sub mul div neg pow exp log sqrt abs clip
    reduce.py         sum mean max
    shape.py          reshape transpose getitem concatenate stack astype
    linalg.py         matmul linear
    activations.py    sigmoid tanh relu leaky_relu softplus log_sigmoid softmax log_softmax gelu
    conv.py           conv2d conv_transpose2d as im2col + GEMM (conv_layout.py: NumPy's batch-last column order)
    normalization.py  dropout batch_norm layer_norm
    attention.py      masked_softmax scaled_dot_product_attention causal_mask padding_mask
    embedding.py      embedding
    losses.py         sigmoid_bce_with_logits mse_loss gaussian_nll softmax_cross_entropy
    divergences.py    gaussian_kl_standard gaussian_kl bernoulli_kl l1_penalty
                      contractive_penalty reparameterize
    rbm.py            bernoulli_free_energy, and the RBM Gibbs kernels (rbm_sample_hidden, ...)
"""
from .activations import *  # noqa: F401,F403
from .arithmetic import abs, add, clip, div, exp, log, mul, neg, pow, sqrt, sub  # noqa: F401,A004
from .attention import *  # noqa: F401,F403
from .conv import *  # noqa: F401,F403
from .divergences import *  # noqa: F401,F403
from .embedding import *  # noqa: F401,F403
from .linalg import linear, matmul  # noqa: F401
from .losses import *  # noqa: F401,F403
from .normalization import *  # noqa: F401,F403
from .rbm import bernoulli_free_energy  # noqa: F401
from .reduce import max, mean, sum  # noqa: F401,A004
from .shape import astype, concatenate, getitem, reshape, stack, transpose  # noqa: F401
