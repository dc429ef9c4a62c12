"""``scenefind eval-moments`` and ``scenefind eval``: hand-computed scores, real annotation files, the real flow.

The commands are driven through ``engine.cli.eval.register`` on a bare parser (as ``engine.cli`` wires
them). ``eval`` runs the real indexing pipeline; its searcher is either a scripted fake (so every metric is
known by hand) or, when present, the real ``Searcher`` with the weightless ``fake:color`` encoder.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import pytest

from engine.cli.eval import register
from engine.datasets import load_qvhighlights
from engine.evaluation.run import clip_saliency, evaluate
from engine.media.synthetic import write_color_video
from engine.search.query import Query
from engine.search.results import Curve, MomentHit, SearchResults, VideoHit, Why
from tests.engine.videos import BLUE, GREEN, RED, color_library


def _cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    parser = argparse.ArgumentParser(prog="scenefind")
    parser.add_argument("--home", type=Path)
    parser.add_argument("--model")
    parser.add_argument("--no-progress", action="store_true")
    commands = register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(["--no-progress", *argv])
    code = commands[args.command](args)
    out, err = capsys.readouterr()
    return code, out, err


def _write_jsonl(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


TINY_GT = [
    {
        "qid": 1,
        "query": "a",
        "duration": 8,
        "vid": "v1",
        "relevant_windows": [[2, 6]],
        "relevant_clip_ids": [1, 2],
        "saliency_scores": [[4, 2, 0], [3, 3, 1]],
    },
    {
        "qid": 2,
        "query": "b",
        "duration": 6,
        "vid": "v2",
        "relevant_windows": [[0, 2]],
        "relevant_clip_ids": [0],
        "saliency_scores": [[2, 2, 2]],
    },
]
TINY_PRED = [
    {
        "qid": 1,
        "query": "a",
        "vid": "v1",
        "pred_relevant_windows": [[2, 6, 0.9]],
        "pred_saliency_scores": [0.1, 0.9, 0.5, 0.2],
    },
    {
        "qid": 2,
        "query": "b",
        "vid": "v2",
        "pred_relevant_windows": [[1, 2, 0.8], [40, 50, 0.1]],
        "pred_saliency_scores": [0.1, 0.5, 0.3],
    },
]


def test_eval_moments_json_hand_computed(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    gt = _write_jsonl(tmp_path / "gt.jsonl", TINY_GT)
    pred = _write_jsonl(tmp_path / "pred.jsonl", TINY_PRED)
    code, out, _ = _cli(capsys, "eval-moments", "--pred", str(pred), "--gt", str(gt), "--json")
    assert code == 0
    assert json.loads(out) == {
        "MR-full-R1@0.5": 100.0,
        "MR-full-R1@0.7": 50.0,  # the second query's first window has IoU 0.5
        "MR-full-mAP": 55.0,
        "MR-full-mAP@0.5": 100.0,
        "MR-full-mAP@0.75": 50.0,
        "MR-long-mAP": None,  # no ground-truth window that long: nan, printed as null
        "MR-middle-mAP": None,
        "MR-short-mAP": 55.0,
        "HL-min-Fair-mAP": 50.0,
        "HL-min-Fair-Hit1": 50.0,
        "HL-min-Good-mAP": 25.0,
        "HL-min-Good-Hit1": 50.0,
        "HL-min-VeryGood-mAP": 16.67,
        "HL-min-VeryGood-Hit1": 50.0,
    }
    assert list(json.loads(out))[:2] == ["MR-full-R1@0.5", "MR-full-R1@0.7"]  # the official key order
    code, out, _ = _cli(capsys, "eval-moments", "--pred", str(pred), "--gt", str(gt), "--json", "--full")
    full = json.loads(out)
    assert code == 0 and list(full) == [
        "brief",
        "HL-min-Fair",
        "HL-min-Good",
        "HL-min-VeryGood",
        "full",
        "long",
        "middle",
        "short",
    ]
    assert full["full"]["MR-R1"]["0.5"] == 100.0 and full["full"]["MR-mAP"]["0.55"] == 50.0
    code, out, _ = _cli(capsys, "eval-moments", "--pred", str(pred), "--gt", str(gt))
    assert code == 0 and "MR-full-mAP                55.00" in out


def test_eval_moments_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    gt = _write_jsonl(tmp_path / "gt.jsonl", TINY_GT)
    only_one = _write_jsonl(tmp_path / "one.jsonl", TINY_PRED[:1])
    code, _, err = _cli(capsys, "eval-moments", "--pred", str(only_one), "--gt", str(gt), "--json")
    assert code == 2 and "must match" in err and "1 without a prediction [2]" in err
    code, out, _ = _cli(capsys, "eval-moments", "--pred", str(only_one), "--gt", str(gt), "--json", "--partial")
    assert code == 0 and json.loads(out)["MR-full-mAP"] == 100.0
    bad = tmp_path / "bad.jsonl"
    bad.write_text(json.dumps(TINY_PRED[0]) + "\n" + '{"qid": 2, "pred_relevant_windows": [[1, 2]]}\n')
    code, _, err = _cli(capsys, "eval-moments", "--pred", str(bad), "--gt", str(gt), "--json")
    assert code == 2 and f"{bad}:2: qid 2" in err
    code, _, err = _cli(capsys, "eval-moments", "--pred", str(tmp_path / "absent.jsonl"), "--gt", str(gt))
    assert code == 2 and "absent.jsonl" in err


def test_eval_moments_on_real_val_half_windows(
    shared_data: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Single-window val queries answered with the first half of their window: IoU 0.5 exactly; the saliency
    of each clip is its raters' mean, so the top clip is always a relevant one (HIT@1 100 at Fair)."""
    gt_path = shared_data / "annotations" / "qvhighlights" / "highlight_val_release.jsonl"
    rows = []
    for line in gt_path.read_text().splitlines():
        d = json.loads(line)
        if len(d["relevant_windows"]) != 1:
            continue
        (s, e) = d["relevant_windows"][0]
        saliency = np.zeros(int(d["duration"] / 2))
        saliency[d["relevant_clip_ids"]] = np.mean(d["saliency_scores"], axis=1)
        rows.append(
            {
                "qid": d["qid"],
                "query": d["query"],
                "vid": d["vid"],
                "pred_relevant_windows": [[s, s + (e - s) / 2, 1.0]],
                "pred_saliency_scores": saliency.tolist(),
            }
        )
    pred = _write_jsonl(tmp_path / "pred.jsonl", rows)
    code, out, _ = _cli(capsys, "eval-moments", "--pred", str(pred), "--gt", str(gt_path), "--json", "--partial")
    brief = json.loads(out)
    assert code == 0 and len(rows) == 1020
    assert brief["MR-full-R1@0.5"] == 100.0 and brief["MR-full-R1@0.7"] == 0.0
    assert brief["MR-full-mAP@0.5"] == 100.0 and brief["MR-full-mAP@0.75"] == 0.0 and brief["MR-full-mAP"] == 10.0
    assert brief["HL-min-Fair-Hit1"] == 100.0


# --- scenefind eval -----------------------------------------------------------------------------------


class ScriptedSearcher:
    """Answers each query text from a script keyed by text; hits name videos by file stem."""

    def __init__(self, lib: object, script: dict[str, list[tuple]], curves: dict[str, tuple] | None = None) -> None:
        self.ids = {Path(v["path"]).stem: v["id"] for v in lib.catalog.videos()}  # type: ignore[attr-defined]
        self.script, self.curves, self.queries, self.closed = script, curves or {}, [], False

    def search(self, query: Query) -> SearchResults:
        self.queries.append(query)
        results = SearchResults(query=query)
        for stem, *rest in self.script.get(query.text or "", []):
            vid = self.ids[stem]
            if query.mode == "videos":
                results.videos.append(VideoHit(stem, vid, rest[0], 50.0, 0.0, 10.0, Why(0.0)))
            else:
                start, end, score = rest
                results.moments.append(MomentHit(stem, vid, start, end, score, 50.0, start, 10.0, Why(start)))
        for stem, (times, scores) in self.curves.items():
            times, scores = np.asarray(times, float), np.asarray(scores, float)
            results.curves[self.ids[stem]] = Curve(times, scores, scores)
        return results

    def close(self) -> None:
        self.closed = True


def test_eval_retrieval_with_scripted_searcher(shared_data: Path, tmp_path: Path) -> None:
    """The real MSR-VTT test file over the two real clips we have: 998 videos and queries are skipped."""
    script = {
        "a person is connecting something to system": [("video9771", 0.9), ("video9770", 0.5)],  # rank 2
        "a little girl does gymnastics": [("video9771", 0.8)],  # rank 1; video9770 not returned
    }
    made: list[ScriptedSearcher] = []

    def factory(lib: object, encoder: object) -> ScriptedSearcher:
        made.append(ScriptedSearcher(lib, script))
        return made[-1]

    report = evaluate(
        "msrvtt",
        shared_data / "annotations" / "msrvtt" / "MSRVTT_JSFUSION_test.csv",
        shared_data / "videos" / "antmmf",
        model="fake:color",
        home=tmp_path / "lib",
        searcher_factory=factory,
    )
    assert (report.queries, report.skipped_queries) == (2, 998)
    assert (report.dataset_videos, report.found_videos, report.missing_videos, report.failed_videos) == (
        1000,
        2,
        998,
        0,
    )
    m = report.metrics
    assert m["t2v_R1"] == 50.0 and m["t2v_MdR"] == 1.5 and m["t2v_MnR"] == 1.5 and m["t2v_R5"] == 100.0
    # v2t: video9770 -> its caption 0.5 vs nothing (rank 1); video9771 -> its caption 0.8 vs 0.9 (rank 2)
    assert m["v2t_R1"] == 50.0 and m["v2t_MdR"] == 1.5
    searcher = made[0]
    assert searcher.closed and all(q.mode == "videos" and q.min_relevance == 0 and q.k == 2 for q in searcher.queries)
    assert "2 indexed of 1000 (998 missing, 0 failed)" in report.table()


def test_eval_highlights_and_grounding_with_scripted_searcher(tmp_path: Path) -> None:
    videos = tmp_path / "videos"
    for stem in ("alpha_0.0_150.0", "beta_0.0_150.0"):
        write_color_video(videos / f"{stem}.mp4", [(1, RED), (1, BLUE)], fps=4)
    qvh = _write_jsonl(
        tmp_path / "highlight_val_release.jsonl",
        [
            {
                "qid": 10,
                "query": "alpha query",
                "duration": 8,
                "vid": "alpha_0.0_150.0",
                "relevant_windows": [[2, 6]],
                "relevant_clip_ids": [1, 2],
                "saliency_scores": [[4, 4, 4], [2, 2, 2]],
            },
            {
                "qid": 11,
                "query": "beta query",
                "duration": 8,
                "vid": "beta_0.0_150.0",
                "relevant_windows": [[0, 4]],
                "relevant_clip_ids": [0, 1],
                "saliency_scores": [[3, 3, 3], [3, 3, 3]],
            },
            {"qid": 12, "query": "gone", "duration": 8, "vid": "missing", "relevant_windows": [[0, 2]]},
        ],
    )
    script = {
        # the best moment overall is in the other video: it must be ignored
        "alpha query": [("beta_0.0_150.0", 0, 4, 0.99), ("alpha_0.0_150.0", 2, 6, 0.9), ("alpha_0.0_150.0", 0, 1, 0.1)],
        "beta query": [("alpha_0.0_150.0", 2, 6, 0.5)],  # nothing in its own video: one empty window (a miss)
    }
    curves = {"alpha_0.0_150.0": ([0.5, 2.5, 3.0, 4.5, 7.5], [0.1, 0.9, 0.8, 0.7, 0.0])}
    report = evaluate(
        "qvhighlights",
        qvh,
        videos,
        model="fake:color",
        home=tmp_path / "lib",
        searcher_factory=lambda lib, enc: ScriptedSearcher(lib, script, curves),
    )
    assert (report.queries, report.skipped_queries, report.missing_videos) == (2, 1, 1)
    m = report.metrics
    assert m["MR-full-R1@0.5"] == 50.0 and m["MR-full-mAP"] == 50.0 and m["MR-short-mAP"] == 50.0
    # alpha's clip scores from its curve: (0.1, 0.9, 0.7, 0.0) -> top clip 1 (relevant, score 4 for all)
    assert m["HL-min-VeryGood-Hit1"] == 50.0  # beta has no curve and no moment in its video: flat scores, clip 0
    assert m["HL-min-Fair-Hit1"] == 100.0

    charades = tmp_path / "charades_sta_test.txt"
    charades.write_text("alpha_0.0_150.0 2.0 6.0##alpha query\nbeta_0.0_150.0 0.0 4.0##beta query\n")
    report = evaluate(
        "charades_sta",
        charades,
        videos,
        model="fake:color",
        home=tmp_path / "lib",  # the same library: already indexed, nothing to redo
        searcher_factory=lambda lib, enc: ScriptedSearcher(lib, script),
    )
    assert report.queries == 2 and report.metrics == {"R1@0.3": 50.0, "R1@0.5": 50.0, "R1@0.7": 50.0, "mIoU": 50.0}


def test_clip_saliency_pools_and_interpolates() -> None:
    scores = clip_saliency(8, np.array([0.5, 1.0, 2.5, 7.0]), np.array([0.2, 0.4, 0.9, 0.1]))
    # clip 0 max(0.2, 0.4); clip 1 0.9; clip 2 empty: interpolated at 5 s between 2.5 (0.9) and 7 (0.1)
    assert scores.tolist() == pytest.approx([0.4, 0.9, 0.9 - 0.8 * 2.5 / 4.5, 0.1])


def _real_searcher_or_skip() -> None:
    from engine.search.searcher import Searcher

    if not hasattr(Searcher, "search"):
        pytest.skip("Searcher.search(Query) is not there yet")


def test_eval_end_to_end_with_real_searcher(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """fake:color understands colour words: every caption finds its video, and "blue" finds 5-9 s."""
    _real_searcher_or_skip()
    color_library(tmp_path / "videos")
    write_color_video(tmp_path / "videos" / "plain green.mp4", [(3, GREEN)], fps=8)
    csv = tmp_path / "MSRVTT_mini.csv"
    csv.write_text(
        "key;vid_key;video_id;sentence\nret0;a;red_then_blue;blue\nret1;b;yellow clip;yellow\nret2;c;absent;red\n"
    )
    code, out, _ = _cli(
        capsys,
        "--model",
        "fake:color",
        "--home",
        str(tmp_path / "lib"),
        "eval",
        "--annotations",
        str(csv),
        "--videos",
        str(tmp_path / "videos"),
        "--json",
    )
    report = json.loads(out)
    assert code == 0 and report["dataset"] == "msrvtt" and report["model"] == "fake:color"
    assert (report["queries"], report["skipped_queries"], report["found_videos"]) == (2, 1, 2)
    assert report["metrics"]["t2v_R1"] == 100.0 and report["metrics"]["v2t_R1"] == 100.0

    charades = tmp_path / "charades.txt"
    charades.write_text("red_then_blue 5.0 9.0##blue\n")
    code, out, _ = _cli(
        capsys, "--model", "fake:color", "eval", "--annotations", str(charades), "--videos", str(tmp_path / "videos")
    )
    assert code == 0 and "charades_sta (grounding)" in out  # a temporary library this time
    assert [line.split()[-1] for line in out.splitlines() if line.startswith("R1@0.5")] == ["100.00"]


def test_eval_cli_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "v").mkdir()
    notes = tmp_path / "notes.txt"
    notes.write_text("x")
    code, _, err = _cli(capsys, "eval", "--annotations", str(notes), "--videos", str(tmp_path / "v"))
    assert code == 2 and "pass --dataset" in err
    code, _, err = _cli(
        capsys, "eval", "--dataset", "charades_sta", "--annotations", str(notes), "--videos", str(tmp_path / "v")
    )
    assert code == 2 and f"{notes}:1:" in err
    code, _, err = _cli(
        capsys, "eval", "--dataset", "msvd", "--annotations", str(notes), "--videos", str(tmp_path / "absent")
    )
    assert code == 2 and "videos folder does not exist" in err


def test_loaded_gt_matches_cli_gt(shared_data: Path) -> None:
    """The ground truth `eval-moments` reads is the loader's (a guard against the two drifting apart)."""
    gt = load_qvhighlights(shared_data / "annotations" / "qvhighlights" / "highlight_val_release.jsonl")
    assert len(gt) == 1550 and gt[0].qid == 2579
