"""Optional packages: one way to ask for them, and one error when they are missing.

NumPy is scratchgen's only hard dependency. Pictures need matplotlib and Pillow (the ``plot``
extra), the ``digits`` dataset needs scikit-learn (``data``), the progress bar prefers tqdm
(``cli``), the numba and GPU backends need Numba and CuPy. ``require(module, extra)`` imports one
or raises ``MissingOptionalPackage`` saying which extra installs it; the test suite turns that
error into a skip naming the package, so a machine without an extra runs everything else.
"""
from __future__ import annotations

import importlib

__all__ = ["MissingOptionalPackage", "require"]


class MissingOptionalPackage(ImportError):
    """An optional package is not installed; the message says which extra provides it."""


def require(module_name: str, extra: str, purpose: str):
    """The module ``module_name``, or MissingOptionalPackage naming ``purpose`` and the extra to install."""
    try:
        return importlib.import_module(module_name)
    except ImportError as error:
        raise MissingOptionalPackage(f"{purpose} needs {module_name.split('.')[0]}: install it with "
                                     f"`pip install scratchgen[{extra}]` ({error})") from None
