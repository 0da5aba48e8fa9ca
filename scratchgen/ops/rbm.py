"""RBM ops: the Gibbs kernels of a Bernoulli RBM (the NumPy references of the hot loop) and its free energy.

A Bernoulli RBM with visible units v (V,), hidden units h (H,), weight W (V, H), visible bias
b (V,) and hidden bias c (H,) has the energy

    E(v, h) = -b.v - c.h - v^T W h

Given one layer, the units of the other layer are independent (that is what "restricted"
buys), so each layer is sampled in one matrix product:

    p(h_j = 1 | v) = sigmoid(c_j + sum_i v_i W_ij)      h_prob = sigmoid(v @ W + c)    (N, H)
    p(v_i = 1 | h) = sigmoid(b_i + sum_j W_ij h_j)      v_prob = sigmoid(h @ W^T + b)  (N, V)

A Bernoulli sample is ``uniform < probability``. The uniforms are *arguments* (N, H) or
(N, V), drawn by the caller from its ``numpy.random.Generator``: the kernels are deterministic
functions, so the Numba, CUDA and CuPy versions registered under the same names in
``kernels/`` can be checked against these element by element.

The learning signal (Hinton 2010, "A practical guide to training RBMs"): the gradient of the
mean log-likelihood is a difference of data and model statistics, estimated from a batch
v_pos (N, V) and from negative-phase (chain) states v_neg (M, V). Statistics use the hidden
*probabilities* (less noise, same expectation), the chain itself runs on *samples*:

    dlogp/dW = <v h^T>_data - <v h^T>_model  ~  v_pos^T h_pos_prob / N - v_neg^T h_neg_prob / M
    dlogp/db = <v>_data - <v>_model          ~  mean(v_pos) - mean(v_neg)
    dlogp/dc = <h>_data - <h>_model          ~  mean(h_pos_prob) - mean(h_neg_prob)

N and M may differ (persistent chains need not match the batch size). Every kernel keeps the
dtype of its inputs (float32 in training) and runs on CuPy arrays too (``xp``).

The free energy F(v) = -log sum_h exp(-E(v, h)) is a differentiable op on Tensors,
``bernoulli_free_energy(v, weight, visible_bias, hidden_bias)``, so a learner can check the CD
update against autograd: the update is the gradient of  mean F(v_data) - mean F(v_model)  with
the chain's v_model held constant. With a = v W + c and s = sigmoid(a):

    F(v)  = -b.v - sum_j softplus(a_j)
    dF/dv = -b - W s        dF/dW = -v s^T        dF/db = -v        dF/dc = -s
"""
from __future__ import annotations

from ..backend import kernel, register_kernel
from ..function import Function
from ..gradcheck import register_case
from .activations import sigmoid_forward

__all__ = ["rbm_sample_hidden", "rbm_sample_visible", "rbm_gibbs_step", "rbm_pcd_hidden", "rbm_cd_statistics",
           "bernoulli_free_energy", "bernoulli_free_energy_forward"]


@register_kernel("rbm_sample_hidden")
def rbm_sample_hidden(v, weight, hidden_bias, uniforms):
    """h_prob = sigmoid(v @ W + c), h_sample = (uniforms < h_prob).

    v: (N, V), weight: (V, H), hidden_bias: (H,), uniforms: (N, H) in [0, 1).
    Returns (h_prob, h_sample), both (N, H) in the dtype of v.
    """
    h_prob = sigmoid_forward(v @ weight + hidden_bias)
    h_sample = (uniforms < h_prob).astype(v.dtype)
    return h_prob, h_sample


@register_kernel("rbm_sample_visible")
def rbm_sample_visible(h, weight, visible_bias, uniforms):
    """v_prob = sigmoid(h @ W^T + b), v_sample = (uniforms < v_prob).

    h: (N, H), weight: (V, H), visible_bias: (V,), uniforms: (N, V) in [0, 1).
    Returns (v_prob, v_sample), both (N, V) in the dtype of h.
    """
    v_prob = sigmoid_forward(h @ weight.T + visible_bias)
    v_sample = (uniforms < v_prob).astype(h.dtype)
    return v_prob, v_sample


@register_kernel("rbm_gibbs_step")
def rbm_gibbs_step(v, weight, visible_bias, hidden_bias, uniforms_h, uniforms_v):
    """One block-Gibbs sweep v -> h -> v'.

    v: (N, V), uniforms_h: (N, H), uniforms_v: (N, V).
    Returns (h_prob, h_sample, v_prob, v_sample): h from p(h | v), v' from p(v | h_sample).
    """
    h_prob, h_sample = rbm_sample_hidden(v, weight, hidden_bias, uniforms_h)
    v_prob, v_sample = rbm_sample_visible(h_sample, weight, visible_bias, uniforms_v)
    return h_prob, h_sample, v_prob, v_sample


@register_kernel("rbm_pcd_hidden")
def rbm_pcd_hidden(v_data, v_neg, weight, hidden_bias, uniforms):
    """Both hidden layers of a PCD update: p(h | v_data), and p(h | v_neg) with a sample from it.

    v_data: (N, V), v_neg: (M, V) (the chains' visible states), uniforms: (M, H).
    Returns (h_pos_prob (N, H), h_neg_prob (M, H), h_next (M, H)): the positive-phase
    probabilities, the negative-phase probabilities and the chains' next hidden states.
    Both use the same W: a compiled backend may compute them with one stacked matrix product.
    """
    h_pos_prob = sigmoid_forward(v_data @ weight + hidden_bias)
    h_neg_prob, h_next = rbm_sample_hidden(v_neg, weight, hidden_bias, uniforms)
    return h_pos_prob, h_neg_prob, h_next


@register_kernel("rbm_cd_statistics")
def rbm_cd_statistics(v_pos, h_pos_prob, v_neg, h_neg_prob):
    """Positive minus negative statistics, each averaged over its own batch.

    v_pos: (N, V), h_pos_prob: (N, H), v_neg: (M, V), h_neg_prob: (M, H).
    Returns (grad_weight (V, H), grad_visible_bias (V,), grad_hidden_bias (H,)): the
    log-likelihood *ascent* direction (add it, times the learning rate, to the parameters).
    """
    dtype = v_pos.dtype.type
    # Scale the (N, H) factors, not the (V, H) products: fewer passes over the big array.
    grad_weight = v_pos.T @ (h_pos_prob * dtype(1.0 / v_pos.shape[0]))
    grad_weight -= v_neg.T @ (h_neg_prob * dtype(1.0 / v_neg.shape[0]))
    grad_visible_bias = v_pos.sum(axis=0) * dtype(1.0 / v_pos.shape[0]) - v_neg.sum(axis=0) * dtype(1.0 / v_neg.shape[0])
    grad_hidden_bias = h_pos_prob.sum(axis=0) * dtype(1.0 / v_pos.shape[0]) - h_neg_prob.sum(axis=0) * dtype(1.0 / v_neg.shape[0])
    return grad_weight, grad_visible_bias, grad_hidden_bias


# ---- the free energy as an op ----------------------------------------------------------------------
def bernoulli_free_energy_forward(v, weight, visible_bias, hidden_bias):
    """F(v) = -b.v - sum_j softplus(c_j + (v W)_j) on arrays. v: (N, V), weight: (V, H) -> (N,)."""
    return -(v @ visible_bias) - kernel("softplus_forward")(v @ weight + hidden_bias).sum(axis=1)


class BernoulliFreeEnergy(Function):
    op_name = "bernoulli_free_energy"

    @staticmethod
    def forward(ctx, v, weight, visible_bias, hidden_bias):
        a = v @ weight + hidden_bias
        ctx.save_for_backward(v, weight, visible_bias, kernel("sigmoid_forward")(a))
        return -(v @ visible_bias) - kernel("softplus_forward")(a).sum(axis=1)

    @staticmethod
    def backward(ctx, grad):
        v, weight, visible_bias, s = ctx.saved_arrays
        gs = grad[:, None] * s  # (N, H): dF/da weighted by the incoming gradient, up to the sign
        need_v, need_w, need_b, need_c = ctx.needs_input_grad
        grad_v = -(grad[:, None] * visible_bias) - gs @ weight.T if need_v else None
        grad_w = -(v.T @ gs) if need_w else None
        grad_b = -(grad @ v) if need_b else None
        grad_c = -gs.sum(axis=0) if need_c else None
        return grad_v, grad_w, grad_b, grad_c


def bernoulli_free_energy(v, weight, visible_bias, hidden_bias):
    """F(v) per example of a Bernoulli RBM, differentiable in every argument.

    v: (N, V) visible states (binary, or probabilities); weight: (V, H); visible_bias: (V,);
    hidden_bias: (H,). Returns a Tensor (N,). See the module docstring for the gradients.
    """
    shapes = [getattr(t, "shape", None) for t in (v, weight, visible_bias, hidden_bias)]
    if (len(shapes[0] or ()) != 2 or len(shapes[1] or ()) != 2 or shapes[0][1] != shapes[1][0]
            or shapes[2] != (shapes[1][0],) or shapes[3] != (shapes[1][1],)):
        raise ValueError(f"bernoulli_free_energy: need v (N, V), weight (V, H), visible_bias (V,), hidden_bias (H,); "
                         f"got shapes {shapes[0]}, {shapes[1]}, {shapes[2]}, {shapes[3]}")
    return BernoulliFreeEnergy.apply(v, weight, visible_bias, hidden_bias)


register_case("bernoulli_free_energy")(lambda rng: (
    bernoulli_free_energy,
    [rng.uniform(0, 1, (3, 5)), rng.standard_normal((5, 4)), rng.standard_normal(5), rng.standard_normal(4)],
))
