"""What a wheel ships: scratchgen and its kernels as ``scratchgen.kernels``; no top-level ``kernels``
or ``benchmarks`` package that could collide with another distribution's."""
import os
import subprocess
import sys
import zipfile

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _setup_packages():
    """The ``packages`` and ``package_dir`` that setup.py computes (run in a subprocess, no install)."""
    code = ("import setuptools, json, sys; captured = {}\n"
            "setuptools.setup = lambda **kw: captured.update(kw)\n"
            "sys.argv = ['setup.py']; exec(open('setup.py').read())\n"
            "print(json.dumps([captured['packages'], captured.get('package_dir', {})]))")
    import json

    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def test_every_kernel_subpackage_installs_under_scratchgen_kernels():
    packages, package_dir = _setup_packages()
    assert package_dir == {"scratchgen.kernels": "kernels"}
    assert not any(p == "kernels" or p.startswith(("kernels.", "benchmarks")) for p in packages), packages
    for directory, _, files in os.walk(os.path.join(ROOT, "kernels")):
        if "__pycache__" in directory or not any(f.endswith(".py") for f in files):
            continue
        package = "scratchgen." + os.path.relpath(directory, ROOT).replace(os.sep, ".")
        assert package in packages, f"{package} has .py files but no __init__.py: a wheel would leave it out"
    assert {"scratchgen.kernels.numba_cpu", "scratchgen.kernels.numba_cuda", "scratchgen.kernels.cupy_backend",
            "scratchgen.ops", "scratchgen.models"} <= set(packages)


@pytest.mark.slow
def test_the_wheel_holds_scratchgen_kernels_and_nothing_top_level_but_scratchgen(tmp_path):
    result = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q",
                             "-w", str(tmp_path), ROOT], capture_output=True, text=True)
    if result.returncode != 0:
        pytest.skip(f"could not build a wheel here: {result.stderr.strip()[-300:]}")
    (wheel,) = tmp_path.glob("*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    top = {name.split("/")[0] for name in names if not name.split("/")[0].endswith(".dist-info")}
    assert top == {"scratchgen"}, top
    assert "scratchgen/kernels/numba_cpu/activations.py" in names
