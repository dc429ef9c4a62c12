"""``Library``: one data folder (catalog, indexes, settings) and the operations the CLI and GUI share.

Writes (adding and removing folders, indexing) take an exclusive lock file first: one writer per library at a
time, across processes. The lock is an OS file lock (``filelock``), so a writer that is killed releases it and
there is no stale lock to clean up. Reads (status, search) need no lock: SQLite WAL gives readers a consistent
snapshot while the writer works.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path

from filelock import FileLock, Timeout

from engine.index.stores import ModelStores
from engine.indexing.pipeline import Indexer, IndexReport
from engine.indexing.ray_options import RayOptions
from engine.indexing.stages import run_stages
from engine.jobs import CancelToken, ProgressCallback, wrap_progress
from engine.library.catalog import Catalog, FolderCounts, FolderRow
from engine.models.base import Encoder
from engine.models.identity import model_identity
from engine.paths import LibraryPaths
from engine.settings import EngineSettings
from engine.settings import load as load_settings


class LibraryBusy(RuntimeError):
    """Another process is writing to this library."""


class Library:
    """A library folder opened for use. Cheap to open: models load only when an encoder is asked for."""

    def __init__(self, root: Path | None = None, settings: EngineSettings | None = None) -> None:
        self.paths = (LibraryPaths(Path(root).expanduser().resolve()) if root else LibraryPaths.default()).ensure()
        self.settings = settings if settings is not None else load_settings(self.paths.settings)
        self.catalog = Catalog(self.paths.catalog)

    def close(self) -> None:
        self.catalog.close()

    def __enter__(self) -> Library:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @contextlib.contextmanager
    def writing(self) -> Iterator[None]:
        """Hold the library's writer lock, or raise ``LibraryBusy`` at once."""
        lock = FileLock(str(self.paths.lock), timeout=0)
        try:
            lock.acquire()
        except Timeout as exc:
            raise LibraryBusy(
                f"{self.paths.root}: another Scenefind process is indexing or changing this library; "
                "try again when it has finished"
            ) from exc
        try:
            yield
        finally:
            lock.release()

    def encoder(self, model: str | None = None, *, lazy: bool = False) -> Encoder:
        """The encoder named by ``model`` or the settings (weights load lazily, on first use), pooling as the
        settings say (``pooling``, ``head_windows``: they only matter to models with a temporal head).

        ``lazy``: where the model's id can be told from its name and this library was indexed with it before,
        a ``LazyEncoder`` that imports and builds the model only when something must be encoded (a no-op
        ``index``, a search with a cached query vector); otherwise the encoder itself, which also checks the
        name."""
        from engine.models.lazy import LazyEncoder

        name = model or self.settings.model
        known = model_identity(name) if lazy else None
        dim = self.catalog.model_dim(known) if known else None
        if known and dim:
            return LazyEncoder(known, dim, lambda: self.encoder(name))
        from engine.models.registry import create_encoder

        s = self.settings
        return create_encoder(
            name,
            device=s.device,
            batch_size=s.batch_size,
            pooling=s.pooling,
            head_windows=s.head_windows,
        )

    def model_id(self, model: str | None = None) -> str:
        """The id of the model named by ``model`` or the settings, without importing torch where the name says
        it (see ``engine.models.identity``); otherwise from the encoder, which checks the name."""
        name = model or self.settings.model
        return model_identity(name) or self.encoder(name).model_id

    def folder_counts(self, model: str | None = None) -> list[FolderCounts]:
        """Per folder: its videos indexed with this model (and these sampling settings), pending, failed."""
        s = self.settings
        return self.catalog.folder_counts(
            self.model_id(model), s.sample_every_s, s.segment_window_s, s.segment_stride_s
        )

    def add_folder(self, path: Path) -> FolderRow:
        with self.writing():
            folder, _ = self.catalog.add_folder(path)
        return folder

    def remove_folder(self, path: Path) -> int:
        """Forget a folder; returns how many vectors were dropped. Open indexes catch up by reconciliation."""
        with self.writing():
            removed = self.catalog.remove_folder(path)
            for model_id in removed.by_model:
                dim = self.catalog.model_dim(model_id)
                folder = self.paths.index_dir(model_id)
                if dim and folder.exists():
                    stores = ModelStores.open(folder, self.catalog, model_id, dim, self.settings)
                    stores.save(self.catalog)
                    stores.close()
        return removed.count()

    def retry_failed(self) -> int:
        """Make failed videos pending again (after the user fixed a codec or a file), for every stage."""
        self.catalog.retry_failed_stages()
        with self.catalog.transaction() as db:
            return db.execute("UPDATE videos SET status='pending', error=NULL WHERE status='failed'").rowcount

    def index(
        self,
        encoder: Encoder | None = None,
        *,
        ray: RayOptions | None = None,
        progress: ProgressCallback | None = None,
        cancel: CancelToken | None = None,
    ) -> IndexReport:
        """Scan every folder and embed what is new or changed (see ``engine.indexing.pipeline``), then run the
        speech and on-screen text stages the settings turn on (``engine.indexing.stages``); search works on
        what each stage has committed while the next one runs.

        With ``ray``, Ray workers decode and embed while this process commits (``engine.indexing.ray_indexer``);
        ``ray_options()`` gives the settings' choice. Without it, Ray is never imported."""
        with self.writing():
            if ray is None:
                indexer = Indexer(self.paths, self.catalog, encoder or self.encoder(), self.settings)
            else:
                from engine.indexing.ray_indexer import RayIndexer

                encoder = encoder or self.encoder(ray.model or None)
                indexer = RayIndexer(self.paths, self.catalog, encoder, self.settings, ray)
            stages = self.settings.speech or self.settings.screen_text
            result = indexer.run(progress=wrap_progress(progress, 0.0, 0.5 if stages else 1.0), cancel=cancel)
            later = wrap_progress(progress, 0.5, 1.0)
            result.stages = run_stages(self.catalog, self.settings, progress=later, cancel=cancel)
            return result

    def ray_options(self, address: str | None = None, **options: object) -> RayOptions | None:
        """Ray options for ``address``, else for the settings' ``ray_address``; None means a local run."""
        return RayOptions.for_address(self.settings.ray_address if address is None else address, **options)
