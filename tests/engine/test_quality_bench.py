"""``bench quality``: its metric definitions on hand-made input, its world, its command runner, and a quick run."""

from __future__ import annotations

import json
import math
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from engine.bench.commands import Command, CommandFailed, run_commands
from engine.bench.quality_metrics import moment_metrics, pair_scores, rank_of, recall_at, twin_accuracy, twin_win
from engine.bench.quality_report import format_table, goals
from engine.bench.quality_world import WorldSpec, held_out_scenes, memory_test_clips, write_world
from engine.jobs import CancelToken, JobCancelled

TINY = WorldSpec(n_train=6, n_test=4, n_long=1, long_seconds=(24.0, 28.0), events=(2, 2))


def _hit(video: str, score: float, **extra: float) -> dict[str, object]:
    return {"video": video, "score": score, **extra}


# -- metrics ----------------------------------------------------------------------------------------------


def test_rank_is_pessimistic_on_ties_and_infinite_when_not_returned() -> None:
    hits = [_hit("a", 0.9), _hit("b", 0.7), _hit("c", 0.7), _hit("d", 0.1)]
    assert rank_of("a", hits) == 1
    assert rank_of("b", hits) == 3 and rank_of("c", hits) == 3  # a tie ranks after everything it ties with
    assert rank_of("d", hits) == 4
    assert rank_of("z", hits) == math.inf
    assert recall_at([1, 3, math.inf, 5], 1) == 25.0 and recall_at([1, 3, math.inf, 5], 5) == 75.0
    assert math.isnan(recall_at([], 1))


def test_twin_pairs_count_a_tie_as_a_loss() -> None:
    assert twin_win(0.5, 0.4) and not twin_win(0.4, 0.5)
    assert not twin_win(0.5, 0.5)  # a tie is a loss: mean pooling of a clip and its reversal ties
    assert not twin_win(None, 0.1) and twin_win(0.1, None) and not twin_win(None, None)
    assert twin_accuracy([(0.5, 0.4), (0.5, 0.5), (0.3, 0.6), (0.2, None)]) == 50.0
    assert twin_accuracy([(1.0, 1.0)] * 10) == 0.0
    assert math.isnan(twin_accuracy([]))
    assert pair_scores([_hit("a", 0.3), _hit("c", 0.2)], "a", "b") == ((0.0, 0.3), None)


def test_figures_follow_the_list_a_user_sees_not_the_raw_scores() -> None:
    """Search lists hits by relevance (calibrated per video), ties by score; the figures follow that list."""
    listed = [_hit("b", 0.6, relevance=99.0), _hit("a", 0.9, relevance=98.0), _hit("c", 0.2, relevance=98.0)]
    assert rank_of("b", listed) == 1 and rank_of("a", listed) == 2 and rank_of("c", listed) == 3
    right, twin = pair_scores(listed, "a", "b")
    assert not twin_win(right, twin)  # a scores higher but is listed below b: a loss
    assert twin_win(*pair_scores(listed, "a", "c"))  # equal relevance: the score decides, as the list does
    tie = [_hit("a", 0.5, relevance=90.0), _hit("b", 0.5, relevance=90.0)]
    assert not twin_win(*pair_scores(tie, "a", "b")) and rank_of("a", tie) == 2
    moments = [
        _hit("v", 0.2, relevance=99.0, start=30.0, end=34.0),
        _hit("v", 0.9, relevance=50.0, start=10.0, end=14.0),
    ]
    figures = moment_metrics([("q", "v", 60.0, (10.0, 14.0), moments)])
    assert figures["R1@0.5"] == 0.0 and figures["mAP"] == pytest.approx(50.0)  # the listed first moment is wrong


def test_moment_metrics_follow_qvhighlights() -> None:
    exact = [_hit("v", 0.9, start=10.0, end=14.0), _hit("v", 0.5, start=30.0, end=34.0)]
    shifted = [_hit("other", 5.0, start=0.0, end=4.0), _hit("v", 0.8, start=11.2, end=15.0)]  # IoU 2.8/5 = 0.56
    answers = [
        ("a", "v", 60.0, (10.0, 14.0), exact),
        ("b", "v", 60.0, (10.0, 14.0), shifted),
        ("c", "v", 60.0, (40.0, 44.0), []),  # nothing returned in its video: a miss, not left out
    ]
    figures = moment_metrics(answers)
    assert figures["R1@0.5"] == pytest.approx(200 / 3, abs=0.01)  # exact and 0.56; the hit in "other" is ignored
    assert figures["R1@0.7"] == pytest.approx(100 / 3, abs=0.01)
    # AP per query over IoU 0.5:0.05:0.95: exact 1 everywhere (its later false window does not lower it),
    # shifted 1 at 0.5 and 0.55 only, the miss 0
    assert figures["mAP"] == pytest.approx(100 * (1 + 0.2 + 0) / 3, abs=0.01)
    assert moment_metrics(answers[:1]) == {"R1@0.5": 100.0, "R1@0.7": 100.0, "mAP": 100.0}


def _rows(**changes: dict[str, float]) -> list[dict[str, object]]:
    base = {"R1": 50.0, "R5": 90.0, "twin_reversed": 90.0, "twin_colour": 80.0, "MR_R1@0.5": 60.0}
    memory = {**base, "comp_reverse": 90.0, "comp_swap_colors": 80.0}
    mean = {**base, "twin_reversed": 45.0, "twin_colour": 70.0, "MR_R1@0.5": 40.0}
    rows = []
    for objective in ("infonce", "component"):
        for evaluation, values in (
            ("bench-train", memory),
            ("memory", memory),
            ("head-resample", base),
            ("mean", mean),
        ):
            row = {**values, **changes.get(f"{objective}/{evaluation}", {})}
            rows.append(
                {"variant": objective, "objective": objective, "evaluation": evaluation, "label": evaluation, **row}
            )
    return rows


class _Setup:
    windows = ("resample",)


OBJECTIVES = (("InfoNCE", "infonce"), ("+ component negatives", "component"))


def test_goal_lines_say_pass_or_fail_with_their_figures() -> None:
    rows = _rows(
        **{
            "component/head-resample": {"twin_reversed": 96.0, "twin_colour": 84.0, "R1": 47.0},
            "component/bench-train": {"comp_reverse": 96.0, "comp_swap_colors": 86.0},
            "component/memory": {"comp_reverse": 95.0, "comp_swap_colors": 85.0, "twin_reversed": 99.0},
        }
    )
    lines = goals(rows, OBJECTIVES, _Setup(), seconds=600.0, load=2.0)
    text = "\n".join(lines)
    assert all(line.startswith(("PASS  ", "FAIL  ")) for line in lines)
    assert "PASS  InfoNCE: twin pairs, time-reversed: head 90.0 vs mean 45.0 (+45.0 points" in text
    assert "FAIL  InfoNCE: twin pairs, colour-swapped: head 80.0 vs mean 70.0 (+10.0 points" in text
    assert "PASS  component negatives beat InfoNCE through search on twin pairs: 90.0 vs 85.0" in text
    assert "PASS  the compositional gain survives search: +5.0 points" in text and "+6.0 that bench train" in text
    assert "83% kept" in text and "these test clips: +5.0 on reverse and swap-colours, +4.5 on their twin pairs" in text
    assert "FAIL  video R@1 through search, component negatives vs InfoNCE: 47.0 vs 50.0 (-3.0" in text
    assert "PASS  InfoNCE: moment R1@0.5 on the long videos, head 60.0 vs mean 40.0" in text
    assert "PASS  whole benchmark 10.0 min" in text
    no_gain = goals(_rows(), OBJECTIVES, _Setup(), seconds=1300.0, load=2.0)
    assert any(
        line.startswith("FAIL  the compositional gain survives search: bench train's evaluation measures no gain")
        for line in no_gain
    )
    assert no_gain[-1].startswith("FAIL  whole benchmark 21.7 min")
    table = format_table(_rows())
    assert table.splitlines()[0].startswith("| objective | evaluated | R@1 | R@5 | twin rev | twin col |")
    assert "| – |" in table  # a figure a row does not have is a dash, never a made-up number


def test_the_benchmark_trains_as_train_does_and_its_legend_says_which_losses() -> None:
    """bench quality measures what a user's `scenefind train` gives: the reversed-clip term (ours, beyond
    losses.md) is off unless asked for, and the printed legend says which losses trained either way."""
    import dataclasses

    from engine.bench.quality_bench import QualitySetup
    from engine.bench.quality_report import format_report
    from engine.train.objective_settings import ObjectiveSettings

    setup = QualitySetup()
    assert setup.time_reversal == ObjectiveSettings().time_reversal == 0.0
    report = format_report(_rows(), ["PASS  x"], setup, seeds=[0], seconds=60.0, loads=[1.0])
    assert "Both trainings use losses.md's losses alone (the reversed-clip term off" in report
    weighted = format_report(
        _rows(), ["PASS  x"], dataclasses.replace(setup, time_reversal=0.25), seeds=[0], seconds=60.0, loads=[1.0]
    )
    assert "add the reversed-clip term (engine.train.time_reversal) with weight 0.25." in weighted
    assert "losses.md's losses alone" not in weighted


def test_each_seed_gets_its_own_verdict_beside_the_mean() -> None:
    """A mean over seeds can pass where one seed fails; the report says so, seed by seed, failing lines in full."""
    from engine.bench.quality_report import seed_lines

    weak = _rows(**{"infonce/head-resample": {"twin_reversed": 55.0}})  # +10 over mean pooling: fails
    strong = _rows(**{"infonce/head-resample": {"twin_reversed": 100.0}})
    lines = seed_lines({0: weak, 1: strong}, OBJECTIVES, _Setup())
    own = {seed: goals(rows, OBJECTIVES, _Setup(), 0.0, math.nan)[:-1] for seed, rows in ((0, weak), (1, strong))}
    expected = []  # every goal but the whole run's wall clock, which no seed has alone
    for seed, verdicts in own.items():
        failed = [line for line in verdicts if line.startswith("FAIL")]
        expected += [f"seed {seed}: {len(verdicts) - len(failed)} of {len(verdicts)} pass", *(f"  {f}" for f in failed)]
    assert lines == expected
    assert "  FAIL  InfoNCE: twin pairs, time-reversed: head 55.0 vs mean 45.0 (+10.0 points; goal ≥ +30)" in lines
    seed1 = next(i for i, line in enumerate(lines) if line.startswith("seed 1: "))
    assert not any("InfoNCE: twin pairs, time-reversed" in line for line in lines[seed1:])  # seed 1 passes it
    assert not any("whole benchmark" in line for line in lines)


# -- the world --------------------------------------------------------------------------------------------


def test_world_files_twins_and_long_videos(tmp_path: Path) -> None:
    from engine.media.decode import probe, sample_frames

    world = write_world(tmp_path / "w", seed=3, spec=TINY)
    assert len(world.tests) == 4 and len(world.long_videos) == 1
    captions = [c for t in world.tests for c in (t.caption, t.reversed_caption, t.colour_caption) if c]
    captions += [e.caption for v in world.long_videos for e in v.events]
    assert len(captions) == len(set(captions))  # every query has exactly one right answer
    for t in world.tests:
        assert Path(t.clip).parent == Path(t.folder) and Path(t.reversed_twin).is_file()
        assert "from" in t.reversed_caption and t.reversed_caption != t.caption
        assert (t.colour_twin is None) == (t.colour_caption is None)
    clip = np.stack([f.image for f in sample_frames(world.tests[0].clip, every_s=0.5, cuts=False)])
    rev = np.stack([f.image for f in sample_frames(world.tests[0].reversed_twin, every_s=0.5, cuts=False)])
    assert clip.shape[0] == 8 and probe(world.tests[0].clip).duration_s == pytest.approx(4.0)
    assert np.abs(clip[::-1].astype(float) - rev.astype(float)).mean() < 8  # the same frames backwards, up to codec
    long = world.long_videos[0]
    assert 24 <= long.duration <= 28 and probe(long.path).duration_s == pytest.approx(long.duration)
    starts = [e.start for e in long.events]
    assert starts[0] > 0 and long.events[-1].end < long.duration and min(np.diff(starts)) > 4  # between distractors
    assert json.loads((tmp_path / "w" / "world.json").read_text())["world"]["seed"] == 3
    again = write_world(tmp_path / "w", seed=3, spec=TINY)
    assert again.tests == world.tests  # reused, and deterministic
    clips, reversed_frames, colour_frames, has_colour = memory_test_clips(3, TINY)
    assert [clips.caption(i) for i in range(len(clips))] == [t.caption for t in world.tests]
    assert np.array_equal(reversed_frames[0], clips.frames(0)[::-1])
    swapped = next(i for i, t in enumerate(world.tests) if t.colour_twin is not None)
    assert not np.array_equal(colour_frames[swapped], clips.frames(swapped))
    assert list(has_colour) == [t.colour_twin is not None for t in world.tests]
    assert "reverse" in clips.negatives(0) and held_out_scenes(3, TINY)[2] == [2]


# -- the command runner -----------------------------------------------------------------------------------


def test_commands_run_in_order_and_a_failure_names_its_log(tmp_path: Path) -> None:
    home = tmp_path / "lib"
    (tmp_path / "videos").mkdir()
    order: list[str] = []
    commands = [
        Command(
            "status",
            ["--home", str(home), "status", "--json"],
            tmp_path / "s.log",
            stdout=tmp_path / "s.json",
            after=("add",),
        ),
        Command("add", ["--home", str(home), "add", str(tmp_path / "videos")], tmp_path / "a.log"),
    ]
    for workers in (1, 2):
        order.clear()
        run_commands(commands, workers, done=lambda c: order.append(c.name))
        assert order == ["add", "status"]
        assert json.loads((tmp_path / "s.json").read_text())["folders"][0]["path"] == str(tmp_path / "videos")
    bad = [Command("bad", ["--home", str(home), "add", str(tmp_path / "missing")], tmp_path / "b.log")]
    for workers in (1, 2):
        with pytest.raises(CommandFailed, match="missing") as failed:
            run_commands(bad, workers)
        assert "exited with 2" in str(failed.value) and str(tmp_path / "b.log") in str(failed.value)


def test_cancel_stops_running_commands(tmp_path: Path) -> None:
    home = tmp_path / "lib"
    (tmp_path / "videos").mkdir()
    run_commands([Command("add", ["--home", str(home), "add", str(tmp_path / "videos")], tmp_path / "a.log")])
    token = CancelToken()
    log = tmp_path / "w.log"
    watch = Command("watch", ["--home", str(home), "--model", "fake:color", "index", "--watch"], log)
    cancelled_at: list[float] = []

    def cancel_once_watching() -> None:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and not (log.is_file() and "Watching" in log.read_text()):
            time.sleep(0.1)
        cancelled_at.append(time.monotonic())
        token.cancel()

    threading.Thread(target=cancel_once_watching, daemon=True).start()
    with pytest.raises(JobCancelled):
        run_commands([watch], 2, cancel=token)
    assert "Watching" in log.read_text()  # it was running when the cancel came
    assert time.monotonic() - cancelled_at[0] < 30  # it got its SIGINT and stopped; nothing is left running


# -- the benchmark, --quick ---------------------------------------------------------------------------------


def test_quick_run_prints_one_table_with_every_row(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """The whole loop on a tiny world (train, index, search --batch, score), as `scenefind bench quality --quick`."""
    from engine.bench.quality_bench import QUICK_WINDOWS, read_answers
    from engine.bench.quality_report import COLUMNS
    from engine.cli import main

    work = tmp_path / "work"
    code = main(["--no-progress", "bench", "quality", "--quick", "--json", "--keep", str(work)])
    out, err = capsys.readouterr()
    assert code == 0, err
    figures = json.loads(out)
    rows = figures["rows"]
    heads = [f"head-{w}" for w in QUICK_WINDOWS]
    evaluations = {  # the component run also searched by its pooled vectors alone (--no-word-scores)
        "infonce": ["bench-train", "memory", *heads, "mean"],
        "component": ["bench-train", "memory", heads[0], f"{heads[0]}-pooled", *heads[1:], "mean"],
    }
    assert [(r["objective"], r["evaluation"]) for r in rows] == [
        (o, e) for o in ("infonce", "component") for e in evaluations[o]
    ]
    answers_dir = work / "seed0" / "answers"
    with_words = read_answers(answers_dir / f"component-{heads[0]}.jsonl")
    pooled = read_answers(answers_dir / f"component-{heads[0]}-pooled.jsonl")
    assert with_words.keys() == pooled.keys()
    scores = [
        ({h["video"]: h["score"] for h in with_words[q]["hits"]}, {h["video"]: h["score"] for h in pooled[q]["hits"]})
        for q in with_words
        if not q.startswith("moment:")
    ]
    assert any(a[v] != pytest.approx(b[v], abs=1e-6) for a, b in scores for v in a.keys() & b.keys())
    for row in rows:
        shown = [row[key] for key, _ in COLUMNS if key in row]
        assert all(v is None or 0.0 <= v <= 100.0 for v in shown), row
    search_rows = [r for r in rows if r["evaluation"] not in ("memory", "bench-train")]
    assert all(r["MR_R1@0.5"] is not None and r["R1"] is not None for r in search_rows)
    assert all("comp_reverse" not in r for r in search_rows)  # an in-memory figure is never put on a search row
    table = err[err.index("| objective |") :]
    assert len([line for line in table.splitlines() if line.startswith("| ")]) == 1 + len(rows)
    goal_lines = figures["goals"]
    assert len(goal_lines) == 4 + 3 + 2 + 1 and all(line[:6] in ("PASS  ", "FAIL  ") for line in goal_lines)
    # the twin-pair accuracy in the table is the strict comparison of the places in the answers' lists (relevance,
    # then score: a tie loses)
    world = json.loads((work / "seed0" / "world.json").read_text())["world"]
    for row in search_rows:
        answers = read_answers(work / "seed0" / "answers" / f"{row['objective']}-{row['evaluation']}.jsonl")
        wins = []
        for i, t in enumerate(world["tests"]):
            places = {h["video"]: (h["relevance"], h["score"]) for h in answers[f"pair:{i}"]["hits"]}
            wins.append(places[t["clip"]] > places[t["reversed_twin"]])
        assert row["twin_reversed"] == pytest.approx(100.0 * sum(wins) / len(wins))
