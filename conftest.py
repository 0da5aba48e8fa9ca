"""Root conftest: runs before anything imports numba.

Without a GPU the Numba CUDA kernels run in Numba's CUDA simulator, which must be switched on
*before* numba is first imported (a pytest warning filter naming a numba class would import it
too early, so filters match message text only). On a machine with a GPU, set
SCRATCHGEN_REAL_CUDA=1 (or NUMBA_ENABLE_CUDASIM=0) to test the real device.
"""
import os
import shutil

if "NUMBA_ENABLE_CUDASIM" not in os.environ and not os.environ.get("SCRATCHGEN_REAL_CUDA"):
    if shutil.which("nvidia-smi") is None:
        os.environ["NUMBA_ENABLE_CUDASIM"] = "1"

# One thread each: 2-vCPU CI machines oversubscribe badly, and results must not depend on it.
for variable in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMBA_NUM_THREADS"):
    os.environ.setdefault(variable, "1")


import pytest  # noqa: E402


def _skipping_missing_packages():
    """A test (or its fixture) that needs an optional package this machine lacks (matplotlib,
    scikit-learn, ...) is skipped with the package's name: scratchgen raises ``MissingOptionalPackage``."""
    from scratchgen.optional import MissingOptionalPackage

    try:
        return (yield)
    except MissingOptionalPackage as error:
        pytest.skip(str(error))


pytest_runtest_setup = pytest.hookimpl(wrapper=True)(lambda item: (yield from _skipping_missing_packages()))
pytest_runtest_call = pytest.hookimpl(wrapper=True)(lambda item: (yield from _skipping_missing_packages()))
