"""What a search returns: ranked videos and moments, each with a calibrated relevance and a reason.

``score`` is the raw score the hit was ranked by within its relevance (comparable within one query only);
``relevance`` is the calibrated 0-100 figure people see, fused over the channels (``engine.search.channels``).

Every hit names the channel its evidence comes from and quotes it (the GUI's badge and "why", and
``search --json``):

* ``channel``: ``"picture"``, ``"speech"`` (what is said) or ``"text"`` (what is shown on screen); for a video
  hit, the channel of its best moment;
* ``quote``: the words said or shown at that time (None for the picture), and ``quote_start``/``quote_end``:
  the seconds they span in the video (None for the picture).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Literal

import numpy as np

from engine.search.query import Query

HitChannel = Literal["picture", "speech", "text"]
HIT_CHANNELS: tuple[HitChannel, ...] = ("picture", "speech", "text")


@dataclass(frozen=True)
class Why:
    """Why a hit matched: where its best frame is, and the concepts it shares with the query (if known)."""

    best_time: float
    concepts: tuple[str, ...] = ()


@dataclass(frozen=True)
class VideoHit:
    video: str  # absolute path
    video_id: int
    score: float
    relevance: float  # 0-100
    best_time: float
    duration: float
    why: Why
    channel: HitChannel = "picture"
    quote: str | None = None  # the words said or shown (None for the picture)
    quote_start: float | None = None  # seconds in the video
    quote_end: float | None = None

    def to_json(self) -> dict[str, object]:
        return asdict(self)


@dataclass(frozen=True)
class MomentHit:
    video: str
    video_id: int
    start: float
    end: float
    score: float
    relevance: float
    best_time: float
    duration: float
    why: Why
    channel: HitChannel = "picture"
    quote: str | None = None  # the words said or shown (None for the picture)
    quote_start: float | None = None  # seconds in the video
    quote_end: float | None = None

    def to_json(self) -> dict[str, object]:
        return asdict(self)


@dataclass(frozen=True)
class Curve:
    """A video's smoothed similarity to the query over time (the player's heatmap)."""

    times: np.ndarray  # seconds, ascending
    scores: np.ndarray  # raw similarity per time
    relevance: np.ndarray  # the same, calibrated to 0-100


@dataclass
class SearchResults:
    query: Query
    videos: list[VideoHit] = field(default_factory=list)
    moments: list[MomentHit] = field(default_factory=list)
    curves: dict[int, Curve] = field(default_factory=dict)  # video id -> curve, for the videos returned
    elapsed_ms: float = 0.0
    hidden_below_cutoff: int = 0  # hits dropped by the relevance cutoff (so the GUI can say "show more")
