"""``scratchgen.kernels`` when running from a source checkout.

The repository keeps the accelerated kernels in a top-level ``kernels/`` folder beside
``scratchgen/`` (one folder per concern, as a reader expects), and an install puts them at
``scratchgen.kernels`` (``setup.py``'s ``package_dir``), so nothing named ``kernels`` lands
in site-packages. A checkout used with ``PYTHONPATH=.`` and no install has no
``scratchgen/kernels`` directory; this mounts ``kernels/`` under that name instead.
"""
from __future__ import annotations

import importlib.util
import os
import sys

PACKAGE = "scratchgen.kernels"


def mount_source_kernels() -> None:
    """Make ``scratchgen.kernels`` the ``kernels/`` folder beside this ``scratchgen/`` folder.

    An installed wheel has ``scratchgen/kernels`` itself, and is left alone. A checkout mounts
    its own sibling folder even when an editable install of *another* checkout would map the name
    elsewhere: this checkout's kernels go with this checkout's ops.
    """
    here = os.path.dirname(os.path.abspath(__file__))
    if PACKAGE in sys.modules or os.path.isdir(os.path.join(here, "kernels")):
        return  # already mounted, or installed in place
    folder = os.path.join(os.path.dirname(here), "kernels")
    init = os.path.join(folder, "__init__.py")
    if not os.path.isfile(init):
        return  # no kernels at all: only the numpy backend can run, and set_backend says so
    spec = importlib.util.spec_from_file_location(PACKAGE, init, submodule_search_locations=[folder])
    module = importlib.util.module_from_spec(spec)
    sys.modules[PACKAGE] = module
    spec.loader.exec_module(module)
