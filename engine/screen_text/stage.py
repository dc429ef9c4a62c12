"""The on-screen text stage: read the frames where text can be and keep each line with the span it stays up.

Frames are sampled every ``text_every_s`` seconds plus the first frame of each shot (``sample_frames``), shrunk
to a 720 px short side at most; ``engine.screen_text.changes`` decides which of them to read. A line read in
consecutive reads (same text once case and spaces are folded, overlapping box) is one line whose span grows;
a line no longer there is closed at the first frame without it. Each video's lines are committed in one
transaction; a video whose pictures cannot be decoded is recorded ``failed`` for this stage only.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from engine.indexing.stages import StageUnavailable
from engine.jobs import CancelToken, ProgressCallback, check_cancel, report
from engine.library.catalog import Catalog, VideoRow
from engine.library.transcripts import StageOutcome, TextRow
from engine.media.decode import MediaError, sample_frames
from engine.screen_text.changes import ReadPolicy, text_map
from engine.screen_text.reader import OcrLine, TextReader, TextReaderError, reader_id
from engine.settings import EngineSettings

MAX_SHORT_SIDE = 720


@dataclass
class _Open:
    """A line on screen since ``start``, last seen at ``seen``."""

    line: OcrLine
    start: float
    seen: float


def _key(text: str) -> str:
    return " ".join(text.casefold().split())


def _overlaps(a: tuple[float, float, float, float], b: tuple[float, float, float, float]) -> bool:
    ix = min(a[2], b[2]) - max(a[0], b[0])
    iy = min(a[3], b[3]) - max(a[1], b[1])
    return ix > 0 and iy > 0


class ScreenTextStage:
    """``StageWorker`` for on-screen text (see ``engine.indexing.stages``)."""

    stage = "text"
    label = "Screen text"

    def __init__(self, settings: EngineSettings, reader: TextReader | None = None) -> None:
        self.every_s = settings.text_every_s
        self.reader = reader or TextReader()
        self.model_id = reader_id()
        self.frames_read = 0  # OCR reads in this run (the benchmark reports them)
        self.frames_seen = 0

    def run_video(
        self, catalog: Catalog, video: VideoRow, *, progress: ProgressCallback | None, cancel: CancelToken | None
    ) -> StageOutcome:
        started = time.perf_counter()
        try:
            rows, seconds = self.read_video(video, progress=progress, cancel=cancel)
        except MediaError as exc:
            outcome = StageOutcome("failed", error=exc.reason, elapsed_s=time.perf_counter() - started)
            catalog.record_stage(video["id"], "text", video["fingerprint"], self.model_id, outcome)
            return outcome
        except TextReaderError as exc:
            raise StageUnavailable(str(exc)) from exc
        outcome = StageOutcome("done", items=len(rows), media_s=seconds, elapsed_s=time.perf_counter() - started)
        catalog.commit_text(video["id"], video["fingerprint"], self.model_id, rows, outcome)
        return outcome

    def read_video(
        self, video: VideoRow, *, progress: ProgressCallback | None = None, cancel: CancelToken | None = None
    ) -> tuple[list[TextRow], float]:
        """The video's text lines and how many seconds of it were looked at."""
        short = min(video["width"] or MAX_SHORT_SIDE, video["height"] or MAX_SHORT_SIDE)
        side = MAX_SHORT_SIDE if short > MAX_SHORT_SIDE else None
        duration = float(video["duration"] or 0.0)
        policy = ReadPolicy(self.every_s)
        open_lines: list[_Open] = []
        rows: list[TextRow] = []
        size = (0, 0)
        t = 0.0

        def close(line: _Open, end: float) -> None:
            rows.append(TextRow(line.start, max(end, line.seen + 0.1), line.line.text, line.line.confidence,
                                line.line.box, size[0], size[1]))  # fmt: skip

        for frame in sample_frames(video["path"], self.every_s, cuts=True, short_side=side, cancel=cancel):
            t = frame.t
            self.frames_seen += 1
            size = (frame.image.shape[1], frame.image.shape[0])
            current = text_map(frame.image)
            if not current.has_text:
                for line in open_lines:
                    close(line, t)
                open_lines = []
                policy.last_map = current
            elif policy.should_read(t, current, frame.is_cut):
                check_cancel(cancel)
                found = self.reader.read(frame.image)
                self.frames_read += 1
                policy.was_read(t, current, len(found))
                open_lines = self._merge(open_lines, found, t, close)
            else:
                for line in open_lines:  # unchanged text: still on screen
                    line.seen = t
            if duration:
                report(progress, t / duration, f"{t / 60:.1f} of {duration / 60:.1f} min")
        end = max(t + self.every_s, duration) if duration else t + self.every_s
        for line in open_lines:
            close(line, min(end, line.seen + self.every_s))
        return sorted(rows, key=lambda r: (r.start, r.box[1])), max(duration, t)

    @staticmethod
    def _merge(open_lines: list[_Open], found: list[OcrLine], t: float, close: object) -> list[_Open]:
        """Lines read at ``t`` extend the open lines they repeat; the rest open; open lines not seen close."""
        still: list[_Open] = []
        pool = list(open_lines)
        for line in found:
            match = next(
                (o for o in pool if _key(o.line.text) == _key(line.text) and _overlaps(o.line.box, line.box)), None
            )
            if match is not None:
                pool.remove(match)
                match.seen = t
                if line.confidence > match.line.confidence:
                    match.line = OcrLine(line.text, line.box, line.confidence)
                still.append(match)
            else:
                still.append(_Open(line, t, t))
        for gone in pool:
            close(gone, t)  # type: ignore[operator]
        return still
