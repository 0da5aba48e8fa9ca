"""``python -m scratchgen.gradcheck [NAME ...]``: the same table as ``scratchgen gradcheck``."""
import sys

from ..cli import main

sys.exit(main(["gradcheck", *sys.argv[1:]]))
