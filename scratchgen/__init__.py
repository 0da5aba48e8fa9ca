"""scratchgen: the deep generative models of the classic lectures, from scratch in NumPy.

Read the code in this order:
    tensor.py     Tensor and reverse-mode backward (iterative topological sort)
    function.py   Function (forward/backward on raw arrays), unbroadcast, no_grad, detect_anomaly
    ops/          every op with its hand-written backward and its NumPy reference kernels
    gradcheck.py  finite-difference checking in float64
    backend.py    the kernel registry and the NumPy / Numba / CUDA / CuPy switch
    nn/, optim.py modules and optimisers; models/ the generative models

What ``from scratchgen import *`` gives (``__all__``): Tensor and its constructors, every op of
``scratchgen.ops`` (listed in ops/__init__.py), autograd's switches, gradcheck and the backend
switch - functions and classes only, never a module. Two deliberate gaps:

* the ops named like Python builtins - ``sum``, ``max``, ``min``, ``abs``, ``pow`` - are not
  star-exported, so a star import never shadows the builtins; write ``sg.sum(x, axis=1)``;
* the subpackages stay namespaces: ``sg.nn``, ``sg.optim`` (``from scratchgen import nn``), and
  ``import scratchgen.models`` for the models (imported on demand, never here: it is heavy and
  sits above everything else in the layers of tests/test_layers.py).
"""
from ._source import mount_source_kernels
from .memory import configure_allocator

configure_allocator()  # large arrays reused from the heap, not faulted in afresh every step (memory.py)
mount_source_kernels()  # a source checkout's kernels/ folder is scratchgen.kernels (installed: in place)

from . import ops  # noqa: E402  (registers every op's kernels and gradcheck cases)
from .backend import (  # noqa: E402
    BACKENDS,
    BackendUnavailableError,
    get_array_module,
    get_backend,
    kernel,
    kernel_table,
    register_kernel,
    set_backend,
    use_backend,
)
from .function import Function  # noqa: E402
from .grad_mode import AnomalyError, detect_anomaly, is_grad_enabled, no_grad  # noqa: E402
from .gradcheck import GradcheckError, gradcheck  # noqa: E402
from .ops import *  # noqa: F401,F403,E402
from .ops import abs, max, min, pow, sum  # noqa: F401,E402,A004  (reachable as sg.sum; not star-exported)
from .tensor import Tensor, as_tensor, from_dlpack  # noqa: E402
from .viz import draw_graph  # noqa: E402

from . import nn, optim  # noqa: E402,F401  (after the ops: layers are built on them)

from .info import VERSION as __version__  # noqa: E402

from .backend import _init_from_environment  # noqa: E402

_init_from_environment()

__all__ = [
    "Tensor", "as_tensor", "from_dlpack", "Function",
    "no_grad", "is_grad_enabled", "detect_anomaly", "AnomalyError",
    "gradcheck", "GradcheckError",
    "BACKENDS", "BackendUnavailableError", "get_array_module", "get_backend", "set_backend", "use_backend",
    "kernel", "kernel_table", "register_kernel", "draw_graph",
] + list(ops.__all__)
