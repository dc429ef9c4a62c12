"""``scenefind bench search --library``: bytes per hour of video, recall@10 and latency of whole index layouts.

Why a library and not a bag of frame vectors: whether frames need their own graph depends on how frames,
segments and videos relate, so this builds a synthetic library (``engine.bench.library_corpus``: videos of
near-duplicate shots, segments and video vectors pooled as the indexer pools them) and answers text-like
queries with the searcher's own candidate generation (``engine.search.candidates``) and an exact re-scoring of
every candidate video from the float16 files (the fusion of ``engine.search.scoring``). Layouts, measured in
the same run on the same vector files:

* ``before``: hnswlib graphs of the video, segment and frame grains (float32 copies), the candidate budgets of
  the release before (frames 400, segments 200, videos 64): what an index folder of that release holds;
* ``hnswlib-no-frames``: the same hnswlib video and segment graphs, no frame graph, today's budgets;
* ``after``: usearch int8 video and segment graphs, no frame graph, today's budgets: what the indexer writes now.

Recall@10 is measured twice against exact answers over the whole library: the top-10 videos by the fused score,
and the top-10 frames (the moments a user is shown). Latency is candidates plus re-scoring, one query at a time;
text encoding is measured apart (``bench search``). Files are cached under ``cache_home()/bench/library``.
"""

from __future__ import annotations

import json
import shutil
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from engine.atomic import atomic_write_bytes
from engine.bench.host import disk_bytes
from engine.bench.library_corpus import LibraryCorpus
from engine.bench.vector_corpus import K, recall_at
from engine.index.ann_store import AnnStore
from engine.index.hnsw_store import HnswStore
from engine.index.vectors import VectorStore
from engine.jobs import CancelToken, ProgressCallback, check_cancel, report
from engine.paths import cache_home
from engine.search.candidates import PER_GRAIN, candidate_videos
from engine.search.scoring import fine_similarity, fuse
from engine.settings import EngineSettings

MODEL = "bench:library"
GRAINS = ("video", "segment", "frame")
CODE_K = 16  # concepts per stored sparse code (ConceptBank.top_k): a head model's extra rows
_MARKER = "bench.json"
_BEFORE_BUDGET = {"video": (4, 64), "segment": (10, 200), "frame": (20, 400)}  # the searcher before this layout


@dataclass(frozen=True)
class Layout:
    name: str
    kind: str  # sub-folder of the graphs: "hnswlib" or "usearch-i8"
    budget: dict[str, tuple[int, int]]  # grains with a graph -> candidate budget (engine.search.candidates)


LAYOUTS = (
    Layout("before", "hnswlib", _BEFORE_BUDGET),
    Layout("hnswlib-no-frames", "hnswlib", dict(PER_GRAIN)),
    Layout("after", "usearch-i8", dict(PER_GRAIN)),
)


def build_library(
    corpus: LibraryCorpus,
    folder: Path,
    settings: EngineSettings,
    *,
    progress: ProgressCallback | None = None,
    cancel: CancelToken | None = None,
) -> float:
    """Write the vector files, the key maps and every layout's graphs of ``corpus`` into ``folder``; seconds taken."""
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    params = {
        "model_id": MODEL,
        "dim": corpus.dim,
        "m": settings.hnsw_m,
        "ef_construction": settings.hnsw_ef_construction,
    }
    (folder / "hnswlib").mkdir()
    hnsw = {g: HnswStore.create(folder / "hnswlib", g, **params, ef_search=settings.hnsw_ef_search) for g in GRAINS}
    ann = {g: AnnStore.create(folder / "usearch-i8", g, **params, dtype="i8") for g in ("video", "segment")}
    vectors = {g: VectorStore.open(folder, g, dim=corpus.dim, model_id=MODEL) for g in GRAINS}
    maps: dict[str, list[np.ndarray]] = {"frame_video": [], "segment_video": []}
    start = time.perf_counter()
    try:
        for batch in corpus.batches(settings):
            check_cancel(cancel)
            rows = {"video": (batch.videos, batch.vectors), "segment": (batch.segment_keys, batch.segments)}
            rows["frame"] = (batch.frame_keys, batch.frames)
            for grain, (keys, vecs) in rows.items():
                vectors[grain].write(keys, vecs)
                hnsw[grain].add(vecs, keys)
                if grain in ann:
                    ann[grain].add(vecs, keys)
            maps["frame_video"].append(batch.frame_video)
            maps["segment_video"].append(batch.segment_video)
            done = int(batch.frame_keys[-1])
            rate = done / max(time.perf_counter() - start, 1e-9)
            report(progress, done / corpus.size, f"library {corpus.size:,} frames: built {done:,} ({rate:,.0f}/s)")
    finally:
        for store in vectors.values():
            store.close()
    for store in (*hnsw.values(), *ann.values()):
        store.save()
    np.savez(folder / "maps.npz", **{name: np.concatenate(parts) for name, parts in maps.items()})
    elapsed = time.perf_counter() - start
    marker = {"size": corpus.size, "dim": corpus.dim, "seed": corpus.seed, "build_s": elapsed}
    atomic_write_bytes(folder / _MARKER, (json.dumps(marker, indent=2) + "\n").encode("utf-8"))
    return elapsed


class _Library:
    """The built files opened for querying: vectors, key maps, each layout's graphs."""

    def __init__(self, folder: Path, corpus: LibraryCorpus, settings: EngineSettings) -> None:
        self.folder = folder
        self.vectors = {
            g: VectorStore.open(folder, g, dim=corpus.dim, model_id=MODEL, create=False, readonly=True) for g in GRAINS
        }
        maps = np.load(folder / "maps.npz")
        self.frame_video, self.segment_video = maps["frame_video"], maps["segment_video"]
        n_videos = int(self.frame_video[-1])
        self.frame_start = np.searchsorted(self.frame_video, np.arange(1, n_videos + 2))  # video v: [start[v-1], ...)
        self.segment_start = np.searchsorted(self.segment_video, np.arange(1, n_videos + 2))
        self.graphs: dict[str, dict[str, Any]] = {
            "hnswlib": {g: HnswStore.load(folder / "hnswlib", g, model_id=MODEL, dim=corpus.dim) for g in GRAINS},
            "usearch-i8": {
                g: AnnStore.load(folder / "usearch-i8", g, model_id=MODEL, dim=corpus.dim) for g in ("video", "segment")
            },
        }

    def videos_of(self, grain: str, keys: list[int]) -> np.ndarray:
        ks = np.asarray(keys, dtype=np.int64)
        if grain == "video":
            return ks
        return np.unique((self.frame_video if grain == "frame" else self.segment_video)[ks - 1])

    def _spans(self, starts: np.ndarray, videos: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Keys (1-based) of every row of ``videos`` and the offsets where each video's rows begin."""
        lo, hi = starts[videos - 1], starts[videos]
        offsets = np.concatenate([[0], np.cumsum(hi - lo)])
        keys = np.concatenate([np.arange(a, b) for a, b in zip(lo, hi, strict=True)]) + 1
        return keys, offsets[:-1]

    def rescore(self, q: np.ndarray, videos: Sequence[int]) -> tuple[np.ndarray, np.ndarray]:
        """Exact top-``K`` videos (fused score) and frames among ``videos``, from the float16 files."""
        vids = np.asarray(videos, dtype=np.int64)
        frame_keys, f_off = self._spans(self.frame_start, vids)
        seg_keys, s_off = self._spans(self.segment_start, vids)
        fs = self.vectors["frame"].read(frame_keys) @ q
        ss = self.vectors["segment"].read(seg_keys) @ q
        coarse = self.vectors["video"].read(vids) @ q
        fine = np.array([fine_similarity(part) for part in np.split(fs, f_off[1:])])
        fused = fuse(coarse, np.maximum.reduceat(ss, s_off), fine)
        top_videos = vids[np.argsort(-fused, kind="stable")[:K]]
        top_frames = frame_keys[np.argsort(-fs, kind="stable")[:K]]
        return top_videos, top_frames

    def close(self) -> None:
        for store in self.vectors.values():
            store.close()


def exact_answers(
    corpus: LibraryCorpus, queries: np.ndarray, settings: EngineSettings, cancel: CancelToken | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Exact top-``K`` videos (fused score) and frames of each query over the whole library (float32 originals)."""
    fused_parts: list[np.ndarray] = []
    best_keys = np.empty((len(queries), 0), np.int64)
    best_sims = np.empty((len(queries), 0), np.float32)
    for batch in corpus.batches(settings):
        check_cancel(cancel)
        fs = queries @ batch.frames.T  # (Q, F)
        ss = queries @ batch.segments.T
        f_off = np.searchsorted(batch.frame_video, batch.videos)
        s_off = np.searchsorted(batch.segment_video, batch.videos)
        fine = np.stack([fine_similarity(part) for part in np.split(fs, f_off[1:], axis=1)], axis=1)
        fused_parts.append(fuse(queries @ batch.vectors.T, np.maximum.reduceat(ss, s_off, axis=1), fine))
        keys = np.concatenate([best_keys, np.broadcast_to(batch.frame_keys, fs.shape)], axis=1)
        sims = np.concatenate([best_sims, fs], axis=1)
        order = np.argsort(-sims, axis=1, kind="stable")[:, :K]
        best_keys, best_sims = np.take_along_axis(keys, order, axis=1), np.take_along_axis(sims, order, axis=1)
    fused = np.concatenate(fused_parts, axis=1)
    return np.argsort(-fused, axis=1, kind="stable")[:, :K] + 1, best_keys


def _ms(seconds: Sequence[float]) -> tuple[float, float]:
    p50, p95 = np.percentile(np.asarray(seconds) * 1000, [50, 95])
    return round(float(p50), 2), round(float(p95), 2)


def measure_layouts(
    lib: _Library, layouts: Sequence[Layout], queries: np.ndarray, truth: tuple[np.ndarray, np.ndarray], ef: int
) -> dict[str, dict[str, Any]]:
    """Recall@10 (videos, frames) and latency of each layout at one ef, queries one at a time after a warm-up.

    The layouts take turns query by query, so a burst of load from other work on the machine hits them alike."""
    graphs = {layout.name: {g: lib.graphs[layout.kind][g] for g in layout.budget} for layout in layouts}
    for per_layout in graphs.values():
        for graph in per_layout.values():
            graph.ef_search = ef
    runs: dict[str, dict[str, list[Any]]] = {
        layout.name: {"videos": [], "frames": [], "ann": [], "total": [], "candidates": []} for layout in layouts
    }

    def one(layout: Layout, q: np.ndarray) -> tuple[np.ndarray, np.ndarray, float, float, int]:
        t0 = time.perf_counter()
        videos = candidate_videos(q, graphs[layout.name], lib.videos_of, K, per_grain=layout.budget)
        t1 = time.perf_counter()
        top_v, top_f = lib.rescore(q, videos)
        return top_v, top_f, t1 - t0, time.perf_counter() - t0, len(videos)

    for i, q in enumerate(np.concatenate([queries[:10], queries])):
        for layout in layouts:
            top_v, top_f, t_ann, t_total, n = one(layout, q)
            if i < 10:
                continue  # warm-up
            run = runs[layout.name]
            run["videos"].append(np.pad(top_v, (0, K - len(top_v)), constant_values=-1))
            run["frames"].append(np.pad(top_f, (0, K - len(top_f)), constant_values=-1))
            run["ann"].append(t_ann)
            run["total"].append(t_total)
            run["candidates"].append(n)
    out = {}
    for name, run in runs.items():
        p50, p95 = _ms(run["total"])
        out[name] = {
            "ef": ef,
            "video_recall_at_10": round(recall_at(np.array(run["videos"]), truth[0]), 4),
            "frame_recall_at_10": round(recall_at(np.array(run["frames"]), truth[1]), 4),
            "p50_ms": p50,
            "p95_ms": p95,
            "ann_p50_ms": _ms(run["ann"])[0],
            "candidate_videos": round(float(np.mean(run["candidates"])), 1),
        }
    return out


def bytes_per_hour(folder: Path, layout: Layout, corpus: LibraryCorpus) -> dict[str, float]:
    """MB per hour of video of each file of ``layout`` (vector files are shared by all layouts), and the total."""
    sizes = {f"{g}.f16": disk_bytes(folder / f"{g}.f16") for g in GRAINS}
    graphs = folder / layout.kind
    for grain in layout.budget:
        path = AnnStore.file(graphs, grain) if layout.kind != "hnswlib" else HnswStore.files(graphs, grain)[0]
        sizes[f"{grain} graph"] = disk_bytes(path)
    per_hour = {name: round(size / 1e6 / corpus.hours, 2) for name, size in sizes.items()}
    return per_hour | {"total": round(sum(sizes.values()) / 1e6 / corpus.hours, 2)}


def head_extras_per_hour(corpus: LibraryCorpus, n_segments: int, n_videos: int) -> dict[str, float]:
    """What a head model stores beside: per-frame context vectors, and sparse codes of every row (MB per hour)."""
    frames = corpus.size
    codes = (2 * frames + n_segments + n_videos) * 2 * CODE_K * 2  # frame and context rows, k ids + k weights
    return {
        "context.f16": round(frames * corpus.dim * 2 / 1e6 / corpus.hours, 2),
        "codes.u16": round(codes / 1e6 / corpus.hours, 2),
    }


def run_library_bench(
    *,
    sizes: Sequence[int] = (100_000,),
    dim: int = 512,
    queries: int = 100,
    ef_sweep: Sequence[int] = (128, 512),
    seed: int = 0,
    settings: EngineSettings | None = None,
    cache: Path | None = None,
    log: Any = print,
    progress: ProgressCallback | None = None,
    cancel: CancelToken | None = None,
) -> list[dict[str, Any]]:
    """Build (or reuse) each library size and measure every layout at the default ef and ``ef_sweep``."""
    settings = settings or EngineSettings()
    say = log or (lambda _msg: None)
    rows: list[dict[str, Any]] = []
    for size in sizes:
        corpus = LibraryCorpus(size, dim, seed)
        folder = (cache or cache_home() / "bench" / "library") / corpus.cache_key(settings)
        try:
            build_s, built = float(json.loads((folder / _MARKER).read_text())["build_s"]), False
        except (OSError, ValueError, KeyError):
            say(f"library of {size:,} frames ({corpus.hours:.0f} h): building every layout's files (cached)…")
            build_s, built = build_library(corpus, folder, settings, progress=progress, cancel=cancel), True
        qs = corpus.queries(queries)
        say(f"library of {size:,} frames: exact answers to {queries} text-like queries…")
        truth = exact_answers(corpus, qs, settings, cancel)
        lib = _Library(folder, corpus, settings)
        try:
            n_segments, n_videos = len(lib.segment_video), int(lib.frame_video[-1])
            efs = sorted({settings.hnsw_ef_search, *ef_sweep})
            sweeps: dict[str, list[dict[str, Any]]] = {layout.name: [] for layout in LAYOUTS}
            for ef in efs:
                check_cancel(cancel)
                say(f"  ef {ef}: {', '.join(layout.name for layout in LAYOUTS)} in turn…")
                for name, row in measure_layouts(lib, LAYOUTS, qs, truth, ef).items():
                    sweeps[name].append(row)
            for layout in LAYOUTS:
                default = next(r for r in sweeps[layout.name] if r["ef"] == settings.hnsw_ef_search)
                rows.append(
                    {
                        "layout": layout.name,
                        "graphs": f"{layout.kind}: {', '.join(layout.budget)}",
                        "frames": size,
                        "hours": round(corpus.hours, 1),
                        "videos": n_videos,
                        "segments": n_segments,
                        "built_now": built,
                        "build_s": round(build_s, 1),
                        "mb_per_hour": bytes_per_hour(folder, layout, corpus),
                        "head_extras_mb_per_hour": head_extras_per_hour(corpus, n_segments, n_videos),
                        **default,
                        "sweep": sweeps[layout.name],
                    }
                )
        finally:
            lib.close()
    say(format_library_report(rows))
    return rows


def format_library_report(rows: list[dict[str, Any]]) -> str:
    """The rows as the plain-text table a user reads (MB per hour of video at 1 sample/s; ms per query)."""
    kinds = ["frame.f16", "segment.f16", "video.f16", "frame graph", "segment graph", "video graph", "total"]
    head = f"{'layout':18} {'frames':>9} " + " ".join(f"{k:>13}" for k in kinds)
    lines = ["MB per hour of video (1 sample/s), on disk:", head]
    for r in rows:
        cells = " ".join(f"{r['mb_per_hour'][k]:13.2f}" if k in r["mb_per_hour"] else f"{'-':>13}" for k in kinds)
        lines.append(f"{r['layout']:18} {r['frames']:>9,} {cells}")
    if rows:
        extras = rows[0]["head_extras_mb_per_hour"]
        lines.append(
            "head models store beside, per hour: "
            + ", ".join(f"{name} {mb:.2f} MB" for name, mb in extras.items())
            + " (not part of the default model's index)"
        )
    lines.append(
        f"{'layout':18} {'frames':>9} {'ef':>5} {'video R@10':>10} {'frame R@10':>10} {'p50 ms':>8} {'p95 ms':>8} "
        f"{'ANN p50':>8} {'cand. videos':>12}"
    )
    for r in rows:
        for s in r["sweep"]:
            lines.append(
                f"{r['layout']:18} {r['frames']:>9,} {s['ef']:>5} {s['video_recall_at_10']:10.4f} "
                f"{s['frame_recall_at_10']:10.4f} {s['p50_ms']:8.2f} {s['p95_ms']:8.2f} {s['ann_p50_ms']:8.2f} "
                f"{s['candidate_videos']:12.1f}"
            )
    return "\n".join(lines)


__all__ = [
    "LAYOUTS",
    "Layout",
    "build_library",
    "exact_answers",
    "format_library_report",
    "measure_layouts",
    "run_library_bench",
]
