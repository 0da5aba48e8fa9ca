"""Install scratchgen. NumPy is the only hard dependency; everything else is an extra."""
from setuptools import find_packages, setup

EXTRAS = {
    "numba": ["numba>=0.61,<0.69"],
    "cuda": ["numba>=0.61,<0.69", "numba-cuda>=0.30,<0.31", "cupy-cuda13x>=14.2,<14.3"],
    "plot": ["matplotlib>=3.7", "pillow>=10"],
    "data": ["scikit-learn>=1.3"],
    "cli": ["tqdm>=4.60"],
    "bench": ["psutil>=5"],
}
# What the test suite needs on a machine without a GPU: the Numba CUDA kernels run in the
# CUDA simulator, so numba-cuda is in; CuPy is not (its tests need a real GPU).
EXTRAS["test"] = sorted(
    {"pytest>=7", "hypothesis>=6", "numba-cuda>=0.30,<0.31"}
    | set(EXTRAS["numba"]) | set(EXTRAS["plot"]) | set(EXTRAS["data"]) | set(EXTRAS["cli"])
)
PACKAGES = find_packages(include=["scratchgen", "scratchgen.*"]) + [
    "scratchgen." + package for package in find_packages(include=["kernels", "kernels.*"])
]
EXTRAS["all"] = sorted({req for reqs in EXTRAS.values() for req in reqs})

setup(
    name="scratchgen",
    version="0.1.0",
    description="Deep generative models from scratch in NumPy, with hand-written backward passes and swappable NumPy/Numba/CUDA/CuPy kernels",
    long_description=open("README.md", encoding="utf-8").read(),
    long_description_content_type="text/markdown",
    license="MIT",
    python_requires=">=3.10",
    # kernels/ sits beside scratchgen/ in the repository and installs as scratchgen.kernels;
    # benchmarks/ is not installed (it runs from a checkout).
    packages=PACKAGES,
    package_dir={"scratchgen.kernels": "kernels"},
    install_requires=["numpy>=2.0,<2.6"],
    extras_require=EXTRAS,
    entry_points={"console_scripts": ["scratchgen=scratchgen.cli:run"]},
)
