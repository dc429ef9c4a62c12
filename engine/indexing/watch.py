"""``scenefind index --watch``: re-index after file changes settle (watchdog events, debounced).

Copying a large video produces a stream of events; indexing waits until the folders have been quiet for
``debounce_s`` seconds so a half-copied file is not decoded (and is picked up whole on the next pass).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from watchdog.events import FileSystemEvent, FileSystemEventHandler
from watchdog.observers import Observer


class _Dirty(FileSystemEventHandler):
    def __init__(self) -> None:
        self.last_event = 0.0
        self.changed = threading.Event()

    def on_any_event(self, event: FileSystemEvent) -> None:
        if event.event_type in ("opened", "closed_no_write"):
            return
        self.last_event = time.monotonic()
        self.changed.set()


def watch_folders(
    folders: Sequence[Path],
    debounce_s: float,
    on_change: Callable[[], object],
    *,
    stop: threading.Event | None = None,
) -> None:
    """Call ``on_change`` each time the folders change and then stay quiet for ``debounce_s``; runs until
    ``stop`` is set (or KeyboardInterrupt)."""
    stop = stop or threading.Event()
    handler = _Dirty()
    observer = Observer()
    for folder in folders:
        if folder.is_dir():
            observer.schedule(handler, str(folder), recursive=True)
    observer.start()
    try:
        while not stop.is_set():
            if not handler.changed.wait(timeout=0.2):
                continue
            if time.monotonic() - handler.last_event < debounce_s:
                stop.wait(0.1)
                continue
            handler.changed.clear()
            on_change()
    finally:
        observer.stop()
        observer.join()
