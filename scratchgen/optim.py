"""Optimisers (SGD with momentum/Nesterov, Adam/AdamW) and gradient clipping.

The training loop is always

    optimizer.zero_grad()      # grads = None
    loss = model_loss(...)
    loss.backward()            # fills p.grad; never touches p itself
    clip_grad_norm(model, 5.0) # optional, between backward and step
    optimizer.step()           # the only place parameters change

``step`` skips parameters whose ``grad`` is None (a frozen or unused part of the model), and
Adam keeps a step count *per parameter*, so a parameter that missed some steps still gets the
right bias correction.

The arithmetic of each update is a registered kernel that takes *lists* of arrays and updates
them in place (``adam_update``, ``sgd_update``): the NumPy reference below loops over the
parameters, while a GPU backend can register one fused launch for all of them under the same
name. ``state_dict()`` holds only plain arrays (no pickle needed), e.g. for Adam

    steps (P,) int64, lr, beta1, beta2, eps, weight_decay (0-d), exp_avg.i, exp_avg_sq.i (like param i)

so ``np.savez(path, **optimizer.state_dict())`` is a complete checkpoint.
"""
from __future__ import annotations

import math
from typing import Dict, List, Sequence, Tuple

import numpy as np

from .backend import get_array_module, kernel, register_kernel
from .tensor import Tensor

__all__ = ["Optimizer", "SGD", "Adam", "AdamW", "clip_grad_norm", "clip_grad_value", "adam_update", "sgd_update"]


# ---- NumPy reference kernels ---------------------------------------------------------------------
@register_kernel("sgd_update")
def sgd_update(params, grads, velocities, lr, momentum, nesterov, weight_decay):
    """In place, for each parameter p with gradient g and velocity v (v may be None when momentum = 0):

        g <- g + weight_decay p                 (L2 penalty 0.5 wd |p|^2)
        v <- momentum v + g
        p <- p - lr (g + momentum v)            if nesterov
        p <- p - lr v                           otherwise (p - lr g when momentum = 0)

    The velocity starts at 0, so the first step's v is g (the convention of PyTorch and of
    Sutskever et al. 2013 with the learning rate moved outside v). ``grads`` are not modified.
    """
    for p, g, v in zip(params, grads, velocities):
        if weight_decay:
            g = g + weight_decay * p
        if momentum:
            v *= momentum
            v += g
            direction = g + momentum * v if nesterov else v
        else:
            direction = g
        p -= lr * direction


@register_kernel("adam_update")
def adam_update(params, grads, exp_avgs, exp_avg_sqs, step, lr, beta1, beta2, eps, weight_decay):
    """One Adam step (Kingma & Ba 2015, Algorithm 1), in place, for parameters all at step ``step`` (1-based):

        g <- g + weight_decay p                              (coupled L2, as in the paper's setting)
        m <- beta1 m + (1 - beta1) g                          first-moment estimate
        v <- beta2 v + (1 - beta2) g^2                        second-moment estimate
        m_hat = m / (1 - beta1^t),  v_hat = v / (1 - beta2^t) bias correction (m, v start at 0)
        p <- p - lr m_hat / (sqrt(v_hat) + eps)

    computed as ``p -= (lr / (1 - beta1^t)) m / (sqrt(v) / sqrt(1 - beta2^t) + eps)``, the same
    number without materialising m_hat and v_hat. ``params``, ``exp_avgs`` and ``exp_avg_sqs``
    are updated in place; ``grads`` are not modified.
    """
    if step < 1:
        raise ValueError(f"adam_update: step counts from 1, got {step}")
    step_size = lr / (1.0 - beta1**step)
    root_bias2 = math.sqrt(1.0 - beta2**step)
    for p, g, m, v in zip(params, grads, exp_avgs, exp_avg_sqs):
        xp = get_array_module(p)
        if weight_decay:
            g = g + weight_decay * p
        m *= beta1
        m += (1.0 - beta1) * g
        v *= beta2
        v += (1.0 - beta2) * (g * g)
        denom = xp.sqrt(v)
        denom /= root_bias2
        denom += eps
        update = m / denom
        update *= step_size
        p -= update


# ---- the optimiser base class --------------------------------------------------------------------
def _parameter_list(params) -> List[Tensor]:
    if hasattr(params, "parameters") and callable(params.parameters):
        params = params.parameters()  # a Module
    if isinstance(params, Tensor):
        raise TypeError("optimizer: pass an iterable of parameters (e.g. model.parameters()), not a single tensor")
    result, seen = [], set()
    for i, p in enumerate(params):
        if isinstance(p, tuple) and len(p) == 2 and isinstance(p[1], Tensor):
            p = p[1]  # (name, parameter) pairs from named_parameters()
        if not isinstance(p, Tensor):
            raise TypeError(f"optimizer: parameter {i} is a {type(p).__name__}, expected a Tensor/Parameter")
        if p.dtype.kind != "f":
            raise TypeError(f"optimizer: parameter {i} has dtype {p.dtype}; only floating tensors can be optimised")
        if id(p) not in seen:  # the same tensor twice would be updated twice
            seen.add(id(p))
            result.append(p)
    if not result:
        raise ValueError("optimizer: got an empty parameter list")
    return result


class Optimizer:
    """Holds the parameter list, per-parameter state arrays and hyperparameters.

    Subclasses name their state arrays in ``state_names`` and their float hyperparameters in
    ``hyperparameters``; the base class allocates state lazily (zeros like the parameter, on its
    device) and turns everything into a flat dict of arrays for checkpoints.
    """

    state_names: Tuple[str, ...] = ()
    hyperparameters: Tuple[str, ...] = ("lr",)

    def __init__(self, params, lr: float):
        if not lr >= 0.0:
            raise ValueError(f"{type(self).__name__}: lr must be >= 0, got {lr}")
        self.params = _parameter_list(params)
        self.lr = float(lr)
        self.steps = [0] * len(self.params)  # how many updates each parameter has received
        self.state: Dict[str, List] = {name: [None] * len(self.params) for name in self.state_names}

    def step(self) -> None:
        """Update every parameter that has a gradient (and count the step for it); skip the others."""
        active = self._active()
        if not active:
            return
        for i in active:
            self.steps[i] += 1
        self._update(active)

    def _update(self, active: List[int]) -> None:  # pragma: no cover - interface
        """The subclass's arithmetic on parameters ``active`` (their step counts already advanced)."""
        raise NotImplementedError

    def zero_grad(self) -> None:
        for p in self.params:
            p.grad = None

    def _active(self) -> List[int]:
        """Indices of parameters that have a gradient this step (others are skipped)."""
        active = []
        for i, p in enumerate(self.params):
            if p.grad is None:
                continue
            if p.grad.shape != p.shape:
                raise ValueError(f"{type(self).__name__}.step: parameter {i} has shape {p.shape} but its grad has {p.grad.shape}")
            active.append(i)
        return active

    def _state(self, name: str, indices: Sequence[int]) -> List:
        arrays = self.state[name]
        for i in indices:
            if arrays[i] is None:
                arrays[i] = get_array_module(self.params[i].data).zeros_like(self.params[i].data)
        return [arrays[i] for i in indices]

    def to(self, device) -> "Optimizer":
        """Move the state arrays already allocated to ``device`` (after moving the model there)."""
        from .device import to_device

        for arrays in self.state.values():
            for i, array in enumerate(arrays):
                if array is not None:
                    arrays[i] = to_device(array, device)
        return self

    # ---- checkpoints ---------------------------------------------------------------------------
    def state_dict(self) -> Dict[str, np.ndarray]:
        """Plain host arrays: ``steps``, each hyperparameter (0-d), and ``<state>.<i>`` for allocated state."""
        state = {"steps": np.asarray(self.steps, dtype=np.int64)}
        for name in self.hyperparameters:
            state[name] = np.asarray(float(getattr(self, name)))
        for name, arrays in self.state.items():
            for i, array in enumerate(arrays):
                if array is not None:
                    state[f"{name}.{i}"] = array.copy() if get_array_module(array) is np else array.get()
        return state

    def load_state_dict(self, state) -> None:
        """Restore from ``state_dict()`` output (e.g. read back with ``np.load(path, allow_pickle=False)``)."""
        owner = f"{type(self).__name__}.load_state_dict"
        if "steps" not in state:
            raise KeyError(f"{owner}: the state has no 'steps' entry; is it an optimiser checkpoint?")
        steps = np.asarray(state["steps"])
        if steps.shape != (len(self.params),):
            raise ValueError(f"{owner}: the checkpoint is for {steps.size} parameters, this optimiser has {len(self.params)}")
        missing = [name for name in self.hyperparameters if name not in state]
        valid = {"steps", *self.hyperparameters}
        new_state = {name: [None] * len(self.params) for name in self.state_names}
        problems = [f"missing hyperparameters {missing}"] if missing else []
        for key in state:
            if key in valid:
                continue
            name, _, index = key.rpartition(".")
            if name not in new_state or not index.isdigit() or int(index) >= len(self.params):
                problems.append(f"unexpected key {key!r}")
                continue
            i, value = int(index), state[key]
            value = value if hasattr(value, "shape") else np.asarray(value)
            p = self.params[i]
            if tuple(value.shape) != p.shape:
                problems.append(f"{key!r} has shape {tuple(value.shape)}, parameter {i} has {p.shape}")
                continue
            xp = get_array_module(p.data)
            new_state[name][i] = xp.array(value, dtype=p.dtype)  # a fresh copy on the parameter's device
        if problems:
            raise ValueError(f"{owner}: " + "; ".join(problems))
        self.steps = [int(s) for s in steps]
        for name in self.hyperparameters:
            setattr(self, name, float(np.asarray(state[name])))
        self.state = new_state


class SGD(Optimizer):
    """Stochastic gradient descent with optional (Nesterov) momentum and L2 weight decay; see ``sgd_update``."""

    state_names = ("velocity",)  # allocated only when momentum > 0
    hyperparameters = ("lr", "momentum", "weight_decay")

    def __init__(self, params, lr: float, momentum: float = 0.0, nesterov: bool = False, weight_decay: float = 0.0):
        super().__init__(params, lr)
        if not 0.0 <= momentum < 1.0:
            raise ValueError(f"SGD: momentum must be in [0, 1), got {momentum}")
        if nesterov and momentum == 0.0:
            raise ValueError("SGD: nesterov=True needs momentum > 0")
        if weight_decay < 0:
            raise ValueError(f"SGD: weight_decay must be >= 0, got {weight_decay}")
        self.momentum, self.nesterov, self.weight_decay = float(momentum), bool(nesterov), float(weight_decay)

    def _update(self, active: List[int]) -> None:
        velocities = self._state("velocity", active) if self.momentum else [None] * len(active)
        kernel("sgd_update")(
            [self.params[i].data for i in active], [self.params[i].grad for i in active], velocities,
            self.lr, self.momentum, self.nesterov, self.weight_decay,
        )


class Adam(Optimizer):
    """Adam with bias correction; see ``adam_update`` for the update.

    Weight decay. ``weight_decay`` (default) is *coupled* L2: ``wd p`` is added to the gradient
    before the moments, so it is rescaled by Adam's per-coordinate step size like any gradient
    (Kingma & Ba's setting; PyTorch's ``Adam(weight_decay=...)``). ``decoupled=True`` (or the
    ``AdamW`` class) instead shrinks ``p <- p (1 - lr wd)`` before the Adam step and leaves the
    moments alone (Loshchilov & Hutter 2019), which regularises all coordinates equally.
    """

    state_names = ("exp_avg", "exp_avg_sq")
    hyperparameters = ("lr", "beta1", "beta2", "eps", "weight_decay")

    def __init__(self, params, lr: float = 1e-3, betas=(0.9, 0.999), eps: float = 1e-8, weight_decay: float = 0.0,
                 decoupled: bool = False):
        super().__init__(params, lr)
        beta1, beta2 = betas
        for name, beta in (("betas[0]", beta1), ("betas[1]", beta2)):
            if not 0.0 <= beta < 1.0:
                raise ValueError(f"{type(self).__name__}: {name} must be in [0, 1), got {beta}")
        if eps < 0 or weight_decay < 0:
            raise ValueError(f"{type(self).__name__}: eps and weight_decay must be >= 0, got {eps} and {weight_decay}")
        self.beta1, self.beta2, self.eps = float(beta1), float(beta2), float(eps)
        self.weight_decay, self.decoupled = float(weight_decay), bool(decoupled)

    def _update(self, active: List[int]) -> None:
        if self.decoupled and self.weight_decay:
            shrink = 1.0 - self.lr * self.weight_decay
            for i in active:
                self.params[i].data *= shrink
        coupled_decay = 0.0 if self.decoupled else self.weight_decay
        # Normally every parameter is at the same step: one kernel call for all of them. A
        # parameter that skipped steps (grad None) is updated in its own group, with its own t.
        groups: Dict[int, List[int]] = {}
        for i in active:
            groups.setdefault(self.steps[i], []).append(i)
        for step, indices in groups.items():
            kernel("adam_update")(
                [self.params[i].data for i in indices], [self.params[i].grad for i in indices],
                self._state("exp_avg", indices), self._state("exp_avg_sq", indices),
                step, self.lr, self.beta1, self.beta2, self.eps, coupled_decay,
            )


class AdamW(Adam):
    """Adam with decoupled weight decay (Loshchilov & Hutter 2019): ``Adam(..., decoupled=True)``, default wd 0.01."""

    def __init__(self, params, lr: float = 1e-3, betas=(0.9, 0.999), eps: float = 1e-8, weight_decay: float = 0.01):
        super().__init__(params, lr, betas, eps, weight_decay, decoupled=True)


# ---- gradient clipping ---------------------------------------------------------------------------
def _named_grads(parameters) -> List[Tuple[str, Tensor]]:
    """``(name, tensor)`` for a Module, ``(name, p)`` pairs, or bare tensors (named by position)."""
    if hasattr(parameters, "named_parameters") and callable(parameters.named_parameters):
        parameters = parameters.named_parameters()
    elif isinstance(parameters, Tensor):
        parameters = [parameters]
    named = []
    for i, entry in enumerate(parameters):
        if isinstance(entry, tuple) and len(entry) == 2:
            name, p = entry
        else:
            p = entry
            name = p.name or f"parameter {i}"
        if p.grad is not None:
            named.append((f"{name} (shape {p.shape})", p))
    return named


def _check_finite_grad(name: str, grad, where: str) -> None:
    xp = get_array_module(grad)
    finite = xp.isfinite(grad)
    if not bool(finite.all()):
        bad = int(grad.size - int(finite.sum()))
        raise FloatingPointError(f"{where}: the gradient of {name} has {bad} non-finite value(s) (NaN/Inf); "
                                 f"find where with scratchgen.detect_anomaly()")


def clip_grad_norm(parameters, max_norm: float, error_if_nonfinite: bool = True) -> float:
    """Scale all gradients together so their global L2 norm is at most ``max_norm``; return the norm before.

    total = sqrt(sum_p |grad_p|^2);  if total > max_norm: grad_p <- grad_p * max_norm / (total + 1e-6).
    ``parameters``: a Module (errors then name e.g. ``encoder.0.weight``), ``named_parameters()``
    pairs, or tensors. Gradients that are None are skipped. A NaN/Inf gradient raises
    ``FloatingPointError`` naming the parameter (unless ``error_if_nonfinite=False``).
    """
    if not max_norm > 0:
        raise ValueError(f"clip_grad_norm: max_norm must be positive, got {max_norm}")
    named = _named_grads(parameters)
    squares = 0.0
    for name, p in named:
        if error_if_nonfinite:
            _check_finite_grad(name, p.grad, "clip_grad_norm")
        xp = get_array_module(p.grad)
        norm = float(xp.linalg.norm(p.grad.ravel()))
        if math.isinf(norm):  # float32 overflow of the sum of squares: redo it in float64
            norm = float(xp.linalg.norm(p.grad.astype(np.float64).ravel()))
        squares += norm * norm
    total = math.sqrt(squares)
    if total > max_norm:
        scale = max_norm / (total + 1e-6)
        for _, p in named:
            p.grad *= p.grad.dtype.type(scale)
    return total


def clip_grad_value(parameters, clip_value: float) -> None:
    """Clamp every gradient element into ``[-clip_value, clip_value]``, in place."""
    if not clip_value > 0:
        raise ValueError(f"clip_grad_value: clip_value must be positive, got {clip_value}")
    for _, p in _named_grads(parameters):
        xp = get_array_module(p.grad)
        xp.clip(p.grad, -clip_value, clip_value, out=p.grad)
