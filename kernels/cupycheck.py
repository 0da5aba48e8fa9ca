"""Compile every CuPy kernel's CUDA C++ with NVRTC, without a GPU: ``python -m scratchgen.kernels.cupycheck``.

The CuPy backend's kernels are CUDA C++ strings that CuPy compiles only when they first run
on a GPU, so on a machine without one a typo in a kernel body stays hidden. This check
compiles, for float and double, with NVRTC for ``--arch`` (default sm_90; NVRTC needs no
driver):

* every ``Kernel``'s unrolled fast path, exactly the source ``_elementwise.unrolled_source`` gives CuPy;
* every ``Kernel`` body inside a stand-in for CuPy's ElementwiseKernel wrapper (one element
  per thread, ``raw`` parameters as pointers, ``i`` the element's index): it catches what a
  body can get wrong (names, overloads, casts), not CuPy's own generated code;
* every RawModule (fused Adam/SGD, layer norm, masked softmax) with its name expressions.

Needs CuPy importable (``import cupy`` works without a GPU) and libnvrtc (``pip install
nvidia-cuda-nvrtc``). Exit status 0 when everything compiled, 2 when NVRTC or CuPy is missing
(the check could not run), 1 on a compile error (printed with NVRTC's log).
"""
from __future__ import annotations

import argparse
import ctypes
import sys
from typing import List, Optional, Sequence


class Nvrtc:
    """The few NVRTC calls a compile needs, through ctypes."""

    def __init__(self):
        from cuda.pathfinder import load_nvidia_dynamic_lib

        self.lib = ctypes.CDLL(load_nvidia_dynamic_lib("nvrtc").abs_path)

    def compile(self, source: str, name: str, options: Sequence[str], name_expressions: Sequence[str] = ()) -> Optional[str]:
        """None if ``source`` compiles, else NVRTC's log."""
        lib = self.lib
        program = ctypes.c_void_p()
        status = lib.nvrtcCreateProgram(ctypes.byref(program), source.encode(), f"{name}.cu".encode(), 0, None, None)
        if status:
            return f"nvrtcCreateProgram failed with status {status}"
        try:
            for expression in name_expressions:
                lib.nvrtcAddNameExpression(program, expression.encode())
            encoded = [o.encode() for o in options]
            array = (ctypes.c_char_p * len(encoded))(*encoded)
            status = lib.nvrtcCompileProgram(program, len(encoded), array)
            if status == 0:
                return None
            size = ctypes.c_size_t()
            lib.nvrtcGetProgramLogSize(program, ctypes.byref(size))
            log = ctypes.create_string_buffer(size.value)
            lib.nvrtcGetProgramLog(program, log)
            return log.value.decode(errors="replace")
        finally:
            lib.nvrtcDestroyProgram(ctypes.byref(program))


def elementwise_stand_in(kernel, c_type: str) -> str:
    """A kernel with an ElementwiseKernel's view of ``kernel.body``: inputs as const values (``raw``:
    pointers), outputs as variables stored after the body, ``i`` the element index."""
    c_types = {"T": c_type, "U": c_type, "int64": "long long", "int32": "int"}
    params, setup = [], []
    for kind, arg, raw in kernel.inputs:
        ctype = c_types[kind]
        if raw:
            params.append(f"const {ctype}* {arg}")
        else:
            params.append(f"const {ctype}* _in_{arg}")
            setup.append(f"const {ctype} {arg} = _in_{arg}[i];")
    for kind, arg, _ in kernel.outputs:
        params.append(f"{c_types[kind]}* _out_{arg}")
        setup.append(f"{c_types[kind]} {arg};")
    store = " ".join(f"_out_{arg}[i] = {arg};" for _, arg, _ in kernel.outputs)
    return (f"typedef {c_type} T;\ntypedef {c_type} U;\n"
            f'extern "C" __global__ void {kernel.name}({", ".join(params)}, long long _n) {{\n'
            f"  for (long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x; i < _n; "
            f"i += (long long)gridDim.x * blockDim.x) {{\n    {' '.join(setup)}\n    {{ {kernel.body} }}\n    {store}\n  }}\n}}\n")


def _check(arch: str) -> int:
    from scratchgen.kernels.cupy_backend import _elementwise, attention, normalization, optim

    nvrtc = Nvrtc()
    options = [f"--gpu-architecture=compute_{arch.replace('sm_', '')}", "-std=c++14"]
    failures: List[str] = []
    compiled = 0

    def attempt(label, source, name, expressions=()):
        nonlocal compiled
        log = nvrtc.compile(source, name, options, expressions)
        if log is None:
            compiled += 1
        else:
            failures.append(label)
            print(f"FAILED {label}:\n{log}\n--- source ---\n{source}", file=sys.stderr)

    for kernel in _elementwise.KERNELS:
        for c_type in ("float", "double"):
            attempt(f"{kernel.name} (ElementwiseKernel body, {c_type})", elementwise_stand_in(kernel, c_type), kernel.name)
            if kernel.unrollable:
                kinds = {kind for kind, _, _ in kernel.inputs + kernel.outputs}
                source = _elementwise.unrolled_source(kernel.name, kernel.inputs, kernel.outputs, kernel.body,
                                                      {kind: c_type for kind in kinds}, [False] * len(kernel.inputs))
                attempt(f"{kernel.name} (unrolled, {c_type})", source, kernel.name)
    for module in (optim, normalization, attention):
        attempt(f"{module.__name__} RawModule", module._SOURCE, module.__name__.rsplit(".", 1)[-1], module._NAMES)
    print(f"cupycheck {arch}: {compiled} CUDA C++ programs compiled, {len(failures)} failed")
    return 1 if failures else 0


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--arch", default="sm_90", help="target architecture, e.g. sm_80, sm_90 (default)")
    args = parser.parse_args(argv)
    try:
        import cupy  # noqa: F401  (imports without a GPU; the kernels module needs it to build its Kernels)
    except ImportError as error:
        print(f"cupycheck: CuPy is not installed ({error}); `pip install cupy-cuda13x` (no GPU needed to import it)",
              file=sys.stderr)
        return 2
    try:
        Nvrtc()
    except Exception as error:
        print(f"cupycheck: cannot compile without libnvrtc ({type(error).__name__}: {' '.join(str(error).split())[:300]}); "
              f"`pip install nvidia-cuda-nvrtc` provides it", file=sys.stderr)
        return 2
    return _check(args.arch)


if __name__ == "__main__":
    sys.exit(main())
