"""The SQLite catalog: folders, videos, models, embeddings (with their segments and frames) and jobs.

The catalog is the source of truth; indexes and vector files are rebuilt from it. ``Catalog`` is the one
entry point the rest of the engine uses. Its parts live in their own modules: the connection, transactions
and migrations (``engine.library.connection``), the row types (``engine.library.rows``), the models and
embeddings queries (``engine.library.embeddings``), the job history (``engine.library.job_history``) and the
speech and on-screen text (``engine.library.transcripts``); the folders, videos and summaries are here.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path

from engine.library.embeddings import UP_TO_DATE, EmbeddingTables
from engine.library.job_history import JobHistory
from engine.library.rows import (
    GRAINS,
    CatalogError,
    EmbeddingKeys,
    FolderCounts,
    FolderRow,
    Grain,
    JobRow,
    NewEmbedding,
    RemovedKeys,
    VideoRow,
    json_ids,
    video_row,
)
from engine.library.transcripts import TranscriptTables

__all__ = [
    "GRAINS",
    "Catalog",
    "CatalogError",
    "EmbeddingKeys",
    "FolderCounts",
    "FolderRow",
    "Grain",
    "JobRow",
    "NewEmbedding",
    "RemovedKeys",
    "VideoRow",
]


class Catalog(EmbeddingTables, JobHistory, TranscriptTables):
    """One connection to a library's catalog. Safe to share between threads (calls are serialised)."""

    # -- folders ----------------------------------------------------------------------------------------

    def folders(self) -> list[FolderRow]:
        return [FolderRow(**dict(r)) for r in self._query("SELECT id, path, added_at FROM folders ORDER BY path")]

    def add_folder(self, path: Path) -> tuple[FolderRow, RemovedKeys]:
        """Add a folder (absolute, resolved). A folder already covered by another is refused; folders
        inside the new one are merged into it (their videos keep their vectors)."""
        folder = Path(path).expanduser().resolve()
        if not folder.is_dir():
            raise CatalogError(f"{folder}: not a folder")
        text = str(folder)
        with self.transaction() as db:
            for row in db.execute("SELECT id, path FROM folders").fetchall():
                existing = Path(row["path"])
                if existing == folder:
                    return FolderRow(
                        **dict(db.execute("SELECT * FROM folders WHERE id=?", (row["id"],)).fetchone())
                    ), RemovedKeys()
                if folder.is_relative_to(existing):
                    raise CatalogError(f"{folder}: already part of the library through {existing}")
            cur = db.execute("INSERT INTO folders (path, added_at) VALUES (?, ?)", (text, time.time()))
            new_id = int(cur.lastrowid or 0)
            for row in db.execute("SELECT id, path FROM folders WHERE id != ?", (new_id,)).fetchall():
                if Path(row["path"]).is_relative_to(folder):
                    db.execute("UPDATE videos SET folder_id = ? WHERE folder_id = ?", (new_id, row["id"]))
                    db.execute("DELETE FROM folders WHERE id = ?", (row["id"],))
            added = db.execute("SELECT id, path, added_at FROM folders WHERE id = ?", (new_id,)).fetchone()
        return FolderRow(**dict(added)), RemovedKeys()

    def remove_folder(self, path: Path) -> RemovedKeys:
        """Forget a folder and its videos; returns the vector keys to mark deleted."""
        folder = str(Path(path).expanduser().resolve())
        rows = self._query("SELECT id FROM folders WHERE path = ?", (folder,))
        if not rows:
            raise CatalogError(f"{folder}: not in the library")
        with self.transaction() as db:
            ids = [r["id"] for r in db.execute("SELECT id FROM videos WHERE folder_id = ?", (rows[0]["id"],))]
            removed = self._delete_embeddings(db, "video_id IN (SELECT value FROM json_each(?))", (json_ids(ids),))
            db.execute("DELETE FROM folders WHERE id = ?", (rows[0]["id"],))
        return removed

    # -- videos -----------------------------------------------------------------------------------------

    def videos(self, *, folder_id: int | None = None, status: str | None = None) -> list[VideoRow]:
        sql, params = "SELECT * FROM videos WHERE 1=1", []
        if folder_id is not None:
            sql, params = sql + " AND folder_id = ?", [*params, folder_id]
        if status is not None:
            sql, params = sql + " AND status = ?", [*params, status]
        return [video_row(r) for r in self._query(sql + " ORDER BY path", params)]

    def video(self, video_id: int) -> VideoRow | None:
        rows = self._query("SELECT * FROM videos WHERE id = ?", (video_id,))
        return video_row(rows[0]) if rows else None

    def video_by_path(self, path: Path | str) -> VideoRow | None:
        rows = self._query("SELECT * FROM videos WHERE path = ?", (str(path),))
        return video_row(rows[0]) if rows else None

    def select_video_ids(self, where: str, params: Sequence[object]) -> set[int]:
        """Ids of videos matching a WHERE clause over ``videos`` (built by ``engine.search.filters``)."""
        return {int(r[0]) for r in self._query(f"SELECT id FROM videos WHERE {where}", params)}

    def add_video(self, folder_id: int, path: Path, size: int, mtime_ns: int, fingerprint: str) -> int:
        now = time.time()
        with self.transaction() as db:
            cur = db.execute(
                "INSERT INTO videos (folder_id, path, size, mtime_ns, fingerprint, added_at, updated_at)"
                " VALUES (?, ?, ?, ?, ?, ?, ?)",
                (folder_id, str(path), size, mtime_ns, fingerprint, now, now),
            )
            return int(cur.lastrowid or 0)

    def update_video_file(
        self,
        video_id: int,
        path: Path,
        size: int,
        mtime_ns: int,
        fingerprint: str,
        *,
        folder_id: int | None = None,
    ) -> RemovedKeys:
        """Record a changed or moved file. A new fingerprint drops the old vectors (returned) and makes the
        video pending again; a move with the same fingerprint keeps them."""
        with self.transaction() as db:
            old = db.execute("SELECT fingerprint, folder_id FROM videos WHERE id = ?", (video_id,)).fetchone()
            if old is None:
                raise CatalogError(f"video {video_id} is not in the catalog")
            removed = RemovedKeys()
            status_sql = ""
            if old["fingerprint"] != fingerprint:
                removed = self._delete_embeddings(db, "video_id = ?", (video_id,))
                self.forget_stages(db, video_id)  # what was said and shown belongs to the old file
                status_sql = ", status = 'pending', error = NULL"
            db.execute(
                f"UPDATE videos SET path = ?, size = ?, mtime_ns = ?, fingerprint = ?, folder_id = ?,"
                f" updated_at = ?{status_sql} WHERE id = ?",
                (
                    str(path),
                    size,
                    mtime_ns,
                    fingerprint,
                    folder_id or old["folder_id"],
                    time.time(),
                    video_id,
                ),
            )
        return removed

    def set_video_info(
        self, video_id: int, *, duration: float, fps: float, width: int, height: int, codec: str
    ) -> None:
        with self.transaction() as db:
            db.execute(
                "UPDATE videos SET duration=?, fps=?, width=?, height=?, codec=?, updated_at=? WHERE id=?",
                (duration, fps, width, height, codec, time.time(), video_id),
            )

    def mark_failed(self, video_id: int, error: str) -> None:
        with self.transaction() as db:
            db.execute(
                "UPDATE videos SET status='failed', error=?, updated_at=? WHERE id=?",
                (error, time.time(), video_id),
            )

    def mark_no_video(self, video_id: int, why: str) -> None:
        """A sound file: nothing to index in pictures, not a failure (the speech stage will want it)."""
        with self.transaction() as db:
            db.execute(
                "UPDATE videos SET status='no_video', error=?, updated_at=? WHERE id=?",
                (why, time.time(), video_id),
            )

    def remove_videos(self, video_ids: Sequence[int]) -> RemovedKeys:
        """Delete videos (files gone) and their vectors' rows; returns the keys to mark deleted."""
        if not video_ids:
            return RemovedKeys()
        with self.transaction() as db:
            removed = self._delete_embeddings(
                db, "video_id IN (SELECT value FROM json_each(?))", (json_ids(video_ids),)
            )
            db.execute("DELETE FROM videos WHERE id IN (SELECT value FROM json_each(?))", (json_ids(video_ids),))
        return removed

    # -- summaries --------------------------------------------------------------------------------------

    def folder_counts(
        self, model_id: str, sample_every_s: float, window_s: float, stride_s: float
    ) -> list[FolderCounts]:
        """Per folder, its videos counted for one model and its sampling settings: ``indexed`` (searchable with
        it, up to date), ``pending`` (what the next ``index`` run embeds), ``failed`` (skipped until the file
        changes or is retried); the three add up to ``videos``; sound files (status 'no_video') are counted
        apart, as ``no_video``. For ``scenefind status``, the library view and the status bar, so a library
        indexed with another model shows as not indexed with this one."""
        sql = (
            "SELECT f.path, COUNT(v.id) - COALESCE(SUM(v.status = 'no_video'), 0) AS videos,"
            " SUM(v.current) AS indexed, SUM(v.status = 'no_video') AS no_video,"
            " SUM(v.status = 'failed' AND NOT v.current) AS failed,"
            " SUM(v.status NOT IN ('failed', 'no_video') AND NOT v.current) AS pending,"
            " COALESCE(SUM(CASE WHEN v.status != 'no_video' THEN v.duration END), 0) AS seconds,"
            " SUM(v.status NOT IN ('no_video', 'failed') AND v.duration IS NULL) AS unread"
            f" FROM folders f LEFT JOIN (SELECT v.*, {UP_TO_DATE} AS current FROM videos v) v"
            " ON v.folder_id = f.id GROUP BY f.id ORDER BY f.path"
        )
        rows = self._query(sql, (model_id, sample_every_s, window_s, stride_s))
        return [
            FolderCounts(
                path=str(r["path"]),
                videos=int(r["videos"] or 0),
                indexed=int(r["indexed"] or 0),
                pending=int(r["pending"] or 0),
                failed=int(r["failed"] or 0),
                seconds=float(r["seconds"] or 0.0),
                no_video=int(r["no_video"] or 0),
                unread=int(r["unread"] or 0),
            )
            for r in rows
        ]
