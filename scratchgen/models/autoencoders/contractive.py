"""Contractive autoencoder (Rifai et al. 2011): penalise how much the code moves when x moves.

    loss(x) = l(x, g(f(x))) + lambda * mean_n ||J_f(x_n)||_F^2,     J_f(x) = dh/dx  (H x D)

For the sigmoid encoder h = sigmoid(x W^T + b), J_ji = h_j (1 - h_j) W_ji, so the penalty has
the closed form

    ||J_f(x)||_F^2 = sum_j (h_j (1 - h_j))^2 sum_i W_ji^2           O(H D) per example,

never the (N, H, D) Jacobian tensor. ``ops.contractive_penalty_codes`` computes it from the codes
h the encoder has already computed, with a hand-written backward (derived in
scratchgen/ops/divergences.py): no GEMM of its own, and its gradient joins the reconstruction's
at h, so the encoder's weight gradient is still one GEMM. (Before, the penalty recomputed h and
formed its own weight-gradient product: two GEMMs more per step, 7 instead of 5; the values are
the same, the gradients agree to float rounding.) The penalty makes the code locally
invariant in every direction the reconstruction does not need: measured on test data, a CAE's
mean ||J||_F is far below a plain autoencoder's of the same size (``jacobian_frobenius``).
"""
from __future__ import annotations

from typing import Dict

import numpy as np

from ... import ops
from ...gradcheck import register_case
from ...tensor import Tensor
from ..image_model import parameter_case
from .autoencoder import Autoencoder, _AE_DEFAULTS, _common
from ..base import DataInfo, register_model

__all__ = ["ContractiveAutoencoder"]


class ContractiveAutoencoder(Autoencoder):
    """Sigmoid-encoder autoencoder + contraction * ||J_f(x)||_F^2 (closed form)."""

    def __init__(self, image_shape, hidden: int = 64, contraction: float = 0.1, **kwargs):
        activation = kwargs.pop("activation", "sigmoid")
        if activation != "sigmoid":
            raise ValueError(f"ContractiveAutoencoder: the closed-form penalty needs a sigmoid encoder, got activation {activation!r}")
        if contraction < 0:
            raise ValueError(f"ContractiveAutoencoder: contraction (lambda) must be >= 0, got {contraction}")
        super().__init__(image_shape, hidden=hidden, activation="sigmoid", **kwargs)
        self.contraction = float(contraction)

    def penalty(self, h: Tensor, x_input: Tensor) -> Dict[str, Tensor]:
        # From the codes h the encoder just computed (ops.contractive_penalty_codes): the penalty's
        # gradient joins the reconstruction's at h and goes through the encoder's backward once,
        # so the step has two GEMMs less than with ops.contractive_penalty(x, W, b), which
        # recomputes h and forms its own weight-gradient product.
        jacobian = ops.contractive_penalty_codes(h, self.encoder.weight, reduction="batch_sum")
        return {"contraction": self.contraction * jacobian}


@register_model("contractive-ae", family="autoencoder",
                defaults={**_AE_DEFAULTS, "hidden": 64, "contraction": 0.1},
                description="contractive autoencoder, closed-form ||J_f(x)||_F^2 penalty (sigmoid encoder)")
def build_contractive_autoencoder(config: Dict, data_info: DataInfo, rng) -> ContractiveAutoencoder:
    common = _common(config)
    if common["activation"] != "sigmoid":
        raise ValueError(f"contractive-ae: activation must be 'sigmoid' (closed-form penalty), got {common['activation']!r}")
    return ContractiveAutoencoder(data_info.image_shape, hidden=int(config["hidden"]),
                                  contraction=float(config["contraction"]), num_classes=data_info.num_classes,
                                  rng=rng, **common)


def _tiny_case(rng):
    model = ContractiveAutoencoder((1, 2, 3), hidden=4, contraction=0.5, rng=rng, dtype=np.float64)
    x = rng.uniform(0.05, 0.95, (5, 6))
    return parameter_case(model, lambda: model.loss(x)[0])


register_case("contractive_ae_loss")(_tiny_case)
