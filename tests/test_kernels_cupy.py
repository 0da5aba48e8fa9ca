"""CuPy kernels against the NumPy reference, on a real GPU (``gpu`` marker).

Skipped, with the reason, when CuPy is not installed or cannot reach a GPU (``import cupy``
succeeds without one; the backend asks for a device explicitly).
"""
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from scratchgen import backend
from scratchgen.kernels import testing

AVAILABLE, WHY = backend.backend_status("cupy")
pytestmark = [pytest.mark.gpu, pytest.mark.skipif(not AVAILABLE, reason=f"cupy backend unavailable: {WHY}")]

KERNELS = sorted(name for name, impls in backend.registered_kernels().items() if "cupy" in impls and name not in testing.POLICIES)


def to_device(array):
    import cupy

    return cupy.asarray(array)


def test_every_cupy_kernel_has_a_parity_case():
    assert KERNELS and set(KERNELS) <= set(testing.CASES)


@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["float64", "float32"])
@pytest.mark.parametrize("name", KERNELS)
@settings(max_examples=10, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data(), seed=st.integers(0, 2**32 - 1))
def test_cupy_kernel_matches_numpy(name, dtype, data, seed):
    dtype = np.dtype(dtype)
    args = testing.CASES[name](np.random.default_rng(seed), dtype,
                               lambda lo, hi: data.draw(st.integers(lo, hi if hi <= testing.GEOMETRY_MAX else 4 * hi)))
    testing.run_parity(name, backend.implementation(name, "cupy"), backend.implementation(name, "numpy"),
                       args, dtype, to_backend=to_device)


@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["float64", "float32"])
@pytest.mark.parametrize("name", sorted(set(testing.extreme_cases(np.float64)) & set(KERNELS)))
def test_cupy_kernels_give_0_not_nan_for_zero_times_an_overflowing_exp(name, dtype):
    testing.check_extreme(name, backend.implementation(name, "cupy"), backend.implementation(name, "numpy"),
                          dtype, to_backend=to_device)


def test_fused_adam_is_one_launch_and_caches_its_pointer_tables():
    import cupy

    from scratchgen.kernels.cupy_backend import optim

    rng = np.random.default_rng(0)
    params = [cupy.asarray(rng.standard_normal(s).astype(np.float32)) for s in [(30, 20), (20,), (5, 30), (5,)]]
    grads = [cupy.asarray(rng.standard_normal(p.shape).astype(np.float32)) for p in params]
    m = [cupy.zeros_like(p) for p in params]
    v = [cupy.zeros_like(p) for p in params]
    host = [p.get() for p in params]
    host_m, host_v = [np.zeros_like(p) for p in host], [np.zeros_like(p) for p in host]
    for step in (1, 2):
        optim.adam_update(params, grads, m, v, step, 1e-2, 0.9, 0.999, 1e-8, 0.0)
        backend.implementation("adam_update", "numpy")(host, [g.get() for g in grads], host_m, host_v, step,
                                                       1e-2, 0.9, 0.999, 1e-8, 0.0)
    assert len(optim._TABLES) == 1  # the second step reused the first step's tables
    for p, h in zip(params, host):
        assert testing.relative_error(p, h) < 1e-5


def test_gibbs_step_with_cupy_random():
    import cupy

    from scratchgen.kernels.cupy_backend import rbm

    rng = np.random.default_rng(1)
    v = cupy.asarray((rng.random((64, 12)) < 0.5).astype(np.float32))
    weight = cupy.asarray(rng.standard_normal((12, 5)).astype(np.float32))
    b, c = cupy.zeros(12, np.float32), cupy.zeros(5, np.float32)
    h_prob, h_sample, v_prob, v_sample = rbm.rbm_gibbs_step_rng(v, weight, b, c, cupy.random.default_rng(3))
    assert set(np.unique(h_sample.get())) <= {0.0, 1.0}
    assert testing.relative_error(h_prob, 1 / (1 + np.exp(-(v.get() @ weight.get())))) < 1e-5
