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

import contextlib
import ctypes
import gc
import json
import os
import platform
import shutil
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np

from engine.atomic import atomic_write_bytes
from engine.index.errors import IndexCorrupt, IndexModelMismatch
from engine.index.hnsw_store import HnswStore
from engine.index.vectors import VectorStore, brute_force_topk
from engine.jobs import CancelToken, ProgressCallback, check_cancel, report, wrap_progress
from engine.models.base import l2_normalise
from engine.paths import cache_home
from engine.settings import EngineSettings

BENCH_MODEL = "random:ViT-B-32"  # real ViT-B-32 text compute without downloaded weights
KINDS = ("random", "clustered")
K = 10
CANDIDATES = 400  # frame candidates the searcher asks for up to k = 20 (max(20 * k, 400), searcher.py)
RECALL_TARGET = 0.98
EF_SWEEP = (64, 128, 200, 256, 384, 512, 768, 1024, 1536, 2048, 4096)  # stops once the target is met
CLUSTERS = 1000
CLUSTER_SPREAD = 0.5  # noise norm / centre norm: members of a cluster have cosine ≈ 0.8 with each other
FAR_SPREAD = 2.7  # "far" queries have cosine ≈ 0.35 with their cluster's centre, ≈ 0.3 with its frames,
# as a CLIP text query has with the frames it matches (they sit in another cone: the modality gap)
RUN = 10  # consecutive keys drawn from one cluster (a shot sampled at 1 frame/s)
CHUNK = 20_000  # vectors generated, added and scanned per step
WARMUP = 10  # untimed queries before each timed series
GENERATOR = 1  # bump when the vectors a seed yields change, so cached indexes are rebuilt
_QUERY_STREAM = 1 << 40  # random stream of the queries, apart from the chunks' streams 0, 1, 2, ...
_INDEX_NAME = "frame"
_MARKER = "bench.json"

Log = Callable[[str], object]


@dataclass(frozen=True)
class Corpus:
    """Synthetic L2-normalised frame vectors, keyed 1..size, regenerated identically from ``seed``."""

    kind: str
    size: int
    dim: int
    seed: int

    def _rng(self, stream: int) -> np.random.Generator:
        return np.random.default_rng([self.seed, KINDS.index(self.kind), stream])

    @cached_property
    def centres(self) -> np.ndarray:
        """Cluster centres (unit vectors); the same for every size, so queries are too."""
        return l2_normalise(self._rng(_QUERY_STREAM + 1).standard_normal((CLUSTERS, self.dim), dtype=np.float32))

    def _draw(self, rng: np.random.Generator, count: int, run: int, spread: float = CLUSTER_SPREAD) -> np.ndarray:
        noise = rng.standard_normal((count, self.dim), dtype=np.float32)
        if self.kind == "clustered":
            labels = np.repeat(rng.integers(0, CLUSTERS, -(-count // run)), run)[:count]
            noise = self.centres[labels] + np.float32(spread / np.sqrt(self.dim)) * noise
        return l2_normalise(noise)

    def chunks(self) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """``(keys, vectors)`` in steps of ``CHUNK`` rows, always the same for the same corpus."""
        for i, start in enumerate(range(0, self.size, CHUNK)):
            count = min(CHUNK, self.size - start)
            yield np.arange(start + 1, start + count + 1, dtype=np.int64), self._draw(self._rng(i), count, RUN)

    def queries(self, count: int) -> dict[str, np.ndarray]:
        """Query sets by label: fresh draws from the data's distribution, plus far ones for clustered data."""
        sets = {self.kind: self._draw(self._rng(_QUERY_STREAM), count, 1)}
        if self.kind == "clustered":
            sets["clustered-far"] = self._draw(self._rng(_QUERY_STREAM + 2), count, 1, FAR_SPREAD)
        return sets

    def cache_key(self, settings: EngineSettings) -> str:
        return (
            f"{self.kind}-n{self.size}-d{self.dim}-M{settings.hnsw_m}-efc{settings.hnsw_ef_construction}"
            f"-s{self.seed}-g{GENERATOR}"
        )


def rss_mb() -> dict[str, float] | None:
    """Resident memory of this process in MB from ``/proc/self/status``: ``total``, ``heap`` (anonymous: the
    HNSW graph) and ``mapped`` (file pages: the float16 rows re-scoring touched); None off Linux."""
    fields = {"VmRSS:": "total", "RssAnon:": "heap", "RssFile:": "mapped"}
    found: dict[str, float] = {}
    try:
        with open("/proc/self/status", encoding="ascii") as fh:
            for line in fh:
                parts = line.split()
                if parts and parts[0] in fields:
                    found[fields[parts[0]]] = int(parts[1]) / 1024
    except (OSError, ValueError, IndexError):
        return None
    return found if len(found) == len(fields) else None


def _rss_figures(before: dict[str, float] | None, after: dict[str, float] | None, size: int) -> dict[str, Any]:
    """RSS growth in MB, total and split, and per million vectors."""
    if before is None or after is None:
        return dict.fromkeys(("rss_delta_mb", "rss_heap_delta_mb", "rss_mapped_delta_mb", "rss_mb_per_million"))
    delta = {part: after[part] - before[part] for part in after}
    return {
        "rss_delta_mb": round(delta["total"], 1),
        "rss_heap_delta_mb": round(delta["heap"], 1),
        "rss_mapped_delta_mb": round(delta["mapped"], 1),
        "rss_mb_per_million": round(delta["total"] * 1e6 / size, 1),
    }


def release_freed_memory() -> None:
    """Collect garbage and hand freed heap back to the OS (glibc ``malloc_trim``), so an RSS delta counts
    new allocations instead of reused ones; a no-op elsewhere."""
    gc.collect()
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6").malloc_trim(0)


def _cpu_name() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as fh:
            for line in fh:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _ms(seconds: Sequence[float]) -> dict[str, float]:
    p50, p95 = np.percentile(np.asarray(seconds) * 1000, [50, 95])
    return {"p50_ms": round(float(p50), 3), "p95_ms": round(float(p95), 3)}


def recall_at(found: np.ndarray, truth: np.ndarray, k: int = K) -> float:
    """Mean fraction of each query's exact top-``k`` keys present among its first ``k`` found keys."""
    hits = [len(np.intersect1d(f[:k], t[:k])) for f, t in zip(found, truth, strict=True)]
    return float(np.mean(hits)) / k


def exact_topk(corpus: Corpus, queries: np.ndarray, k: int = K, *, cancel: CancelToken | None = None) -> np.ndarray:
    """Exact top-``k`` keys per query over the float32 originals, merged chunk by chunk: ``(Q, k)`` int64."""
    best_keys = np.empty((len(queries), 0), np.int64)
    best_scores = np.empty((len(queries), 0), np.float32)
    for keys, vectors in corpus.chunks():
        check_cancel(cancel)
        rows, scores = brute_force_topk(vectors, queries, k)
        all_keys = np.concatenate([best_keys, keys[rows]], axis=1)
        all_scores = np.concatenate([best_scores, scores], axis=1)
        order = np.argsort(-all_scores, axis=1, kind="stable")[:, :k]
        best_keys = np.take_along_axis(all_keys, order, axis=1)
        best_scores = np.take_along_axis(all_scores, order, axis=1)
    return best_keys


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
        **_rss_figures(rss_before, rss_after, corpus.size),
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


def format_report(figures: dict[str, Any]) -> str:
    """The figures as a plain-text table (latencies in ms, memory in MB per million vectors)."""
    lines = []
    text = figures.get("text_encoding")
    if text:
        lines.append(
            f"text encoding ({text['model']} on {text['device']}, {text['queries']} queries one at a time): "
            f"p50 {text['p50_ms']:.1f} ms  p95 {text['p95_ms']:.1f} ms"
        )
    s = figures["settings"]
    lines.append(
        f"frame index: HNSW M {s['hnsw_m']}, ef_construction {s['hnsw_ef_construction']}, ef_search "
        f"{s['hnsw_ef_search']}; {figures['candidates']} candidates re-scored from float16; "
        f"{figures['queries']} queries; dim {figures['dim']}"
    )
    lines.append(
        "latency ms of ANN + re-scoring, cold: first pass after opening the index (vector pages fault in); warm: "
        "a later pass; memory MB per million vectors"
    )
    lines.append(
        f"{'kind':13} {'vectors':>9} {'ANN R@10':>8} {'R@10':>6} {'p50 cold':>8} {'p95 cold':>8} {'p50 warm':>8} "
        f"{'p95 warm':>8} {'files':>6} {'RSS heap+mapped':>17} {'build s':>7}  ef for R@10>={RECALL_TARGET} (p50 ms)"
    )
    for r in figures["indexes"]:
        rss = "-"
        if r["rss_mb_per_million"] is not None:
            heap, mapped = (r[f"rss_{part}_delta_mb"] * 1e6 / r["size"] for part in ("heap", "mapped"))
            rss = f"{r['rss_mb_per_million']:.0f} = {heap:.0f}+{mapped:.0f}"
        met = [row for row in r["sweep"] if row["recall_at_10"] >= RECALL_TARGET]
        target = f"{met[0]['effective_ef']} ({met[0]['p50_ms']:.2f})" if met else f"> {r['sweep'][-1]['ef']}"
        lines.append(
            f"{r['kind']:13} {r['size']:>9,} {r['ann_recall_at_10']:8.4f} {r['recall_at_10']:6.4f} "
            f"{r['p50_ms']:8.2f} {r['p95_ms']:8.2f} {r.get('warm_p50_ms', float('nan')):8.2f} "
            f"{r.get('warm_p95_ms', float('nan')):8.2f} {r['files_mb_per_million']:6.0f} {rss:>17} "
            f"{r['build_s']:7.0f}  {target}"
        )
    lines.append("ef sweep, warm (ef: R@10 after re-scoring / raw ANN R@10 / p50 / p95 ms):")
    for r in figures["indexes"]:
        cells = "  ".join(
            f"{row['ef']}: {row['recall_at_10']:.3f}/{row['ann_recall_at_10']:.3f}/{row['p50_ms']:.1f}/"
            f"{row['p95_ms']:.1f}"
            for row in r["sweep"]
        )
        lines.append(f"  {r['kind']:13} {r['size']:>9,}  {cells}")
    return "\n".join(lines)


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
        "cpu": _cpu_name(),
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
