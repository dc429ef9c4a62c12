"""One order everywhere (relevance, ties by score) and no two moments of one video that are the same find."""

from __future__ import annotations

import itertools
import json
from pathlib import Path

import numpy as np
import pytest

from engine.cli import main
from engine.library.library import Library
from engine.media.synthetic import write_color_video
from engine.search.moments import propose
from engine.search.query import Query
from engine.search.ranking import distinct_moments, overlap_of_shorter, ranked, same_find
from engine.search.results import MomentHit, VideoHit, Why
from engine.search.searcher import Searcher
from engine.settings import EngineSettings
from tests.engine.videos import BLUE, GREEN, RED, YELLOW

QUERIES = ("red", "blue", "a blue scene", "green", "yellow", "red and yellow", "something purple")


def _video(path: str, score: float, relevance: float) -> VideoHit:
    return VideoHit(path, 1, score, relevance, 0.0, 10.0, Why(0.0))


def _moment(video_id: int, start: float, end: float, relevance: float = 50.0, score: float = 0.5) -> MomentHit:
    return MomentHit(f"/v{video_id}.mp4", video_id, start, end, score, relevance, start, 20.0, Why(start))


def test_ranked_follows_relevance_then_score() -> None:
    hits = [_video("/a", 0.9, 32.8), _video("/b", 0.8, 39.8), _video("/c", 0.95, 31.0), _video("/d", 0.1, 51.7)]
    hits.append(_video("/e", 0.99, 39.8))  # same relevance as /b, better score: before it
    assert [h.video for h in ranked(hits)] == ["/d", "/e", "/b", "/a", "/c"]


def test_overlap_rule() -> None:
    assert overlap_of_shorter((0, 5), (0, 0.5)) == 1.0  # nested: a duplicate
    assert same_find((0, 1), (0, 2)) and same_find((0, 5), (3.5, 5))
    assert not same_find((0, 4), (2, 6))  # exactly half of the shorter: still two moments
    assert same_find((0, 4), (1.9, 6)) and not same_find((0, 2), (2, 4))
    assert same_find((3, 3), (2, 4)) and not same_find((5, 5), (2, 4))  # a span of no length
    kept = distinct_moments(
        [_moment(1, 0, 5), _moment(1, 0, 0.5), _moment(2, 0, 0.5), _moment(1, 3.5, 5), _moment(1, 5, 9)]
    )
    assert [(m.video_id, m.start, m.end) for m in kept] == [(1, 0, 5), (2, 0, 0.5), (1, 5, 9)]


def _assert_distinct(moments: list[MomentHit]) -> None:
    for a, b in itertools.combinations(moments, 2):
        if a.video_id == b.video_id:
            assert not same_find((a.start, a.end), (b.start, b.end)), (a, b)


@pytest.mark.parametrize("seed", range(20))
def test_proposals_of_one_curve_are_distinct(seed: int) -> None:
    rng = np.random.default_rng(seed)
    times = np.arange(0, 30, 0.5)
    curve = np.convolve(rng.standard_normal(len(times)), np.ones(5) / 5, mode="same")
    cuts = rng.random(len(times)) < 0.1
    found = propose(times, curve, cuts, 30.0, max_proposals=10)
    _assert_distinct([_moment(1, p.start, p.end) for p in found])


@pytest.fixture(scope="module")
def library(tmp_path_factory: pytest.TempPathFactory) -> Library:
    root = tmp_path_factory.mktemp("ranking")
    videos = root / "videos"
    write_color_video(videos / "event.mp4", [(3, RED), (2, BLUE), (3, RED), (2, YELLOW)], fps=10)
    write_color_video(videos / "short.mp4", [(2, BLUE), (3, GREEN)], fps=10, moving_box=True)
    write_color_video(videos / "red.mp4", [(8, RED)], fps=10, moving_box=True)
    write_color_video(videos / "mixed.mp4", [(1, GREEN), (1, BLUE), (1, YELLOW), (1, RED), (1, BLUE)], fps=10)
    write_color_video(videos / "yellow.avi", [(4, YELLOW)], fps=8)
    lib = Library(root / "home", settings=EngineSettings(model="fake:color", detect_cuts=False))
    lib.add_folder(videos)
    lib.index()
    return lib


@pytest.mark.parametrize("text", QUERIES)
def test_every_list_follows_its_relevance_and_moments_are_distinct(library: Library, text: str) -> None:
    """Whole lists, weaker matches included (``min_relevance=0``), as the GUI's "show weaker matches" shows
    them. Ranked by raw score, lists read e.g. 32.8, 39.8, 31.0; with nested moments, one video had 0:00-0:00.5,
    0:00-0:05 and 0:03.5-0:05."""
    searcher = Searcher(library, library.encoder())
    try:
        videos = searcher.search(Query(text=text, k=50, min_relevance=0)).videos
        moments = searcher.search(Query(text=text, k=50, mode="moments", min_relevance=0)).moments
    finally:
        searcher.close()
    for hits in (videos, moments):
        keys = [(h.relevance, h.score) for h in hits]
        assert keys == sorted(keys, reverse=True)
    _assert_distinct(moments)


def test_cli_table_and_json_follow_the_relevance_shown(
    library: Library, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    base = ["--home", str(library.paths.root), "--model", "fake:color"]
    for text, moments in itertools.product(QUERIES[:4], ([], ["--moments"])):
        assert main([*base, "search", text, "--all", "-k", "30", "--json", *moments]) == 0
        hits = json.loads(capsys.readouterr().out)
        relevance = [h["relevance"] for h in hits]
        assert relevance == sorted(relevance, reverse=True)
        assert main([*base, "search", text, "--all", "-k", "30", *moments]) == 0
        shown = [float(line.split()[1]) for line in capsys.readouterr().out.splitlines()]
        assert shown == sorted(shown, reverse=True) and len(shown) == len(hits)
        if moments:
            _assert_distinct([MomentHit(**{**h, "why": Why(h["best_time"])}) for h in hits])
    assert Path(library.paths.root).is_dir()
