"""``scenefind gui``: open the desktop app from the command, with the command's ``--home`` and ``--model``.

The app is found through its ``scenefind-gui`` entry point rather than imported, so the engine never imports
``desktop`` (the dependency runs one way) and a terminal-only install says plainly that the app is missing.
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import Any

from engine.cli import EXIT_ERROR, Handler


def register(sub: Any) -> dict[str, Handler]:
    """Add ``gui`` to the ``scenefind`` sub-parsers; return ``{"gui": handler}``."""
    g = sub.add_parser("gui", help="open the desktop app (options after `gui` go to the app, e.g. --screenshot)")
    g.add_argument("gui_args", nargs=argparse.REMAINDER, help=argparse.SUPPRESS)
    return {"gui": cmd_gui}


def cmd_gui(args: argparse.Namespace) -> int:
    """Start the desktop app through its ``scenefind-gui`` entry point: the engine never imports ``desktop``."""
    from importlib.metadata import entry_points

    found = entry_points(group="gui_scripts", name="scenefind-gui")
    try:
        launch = next(iter(found)).load()
    except (StopIteration, ImportError) as exc:
        print(
            f"scenefind: error: the desktop app is not installed ({exc or 'no scenefind-gui entry point'})",
            file=sys.stderr,
        )
        return EXIT_ERROR
    if args.model:
        os.environ["SCENEFIND_MODEL"] = args.model  # the app reads the library's settings and this override
    return int(launch(args.gui_args) or 0)
