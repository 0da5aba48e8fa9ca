"""Matrix products: ``matmul`` and ``linear`` (x W^T + b).

For Y = A @ B and incoming gradient G = dL/dY:
    dL/dA = G @ B^T        dL/dB = A^T @ G
(with ^T swapping the last two axes; leading batch axes broadcast and the engine's
``unbroadcast`` sums them back). A 1-D operand is a matrix with one axis of length 1 (see MatMul).

``linear`` is one op rather than matmul + transpose + add so that its backward is three
GEMM-shaped lines a reader can check against the formulas, and so that a kernel backend can
replace it whole:
    y = x W^T + b      x: (N, in), W: (out, in), b: (out,), y: (N, out)
    dL/dx = G W        dL/dW = G^T x        dL/db = sum_n G

``linear(x, W, b, activation="relu")`` (also "sigmoid", "tanh", "leaky_relu") is the layer and
its activation as one op, h = f(x W^T + b), which ``nn.Sequential`` uses for every Linear
followed by one of those activation layers. Each of these f has a derivative that its *output*
gives (relu: h > 0; sigmoid: h (1 - h); tanh: 1 - h^2; leaky relu with slope a > 0: 1 if h > 0
else a), so the op keeps h only, and its backward is

    D = G f'(h)        dL/dx = D W        dL/dW = D^T x        dL/db = sum_n D

Between the GEMMs everything is two kernels: ``bias_activation_forward`` (add b, apply f, in
place on the GEMM's output) and ``bias_activation_backward`` (D and its column sums in one pass
on the numba backend). The arithmetic is the separate ops', in their order, so the NumPy
backend's numbers do not change; the pre-activation is not kept, one (N, out) array less.
"""
from __future__ import annotations

import numpy as np

from ..backend import kernel, register_kernel
from ..function import Function
from ..tensor import Tensor
from . import activations as _act

__all__ = ["matmul", "linear"]

ACTIVATIONS = ("relu", "sigmoid", "tanh", "leaky_relu")  # what linear(..., activation=...) fuses


# ---- NumPy reference kernels of the fused layer ---------------------------------------------------
@register_kernel("bias_activation_forward")
def bias_activation_forward(y, bias, activation, slope=0.01):
    """h = f(y + bias), written over ``y``: ``y`` (N, out) the GEMM's result, ``bias`` (out,) or
    None, ``activation`` one of ``ACTIVATIONS`` (``slope`` for leaky_relu). Returns y, now h: the
    activation kernels' values (no new array on the compiled backends)."""
    if bias is not None:
        y += bias
    if activation == "relu":
        h = _act.relu_forward(y)
    elif activation == "sigmoid":
        h = _act.sigmoid_forward(y)
    elif activation == "tanh":
        h = _act.tanh_forward(y)
    elif activation == "leaky_relu":
        h = _act.leaky_relu_forward(y, slope)
    else:
        raise ValueError(f"bias_activation_forward: unknown activation {activation!r}; choose one of {ACTIVATIONS}")
    y[...] = h
    return y


@register_kernel("bias_activation_backward")
def bias_activation_backward(grad, h, activation, slope=0.01, need_bias=True):
    """``(D, sum_n D)`` with D = grad f'(pre-activation), read from the output h (N, out):
    the activation kernels' backward given their output (relu: h > 0 iff its input > 0; leaky
    relu likewise for slope > 0). The column sum is None unless ``need_bias``."""
    if activation == "relu":
        d = _act.relu_backward(grad, h)
    elif activation == "sigmoid":
        d = _act.sigmoid_backward(grad, h)
    elif activation == "tanh":
        d = _act.tanh_backward(grad, h)
    elif activation == "leaky_relu":
        d = _act.leaky_relu_backward(grad, h, slope)
    else:
        raise ValueError(f"bias_activation_backward: unknown activation {activation!r}; choose one of {ACTIVATIONS}")
    return d, (d.sum(axis=0) if need_bias else None)


def _swap_last(a):
    return a.swapaxes(-1, -2)


class MatMul(Function):
    """``a @ b`` with NumPy's rules, 1-D operands included.

    A 1-D operand is a row vector (1, k) on the left and a column vector (k, 1) on the right;
    the product is taken with that axis and the axis is removed from the result, so
    ``v @ B`` is (n,), ``A @ v`` is (m,), ``v @ w`` is a scalar, and batched operands keep
    their leading axes. Backward puts the axis back on the gradient, applies the matrix
    formulas above, and removes it again; the engine sums any broadcast batch axes away.
    """

    @staticmethod
    def forward(ctx, a, b):
        if a.ndim == 0 or b.ndim == 0:
            raise ValueError(f"matmul: operands need at least 1 dimension, got shapes {a.shape} and {b.shape} (use mul for scalars)")
        ctx.vector_a, ctx.vector_b = a.ndim == 1, b.ndim == 1
        a2 = a[None, :] if ctx.vector_a else a  # (k,) -> (1, k)
        b2 = b[:, None] if ctx.vector_b else b  # (k,) -> (k, 1)
        if a2.shape[-1] != b2.shape[-2]:
            raise ValueError(f"matmul: shapes {a.shape} and {b.shape} do not align ({a2.shape[-1]} != {b2.shape[-2]})")
        try:
            np.broadcast_shapes(a2.shape[:-2], b2.shape[:-2])
        except ValueError:
            raise ValueError(f"matmul: batch dimensions {a.shape[:-2]} and {b.shape[:-2]} of shapes {a.shape} and "
                             f"{b.shape} do not broadcast") from None
        ctx.save_for_backward(a2, b2)
        y = a2 @ b2
        if ctx.vector_a:
            y = y[..., 0, :]
        if ctx.vector_b:
            y = y[..., 0]
        return y

    @staticmethod
    def backward(ctx, grad):
        a2, b2 = ctx.saved_arrays
        if ctx.vector_b:
            grad = grad[..., None]  # the removed axes come back, as in the forward
        if ctx.vector_a:
            grad = grad[..., None, :]
        grad_a = grad_b = None
        if ctx.needs_input_grad[0]:
            grad_a = grad @ _swap_last(b2)
            grad_a = grad_a[..., 0, :] if ctx.vector_a else grad_a
        if ctx.needs_input_grad[1]:
            grad_b = _swap_last(a2) @ grad
            grad_b = grad_b[..., 0] if ctx.vector_b else grad_b
        return grad_a, grad_b


def check_linear_shapes(op: str, x, weight, bias, weight_names=("out_features", "in_features"),
                        input_names=("batch", "features")) -> None:
    """x (N, in), weight (out, in), bias (out,) or None; else a ValueError naming ``op`` and the shapes."""
    if weight.ndim != 2:
        raise ValueError(f"{op}: weight must be ({', '.join(weight_names)}), got shape {weight.shape}")
    if x.ndim != 2:
        raise ValueError(f"{op}: input must be ({', '.join(input_names)}), got shape {x.shape}")
    if x.shape[1] != weight.shape[1]:
        raise ValueError(f"{op}: input has {x.shape[1]} features, weight expects {weight.shape[1]} (weight shape {weight.shape})")
    if bias is not None and bias.shape != (weight.shape[0],):
        raise ValueError(f"{op}: bias has shape {bias.shape}, expected ({weight.shape[0]},)")


def _check_linear(x, weight, bias) -> None:
    check_linear_shapes("linear", x, weight, bias)


class Linear(Function):
    @staticmethod
    def forward(ctx, x, weight, bias=None):
        _check_linear(x, weight, bias)
        ctx.save_for_backward(x, weight)
        y = x @ weight.T
        if bias is not None:
            y += bias
        return y

    @staticmethod
    def backward(ctx, grad):
        x, weight = ctx.saved_arrays
        needs_x, needs_w = ctx.needs_input_grad[0], ctx.needs_input_grad[1]
        needs_b = len(ctx.needs_input_grad) > 2 and ctx.needs_input_grad[2]
        grad_x = grad @ weight if needs_x else None
        grad_w = grad.T @ x if needs_w else None
        grad_b = grad.sum(axis=0) if needs_b else None
        return grad_x, grad_w, grad_b


class LinearActivation(Function):
    """h = f(x W^T + b) as one op (see the module docstring); saves x, W and h."""

    op_name = "linear"

    @staticmethod
    def forward(ctx, x, weight, bias=None, activation="relu", slope=0.01):
        _check_linear(x, weight, bias)
        h = kernel("bias_activation_forward")(x @ weight.T, bias, activation, slope)
        ctx.save_for_backward(x, weight, h)
        ctx.activation, ctx.slope = activation, slope
        return h

    @staticmethod
    def backward(ctx, grad):
        x, weight, h = ctx.saved_arrays
        needs_x, needs_w = ctx.needs_input_grad[0], ctx.needs_input_grad[1]
        needs_b = len(ctx.needs_input_grad) > 2 and ctx.needs_input_grad[2]
        d, grad_b = kernel("bias_activation_backward")(grad, h, ctx.activation, ctx.slope, needs_b)
        grad_x = d @ weight if needs_x else None
        grad_w = d.T @ x if needs_w else None
        return grad_x, grad_w, grad_b


def _require_float(op_name: str, **named) -> None:
    """Refuse integer, boolean and complex operands, naming the op, the argument and its dtype.

    NumPy would compute int64 @ float32 in float64 (a float32 model silently turning float64)
    and a complex product would fail later with a message about requires_grad; both are
    mistakes to report here, where the reader can see which argument to convert.
    """
    for name, value in named.items():
        dtype = getattr(value, "dtype", None)
        if value is None or (dtype is not None and np.dtype(dtype).kind == "f"):
            continue
        dtype = dtype if dtype is not None else np.asarray(value).dtype
        raise TypeError(f"{op_name}: {name} has dtype {dtype}; {op_name} takes floating-point arrays "
                        f"(float32 or float64): convert it with .astype(...) first")


def matmul(a: Tensor, b: Tensor) -> Tensor:
    """``a @ b`` as NumPy computes it: (..., m, k) @ (..., k, n) -> (..., m, n), leading axes broadcast;
    a 1-D operand is a vector: (k,) @ (k, n) -> (n,), (m, k) @ (k,) -> (m,), (k,) @ (k,) -> ().

    Both operands must be floating point (integer or complex ones are refused, not cast)."""
    _require_float("matmul", a=a, b=b)
    return MatMul.apply(a, b)


def linear(x: Tensor, weight: Tensor, bias: Tensor = None, activation: str = None, slope: float = 0.01) -> Tensor:
    """``x W^T + b``. x: (N, in), weight: (out, in), bias: (out,) or None -> (N, out).

    ``activation``: None, or "relu", "sigmoid", "tanh", "leaky_relu" (``slope`` > 0) to return
    f(x W^T + b) from one fused op: the same numbers as ``relu(linear(x, W, b))`` and the same
    gradients, with one array pass and one saved array less.

    Every operand must be floating point: an integer batch (uint8 pixels) is refused rather than
    cast, since the cast is also where the scaling to [0, 1] is usually forgotten."""
    _require_float("linear", x=x, weight=weight, bias=bias)
    if activation is None:
        return Linear.apply(x, weight, bias)
    if activation not in ACTIVATIONS:
        raise ValueError(f"linear: activation must be None or one of {ACTIVATIONS}, got {activation!r}")
    if activation == "leaky_relu" and not slope > 0:
        raise ValueError(f"linear: a fused leaky_relu needs slope > 0 (its derivative is read from the sign of "
                         f"the output), got {slope}; apply ops.leaky_relu separately")
    return LinearActivation.apply(x, weight, bias, activation=activation, slope=float(slope))


# ---- gradcheck cases (python -m scratchgen.gradcheck) ------------------------------------------
from ..gradcheck import register_case  # noqa: E402

register_case("matmul")(lambda rng: (matmul, [rng.standard_normal((2, 3, 4)), rng.standard_normal((4, 5))]))
register_case("matmul_vector_matrix")(lambda rng: (matmul, [rng.standard_normal(4), rng.standard_normal((2, 4, 3))]))
register_case("matmul_matrix_vector")(lambda rng: (matmul, [rng.standard_normal((2, 3, 4)), rng.standard_normal(4)]))
register_case("matmul_dot")(lambda rng: (matmul, [rng.standard_normal(5), rng.standard_normal(5)]))
register_case("linear")(lambda rng: (linear, [rng.standard_normal((3, 4)), rng.standard_normal((5, 4)), rng.standard_normal(5)]))
for _name in ACTIVATIONS:
    register_case(f"linear_{_name}")(lambda rng, _name=_name: (
        lambda x, w, b: linear(x, w, b, activation=_name, slope=0.2),
        [rng.standard_normal((3, 4)), rng.standard_normal((5, 4)), rng.standard_normal(5)]))
