"""Progress and cancellation for long engine work (one style everywhere, after Orange's TaskState).

Every long engine function takes ``*, progress: ProgressCallback | None = None, cancel: CancelToken | None``.
Progress is a fraction in [0, 1] plus a human message; cancellation is cooperative: the work calls
``cancel.raise_if_cancelled()`` between batches, never inside a torch call, and the caller maps
``JobCancelled`` to "cancelled" rather than "failed".
"""

from __future__ import annotations

import threading
from collections.abc import Callable

ProgressCallback = Callable[[float, str], None]


class JobCancelled(Exception):
    """Raised at a cancel point after the user asked to stop."""


class CancelToken:
    """A thread-safe flag the GUI or CLI sets and the work polls."""

    def __init__(self) -> None:
        self._event = threading.Event()

    def cancel(self) -> None:
        self._event.set()

    @property
    def cancelled(self) -> bool:
        return self._event.is_set()

    def raise_if_cancelled(self) -> None:
        if self._event.is_set():
            raise JobCancelled("cancelled by the user")


def check_cancel(cancel: CancelToken | None) -> None:
    """Cancel point that accepts ``None`` (no token means the work cannot be cancelled)."""
    if cancel is not None:
        cancel.raise_if_cancelled()


def report(progress: ProgressCallback | None, fraction: float, message: str) -> None:
    """Call ``progress`` if there is one, clamping the fraction so callers need not."""
    if progress is not None:
        progress(min(1.0, max(0.0, fraction)), message)


def wrap_progress(progress: ProgressCallback | None, start: float, end: float) -> ProgressCallback | None:
    """Map a sub-step's 0..1 onto ``start..end`` of the parent's progress."""
    if progress is None:
        return None
    span = end - start

    def _sub(fraction: float, message: str) -> None:
        progress(start + span * min(1.0, max(0.0, fraction)), message)

    return _sub
