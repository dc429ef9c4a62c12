"""Search that finds moments: fusion, moments, relevance, query types, exclusions and filters."""

from __future__ import annotations

import itertools
import os
from pathlib import Path

import numpy as np
import pytest

from engine.library.library import Library
from engine.media.synthetic import write_color_video
from engine.search import calibration
from engine.search.moments import propose, temporal_iou
from engine.search.query import MomentRef, Query, SearchFilters
from engine.search.scoring import fine_similarity, smooth_curve
from engine.search.searcher import Searcher, SearchError
from engine.settings import EngineSettings
from tests.engine.videos import BLUE, GREEN, RED, YELLOW

PURPLE = (150, 40, 200)


@pytest.fixture(scope="module")
def library(tmp_path_factory: pytest.TempPathFactory) -> tuple[Library, dict[str, Path]]:
    root = tmp_path_factory.mktemp("search")
    videos = root / "videos"
    files = {
        "event": write_color_video(videos / "event.mp4", [(7, RED), (5, BLUE), (8, RED)], fps=10),
        "red": write_color_video(videos / "red.mp4", [(10, RED)], fps=10, moving_box=True),
        "blue_hd": write_color_video(videos / "hd" / "blue.mp4", [(6, BLUE)], fps=10, size=(320, 240)),
        "green": write_color_video(videos / "green.mp4", [(30, GREEN)], fps=5),
        "red_yellow": write_color_video(videos / "red_yellow.mp4", [(5, RED), (5, YELLOW)], fps=10),
    }
    old = 946684800  # 2000-01-01
    os.utime(files["green"], (old, old))
    os.environ["SCENEFIND_HOME"] = str(root / "home")
    lib = Library(root / "home", settings=EngineSettings(model="fake:color"))
    lib.add_folder(videos)
    lib.index()
    return lib, files


def _search(library: tuple[Library, dict[str, Path]], **kw: object) -> list:
    lib, _ = library
    searcher = Searcher(lib, lib.encoder())
    results = searcher.search(Query(**kw))  # type: ignore[arg-type]
    searcher.close()
    return results.moments if kw.get("mode") == "moments" else results.videos


def test_distinct_event_is_found_as_a_moment(library: tuple[Library, dict[str, Path]]) -> None:
    moments = _search(library, text="a blue scene", mode="moments", k=5, min_relevance=0)
    _, files = library
    event = [m for m in moments if m.video == str(files["event"])]
    assert event, "the event video has no moment"
    best = event[0]
    assert temporal_iou((best.start, best.end), (7.0, 12.0)) >= 0.7
    assert moments[0].video in (str(files["event"]), str(files["blue_hd"]))
    assert best.relevance > 50


def test_relevance_is_high_for_matches_and_low_for_junk(library: tuple[Library, dict[str, Path]]) -> None:
    hits = {Path(h.video).name: h for h in _search(library, text="green", min_relevance=0, k=10)}
    assert hits["green.mp4"].relevance > 80
    assert hits["red.mp4"].relevance < calibration.DEFAULT_CUTOFF
    shown = _search(library, text="green", k=10)  # default cutoff applies
    assert [Path(h.video).name for h in shown] == ["green.mp4"]


def test_relevance_follows_the_score_within_a_search(library: tuple[Library, dict[str, Path]]) -> None:
    # One null for the whole search: a higher score never lists lower, whatever each video's own background is
    # (a per-video null once put a clip below its time-reversed twin that the model scored lower).
    for text in ("blue", "a red scene", "green and yellow", "purple"):
        hits = _search(library, text=text, min_relevance=0, k=10)
        assert len(hits) >= 4
        pairs = sorted(((h.score, h.relevance) for h in hits), reverse=True)
        assert all(a[1] >= b[1] for a, b in itertools.pairwise(pairs)), (text, pairs)
    # ... and a video's relevance does not depend on how many results were asked for.
    few = {h.video: h.relevance for h in _search(library, text="a red scene", min_relevance=0, k=2)}
    many = {h.video: h.relevance for h in _search(library, text="a red scene", min_relevance=0, k=10)}
    assert few and all(many[v] == pytest.approx(r) for v, r in few.items())


def test_background_null_pools_the_spread_within_videos() -> None:
    # Two videos whose unrelated captions score around 0.1 and 0.3, each spread ±0.05: the grand mean is 0.2 and
    # the spread is the one within a video (0.05), not the 0.1 between the videos.
    fused = [np.array([0.05, 0.15]), np.array([0.25, 0.35])]
    curves = [np.array([[0.0, 0.2], [0.2, 0.4]]), np.array([[0.4], [0.6]])]
    null = calibration.background_null(fused, curves)
    assert null.mean == pytest.approx(0.2) and null.std == pytest.approx(0.05)
    assert null.frame_mean == pytest.approx((0.2 + 0.5) / 2) and null.frame_std == pytest.approx(0.1)
    assert null.video(0.2 + calibration.Z_MID * 0.05) == pytest.approx(50)
    # One video: exactly that video's own z, as relevance was computed before there was a sample.
    alone = calibration.background_null(fused[:1], curves[:1])
    assert alone.video(0.2) == pytest.approx(calibration.relevance((0.2 - 0.1) / 0.05))
    assert calibration.background_null([], []).video(0.0) == pytest.approx(calibration.relevance(0.0))


def test_excluded_terms_remove_what_they_should(library: tuple[Library, dict[str, Path]]) -> None:
    names = [Path(h.video).name for h in _search(library, text="red", min_relevance=0, k=10)]
    assert {"red.mp4", "event.mp4", "red_yellow.mp4"} <= set(names)
    kept = [Path(h.video).name for h in _search(library, text="red", exclude=("yellow", "blue"), min_relevance=0, k=10)]
    assert "red.mp4" in kept and "event.mp4" not in kept and "red_yellow.mp4" not in kept
    moments = _search(library, text="red", exclude=("blue",), mode="moments", min_relevance=0, k=20)
    for m in moments:
        if Path(m.video).name == "event.mp4":  # red moments of the event video stay, blue ones go
            assert m.end <= 7.5 or m.start >= 11.5


def test_filters(library: tuple[Library, dict[str, Path]]) -> None:
    _, files = library

    def names(**filters: object) -> set[str]:
        hits = _search(library, text="red", filters=SearchFilters(**filters), min_relevance=0, k=10)  # type: ignore[arg-type]
        return {Path(h.video).name for h in hits}

    assert names(folders=(str(files["blue_hd"].parent),)) == {"blue.mp4"}
    assert names(min_height=200) == {"blue.mp4"}
    assert names(max_height=200) == {"event.mp4", "red.mp4", "green.mp4", "red_yellow.mp4"}
    assert names(min_duration=15) == {"event.mp4", "green.mp4"}
    assert names(max_duration=7) == {"blue.mp4"}
    assert names(modified_before=978307200) == {"green.mp4"}  # before 2001
    assert "green.mp4" not in names(modified_after=978307200)


def test_image_clip_and_moment_queries(library: tuple[Library, dict[str, Path]], tmp_path: Path) -> None:
    import cv2

    lib, files = library
    image = tmp_path / "purple-ish blue.png"
    swatch = np.zeros((60, 80, 3), np.uint8)
    swatch[:] = BLUE[::-1]
    cv2.imwrite(str(image), swatch)
    by_image = _search(library, image=image, mode="moments", min_relevance=0, k=3)
    assert by_image[0].video in (str(files["event"]), str(files["blue_hd"]))
    clip = write_color_video(tmp_path / "q.mp4", [(3, GREEN)], fps=5)
    assert Path(_search(library, clip=clip, min_relevance=0, k=1)[0].video).name == "green.mp4"
    lib_row = lib.catalog.video_by_path(files["event"])
    like = _search(library, moment=MomentRef(lib_row["id"], 7.5, 11.5), min_relevance=0, k=2)
    assert Path(like[0].video).name == "blue.mp4"  # more like the blue moment; the source video is excluded


def test_bad_queries_say_what_to_do(library: tuple[Library, dict[str, Path]], tmp_path: Path) -> None:
    with pytest.raises(SearchError, match="empty"):
        _search(library, text=" \t\x00 ")
    with pytest.raises(SearchError, match="exactly one"):
        _search(library)
    junk = tmp_path / "junk.png"
    junk.write_bytes(b"not an image")
    with pytest.raises(SearchError, match=r"junk\.png"):
        _search(library, image=junk)
    hits = _search(library, text="blue " * 3000 + "\u00e9t\u00e9 \u84dd\u8272", min_relevance=0, k=3)
    assert len(hits) == 3  # 10,000+ characters and non-English text still answer


def test_curves_cover_returned_videos(library: tuple[Library, dict[str, Path]]) -> None:
    lib, files = library
    searcher = Searcher(lib, lib.encoder())
    results = searcher.search(Query(text="blue", min_relevance=0, k=2))
    searcher.close()
    event = lib.catalog.video_by_path(files["event"])["id"]
    assert set(results.curves) == {h.video_id for h in results.videos}
    if event in results.curves:
        curve = results.curves[event]
        inside = (curve.times > 8) & (curve.times < 11)
        assert curve.relevance[inside].min() > curve.relevance[curve.times < 5].max()


@pytest.mark.slow
def test_hour_long_video_moment(tmp_path: Path) -> None:
    long = write_color_video(tmp_path / "v" / "long.mp4", [(3000, RED), (20, PURPLE), (580, RED)], fps=1, size=(64, 48))
    lib = Library(tmp_path / "home", settings=EngineSettings(model="fake:color"))
    lib.add_folder(tmp_path / "v")
    lib.index()
    searcher = Searcher(lib, lib.encoder())
    moments = searcher.search(Query(text="purple", mode="moments", min_relevance=0, k=3)).moments
    searcher.close()
    assert moments and moments[0].video == str(long)
    assert temporal_iou((moments[0].start, moments[0].end), (3000.0, 3020.0)) >= 0.7


def test_pure_scoring_and_moment_functions() -> None:
    sims = np.array([0.1, 0.9, 0.2])
    assert fine_similarity(sims[:1]) == pytest.approx(0.1)
    assert fine_similarity(sims, tau=1e-4) == pytest.approx(0.9)
    assert sims.mean() < fine_similarity(sims) < 0.9
    t = np.arange(0, 20, 1.0)
    flat = smooth_curve(t, np.ones_like(t))
    assert np.allclose(flat, 1.0)
    curve = np.where((t >= 8) & (t <= 11), 0.9, 0.1)
    cuts = np.zeros_like(t, dtype=bool)
    cuts[8] = cuts[12] = True
    best = propose(t, curve, cuts, duration=20)[0]
    assert (best.start, best.end) == (8.0, 12.0)  # snapped to the cuts on both sides
    no_cuts = propose(t, curve, np.zeros_like(cuts), duration=20)[0]
    assert (no_cuts.start, no_cuts.end) == (7.5, 11.5)
    assert calibration.relevance(calibration.Z_MID) == pytest.approx(50)
    assert calibration.relevance(-5) < 1 and calibration.relevance(8) > 99


def test_concept_head_explains_hits(library: tuple[Library, dict[str, Path]]) -> None:
    hits = _search(library, text="a blue sky", min_relevance=0, k=2)
    assert hits[0].why.concepts[:1] == ("blue",)
    moments = _search(library, text="something red", mode="moments", min_relevance=0, k=1)
    assert moments[0].why.concepts[:1] == ("red",)


def test_sparse_codes_follow_the_spec() -> None:
    from engine.models.base import ConceptBank
    from engine.search.scoring import sparse_codes, sparse_embed

    rng = np.random.default_rng(0)
    x = rng.standard_normal((5, 8)).astype(np.float32)
    one = ConceptBank(np.ones((1, 8), np.float32) / np.sqrt(8), ("only",), top_k=16)
    codes = sparse_codes(x, one)
    assert np.allclose(codes, 1.0)  # n_c = 1: every sparse embedding is the same, so ranking stays dense
    emb = sparse_embed(codes, one)
    assert np.allclose(emb @ emb.T, 1.0)
    bank = ConceptBank(rng.standard_normal((32, 8)).astype(np.float32), tuple(str(i) for i in range(32)), top_k=4)
    codes = sparse_codes(x, bank)
    assert ((codes > 0).sum(axis=1) == 4).all() and np.allclose(codes.sum(axis=1), 1.0)


def test_emcl_rerank_setting_rescores_candidates(library: tuple[Library, dict[str, Path]]) -> None:
    lib, files = library
    plain = _search(library, text="blue", min_relevance=0, k=5)
    lib.settings = lib.settings.replace(emcl_rerank=True)
    try:
        reranked = _search(library, text="blue", min_relevance=0, k=5)
    finally:
        lib.settings = lib.settings.replace(emcl_rerank=False)
    assert {h.video for h in reranked} == {h.video for h in plain}
    assert [h.score for h in reranked] != [h.score for h in plain]  # EMCL refined the coarse term
    assert reranked[0].video in (str(files["event"]), str(files["blue_hd"]))
    # The background was refined like the query, so relevance stays a calibrated figure the list follows
    # (re-judging the refined score against the unrefined background put every video near 100).
    relevance = [h.relevance for h in reranked]
    assert relevance == sorted(relevance, reverse=True) and relevance[0] > relevance[1] + 20
