"""What is said and shown, as a search sees it: the spoken and shown candidates of a text query, what its
exclusions rule out in those channels, and the answer of a query restricted to one of them.

A query restricted to speech or on-screen text (``Query.channel``: ``search --said``/``--shows``, the app's
channel choice) needs no picture model and no picture index: it is answered from the catalog's FTS5 tables
alone (``search_words``), its figures the lexical relevance (calibrated whatever the picture model, so the
default cutoff applies). The fused search takes the same candidates (``words_evidence``) and ranks them with
the picture (``engine.search.channels``).

``--exclude`` is judged in every words channel the query searches: a video that says (or shows) an excluded
word is dropped from a video list; in a moment list only the transcript segments and text lines with the word
are, so the rest of a long recording can still be found.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from engine.library.catalog import Catalog
from engine.library.transcripts import Channel
from engine.search import calibration
from engine.search.channels import VideoInfo, words_only_moments, words_only_videos
from engine.search.filters import allowed_videos
from engine.search.lexical import (
    LexicalMoment,
    LexicalQueryError,
    excluded_spans,
    excluded_videos,
    search_lexical,
)
from engine.search.query import Query
from engine.search.ranking import arrange
from engine.search.results import SearchResults

LEXICAL_LEAST = 50  # spoken and shown candidates per channel: at least this many, else 4 k

Span = tuple[int, float, float]  # video id, start, end


@dataclass
class WordsEvidence:
    """A query's spoken and shown candidates, and what its exclusions rule out in those channels."""

    moments: list[LexicalMoment] = field(default_factory=list)
    excluded_videos: set[int] = field(default_factory=set)  # video lists: videos that say or show a term
    excluded_spans: list[Span] = field(default_factory=list)  # moment lists: segments and lines with a term

    def keeps(self, video_id: int, start: float | None = None, end: float | None = None) -> bool:
        """Whether a hit (a video, or a span of it) survives the words channels' exclusions."""
        if video_id in self.excluded_videos:
            return False
        return start is None or end is None or not in_spans(video_id, start, end, self.excluded_spans)


def in_spans(video_id: int, start: float, end: float, spans: Sequence[Span]) -> bool:
    """Whether ``start..end`` of the video overlaps any of ``spans``."""
    return any(vid == video_id and s < end + 1e-6 and e > start - 1e-6 for vid, s, e in spans)


def words_evidence(
    catalog: Catalog, query: Query, channels: Sequence[Channel], allowed: set[int] | None, *, strict: bool
) -> WordsEvidence:
    """The candidates of ``query.text`` in ``channels`` (within ``allowed`` videos), less what
    ``query.exclude`` rules out there. ``strict``: a query with no word raises ``LexicalQueryError`` (else
    there is simply no words evidence, and the picture answers alone)."""
    assert query.text is not None
    k = max(4 * query.k, LEXICAL_LEAST)
    try:
        found = [m for c in channels for m in search_lexical(catalog, c, query.text, k=k, video_ids=allowed)]
    except LexicalQueryError:
        if strict:
            raise
        return WordsEvidence()
    out = WordsEvidence()
    for term in query.exclude:
        for c in channels:
            if query.mode == "videos":
                out.excluded_videos |= excluded_videos(catalog, c, term)
            else:
                out.excluded_spans += excluded_spans(catalog, c, term)
    out.moments = [m for m in found if out.keeps(m.video_id, m.start, m.end)]
    return out


def video_info(catalog: Catalog, video_ids: Iterable[int]) -> dict[int, VideoInfo]:
    """Path and duration of each video still in the catalog."""
    out = {}
    for vid in video_ids:
        row = catalog.video(vid)
        if row is not None:
            out[vid] = VideoInfo(str(row["path"]), float(row["duration"] or 0.0))
    return out


def search_words(catalog: Catalog, query: Query) -> SearchResults:
    """Answer a query restricted to one words channel (see the module docstring); ``LexicalQueryError`` for
    a query with no word in it."""
    started = time.perf_counter()
    assert query.channel is not None
    evidence = words_evidence(catalog, query, (query.channel,), allowed_videos(catalog, query.filters), strict=True)
    info = video_info(catalog, {m.video_id for m in evidence.moments})
    cutoff = calibration.DEFAULT_CUTOFF if query.min_relevance is None else query.min_relevance
    if query.mode == "moments":
        results = arrange(query, [], words_only_moments(evidence.moments, info), cutoff)
    else:
        results = arrange(query, words_only_videos(evidence.moments, info), [], cutoff)
    results.elapsed_ms = (time.perf_counter() - started) * 1000
    return results


__all__ = ["LEXICAL_LEAST", "WordsEvidence", "in_spans", "search_words", "video_info", "words_evidence"]
