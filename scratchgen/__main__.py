"""``python -m scratchgen ...`` is the ``scratchgen`` command."""
from .cli import run

run()
