"""Matrix products: ``matmul`` and ``linear`` (x W^T + b).

For Y = A @ B and incoming gradient G = dL/dY:
    dL/dA = G @ B^T        dL/dB = A^T @ G
(with ^T swapping the last two axes; leading batch axes broadcast and the engine's
``unbroadcast`` sums them back).

``linear`` is one op rather than matmul + transpose + add so that its backward is three
GEMM-shaped lines a reader can check against the formulas, and so that a kernel backend can
replace it whole:
    y = x W^T + b      x: (N, in), W: (out, in), b: (out,), y: (N, out)
    dL/dx = G W        dL/dW = G^T x        dL/db = sum_n G
"""
from __future__ import annotations

import numpy as np

from ..function import Function
from ..tensor import Tensor


def _swap_last(a):
    return a.swapaxes(-1, -2)


class MatMul(Function):
    @staticmethod
    def forward(ctx, a, b):
        if a.ndim < 2 or b.ndim < 2:
            raise ValueError(f"matmul: inputs need at least 2 dimensions, got shapes {a.shape} and {b.shape}")
        if a.shape[-1] != b.shape[-2]:
            raise ValueError(f"matmul: shapes {a.shape} and {b.shape} do not align ({a.shape[-1]} != {b.shape[-2]})")
        ctx.save_for_backward(a, b)
        return a @ b

    @staticmethod
    def backward(ctx, grad):
        a, b = ctx.saved_arrays
        grad_a = grad @ _swap_last(b) if ctx.needs_input_grad[0] else None
        grad_b = _swap_last(a) @ grad if ctx.needs_input_grad[1] else None
        return grad_a, grad_b


class Linear(Function):
    @staticmethod
    def forward(ctx, x, weight, bias=None):
        if weight.ndim != 2:
            raise ValueError(f"linear: weight must be (out_features, in_features), got shape {weight.shape}")
        if x.ndim != 2:
            raise ValueError(f"linear: input must be (batch, features), got shape {x.shape}")
        if x.shape[1] != weight.shape[1]:
            raise ValueError(f"linear: input has {x.shape[1]} features, weight expects {weight.shape[1]} (weight shape {weight.shape})")
        if bias is not None and bias.shape != (weight.shape[0],):
            raise ValueError(f"linear: bias has shape {bias.shape}, expected ({weight.shape[0]},)")
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
    """``a @ b`` for inputs of 2 or more dimensions (leading axes broadcast).

    Both operands must be floating point (integer or complex ones are refused, not cast)."""
    _require_float("matmul", a=a, b=b)
    return MatMul.apply(a, b)


def linear(x: Tensor, weight: Tensor, bias: Tensor = None) -> Tensor:
    """``x W^T + b``. x: (N, in), weight: (out, in), bias: (out,) or None -> (N, out).

    Every operand must be floating point: an integer batch (uint8 pixels) is refused rather than
    cast, since the cast is also where the scaling to [0, 1] is usually forgotten."""
    _require_float("linear", x=x, weight=weight, bias=bias)
    return Linear.apply(x, weight, bias)


# ---- gradcheck cases (python -m scratchgen.gradcheck) ------------------------------------------
from ..gradcheck import register_case  # noqa: E402

register_case("matmul")(lambda rng: (matmul, [rng.standard_normal((2, 3, 4)), rng.standard_normal((4, 5))]))
register_case("linear")(lambda rng: (linear, [rng.standard_normal((3, 4)), rng.standard_normal((5, 4)), rng.standard_normal(5)]))
