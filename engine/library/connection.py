"""One SQLite connection to a library's catalog: opening, WAL, transactions and schema migrations.

WAL mode so readers (search, the GUI) never block the one writer (the indexer); ``synchronous=FULL`` so a
committed video survives a power cut, not only a killed process. Every query goes through one lock, so a
``Catalog`` can be shared between threads. The tables' queries build on this class (``engine.library.catalog``,
``engine.library.embeddings``, ``engine.library.job_history``).
"""

from __future__ import annotations

import contextlib
import sqlite3
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Self

from engine.library.rows import CatalogError
from engine.library.schema import MIGRATIONS, SCHEMA_VERSION, statements


class CatalogConnection:
    """The connection and its plumbing; ``Catalog`` adds the tables' queries."""

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

    def __enter__(self) -> Self:
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
        self._db.execute("PRAGMA foreign_keys = OFF")  # a table rebuild must not cascade (no-op in a transaction)
        try:
            while version < SCHEMA_VERSION:
                with self.transaction() as db:
                    for statement in statements(MIGRATIONS[version]):
                        db.execute(statement)
                    if db.execute("PRAGMA foreign_key_check").fetchone() is not None:
                        raise CatalogError(f"{self.path}: upgrading the catalog to schema {version + 1} broke it")
                    version += 1
                    db.execute(f"PRAGMA user_version = {version}")
        finally:
            self._db.execute("PRAGMA foreign_keys = ON")

    def integrity_check(self) -> list[str]:
        """SQLite's own check; ``["ok"]`` when healthy."""
        return [row[0] for row in self._query("PRAGMA integrity_check")]
