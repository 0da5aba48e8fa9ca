"""Shared plumbing for the CuPy kernels: which arrays they take, compiling kernels once, counting launches.

``cupy.ElementwiseKernel(in_params, out_params, body, name)`` writes the loop, the
broadcasting and the launch for us: ``body`` is the CUDA C++ for *one* element, with ``T``
standing for the arrays' dtype (CuPy compiles one version per dtype, on first use, with
NVRTC, and caches it on disk). ``Kernel`` is that, plus a report of each launch to
``scratchgen.kernels.launches`` (the GPU check counts launches per training step); RawModule
functions launch through ``launch_raw`` for the same reason.
"""
from __future__ import annotations

import functools

import cupy
import numpy as np

from scratchgen.backend import one_float_dtype
from scratchgen.kernels import launches


UNROLL, THREADS, MAX_BLOCKS = 4, 256, 65_535
KERNELS: list = []  # every Kernel made, for ``scratchgen.kernels.cupycheck``


class Kernel:
    """``cupy.ElementwiseKernel(in_params, out_params, body, name)`` whose calls are counted, with a fast path.

    CuPy's elementwise kernels give each thread one element per loop trip. That leaves too few
    bytes in flight for HBM3e (see ``kernels/numba_cuda/_launch.py``: one 4-byte load per thread
    reaches about a third of an H200's 4.8 TB/s). So when every array argument is C-contiguous,
    of one shape, and of the dtype its ``T``/``U`` says (the common case: no broadcasting), the
    same ``body`` runs in a kernel of our own (``unrolled_source``) that gives each thread
    UNROLL = 4 elements, ``blockDim`` apart, and loads all of them before the arithmetic; the
    pointers are ``__restrict__``. Anything else (broadcasting, strides, ``raw`` or ``int64``
    parameters) goes to the ElementwiseKernel. One launch either way.
    """

    def __init__(self, in_params: str, out_params: str, body: str, name: str):
        self.name, self.body = name, body
        self.inputs, self.outputs = _params(in_params), _params(out_params)
        self.elementwise = cupy.ElementwiseKernel(in_params, out_params, body, name)
        self.unrollable = all(kind in ("T", "U") and not raw for kind, _, raw in self.inputs + self.outputs)
        self._compiled = {}
        KERNELS.append(self)

    def __call__(self, *args, **kwargs):
        launches.record("cupy", self.name)
        if self.unrollable and not kwargs and len(args) == len(self.inputs):
            fast = self._fast(args)
            if fast is not None:
                return fast
        return self.elementwise(*args, **kwargs)

    def _fast(self, args):
        """Run the unrolled kernel if the arguments allow it (else None)."""
        types, shape, scalars = {}, None, []
        for (kind, _, _), arg in zip(self.inputs, args):
            if isinstance(arg, cupy.ndarray):
                if not arg.flags.c_contiguous or (shape is not None and arg.shape != shape):
                    return None
                if types.setdefault(kind, arg.dtype) != arg.dtype or arg.dtype.char not in "fd":
                    return None
                shape = arg.shape
                scalars.append(False)
            elif isinstance(arg, (float, int, np.floating, np.integer)):
                scalars.append(True)
            else:
                return None
        if shape is None or any(kind not in types for kind, _, _ in self.outputs):
            return None
        key = (tuple(sorted((k, d.char) for k, d in types.items())), tuple(scalars))
        if key not in self._compiled:
            c_types = {kind: ("float" if dtype.char == "f" else "double") for kind, dtype in types.items()}
            source = unrolled_source(self.name, self.inputs, self.outputs, self.body, c_types, scalars)
            self._compiled[key] = cupy.RawKernel(source, f"{self.name}_unrolled", options=("-std=c++14",))
        outputs = [cupy.empty(shape, types[kind]) for kind, _, _ in self.outputs]
        n = int(np.prod(shape))
        if n:
            values = [types[kind].type(arg) if scalar else arg
                      for (kind, _, _), arg, scalar in zip(self.inputs, args, scalars)]
            blocks = max(1, min(MAX_BLOCKS, -(-n // (THREADS * UNROLL))))
            self._compiled[key]((blocks,), (THREADS,), (*values, *outputs, np.int64(n)))
        return outputs[0] if len(outputs) == 1 else tuple(outputs)


def _params(text: str):
    """``"T x, raw T y, int64 n"`` -> ``[("T", "x", False), ("T", "y", True), ("int64", "n", False)]``."""
    out = []
    for part in (p.strip() for p in text.split(",") if p.strip()):
        words = part.split()
        raw = words[0] == "raw"
        words = words[1:] if raw else words
        out.append((words[0], words[1], raw))
    return out


def unrolled_source(name: str, inputs, outputs, body: str, c_types, scalars) -> str:
    """CUDA C++ running an ElementwiseKernel ``body`` with UNROLL elements per thread, loads first.

    ``inputs``/``outputs``: ``_params`` lists (types "T"/"U" only); ``c_types``: "T" -> "float" or
    "double"; ``scalars``: per input, True when it is passed by value (the same for every element).
    """
    typedefs = "".join(f"typedef {c} {kind};\n" for kind, c in sorted(c_types.items()))
    params = [f"const {kind} _in_{arg}" if scalar else f"const {kind}* __restrict__ _in_{arg}"
              for (kind, arg, _), scalar in zip(inputs, scalars)]
    params += [f"{kind}* __restrict__ _out_{arg}" for kind, arg, _ in outputs]
    arrays = [(kind, arg) for (kind, arg, _), scalar in zip(inputs, scalars) if not scalar]
    loads = "".join(f"{kind} _v_{arg}[{UNROLL}];\n" for kind, arg in arrays)
    load_one = " ".join(f"_v_{arg}[_u] = _in_{arg}[_i];" for _, arg in arrays)
    element = "".join(f"const {kind} {arg} = _v_{arg}[_u]; " if not scalar else f"const {kind} {arg} = _in_{arg}; "
                      for (kind, arg, _), scalar in zip(inputs, scalars))
    element += "".join(f"{kind} {arg}; " for kind, arg, _ in outputs)
    store = " ".join(f"_out_{arg}[_i] = {arg};" for _, arg, _ in outputs)
    return f"""{typedefs}
extern "C" __global__ void {name}_unrolled({", ".join(params)}, const long long _n) {{
    const long long _tile = (long long)blockDim.x * {UNROLL};
    for (long long _start = (long long)blockIdx.x * _tile; _start < _n; _start += (long long)gridDim.x * _tile) {{
        {loads}
        #pragma unroll
        for (int _u = 0; _u < {UNROLL}; ++_u) {{  // every load first: {UNROLL} x {len(arrays)} in flight per thread
            const long long _i = _start + threadIdx.x + (long long)_u * blockDim.x;
            if (_i < _n) {{ {load_one} }}
        }}
        #pragma unroll
        for (int _u = 0; _u < {UNROLL}; ++_u) {{
            const long long _i = _start + threadIdx.x + (long long)_u * blockDim.x;
            if (_i < _n) {{
                {element}
                {{ {body} }}
                {store}
            }}
        }}
    }}
}}
"""


def launch_raw(function, name: str, grid, block, args, shared_mem: int = 0) -> None:
    """Launch a RawModule ``function`` (counted as ``name``)."""
    launches.record("cupy", name)
    function(grid, block, args, shared_mem=shared_mem)


class RawKernels:
    """CUDA C++ templates compiled as one RawModule on first use (importing needs no GPU).

    ``function(name, dtype)`` is a launcher of ``name<float>`` or ``name<double>``, called as
    ``(grid, block, args, shared_mem=...)``; ``kernels/cupycheck.py`` compiles the same source and
    name expressions with NVRTC on a machine without a GPU.
    """

    def __init__(self, source: str, names):
        self.source, self.names, self._module = source, list(names), None

    def function(self, name: str, dtype):
        if self._module is None:
            self._module = cupy.RawModule(code=self.source, options=("-std=c++14",), name_expressions=self.names)
        c_type = "float" if np.dtype(dtype) == np.float32 else "double"
        return functools.partial(launch_raw, self._module.get_function(f"{name}<{c_type}>"), name)


def cupy_float_arrays(*arrays) -> bool:
    """True for CuPy float32/float64 arrays of one dtype (what the kernels are written for)."""
    arrays = [a for a in arrays if a is not None]
    if not arrays or not all(type(a).__module__.startswith("cupy") for a in arrays):
        return False
    return one_float_dtype(arrays)
