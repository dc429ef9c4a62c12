"""What the ``scenefind`` command groups share: a progress bar fed by the engine's callback, Ctrl-C that asks
the work to stop cleanly (it saves what is done) before a second Ctrl-C aborts, terminal-safe text, the
library the global flags name, and one way to report an error. Kept apart so no group imports another."""

from __future__ import annotations

import argparse
import contextlib
import math
import signal
import sys
import threading
from collections.abc import Iterator
from typing import Any

from engine.cli import EXIT_ERROR
from engine.jobs import CancelToken, ProgressCallback


def safe(text: object) -> str:
    """Text for a terminal: control characters (escape sequences in a hostile file name could clear the screen
    or retitle the window) are shown escaped instead of interpreted."""
    return "".join(c if c.isprintable() or c == " " else repr(c)[1:-1] for c in str(text))


@contextlib.contextmanager
def progress_bar(enabled: bool) -> Iterator[ProgressCallback | None]:
    """A tqdm bar on stderr, driven by (fraction, message), with elapsed time and ETA."""
    if not enabled:
        yield None
        return
    from tqdm import tqdm

    bar = tqdm(total=1000, unit="‰", bar_format="{l_bar}{bar}| {elapsed}<{remaining} {postfix}", file=sys.stderr)

    def update(fraction: float, message: str) -> None:
        bar.update(max(0, int(fraction * 1000) - bar.n))
        bar.set_postfix_str(message[-60:], refresh=False)

    try:
        yield update
    finally:
        bar.close()


@contextlib.contextmanager
def cancel_on_sigint(
    token: CancelToken | None = None, message: str = "Stopping after the current video… (Ctrl-C again to abort)"
) -> Iterator[CancelToken]:
    """First Ctrl-C cancels ``token``; a second raises KeyboardInterrupt. Outside the main thread (where
    signal handlers cannot be set) the token is still returned, just not wired to Ctrl-C."""
    token = token or CancelToken()
    if threading.current_thread() is not threading.main_thread():
        yield token
        return
    previous = signal.getsignal(signal.SIGINT)

    def handler(signum: int, frame: object) -> None:
        if token.cancelled:
            signal.signal(signal.SIGINT, previous)
            raise KeyboardInterrupt
        print(f"\n{message}", file=sys.stderr)
        token.cancel()

    signal.signal(signal.SIGINT, handler)
    try:
        yield token
    finally:
        signal.signal(signal.SIGINT, previous)


def jsonable(value: Any) -> Any:
    """NaN (a figure over no queries) becomes null, inside dicts and lists too, so the output is strict JSON."""
    if isinstance(value, dict):
        return {k: jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [jsonable(v) for v in value]
    if isinstance(value, float) and math.isnan(value):
        return None
    return value


def fail(message: object) -> int:
    """Print ``scenefind: error: MESSAGE`` on stderr and return the usage/fatal exit code."""
    print(f"scenefind: error: {message}", file=sys.stderr)
    return EXIT_ERROR


def count(text: str) -> int:
    """An argparse type: a whole number of at least 1 (workers, processes)."""
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, not {value}")
    return value


def open_library(args: argparse.Namespace) -> Any:
    """The ``Library`` at ``--home`` (or the default), with ``--model`` and ``--speech-model`` overriding its
    settings (and an index command's ``--no-speech`` / ``--no-screen-text`` turning those stages off, a search's
    ``--word-scores`` / ``--no-word-scores`` the word-frame score)."""
    from engine.library.library import Library

    library = Library(args.home)
    changes: dict[str, Any] = {}
    if args.model:
        changes["model"] = args.model
    if getattr(args, "speech_model", None):
        changes["speech_model"] = args.speech_model
    if getattr(args, "no_speech", False):
        changes["speech"] = False
    if getattr(args, "no_screen_text", False):
        changes["screen_text"] = False
    if getattr(args, "word_scores", None) is not None:
        changes["word_scores"] = args.word_scores
    if changes:
        library.settings = library.settings.replace(**changes)
    return library
