"""What a wheel ships: the kernels/ package and its backend subpackages, not only the editable tree."""
import os

from setuptools import find_packages

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_every_kernel_subpackage_is_found_by_setup():
    setup_text = open(os.path.join(ROOT, "setup.py")).read()
    assert '"kernels", "kernels.*"' in setup_text
    found = set(find_packages(where=ROOT, include=["scratchgen", "scratchgen.*", "kernels", "kernels.*"]))
    for directory, _, files in os.walk(os.path.join(ROOT, "kernels")):
        if "__pycache__" in directory or not any(f.endswith(".py") for f in files):
            continue
        package = os.path.relpath(directory, ROOT).replace(os.sep, ".")
        assert package in found, f"{package} has .py files but no __init__.py: a wheel would leave it out"
    assert {"kernels.numba_cpu", "kernels.numba_cuda", "kernels.cupy_backend", "scratchgen.ops", "scratchgen.models"} <= found
