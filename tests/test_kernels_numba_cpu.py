"""Every Numba CPU kernel matches its NumPy reference (float64 to 1e-12, float32 to 1e-5).

Shapes are drawn by hypothesis (kernels/testing.py builds the inputs); kernels the backend
keeps on NumPy (``active=False``) are checked too, since the benchmarks still run them.
Numba threads are pinned by the root conftest (NUMBA_NUM_THREADS=1).
"""
import numpy as np
import pytest

numba = pytest.importorskip("numba", reason="the numba backend needs Numba (pip install scratchgen[numba])")

from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

import scratchgen  # noqa: E402
from scratchgen import backend  # noqa: E402
from scratchgen.kernels import testing  # noqa: E402

backend.set_backend("numba")
backend.set_backend("numpy")
from scratchgen.kernels.numba_cpu import _jit  # noqa: E402


@pytest.fixture(autouse=True)
def run_the_loops_even_on_tiny_inputs(monkeypatch):
    """Elementwise kernels hand inputs below SMALL_INPUT elements to NumPy; the tests want the loops."""
    monkeypatch.setattr(_jit, "SMALL_INPUT", 0)

NUMBA_KERNELS = sorted(
    ({n for n, b in backend.registered_kernels().items() if "numba" in b}
     | {n for n, b in backend.shelved_kernels().items() if "numba" in b}) - set(testing.POLICIES)
)


def test_every_numba_kernel_has_a_parity_case():
    assert NUMBA_KERNELS, "the numba backend registered no kernels"
    missing = set(NUMBA_KERNELS) - set(testing.CASES)
    assert not missing, f"no parity case for {sorted(missing)}"


@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["float64", "float32"])
@pytest.mark.parametrize("name", NUMBA_KERNELS)
@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data(), seed=st.integers(0, 2**32 - 1))
def test_numba_kernel_matches_numpy(name, dtype, data, seed):
    dtype = np.dtype(dtype)
    rng = np.random.default_rng(seed)
    args = testing.CASES[name](rng, dtype, lambda lo, hi: data.draw(st.integers(lo, hi)))
    testing.run_parity(name, backend.implementation(name, "numba"), backend.implementation(name, "numpy"), args, dtype)


@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["float64", "float32"])
@pytest.mark.parametrize("name", NUMBA_KERNELS)
def test_numba_kernel_parallel_version_matches_numpy(name, dtype, monkeypatch):
    """The *parallel* version of every prange loop (what runs on large inputs when Numba has more
    than one thread) against the reference. The test above reaches only the serial versions (tests
    pin one thread; small inputs), and a parallel one can differ: Adam's lost every parameter write
    (kernels/numba_cpu/optim.py says how). The parfor code runs even on the one pinned thread."""
    monkeypatch.setattr(_jit, "PARALLEL_MIN", 0)
    monkeypatch.setattr(_jit.numba, "get_num_threads", lambda: 2)
    dtype = np.dtype(dtype)
    rng = np.random.default_rng(1)
    args = testing.CASES[name](rng, dtype, lambda lo, hi: min(hi, lo + 5))
    testing.run_parity(name, backend.implementation(name, "numba"), backend.implementation(name, "numpy"), args, dtype)


def test_numba_elementwise_kernels_accept_views_and_broadcasts():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((6, 8))[:, ::2].T  # a strided, transposed view
    target = rng.random(6)  # broadcast along the rows
    got = backend.implementation("sigmoid_bce_with_logits_forward", "numba")(x, target)
    expected = backend.implementation("sigmoid_bce_with_logits_forward", "numpy")(x, target)
    assert got.shape == expected.shape == (4, 6)
    assert testing.relative_error(got, expected) < 1e-12


def test_small_parallel_loops_run_on_one_thread(monkeypatch):
    """Below PARALLEL_MIN elements a prange loop runs its serial version and never touches the pool."""
    calls = []
    monkeypatch.setattr(_jit.numba, "get_num_threads", lambda: 2)
    monkeypatch.setattr(_jit.numba, "set_num_threads", calls.append)
    from scratchgen.kernels.numba_cpu import activations

    x = np.linspace(-2, 2, 1000)
    out = backend.implementation("sigmoid_forward", "numba")(x)
    np.testing.assert_allclose(out, 1 / (1 + np.exp(-x)), rtol=1e-14)
    assert calls == []
    assert activations._sigmoid_forward._serial is not None  # the serial version ran


def test_large_loops_use_the_parallel_version(monkeypatch):
    from scratchgen.kernels.numba_cpu import activations

    loop = activations._relu_forward
    monkeypatch.setattr(_jit, "PARALLEL_MIN", 10)
    monkeypatch.setattr(_jit.numba, "get_num_threads", lambda: 2)
    used = []
    monkeypatch.setattr(type(loop), "dispatcher", property(lambda self: used.append(1) or self.serial))
    x = np.linspace(-2, 2, 100)
    out = np.empty_like(x)
    loop(x, out)
    assert used == [1] and np.array_equal(out, np.maximum(x, 0))


def test_small_inputs_go_to_the_reference(monkeypatch):
    monkeypatch.setattr(_jit, "SMALL_INPUT", 100)
    assert _jit.flat_elementwise(np.ones(99)) is None
    assert _jit.flat_elementwise(np.ones(100)) is not None


def test_numba_kernels_hand_other_inputs_to_the_reference():
    """Integer or mixed-dtype inputs get the reference's exact NumPy semantics."""
    x = np.arange(-3, 4)
    got = backend.implementation("relu_forward", "numba")(x)
    assert got.dtype == x.dtype and np.array_equal(got, np.maximum(x, 0))


def test_numba_transcendentals_keep_nan_inf_and_extremes():
    x = np.array([np.nan, np.inf, -np.inf, 0.0, -0.0, 1e-300, 40.0, -40.0, 745.0, -745.0, 1e4, -1e4])
    for name in ("sigmoid_forward", "softplus_forward", "tanh_forward"):
        with np.errstate(all="ignore"):
            got = backend.implementation(name, "numba")(x)
            expected = backend.implementation(name, "numpy")(x)
        np.testing.assert_allclose(got, expected, rtol=1e-14, atol=0, err_msg=name)
    z = np.array([1e4, -1e4, 0.0, 30.0]); target = np.array([1.0, 0.0, 0.5, 1.0])
    got = backend.implementation("sigmoid_bce_with_logits_forward", "numba")(z, target)
    np.testing.assert_allclose(got, backend.implementation("sigmoid_bce_with_logits_forward", "numpy")(z, target), rtol=1e-14)
    logvar = np.array([-1e-10, 1e-10, -80.0, 30.0, 0.0])
    got = backend.implementation("gaussian_kl_standard_forward", "numba")(np.zeros(5), logvar)
    np.testing.assert_allclose(got, backend.implementation("gaussian_kl_standard_forward", "numpy")(np.zeros(5), logvar), rtol=1e-13)


# the extreme inputs overflow W * W on purpose (the NumPy reference warns; the result must still be 0)
@pytest.mark.filterwarnings("ignore:overflow encountered:RuntimeWarning")
@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["float64", "float32"])
@pytest.mark.parametrize("name", sorted(testing.extreme_cases(np.float64)))
def test_numba_kernels_give_0_not_nan_for_zero_times_an_overflowing_exp(name, dtype):
    testing.check_extreme(name, backend.implementation(name, "numba"), backend.implementation(name, "numpy"), dtype)


def test_numba_gibbs_step_with_its_own_generator_is_a_valid_sample():
    from scratchgen.kernels.numba_cpu import rbm

    rng = np.random.default_rng(1)
    v = (rng.random((64, 12)) < 0.5).astype(np.float64)
    weight, b, c = rng.standard_normal((12, 5)), rng.standard_normal(12), rng.standard_normal(5)
    rbm.seed_rng(3)
    h_prob, h_sample, v_prob, v_sample = rbm.rbm_gibbs_step_rng(v, weight, b, c)
    np.testing.assert_allclose(h_prob, 1 / (1 + np.exp(-(v @ weight + c))), rtol=1e-13)
    assert set(np.unique(h_sample)) <= {0.0, 1.0} and set(np.unique(v_sample)) <= {0.0, 1.0}
    # The draws follow the probabilities: the sample mean is within 5 standard errors.
    se = np.sqrt((h_prob * (1 - h_prob)).sum()) + 1e-12
    assert abs(h_sample.sum() - h_prob.sum()) < 5 * se
