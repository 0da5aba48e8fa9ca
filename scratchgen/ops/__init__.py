"""Every differentiable op, as a function on Tensors.

One file per family; each file holds the ``Function`` classes (forward and backward on raw
arrays), the NumPy reference kernels they call, and the gradcheck cases that prove them:

    arithmetic.py     add sub mul div neg pow square exp log log1p sqrt abs clip
                      maximum minimum where
    reduce.py         sum mean max min logsumexp var std
    shape.py          reshape transpose squeeze unsqueeze broadcast_to getitem concatenate
                      stack astype
    linalg.py         matmul (1-D operands as NumPy) linear (optionally fused with its activation)
    activations.py    sigmoid tanh relu leaky_relu softplus log_sigmoid softmax log_softmax gelu
    conv.py           conv2d conv_transpose2d as im2col + GEMM (conv_layout.py: NumPy's batch-last column order)
    normalization.py  dropout batch_norm layer_norm
    attention.py      masked_softmax scaled_dot_product_attention causal_mask padding_mask
    embedding.py      embedding
    losses.py         sigmoid_bce_with_logits mse_loss gaussian_nll softmax_cross_entropy
                      gan_discriminator_loss gan_generator_loss
    divergences.py    gaussian_kl_standard gaussian_kl bernoulli_kl l1_penalty
                      contractive_penalty contractive_penalty_codes reparameterize
    loss_helpers.py   the convention every loss follows (prediction first, then target; default
                      reduction "batch_sum"; a table of all of them), reduce_loss, REDUCTIONS
    rbm.py            bernoulli_free_energy, and the RBM Gibbs kernels (rbm_sample_hidden, ...)
    gradient_estimators.py  score_function_surrogate (REINFORCE in a graph), and on arrays:
                      gaussian_score score_function_estimates reparameterization_estimates
                      leave_one_out_baseline
    creation.py       zeros ones zeros_like ones_like randn (new leaf tensors; no backward)

``from scratchgen.ops import *`` (and ``from scratchgen import *``) leaves out the five ops named
like Python builtins - ``sum``, ``max``, ``min``, ``abs``, ``pow`` - so that a star import never
shadows them; use them qualified: ``ops.sum(x)``, ``sg.max(x, axis=1)``.
"""
import importlib as _importlib

from .activations import *  # noqa: F401,F403
from .arithmetic import *  # noqa: F401,F403
from .arithmetic import abs, pow  # noqa: F401,A004  (not in __all__: builtin names)
from .attention import *  # noqa: F401,F403
from .conv import *  # noqa: F401,F403
from .creation import *  # noqa: F401,F403
from .divergences import *  # noqa: F401,F403
from .embedding import *  # noqa: F401,F403
from .gradient_estimators import *  # noqa: F401,F403
from .linalg import *  # noqa: F401,F403
from .loss_helpers import REDUCTIONS, reduce_loss  # noqa: F401
from .losses import *  # noqa: F401,F403
from .normalization import *  # noqa: F401,F403
from .rbm import bernoulli_free_energy  # noqa: F401
from .reduce import *  # noqa: F401,F403
from .reduce import max, min, sum  # noqa: F401,A004  (not in __all__: builtin names)
from .shape import *  # noqa: F401,F403

SHADOWS_BUILTINS = ("abs", "max", "min", "pow", "sum")

_FAMILIES = ("arithmetic", "reduce", "shape", "linalg", "activations", "conv", "normalization", "attention", "embedding",
             "losses", "divergences", "creation", "gradient_estimators")
__all__ = [
    name
    for family in _FAMILIES
    for name in _importlib.import_module(f"{__name__}.{family}").__all__  # (the module: ``embedding`` is also an op)
    if name not in SHADOWS_BUILTINS
] + ["REDUCTIONS", "reduce_loss", "bernoulli_free_energy"]
