"""From training to search: a scratch:tiny run trained with `scenefind train` on real video files indexes through its
temporal head and tells a clip from its time-reversal; the same run forced to mean pooling cannot (issue 12)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from engine.cli import main
from engine.library.library import Library
from engine.search.query import Query
from engine.search.searcher import Searcher
from tests.engine.moving_clips import RIGHT, write_training_set, write_twin_library

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def trained_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``scenefind train CONFIG --model scratch:tiny`` for 8 epochs (seconds) on 32 clips of a moving circle.

    Every clip is for training (``val_fraction = 0``: with four captions a validation split would say little);
    ``best`` is then the last epoch."""
    root = tmp_path_factory.mktemp("trained")
    data = write_training_set(root / "clips", per_direction=8)
    run = root / "run"
    config = root / "train.toml"
    config.write_text("val_fraction = 0.0\nlr = 1e-3\nhead_lr = 1e-3\nbatch_size = 16\n", encoding="utf-8")
    with pytest.MonkeyPatch.context() as mp:  # module scope: the per-test home and cache are not set up yet
        mp.setenv("SCENEFIND_HOME", str(root / "home"))
        mp.setenv("SCENEFIND_CACHE", str(root / "cache"))
        args = ["train", str(config), "--data", str(data), "--objective", "infonce", "--epochs", "8"]
        code = main(["--model", "scratch:tiny", "--no-progress", *args, "--device", "cpu", "--out", str(run)])
    assert code == 0 and (run / "best" / "heads.safetensors").is_file()
    return run


@pytest.fixture(scope="module")
def twin_library(trained_run: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[tuple[Path, Path]]]:
    """A library of new clips beside their reversed twins, indexed with the run through its head and with mean
    pooling (two indexes of one run, side by side)."""
    root = tmp_path_factory.mktemp("twins")
    twins = write_twin_library(root / "videos")
    home = root / "home"
    with Library(home) as lib:
        lib.add_folder(root / "videos")
        for pooling in ("auto", "mean"):
            lib.settings = lib.settings.replace(model=str(trained_run), detect_cuts=False, pooling=pooling)
            report = lib.index()
            assert report.indexed == 3 * len(twins) and not report.failed
    return home, twins


def _search(home: Path, model: str, pooling: str, *, moments: bool = False) -> tuple[dict[str, float], dict]:
    with Library(home) as lib:
        lib.settings = lib.settings.replace(model=model, detect_cuts=False, pooling=pooling)
        searcher = Searcher(lib, lib.encoder())
        mode = "moments" if moments else "videos"
        results = searcher.search(Query(text=RIGHT, k=20, min_relevance=0.0, mode=mode))
        searcher.close()
    hits = results.moments if moments else results.videos
    best: dict[str, float] = {}
    for hit in hits:
        best.setdefault(Path(hit.video).name, hit.score)
    curves = {Path(h.video).name: results.curves[h.video_id].scores for h in hits}
    return best, curves


def test_head_pooling_ranks_a_clip_above_its_reversed_twin_and_mean_pooling_cannot(trained_run, twin_library) -> None:
    home, twins = twin_library
    with Library(home) as lib:
        ids = {m["model_id"]: m["videos"] for m in lib.catalog.models()}
    assert len(ids) == 2 and any(i.endswith("+mean") for i in ids) and set(ids.values()) == {3 * len(twins)}

    head, head_curves = _search(home, str(trained_run), "auto")
    mean, mean_curves = _search(home, str(trained_run), "mean")
    for clip, twin in twins:
        c, t = clip.name, twin.name
        assert head[c] > head[t] + 0.01, (c, head[c], head[t])  # the trained direction wins, clearly
        assert mean[c] <= mean[t] + 1e-6, (c, mean[c], mean[t])  # a tie (or a loss): mean pooling is order-blind
        # the moment curve follows the head: the clip matches "moving right" better all along; under mean pooling
        # the twin's curve is the clip's mirrored in time, so neither is better
        assert head_curves[c].mean() > head_curves[t].mean()
        np.testing.assert_allclose(np.sort(mean_curves[c]), np.sort(mean_curves[t]), atol=1e-5)


def test_moments_work_through_the_head_and_with_mean_pooling(trained_run, twin_library) -> None:
    home, twins = twin_library
    for pooling in ("auto", "mean"):
        best, _ = _search(home, str(trained_run), pooling, moments=True)
        assert {clip.name for clip, _ in twins} <= set(best)
    head, _ = _search(home, str(trained_run), "auto", moments=True)
    assert all(head[clip.name] > head[twin.name] for clip, twin in twins)


def test_run_best_after_a_restart_finds_the_same_hits(trained_run, twin_library) -> None:
    """A new process naming RUN/best (the in-process searches named RUN) gets the same model id, the same index and
    the same hits."""
    home, _ = twin_library
    here, _ = _search(home, str(trained_run), "auto")
    env = {**os.environ, "PYTHONPATH": str(REPO), "SCENEFIND_HOME": str(home)}
    args = ["--home", str(home), "--model", str(trained_run / "best"), "search", RIGHT, "--json", "--all", "-k", "20"]
    out = subprocess.run([sys.executable, "-m", "engine.cli", *args], env=env, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    there = {Path(h["video"]).name: h["score"] for h in json.loads(out.stdout)}
    assert list(there) == list(here)  # the same ranking (both in relevance order, issue 13 item 4)
    assert all(abs(there[name] - here[name]) < 1e-6 for name in here)


def test_the_mean_index_coexists_and_switching_models_keeps_both(trained_run, twin_library, capsys) -> None:
    home, twins = twin_library
    code = main(["--home", str(home), "--model", str(trained_run), "--pooling", "mean", "--no-progress", "index"])
    out = capsys.readouterr().out
    assert code == 0 and f"{3 * len(twins)} unchanged" in out and "nothing new to index" in out  # nothing re-pooled
    code = main(["--home", str(home), "status"])
    out = capsys.readouterr().out
    assert code == 0 and out.count("also indexed with run:scenefind-synthetic:") == 2


def test_a_run_brings_its_own_calibration_captions_and_search_judges_against_them(trained_run, twin_library) -> None:
    """Relevance is judged against the run's own training captions (kept in its config.json), not the everyday
    ones a model of this synthetic world never saw; a run whose list is not a list of captions is refused."""
    import csv
    import shutil

    from engine.models.base import ModelUnavailable
    from engine.models.registry import create_encoder
    from engine.search import calibration

    config = json.loads((trained_run / "best" / "config.json").read_text(encoding="utf-8"))
    trained_on = {row["caption"] for row in csv.DictReader((trained_run.parent / "clips" / "clips.csv").open())}
    own = config["calibration_captions"]
    assert own and set(own) <= trained_on and len(own) == len(set(own))
    home, _ = twin_library
    with Library(home) as lib:
        lib.settings = lib.settings.replace(model=str(trained_run), detect_cuts=False)
        searcher = Searcher(lib, lib.encoder())
        assert searcher.background.captions() == own != calibration.background_captions()
        relevance = [h.relevance for h in searcher.search(Query(text=RIGHT, k=20, min_relevance=0.0)).videos]
        searcher.close()
    assert len(set(np.round(relevance, 1))) > len(relevance) // 2  # a scale of its own: not all alike at the top
    broken = trained_run.parent / "broken"
    shutil.copytree(trained_run / "best", broken)
    (broken / "config.json").write_text(json.dumps({**config, "calibration_captions": "a circle"}), encoding="utf-8")
    with pytest.raises(ModelUnavailable, match=r"broken/config\.json: calibration_captions must be a list"):
        create_encoder(str(broken))
