"""A run trained with component negatives scores text queries through search as it was trained: ½(pooled match +
word-frame match) over its best window (losses.md §1.4, issue 12); ``--no-word-scores`` gives the pooled match
alone, and the heatmap and the moments are the same either way."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from engine.cli import main
from engine.library.library import Library
from engine.search.query import Query
from engine.search.searcher import Searcher
from engine.search.word_scores import video_word_similarity
from engine.settings import load as load_settings
from tests.engine.moving_clips import RIGHT, write_training_set, write_twin_library


@pytest.fixture(scope="module")
def component_library(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """`scenefind negatives --no-llm`, then `scenefind --model scratch:tiny train --objective component` (two epochs),
    and a library of clips beside their reversed twins indexed with the run through its head: (home, run)."""
    root = tmp_path_factory.mktemp("component")
    data = write_training_set(root / "clips", per_direction=4)
    negatives, run, home = root / "negatives.jsonl", root / "run", root / "home"
    write_twin_library(root / "videos")
    with pytest.MonkeyPatch.context() as mp:  # module scope: the per-test home and cache are not set up yet
        mp.setenv("SCENEFIND_HOME", str(home))
        mp.setenv("SCENEFIND_CACHE", str(root / "cache"))
        assert main(["--no-progress", "negatives", str(data), "--no-llm", "--out", str(negatives)]) == 0
        args = ["train", "--data", str(data), "--negatives", str(negatives), "--objective", "component"]
        flags = ["--epochs", "2", "--lr", "1e-3", "--head-lr", "1e-3", "--device", "cpu", "--out", str(run)]
        assert main(["--model", "scratch:tiny", "--no-progress", *args, *flags]) == 0
        assert main(["--home", str(home), "add", str(root / "videos")]) == 0
        (home / "settings.toml").write_text("detect_cuts = false\n", encoding="utf-8")
        assert main(["--home", str(home), "--model", str(run), "--no-progress", "index"]) == 0
    return home, run


def _search(home: Path, run: Path, *, word_scores: bool, mode: str = "videos"):
    with Library(home) as lib:
        lib.settings = lib.settings.replace(model=str(run), word_scores=word_scores)
        searcher = Searcher(lib, lib.encoder())
        try:
            results = searcher.search(Query(text=RIGHT, k=20, min_relevance=0.0, mode=mode))
            videos = {int(h.video_id): searcher._load(int(h.video_id)) for h in results.videos}
            words = searcher._query_words(Query(text=RIGHT), text=True)
            return results, videos, words, searcher.words
        finally:
            searcher.close()


def test_search_scores_a_component_run_by_its_training_score(component_library) -> None:
    home, run = component_library
    with_words, videos, words, scorer = _search(home, run, word_scores=True)
    pooled, _, _, no_scorer = _search(home, run, word_scores=False)
    assert scorer is not None and no_scorer is None and words is not None
    by_id = {h.video_id: h for h in pooled.videos}
    assert with_words.videos and set(by_id) == {h.video_id for h in with_words.videos}
    for hit in with_words.videos:  # the training score's mix: ½(pooled + word-frame over the best window)
        v = videos[hit.video_id]
        fine = video_word_similarity(scorer, words, v.frames, v.times, v.spans or [], v.duration)[0]
        assert hit.score == pytest.approx(0.5 * (by_id[hit.video_id].score + fine), abs=1e-5)
        assert 0.0 <= hit.relevance <= 100.0
    assert any(abs(h.score - by_id[h.video_id].score) > 1e-4 for h in with_words.videos)
    places = [(h.relevance, h.score) for h in with_words.videos]
    assert places == sorted(places, reverse=True)  # the list follows the number it shows
    for vid, curve in with_words.curves.items():  # the heatmap is the pooled per-frame match either way
        np.testing.assert_allclose(curve.scores, pooled.curves[vid].scores)


def test_moments_are_the_same_with_and_without_word_scores(component_library) -> None:
    home, run = component_library
    a, _, _, _ = _search(home, run, word_scores=True, mode="moments")
    b, _, _, _ = _search(home, run, word_scores=False, mode="moments")
    assert a.moments and [(m.video_id, m.start, m.end, m.score) for m in a.moments] == [
        (m.video_id, m.start, m.end, m.score) for m in b.moments
    ]


def test_the_cli_flag_turns_word_scores_off_for_one_search_without_changing_the_settings(
    component_library, capsys: pytest.CaptureFixture[str]
) -> None:
    home, run = component_library
    before = load_settings(home / "settings.toml")
    got = {}
    for flag in ("--word-scores", "--no-word-scores"):
        code = main(["--home", str(home), "--model", str(run), "search", RIGHT, flag, "--json", "--all", "-k", "20"])
        out, err = capsys.readouterr()
        assert code == 0, err
        got[flag] = {h["video"]: h["score"] for h in json.loads(out)}
    pooled, _, _, _ = _search(home, run, word_scores=False)
    assert got["--no-word-scores"] == pytest.approx({h.video: h.score for h in pooled.videos}, abs=1e-6)
    assert got["--word-scores"] != pytest.approx(got["--no-word-scores"], abs=1e-6)
    assert load_settings(home / "settings.toml") == before  # a search flag is not a saved setting
