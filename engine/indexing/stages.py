"""The stages after the picture: speech and on-screen text, each resumable and cancellable on its own.

Every stage has the shape of the picture stage: its pending work comes from the catalog (videos it has not
done for their current file and model), it goes one video at a time with progress and cancel, and each video
is committed in one transaction by the stage itself, so a SIGKILL loses at most the video in flight and the
next run resumes there. A stage with nothing pending loads no model, so a no-op ``scenefind index`` stays fast.
A video without sound, or whose sound or pictures cannot be decoded, is recorded for that stage (visible in
``scenefind status``) and never fails the video as a whole. A stage whose model cannot be had (offline on
first use, a damaged folder) stops with that reason in its report and leaves its videos pending.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from engine.jobs import CancelToken, JobCancelled, ProgressCallback, check_cancel, report, wrap_progress
from engine.library.catalog import Catalog, VideoRow
from engine.library.transcripts import Stage, StageOutcome
from engine.settings import EngineSettings

log = logging.getLogger(__name__)


class StageUnavailable(RuntimeError):
    """A stage cannot run at all (its model is missing or damaged); the message says how to fix it."""


class StageWorker(Protocol):
    """What a stage does to one video; it commits the video itself (one transaction) and says how it went."""

    stage: Stage
    label: str  # "Speech", "Screen text": the progress messages' prefix
    model_id: str  # recorded with each result: a new model makes every video pending again

    def run_video(
        self, catalog: Catalog, video: VideoRow, *, progress: ProgressCallback | None, cancel: CancelToken | None
    ) -> StageOutcome: ...


@dataclass
class StageReport:
    """What one stage did in one run."""

    stage: Stage
    pending: int = 0
    done: int = 0
    no_audio: int = 0
    failed: list[tuple[str, str]] = field(default_factory=list)
    media_s: float = 0.0
    elapsed_s: float = 0.0
    unavailable: str | None = None  # why the stage could not run (its videos stay pending)

    @property
    def speed(self) -> float:
        """Seconds of media per second of work (× real time); 0 when nothing ran."""
        return self.media_s / self.elapsed_s if self.elapsed_s > 0 else 0.0


def run_stage(
    catalog: Catalog,
    worker: StageWorker,
    *,
    progress: ProgressCallback | None = None,
    cancel: CancelToken | None = None,
) -> StageReport:
    """Run ``worker`` over its pending videos, one committed video at a time."""
    todo = catalog.stage_pending(worker.stage, worker.model_id)
    result = StageReport(worker.stage, pending=len(todo))
    if not todo:
        return result
    started = time.perf_counter()
    job = catalog.start_job(worker.stage, worker.model_id, len(todo))
    status, message = "failed", ""
    try:
        for n, video in enumerate(todo):
            check_cancel(cancel)
            name = Path(video["path"]).name
            step = wrap_progress(progress, n / len(todo), (n + 1) / len(todo))
            report(step, 0.0, f"{worker.label} {n + 1}/{len(todo)}: {name}")
            outcome = worker.run_video(catalog, video, progress=_prefixed(step, worker.label, name), cancel=cancel)
            result.media_s += outcome.media_s
            if outcome.status == "failed":
                result.failed.append((video["path"], outcome.error or ""))
            elif outcome.status == "no_audio":
                result.no_audio += 1
            else:
                result.done += 1
            catalog.update_job(job, done=n + 1, failed=len(result.failed))
        silent = f", {result.no_audio} without sound" if worker.stage == "speech" else ""
        status, message = "done", f"{worker.label}: {result.done} done{silent}, {len(result.failed)} failed"
    except JobCancelled:
        finished = result.done + result.no_audio + len(result.failed)
        status, message = "cancelled", f"{worker.label}: cancelled after {finished} of {len(todo)} videos"
        raise
    except StageUnavailable as exc:
        result.unavailable = str(exc)
        message = f"{worker.label}: not run: {exc}"
    except BaseException as exc:
        message = f"{type(exc).__name__}: {exc}"
        raise
    finally:
        result.elapsed_s = time.perf_counter() - started
        catalog.finish_job(job, status, message)
    return result


def _prefixed(progress: ProgressCallback | None, label: str, name: str) -> ProgressCallback | None:
    """A video's own progress messages, prefixed with the stage and the file."""
    if progress is None:
        return None
    return lambda fraction, message: progress(fraction, f"{label}: {name}: {message}")


def stage_workers(settings: EngineSettings) -> list[StageWorker]:
    """The stages the settings turn on, in order: speech, then on-screen text. Building one loads nothing."""
    from engine.screen_text.stage import ScreenTextStage
    from engine.speech.stage import SpeechStage

    workers: list[StageWorker] = []
    if settings.speech:
        workers.append(SpeechStage(settings))
    if settings.screen_text:
        workers.append(ScreenTextStage(settings))
    return workers


def run_stages(
    catalog: Catalog,
    settings: EngineSettings,
    *,
    progress: ProgressCallback | None = None,
    cancel: CancelToken | None = None,
    workers: list[StageWorker] | None = None,
    on_report: Callable[[StageReport], object] | None = None,
) -> list[StageReport]:
    """Every enabled stage in turn, each over its whole pending list (progress shares out ``0..1``)."""
    chosen = stage_workers(settings) if workers is None else workers
    reports = []
    for n, worker in enumerate(chosen):
        result = run_stage(
            catalog, worker, progress=wrap_progress(progress, n / len(chosen), (n + 1) / len(chosen)), cancel=cancel
        )
        if result.unavailable:
            log.info("%s stage skipped: %s", worker.label, result.unavailable)  # the caller shows it
        reports.append(result)
        if on_report is not None:
            on_report(result)
    report(progress, 1.0, "Speech and screen text done" if chosen else "Done")
    return reports
