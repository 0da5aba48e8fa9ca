"""A tiny convolutional VAE trained for a few steps gives the same losses on every backend.

Same seed, same data, same noise (eps passed in): the numba backend (and numba-cuda in the
simulator, which runs the same kernels as Python) must reproduce the NumPy losses step by
step. The model touches most kernel families: conv2d and conv_transpose2d (im2col/col2im),
batch norm, leaky_relu, reparameterisation, Gaussian KL, sigmoid BCE from logits and Adam.
"""
import numpy as np
import pytest

import scratchgen
from scratchgen import backend, nn, ops
from scratchgen.optim import Adam

LATENT = 3


class TinyConvVAE(nn.Module):
    def __init__(self, dtype, rng):
        super().__init__()
        self.conv = nn.Conv2d(1, 3, 4, stride=2, padding=1, rng=rng, dtype=dtype)  # 8x8 -> 4x4
        self.norm = nn.BatchNorm2d(3, dtype=dtype)
        self.encode = nn.Linear(3 * 4 * 4, 2 * LATENT, rng=rng, dtype=dtype)
        self.decode = nn.Linear(LATENT, 3 * 4 * 4, rng=rng, dtype=dtype)
        self.deconv = nn.ConvTranspose2d(3, 1, 4, stride=2, padding=1, rng=rng, dtype=dtype)  # 4x4 -> 8x8

    def loss(self, x, eps):
        h = ops.leaky_relu(self.norm(self.conv(x)), 0.2)
        stats = self.encode(h.reshape(x.shape[0], -1))
        mu, logvar = stats[:, :LATENT], stats[:, LATENT:]
        z = ops.reparameterize(mu, logvar, eps)
        logits = self.deconv(ops.softplus(self.decode(z)).reshape(x.shape[0], 3, 4, 4))
        return ops.sigmoid_bce_with_logits(logits, x) + ops.gaussian_kl_standard(mu, logvar)


@pytest.fixture(autouse=True)
def run_the_numba_loops_on_tiny_inputs(monkeypatch):
    """The numba backend hands elementwise inputs below SMALL_INPUT elements to NumPy: not here."""
    try:
        from scratchgen.kernels.numba_cpu import _jit
    except ImportError:
        return
    monkeypatch.setattr(_jit, "SMALL_INPUT", 0)


def train_losses(backend_name, dtype, steps=3):
    rng = np.random.default_rng(0)
    x = scratchgen.Tensor(rng.random((4, 1, 8, 8)).astype(dtype))
    noise = [rng.standard_normal((4, LATENT)).astype(dtype) for _ in range(steps)]
    with scratchgen.use_backend(backend_name):
        model = TinyConvVAE(dtype, rng=1)
        optimizer = Adam(model.parameters(), lr=1e-2)
        losses = []
        for eps in noise:
            optimizer.zero_grad()
            loss = model.loss(x, scratchgen.Tensor(eps))
            loss.backward()
            optimizer.step()
            losses.append(float(loss.item()))
    return np.array(losses)


def _backends():
    names = ["numba"]
    ok, why = backend.backend_status("numba-cuda")
    try:
        from numba.cuda import config
    except ImportError:  # no Numba at all: every parametrisation skips (importorskip in the test)
        return names + ["numba-cuda"]

    simulated = bool(config.ENABLE_CUDASIM)
    names.append(pytest.param("numba-cuda", marks=pytest.mark.skipif(
        not (ok and simulated), reason="host arrays: the simulator's case (on a GPU, tests/test_model_steps.py "
                                       "trains on device arrays)" if ok else why)))
    return names


@pytest.mark.parametrize("dtype, rtol", [(np.float64, 1e-10), (np.float32, 1e-4)], ids=["float64", "float32"])
@pytest.mark.parametrize("backend_name", _backends())
def test_same_losses_on_every_backend(backend_name, dtype, rtol):
    pytest.importorskip("numba")
    reference = train_losses("numpy", dtype)
    assert np.all(np.isfinite(reference)) and reference[-1] < reference[0]  # it trains
    np.testing.assert_allclose(train_losses(backend_name, dtype), reference, rtol=rtol)
