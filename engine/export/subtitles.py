"""A video's transcript as subtitles (SubRip ``.srt``, WebVTT ``.vtt``) or plain text with times (``.txt``).

Cues are cut from the words, not from Whisper's segments: a cue holds at most two lines of 42 characters and
at most 7 seconds (the usual broadcast limits), breaks after a sentence's end when it can, and takes its
times from its first and last word, so subtitles appear when the words are said.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Literal

from engine.speech.transcript import Segment, Word

Format = Literal["srt", "vtt", "txt"]
FORMATS: tuple[Format, ...] = ("srt", "vtt", "txt")
LINE_CHARS = 42
MAX_CUE_S = 7.0


@dataclass(frozen=True)
class Cue:
    start: float
    end: float
    text: str  # one or two lines joined by "\n"


def cues(segments: Iterable[Segment]) -> list[Cue]:
    """Subtitle cues from transcript segments (see the module docstring)."""
    out: list[Cue] = []
    for segment in segments:
        group: list[Word] = []
        for word in segment.words:
            if group and (_too_long([*group, word]) or word.end - group[0].start > MAX_CUE_S):
                out.append(_cue(group))
                group = []
            group.append(word)
            if word.text.endswith((".", "?", "!")) and len(" ".join(w.text for w in group)) > LINE_CHARS:
                out.append(_cue(group))
                group = []
        if group:
            out.append(_cue(group))
    for i in range(len(out) - 1):  # players show one cue at a time: never overlap the next
        if out[i].end > out[i + 1].start:
            out[i] = Cue(out[i].start, max(out[i].start + 0.1, out[i + 1].start), out[i].text)
    return out


def _too_long(words: Sequence[Word]) -> bool:
    return len(" ".join(w.text for w in words)) > 2 * LINE_CHARS


def _cue(words: Sequence[Word]) -> Cue:
    text = " ".join(w.text for w in words)
    if len(text) > LINE_CHARS:  # break at the space nearest the middle
        middle = len(text) // 2
        spaces = [i for i, c in enumerate(text) if c == " "]
        cut = min(spaces, key=lambda i: abs(i - middle)) if spaces else len(text)
        text = text[:cut] + "\n" + text[cut + 1 :]
    return Cue(words[0].start, max(w.end for w in words), text)


def _stamp(seconds: float, sep: str) -> str:
    ms = max(0, round(seconds * 1000))
    h, rest = divmod(ms, 3_600_000)
    m, rest = divmod(rest, 60_000)
    s, ms = divmod(rest, 1000)
    return f"{h:02d}:{m:02d}:{s:02d}{sep}{ms:03d}"


def render(segments: Sequence[Segment], fmt: Format) -> str:
    """The transcript as an SRT, WebVTT or timed plain-text document."""
    if fmt == "txt":
        return "".join(f"[{_stamp(s.start, '.')[:-4]}] {s.text}\n" for s in segments)
    items = cues(segments)
    if fmt == "srt":
        return "\n".join(
            f"{n}\n{_stamp(c.start, ',')} --> {_stamp(c.end, ',')}\n{c.text}\n" for n, c in enumerate(items, 1)
        )
    if fmt == "vtt":
        body = "\n".join(f"{_stamp(c.start, '.')} --> {_stamp(c.end, '.')}\n{c.text}\n" for c in items)
        return "WEBVTT\n\n" + body
    raise ValueError(f"unknown subtitle format {fmt!r} (use {', '.join(FORMATS)})")
