"""The thread policy of training (scratchgen/threads.py): the user's settings win; else one thread
per pool on small machines; limits hold inside the loop only; ``scratchgen info`` says what is in force."""
import numpy as np
import pytest

from scratchgen import threads


@pytest.fixture
def no_user_settings(monkeypatch):
    for name in threads.VARIABLES:
        monkeypatch.delenv(name, raising=False)


def test_the_users_variables_are_left_alone(monkeypatch, no_user_settings):
    monkeypatch.setenv("OPENBLAS_NUM_THREADS", "2")
    assert threads.user_settings() == {"OPENBLAS_NUM_THREADS": "2"}
    assert threads.training_thread_count() is None


@pytest.mark.parametrize("cores, expected", [(1, 1), (2, 1), (4, 4), (16, 16)])
def test_default_is_one_thread_on_small_machines(monkeypatch, no_user_settings, cores, expected):
    monkeypatch.setattr(threads, "usable_cores", lambda: cores)
    assert threads.training_thread_count() == expected


def test_scratchgen_num_threads_chooses_for_both_pools(monkeypatch, no_user_settings):
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    monkeypatch.setenv("SCRATCHGEN_NUM_THREADS", "3")
    assert threads.training_thread_count() == 3
    monkeypatch.setenv("SCRATCHGEN_NUM_THREADS", "zero")
    with pytest.raises(ValueError, match="SCRATCHGEN_NUM_THREADS='zero': expected a positive integer"):
        threads.training_thread_count()


def test_limits_hold_inside_training_only(monkeypatch, no_user_settings):
    threadpoolctl = pytest.importorskip("threadpoolctl")
    numba = pytest.importorskip("numba")
    import scratchgen

    scratchgen.set_backend("numba")
    scratchgen.set_backend("numpy")
    monkeypatch.setattr(threads, "usable_cores", lambda: 2)

    def blas_threads():
        return [p["num_threads"] for p in threadpoolctl.threadpool_info() if p["user_api"] == "blas"]

    before_blas, before_numba = blas_threads(), numba.get_num_threads()
    with threads.training_threads() as count:
        assert count == 1
        assert set(blas_threads()) == {1} and numba.get_num_threads() == 1
    assert blas_threads() == before_blas and numba.get_num_threads() == before_numba


@pytest.mark.parametrize("cores, blas, numba_count", [(2, 2, 1), (4, 2, 2)])
def test_numba_stays_serial_beside_threaded_blas_on_small_machines(monkeypatch, no_user_settings, cores, blas,
                                                                   numba_count):
    threadpoolctl = pytest.importorskip("threadpoolctl")
    numba = pytest.importorskip("numba")
    import scratchgen

    scratchgen.set_backend("numba")  # loads the Numba kernels: the policy resizes Numba only once they are in use
    scratchgen.set_backend("numpy")
    # The suite starts Numba with one thread; record what the policy asks of it instead.
    asked = [numba.get_num_threads()]
    monkeypatch.setattr(numba.config, "NUMBA_NUM_THREADS", 8)
    monkeypatch.setattr(numba, "set_num_threads", asked.append)
    monkeypatch.setattr(numba, "get_num_threads", lambda: asked[-1])
    monkeypatch.setattr(threads, "usable_cores", lambda: cores)
    monkeypatch.setenv("SCRATCHGEN_NUM_THREADS", str(blas))
    with threads.training_threads() as count:
        assert count == blas
        assert {p["num_threads"] for p in threadpoolctl.threadpool_info() if p["user_api"] == "blas"} == {blas}
        assert numba.get_num_threads() == numba_count
    assert asked[-1] == asked[0]  # restored
    expected = "in each pool" if numba_count == blas else f"BLAS {blas} thread(s), Numba 1"
    assert expected in "\n".join(threads.describe())


def test_fit_runs_under_the_policy(monkeypatch, no_user_settings):
    from scratchgen.models.autoencoders.autoencoder import Autoencoder

    seen = []
    real = threads.training_thread_count
    monkeypatch.setattr(threads, "training_thread_count", lambda: seen.append(real()) or seen[-1])
    model = Autoencoder((1, 2, 2), hidden=2, rng=0)
    model.fit(np.random.default_rng(0).random((8, 1, 2, 2)).astype(np.float32), epochs=1, batch_size=4)
    assert seen and seen[0] == threads.default_threads()


def test_info_says_what_is_in_force(monkeypatch, no_user_settings):
    from scratchgen import info

    monkeypatch.delenv("OMP_WAIT_POLICY", raising=False)
    text = "\n".join(info.thread_settings())
    assert "set by you: none" in text and "thread(s) in each pool by default" in text
    assert "OMP_WAIT_POLICY" in text
    monkeypatch.setenv("NUMBA_NUM_THREADS", "1")
    assert "NUMBA_NUM_THREADS=1" in "\n".join(info.thread_settings())
