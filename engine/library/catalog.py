"""The SQLite catalog: folders, videos, models, embeddings (with their segments and frames) and jobs.

WAL mode so readers (search, the GUI) never block the one writer (the indexer); ``synchronous=FULL`` so a
committed video survives a power cut, not only a killed process. Every change that adds or removes vectors
bumps the model's ``generation`` in the same transaction; an index saved at another generation is reconciled
against the catalog when it is opened (see ``engine.index.stores``). The catalog is the source of truth.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal, TypedDict

import numpy as np

from engine.library.schema import MIGRATIONS, SCHEMA_VERSION

Grain = Literal["video", "segment", "frame"]
GRAINS: tuple[Grain, ...] = ("video", "segment", "frame")
_GRAIN_SQL: dict[Grain, str] = {
    "video": "SELECT e.id FROM embeddings e WHERE e.model = ?",
    "segment": "SELECT s.id FROM segments s JOIN embeddings e ON e.id = s.embedding_id WHERE e.model = ?",
    "frame": "SELECT f.id FROM frames f JOIN embeddings e ON e.id = f.embedding_id WHERE e.model = ?",
}


class CatalogError(RuntimeError):
    """A catalog operation was refused or the database is unusable; the message says why."""


class FolderRow(TypedDict):
    id: int
    path: str
    added_at: float


class VideoRow(TypedDict):
    id: int
    folder_id: int
    path: str
    size: int
    mtime_ns: int
    fingerprint: str
    duration: float | None
    fps: float | None
    width: int | None
    height: int | None
    codec: str | None
    status: str
    error: str | None


class JobRow(TypedDict):
    id: int
    kind: str
    model_id: str | None
    status: str
    pid: int | None
    started_at: float
    finished_at: float | None
    total: int
    done: int
    failed: int
    message: str | None


@dataclass
class RemovedKeys:
    """Vector keys whose rows were deleted, per model id and grain, to mark deleted in open indexes."""

    by_model: dict[str, dict[Grain, list[int]]] = field(default_factory=dict)

    def add(self, model_id: str, grain: Grain, keys: Sequence[int]) -> None:
        self.by_model.setdefault(model_id, {g: [] for g in GRAINS})[grain].extend(keys)

    def merge(self, other: RemovedKeys) -> None:
        for model_id, grains in other.by_model.items():
            for grain, keys in grains.items():
                self.add(model_id, grain, keys)

    def count(self) -> int:
        return sum(len(k) for grains in self.by_model.values() for k in grains.values())


@dataclass(frozen=True)
class NewEmbedding:
    """What the indexer commits for one video: its sampled frames and pooled segments."""

    video_id: int
    fingerprint: str
    sample_every_s: float
    segment_window_s: float
    segment_stride_s: float
    frame_times: Sequence[float]
    frame_indices: Sequence[int]
    frame_is_cut: Sequence[bool]
    segments: Sequence[tuple[float, float]]


@dataclass(frozen=True)
class EmbeddingKeys:
    """Keys of the rows just inserted: one video key, one per segment, one per frame (in input order)."""

    video: int
    segments: list[int]
    frames: list[int]


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


class Catalog:
    """One connection to a library's catalog. Safe to share between threads (calls are serialised)."""

    def __init__(self, path: Path, *, readonly: bool = False) -> None:
        self.path = Path(path)
        self.readonly = readonly
        if readonly and not self.path.exists():
            raise CatalogError(f"{self.path}: no catalog here (add a folder first)")
        self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            uri = f"file:{self.path}?mode=ro" if readonly else f"file:{self.path}"
            self._db = sqlite3.connect(uri, uri=True, timeout=30, isolation_level=None, check_same_thread=False)
            self._db.row_factory = sqlite3.Row
            self._db.execute("PRAGMA foreign_keys = ON")
            self._db.execute("PRAGMA busy_timeout = 30000")
            if not readonly:
                self._db.execute("PRAGMA journal_mode = WAL")
                self._db.execute("PRAGMA synchronous = FULL")
        except sqlite3.OperationalError as exc:  # disk full, I/O error, no permission: not damage
            raise CatalogError(
                f"{self.path}: cannot open the catalog ({exc}); is the disk full or unreadable?"
            ) from exc
        except sqlite3.DatabaseError as exc:
            raise CatalogError(f"{self.path}: not a Scenefind catalog or damaged ({exc})") from exc
        self._lock = threading.RLock()
        self._migrate()

    # -- plumbing ---------------------------------------------------------------------------------------

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def __enter__(self) -> Catalog:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @contextlib.contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """``BEGIN IMMEDIATE`` … ``COMMIT``; any exception rolls back everything done inside.

        SQLite's operational errors (disk full, I/O error, locked) become ``CatalogError`` naming the file;
        a ROLLBACK that fails because SQLite already rolled back (it does on I/O errors) never hides the cause.
        """
        with self._lock:
            try:
                self._db.execute("BEGIN IMMEDIATE")
                try:
                    yield self._db
                except BaseException:
                    with contextlib.suppress(sqlite3.Error):
                        self._db.execute("ROLLBACK")
                    raise
                try:
                    self._db.execute("COMMIT")
                except sqlite3.Error:
                    with contextlib.suppress(sqlite3.Error):
                        self._db.execute("ROLLBACK")
                    raise
            except sqlite3.OperationalError as exc:
                hint = "another program holds it" if "locked" in str(exc) else "is the disk full or read-only?"
                raise CatalogError(f"{self.path}: cannot write the catalog ({exc}); {hint}") from exc

    def _query(self, sql: str, params: Sequence[object] = ()) -> list[sqlite3.Row]:
        with self._lock:
            return self._db.execute(sql, params).fetchall()

    @property
    def schema_version(self) -> int:
        return int(self._query("PRAGMA user_version")[0][0])

    def _migrate(self) -> None:
        try:
            version = self.schema_version
        except sqlite3.DatabaseError as exc:
            raise CatalogError(f"{self.path}: not a Scenefind catalog or damaged ({exc})") from exc
        if version > SCHEMA_VERSION:
            raise CatalogError(
                f"{self.path}: catalog schema {version} was written by a newer Scenefind (this release "
                f"reads up to {SCHEMA_VERSION}); upgrade Scenefind"
            )
        if version == SCHEMA_VERSION:
            return
        if self.readonly:
            raise CatalogError(f"{self.path}: catalog schema {version} needs an upgrade; open it for writing once")
        while version < SCHEMA_VERSION:
            with self.transaction() as db:
                for statement in filter(str.strip, MIGRATIONS[version].split(";")):
                    db.execute(statement)
                version += 1
                db.execute(f"PRAGMA user_version = {version}")

    def integrity_check(self) -> list[str]:
        """SQLite's own check; ``["ok"]`` when healthy."""
        return [row[0] for row in self._query("PRAGMA integrity_check")]

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
            removed = self._delete_embeddings(db, "video_id IN (SELECT value FROM json_each(?))", (_json_ids(ids),))
            db.execute("DELETE FROM folders WHERE id = ?", (rows[0]["id"],))
        return removed

    # -- videos -----------------------------------------------------------------------------------------

    def videos(self, *, folder_id: int | None = None, status: str | None = None) -> list[VideoRow]:
        sql, params = "SELECT * FROM videos WHERE 1=1", []
        if folder_id is not None:
            sql, params = sql + " AND folder_id = ?", [*params, folder_id]
        if status is not None:
            sql, params = sql + " AND status = ?", [*params, status]
        return [_video(r) for r in self._query(sql + " ORDER BY path", params)]

    def video(self, video_id: int) -> VideoRow | None:
        rows = self._query("SELECT * FROM videos WHERE id = ?", (video_id,))
        return _video(rows[0]) if rows else None

    def video_by_path(self, path: Path | str) -> VideoRow | None:
        rows = self._query("SELECT * FROM videos WHERE path = ?", (str(path),))
        return _video(rows[0]) if rows else None

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

    def remove_videos(self, video_ids: Sequence[int]) -> RemovedKeys:
        """Delete videos (files gone) and their vectors' rows; returns the keys to mark deleted."""
        if not video_ids:
            return RemovedKeys()
        with self.transaction() as db:
            removed = self._delete_embeddings(
                db, "video_id IN (SELECT value FROM json_each(?))", (_json_ids(video_ids),)
            )
            db.execute("DELETE FROM videos WHERE id IN (SELECT value FROM json_each(?))", (_json_ids(video_ids),))
        return removed

    # -- models and embeddings --------------------------------------------------------------------------

    def ensure_model(self, model_id: str, dim: int) -> int:
        """Row id of a model, registering it on first use; a known id with another width is refused."""
        rows = self._query("SELECT id, dim FROM models WHERE model_id = ?", (model_id,))
        if rows:
            if rows[0]["dim"] != dim:
                raise CatalogError(f"model {model_id} was recorded with dim {rows[0]['dim']}, now reports {dim}")
            return int(rows[0]["id"])
        with self.transaction() as db:
            cur = db.execute(
                "INSERT INTO models (model_id, dim, created_at) VALUES (?, ?, ?)",
                (model_id, dim, time.time()),
            )
            return int(cur.lastrowid or 0)

    def models(self) -> list[dict[str, object]]:
        sql = (
            "SELECT m.model_id, m.dim, m.generation, COUNT(e.id) AS videos FROM models m"
            " LEFT JOIN embeddings e ON e.model = m.id GROUP BY m.id ORDER BY m.model_id"
        )
        return [dict(r) for r in self._query(sql)]

    def model_dim(self, model_id: str) -> int | None:
        rows = self._query("SELECT dim FROM models WHERE model_id = ?", (model_id,))
        return int(rows[0][0]) if rows else None

    def generation(self, model_id: str) -> int:
        rows = self._query("SELECT generation FROM models WHERE model_id = ?", (model_id,))
        return int(rows[0][0]) if rows else 0

    def pending_videos(self, model_id: str, sample_every_s: float, window_s: float, stride_s: float) -> list[VideoRow]:
        """Videos that need (re-)embedding with this model and these sampling settings.

        Failed videos are skipped until their file changes (which resets them to pending)."""
        sql = (
            "SELECT v.* FROM videos v WHERE v.status != 'failed' AND NOT EXISTS ("
            " SELECT 1 FROM embeddings e JOIN models m ON m.id = e.model WHERE e.video_id = v.id"
            " AND m.model_id = ? AND e.fingerprint = v.fingerprint AND abs(e.sample_every_s - ?) < 1e-9"
            " AND abs(e.segment_window_s - ?) < 1e-9 AND abs(e.segment_stride_s - ?) < 1e-9) ORDER BY v.path"
        )
        return [_video(r) for r in self._query(sql, (model_id, sample_every_s, window_s, stride_s))]

    def insert_embedding(
        self, db: sqlite3.Connection, model_id: str, new: NewEmbedding
    ) -> tuple[EmbeddingKeys, RemovedKeys]:
        """Insert one video's rows inside the caller's transaction (``with catalog.transaction() as db``),
        replacing any older embedding of the same video and model. The caller writes the vectors under
        the returned keys and flushes them before the transaction commits."""
        model_row = db.execute("SELECT id FROM models WHERE model_id = ?", (model_id,)).fetchone()
        if model_row is None:
            raise CatalogError(f"model {model_id} is not registered (call ensure_model first)")
        model = int(model_row["id"])
        removed = self._delete_embeddings(db, "video_id = ? AND model = ?", (new.video_id, model))
        cur = db.execute(
            "INSERT INTO embeddings (video_id, model, fingerprint, sample_every_s, segment_window_s,"
            " segment_stride_s, n_frames, n_segments, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                new.video_id,
                model,
                new.fingerprint,
                new.sample_every_s,
                new.segment_window_s,
                new.segment_stride_s,
                len(new.frame_times),
                len(new.segments),
                time.time(),
            ),
        )
        emb = int(cur.lastrowid or 0)
        seg_keys = [
            int(
                db.execute(
                    "INSERT INTO segments (embedding_id, idx, start, end) VALUES (?, ?, ?, ?)", (emb, i, s, e)
                ).lastrowid
                or 0
            )
            for i, (s, e) in enumerate(new.segments)
        ]
        frame_keys = [
            int(
                db.execute(
                    "INSERT INTO frames (embedding_id, t, frame_index, is_cut) VALUES (?, ?, ?, ?)",
                    (emb, t, idx, int(cut)),
                ).lastrowid
                or 0
            )
            for t, idx, cut in zip(new.frame_times, new.frame_indices, new.frame_is_cut, strict=True)
        ]
        db.execute(
            "UPDATE videos SET status='indexed', error=NULL, updated_at=? WHERE id=?",
            (time.time(), new.video_id),
        )
        db.execute("UPDATE models SET generation = generation + 1 WHERE id = ?", (model,))
        return EmbeddingKeys(emb, seg_keys, frame_keys), removed

    def _delete_embeddings(self, db: sqlite3.Connection, where: str, params: Sequence[object]) -> RemovedKeys:
        """Delete embeddings matching ``where`` (with their segments and frames) and bump generations."""
        removed = RemovedKeys()
        rows = db.execute(
            f"SELECT e.id, e.model, m.model_id FROM embeddings e JOIN models m ON m.id = e.model WHERE {where}",
            params,
        ).fetchall()
        for row in rows:
            removed.add(row["model_id"], "video", [row["id"]])
            removed.add(
                row["model_id"],
                "segment",
                [r[0] for r in db.execute("SELECT id FROM segments WHERE embedding_id = ?", (row["id"],))],
            )
            removed.add(
                row["model_id"],
                "frame",
                [r[0] for r in db.execute("SELECT id FROM frames WHERE embedding_id = ?", (row["id"],))],
            )
            db.execute("DELETE FROM embeddings WHERE id = ?", (row["id"],))
        for model in {row["model"] for row in rows}:
            db.execute("UPDATE models SET generation = generation + 1 WHERE id = ?", (model,))
        return removed

    def live_keys(self, model_id: str, grain: Grain) -> np.ndarray:
        """Every key of this grain the catalog holds for the model (what the index must contain)."""
        model = self._query("SELECT id FROM models WHERE model_id = ?", (model_id,))
        if not model:
            return np.zeros(0, dtype=np.int64)
        rows = self._query(_GRAIN_SQL[grain], (model[0]["id"],))
        return np.array(sorted(r[0] for r in rows), dtype=np.int64)

    def embedding_for(self, video_id: int, model_id: str) -> int | None:
        rows = self._query(
            "SELECT e.id FROM embeddings e JOIN models m ON m.id = e.model WHERE e.video_id = ? AND m.model_id = ?",
            (video_id, model_id),
        )
        return int(rows[0][0]) if rows else None

    def frames_of(self, embedding_id: int) -> list[sqlite3.Row]:
        return self._query(
            "SELECT id, t, frame_index, is_cut FROM frames WHERE embedding_id = ? ORDER BY t", (embedding_id,)
        )

    def segments_of(self, embedding_id: int) -> list[sqlite3.Row]:
        return self._query(
            "SELECT id, idx, start, end FROM segments WHERE embedding_id = ? ORDER BY idx", (embedding_id,)
        )

    def videos_for_keys(self, model_id: str, grain: Grain, keys: Sequence[int]) -> dict[int, int]:
        """Map vector keys of a grain to video ids; keys no longer in the catalog are absent."""
        if not len(keys):
            return {}
        ids = _json_ids(keys)
        sql = {
            "video": "SELECT e.id, e.video_id FROM embeddings e WHERE e.id IN (SELECT value FROM json_each(?))",
            "segment": "SELECT s.id, e.video_id FROM segments s JOIN embeddings e ON e.id = s.embedding_id"
            " WHERE s.id IN (SELECT value FROM json_each(?))",
            "frame": "SELECT f.id, e.video_id FROM frames f JOIN embeddings e ON e.id = f.embedding_id"
            " WHERE f.id IN (SELECT value FROM json_each(?))",
        }[grain]
        return {int(r[0]): int(r[1]) for r in self._query(sql, (ids,))}

    # -- jobs -------------------------------------------------------------------------------------------

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

    # -- summaries --------------------------------------------------------------------------------------

    def folder_counts(self) -> list[dict[str, object]]:
        """Per folder: videos by status, for ``scenefind status`` and the library view."""
        sql = (
            "SELECT f.path, COUNT(v.id) AS videos, SUM(v.status='indexed') AS indexed,"
            " SUM(v.status='failed') AS failed,"
            " SUM(v.status='pending') AS pending, COALESCE(SUM(v.duration), 0) AS seconds FROM folders f"
            " LEFT JOIN videos v ON v.folder_id = f.id GROUP BY f.id ORDER BY f.path"
        )
        rows = [dict(r) for r in self._query(sql)]
        return [{k: v if k == "path" else (v or 0) for k, v in row.items()} for row in rows]


def _json_ids(ids: Sequence[int]) -> str:
    return "[" + ",".join(str(int(i)) for i in ids) + "]"


def _video(row: sqlite3.Row) -> VideoRow:
    return VideoRow(**{k: row[k] for k in VideoRow.__annotations__})
