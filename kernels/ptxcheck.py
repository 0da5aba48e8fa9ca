"""Compile every Numba CUDA kernel to PTX without a GPU: ``python -m scratchgen.kernels.ptxcheck [--arch sm_90]``.

The CUDA simulator runs kernels as plain Python, so it cannot catch what only the real
compiler rejects (a type that does not unify, an unsupported call, a local array that cannot
be sized). This check runs every parity case of ``scratchgen.kernels.testing`` (and the GEMMs) through
the numba-cuda wrappers with ``SCRATCHGEN_CUDA_PTX_CHECK`` set: each launch compiles its
kernel for the argument types it got (NVVM + NVRTC, no driver needed) instead of running it.

Not covered: the on-device-RNG Gibbs step (numba-cuda compiles its xoroshiro128p helpers only
with a driver present). Needs libnvvm (numba-cuda finds the CUDA toolkit's) and libnvrtc (``pip install
nvidia-cuda-nvrtc``). Exit status 0 when everything compiled; 2 when the compiler libraries are
missing (the check could not run); 1 on a compile failure.
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys


def _check(arch: str) -> int:
    import numpy as np

    from scratchgen import backend
    from scratchgen.kernels import testing
    from scratchgen.kernels.numba_cuda import _launch, gemm

    backend.set_backend("numba-cuda")
    rng = np.random.default_rng(0)
    failures = 0
    for dtype in (np.dtype(np.float32), np.dtype(np.float64)):
        for name, build in testing.CASES.items():
            if "numba-cuda" not in backend.registered_kernels().get(name, {}):
                continue
            for _ in range(2):  # a second draw reaches other branches (bias or not, training or not)
                args = build(rng, dtype, lambda lo, hi: int(rng.integers(lo, hi + 1)))
                try:
                    with np.errstate(all="ignore"):  # outputs are uninitialised memory
                        backend.implementation(name, "numba-cuda")(*args)
                except Exception as error:  # report every failure, not only the first
                    failures += 1
                    print(f"FAILED {name} {dtype}: {type(error).__name__}: {error}", file=sys.stderr)
                    break
        for matmul in (gemm.matmul_tiled, gemm.matmul_naive):
            try:
                matmul(np.ones((5, 7), dtype), np.ones((7, 3), dtype))
            except Exception as error:
                failures += 1
                print(f"FAILED {matmul.__name__} {dtype}: {type(error).__name__}: {error}", file=sys.stderr)
    failures += _check_gemm_code(_launch.COMPILED_PTX)
    print(f"ptxcheck {arch}: {len(_launch.COMPILED_PTX)} kernel versions compiled, {failures} failed")
    return 1 if failures else 0


def _check_gemm_code(compiled) -> int:
    """The tiled GEMM's speed rests on two things the compiler may silently drop: 128-bit shared-memory
    loads (``ld.shared.v4.f32``; scalar loads would cap it near half the FP32 peak) and an
    accumulator in registers (no ``.local`` memory). Returns the number of failures (printed)."""
    failures = 0
    for (name, types), ptx in compiled.items():
        if name != "matmul_tiled_kernel" or "float32" not in str(types[0]):
            continue
        if "ld.shared.v4.f32" not in ptx:
            failures += 1
            print("FAILED matmul_tiled float32: no ld.shared.v4.f32 in its PTX (the fragments are read "
                  "one word at a time)", file=sys.stderr)
        if ".local" in ptx:
            failures += 1
            print("FAILED matmul_tiled float32: its PTX uses local memory (the accumulator left the registers)",
                  file=sys.stderr)
    return failures


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--arch", default="sm_90", help="target architecture, e.g. sm_80, sm_90 (default)")
    args = parser.parse_args(argv)
    if os.environ.get("SCRATCHGEN_CUDA_PTX_CHECK") != args.arch or os.environ.get("NUMBA_ENABLE_CUDASIM") != "0":
        # numba reads NUMBA_ENABLE_CUDASIM when first imported: start afresh with the right environment.
        env = dict(os.environ, SCRATCHGEN_CUDA_PTX_CHECK=args.arch, NUMBA_ENABLE_CUDASIM="0")
        return subprocess.call([sys.executable, "-m", "scratchgen.kernels.ptxcheck", "--arch", args.arch], env=env)
    try:
        from cuda.pathfinder import load_nvidia_dynamic_lib

        load_nvidia_dynamic_lib("nvrtc")
        load_nvidia_dynamic_lib("nvvm")
    except Exception as error:
        print(f"ptxcheck: cannot compile without the CUDA compiler libraries ({type(error).__name__}: "
              f"{' '.join(str(error).split())[:300]}); `pip install nvidia-cuda-nvrtc` provides libnvrtc", file=sys.stderr)
        return 2
    return _check(args.arch)


if __name__ == "__main__":
    sys.exit(main())
