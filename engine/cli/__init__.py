"""The ``scenefind`` command: everything the desktop app does, from a terminal.

Each command group lives in its own module (``library``, ``index``, ``search``, ``bench``, ``gui``, ``eval``,
``export``, ``train``); its ``register(subparsers)`` adds its commands to the shared parser built here and
returns their handlers by name. This module only parses and dispatches. A group imports torch, open_clip and
the like inside its handlers, when a command needs them, so ``scenefind status`` and ``--help`` stay instant.

Exit codes: 0 success; 1 some files failed in this run (the rest were indexed), or a benchmark found losses;
2 usage or fatal error; 130 cancelled with Ctrl-C (what was done is kept; run the same command again to
resume); 141 the output was cut off by its reader (``scenefind models | head -3``), quietly, as other
command-line tools do.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import logging
import os
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from engine.settings import HEAD_WINDOWS, POOLINGS

EXIT_OK, EXIT_FAILED, EXIT_ERROR, EXIT_CANCELLED = 0, 1, 2, 130
EXIT_PIPE_CLOSED = 141  # 128 + SIGPIPE: what a shell reports for a tool whose reader went away
MODELS_HINT = "`scenefind models` lists the models you can use"
GROUPS = ("library", "index", "search", "bench", "gui", "eval", "export", "train")  # in `--help` order

Handler = Callable[[argparse.Namespace], int]


def build_parser() -> tuple[argparse.ArgumentParser, dict[str, Handler]]:
    """The ``scenefind`` parser with every group's commands, and the handler of each command by name."""
    p = argparse.ArgumentParser(prog="scenefind", description="Search your videos in plain language.")
    p.add_argument("--home", type=Path, help="library folder (default: $SCENEFIND_HOME or the user data dir)")
    p.add_argument("--model", help="encoder (default: $SCENEFIND_MODEL or the settings); see `scenefind models`")
    p.add_argument(
        "--pooling",
        choices=POOLINGS,
        help="segment and video vectors: auto = through the model's temporal head when it has one (default), "
        "mean = the mean of the frame vectors (a head model's +mean index, for comparison); $SCENEFIND_POOLING",
    )
    p.add_argument(
        "--head-windows",
        choices=HEAD_WINDOWS,
        help="how a temporal head fits a window with another frame count: resample n_frames evenly (default, as "
        "training does), pad with a mask, or slide (video vector = mean of the segment vectors); "
        "$SCENEFIND_HEAD_WINDOWS",
    )
    p.add_argument(
        "--speech-model",
        metavar="NAME|FOLDER",
        help="speech model: a Whisper size (tiny, base, small, ...; downloaded on first use) or a faster-whisper "
        "model folder (default: $SCENEFIND_SPEECH_MODEL or the settings' speech_model, base)",
    )
    p.add_argument("-v", "--verbose", action="store_true", help="log what happens")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")
    commands: dict[str, Handler] = {}
    for group in GROUPS:
        commands.update(importlib.import_module(f"engine.cli.{group}").register(sub))
    return p, commands


def _known_errors() -> tuple[type[BaseException], ...]:
    from engine.index.errors import IndexCorrupt, IndexModelMismatch
    from engine.library.catalog import CatalogError
    from engine.library.library import LibraryBusy
    from engine.media.decode import MediaError
    from engine.models.base import ModelUnavailable
    from engine.search.lexical import LexicalQueryError
    from engine.search.searcher import SearchError
    from engine.settings import SettingsError
    from engine.speech.models import SpeechModelError

    return (
        CatalogError,
        LibraryBusy,
        SettingsError,
        ModelUnavailable,
        SearchError,
        IndexModelMismatch,
        IndexCorrupt,
        MediaError,
        SpeechModelError,
        LexicalQueryError,
        OSError,
    )


def _quiet_closed_pipe() -> int:
    """The reader of stdout went away (``| head``): stop writing, without the traceback Python prints at exit
    when it flushes into the closed pipe."""
    with contextlib.suppress(OSError, ValueError):
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    return EXIT_PIPE_CLOSED


def main(argv: Sequence[str] | None = None) -> int:
    """Run one ``scenefind`` command; returns its exit code."""
    try:
        code = _dispatch(argv)
        sys.stdout.flush()  # here, not at exit, so a closed pipe is noticed while it can still be handled
    except BrokenPipeError:
        return _quiet_closed_pipe()
    return code


def _dispatch(argv: Sequence[str] | None) -> int:
    from engine.cli.support import safe
    from engine.models.base import UnknownModel

    parser, commands = build_parser()
    args, extra = parser.parse_known_args(argv)
    if extra and args.command != "gui":
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    if args.command == "gui":  # everything after `gui` belongs to the app (argparse cannot route it itself)
        args.gui_args = [*extra, *args.gui_args]
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING, format="%(levelname)s %(name)s: %(message)s"
    )
    if args.home:
        os.environ["SCENEFIND_HOME"] = str(args.home.expanduser().resolve())
    for variable, value in (("SCENEFIND_POOLING", args.pooling), ("SCENEFIND_HEAD_WINDOWS", args.head_windows)):
        if value:  # every library this process opens (the GUI's, eval's temporary one) pools as asked
            os.environ[variable] = value
    started = time.perf_counter()
    try:
        return commands[args.command](args)
    except BrokenPipeError:  # an OSError, but not the command's: its reader went away (``main`` handles it)
        raise
    except _known_errors() as exc:
        hint = f"\n{MODELS_HINT}" if isinstance(exc, UnknownModel) else ""
        print(f"scenefind: error: {safe(exc)}{hint}", file=sys.stderr)
        return EXIT_ERROR
    finally:
        logging.getLogger(__name__).info("%s took %.2f s", args.command, time.perf_counter() - started)
