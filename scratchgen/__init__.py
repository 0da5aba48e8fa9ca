"""scratchgen: the deep generative models of the classic lectures, from scratch in NumPy.

Read the code in this order:
    tensor.py     Tensor and reverse-mode backward (iterative topological sort)
    function.py   Function (forward/backward on raw arrays), unbroadcast, no_grad, detect_anomaly
    ops/          every op with its hand-written backward and its NumPy reference kernels
    gradcheck.py  finite-difference checking in float64
    backend.py    the kernel registry and the NumPy / Numba / CUDA / CuPy switch
    nn/, optim.py modules and optimisers; models/ the generative models
"""
from ._source import mount_source_kernels

mount_source_kernels()  # a source checkout's kernels/ folder is scratchgen.kernels (installed: in place)

from . import ops  # noqa: F401,E402  (registers every op's kernels and gradcheck cases)
from .backend import (  # noqa: F401
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
from .function import Function  # noqa: F401
from .grad_mode import AnomalyError, detect_anomaly, is_grad_enabled, no_grad  # noqa: F401
from .gradcheck import GradcheckError, gradcheck  # noqa: F401
from .ops import *  # noqa: F401,F403
from .tensor import Tensor, as_tensor  # noqa: F401
from .viz import draw_graph  # noqa: F401

from . import nn, optim  # noqa: E402,F401  (after the ops: layers are built on them)

from .info import VERSION as __version__  # noqa: E402

from .backend import _init_from_environment  # noqa: E402

_init_from_environment()
