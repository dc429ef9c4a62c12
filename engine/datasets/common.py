"""Typed records shared by the benchmark loaders, and the line reading they all need.

Every loader turns one official annotation format into the same few records, so the evaluation harness never
looks at a file format: retrieval sets become ``CaptionPair`` lists, grounding and highlight sets become
``MomentQuery`` lists, and QVHighlights submissions become ``MomentPrediction`` lists. A malformed line raises
``AnnotationError`` naming the file and the line, because a benchmark number computed from a half-read file
is worse than no number.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np


class AnnotationError(ValueError):
    """An annotation or prediction file cannot be read; the message names the file and line."""

    def __init__(self, path: Path | str, line: int | None, problem: str) -> None:
        where = f"{path}:{line}" if line is not None else str(path)
        super().__init__(f"{where}: {problem}")
        self.path = str(path)
        self.line = line
        self.problem = problem


@dataclass(frozen=True)
class CaptionPair:
    """One text query and the video it describes (text-to-video retrieval ground truth)."""

    video_id: str
    caption: str


@dataclass(frozen=True)
class MomentQuery:
    """One moment query: its text, its video, and where in the video the answer is.

    ``windows`` are (start, end) seconds. ``relevant_clip_ids`` and ``saliency_scores`` (one tuple of rater
    scores per relevant 2 s clip) are filled only for QVHighlights; ``duration`` is ``None`` when the format
    does not give it (Charades-STA).
    """

    qid: int
    query: str
    vid: str
    duration: float | None
    windows: tuple[tuple[float, float], ...]
    relevant_clip_ids: tuple[int, ...] = ()
    saliency_scores: tuple[tuple[float, ...], ...] = ()


@dataclass(frozen=True)
class MomentPrediction:
    """One line of a QVHighlights submission.

    ``windows`` are (start, end, score) in the submitted order; ``None`` when the line has no
    ``pred_relevant_windows`` key, so the evaluation can skip moment retrieval as the official one does.
    ``saliency`` is one score per 2 s clip of the video, ``None`` when absent.
    """

    qid: int | str
    query: str
    vid: str
    windows: tuple[tuple[float, float, float], ...] | None
    saliency: tuple[float, ...] | None = None


def read_lines(path: Path) -> Iterator[tuple[int, str]]:
    """(1-based line number, text without its line ending) for every non-blank line of a text file.

    Line endings may be LF or CRLF (several official files mix them); a UTF-8 byte-order mark is dropped.
    """
    try:
        text = Path(path).read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as exc:
        raise AnnotationError(path, None, f"not UTF-8 text ({exc})") from exc
    for number, line in enumerate(text.splitlines(), 1):
        if line.strip():
            yield number, line.rstrip("\r")


def parse_float(value: str, path: Path, line: int, what: str) -> float:
    try:
        return float(value)
    except ValueError:
        raise AnnotationError(path, line, f"{what} {value!r} is not a number") from None


def video_order(pairs: Sequence[CaptionPair]) -> tuple[list[str], np.ndarray]:
    """Distinct video ids in order of first appearance, and each pair's index into that list.

    This is the text-to-video map ``engine.evaluation.metrics.retrieval_metrics`` takes for sets with several
    captions per video (MSVD); for one caption per video it is the identity.
    """
    index: dict[str, int] = {}
    mapping = np.empty(len(pairs), dtype=np.int64)
    for i, pair in enumerate(pairs):
        mapping[i] = index.setdefault(pair.video_id, len(index))
    return list(index), mapping
