"""What the desktop app needs from the engine, as one small protocol with a real implementation.

Views receive an ``EngineApi`` in their constructor (never a global), so GUI tests pass a fake engine and
the real one is only built by ``desktop.app``. ``RealEngine`` imports the heavy engine modules (OpenCV,
torch, open_clip) inside its methods, which run on worker threads, so the window opens fast.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from engine.jobs import CancelToken, ProgressCallback
from engine.search.query import Query
from engine.search.results import SearchResults
from engine.settings import EngineSettings

if TYPE_CHECKING:
    from engine.library.library import Library
    from engine.train.data import TrainItem
    from engine.train.negatives import CaptionNegatives, NegativeReport
    from engine.train.trainer import EpochReport, TrainConfig, TrainResult


@dataclass(frozen=True)
class FolderStatus:
    """One library folder as the library view shows it."""

    path: str
    videos: int
    indexed: int
    pending: int
    failed: int
    seconds: float


@dataclass(frozen=True)
class IndexSummary:
    """What an indexing run did, in the terms the GUI reports."""

    indexed: int
    failed: list[tuple[str, str]]
    removed: int = 0
    elapsed_s: float = 0.0


@dataclass(frozen=True)
class ModelChoice:
    name: str
    description: str


class EngineApi(Protocol):
    """Everything a view may ask of the engine. Slow methods take ``progress``/``cancel`` and run in jobs."""

    def library_root(self) -> Path: ...
    def settings(self) -> EngineSettings: ...
    def save_settings(self, settings: EngineSettings) -> None: ...
    def folders(self) -> list[FolderStatus]: ...
    def failed_files(self) -> list[tuple[str, str]]: ...
    def add_folder(self, path: Path) -> None: ...
    def remove_folder(self, path: Path) -> None: ...
    def retry_failed(self) -> int: ...
    def index(
        self,
        *,
        model: str | None = None,
        progress: ProgressCallback | None = None,
        cancel: CancelToken | None = None,
    ) -> IndexSummary: ...
    def search(
        self, query: Query, *, progress: ProgressCallback | None = None, cancel: CancelToken | None = None
    ) -> SearchResults: ...
    def thumbnail(self, video: str, t: float) -> Path: ...
    def export_clip(
        self,
        video: str,
        start: float,
        end: float,
        out: Path,
        *,
        progress: ProgressCallback | None = None,
        cancel: CancelToken | None = None,
    ) -> Path: ...
    def export_markers(self, moments: Sequence[Any], path: Path, *, title: str) -> Path: ...
    def list_models(self) -> list[ModelChoice]: ...
    def watch(self, on_change: Callable[[], object], *, debounce_s: float, stop: threading.Event) -> None: ...
    def close(self) -> None: ...
    # -- training (the Training tab) -------------------------------------------------------------------
    def training_folder(self) -> Path: ...
    def train_defaults(self) -> TrainConfig: ...
    def load_training_data(self, path: Path) -> list[TrainItem]: ...
    def generate_negatives(
        self,
        captions: Sequence[str],
        *,
        per_component: int = 4,
        progress: ProgressCallback | None = None,
        cancel: CancelToken | None = None,
    ) -> NegativeReport: ...
    def write_negatives(self, items: Sequence[CaptionNegatives], path: Path) -> Path: ...
    def latest_checkpoint(self, out: Path) -> Path | None: ...
    def train(
        self,
        config: TrainConfig,
        *,
        on_epoch: Callable[[EpochReport], None] | None = None,
        progress: ProgressCallback | None = None,
        cancel: CancelToken | None = None,
    ) -> TrainResult: ...


class RealEngine:
    """``EngineApi`` over one ``engine.library.Library``; safe to call from worker threads."""

    def __init__(self, library: Library) -> None:
        self.library = library
        self._lock = threading.RLock()  # one search at a time; searcher reset after indexing
        self._searcher: Any = None
        self._encoders: dict[str, Any] = {}

    @classmethod
    def open(cls, root: Path | None = None) -> RealEngine:
        from engine.library.library import Library

        return cls(Library(root))

    def library_root(self) -> Path:
        return self.library.paths.root

    def settings(self) -> EngineSettings:
        return self.library.settings

    def save_settings(self, settings: EngineSettings) -> None:
        from engine.settings import save

        save(settings, self.library.paths.settings)
        with self._lock:  # model, device or sampling may have changed: rebuild the searcher lazily
            self.library.settings = settings
            self._reset_searcher()

    def folders(self) -> list[FolderStatus]:
        return [
            FolderStatus(
                str(row["path"]),
                int(row["videos"]),  # type: ignore[call-overload]
                int(row["indexed"]),  # type: ignore[call-overload]
                int(row["pending"]),  # type: ignore[call-overload]
                int(row["failed"]),  # type: ignore[call-overload]
                float(row["seconds"]),  # type: ignore[arg-type]
            )
            for row in self.library.catalog.folder_counts()
        ]

    def failed_files(self) -> list[tuple[str, str]]:
        return [(v["path"], v["error"] or "unknown error") for v in self.library.catalog.videos(status="failed")]

    def add_folder(self, path: Path) -> None:
        self.library.add_folder(path)

    def remove_folder(self, path: Path) -> None:
        self.library.remove_folder(path)
        with self._lock:
            self._reset_searcher()

    def retry_failed(self) -> int:
        return self.library.retry_failed()

    def index(
        self,
        *,
        model: str | None = None,
        progress: ProgressCallback | None = None,
        cancel: CancelToken | None = None,
    ) -> IndexSummary:
        try:
            report = self.library.index(self._encoder(model), progress=progress, cancel=cancel)
        finally:
            with self._lock:
                self._reset_searcher()  # its read-only stores predate the new vectors
        return IndexSummary(report.indexed, list(report.failed), report.removed, report.elapsed_s)

    def search(
        self, query: Query, *, progress: ProgressCallback | None = None, cancel: CancelToken | None = None
    ) -> SearchResults:
        with self._lock:
            if self._searcher is None:
                from engine.search.searcher import Searcher

                self._searcher = Searcher(self.library, self._encoder(None))
            if cancel is not None:
                cancel.raise_if_cancelled()
            return self._searcher.search(query)

    def thumbnail(self, video: str, t: float) -> Path:
        from engine.media.thumbnails import thumbnail

        return thumbnail(video, t)

    def export_clip(
        self,
        video: str,
        start: float,
        end: float,
        out: Path,
        *,
        progress: ProgressCallback | None = None,
        cancel: CancelToken | None = None,
    ) -> Path:
        from engine.media.export import export_clip

        return export_clip(video, start, end, out, progress=progress, cancel=cancel)

    def export_markers(self, moments: Sequence[Any], path: Path, *, title: str) -> Path:
        from engine.export.markers import markers_from, write_markers

        return write_markers(markers_from(moments), path, title=title)

    def list_models(self) -> list[ModelChoice]:
        from engine.models.registry import list_models

        return [ModelChoice(m.name, m.description + (" (downloaded)" if m.cached else "")) for m in list_models()]

    def watch(self, on_change: Callable[[], object], *, debounce_s: float, stop: threading.Event) -> None:
        from engine.indexing.watch import watch_folders

        folders = [Path(f["path"]) for f in self.library.catalog.folders()]
        watch_folders(folders, debounce_s, on_change, stop=stop)

    def close(self) -> None:
        with self._lock:
            self._reset_searcher()
        self.library.close()

    # -- training: thin calls into engine.train (imported here: torch and spaCy are heavy) -------------

    def training_folder(self) -> Path:
        return self.library.paths.root / "training"

    def train_defaults(self) -> TrainConfig:
        from engine.train.trainer import TrainConfig

        return TrainConfig(model=self.library.settings.model)

    def load_training_data(self, path: Path) -> list[TrainItem]:
        from engine.train.data import load_training_data

        return load_training_data(path)

    def generate_negatives(
        self,
        captions: Sequence[str],
        *,
        per_component: int = 4,
        progress: ProgressCallback | None = None,
        cancel: CancelToken | None = None,
    ) -> NegativeReport:
        """With the local LLM when its file is already downloaded, else the rule-based swap alone (the
        Training tab never starts a 1 GB download on its own)."""
        from engine.train.llm import DEFAULT_MODEL, default_model_cached, ensure_model
        from engine.train.negatives import generate_negatives

        llm = ensure_model(DEFAULT_MODEL) if default_model_cached() else None
        return generate_negatives(captions, llm=llm, per_component=per_component, progress=progress, cancel=cancel)

    def write_negatives(self, items: Sequence[CaptionNegatives], path: Path) -> Path:
        from engine.train.negatives import write_negatives

        return write_negatives(list(items), path)

    def latest_checkpoint(self, out: Path) -> Path | None:
        from engine.train.trainer import latest_checkpoint

        return latest_checkpoint(out)

    def train(
        self,
        config: TrainConfig,
        *,
        on_epoch: Callable[[EpochReport], None] | None = None,
        progress: ProgressCallback | None = None,
        cancel: CancelToken | None = None,
    ) -> TrainResult:
        from engine.train.trainer import train

        return train(config, progress=progress, cancel=cancel, on_epoch=on_epoch)

    def _encoder(self, model: str | None) -> Any:
        name = model or self.library.settings.model
        with self._lock:
            if name not in self._encoders:
                self._encoders[name] = self.library.encoder(name)
            return self._encoders[name]

    def _reset_searcher(self) -> None:
        if self._searcher is not None:
            self._searcher.close()
            self._searcher = None


def warm_up() -> None:
    """Import the heavy engine modules (OpenCV, torch, open_clip) once, on a worker thread right after the
    window opens: an import holds the GIL for a few hundred ms, which would otherwise freeze the window
    when the first indexing or search job starts."""
    import engine.library.library
    import engine.models.registry
    import engine.search.searcher  # noqa: F401
