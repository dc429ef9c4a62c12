"""The search benchmark reports every figure, finds the exact neighbours, caches its indexes and has a CLI.

Latencies are reported, never asserted against a time (the tests share their cores with everything else).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import pytest

from engine.bench.search_bench import run_search_bench
from engine.bench.vector_corpus import Corpus, exact_topk, recall_at
from engine.cli.bench import parse_sizes
from engine.cli.bench import register_search as register
from engine.index.vectors import brute_force_topk
from engine.settings import EngineSettings


def test_tiny_run_reports_every_figure_with_high_recall(tmp_path: Path) -> None:
    lines: list[str] = []
    ticks: list[float] = []
    kwargs = {"sizes": (2000,), "queries": 50, "text_queries": 3, "cache": tmp_path / "bench", "log": lines.append}
    figures = run_search_bench("fake:hash-8", progress=lambda f, _m: ticks.append(f), **kwargs)

    text = figures["text_encoding"]
    assert text["model"] == "fake:hash-8" and text["queries"] == 3
    assert 0 < text["p50_ms"] <= text["p95_ms"]
    rows = {row["kind"]: row for row in figures["indexes"]}
    assert set(rows) == {"random", "clustered", "clustered-far"}
    for kind, row in rows.items():
        assert row["size"] == 2000 and row["built_now"]
        assert 0 < row["p50_ms"] <= row["p95_ms"] and row["ann_p50_ms"] > 0 and row["rescore_p50_ms"] > 0
        assert row["index_mb"] * 1e6 / 2000 >= 512 * 4  # the graph holds the float32 vectors
        assert row["vectors_mb"] * 1e6 / 2000 >= 512 * 2  # float16 rows
        assert row["files_mb_per_million"] > 3000 and row["rss_delta_mb"] is not None  # on Linux
        # HnswStore searches at max(ef_search, candidates): the default ef or the 400 re-scored candidates
        assert row["effective_ef"] == max(EngineSettings().hnsw_ef_search, 400)
        assert row["recall_at_10"] >= (0.95 if kind == "random" else 0.98), row
        last = row["sweep"][-1]
        assert min(last["recall_at_10"], last["ann_recall_at_10"]) >= 0.98 or last["ef"] >= 2000
        assert row["ef_for_target"] is not None
    assert ticks[-1] == 1.0 and ticks == sorted(ticks)
    assert any("ANN R@10" in line for line in lines)

    again = run_search_bench("fake:hash-8", **{**kwargs, "text_queries": 0})
    assert "text_encoding" not in again
    for old, new in zip(figures["indexes"], again["indexes"], strict=True):
        assert not new["built_now"] and new["build_s"] == old["build_s"]  # reused from the cache
        assert new["recall_at_10"] == old["recall_at_10"]  # same vectors, same queries


def test_exact_topk_merges_chunks_like_one_brute_force_pass(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("engine.bench.vector_corpus.CHUNK", 300)  # several chunks, the last one partial
    corpus = Corpus("clustered", 1000, 32, seed=3)
    queries = corpus.queries(7)["clustered"]
    keys = np.concatenate([k for k, _ in corpus.chunks()])
    matrix = np.concatenate([v for _, v in corpus.chunks()])
    assert keys.tolist() == list(range(1, 1001))
    rows, _ = brute_force_topk(matrix, queries, 10)
    truth = exact_topk(corpus, queries)
    assert np.array_equal(truth, keys[rows])
    assert recall_at(truth, keys[rows]) == 1.0 and recall_at(truth[:, ::-1][:, :5], truth) == 0.5


def test_clustered_vectors_are_unit_and_come_in_near_duplicate_runs() -> None:
    vectors = next(Corpus("clustered", 100, 64, seed=0).chunks())[1]
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1, atol=1e-5)
    assert float(vectors[0] @ vectors[1]) > 0.7  # same run, same cluster
    far = Corpus("clustered", 100, 64, seed=0).queries(50)["clustered-far"]
    assert float(np.median(np.max(far @ vectors.T, axis=1))) < 0.6  # far queries sit away from every frame


def test_cli_registers_under_bench_and_runs(capsys: pytest.CaptureFixture[str]) -> None:
    parser = argparse.ArgumentParser()
    handlers = register(parser.add_subparsers(dest="bench"))
    assert set(handlers) == {"search"}
    defaults = parser.parse_args(["search"])
    assert defaults.sizes is None and not defaults.library  # 10k,100k,1M frame vectors; 100k with --library
    args = parser.parse_args(
        ["search", "--sizes", "1k", "--queries", "20", "--text-queries", "0", "--kinds", "random", "--json"]
    )
    args.model, args.no_progress = None, True
    assert handlers["search"](args) == 0
    figures = json.loads(capsys.readouterr().out)
    assert [row["kind"] for row in figures["indexes"]] == ["random"] and figures["indexes"][0]["size"] == 1000


def test_cli_library_mode_reports_every_layout(capsys: pytest.CaptureFixture[str]) -> None:
    parser = argparse.ArgumentParser()
    handlers = register(parser.add_subparsers(dest="bench"))
    args = parser.parse_args(["search", "--library", "--sizes", "3k", "--dim", "16", "--queries", "12", "--ef", "32"])
    args.model, args.no_progress = None, True
    assert handlers["search"](args) == 0
    text = capsys.readouterr().out
    assert "MB per hour of video" in text and "frame R@10" in text and "context.f16" in text
    args.json = True
    assert handlers["search"](args) == 0  # the second run reuses the cached library
    rows = {row["layout"]: row for row in json.loads(capsys.readouterr().out)["library"]}
    assert set(rows) == {"before", "hnswlib-no-frames", "after"}
    assert not rows["after"]["built_now"] and rows["after"]["frames"] == 3000
    assert [s["ef"] for s in rows["after"]["sweep"]] == sorted({32, EngineSettings().hnsw_ef_search})
    assert "frame graph" in rows["before"]["mb_per_hour"] and "frame graph" not in rows["after"]["mb_per_hour"]
    assert rows["after"]["mb_per_hour"]["total"] < rows["before"]["mb_per_hour"]["total"]
    for row in rows.values():
        assert 0 <= row["frame_recall_at_10"] <= 1 and 0 < row["p50_ms"] <= row["p95_ms"]


def test_parse_sizes() -> None:
    assert parse_sizes("10k,100K,1M") == (10_000, 100_000, 1_000_000)
    assert parse_sizes("2000") == (2000,)
    for bad in ("", "10x", "0", "-5", "1.5k"):
        with pytest.raises(argparse.ArgumentTypeError):
            parse_sizes(bad)
