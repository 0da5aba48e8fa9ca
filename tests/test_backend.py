"""The backend switch: choosing, restoring, the environment variable, clear errors, no silent fallback."""
import os
import subprocess
import sys

import numpy as np
import pytest

import scratchgen
from scratchgen import backend, device
from scratchgen.backend import BackendUnavailableError

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.fixture(autouse=True)
def restore_backend():
    previous = backend.get_backend()
    yield
    backend.set_backend(previous)


def _forget_backend(monkeypatch, name):
    """Make ``name`` look never-loaded, so the next set_backend imports and checks it afresh."""
    monkeypatch.setattr(backend, "_loaded_backends", set(backend._loaded_backends) - {name})
    module = backend._BACKEND_MODULES[name]
    for key in [k for k in sys.modules if k == module or k.startswith(module + ".")]:
        monkeypatch.delitem(sys.modules, key)


def test_set_get_and_context_manager_restore():
    assert backend.get_backend() == "numpy"
    with scratchgen.use_backend("numba") as name:
        assert name == "numba" and backend.get_backend() == "numba"
        with pytest.raises(RuntimeError):
            with scratchgen.use_backend("numpy"):
                raise RuntimeError("boom")
        assert backend.get_backend() == "numba"  # restored after the exception
    assert backend.get_backend() == "numpy"


def test_kernel_follows_the_switch():
    x = np.linspace(-3, 3, 7)
    assert backend.kernel("sigmoid_forward") is backend.implementation("sigmoid_forward", "numpy")
    with scratchgen.use_backend("numba"):
        assert backend.kernel("sigmoid_forward") is backend.implementation("sigmoid_forward", "numba")
        # a shelved numba kernel: the numba backend keeps the reference, and says so
        assert backend.kernel("tanh_forward") is backend.implementation("tanh_forward", "numpy")
        np.testing.assert_allclose(scratchgen.sigmoid(scratchgen.Tensor(x)).data, 1 / (1 + np.exp(-x)), rtol=1e-15)


def test_unknown_backend_lists_the_valid_ones():
    with pytest.raises(ValueError, match="numba-cuda"):
        backend.set_backend("tpu")


def test_missing_numba_raises_with_install_advice(monkeypatch):
    _forget_backend(monkeypatch, "numba")
    monkeypatch.setitem(sys.modules, "numba", None)  # "import numba" now raises ImportError
    with pytest.raises(BackendUnavailableError, match=r"pip install scratchgen\[numba\]"):
        backend.set_backend("numba")
    assert backend.get_backend() == "numpy"  # nothing switched


def test_missing_cupy_raises_with_install_advice(monkeypatch):
    _forget_backend(monkeypatch, "cupy")
    monkeypatch.setitem(sys.modules, "cupy", None)
    with pytest.raises(BackendUnavailableError, match=r"pip install scratchgen\[cuda\]"):
        backend.set_backend("cupy")


class _CupyWithoutGpu:
    """What ``import cupy`` gives on a machine without a GPU: imports fine, every device call fails."""

    class CUDARuntimeError(RuntimeError):
        pass

    class cuda:  # noqa: N801 - mimics the module layout
        class runtime:  # noqa: N801
            @staticmethod
            def getDeviceCount():
                raise _CupyWithoutGpu.CUDARuntimeError("cudaErrorNoDevice: no CUDA-capable device is detected")


def test_cupy_without_a_gpu_is_detected_explicitly(monkeypatch):
    monkeypatch.setitem(sys.modules, "cupy", _CupyWithoutGpu)
    assert not device.cuda_available()
    with pytest.raises(BackendUnavailableError, match="no CUDA-capable device"):
        device.to_device(np.ones(3), "cuda")


def test_numba_cuda_without_gpu_or_simulator_says_how_to_simulate():
    env = dict(os.environ, NUMBA_ENABLE_CUDASIM="0", PYTHONPATH=ROOT)
    code = ("import scratchgen\n"
            "try:\n    scratchgen.set_backend('numba-cuda')\n"
            "except scratchgen.BackendUnavailableError as e:\n    print('ERROR', e)\n"
            "else:\n    print('OK')\n")
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120, cwd=ROOT)
    if "OK" in out.stdout:
        pytest.skip("this machine has a usable CUDA GPU")
    assert "ERROR" in out.stdout and "NUMBA_ENABLE_CUDASIM=1" in out.stdout, out.stdout + out.stderr


def test_environment_variable_selects_the_backend_at_import():
    env = dict(os.environ, SCRATCHGEN_BACKEND="numba", PYTHONPATH=ROOT)
    out = subprocess.run([sys.executable, "-c", "import scratchgen; print(scratchgen.get_backend())"],
                         env=env, capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert out.stdout.strip() == "numba", out.stderr
    # A backend that cannot run: importing still works (so `scratchgen info` can say what is wrong),
    # but nothing runs on a silent fallback: the first op raises, naming the variable.
    env["SCRATCHGEN_BACKEND"] = "nonsense"
    code = ("import scratchgen as sg\ntry:\n    sg.sigmoid(sg.Tensor([0.0]))\nexcept sg.BackendUnavailableError as e:\n"
            "    print('refused:', e)")
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert out.returncode == 0 and "refused: SCRATCHGEN_BACKEND=nonsense" in out.stdout, out.stderr
    info = subprocess.run([sys.executable, "-m", "scratchgen", "info"], env=env, capture_output=True, text=True,
                          timeout=120, cwd=ROOT)
    assert info.returncode == 0 and "NOT USABLE: SCRATCHGEN_BACKEND=nonsense" in info.stdout, info.stderr
    train = subprocess.run([sys.executable, "-m", "scratchgen", "train", "ae", "--epochs", "1"], env=env,
                           capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert train.returncode == 2 and "Traceback" not in train.stderr
    assert len(train.stderr.strip().splitlines()) == 1 and "SCRATCHGEN_BACKEND=nonsense" in train.stderr


def test_kernel_table_names_every_fallback_and_shelved_kernel():
    backend.set_backend("numba")
    loaded = {name: backend.backend_status(name)[0] for name in backend.BACKENDS}  # registers what can load
    table = backend.kernel_table()
    cupy = "cupy" if loaded["cupy"] else "numpy"  # each backend's own kernel, else its fallback chain's
    assert table["sigmoid_forward"] == {"numpy": "numpy", "numba": "numba",
                                        "numba-cuda": "numba-cuda" if loaded["numba-cuda"] else cupy, "cupy": cupy}
    assert table["rbm_cd_statistics"]["numba"] == "numpy"  # no Numba version: it is two GEMMs
    assert table["tanh_forward"]["numba"] == "numpy"
    assert "tanh_forward" in backend.kernel_notes() and "numba" in backend.kernel_notes()["tanh_forward"]
    text = backend.format_kernel_table()
    assert "tanh_forward on numba:" in text


def test_shelving_needs_a_reason():
    with pytest.raises(ValueError, match="note"):
        backend.register_kernel("some_kernel", backend="numba", active=False)


def test_describe_reports_every_backend_and_device():
    from scratchgen import info

    text = info.describe()
    for name in backend.BACKENDS:
        assert f"  {name}" in text
    assert "cpu:" in text and "threads:" in text
    assert "numba " in text  # the version of numba


def test_tensor_to_cpu_is_identity_and_to_cuda_needs_a_gpu():
    t = scratchgen.Tensor(np.ones(3), requires_grad=True)
    assert str(t.device) == "cpu" and t.to("cpu") is t
    if device.cuda_available():
        pytest.skip("a GPU is present: see test_tensor_roundtrip_through_gpu")
    with pytest.raises(BackendUnavailableError, match="pip install scratchgen"):
        t.to("cuda")
    with pytest.raises(ValueError, match="unknown device"):
        t.to("tpu:0")


def test_backend_device():
    assert str(device.backend_device("numba")) == "cpu"
    assert str(device.backend_device("cupy")) == "cuda"


@pytest.mark.gpu
@pytest.mark.skipif(not device.cuda_available(), reason="no CUDA GPU usable through CuPy here")
def test_tensor_roundtrip_through_gpu():
    t = scratchgen.Tensor(np.arange(6.0).reshape(2, 3), requires_grad=True)
    g = t.to("cuda")
    assert str(g.device).startswith("cuda") and g.requires_grad and g.is_leaf
    np.testing.assert_array_equal(g.numpy(), t.data)
    assert g.to("cuda") is g and np.array_equal(g.to("cpu").data, t.data)
