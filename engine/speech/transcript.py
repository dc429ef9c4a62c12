"""What the speech stage learns about a video: segments of speech, each with its words and their times.

Moment times come from the words, not the segments: with voice-activity detection Whisper's segment starts
drift by seconds (findings #8: a sentence at 29 s came back at 19.2 s) while its word timestamps stay within
0.4 s. So ``Segment.start``/``end`` are recomputed from the first and last word whenever there are words.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class Word:
    """One spoken word (with its punctuation, without surrounding spaces) and when it was said."""

    start: float
    end: float
    text: str
    probability: float = 1.0


@dataclass(frozen=True)
class Segment:
    """A stretch of speech (about a sentence or two); ``text`` is its words joined by single spaces."""

    start: float
    end: float
    text: str
    words: tuple[Word, ...]

    @classmethod
    def from_words(cls, words: Sequence[Word]) -> Segment:
        kept = tuple(w for w in words if w.text)
        return cls(kept[0].start, max(w.end for w in kept), " ".join(w.text for w in kept), kept)

    def words_json(self) -> str:
        """Compact storage: ``[[start, end, text, probability], ...]`` with times to the millisecond."""
        rows = [[round(w.start, 3), round(w.end, 3), w.text, round(w.probability, 3)] for w in self.words]
        return json.dumps(rows, ensure_ascii=False, separators=(",", ":"))

    @staticmethod
    def parse_words(text: str) -> tuple[Word, ...]:
        return tuple(Word(float(s), float(e), str(t), float(p)) for s, e, t, p in json.loads(text))


@dataclass(frozen=True)
class Transcript:
    """A video's speech: its segments in time order, the language heard and how much audio was speech."""

    segments: tuple[Segment, ...]
    language: str
    language_probability: float
    audio_s: float  # length of the sound track
    speech_s: float  # what voice-activity detection kept

    @property
    def words(self) -> int:
        return sum(len(s.words) for s in self.segments)

    @property
    def text(self) -> str:
        return " ".join(s.text for s in self.segments)
