"""A fake engine for GUI tests: in-memory folders, a stepped index with progress and cancel, canned results."""

from __future__ import annotations

import dataclasses
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from PySide6.QtGui import QColor, QImage

from desktop.engine_api import FolderStatus, IndexSummary, ModelChoice, ModelState
from desktop.jobs import PROGRESS_INTERVAL_S
from desktop.speech_text import ShownLine, StageStatus, VideoWords
from engine.jobs import CancelToken, ProgressCallback, check_cancel
from engine.search.query import Query
from engine.search.results import Curve, MomentHit, SearchResults, VideoHit, Why
from engine.settings import EngineSettings


class FakeEngine:
    """``EngineApi`` with no model, no index and no decoding; records what the GUI asked for."""

    def __init__(self, root: Path, videos: Sequence[Path]) -> None:
        self.root = root
        self.video_files = [Path(v) for v in videos]
        self._settings = EngineSettings(model="fake:hash-8")
        self.saved: list[EngineSettings] = []
        self.folder_paths: list[str] = []
        self.indexed = False
        self.failed: list[tuple[str, str]] = []
        self.no_video = 0  # sound files the folder holds (no video stream)
        self.queries: list[Query] = []
        self.index_calls: list[str | None] = []
        self.index_steps = 10
        self.step_s = 0.01
        self.search_error: Exception | None = None
        self.no_results = False
        self.hidden = 0
        self.watch_trigger = threading.Event()
        self.exports: list[tuple[str, float, float, Path]] = []
        self.train_calls: list[Any] = []  # TrainConfig per train() call
        self.train_step_s = 0.01
        self.train_gate: threading.Event | None = None  # when set by a test, epochs after the first wait on it
        self.written_negatives: list[tuple[list[Any], Path]] = []
        self._trained_epochs: dict[str, int] = {}
        self.broken_models: dict[str, tuple[str | None, Exception]] = {}  # name -> (download, problem)
        self.index_error: Exception | None = None
        self.words: dict[str, VideoWords] = {}  # video -> what video_words() answers (default: not transcribed)
        self.words_gate: threading.Event | None = None  # when set by a test, video_words waits on it
        self.stages: list[StageStatus] = [StageStatus("speech", True), StageStatus("text", True)]
        self.quotes = {  # video index -> (channel, quote) of its hits; the others are found by the picture
            0: ("speech", "the wifi password is on the fridge"),
            1: ("text", "Quarterly results 2024"),
        }

    def library_root(self) -> Path:
        return self.root

    def settings(self) -> EngineSettings:
        return self._settings

    def save_settings(self, settings: EngineSettings) -> None:
        self._settings = settings
        self.saved.append(settings)

    def folders(self) -> list[FolderStatus]:
        n = len(self.video_files)
        return [
            FolderStatus(
                p,
                n,
                n - len(self.failed) if self.indexed else 0,
                0 if self.indexed else n,
                len(self.failed),
                21.0 if self.indexed else 0.0,
                self.no_video,
            )
            for p in self.folder_paths
        ]

    def failed_files(self) -> list[tuple[str, str]]:
        return list(self.failed)

    def posters(self, folder: str, limit: int) -> list[tuple[str, float]]:
        return [(str(v), 1.0) for v in self.video_files[:limit]] if folder in self.folder_paths else []

    def add_folder(self, path: Path) -> None:
        self.folder_paths.append(str(path))

    def remove_folder(self, path: Path) -> None:
        self.folder_paths.remove(str(path))

    def retry_failed(self) -> int:
        n, self.failed = len(self.failed), []
        return n

    def index(
        self, *, model: str | None = None, progress: ProgressCallback | None = None, cancel: CancelToken | None = None
    ) -> IndexSummary:
        self.index_calls.append(model)
        if self.index_error is not None:
            raise self.index_error
        for step in range(self.index_steps):
            check_cancel(cancel)
            if progress:
                progress(step / self.index_steps, f"Indexed {step}/{self.index_steps}: clip{step}.mp4")
            time.sleep(self.step_s)
        for on, label in ((self._settings.speech, "Speech"), (self._settings.screen_text, "Screen text")):
            if on and progress:  # the stages after the pictures report under their own names
                time.sleep(max(self.step_s, PROGRESS_INTERVAL_S))  # (the runner passes on a report per interval)
                progress(0.95, f"{label} 1/1: clip0.mp4")
        self.indexed = True
        return IndexSummary(len(self.video_files), list(self.failed))

    def search(
        self,
        query: Query,
        *,
        channel: str | None = None,
        progress: ProgressCallback | None = None,
        cancel: CancelToken | None = None,
    ) -> SearchResults:
        if channel is not None:
            query = dataclasses.replace(query, channel=channel)  # type: ignore[arg-type]
        self.queries.append(query)
        if self.search_error is not None:
            raise self.search_error
        results = SearchResults(query, elapsed_ms=12.0, hidden_below_cutoff=self.hidden)
        if self.no_results and query.min_relevance != 0.0:
            return results
        for n, path in enumerate(self.video_files):
            why = Why(3.0 + n, ("beach",) if n == 0 else ())
            rel = 90.0 - 20 * n
            channel, quote = self.quotes.get(n, ("picture", None))
            if query.channel is not None and channel != query.channel:
                continue  # restricted to a channel: only what was said (or shown)
            said = {"channel": channel, "quote": quote}
            said |= {"quote_start": 1.0, "quote_end": 3.0} if quote else {}
            results.videos.append(VideoHit(str(path), n + 1, 0.3 - 0.05 * n, rel, 3.0 + n, 12.0, why, **said))
            for start, end in ((1.0, 3.0), (5.0, 9.0)):
                results.moments.append(MomentHit(str(path), n + 1, start, end, 0.3, rel, start + 1, 12.0, why, **said))
            times = np.arange(0, 12, 0.5)
            relevance = np.clip(100 * np.exp(-((times - 7) ** 2) / 4), 0, 100)
            results.curves[n + 1] = Curve(times, relevance / 300, relevance)
        return results

    def thumbnail(self, video: str, t: float) -> Path:
        out = self.root / "thumbs" / f"{Path(video).stem}-{t:.1f}.png"
        out.parent.mkdir(parents=True, exist_ok=True)
        image = QImage(160, 90, QImage.Format.Format_RGB32)
        image.fill(QColor.fromHsv(int(t * 40) % 360, 160, 200))
        image.save(str(out))
        return out

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
        self.exports.append((video, start, end, out))
        out.write_bytes(b"clip")
        return out

    def export_markers(self, moments: Sequence[Any], path: Path, *, title: str) -> Path:
        from engine.export.markers import markers_from, write_markers

        return write_markers(markers_from(moments), path, title=title)

    def transcript(self, video: str) -> list[Any]:
        return list(self.video_words(video).said)

    def export_transcript(self, video: str, path: Path, fmt: str) -> Path:
        from engine.atomic import atomic_write_bytes
        from engine.export.subtitles import render

        atomic_write_bytes(path, render(self.transcript(video), fmt).encode("utf-8"))  # type: ignore[arg-type]
        return path

    def video_words(self, video: str) -> VideoWords:
        if self.words_gate is not None:
            self.words_gate.wait(5)
        return self.words.get(str(video), VideoWords(said_state="pending", shown_state="pending"))

    def stage_status(self) -> list[StageStatus]:
        return list(self.stages)

    def list_models(self) -> list[ModelChoice]:
        return [ModelChoice("fake:hash-8", "hash"), ModelChoice("test-tiny", "tiny")]

    def model_state(self, model: str | None = None) -> ModelState:
        name = model or self._settings.model
        if name in self.broken_models:
            return ModelState(name, self.broken_models[name][0], self.broken_models[name][1])
        return ModelState(name)

    def prepare_model(
        self, model: str | None = None, *, progress: ProgressCallback | None = None, cancel: CancelToken | None = None
    ) -> ModelState:
        return self.model_state(model)

    def watch(self, on_change: Callable[[], object], *, debounce_s: float, stop: threading.Event) -> None:
        while not stop.is_set():
            if self.watch_trigger.wait(0.02):
                self.watch_trigger.clear()
                on_change()

    def close(self) -> None:
        pass

    # -- training: captions from the file's rows, made-up negatives, epochs that only sleep ----------

    def training_folder(self) -> Path:
        return self.root / "training"

    def train_defaults(self) -> Any:
        from engine.train.trainer import TrainConfig

        return TrainConfig(model=self._settings.model, epochs=3, tensorboard=False)

    def load_training_data(self, path: Path) -> list[Any]:
        from engine.train.data import load_training_data

        return load_training_data(path)

    def generate_negatives(
        self,
        captions: Sequence[str],
        *,
        per_component: int = 4,
        progress: ProgressCallback | None = None,
        cancel: CancelToken | None = None,
    ) -> Any:
        from engine.train.negatives import CaptionNegatives, NegativeReport

        items = []
        for n, caption in enumerate(dict.fromkeys(captions)):
            check_cancel(cancel)
            negatives = {"subject": [f"a robot {caption}"], "verb": [f"{caption}, backwards"]}
            items.append(
                CaptionNegatives(caption, negatives, [f"in this clip, {caption}"], {k: ["rule"] for k in negatives})
            )
            if progress:
                progress((n + 1) / len(captions), f"negatives {n + 1}/{len(captions)}")
        return NegativeReport(items, {"subject": 1.0, "verb": 1.0}, 1.0)

    def write_negatives(self, items: Sequence[Any], path: Path) -> Path:
        from engine.train.negatives import write_negatives

        self.written_negatives.append((list(items), path))
        return write_negatives(list(items), path)

    def latest_checkpoint(self, out: Path) -> Path | None:
        done = self._trained_epochs.get(str(out), 0)
        return Path(out) / "checkpoints" / f"epoch-{done:04d}" if done else None

    def train(
        self,
        config: Any,
        *,
        on_epoch: Callable[[Any], None] | None = None,
        progress: ProgressCallback | None = None,
        cancel: CancelToken | None = None,
    ) -> Any:
        from engine.train.trainer import EpochReport, TrainResult

        self.train_calls.append(config)
        out = Path(config.out)
        start = self._trained_epochs.get(str(out), 0) if config.resume else 0
        history = []
        for epoch in range(start, config.epochs):
            if epoch > start and self.train_gate is not None:
                while not self.train_gate.wait(0.01):
                    check_cancel(cancel)
            check_cancel(cancel)
            time.sleep(self.train_step_s)
            folder = out / "checkpoints" / f"epoch-{epoch + 1:04d}"
            folder.mkdir(parents=True, exist_ok=True)
            self._trained_epochs[str(out)] = epoch + 1
            metrics = {"t2v_R1": 20.0 + 10 * epoch, "comp_all": 50.0 + 5 * epoch}
            report = EpochReport(
                epoch + 1, 4 * (epoch + 1), 2.0 / (epoch + 1), 1e-5, 20.0, 0.1, metrics, str(folder), True
            )
            history.append(report)
            if on_epoch:
                on_epoch(report)
            if progress:
                progress((epoch + 1) / config.epochs, f"epoch {epoch + 1}/{config.epochs}")
        best = out / "best"
        best.mkdir(parents=True, exist_ok=True)
        return TrainResult(out / "checkpoints" / f"epoch-{config.epochs:04d}", best, 40.0, history)


def spoken_words() -> VideoWords:
    """Three said segments with word times (0.5-2.5 s, 4-6 s, 8-11.5 s) and one line shown at 6-9 s."""
    from engine.speech.transcript import Segment, Word

    def segment(start: float, text: str, step: float = 0.5) -> Segment:
        words = [Word(start + n * step, start + (n + 1) * step - 0.05, w) for n, w in enumerate(text.split())]
        return Segment.from_words(words)

    said = [
        segment(0.5, "Hello and welcome home."),
        segment(4.0, "The wifi password is on the fridge."),
        segment(8.0, "Grandma talked about the war and the long winter of forty four.", 0.3),
    ]
    return VideoWords(said=said, shown=[ShownLine(6.0, 9.0, "Quarterly results 2024")], language="en")
