"""What the desktop app needs from the engine, as one small protocol with a real implementation.

Views receive an ``EngineApi`` in their constructor (never a global), so GUI tests pass a fake engine and
the real one is only built by ``desktop.app``. ``RealEngine`` imports the heavy engine modules (OpenCV,
torch, open_clip) inside its methods, which run on worker threads, so the window opens fast.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from desktop.speech_text import STAGE_NAMES
from engine.jobs import CancelToken, ProgressCallback
from engine.library.rows import FolderCounts
from engine.search.query import Query, QueryChannel
from engine.search.results import SearchResults
from engine.settings import EngineSettings

if TYPE_CHECKING:
    from desktop.speech_text import StageStatus, VideoWords
    from engine.library.library import Library
    from engine.speech.transcript import Segment
    from engine.train.data import TrainItem
    from engine.train.negatives import CaptionNegatives, NegativeReport
    from engine.train.trainer import EpochReport, TrainConfig, TrainResult

log = logging.getLogger(__name__)


FolderStatus = FolderCounts  # one library folder as the library view shows it; the counts are for the current model


@dataclass(frozen=True)
class IndexSummary:
    """What an indexing run did, in the terms the GUI reports."""

    indexed: int
    failed: list[tuple[str, str]]
    removed: int = 0
    elapsed_s: float = 0.0
    stages_not_run: tuple[str, ...] = ()  # "Speech: why" for a stage whose model could not be had (videos wait)


@dataclass(frozen=True)
class ModelState:
    """Whether a model can index and search now, as the app tells the user at start and after a change.

    ``download`` is the ``arch/tag`` that must be downloaded first (None: nothing to fetch); ``problem`` the
    engine's exception when the model cannot be used now (offline with weights still to fetch, an unknown
    name, a broken checkpoint)."""

    name: str
    download: str | None = None
    problem: Exception | None = None

    @property
    def ready(self) -> bool:
        return self.problem is None and self.download is None


@dataclass(frozen=True)
class ModelChoice:
    name: str
    description: str


@dataclass(frozen=True)
class LlmModel:
    """The default negatives LLM: its file, its download size, and whether it is on this computer yet."""

    name: str
    size: int | None
    path: Path
    cached: bool


@dataclass(frozen=True)
class TrainingRun:
    """A run folder as the Training tab shows it (also after a restart): its settings, how far it got, its
    epochs' reports (for the plots), and its checkpoints."""

    folder: Path
    config: Any  # TrainConfig
    epochs_done: int
    checkpoint: Path | None  # what Resume starts from
    history: list[Any]  # EpochReport per finished epoch
    best: Path | None  # out/best, the model "Use this model" adopts
    best_metric: float | None = None
    stopped_early: bool = False
    mid_epoch: bool = False  # cancelled part-way through epoch ``epochs_done + 1``

    @property
    def finished(self) -> bool:
        return self.stopped_early or self.epochs_done >= self.config.epochs

    @property
    def resumable(self) -> bool:
        return self.checkpoint is not None and not self.finished


def cancellable(progress: ProgressCallback | None, cancel: CancelToken | None) -> ProgressCallback:
    """A progress callback that is also a cancel point: a weights download reports between chunks, and only
    there can it stop (the part already fetched stays for the next try)."""

    def report(fraction: float, message: str) -> None:
        if cancel is not None:
            cancel.raise_if_cancelled()
        if progress is not None:
            progress(fraction, message)

    return report


def size_text(n: int) -> str:
    """A file size as download pages state model sizes (SI units): "430 kB", "98 MB", "1.1 GB"."""
    if n >= 1e9:
        return f"{n / 1e9:.1f} GB"
    return f"{n / 1e6:.0f} MB" if n >= 1e6 else f"{max(1, round(n / 1e3))} kB"


class EngineApi(Protocol):
    """Everything a view may ask of the engine. Slow methods take ``progress``/``cancel`` and run in jobs."""

    def library_root(self) -> Path: ...
    def settings(self) -> EngineSettings: ...
    def save_settings(self, settings: EngineSettings) -> None: ...
    def folders(self) -> list[FolderStatus]: ...
    def failed_files(self) -> list[tuple[str, str]]: ...
    def posters(self, folder: str, limit: int) -> list[tuple[str, float]]: ...
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
        self,
        query: Query,
        *,
        channel: QueryChannel | None = None,
        progress: ProgressCallback | None = None,
        cancel: CancelToken | None = None,
    ) -> SearchResults:
        """Answer ``query``; ``channel`` ("speech" | "text") restricts a text query to what is said or to what is
        shown on screen (None: picture, speech and screen text in one ranking)."""
        ...

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
    def transcript(self, video: str) -> list[Segment]: ...
    def export_transcript(self, video: str, path: Path, fmt: str) -> Path: ...
    def video_words(self, video: str) -> VideoWords: ...
    def stage_status(self) -> list[StageStatus]: ...
    def list_models(self) -> list[ModelChoice]: ...
    def model_state(self, model: str | None = None) -> ModelState: ...
    def prepare_model(
        self,
        model: str | None = None,
        *,
        progress: ProgressCallback | None = None,
        cancel: CancelToken | None = None,
    ) -> ModelState: ...
    def watch(self, on_change: Callable[[], object], *, debounce_s: float, stop: threading.Event) -> None: ...
    def close(self) -> None: ...
    # -- training (the Training tab) -------------------------------------------------------------------
    def training_folder(self) -> Path: ...
    def train_defaults(self) -> TrainConfig: ...
    def load_training_data(self, path: Path) -> list[TrainItem]: ...
    def load_official_data(self, dataset: str | None, annotations: Path, videos: Path) -> list[TrainItem]: ...
    def write_training_data(self, items: Sequence[TrainItem], path: Path) -> Path: ...
    def default_llm(self) -> LlmModel: ...
    def check_llm(self, path: Path) -> str: ...
    def download_llm(self, *, progress: ProgressCallback | None = None, cancel: CancelToken | None = None) -> Path: ...
    def generate_negatives(
        self,
        captions: Sequence[str],
        *,
        llm: Path | None = None,
        per_component: int = 4,
        progress: ProgressCallback | None = None,
        cancel: CancelToken | None = None,
    ) -> NegativeReport: ...
    def write_negatives(self, items: Sequence[CaptionNegatives], path: Path) -> Path: ...
    def read_negatives(self, path: Path) -> list[CaptionNegatives]: ...
    def latest_checkpoint(self, out: Path) -> Path | None: ...
    def training_run(self, folder: Path) -> TrainingRun | None: ...
    def last_training_run(self) -> TrainingRun | None: ...
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
        """Each folder's videos counted for the current model: indexed with it, pending, failed (a model name
        that is not valid has nothing indexed; indexing says what is wrong with it)."""
        from engine.models.base import ModelUnavailable

        try:
            rows = self.library.folder_counts()
        except ModelUnavailable:
            rows = self.library.catalog.folder_counts("", 0.0, 0.0, 0.0)
        return rows

    def failed_files(self) -> list[tuple[str, str]]:
        return [(v["path"], v["error"] or "unknown error") for v in self.library.catalog.videos(status="failed")]

    def posters(self, folder: str, limit: int) -> list[tuple[str, float]]:
        """Up to ``limit`` (video, time) pairs that show what ``folder`` holds: videos spread over it (indexed
        ones first: they are known to decode), each at a quarter of its length."""
        ids = [f["id"] for f in self.library.catalog.folders() if f["path"] == folder]
        videos = self.library.catalog.videos(folder_id=ids[0]) if ids else []
        videos.sort(key=lambda v: (v["status"] != "indexed", v["status"] == "failed"))
        usable = [v for v in videos if v["status"] != "failed"]
        step = max(1, len(usable) // max(1, limit))
        return [(v["path"], round(0.25 * (v["duration"] or 4.0), 1)) for v in usable[::step][:limit]]

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
        from engine.models.registry import ensure_loaded, pending_download

        ray = self.library.ray_options(model=model or "")  # the settings' Ray cluster, or None: locally
        encoder = self._encoder(model)
        if pending_download(model or self.library.settings.model):  # the download shows in the progress bar
            ensure_loaded(encoder, progress=cancellable(progress, cancel))
        try:
            report = self.library.index(encoder, ray=ray, progress=progress, cancel=cancel)
        finally:
            with self._lock:
                self._reset_searcher()  # its read-only stores predate the new vectors
        not_run = tuple(f"{STAGE_NAMES.get(s.stage, s.stage)}: {s.unavailable}" for s in report.stages if s.unavailable)
        return IndexSummary(report.indexed, list(report.failed), report.removed, report.elapsed_s, not_run)

    def search(
        self,
        query: Query,
        *,
        channel: QueryChannel | None = None,
        progress: ProgressCallback | None = None,
        cancel: CancelToken | None = None,
    ) -> SearchResults:
        if channel is not None:
            query = dataclasses.replace(query, channel=channel)
        if query.channel is not None:  # what is said or shown: the catalog answers, no picture model is built
            from engine.search.lexical import LexicalQueryError
            from engine.search.searcher import SearchError
            from engine.search.words import search_words

            if cancel is not None:
                cancel.raise_if_cancelled()
            try:
                return search_words(self.library.catalog, query)
            except LexicalQueryError as exc:
                raise SearchError(str(exc)) from exc
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

    def transcript(self, video: str) -> list[Segment]:
        """The video's stored transcript (segments with word times) for the player's transcript panel and
        subtitles; ``TranscriptUnavailable`` says why there is none (no sound, not transcribed yet, failed)."""
        from engine.speech.stored import stored_transcript

        return stored_transcript(self.library.catalog, video)

    def export_transcript(self, video: str, path: Path, fmt: str) -> Path:
        """Write the transcript as ``fmt`` (srt, vtt or txt) to ``path``, atomically (the player's export)."""
        from engine.speech.stored import export_transcript

        export_transcript(self.library.catalog, video, fmt, path)  # type: ignore[arg-type]
        return path

    def video_words(self, video: str) -> VideoWords:
        """What was said and shown in ``video``, with why either is empty (the transcript panel, subtitles)."""
        from desktop.speech_text import read_video_words

        return read_video_words(self.library.catalog, self.library.settings, video)

    def stage_status(self) -> list[StageStatus]:
        """The speech and screen-text stages over the library (the Library tab's counts)."""
        from desktop.speech_text import read_stage_status

        return read_stage_status(self.library.catalog, self.library.settings)

    def list_models(self) -> list[ModelChoice]:
        from engine.models.registry import list_models

        return [ModelChoice(m.name, m.description + (" (downloaded)" if m.cached else "")) for m in list_models()]

    def model_state(self, model: str | None = None) -> ModelState:
        """Checks ``model`` (default: the settings') without loading it: the name or checkpoint is valid, and
        weights still to download can be fetched (the hub answers within seconds). On a worker: it imports
        open_clip."""
        from engine.models.base import ModelUnavailable
        from engine.models.registry import create_encoder, pending_download, probe_download

        name = model or self.library.settings.model
        download = None
        try:
            create_encoder(name, device=self.library.settings.device, batch_size=self.library.settings.batch_size)
            download = pending_download(name)
            probe_download(name)
        except ModelUnavailable as exc:
            return ModelState(name, download, exc)
        return ModelState(name, download)

    def prepare_model(
        self,
        model: str | None = None,
        *,
        progress: ProgressCallback | None = None,
        cancel: CancelToken | None = None,
    ) -> ModelState:
        """Download (with progress) and load ``model`` now, so the first indexing or search does not wait."""
        from engine.models.base import ModelUnavailable
        from engine.models.registry import ensure_loaded

        name = model or self.library.settings.model
        try:
            ensure_loaded(self._encoder(name), progress=cancellable(progress, cancel))
        except ModelUnavailable as exc:
            return ModelState(name, self.model_state(name).download, exc)
        return ModelState(name)

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
        from engine.train.config import TrainConfig  # not the trainer: the form shows without loading torch

        return TrainConfig(model=self.library.settings.model)

    def load_training_data(self, path: Path) -> list[TrainItem]:
        from engine.train.data import load_training_data

        return load_training_data(path)

    def load_official_data(self, dataset: str | None, annotations: Path, videos: Path) -> list[TrainItem]:
        from engine.train.data import load_official

        return load_official(dataset, annotations, videos)

    def write_training_data(self, items: Sequence[TrainItem], path: Path) -> Path:
        """The items as JSON lines that ``load_training_data`` reads back: how an official dataset (read by its
        own loader) reaches ``train()``, which reads files; the run folder then holds all it needs to resume."""
        from engine.atomic import atomic_path

        rows = []
        for item in items:
            row: dict[str, Any] = {"video": str(item.video), "caption": item.caption}
            row.update({k: v for k, v in (("start", item.start), ("end", item.end)) if v is not None})
            rows.append(json.dumps(row, ensure_ascii=False))
        with atomic_path(Path(path)) as tmp:
            tmp.write_text("\n".join(rows) + "\n", encoding="utf-8")
        return Path(path)

    def default_llm(self) -> LlmModel:
        from engine.paths import weights_dir
        from engine.train.llm import DEFAULT_MODEL, default_model_cached

        path = weights_dir() / "llm" / DEFAULT_MODEL.filename  # where ensure_model keeps it
        return LlmModel(DEFAULT_MODEL.filename, DEFAULT_MODEL.size, path, default_model_cached())

    def check_llm(self, path: Path) -> str:
        """A line describing a usable GGUF file; ``LLMError`` naming the file and the problem if it is not one."""
        from engine.train.llm import inspect_gguf

        info = inspect_gguf(Path(path).expanduser())
        return f"{info.name or info.path.name} ({info.architecture}, {size_text(info.path.stat().st_size)})"

    def download_llm(self, *, progress: ProgressCallback | None = None, cancel: CancelToken | None = None) -> Path:
        """The default LLM's path, downloaded (resumably, checked by size and SHA-256) when not there yet."""
        from engine.train.llm import DEFAULT_MODEL, ensure_model

        return ensure_model(DEFAULT_MODEL, progress=progress, cancel=cancel)

    def generate_negatives(
        self,
        captions: Sequence[str],
        *,
        llm: Path | None = None,
        per_component: int = 4,
        progress: ProgressCallback | None = None,
        cancel: CancelToken | None = None,
    ) -> NegativeReport:
        """With the GGUF model at ``llm`` (the Training tab has checked or downloaded it), else rule-based
        swaps alone."""
        from engine.train.negatives import generate_negatives

        return generate_negatives(captions, llm=llm, per_component=per_component, progress=progress, cancel=cancel)

    def write_negatives(self, items: Sequence[CaptionNegatives], path: Path) -> Path:
        from engine.train.negatives import write_negatives

        return write_negatives(list(items), path)

    def read_negatives(self, path: Path) -> list[CaptionNegatives]:
        """A run's reviewed negatives (``write_negatives``'s file), to show them again after a restart."""
        from engine.train.negatives import read_negatives

        return list(read_negatives(path).values())

    def latest_checkpoint(self, out: Path) -> Path | None:
        from engine.train.run_folder import latest_checkpoint

        return latest_checkpoint(out)

    def training_run(self, folder: Path) -> TrainingRun | None:
        """What a run folder holds, read from its latest checkpoint (``engine.train.run_folder.read_run``: the
        optimiser's tensors are not read); ``None`` when it has no checkpoint yet."""
        from engine.train.run_folder import read_run
        from engine.train.trainer import EpochReport, TrainConfig

        folder = Path(folder)
        snapshot = read_run(folder)
        if snapshot is None:
            return None
        checkpoint, state = snapshot.checkpoint, snapshot.state
        known = {f.name for f in dataclasses.fields(TrainConfig)}
        config = TrainConfig(**{k: v for k, v in snapshot.training.items() if k in known})  # later settings: defaults
        reports = {f.name for f in dataclasses.fields(EpochReport)}
        history = [EpochReport(**{k: v for k, v in h.items() if k in reports}) for h in state.get("history", [])]
        stopped = bool(config.patience) and int(state.get("bad_epochs", 0)) >= config.patience
        best = folder / "best"
        return TrainingRun(
            folder=folder,
            config=config,
            epochs_done=int(state.get("epoch", 0)),
            checkpoint=checkpoint,
            history=history,
            best=best if best.is_dir() else None,
            best_metric=state.get("best"),
            stopped_early=stopped,
            mid_epoch=int(state.get("micro", 0)) > 0,
        )

    def last_training_run(self) -> TrainingRun | None:
        """The most recently checkpointed run under ``training_folder()`` (a damaged one is skipped)."""
        from engine.train.run_folder import LATEST_NAME

        root = self.training_folder()
        pointers = [p / "checkpoints" / LATEST_NAME for p in root.iterdir()] if root.is_dir() else []
        for pointer in sorted((p for p in pointers if p.is_file()), key=lambda p: p.stat().st_mtime, reverse=True):
            try:
                run = self.training_run(pointer.parent.parent)
            except (OSError, ValueError, KeyError, TypeError, RuntimeError) as exc:
                log.warning("skipping the training run %s: %s", pointer.parent.parent, exc)
                continue
            if run is not None:
                return run
        return None

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
        """The encoder of ``model`` (or the settings'), reused while its model id stays the same: a trained run's
        folder keeps its path when training writes a new best, and its id (a content hash) says it changed."""
        name = model or self.library.settings.model
        fresh = self.library.encoder(name)  # cheap: weights load on first use
        with self._lock:
            cached = self._encoders.get(name)
            if cached is None or cached.model_id != fresh.model_id:
                self._encoders[name] = fresh
            return self._encoders[name]

    def _reset_searcher(self) -> None:
        if self._searcher is not None:
            self._searcher.close()
            self._searcher = None


def warm_up() -> None:
    """Import the heavy engine modules (PyAV, OpenCV, torch, open_clip, the speech and text stages) once, on a
    worker thread right after the window opens: an import holds the GIL for a few hundred ms, which would
    otherwise freeze the window when the first indexing or search job starts."""
    import rapidocr  # noqa: F401  (the text stage's OCR: its import parses a large YAML file)

    import engine.library.library
    import engine.models.registry
    import engine.screen_text.stage
    import engine.search.searcher
    import engine.speech.stage  # noqa: F401
    from engine.media.decode import load_decoder

    load_decoder()
