"""``python -m scratchgen ...`` is the ``scratchgen`` command."""
import sys

from .cli import main

sys.exit(main())
