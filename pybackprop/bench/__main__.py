"""``python -m pybackprop.bench``: the same as ``python -m pybackprop bench``."""
import sys

from .runner import main

sys.exit(main())
