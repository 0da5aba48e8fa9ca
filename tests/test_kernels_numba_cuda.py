"""Numba CUDA kernels against the NumPy reference.

Without a GPU the root conftest switches on Numba's CUDA simulator before numba is imported;
the kernels then run as Python threads on host arrays (32 threads per launch, tiny shapes:
the simulator costs about a millisecond per thread). On a machine with a GPU
(SCRATCHGEN_REAL_CUDA=1) the same tests run on CuPy arrays and carry the ``gpu`` marker, and
the ``gpu`` tests at the bottom add realistic sizes and the tiled GEMM against cuBLAS.
"""
import os
import subprocess
import sys

import numpy as np
import pytest

pytest.importorskip("numba", reason="the numba-cuda backend needs numba and numba-cuda (pip install scratchgen[cuda])")
from numba.cuda import config as cuda_config  # noqa: E402

from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from scratchgen import backend  # noqa: E402
from scratchgen.kernels import testing  # noqa: E402

SIMULATED = bool(cuda_config.ENABLE_CUDASIM)
AVAILABLE, WHY = backend.backend_status("numba-cuda")
pytestmark = [
    pytest.mark.skipif(not AVAILABLE, reason=f"numba-cuda backend unavailable: {WHY}"),
    # The simulator's own decorators pass numba an option it deprecates; not ours to fix.
    pytest.mark.filterwarnings("ignore:The keyword argument 'nopython=False' was supplied"),
]
if not SIMULATED:
    pytestmark.append(pytest.mark.gpu)

KERNELS = sorted(name for name, impls in backend.registered_kernels().items() if "numba-cuda" in impls and name not in testing.POLICIES)


def to_device(array):
    if SIMULATED:
        return array
    import cupy

    return cupy.asarray(array)


def test_every_numba_cuda_kernel_has_a_parity_case():
    assert KERNELS, "the numba-cuda backend registered no kernels"
    assert set(KERNELS) <= set(testing.CASES), sorted(set(KERNELS) - set(testing.CASES))


@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["float64", "float32"])
@pytest.mark.parametrize("name", KERNELS)
@settings(max_examples=4, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data(), seed=st.integers(0, 2**32 - 1))
def test_numba_cuda_kernel_matches_numpy(name, dtype, data, seed):
    dtype = np.dtype(dtype)
    args = testing.CASES[name](np.random.default_rng(seed), dtype, lambda lo, hi: data.draw(st.integers(lo, hi)))
    testing.run_parity(name, backend.implementation(name, "numba-cuda"), backend.implementation(name, "numpy"),
                       args, dtype, to_backend=to_device)


# the extreme inputs overflow W * W on purpose (the NumPy reference warns; the result must still be 0)
@pytest.mark.filterwarnings("ignore:overflow encountered:RuntimeWarning")
@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["float64", "float32"])
@pytest.mark.parametrize("name", sorted(set(testing.extreme_cases(np.float64)) & set(KERNELS)))
def test_numba_cuda_kernels_give_0_not_nan_for_zero_times_an_overflowing_exp(name, dtype):
    testing.check_extreme(name, backend.implementation(name, "numba-cuda"), backend.implementation(name, "numpy"),
                          dtype, to_backend=to_device)


@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["float64", "float32"])
@pytest.mark.parametrize("shape", [(1, 1, 1), (5, 7, 3), (19, 9, 11), (130, 17, 133)])  # the last: 2 x 2 blocks, 3 k-tiles
def test_tiled_and_naive_gemm_match_numpy(shape, dtype):
    from scratchgen.kernels.numba_cuda import gemm

    m, k, n = shape
    rng = np.random.default_rng(m * 100 + n)
    a, b = rng.standard_normal((m, k)).astype(dtype), rng.standard_normal((k, n)).astype(dtype)
    # The naive kernel launches a thread per output: the simulator affords that only on small shapes.
    for matmul in (gemm.matmul_tiled,) + ((gemm.matmul_naive,) if m * n <= 400 or not SIMULATED else ()):
        got = matmul(to_device(a), to_device(b))
        error = testing.relative_error(got, a @ b)
        assert error < testing.RTOL[np.dtype(dtype)], (matmul.__name__, error)


def test_gemm_rejects_misaligned_shapes():
    from scratchgen.kernels.numba_cuda import gemm

    with pytest.raises(ValueError, match="do not align"):
        gemm.matmul_tiled(to_device(np.ones((2, 3))), to_device(np.ones((4, 2))))


@pytest.mark.gpu
@pytest.mark.skipif(SIMULATED, reason="creating xoroshiro128p states takes seconds in the simulator (each state "
                                      "is a jump-ahead in Python): real GPU only")
def test_gibbs_step_with_xoroshiro_states():
    from scratchgen.kernels.numba_cuda import rbm

    rng = np.random.default_rng(2)
    v = (rng.random((6, 5)) < 0.5).astype(np.float64)
    weight, b, c = rng.standard_normal((5, 3)), rng.standard_normal(5), rng.standard_normal(3)
    states = rbm.make_rng_states(seed=7)
    h_prob, h_sample, v_prob, v_sample = rbm.rbm_gibbs_step_rng(to_device(v), to_device(weight), to_device(b),
                                                                 to_device(c), states)
    np.testing.assert_allclose(testing.to_numpy(h_prob), 1 / (1 + np.exp(-(v @ weight + c))), rtol=1e-12)
    for sample in (h_sample, v_sample):
        assert set(np.unique(testing.to_numpy(sample))) <= {0.0, 1.0}


def test_host_arrays_are_refused_on_a_real_gpu(monkeypatch):
    """On a GPU, a NumPy array would be copied to the device and back on every launch: refused."""
    from scratchgen.kernels.numba_cuda import _launch

    monkeypatch.setattr(_launch, "SIMULATED", False)
    monkeypatch.setattr(_launch, "PTX_CHECK", False)
    with pytest.raises(TypeError, match="GPU arrays"):
        backend.implementation("sigmoid_forward", "numba-cuda")(np.ones(3))


@pytest.mark.slow
def test_every_cuda_kernel_compiles_to_ptx():
    """The real compiler (NVVM + NVRTC, no GPU needed) accepts every kernel at every parity case's types."""
    result = subprocess.run([sys.executable, "-m", "scratchgen.kernels.ptxcheck", "--arch", "sm_90"], capture_output=True,
                            text=True, timeout=600, cwd=os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    if result.returncode == 2:
        pytest.skip(f"CUDA compiler libraries not found: {result.stderr.strip()[:300]}")
    assert result.returncode == 0, result.stdout + result.stderr


# ---- real GPU only ---------------------------------------------------------------------------------
def _gpu_reason():
    if SIMULATED:
        return "no real GPU: running in Numba's CUDA simulator (set SCRATCHGEN_REAL_CUDA=1 on a GPU machine)"
    from scratchgen.device import _cuda_problem

    return _cuda_problem()


@pytest.mark.gpu
@pytest.mark.skipif(_gpu_reason() is not None, reason=str(_gpu_reason()))
@pytest.mark.parametrize("name", KERNELS)
def test_numba_cuda_on_gpu_at_model_sizes(name):
    """Larger inputs than the simulator can afford (the parity builders with dims scaled up)."""
    rng = np.random.default_rng(0)
    for dtype in (np.dtype(np.float64), np.dtype(np.float32)):
        args = testing.CASES[name](rng, dtype, lambda lo, hi: testing.scaled_dim(rng, lo, hi, 8))
        testing.run_parity(name, backend.implementation(name, "numba-cuda"), backend.implementation(name, "numpy"),
                           args, dtype, to_backend=to_device)


@pytest.mark.gpu
@pytest.mark.skipif(_gpu_reason() is not None, reason=str(_gpu_reason()))
def test_tiled_gemm_matches_cublas_at_1024():
    import cupy

    from scratchgen.kernels.numba_cuda import gemm

    a = cupy.random.standard_normal((1024, 1000), dtype=cupy.float32)
    b = cupy.random.standard_normal((1000, 1030), dtype=cupy.float32)
    assert testing.relative_error(gemm.matmul_tiled(a, b), a @ b) < 1e-4
