"""``JobRunner``: run one slow engine call at a time per owner on a thread pool, with progress and cancel.

After Orange's ``ConcurrentMixin``: each view owns a runner; ``start(fn, ...)`` cancels the job that runner
was running and runs ``fn(*args, progress=..., cancel=..., **kwargs)`` on a ``QThreadPool``. Signals arrive
queued on the GUI thread; those of a superseded job are dropped, so a view only ever hears about its latest
request. Progress is throttled (the GUI thread never drowns in updates) and carries an ETA in seconds.
``JobCancelled`` raised by the work maps to ``cancelled``, any other exception to ``failed``.
"""

from __future__ import annotations

import itertools
import logging
import os
import threading
import time
from collections.abc import Callable
from typing import Any

from PySide6.QtCore import QObject, QRunnable, QThreadPool, Signal, Slot

from engine.jobs import CancelToken, JobCancelled

log = logging.getLogger(__name__)

PROGRESS_INTERVAL_S = 0.05  # at most 20 progress updates a second reach the GUI thread
BACKGROUND_NICE = 10  # indexing threads (and the FFmpeg threads they start) yield the CPU to the GUI
_ids = itertools.count(1)
_pool: QThreadPool | None = None
_background: QThreadPool | None = None


def shared_pool() -> QThreadPool:
    """The app's pool for jobs (not the global one: its size is the core count, and a folder watch holds a
    thread for as long as it runs)."""
    global _pool
    if _pool is None:
        _pool = QThreadPool()
        _pool.setMaxThreadCount(8)
    return _pool


def background_pool() -> QThreadPool:
    """A pool for long background work (indexing, watching): its threads lower their own CPU priority, so
    on a busy machine decoding never starves the GUI thread. Separate from ``shared_pool`` because a
    thread cannot raise its priority back for an interactive job."""
    global _background
    if _background is None:
        _background = QThreadPool()
        _background.setMaxThreadCount(4)
    return _background


def _lower_thread_priority() -> None:
    """Nice the calling thread (Linux and macOS treat a thread id as a process id here; elsewhere no-op)."""
    try:
        tid = threading.get_native_id()
        if os.getpriority(os.PRIO_PROCESS, tid) < BACKGROUND_NICE:
            os.setpriority(os.PRIO_PROCESS, tid, BACKGROUND_NICE)
    except (AttributeError, OSError):
        pass


def format_eta(seconds: float) -> str:
    """``about 3 min left``; empty while unknown (negative)."""
    if seconds < 0:
        return ""
    if seconds < 60:
        return f"about {max(1, round(seconds))} s left"
    if seconds < 3600:
        return f"about {round(seconds / 60)} min left"
    return f"about {seconds / 3600:.1f} h left"


class EtaEstimator:
    """Remaining time from the fraction done and the time spent (linear; unknown for the first second)."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._start = clock()

    def eta(self, fraction: float) -> float:
        elapsed = self._clock() - self._start
        if fraction <= 0.01 or elapsed < 1.0:
            return -1.0
        return max(0.0, elapsed * (1.0 - fraction) / fraction)


class _Relay(QObject):
    """Created on the GUI thread; emitted from the worker, so Qt queues every signal to the GUI thread."""

    progress = Signal(int, float, str)
    finished = Signal(int, object)
    failed = Signal(int, object)
    cancelled = Signal(int)


class _Task(QRunnable):
    def __init__(
        self,
        job_id: int,
        fn: Callable[..., Any],
        args: tuple,
        kwargs: dict,
        token: CancelToken,
        relay: _Relay,
        background: bool = False,
    ):
        super().__init__()
        self.setAutoDelete(True)
        self.job_id, self.fn, self.args, self.kwargs, self.token, self.relay = job_id, fn, args, kwargs, token, relay
        self.background = background
        self._last = 0.0

    def _progress(self, fraction: float, message: str) -> None:
        now = time.monotonic()
        if fraction >= 1.0 or now - self._last >= PROGRESS_INTERVAL_S:
            self._last = now
            self.relay.progress.emit(self.job_id, float(fraction), str(message))

    def run(self) -> None:
        if self.background:
            _lower_thread_priority()
        try:
            result = self.fn(*self.args, progress=self._progress, cancel=self.token, **self.kwargs)
        except JobCancelled:
            self.relay.cancelled.emit(self.job_id)
        except BaseException as exc:  # every failure reaches the user, with its reason
            log.warning("job %s failed: %s", getattr(self.fn, "__name__", self.fn), exc, exc_info=True)
            self.relay.failed.emit(self.job_id, exc)
        else:
            if self.token.cancelled:
                self.relay.cancelled.emit(self.job_id)
            else:
                self.relay.finished.emit(self.job_id, result)


class JobRunner(QObject):
    """One job at a time for its owner. ``progress(fraction, message, eta_s)`` (eta -1 while unknown).

    ``background=True`` runs on ``background_pool`` at a lower CPU priority (indexing, folder watching)."""

    started = Signal()
    progress = Signal(float, str, float)
    finished = Signal(object)
    failed = Signal(object)
    cancelled = Signal()
    running_changed = Signal(bool)

    def __init__(self, parent: QObject | None = None, pool: QThreadPool | None = None, *, background: bool = False):
        super().__init__(parent)
        self.background = background
        self._pool = pool or (background_pool() if background else shared_pool())
        self._relay = _Relay(self)
        self._relay.progress.connect(self._on_progress)
        self._relay.finished.connect(self._on_finished)
        self._relay.failed.connect(self._on_failed)
        self._relay.cancelled.connect(self._on_cancelled)
        self._job = 0
        self._token: CancelToken | None = None
        self._eta = EtaEstimator()

    @property
    def running(self) -> bool:
        return self._token is not None

    def start(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> int:
        """Cancel this runner's current job (its signals are dropped) and start ``fn``; returns the job id."""
        self._cancel_current()
        self._job = next(_ids)
        self._token = CancelToken()
        self._eta = EtaEstimator()
        self._pool.start(_Task(self._job, fn, args, kwargs, self._token, self._relay, self.background))
        self.started.emit()
        self.running_changed.emit(True)
        return self._job

    def cancel(self) -> None:
        """Ask the current job to stop; ``cancelled`` follows when it reaches a cancel point."""
        if self._token is not None:
            self._token.cancel()

    def wait(self, msecs: int = 5000) -> bool:
        """Block until the pool is idle (tests and shutdown only)."""
        return self._pool.waitForDone(msecs)

    def _cancel_current(self) -> None:
        if self._token is not None:
            self._token.cancel()
            self._token = None
            self.running_changed.emit(False)

    def _done(self, job_id: int) -> bool:
        if job_id != self._job or self._token is None:
            return False
        self._token = None
        self.running_changed.emit(False)
        return True

    @Slot(int, float, str)
    def _on_progress(self, job_id: int, fraction: float, message: str) -> None:
        if job_id == self._job and self._token is not None:
            self.progress.emit(fraction, message, self._eta.eta(fraction))

    @Slot(int, object)
    def _on_finished(self, job_id: int, result: object) -> None:
        if self._done(job_id):
            self.finished.emit(result)

    @Slot(int, object)
    def _on_failed(self, job_id: int, exc: object) -> None:
        if self._done(job_id):
            self.failed.emit(exc)

    @Slot(int)
    def _on_cancelled(self, job_id: int) -> None:
        if self._done(job_id):
            self.cancelled.emit()


def describe_error(exc: object) -> str:
    """A sentence for the user: the exception's own message (ours name the file and the problem), or for the
    failures whose message is command-line advice (a model that could not be downloaded, nothing indexed,
    an LLM download) the app's own words (``desktop.problems``)."""
    from desktop.problems import explain

    return explain(exc).text
