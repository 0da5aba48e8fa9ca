"""Op benchmark: forward + backward of single ops, scratchgen vs PyTorch at the same thread count.

Each case is one op at the size it has in this project's models (batch ``N`` can be changed
with ``--sizes``); every input is float32 and every input gets its gradient (the op's full
backward, the same work for both libraries). One timed call is

    clear the leaves' .grad -> out = op(inputs) -> out.backward(upstream gradient)

with a fixed upstream gradient of the output's shape (the loss case has a scalar output), so
no extra reduction op is timed. Both libraries get identical input values.

    case                    shapes (N = batch)                                  where it is used
    linear                  (N, 784) -> 400                                     VAE / AE encoder
    conv2d_k3               (N, 1, 28, 28) -> 32, k3 p1                         issue 2's conv sizes
    conv2d_k3_wide          (N, 32, 14, 14) -> 64, k3 p1
    conv2d_k4s2             (N, 1, 28, 28) -> 64, k4 s2 p1                      DCGAN discriminator
    conv2d_k4s2_wide        (N, 64, 14, 14) -> 128, k4 s2 p1
    conv_transpose2d        (N, 128, 7, 7) -> 64, k4 s2 p1                      DCGAN generator
    conv_transpose2d_out    (N, 64, 14, 14) -> 1, k4 s2 p1
    sigmoid_bce_with_logits (N, 784) logits and targets, sum / N                VAE reconstruction
    attention_L64           q, k, v (N, 4, 64, 32): 4 heads of width 32 (E = 128)  transformer self-attention
    attention_L128          q, k, v (N, 4, 128, 32)
    attention_causal_L128   the same with is_causal=True                        decoder self-attention
    layer_norm              (N 128, 128) with weight and bias                   transformer, N sequences of 128
    gelu                    (N 128, 512)                                        transformer feed-forward

``run`` returns rows in the harness's format: median time per call, spread, the first call
apart, the peer's times and the median of the A/B pair ratios (below 1: scratchgen faster).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np

from .harness import (PeerMissing, QUICK_TARGET_SAMPLE_S, TARGET_SAMPLE_S, error_row, load_peer, measure, measure_pair,
                      pinned_threads, row_from_pair, skipped_row, torch_sync)

DEFAULT_REPEAT = 30
QUICK_REPEAT = 5


@dataclass(frozen=True)
class OpCase:
    """One op at one size. ``inputs(N, rng)`` -> named float32 arrays; ``grad_out`` (if present)
    is the upstream gradient and not an input. ``ours``/``peer`` map the named inputs (Tensors /
    torch tensors) to the op's output; ``flops(N)`` counts the forward+backward multiply-adds x2."""

    name: str
    default_batch: int
    label: Callable[[int], str]
    inputs: Callable[[int, np.random.Generator], Dict[str, np.ndarray]]
    ours: Callable[[Dict], object]
    peer: Callable[[Dict], object]
    flops: Optional[Callable[[int], float]] = None


def _normal(rng, *shape, scale=1.0):
    return (scale * rng.standard_normal(shape)).astype(np.float32)


def _conv_case(name, c_in, c_out, size, k, stride, padding, batch=64) -> OpCase:
    out = (size + 2 * padding - k) // stride + 1

    def inputs(n, rng):
        return {"x": _normal(rng, n, c_in, size, size), "weight": _normal(rng, c_out, c_in, k, k, scale=(c_in * k * k) ** -0.5),
                "bias": _normal(rng, c_out), "grad_out": _normal(rng, n, c_out, out, out)}

    def ours(t):
        import scratchgen as sg

        return sg.conv2d(t["x"], t["weight"], t["bias"], stride=stride, padding=padding)

    def peer(t):
        import torch.nn.functional as F

        return F.conv2d(t["x"], t["weight"], t["bias"], stride=stride, padding=padding)

    return OpCase(name, batch, lambda n: f"{n}x{c_in}x{size}x{size}->{c_out} k{k} s{stride} p{padding}", inputs, ours, peer,
                  lambda n: 3 * 2.0 * n * out * out * c_out * c_in * k * k)


def _conv_transpose_case(name, c_in, c_out, size, k, stride, padding, batch=64) -> OpCase:
    out = (size - 1) * stride - 2 * padding + k

    def inputs(n, rng):
        return {"x": _normal(rng, n, c_in, size, size), "weight": _normal(rng, c_in, c_out, k, k, scale=(c_in * k * k) ** -0.5),
                "bias": _normal(rng, c_out), "grad_out": _normal(rng, n, c_out, out, out)}

    def ours(t):
        import scratchgen as sg

        return sg.conv_transpose2d(t["x"], t["weight"], t["bias"], stride=stride, padding=padding)

    def peer(t):
        import torch.nn.functional as F

        return F.conv_transpose2d(t["x"], t["weight"], t["bias"], stride=stride, padding=padding)

    return OpCase(name, batch, lambda n: f"{n}x{c_in}x{size}x{size}->{c_out} k{k} s{stride} p{padding}", inputs, ours, peer,
                  lambda n: 3 * 2.0 * n * size * size * c_in * c_out * k * k)


def _linear_case(batch=128, d_in=784, d_out=400) -> OpCase:
    def inputs(n, rng):
        return {"x": _normal(rng, n, d_in), "weight": _normal(rng, d_out, d_in, scale=d_in ** -0.5),
                "bias": _normal(rng, d_out), "grad_out": _normal(rng, n, d_out)}

    def ours(t):
        import scratchgen as sg

        return sg.linear(t["x"], t["weight"], t["bias"])

    def peer(t):
        import torch.nn.functional as F

        return F.linear(t["x"], t["weight"], t["bias"])

    return OpCase("linear", batch, lambda n: f"{n}x{d_in}->{d_out}", inputs, ours, peer, lambda n: 3 * 2.0 * n * d_in * d_out)


def _bce_case(batch=128, d=784) -> OpCase:
    def inputs(n, rng):
        return {"logits": _normal(rng, n, d, scale=3.0), "target": rng.random((n, d), dtype=np.float32)}

    def ours(t):
        import scratchgen as sg

        return sg.sigmoid_bce_with_logits(t["logits"], t["target"])  # "batch_sum": sum / N

    def peer(t):
        import torch.nn.functional as F

        return F.binary_cross_entropy_with_logits(t["logits"], t["target"], reduction="sum") / t["logits"].shape[0]

    return OpCase("sigmoid_bce_with_logits", batch, lambda n: f"{n}x{d}", inputs, ours, peer)


def _attention_case(name, length, heads=4, head_dim=32, batch=32, causal=False) -> OpCase:
    shape = (heads, length, head_dim)

    def inputs(n, rng):
        return {"q": _normal(rng, n, *shape), "k": _normal(rng, n, *shape), "v": _normal(rng, n, *shape),
                "grad_out": _normal(rng, n, *shape)}

    def ours(t):
        import scratchgen as sg

        return sg.scaled_dot_product_attention(t["q"], t["k"], t["v"], is_causal=causal)

    def peer(t):
        import torch.nn.functional as F

        return F.scaled_dot_product_attention(t["q"], t["k"], t["v"], is_causal=causal)

    # Six GEMMs of N heads (L x L x head_dim): q k^T and P v forward, four in the backward.
    return OpCase(name, batch, lambda n: f"{n}x{heads}x{length}x{head_dim}{' causal' if causal else ''}", inputs, ours, peer,
                  lambda n: 6 * 2.0 * n * heads * length * length * head_dim)


def _layer_norm_case(batch=32, length=128, width=128) -> OpCase:
    def inputs(n, rng):
        return {"x": _normal(rng, n * length, width), "weight": 1 + _normal(rng, width, scale=0.1),
                "bias": _normal(rng, width, scale=0.1), "grad_out": _normal(rng, n * length, width)}

    def ours(t):
        import scratchgen as sg

        return sg.layer_norm(t["x"], t["weight"], t["bias"])

    def peer(t):
        import torch.nn.functional as F

        return F.layer_norm(t["x"], (width,), t["weight"], t["bias"])

    return OpCase("layer_norm", batch, lambda n: f"{n * length}x{width}", inputs, ours, peer)


def _gelu_case(batch=32, length=128, width=512) -> OpCase:
    def inputs(n, rng):
        return {"x": _normal(rng, n * length, width, scale=2.0), "grad_out": _normal(rng, n * length, width)}

    def ours(t):
        import scratchgen as sg

        return sg.gelu(t["x"])

    def peer(t):
        import torch.nn.functional as F

        return F.gelu(t["x"])

    return OpCase("gelu", batch, lambda n: f"{n * length}x{width}", inputs, ours, peer)


CASES: Tuple[OpCase, ...] = (
    _linear_case(),
    _conv_case("conv2d_k3", 1, 32, 28, 3, 1, 1),
    _conv_case("conv2d_k3_wide", 32, 64, 14, 3, 1, 1),
    _conv_case("conv2d_k4s2", 1, 64, 28, 4, 2, 1),
    _conv_case("conv2d_k4s2_wide", 64, 128, 14, 4, 2, 1),
    _conv_transpose_case("conv_transpose2d", 128, 64, 7, 4, 2, 1),
    _conv_transpose_case("conv_transpose2d_out", 64, 1, 14, 4, 2, 1),
    _bce_case(),
    _attention_case("attention_L64", 64),
    _attention_case("attention_L128", 128),
    _attention_case("attention_causal_L128", 128, causal=True),
    _layer_norm_case(),
    _gelu_case(),
)


# ---- building the two timed calls ---------------------------------------------------------------
def _our_step(case: OpCase, arrays: Dict[str, np.ndarray], backend: str):
    """scratchgen's forward+backward closure and its sync function on ``backend``'s device."""
    from scratchgen.device import backend_device, synchronize, to_device
    from scratchgen.tensor import Tensor

    device = backend_device(backend)
    tensors = {k: Tensor(to_device(a, device), requires_grad=True) for k, a in arrays.items() if k != "grad_out"}
    grad_out = to_device(arrays["grad_out"], device) if "grad_out" in arrays else None
    leaves = list(tensors.values())

    def step():
        for leaf in leaves:
            leaf.grad = None
        case.ours(tensors).backward(grad_out)

    sync = (lambda: synchronize(device)) if device.kind == "cuda" else None
    return step, sync, str(device)


def _peer_step(case: OpCase, arrays: Dict[str, np.ndarray], torch, device: str):
    """PyTorch's forward+backward closure on ``device`` ("cpu" or "cuda")."""
    tensors = {k: torch.from_numpy(a.copy()).to(device).requires_grad_(True) for k, a in arrays.items() if k != "grad_out"}
    grad_out = torch.from_numpy(arrays["grad_out"].copy()).to(device) if "grad_out" in arrays else None
    leaves = list(tensors.values())

    def step():
        for leaf in leaves:
            leaf.grad = None
        case.peer(tensors).backward(grad_out)

    return step, torch_sync(torch, device)


def _check_same_forward(case: OpCase, arrays, backend: str, torch, device: str) -> Optional[float]:
    """Max |ours - torch| of the forward outputs (a sanity check that the same op is compared)."""
    from scratchgen.device import backend_device, to_device, to_numpy
    from scratchgen.tensor import Tensor

    ours = case.ours({k: Tensor(to_device(a, backend_device(backend))) for k, a in arrays.items() if k != "grad_out"})
    with torch.no_grad():
        theirs = case.peer({k: torch.from_numpy(a.copy()).to(device) for k, a in arrays.items() if k != "grad_out"})
    return float(np.max(np.abs(to_numpy(ours.data).astype(np.float64) - theirs.cpu().numpy().astype(np.float64))))


# ---- the suite --------------------------------------------------------------------------------
def select_cases(names: Optional[Sequence[str]] = None) -> List[OpCase]:
    if not names:
        return list(CASES)
    known = {case.name: case for case in CASES}
    unknown = [n for n in names if n not in known]
    if unknown:
        raise ValueError(f"bench_ops: unknown case(s) {unknown}; choose from {sorted(known)}")
    return [known[n] for n in names]


def run(quick: bool = False, backends: Sequence[str] = ("numpy",), sizes: Optional[Sequence[int]] = None,
        repeat: Optional[int] = None, threads: Optional[int] = None, cases: Optional[Sequence[str]] = None,
        log: Callable[[str], None] = print) -> List[Dict]:
    """Time every case on every backend against PyTorch (CPU for CPU backends, CUDA for GPU ones).

    ``sizes``: batch sizes N to run each case at (default: each case's own batch). ``threads``:
    recorded in the rows (the pinning itself is done by the harness's child process). A missing
    or unusable peer gives rows timed without a ratio and with ``peer`` marked skipped.
    """
    from scratchgen.backend import backend_status, use_backend
    from scratchgen.device import backend_device

    repeat = repeat or (QUICK_REPEAT if quick else DEFAULT_REPEAT)
    target = QUICK_TARGET_SAMPLE_S if quick else TARGET_SAMPLE_S
    threads = threads if threads is not None else pinned_threads()
    try:
        torch = load_peer("torch")
        peer_problem = None
    except PeerMissing as missing:
        torch, peer_problem = None, str(missing)

    rows = []
    for backend in backends:
        device = str(backend_device(backend))
        row_threads = threads if device == "cpu" else None
        try:
            usable, why = backend_status(backend)
        except Exception as error:  # a kernels module failing in an unexpected way
            usable, why = False, f"{type(error).__name__}: {error}"
        if not usable:
            rows.append(skipped_row("ops", "*", f"backend {backend} unavailable: {why}", backend=backend, threads=row_threads))
            continue
        peer_device = "cuda" if device.startswith("cuda") else "cpu"
        backend_peer_problem = peer_problem
        if torch is not None and peer_device == "cuda" and not torch.cuda.is_available():
            backend_peer_problem = "torch has no CUDA device here"
        for case in select_cases(cases):
            for n in (sizes or [case.default_batch]):
                label = case.label(n)
                fields = dict(suite="ops", name=case.name, size=label, size_value=n, backend=backend, device=device,
                              threads=row_threads, unit="s/call", peer="torch" if backend_peer_problem is None else None)
                arrays = case.inputs(n, np.random.default_rng(0))
                try:
                    with use_backend(backend):
                        ours, sync, _ = _our_step(case, arrays, backend)
                        if backend_peer_problem is None:
                            theirs, peer_sync = _peer_step(case, arrays, torch, peer_device)
                            result = measure_pair(ours, theirs, repeat, sync, peer_sync, target)
                            difference = _check_same_forward(case, arrays, backend, torch, peer_device)
                        else:
                            result, difference = measure(ours, repeat, sync, target), None
                except Exception as error:  # one broken case must not end the suite
                    rows.append(error_row(**fields, error=error))
                    log(f"  ops {case.name} {label} [{backend}]: ERROR {error}")
                    continue
                extra = {"max_abs_diff_vs_peer": difference}
                if backend_peer_problem is not None:
                    extra["peer_skipped"] = f"torch: {backend_peer_problem}"
                if case.flops is not None:
                    extra["flops"] = case.flops(n)
                    extra["gflops"] = case.flops(n) / result.get("ours", result)["median_s"] / 1e9
                row = row_from_pair(result, **fields, extra=extra)
                rows.append(row)
                log(_progress_line(row, threads))
    return rows


def _progress_line(row: Dict, threads) -> str:
    text = f"  ops {row['name']:<24} {row['size']:<32} [{row['backend']}, {threads} thr] {row['median_s'] * 1e3:8.3f} ms"
    if row["ratio"] is not None:
        text += f"   torch {row['peer_median_s'] * 1e3:8.3f} ms   ratio {row['ratio']:.2f}"
    return text + ("   NOISY" if row["noisy"] else "")
