"""Query vectors on disk, by model and text, so a repeated ``scenefind search`` runs no model at all.

A CLI search is a new process each time: encoding its text means importing torch and open_clip and loading the
text tower (seconds), while the rest of the search takes a fraction of that. ``CachedTexts`` wraps an encoder
and answers ``encode_texts`` from ``TextVectorCache`` where it can; with a ``LazyEncoder`` inside, a cache hit
never builds the model.

The cache is one SQLite file in the user cache (``engine.paths.text_vectors_file``), shared by all libraries:
WAL mode and a busy timeout let several searches read and write at once (each write is one short
transaction; a writer that cannot get the lock in time skips caching, never the search). A row is keyed by a
hash of the model id, the text and the versions that shape the vector (so the queries themselves are not
written down), and carries its width and a checksum; a row that fails either, or a file that is not a
readable database, is a miss (the file is then started afresh). A file that is only busy (another process holds
its lock past the timeout, or is switching it to WAL) is a miss too, but is never taken for damage: deleting it
would throw away every other search's vectors (a CI run once lost 59 of 240 rows that way); the next call tries
again. The oldest rows go beyond ``MAX_ROWS``.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import sqlite3
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from engine.models.base import Encoder
from engine.paths import text_vectors_file

log = logging.getLogger(__name__)

CACHE_VERSION = 1  # bump when the way texts become vectors changes (cleaning, tokenising, normalising)
MAX_ROWS = 20_000  # about 40 MB of 512-d vectors
_SCHEMA = (
    "CREATE TABLE IF NOT EXISTS vectors (key BLOB PRIMARY KEY, dim INTEGER NOT NULL, vector BLOB NOT NULL,"
    " digest BLOB NOT NULL, added REAL NOT NULL) WITHOUT ROWID"
)


def _versions() -> str:
    """The package versions a text vector depends on besides the model (its tokenizer and code)."""
    from importlib import metadata

    parts = [f"scenefind-cache={CACHE_VERSION}"]
    for dist in ("open_clip_torch", "torch"):
        with contextlib.suppress(metadata.PackageNotFoundError):
            parts.append(f"{dist}={metadata.version(dist)}")
    return ";".join(parts)


def _is_busy(exc: BaseException) -> bool:
    """Whether ``exc`` says the file is locked by someone else (transient), as opposed to damaged."""
    code = getattr(exc, "sqlite_errorcode", 0) & 0xFF  # extended codes (SQLITE_BUSY_RECOVERY...) keep the base low
    return isinstance(exc, sqlite3.OperationalError) and code in (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED)


def _digest(blob: bytes) -> bytes:
    return hashlib.blake2b(blob, digest_size=16).digest()


class TextVectorCache:
    """Text vectors by (model id, text) in one SQLite file; every failure is a miss, never an error."""

    def __init__(self, path: Path | None = None, *, max_rows: int = MAX_ROWS, timeout: float = 2.0) -> None:
        self.path = Path(path) if path is not None else text_vectors_file()
        self.max_rows = max_rows
        self.timeout = timeout  # seconds a statement waits for another process's lock before it is a miss
        self._db: sqlite3.Connection | None = None
        self._broken = False
        self._versions: str | None = None
        self._lock = threading.Lock()

    def key(self, model_id: str, text: str) -> bytes:
        if self._versions is None:
            self._versions = _versions()
        return hashlib.sha256("\0".join((self._versions, model_id, text)).encode("utf-8")).digest()

    def _connect(self) -> sqlite3.Connection | None:
        if self._db is None and not self._broken:
            try:
                self._db = self._open()
            except sqlite3.DatabaseError as exc:
                if _is_busy(exc):  # another process has it locked: a miss now, another try on the next call
                    log.info("%s: text vector cache busy (%s); not used this time", self.path, exc)
                    return None
                log.warning("%s: unusable text vector cache (%s); starting a new one", self.path, exc)
                with contextlib.suppress(OSError):  # not a database, or malformed: start afresh, once
                    for suffix in ("", "-wal", "-shm"):
                        Path(f"{self.path}{suffix}").unlink(missing_ok=True)
                try:
                    self._db = self._open()
                except (sqlite3.DatabaseError, OSError) as again:
                    log.warning("%s: no text vector cache this time (%s)", self.path, again)
                    self._broken = not _is_busy(again)
            except OSError as exc:  # the folder cannot be made or read: searches go on without a cache
                log.warning("%s: no text vector cache (%s)", self.path, exc)
                self._broken = True
        return self._db

    def _open(self) -> sqlite3.Connection:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        db = sqlite3.connect(self.path, timeout=self.timeout, isolation_level=None, check_same_thread=False)
        try:
            if db.execute("PRAGMA journal_mode").fetchone()[0] != "wal":  # switching takes a lock; skip it when done
                db.execute("PRAGMA journal_mode=WAL")
            db.execute(_SCHEMA)
            db.execute("SELECT COUNT(*) FROM vectors").fetchone()  # a damaged file fails here, not mid-search
        except BaseException:
            db.close()
            raise
        return db

    def get(self, model_id: str, dim: int, texts: Sequence[str]) -> dict[str, np.ndarray]:
        """The cached vectors of those ``texts`` it has (``dim`` wide, checksum intact), by text."""
        with self._lock:
            db = self._connect()
            if db is None or not texts:
                return {}
            keys = {self.key(model_id, t): t for t in texts}
            marks = ",".join("?" * len(keys))
            try:
                rows = db.execute(f"SELECT key, dim, vector, digest FROM vectors WHERE key IN ({marks})", list(keys))
                found = rows.fetchall()
            except sqlite3.DatabaseError as exc:
                log.warning("%s: reading the text vector cache failed (%s)", self.path, exc)
                return {}
            out: dict[str, np.ndarray] = {}
            bad: list[bytes] = []
            for key, width, blob, digest in found:
                vector = np.frombuffer(blob, dtype="<f4") if len(blob) == 4 * dim else None
                if width != dim or vector is None or _digest(blob) != digest or not np.isfinite(vector).all():
                    bad.append(key)
                    continue
                out[keys[key]] = vector.astype(np.float32)
            if bad:  # a torn or tampered row: drop it, it is written again on the next miss
                with contextlib.suppress(sqlite3.DatabaseError):
                    db.executemany("DELETE FROM vectors WHERE key = ?", [(k,) for k in bad])
            return out

    def put(self, model_id: str, texts: Sequence[str], vectors: np.ndarray) -> None:
        """Remember ``vectors`` (one row per text); skipped quietly when the file is busy or unwritable."""
        with self._lock:
            db = self._connect()
            if db is None or not len(texts):
                return
            now = time.time()
            rows = []
            for text, vector in zip(texts, np.asarray(vectors, dtype="<f4"), strict=True):
                blob = np.ascontiguousarray(vector).tobytes()
                rows.append((self.key(model_id, text), len(vector), blob, _digest(blob), now))
            try:
                db.execute("BEGIN IMMEDIATE")
                try:
                    db.executemany("INSERT OR REPLACE INTO vectors VALUES (?, ?, ?, ?, ?)", rows)
                    extra = db.execute("SELECT COUNT(*) FROM vectors").fetchone()[0] - self.max_rows
                    if extra > 0:
                        db.execute(
                            "DELETE FROM vectors WHERE key IN (SELECT key FROM vectors ORDER BY added LIMIT ?)",
                            (extra,),
                        )
                    db.execute("COMMIT")
                except BaseException:
                    db.execute("ROLLBACK")
                    raise
            except sqlite3.DatabaseError as exc:  # locked past the timeout, disk full, read-only: no caching
                log.info("%s: text vectors not cached (%s)", self.path, exc)

    def close(self) -> None:
        with self._lock:
            if self._db is not None:
                self._db.close()
                self._db = None


class CachedTexts:
    """An ``Encoder`` whose ``encode_texts`` answers from a ``TextVectorCache`` first and encodes only the
    texts it misses (then remembers them); everything else is the wrapped encoder's."""

    def __init__(self, encoder: Encoder, cache: TextVectorCache) -> None:
        self.encoder, self.cache = encoder, cache

    def encode_texts(self, texts: Sequence[str]) -> np.ndarray:
        texts = list(texts)
        model_id, dim = self.encoder.model_id, self.encoder.dim
        known = self.cache.get(model_id, dim, texts)
        missing = list(dict.fromkeys(t for t in texts if t not in known))
        if missing:
            fresh = np.asarray(self.encoder.encode_texts(missing), dtype=np.float32)
            self.cache.put(model_id, missing, fresh)
            known.update(zip(missing, fresh, strict=True))
        return np.stack([known[t] for t in texts]) if texts else np.zeros((0, dim), np.float32)

    def __getattr__(self, name: str) -> Any:
        if name in {"encoder", "cache"}:
            raise AttributeError(name)
        return getattr(self.encoder, name)
