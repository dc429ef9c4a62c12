"""One order for every result list, and one rule for moments that cover the same stretch of a video.

People see a hit's relevance (0-100), so every list (the CLI's table, ``--json``, the app's grid) is in
relevance order, best first; hits of equal relevance go by the raw score, then by path and time so the order
is the same on every run. Ranking by the raw score instead made a list read 32.8, 39.8, 31.0, 51.7.

Two moments of one video are the same find when they overlap by more than half of the shorter one (so a
moment nested in another is a duplicate); of such a pair only the better-ranked one is kept. The rule holds
for the whole list a search ranks, the weaker matches below the relevance cutoff included.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Protocol, TypeVar

from engine.search.query import Query
from engine.search.results import MomentHit, SearchResults, VideoHit

MAX_OVERLAP = 0.5  # of the shorter moment; more than this and two moments are one


class _Ranked(Protocol):
    @property
    def relevance(self) -> float: ...
    @property
    def score(self) -> float: ...
    @property
    def video(self) -> str: ...


class _Span(Protocol):
    @property
    def video_id(self) -> int: ...
    @property
    def start(self) -> float: ...
    @property
    def end(self) -> float: ...


H = TypeVar("H", bound=_Ranked)
M = TypeVar("M", bound=_Span)


def ranked(hits: Iterable[H]) -> list[H]:
    """``hits`` best first: by relevance, ties by score, then by path and start time (stable across runs)."""
    return sorted(hits, key=lambda h: (-h.relevance, -h.score, h.video, getattr(h, "start", 0.0)))


def overlap_of_shorter(a: tuple[float, float], b: tuple[float, float]) -> float:
    """How much of the shorter of two spans the other covers, 0-1 (1: one lies inside the other). A span of no
    length counts as covered when it lies within the other."""
    inter = min(a[1], b[1]) - max(a[0], b[0])
    shorter = min(a[1] - a[0], b[1] - b[0])
    if shorter <= 0:
        return 1.0 if inter >= 0 else 0.0
    return max(0.0, inter) / shorter


def same_find(a: tuple[float, float], b: tuple[float, float]) -> bool:
    """Whether two spans of one video are one moment (they overlap by more than half of the shorter)."""
    return overlap_of_shorter(a, b) > MAX_OVERLAP


def distinct_moments(moments: Iterable[M]) -> list[M]:
    """``moments`` in their order (best first), less each one that is the same find as a better one of its
    video."""
    kept: list[M] = []
    by_video: dict[int, list[tuple[float, float]]] = {}
    for m in moments:
        spans = by_video.setdefault(m.video_id, [])
        if not any(same_find((m.start, m.end), span) for span in spans):
            spans.append((m.start, m.end))
            kept.append(m)
    return kept


def arrange(query: Query, videos: Iterable[VideoHit], moments: Iterable[MomentHit], cutoff: float) -> SearchResults:
    """A search's answer from all its hits: one order, no duplicate moments, the relevance cutoff (how many it
    hid is counted for the list asked for), ``k``; a "more like this" moment query never returns its own
    moment."""
    video_hits = ranked(videos)
    moment_hits = distinct_moments(ranked(moments))
    shown_videos = [h for h in video_hits if h.relevance >= cutoff]
    shown_moments = [h for h in moment_hits if h.relevance >= cutoff]
    if query.moment is not None and query.mode == "moments":
        m = query.moment
        shown_moments = [
            h for h in shown_moments if not (h.video_id == m.video_id and h.start < m.end and h.end > m.start)
        ]
    results = SearchResults(query=query, videos=shown_videos[: query.k], moments=shown_moments[: query.k])
    results.hidden_below_cutoff = (
        (len(video_hits) - len(shown_videos)) if query.mode == "videos" else (len(moment_hits) - len(shown_moments))
    )
    return results
