"""``index --watch``: changes trigger one re-index after the folder has been quiet for the debounce time."""

from __future__ import annotations

import threading
import time
from pathlib import Path

from engine.indexing.watch import watch_folders


def test_burst_of_changes_triggers_one_call_after_quiet(tmp_path: Path) -> None:
    calls: list[float] = []
    stop = threading.Event()
    thread = threading.Thread(
        target=watch_folders,
        args=([tmp_path], 0.5, lambda: calls.append(time.monotonic())),
        kwargs={"stop": stop},
        daemon=True,
    )
    thread.start()
    time.sleep(0.5)  # let the observer start
    last_write = 0.0
    for i in range(5):  # a copy in progress: several writes in quick succession
        (tmp_path / f"part{i}.mp4").write_bytes(b"x" * 100)
        last_write = time.monotonic()
        time.sleep(0.1)
    deadline = time.monotonic() + 10
    while not calls and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(1.0)
    stop.set()
    thread.join(timeout=5)
    assert len(calls) == 1
    assert calls[0] - last_write >= 0.45
