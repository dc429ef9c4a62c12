"""``scenefind bench search``: text-query latency and ANN recall at 10k, 100k and 1M frame vectors.

A query costs a text encoding plus an ANN lookup in the frame index and an exact re-scoring of its candidates
from the float16 vector file; the two parts are measured apart because they scale differently (the first
with the model, the second with the library). The index part uses the project's own ``HnswStore`` and
``VectorStore`` with the engine's default settings, so it measures what users run, and compares it with
``brute_force_topk`` over the float32 originals. Synthetic vectors come in two kinds, reported side by side:
uniform random unit vectors (no structure, the hardest case for HNSW) and clustered ones (gaussian clusters
in runs of consecutive keys, as video frames come in near-duplicate shots), the latter also with "far"
queries that sit as far from their frames as a CLIP text query does. Vectors are generated chunk by
chunk from a seed, so a million of them never sit in memory at once; built indexes are cached under
``cache_home()/bench/search`` because building a million on a laptop takes minutes.
"""

from __future__ import annotations

import gc
import json
import os
import shutil
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from engine.atomic import atomic_write_bytes
from engine.bench.host import cpu_name, release_freed_memory, rss_figures, rss_mb
from engine.bench.search_report import format_report
from engine.bench.vector_corpus import GENERATOR, KINDS, Corpus, K, exact_topk, recall_at
from engine.index.errors import IndexCorrupt, IndexModelMismatch
from engine.index.hnsw_store import HnswStore
from engine.index.vectors import VectorStore
from engine.jobs import CancelToken, ProgressCallback, check_cancel, report, wrap_progress
from engine.paths import cache_home
from engine.settings import EngineSettings

BENCH_MODEL = "random:ViT-B-32"  # real ViT-B-32 text compute without downloaded weights
CANDIDATES = 400  # frame candidates the searcher asks for up to k = 20 (max(20 * k, 400), searcher.py)
RECALL_TARGET = 0.98
EF_SWEEP = (64, 128, 200, 256, 384, 512, 768, 1024, 1536, 2048, 4096)  # stops once the target is met
WARMUP = 10  # untimed queries before each timed series
_INDEX_NAME = "frame"
_MARKER = "bench.json"

Log = Callable[[str], object]


def _ms(seconds: Sequence[float]) -> dict[str, float]:
    p50, p95 = np.percentile(np.asarray(seconds) * 1000, [50, 95])
    return {"p50_ms": round(float(p50), 3), "p95_ms": round(float(p95), 3)}


def build_index(
    corpus: Corpus,
    folder: Path,
    settings: EngineSettings,
    *,
    progress: ProgressCallback | None = None,
    cancel: CancelToken | None = None,
) -> float:
    """Build the frame index and vector file of ``corpus`` in ``folder``; return the seconds it took.

    ``HnswStore.add`` inserts each chunk with hnswlib's ``add_items`` on every core (num_threads -1). The
    marker file goes last, so an interrupted build is recognised and redone.
    """
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    model_id = f"bench:{corpus.kind}"
    store = HnswStore.create(
        folder,
        _INDEX_NAME,
        model_id=model_id,
        dim=corpus.dim,
        m=settings.hnsw_m,
        ef_construction=settings.hnsw_ef_construction,
        ef_search=settings.hnsw_ef_search,
        capacity=corpus.size,
    )
    start = time.perf_counter()
    with VectorStore.open(folder, _INDEX_NAME, dim=corpus.dim, model_id=model_id) as vectors:
        for keys, chunk in corpus.chunks():
            check_cancel(cancel)
            store.add(chunk, keys)
            vectors.write(keys, chunk)
            done = int(keys[-1])
            rate = done / max(time.perf_counter() - start, 1e-9)
            report(progress, done / corpus.size, f"{corpus.kind} {corpus.size:,}: built {done:,} ({rate:,.0f}/s)")
        vectors.flush()
    store.save()
    elapsed = time.perf_counter() - start
    marker = {"kind": corpus.kind, "size": corpus.size, "dim": corpus.dim, "seed": corpus.seed, "build_s": elapsed}
    marker |= {"M": store.m, "ef_construction": store.ef_construction, "generator": GENERATOR}
    atomic_write_bytes(folder / _MARKER, (json.dumps(marker, indent=2) + "\n").encode("utf-8"))
    return elapsed


def _cached_build_s(folder: Path) -> float | None:
    """Build seconds of a complete cached index in ``folder``, or None when there is none."""
    try:
        return float(json.loads((folder / _MARKER).read_text(encoding="utf-8"))["build_s"])
    except (OSError, ValueError, KeyError, TypeError):
        return None


def _search_once(
    store: HnswStore, vectors: VectorStore, query: np.ndarray, candidates: int
) -> tuple[np.ndarray, float, float]:
    """One user query's index work: ANN candidates, then exact re-scoring from float16; with both timings."""
    t0 = time.perf_counter()
    keys = store.search(query, candidates)[0][0]
    t1 = time.perf_counter()
    keys = keys[keys > 0]  # HnswStore pads a short answer with -1
    sims = vectors.read(keys) @ query
    top = keys[np.argsort(-sims, kind="stable")[:K]]
    return top, t1 - t0, time.perf_counter() - t1


def measure_ef(
    store: HnswStore, vectors: VectorStore, queries: np.ndarray, truth: np.ndarray, ef: int, candidates: int
) -> dict[str, Any]:
    """Recall and latency at one ``ef_search``: raw ANN top-10 and ANN + re-scoring, queries one at a time."""
    store.ef_search = ef
    ann_keys, _ = store.search(queries, K)
    for query in queries[:WARMUP]:
        _search_once(store, vectors, query, candidates)
    found, ann_s, rescore_s = [], [], []
    for query in queries:
        top, t_ann, t_rescore = _search_once(store, vectors, query, candidates)
        found.append(np.pad(top, (0, K - len(top)), constant_values=-1))
        ann_s.append(t_ann)
        rescore_s.append(t_rescore)
    total = _ms(np.add(ann_s, rescore_s))
    return {
        "ef": ef,
        "effective_ef": max(ef, min(candidates, len(store))),  # HnswStore searches with ef >= k
        "ann_recall_at_10": round(recall_at(ann_keys, truth), 4),
        "recall_at_10": round(recall_at(np.array(found), truth), 4),
        **total,
        "ann_p50_ms": _ms(ann_s)["p50_ms"],
        "rescore_p50_ms": _ms(rescore_s)["p50_ms"],
    }


def sweep_ef(
    store: HnswStore,
    vectors: VectorStore,
    queries: np.ndarray,
    truth: np.ndarray,
    candidates: int,
    ef_sweep: Sequence[int],
    *,
    default_ef: int,
    cancel: CancelToken | None = None,
) -> list[dict[str, Any]]:
    """``measure_ef`` at rising ef (``default_ef`` included) until both recalls meet the target past the
    default, or ef reaches the index size. Runs after a first pass, so its rows are warm."""
    rows: list[dict[str, Any]] = []
    for ef in sorted({*ef_sweep, default_ef}):
        check_cancel(cancel)
        rows.append(measure_ef(store, vectors, queries, truth, ef, candidates))
        met = min(rows[-1]["recall_at_10"], rows[-1]["ann_recall_at_10"]) >= RECALL_TARGET
        if (met and ef >= default_ef) or ef >= len(store):
            break
    return rows


def bench_index(
    corpus: Corpus,
    settings: EngineSettings,
    *,
    queries: int,
    candidates: int = CANDIDATES,
    ef_sweep: Sequence[int] = EF_SWEEP,
    cache: Path | None = None,
    progress: ProgressCallback | None = None,
    cancel: CancelToken | None = None,
) -> list[dict[str, Any]]:
    """Build (or reuse) ``corpus``'s index; one row per query set: recall, latency and memory, default ef and sweep.

    The RSS delta spans loading the saved index and the default-ef queries, as a user's search process does.
    """
    folder = (cache or cache_home() / "bench" / "search") / corpus.cache_key(settings)
    build_s, built = _cached_build_s(folder), False
    if build_s is None:
        build_s, built = build_index(corpus, folder, settings, progress=wrap_progress(progress, 0, 0.85)), True
        gc.collect()
    check_cancel(cancel)
    report(progress, 0.85, f"{corpus.kind} {corpus.size:,}: exact top-{K} of {queries} queries")
    sets = corpus.queries(queries)
    all_truth = exact_topk(corpus, np.concatenate(list(sets.values())), cancel=cancel)
    truths = dict(zip(sets, np.split(all_truth, len(sets)), strict=True))
    report(progress, 0.9, f"{corpus.kind} {corpus.size:,}: measuring")
    model_id = f"bench:{corpus.kind}"
    release_freed_memory()
    rss_before = rss_mb()
    start = time.perf_counter()
    try:
        store = HnswStore.load(folder, _INDEX_NAME, model_id=model_id, dim=corpus.dim)
        vectors = VectorStore.open(folder, _INDEX_NAME, dim=corpus.dim, model_id=model_id, create=False, readonly=True)
    except (IndexCorrupt, IndexModelMismatch):
        (folder / _MARKER).unlink(missing_ok=True)  # a damaged cache: rebuild it next time
        raise
    load_s = time.perf_counter() - start
    defaults, sweeps = {}, {}
    try:
        for label, qs in sets.items():
            defaults[label] = measure_ef(store, vectors, qs, truths[label], settings.hnsw_ef_search, candidates)
        rss_after = rss_mb()
        for label, qs in sets.items():
            sweeps[label] = sweep_ef(
                store,
                vectors,
                qs,
                truths[label],
                candidates,
                ef_sweep,
                default_ef=settings.hnsw_ef_search,
                cancel=cancel,
            )
    finally:
        vectors.close()
    del store
    gc.collect()
    index_bytes = HnswStore.files(folder, _INDEX_NAME)[0].stat().st_size
    vector_bytes = vectors.path.stat().st_size
    per_million = 1e6 / corpus.size
    shared = {
        "size": corpus.size,
        "built_now": built,
        "build_s": round(build_s, 1),
        "load_s": round(load_s, 2),
        "index_mb": round(index_bytes / 1e6, 1),
        "vectors_mb": round(vector_bytes / 1e6, 1),
        "vectors_needed_mb": round(corpus.size * corpus.dim * 2 / 1e6, 1),  # the file grows by doubling
        "files_mb_per_million": round((index_bytes + vector_bytes) / 1e6 * per_million, 1),
        **rss_figures(rss_before, rss_after, corpus.size),
        "cache": str(folder),
    }
    return [
        {
            "kind": label,
            **shared,
            **defaults[label],
            **{
                f"warm_{key}": row[key]
                for row in sweeps[label]
                if row["ef"] == settings.hnsw_ef_search
                for key in ("p50_ms", "p95_ms")
            },
            "sweep": sweeps[label],
            "ef_for_target": next(
                (r["effective_ef"] for r in sweeps[label] if r["recall_at_10"] >= RECALL_TARGET), None
            ),
            "ann_ef_for_target": next((r["ef"] for r in sweeps[label] if r["ann_recall_at_10"] >= RECALL_TARGET), None),
        }
        for label in sets
    ]


_SUBJECTS = ("a dog", "two children", "a red car", "my grandmother", "a cat", "a cyclist", "fireworks", "a baby")
_SCENES = ("on the beach", "in the snow", "at night", "in the kitchen", "at a birthday party", "in the rain")


def sample_texts(count: int) -> list[str]:
    """``count`` distinct, plausible queries of varied length."""
    texts = [f"{s} {p}" for s in _SUBJECTS for p in _SCENES]
    texts += [f"{t} while someone laughs in the background" for t in texts]
    return [texts[i % len(texts)] + (f" ({i // len(texts)})" if i >= len(texts) else "") for i in range(count)]


def bench_text_encoding(model: str, settings: EngineSettings, count: int) -> dict[str, Any]:
    """Load ``model``, warm it up, then encode ``count`` queries one at a time, as a user types them."""
    from engine.models.registry import create_encoder, ensure_loaded

    encoder = create_encoder(model, device=settings.device, batch_size=settings.batch_size)
    ensure_loaded(encoder)
    encoder.encode_texts(["warm up"])
    seconds = []
    for text in sample_texts(count):
        start = time.perf_counter()
        encoder.encode_texts([text])
        seconds.append(time.perf_counter() - start)
    return {"model": encoder.model_id, "device": encoder.device, "queries": count, **_ms(seconds)}


def run_search_bench(
    model: str | None,
    *,
    sizes: Sequence[int] = (10_000, 100_000, 1_000_000),
    dim: int = 512,
    queries: int = 200,
    log: Log | None = print,
    kinds: Sequence[str] = KINDS,
    candidates: int = CANDIDATES,
    text_queries: int = 50,
    ef_sweep: Sequence[int] = EF_SWEEP,
    seed: int = 0,
    settings: EngineSettings | None = None,
    cache: Path | None = None,
    progress: ProgressCallback | None = None,
    cancel: CancelToken | None = None,
) -> dict[str, Any]:
    """Measure text encoding (skipped when ``text_queries`` is 0) and every (kind, size) index; return the figures.

    ``model`` defaults to ``random:ViT-B-32``. Indexes are cached in ``cache`` (default
    ``cache_home()/bench/search``) keyed by kind, size, dim, M, ef_construction and seed.
    """
    unknown = sorted(set(kinds) - set(KINDS))
    if unknown:
        raise ValueError(f"unknown vector kind(s) {', '.join(unknown)}; use {', '.join(KINDS)}")
    for label, value in (("dim", dim), ("queries", queries), ("candidates", candidates), *(("size", n) for n in sizes)):
        if not isinstance(value, int) or value < 1:
            raise ValueError(f"{label} must be a positive integer, got {value!r}")
    if text_queries < 0 or any(ef < 1 for ef in ef_sweep):
        raise ValueError("text_queries must not be negative and every ef must be positive")
    settings = settings or EngineSettings()
    say = log or (lambda _msg: None)
    figures: dict[str, Any] = {
        "cpu": cpu_name(),
        "cpu_count": os.cpu_count(),
        "load_average_before": [round(x, 2) for x in os.getloadavg()] if hasattr(os, "getloadavg") else None,
        "dim": dim,
        "queries": queries,
        "k": K,
        "candidates": candidates,
        "recall_target": RECALL_TARGET,
        "settings": {k: getattr(settings, k) for k in ("hnsw_m", "hnsw_ef_construction", "hnsw_ef_search")},
    }
    say(f"{figures['cpu']} ({figures['cpu_count']} cores), load average {figures['load_average_before']}")
    if text_queries:
        say(f"text encoding: {model or BENCH_MODEL}, {text_queries} queries…")
        figures["text_encoding"] = bench_text_encoding(model or BENCH_MODEL, settings, text_queries)
        gc.collect()
    jobs = [Corpus(kind, size, dim, seed) for size in sizes for kind in kinds]
    total = sum(c.size for c in jobs) or 1
    done = 0
    figures["indexes"] = []
    for corpus in jobs:
        check_cancel(cancel)
        say(f"{corpus.kind} vectors, {corpus.size:,}: building or loading the cached index…")
        sub = wrap_progress(progress, done / total, (done + corpus.size) / total)
        rows = bench_index(
            corpus,
            settings,
            queries=queries,
            candidates=candidates,
            ef_sweep=ef_sweep,
            cache=cache,
            progress=sub,
            cancel=cancel,
        )
        figures["indexes"].extend(rows)
        done += corpus.size
        for row in rows:
            say(
                f"  {row['kind']}: {'built' if row['built_now'] else 'cached'} ({row['build_s']:.0f} s to build); "
                f"ANN recall@10 {row['ann_recall_at_10']:.4f}, after re-scoring {row['recall_at_10']:.4f}; "
                f"p50 {row['p50_ms']:.2f} ms"
            )
    report(progress, 1.0, "done")
    figures["load_average_after"] = [round(x, 2) for x in os.getloadavg()] if hasattr(os, "getloadavg") else None
    say(format_report(figures))
    return figures
