"""A few training steps of every model family on the GPU backends give the NumPy backend's losses.

Same seed, same data, same noise: each step's randomness (the VAE's eps, the GAN's z, the RBM's
uniforms) is drawn on the host from one seeded generator and handed to both runs, so the
comparison is deterministic. What differs is only where the arithmetic runs: the NumPy
references on the host against

* ``numba-cuda`` in Numba's CUDA simulator (here, in CI: host arrays, the kernels run as Python);
* ``numba-cuda`` and ``cupy`` on a real GPU (``SCRATCHGEN_REAL_CUDA=1``; ``gpu`` marker): the
  model moved with ``model.to("cuda")``, the data and noise copied to the device, cuBLAS
  GEMMs, and the check ``python -m benchmarks gpu`` runs this file.

Families: autoencoders (plain, contractive, convolutional), VAEs (MLP, convolutional), GANs (MLP,
DCGAN: conv, transposed conv, batch norm), Boltzmann machines (Bernoulli RBM, PCD), attention (the causal byte language model: embedding,
layer norm, masked softmax, GELU; the simulator only, see ``HOST_ONLY``). Each case is
tiny (8x8 images, batch 4): the simulator costs about a millisecond per simulated thread.
"""
import numpy as np
import pytest

import scratchgen
from scratchgen import backend, device, nn
from scratchgen.models.boltzmann import helpers as boltzmann_helpers

pytest.importorskip("numba", reason="the numba-cuda backend needs numba and numba-cuda")
from numba.cuda import config as cuda_config  # noqa: E402

SIMULATED = bool(cuda_config.ENABLE_CUDASIM)
SHAPE, BATCH, STEPS = (1, 8, 8), 4, 3
CONTEXT = 4  # bytes per window of the tiny language model: 2 windows, 2 steps (in the simulator a layer
            # norm costs seconds per launch: 32 Python threads meet at every barrier of every row)
RTOL = {np.dtype(np.float32): 2e-4, np.dtype(np.float64): 1e-9}

pytestmark = pytest.mark.filterwarnings("ignore:The keyword argument 'nopython=False' was supplied")


# ---- the models, tiny ------------------------------------------------------------------------------
def _ae(dtype):
    from scratchgen.models.autoencoders.autoencoder import Autoencoder

    return Autoencoder(SHAPE, hidden=5, lr=1e-2, rng=1, dtype=dtype)


def _contractive_ae(dtype):
    from scratchgen.models.autoencoders.contractive import ContractiveAutoencoder

    return ContractiveAutoencoder(SHAPE, hidden=5, contraction=0.5, lr=1e-2, rng=1, dtype=dtype)


def _conv_ae(dtype):
    from scratchgen.models import DataInfo, build_model

    model = build_model("conv-ae", {"channels": [2, 3], "hidden": 4}, DataInfo(SHAPE, 10), np.random.default_rng(1))
    return model.to(dtype=dtype) if dtype != np.float32 else model


def _vae(dtype):
    from scratchgen.models.vae.vae import VAE

    return VAE(SHAPE, hidden=6, latent=3, lr=1e-2, rng=1, dtype=dtype)


def _conv_vae(dtype):
    from scratchgen.models.vae.vae import ConvVAE

    return ConvVAE(SHAPE, channels=(2, 3), hidden=5, latent=3, lr=1e-2, rng=1, dtype=dtype)


def _mlp_gan(dtype):
    from scratchgen.models.gan.gan import GAN

    generator = nn.Sequential(nn.Linear(3, 6, rng=1, dtype=dtype), nn.ReLU(), nn.Linear(6, 64, rng=2, dtype=dtype),
                              nn.Tanh(), nn.Reshape(SHAPE))
    discriminator = nn.Sequential(nn.Flatten(), nn.Linear(64, 6, rng=3, dtype=dtype), nn.LeakyReLU(0.2),
                                  nn.Linear(6, 1, rng=4, dtype=dtype))
    return GAN(generator, discriminator, SHAPE, latent_dim=3, lr=1e-2, rng=5, dtype=dtype)


def _dcgan(dtype):
    from scratchgen.models.gan.dcgan import DCGAN, dcgan_discriminator, dcgan_generator

    rng = np.random.default_rng(1)
    return DCGAN(dcgan_generator(3, SHAPE, 2, rng, dtype), dcgan_discriminator(SHAPE, 2, rng, dtype), SHAPE, 3,
                 lr=1e-2, rng=rng, dtype=dtype)


def _rbm(dtype):
    from scratchgen.models.boltzmann.bernoulli_rbm import BernoulliRBM

    return BernoulliRBM(64, 5, persistent=True, n_chains=BATCH, lr=0.05, momentum=0.5, weight_decay=1e-3,
                        init_std=0.1, dtype=dtype, rng=1)


def _charlm(dtype):
    from scratchgen.models.attention.language_model import ByteLanguageModel

    return ByteLanguageModel(context=CONTEXT, hidden=8, layers=1, heads=2, feedforward=16, lr=1e-2, warmup=1, rng=1,
                             dtype=dtype)


MODELS = {"ae": _ae, "contractive-ae": _contractive_ae, "conv-ae": _conv_ae, "vae": _vae, "conv-vae": _conv_vae,
          "gan": _mlp_gan, "dcgan": _dcgan, "rbm": _rbm,
          "charlm": _charlm}
FAMILIES = {"ae": "autoencoder", "contractive-ae": "autoencoder", "conv-ae": "autoencoder", "vae": "vae",
            "conv-vae": "vae", "gan": "gan", "dcgan": "gan", "rbm": "boltzmann",
            "charlm": "attention"}
HOST_ONLY = {"charlm": "the text models read byte ids from host arrays; ids on the device are not built yet"}


# ---- one step --------------------------------------------------------------------------------------
def _gan_step(model, x, rng, xp):
    """``GAN.adversarial_step`` with its noise drawn on the host and moved to the model's device
    (``GAN.train_step`` keeps its batches and noise on the host)."""
    from scratchgen.models.gan.gan import to_signed
    from scratchgen.tensor import Tensor

    model.train()
    real = xp.asarray(to_signed(x.astype(model.dtype)))
    z_d = xp.asarray(rng.standard_normal((len(x), model.latent_dim)).astype(model.dtype))
    z_g = xp.asarray(rng.standard_normal((len(x), model.latent_dim)).astype(model.dtype))
    with scratchgen.no_grad():
        fake = model.generate(z_d).data
    optimizer = model.optimizers["discriminator"]
    optimizer.zero_grad()
    d_loss, _, _ = model.discriminator_loss(Tensor(real), Tensor(fake))
    d_loss.backward()
    optimizer.step()
    optimizer = model.optimizers["generator"]
    optimizer.zero_grad()
    model.discriminator.requires_grad_(False)
    try:
        g_loss, _, _ = model.generator_loss(z_g)
        g_loss.backward()
    finally:
        model.discriminator.requires_grad_(True)
    optimizer.step()
    return {"d_loss": float(d_loss.item()), "g_loss": float(g_loss.item())}


class _HostDraws:
    """Stands in for the Boltzmann models' device generator: draws on the host from the seeded ``rng``
    and copies to the device, so the device run sees the very uniforms the host run sees."""

    def __init__(self, rng, xp):
        self.rng, self.xp = rng, xp

    def random(self, shape, dtype):
        return self.xp.asarray(self.rng.random(shape, dtype=dtype))

    def standard_normal(self, shape, dtype):
        return self.xp.asarray(self.rng.standard_normal(shape, dtype=dtype))


def train(name: str, backend_name: str, dtype, on_device: bool, monkeypatch, steps: int = STEPS):
    """(per-step losses, final parameters as host arrays) of ``steps`` steps of model ``name``."""
    if name == "charlm":
        steps = min(steps, 2)  # step 2 sees step 1's update, which is what the comparison needs
    dtype = np.dtype(dtype)
    data = np.random.default_rng(0).random((steps, BATCH) + SHAPE).astype(np.float32)
    if name == "rbm":
        data = (data > 0.5).astype(np.float32)
    if name == "charlm":  # byte windows (N, 1, 1, W) uint8, as --dataset wordnet-stream gives them
        data = np.random.default_rng(0).integers(0, 256, (steps, 2, 1, 1, CONTEXT)).astype(np.uint8)
    with scratchgen.use_backend(backend_name):
        model = MODELS[name](dtype)
        if name == "rbm":
            model.prepare(data.reshape(-1, 64))
        xp = np
        if on_device:
            import cupy

            model.to("cuda")
            xp = cupy
            monkeypatch.setattr(boltzmann_helpers, "_device_generator", lambda rng: _HostDraws(rng, cupy))
        losses = []
        for step in range(steps):
            rng = np.random.default_rng(100 + step)  # the step's noise: the same draws on every backend
            x = data[step]
            if name in ("gan", "dcgan"):
                losses.append(_gan_step(model, x, rng, xp))
            else:
                batch = xp.asarray(x.reshape(BATCH, -1) if name == "rbm" else x)
                if name == "rbm":
                    model.optimizers["rbm"].steps[0] = 0  # monitor every step (it draws uniforms too)
                losses.append(model.train_step(batch, None, rng))
        params = [device.to_numpy(p.data) for p in model.parameters()]
    return losses, params


def compare(name, got, expected, dtype):
    """Every step's every loss within ``RTOL``; the parameters only through the losses they give.

    Parameters are not compared one by one: a bias followed by batch norm has a zero gradient up
    to rounding, and Adam scales that rounding noise to a step of size lr, so such a bias ends up
    wherever the last bits of each backend's sums send it (and changes no loss). Steps 2 and 3
    see the parameters that the earlier steps produced, so a wrong update shows in their losses.
    """
    (losses, params), (ref_losses, ref_params) = got, expected
    rtol = RTOL[np.dtype(dtype)]
    assert len(losses) == len(ref_losses) and len(params) == len(ref_params)
    for step, (a, b) in enumerate(zip(losses, ref_losses)):
        assert set(a) == set(b), (a, b)
        for key in b:
            assert np.isfinite(b[key]), (name, step, key, b[key])
            assert abs(a[key] - b[key]) <= rtol * max(1.0, abs(b[key])), (name, step, key, a[key], b[key])
    for a, b in zip(params, ref_params):
        assert a.shape == b.shape and a.dtype == b.dtype and np.all(np.isfinite(a))


# ---- the tests --------------------------------------------------------------------------------------
def _gpu_reason():
    if SIMULATED:
        return "no real GPU: running in Numba's CUDA simulator (set SCRATCHGEN_REAL_CUDA=1 on a GPU machine)"
    return device._cuda_problem()


def test_every_model_family_is_covered():
    from scratchgen.models import MODEL_REGISTRY

    # classifiers reuse the families' layers; the classical models (naive Bayes, the Gaussian
    # mixture) fit in closed form or by EM on the host in float64 and have no kernels to compare.
    families = {spec.family for spec in MODEL_REGISTRY.values()} - {"classifier", "classical"}
    assert families <= set(FAMILIES.values()), families - set(FAMILIES.values())


@pytest.mark.skipif(not SIMULATED, reason="host arrays: the simulator's case (on a GPU, test_gpu_steps_match_numpy runs)")
@pytest.mark.parametrize("name", sorted(MODELS))
def test_numba_cuda_simulator_steps_match_numpy(name, monkeypatch):
    """numba-cuda's kernels (as Python, on host arrays) train every family like the references, float32."""
    ok, why = backend.backend_status("numba-cuda")
    if not ok:
        pytest.skip(why)
    expected = train(name, "numpy", np.float32, False, monkeypatch)
    compare(name, train(name, "numba-cuda", np.float32, False, monkeypatch), expected, np.float32)


@pytest.mark.gpu
@pytest.mark.skipif(_gpu_reason() is not None, reason=str(_gpu_reason()))
@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["float64", "float32"])
@pytest.mark.parametrize("backend_name", ["numba-cuda", "cupy"])
@pytest.mark.parametrize("name", sorted(MODELS))
def test_gpu_steps_match_numpy(name, backend_name, dtype, monkeypatch):
    """On the device: model, data and noise on the GPU, every kernel the backend has, cuBLAS GEMMs."""
    if name in HOST_ONLY:
        pytest.skip(HOST_ONLY[name])
    expected = train(name, "numpy", dtype, False, monkeypatch)
    compare(name, train(name, backend_name, dtype, True, monkeypatch), expected, dtype)
