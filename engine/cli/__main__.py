"""``python -m engine.cli``: the ``scenefind`` command without its script, as torchrun's workers run it."""

from __future__ import annotations

import sys

from engine.cli import main

if __name__ == "__main__":  # importing this module (e.g. walking the package) must not run the command
    sys.exit(main())
