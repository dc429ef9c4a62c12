"""The catalog's job history: each indexing run with its progress, so a crashed run is seen as interrupted.

``scenefind status`` and the Library view show the last runs from here; a job left ``running`` by a process
that no longer exists is marked ``interrupted`` when the next one starts.
"""

from __future__ import annotations

import os
import time

from engine.library.connection import CatalogConnection
from engine.library.rows import JobRow


def _pid_alive(pid: int | None) -> bool:
    if not pid:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class JobHistory(CatalogConnection):
    """Queries of the ``jobs`` table."""

    def start_job(self, kind: str, model_id: str | None, total: int) -> int:
        """Record a job; jobs left 'running' by a process that no longer exists become 'interrupted'."""
        with self.transaction() as db:
            for row in db.execute("SELECT id, pid FROM jobs WHERE status = 'running'").fetchall():
                if not _pid_alive(row["pid"]) or row["pid"] == os.getpid():
                    db.execute(
                        "UPDATE jobs SET status='interrupted', finished_at=? WHERE id=?",
                        (time.time(), row["id"]),
                    )
            cur = db.execute(
                "INSERT INTO jobs (kind, model_id, status, pid, started_at, total) VALUES (?, ?, 'running', ?, ?, ?)",
                (kind, model_id, os.getpid(), time.time(), total),
            )
            return int(cur.lastrowid or 0)

    def update_job(self, job_id: int, *, done: int, failed: int, total: int | None = None, message: str = "") -> None:
        with self.transaction() as db:
            db.execute(
                "UPDATE jobs SET done=?, failed=?, total=COALESCE(?, total), message=? WHERE id=?",
                (done, failed, total, message, job_id),
            )

    def finish_job(self, job_id: int, status: str, message: str = "") -> None:
        with self.transaction() as db:
            db.execute(
                "UPDATE jobs SET status=?, finished_at=?, message=? WHERE id=?",
                (status, time.time(), message, job_id),
            )

    def jobs(self, limit: int = 20) -> list[JobRow]:
        return [JobRow(**dict(r)) for r in self._query("SELECT * FROM jobs ORDER BY id DESC LIMIT ?", (limit,))]
