"""The lines of the transcript panel and the subtitle at a time: pure data over a video's words.

A line is one transcript segment (said) or one line of on-screen text (shown), each with its span; the panel
lists them in time order. The subtitle is cut from the words themselves, not the segment, for two reasons:
a Whisper segment can run 30 s and two screenfuls of text, and the words carry the exact times (findings
#8), so a subtitle shows about a line of what is being said right now and leaves the screen in the pauses.
"""

from __future__ import annotations

import bisect
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

Kind = Literal["said", "shown"]
SUBTITLE_CHARS = 42  # a broadcast subtitle line
LINGER_S = 0.6  # a subtitle stays this long after its last word (reading time)


@dataclass(frozen=True)
class Line:
    start: float
    end: float
    text: str
    kind: Kind
    words: tuple[Any, ...] = field(default=(), compare=False)  # engine.speech.transcript.Word for said lines


def lines_from(said: Sequence[Any], shown: Sequence[Any]) -> list[Line]:
    """Said segments and shown text lines (anything with ``start``, ``end``, ``text``) as one time-ordered list;
    at the same time, what is said comes first."""
    lines = [Line(float(s.start), float(s.end), s.text, "said", tuple(getattr(s, "words", ()))) for s in said]
    lines += [Line(float(t.start), float(t.end), t.text, "shown") for t in shown]
    return sorted(lines, key=lambda line: (line.start, line.kind != "said", line.end))


def line_at(lines: Sequence[Line], t: float, kind: Kind = "said") -> int | None:
    """The index of the ``kind`` line playing at ``t``: the last one started by then, while it lasts (or until
    the next one starts, so the panel keeps its place in short pauses). None before the first one."""
    best = None
    for n, line in enumerate(lines):
        if line.kind != kind:
            continue
        if line.start > t + 1e-6:
            break
        best = n
    if best is None:
        return None
    later = [line.start for line in lines[best + 1 :] if line.kind == kind]
    until = max(lines[best].end, later[0] if later else lines[best].end)
    return best if t <= until + LINGER_S else None


def _chunks(words: Sequence[Any], limit: int) -> list[list[Any]]:
    chunks: list[list[Any]] = [[]]
    for word in words:
        length = sum(len(w.text) + 1 for w in chunks[-1]) + len(word.text)
        if chunks[-1] and length > limit:
            chunks.append([])
        chunks[-1].append(word)
    return [c for c in chunks if c]


def subtitle_at(segments: Sequence[Any], t: float, limit: int = SUBTITLE_CHARS) -> str:
    """The words on screen at ``t``: the line-sized chunk of the segment being said whose words span ``t``
    (plus ``LINGER_S``), else nothing. A segment without word times shows whole, over its own span."""
    starts = [float(s.start) for s in segments]
    n = bisect.bisect_right(starts, t) - 1
    if n < 0:
        return ""
    segment = segments[n]
    words = tuple(getattr(segment, "words", ()))
    if not words:
        return segment.text if t <= float(segment.end) + LINGER_S else ""
    for chunk in reversed(_chunks(words, limit)):  # the latest chunk begun by ``t``
        if chunk[0].start - 0.05 <= t:
            return " ".join(w.text for w in chunk) if t <= chunk[-1].end + LINGER_S else ""
    return ""
