"""Interrupting an indexer subprocess once it has committed some videos (shared by the CLI and pipeline tests)."""

from __future__ import annotations

import sqlite3
import subprocess
import time
from pathlib import Path


def signal_once_committed(proc: subprocess.Popen, home: Path, count: int, sig: int, timeout_s: float) -> None:
    """Send ``sig`` to ``proc`` as soon as the library at ``home`` holds ``count`` embeddings (or give up when the
    process ends first or ``timeout_s`` passes); polls the catalog read-only, as another process would."""
    deadline = time.monotonic() + timeout_s
    while proc.poll() is None and time.monotonic() < deadline:
        try:
            db = sqlite3.connect(f"file:{home / 'catalog.sqlite'}?mode=ro", uri=True, timeout=1)
            done = db.execute("SELECT COUNT(*) FROM embeddings").fetchone()[0]
            db.close()
        except sqlite3.Error:
            done = 0
        if done >= count:
            proc.send_signal(sig)
            return
        time.sleep(0.005)
