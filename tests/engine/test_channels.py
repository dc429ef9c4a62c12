"""The fusion rule of ``engine.search.channels`` on hand-made hits: what each channel contributes, which one
leads and is quoted, and where a moment led by words lies."""

from __future__ import annotations

import pytest

from engine.search.channels import DEFAULT_FUSION, Fusion, VideoInfo, fuse_moments, fuse_videos, fused_relevance
from engine.search.lexical import LexicalMoment, QuotedWord
from engine.search.results import MomentHit, VideoHit, Why

INFO = {1: VideoInfo("/v/one.mp4", 30.0), 2: VideoInfo("/v/two.mp4", 30.0)}


def _said(video_id: int, start: float, end: float, relevance: float, channel: str = "speech") -> LexicalMoment:
    words = (QuotedWord("the", start, start + 0.2, False), QuotedWord("balloon", start + 0.3, end, True))
    return LexicalMoment(video_id, channel, start, end, "the balloon", words, 5.0, relevance, 1.0, 7)  # type: ignore[arg-type]


def _seen(video_id: int, relevance: float) -> VideoHit:
    return VideoHit(INFO[video_id].path, video_id, 0.3, relevance, 4.0, 30.0, Why(4.0))


def test_one_channel_keeps_its_figure_agreement_raises_it_and_nothing_exceeds_100() -> None:
    assert fused_relevance({"speech": 95.0}) == pytest.approx(95.0)
    assert fused_relevance({"picture": 80.0}) == pytest.approx(72.0)  # the picture's weight, 0.9
    both = fused_relevance({"speech": 60.0, "picture": 60.0})
    assert both > 60.0 and both == pytest.approx(100 * (1 - 0.4 * 0.46))
    assert fused_relevance({"speech": 100.0, "text": 100.0, "picture": 100.0}) == pytest.approx(100.0)
    assert fused_relevance({}) == 0.0
    assert Fusion(rule="max").relevance({"speech": 60.0, "picture": 60.0}) == pytest.approx(60.0)


def test_a_full_words_match_beats_a_picture_alone_and_a_partial_one_does_not() -> None:
    hits = fuse_videos([_seen(2, 99.0)], [_said(1, 3.0, 5.0, 95.0)], INFO)
    order = sorted(hits, key=lambda h: -h.relevance)
    assert [h.video_id for h in order] == [1, 2]
    said, seen = order
    assert (said.channel, said.quote, said.quote_start, said.quote_end) == ("speech", "the balloon", 3.0, 5.0)
    assert said.best_time == pytest.approx(3.3)  # the first matched word, where the player should start
    assert (seen.channel, seen.quote) == ("picture", None)
    partial = fuse_videos([_seen(2, 70.0)], [_said(1, 3.0, 5.0, 35.0)], INFO)
    assert max(partial, key=lambda h: h.relevance).video_id == 2


def test_a_video_hit_names_the_channel_that_contributes_most() -> None:
    (hit,) = fuse_videos([_seen(1, 90.0)], [_said(1, 3.0, 5.0, 40.0, "text")], INFO)
    assert hit.channel == "picture" and hit.quote is None and hit.relevance > 81.0
    (hit,) = fuse_videos([_seen(1, 30.0)], [_said(1, 3.0, 5.0, 40.0, "text")], INFO)
    assert hit.channel == "text" and hit.quote == "the balloon" and hit.score == 5.0  # BM25: the words' own score


def test_a_picture_moment_led_by_words_takes_the_words_span_and_words_see_the_picture_at_their_time() -> None:
    proposal = MomentHit("/v/one.mp4", 1, 2.0, 10.0, 0.4, 40.0, 6.0, 30.0, Why(6.0))
    said = _said(1, 3.0, 5.0, 90.0)
    spans: list[tuple[int, float, float]] = []

    def picture(vid: int, start: float, end: float) -> float | None:
        spans.append((vid, start, end))
        return 20.0

    fused = fuse_moments([proposal], [said], INFO, picture)
    assert spans == [(1, 3.0, 5.0)]
    led, words = fused
    assert (led.start, led.end, led.channel, led.quote) == (3.0, 5.0, "speech", "the balloon")
    assert led.relevance == pytest.approx(DEFAULT_FUSION.relevance({"picture": 40.0, "speech": 90.0}))
    assert words.relevance == pytest.approx(DEFAULT_FUSION.relevance({"picture": 20.0, "speech": 90.0}))
    assert words.channel == "speech" and words.quote_start == 3.0
    # a picture the words do not overlap keeps its own span and no quote
    (alone, _) = fuse_moments([MomentHit("/v/one.mp4", 1, 20.0, 25.0, 0.4, 40.0, 22.0, 30.0, Why(22.0))], [said],
                              INFO, picture)  # fmt: skip
    assert (alone.start, alone.channel, alone.quote) == (20.0, "picture", None)
