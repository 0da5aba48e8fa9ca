"""Layers: Linear, Conv2d, ConvTranspose2d, BatchNorm1d/2d, Dropout, Sequential, shape layers, activations.

Each layer is a thin ``Module`` around one op from ``scratchgen.ops``: the layer owns the
parameters and checks shapes with messages that name the layer; the op owns the math and the
backward. Every layer with weights takes

    dtype=np.float32   the dtype of its parameters (float64 for gradchecks)
    rng=None           a numpy Generator (or int seed) for initialisation: same rng, same model
    init="glorot_uniform"  an initialiser name from ``nn.init`` or a callable (biases start at 0)

Shapes (N = batch):
    Linear           (N, in)              -> (N, out)             weight (out, in)
    Conv2d           (N, C_in, H, W)      -> (N, C_out, H', W')   weight (C_out, C_in, kH, kW)
                     H' = (H + 2 padding - kH) // stride + 1
    ConvTranspose2d  (N, C_in, H, W)      -> (N, C_out, H', W')   weight (C_in, C_out, kH, kW)
                     H' = (H - 1) stride - 2 padding + kH + output_padding
    BatchNorm1d      (N, C)               -> (N, C)
    BatchNorm2d      (N, C, H, W)         -> (N, C, H, W)         (statistics over N, H, W)
"""
from __future__ import annotations

from typing import Sequence, Tuple, Union

import numpy as np

from .. import ops
from . import init as init_
from .module import Module, Parameter

__all__ = [
    "Linear", "Conv2d", "ConvTranspose2d", "BatchNorm1d", "BatchNorm2d", "Dropout", "Sequential",
    "Flatten", "Unflatten", "Reshape", "Identity", "Sigmoid", "Tanh", "ReLU", "LeakyReLU", "Softplus",
]


def _pair(value, name: str) -> Tuple[int, int]:
    pair = (value, value) if isinstance(value, (int, np.integer)) else tuple(value)
    if len(pair) != 2 or any(int(v) != v for v in pair):
        raise ValueError(f"{name} must be an int or a pair of ints, got {value!r}")
    return int(pair[0]), int(pair[1])


def _float_dtype(dtype, layer: str):
    dtype = np.dtype(dtype)
    if dtype.kind != "f":
        raise TypeError(f"{layer}: dtype must be floating (float32 or float64), got {dtype}")
    return dtype


def _positive(layer: str, **sizes) -> None:
    for name, value in sizes.items():
        if int(value) != value or value <= 0:
            raise ValueError(f"{layer}: {name} must be a positive int, got {value!r}")


# ---- affine layers -------------------------------------------------------------------------------
class Linear(Module):
    """y = x W^T + b.  x: (N, in_features) -> (N, out_features)."""

    def __init__(self, in_features: int, out_features: int, bias: bool = True, init="glorot_uniform",
                 rng=None, dtype=np.float32):
        super().__init__()
        _positive("Linear", in_features=in_features, out_features=out_features)
        dtype = _float_dtype(dtype, "Linear")
        self.in_features, self.out_features = int(in_features), int(out_features)
        shape = (self.out_features, self.in_features)
        weight = init_.get_initializer(init)(shape, rng=np.random.default_rng(rng), dtype=dtype, fans=init_.compute_fans(shape))
        self.weight = Parameter(weight)
        self.bias = Parameter(np.zeros(self.out_features, dtype=dtype)) if bias else None

    def forward(self, x, activation=None, slope: float = 0.01):
        """x W^T + b, or f(x W^T + b) in one fused op with ``activation`` (see ``ops.linear``)."""
        if x.ndim != 2 or x.shape[1] != self.in_features:
            raise ValueError(
                f"{self.describe()}: expected input of shape (N, {self.in_features}), got {tuple(x.shape)}"
                + (f" ({x.shape[1]} features, {self.in_features} expected)" if x.ndim == 2 else "")
            )
        return ops.linear(x, self.weight, self.bias, activation=activation, slope=slope)

    def describe(self) -> str:
        return f"Linear({self.in_features} -> {self.out_features})"

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, out_features={self.out_features}, bias={self.bias is not None}"


class _ConvBase(Module):
    def _check_input(self, x, name: str) -> None:
        if x.ndim != 4 or x.shape[1] != self.in_channels:
            raise ValueError(
                f"{name}({self.in_channels} -> {self.out_channels}): expected input of shape "
                f"(N, {self.in_channels}, H, W), got {tuple(x.shape)}"
            )

    def extra_repr(self) -> str:
        text = (f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, "
                f"stride={self.stride}, padding={self.padding}")
        if getattr(self, "output_padding", (0, 0)) != (0, 0):
            text += f", output_padding={self.output_padding}"
        return text + ("" if self.bias is not None else ", bias=False")


class Conv2d(_ConvBase):
    """2-D cross-correlation. x: (N, C_in, H, W) -> (N, C_out, H', W'); weight (C_out, C_in, kH, kW)."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size, stride=1, padding=0, bias: bool = True,
                 init="glorot_uniform", rng=None, dtype=np.float32):
        super().__init__()
        _positive("Conv2d", in_channels=in_channels, out_channels=out_channels)
        dtype = _float_dtype(dtype, "Conv2d")
        self.in_channels, self.out_channels = int(in_channels), int(out_channels)
        self.kernel_size = _pair(kernel_size, "Conv2d kernel_size")
        self.stride, self.padding = _pair(stride, "Conv2d stride"), _pair(padding, "Conv2d padding")
        shape = (self.out_channels, self.in_channels) + self.kernel_size
        weight = init_.get_initializer(init)(shape, rng=np.random.default_rng(rng), dtype=dtype, fans=init_.compute_fans(shape))
        self.weight = Parameter(weight)
        self.bias = Parameter(np.zeros(self.out_channels, dtype=dtype)) if bias else None

    def forward(self, x):
        self._check_input(x, "Conv2d")
        return ops.conv2d(x, self.weight, self.bias, stride=self.stride, padding=self.padding)


class ConvTranspose2d(_ConvBase):
    """The adjoint of Conv2d (an upsampling layer). x: (N, C_in, H, W) -> (N, C_out, H', W').

    weight: (C_in, C_out, kH, kW), as the gradient of a Conv2d with C_out inputs would need it.
    Its fans are given explicitly to the initialiser: fan_in = C_in kH kW, fan_out = C_out kH kW.
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size, stride=1, padding=0, output_padding=0,
                 bias: bool = True, init="glorot_uniform", rng=None, dtype=np.float32):
        super().__init__()
        _positive("ConvTranspose2d", in_channels=in_channels, out_channels=out_channels)
        dtype = _float_dtype(dtype, "ConvTranspose2d")
        self.in_channels, self.out_channels = int(in_channels), int(out_channels)
        self.kernel_size = _pair(kernel_size, "ConvTranspose2d kernel_size")
        self.stride, self.padding = _pair(stride, "ConvTranspose2d stride"), _pair(padding, "ConvTranspose2d padding")
        self.output_padding = _pair(output_padding, "ConvTranspose2d output_padding")
        receptive = self.kernel_size[0] * self.kernel_size[1]
        shape = (self.in_channels, self.out_channels) + self.kernel_size
        fans = (self.in_channels * receptive, self.out_channels * receptive)
        self.weight = Parameter(init_.get_initializer(init)(shape, rng=np.random.default_rng(rng), dtype=dtype, fans=fans))
        self.bias = Parameter(np.zeros(self.out_channels, dtype=dtype)) if bias else None

    def forward(self, x):
        self._check_input(x, "ConvTranspose2d")
        return ops.conv_transpose2d(
            x, self.weight, self.bias, stride=self.stride, padding=self.padding, output_padding=self.output_padding
        )


# ---- normalisation and regularisation ------------------------------------------------------------
class _BatchNorm(Module):
    """Normalise each channel by its batch mean and variance, then scale by gamma and shift by beta.

    Training: y = gamma (x - mean_B) / sqrt(var_B + eps) + beta with the batch's statistics, and
        running = (1 - momentum) running + momentum batch_statistic   (updated in place by the op;
        running_var uses the unbiased batch variance, as at inference the population is meant).
    Evaluation: the same formula with running_mean / running_var instead of the batch's.
    """

    expected_ndim = 2

    def __init__(self, num_features: int, eps: float = 1e-5, momentum: float = 0.1, affine: bool = True,
                 dtype=np.float32):
        super().__init__()
        _positive(type(self).__name__, num_features=num_features)
        if not 0.0 <= momentum <= 1.0:
            raise ValueError(f"{type(self).__name__}: momentum must be in [0, 1], got {momentum}")
        if eps <= 0:
            raise ValueError(f"{type(self).__name__}: eps must be positive, got {eps}")
        dtype = _float_dtype(dtype, type(self).__name__)
        self.num_features, self.eps, self.momentum, self.affine = int(num_features), float(eps), float(momentum), affine
        self.gamma = Parameter(np.ones(num_features, dtype=dtype)) if affine else None
        self.beta = Parameter(np.zeros(num_features, dtype=dtype)) if affine else None
        self.register_buffer("running_mean", np.zeros(num_features, dtype=dtype))
        self.register_buffer("running_var", np.ones(num_features, dtype=dtype))

    def forward(self, x):
        name = type(self).__name__
        if x.ndim != self.expected_ndim or x.shape[1] != self.num_features:
            layout = "(N, C)" if self.expected_ndim == 2 else "(N, C, H, W)"
            raise ValueError(f"{name}({self.num_features}): expected input {layout} with C = {self.num_features}, got {tuple(x.shape)}")
        return ops.batch_norm(
            x, self.gamma, self.beta, self.running_mean, self.running_var, self.training, self.momentum, self.eps
        )

    def extra_repr(self) -> str:
        return f"{self.num_features}, eps={self.eps}, momentum={self.momentum}, affine={self.affine}"


class BatchNorm1d(_BatchNorm):
    """Batch norm over features. x: (N, C)."""

    expected_ndim = 2


class BatchNorm2d(_BatchNorm):
    """Batch norm over channels, statistics over (N, H, W). x: (N, C, H, W)."""

    expected_ndim = 4


class Dropout(Module):
    """Inverted dropout: in training, zero each element with probability p and scale the rest by 1/(1-p).

    In evaluation (``eval()``) it is the identity. ``forward(x, mask=None)`` takes an explicit
    keep-mask for deterministic tests; otherwise masks come from this layer's own generator.
    """

    def __init__(self, p: float = 0.5, rng=None):
        super().__init__()
        if not 0.0 <= p < 1.0:
            raise ValueError(f"Dropout: p must be in [0, 1), got {p}")
        self.p = float(p)
        self.rng = np.random.default_rng(rng)

    def forward(self, x, mask=None):
        if not self.training or self.p == 0.0:
            return x
        return ops.dropout(x, self.p, True, mask=mask, rng=self.rng)

    def extra_repr(self) -> str:
        return f"p={self.p}"


# ---- containers and shape layers -----------------------------------------------------------------
class Sequential(Module):
    """Apply modules in order: ``Sequential(Linear(784, 400), ReLU(), Linear(400, 20))``. Named "0", "1", ..."""

    def __init__(self, *layers: Module):
        super().__init__()
        for layer in layers:
            self.append(layer)

    def append(self, layer: Module) -> "Sequential":
        if not isinstance(layer, Module):
            raise TypeError(f"Sequential: element {len(self)} must be a Module, got {type(layer).__name__}")
        setattr(self, str(len(self)), layer)
        return self

    def __len__(self) -> int:
        return len(self._modules)

    def __iter__(self):
        return iter(self._modules.values())

    def __getitem__(self, index: Union[int, slice]):
        layers = list(self._modules.values())
        if isinstance(index, slice):
            return Sequential(*layers[index])
        return layers[index]

    def forward(self, x):
        """Each layer in turn; a ``Linear`` followed by ReLU, Sigmoid, Tanh or LeakyReLU (slope > 0)
        runs as one fused op (``ops.linear(..., activation=...)``): the same numbers and gradients,
        one array pass and one saved array less. Subclasses of those layers are never fused."""
        layers = list(self._modules.values())
        index = 0
        while index < len(layers):
            layer = layers[index]
            following = layers[index + 1] if index + 1 < len(layers) else None
            activation = fused_activation(following) if type(layer) is Linear else None
            if activation is not None:
                x = layer.forward(x, activation=activation, slope=getattr(following, "slope", 0.01))
                index += 2
            else:
                x = layer(x)
                index += 1
        return x


def fused_activation(layer):
    """The ``ops.linear`` activation name that stands for ``layer``, or None if it cannot be fused."""
    kind = type(layer)
    if kind is ReLU:
        return "relu"
    if kind is Sigmoid:
        return "sigmoid"
    if kind is Tanh:
        return "tanh"
    if kind is LeakyReLU and layer.slope > 0:
        return "leaky_relu"
    return None


class Flatten(Module):
    """(N, d1, d2, ...) -> (N, d1 d2 ...): keep the batch axis, flatten the rest."""

    def forward(self, x):
        return x.reshape((x.shape[0], -1))


class Unflatten(Module):
    """Split axis ``dim`` into ``sizes``: Unflatten(1, (1, 28, 28)) maps (N, 784) -> (N, 1, 28, 28)."""

    def __init__(self, dim: int, sizes: Sequence[int]):
        super().__init__()
        self.dim, self.sizes = int(dim), tuple(int(s) for s in sizes)

    def forward(self, x):
        dim = self.dim % x.ndim
        if int(np.prod(self.sizes)) != x.shape[dim]:
            raise ValueError(f"Unflatten: axis {self.dim} of shape {tuple(x.shape)} has {x.shape[dim]} elements, sizes {self.sizes} hold {int(np.prod(self.sizes))}")
        return x.reshape(tuple(x.shape[:dim]) + self.sizes + tuple(x.shape[dim + 1:]))

    def extra_repr(self) -> str:
        return f"dim={self.dim}, sizes={self.sizes}"


class Reshape(Module):
    """Reshape every example: Reshape((1, 28, 28)) maps (N, 784) -> (N, 1, 28, 28); -1 allowed once."""

    def __init__(self, shape: Sequence[int]):
        super().__init__()
        self.shape = tuple(int(s) for s in shape)

    def forward(self, x):
        return x.reshape((x.shape[0],) + self.shape)

    def extra_repr(self) -> str:
        return f"{self.shape}"


class Identity(Module):
    def forward(self, x):
        return x


# ---- activations -------------------------------------------------------------------------------
class Sigmoid(Module):
    def forward(self, x):
        return ops.sigmoid(x)


class Tanh(Module):
    def forward(self, x):
        return ops.tanh(x)


class ReLU(Module):
    def forward(self, x):
        return ops.relu(x)


class LeakyReLU(Module):
    """x for x > 0, slope x otherwise (DCGAN discriminators use slope 0.2)."""

    def __init__(self, slope: float = 0.01):
        super().__init__()
        self.slope = float(slope)

    def forward(self, x):
        return ops.leaky_relu(x, self.slope)

    def extra_repr(self) -> str:
        return f"slope={self.slope}"


class Softplus(Module):
    def forward(self, x):
        return ops.softplus(x)
