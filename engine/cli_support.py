"""What every long ``scenefind`` command shares: a progress bar fed by the engine's callback, and Ctrl-C
that asks the work to stop cleanly (it saves what is done) before a second Ctrl-C aborts."""

from __future__ import annotations

import contextlib
import signal
import sys
import threading
from collections.abc import Iterator

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
