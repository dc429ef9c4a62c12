"""``scenefind eval``: index a benchmark's videos, ask every benchmark query through the real searcher, score.

The numbers measure the product, not a model in isolation: the folder is indexed by the same pipeline a user
runs, and each query goes through ``Searcher.search`` with ``min_relevance=0`` (nothing hidden by the
calibrated cutoff). Per task:

* retrieval (MSR-VTT, MSVD, DiDeMo): each caption asks for videos; a dataset video the searcher did not
  return ranks last (pessimistic ties), so recall is never flattered. Only dataset videos found in the folder
  are candidates; other files in the folder are indexed but ignored when ranking.
* highlights (QVHighlights): each query asks for moments; the moments in the query's own video, in score
  order, become ``pred_relevant_windows`` and its similarity curve, max-pooled over 2 s clips, becomes
  ``pred_saliency_scores``; the official metrics score them. A query with no moment in its video gets one
  empty window (a miss) rather than being dropped.
* grounding (Charades-STA, ActivityNet Captions): the top moment in the query's own video is the answer.

Videos missing from the folder (or failing to decode) are skipped with their queries, and counted.
"""

from __future__ import annotations

import contextlib
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from engine.datasets import LOADERS, TASKS, CaptionPair, MomentPrediction, MomentQuery, video_order
from engine.datasets.common import AnnotationError
from engine.evaluation.metrics import retrieval_metrics
from engine.evaluation.moments import CLIP_SECONDS, eval_submission, grounding_metrics
from engine.jobs import CancelToken, ProgressCallback, check_cancel, report, wrap_progress
from engine.library.catalog import VideoRow
from engine.library.library import Library
from engine.models.base import Encoder
from engine.search.query import Query
from engine.search.results import Curve, MomentHit, SearchResults

DEFAULT_MOMENTS_K = 100  # moments asked for per query; those outside the query's video are dropped


class SearcherLike(Protocol):
    def search(self, query: Query) -> SearchResults: ...

    def close(self) -> None: ...


SearcherFactory = Callable[[Library, Encoder], SearcherLike]


@dataclass
class EvalReport:
    """What one evaluation measured, on how much of the dataset."""

    dataset: str
    task: str
    model: str
    annotations: str
    videos_folder: str
    queries: int  # evaluated
    skipped_queries: int  # their video is missing from the folder or failed to index
    dataset_videos: int
    found_videos: int
    missing_videos: int
    failed_videos: int
    metrics: dict[str, float] = field(default_factory=dict)
    elapsed_s: float = 0.0

    def to_json(self) -> dict[str, object]:
        return asdict(self)

    def table(self) -> str:
        """A plain-text table: the counts, then one metric per line."""
        lines = [
            f"Dataset   {self.dataset} ({self.task}) from {self.annotations}",
            f"Model     {self.model}",
            f"Videos    {self.found_videos} indexed of {self.dataset_videos} "
            f"({self.missing_videos} missing, {self.failed_videos} failed) in {self.videos_folder}",
            f"Queries   {self.queries} evaluated, {self.skipped_queries} skipped (video missing or failed)",
            "",
            f"{'metric':<24}{'value':>10}",
        ]
        lines += [f"{name:<24}{_format(value):>10}" for name, value in self.metrics.items()]
        if not self.metrics:
            lines.append("(no query could be evaluated: none of the dataset's videos was indexed)")
        lines.append(f"\n{self.elapsed_s:.1f} s")
        return "\n".join(lines)


def _format(value: float) -> str:
    return "n/a" if value is None or np.isnan(value) else f"{value:.2f}"


def evaluate(
    dataset: str,
    annotations: Path,
    videos: Path,
    *,
    model: str | None = None,
    home: Path | None = None,
    limit: int | None = None,
    moments_k: int = DEFAULT_MOMENTS_K,
    emcl: bool | None = None,
    searcher_factory: SearcherFactory | None = None,
    progress: ProgressCallback | None = None,
    cancel: CancelToken | None = None,
) -> EvalReport:
    """Index ``videos`` into the library at ``home`` (a temporary one by default) and score ``dataset``.

    ``limit`` evaluates only the first N queries whose video is present. ``searcher_factory`` builds the
    searcher from the library and encoder (``engine.search.searcher.Searcher`` by default). ``emcl`` turns
    the EMCL re-ranking setting on or off for the run (None: as the library's settings say).
    """
    if dataset not in LOADERS:
        raise ValueError(f"unknown dataset {dataset!r}; choose one of {', '.join(LOADERS)}")
    started = time.perf_counter()
    videos = Path(videos).expanduser().resolve()
    if not videos.is_dir():
        raise AnnotationError(videos, None, "the videos folder does not exist")
    records: list[Any] = list(LOADERS[dataset](Path(annotations)))
    task = TASKS[dataset]
    with _library(home) as lib:
        if model:
            lib.settings = lib.settings.replace(model=model)
        if emcl is not None:
            lib.settings = lib.settings.replace(emcl_rerank=emcl)
        encoder = lib.encoder()
        lib.add_folder(videos)
        report(progress, 0.0, f"indexing {videos}")
        lib.index(encoder, progress=wrap_progress(progress, 0.0, 0.5), cancel=cancel)
        present, failed = _match_videos(lib, videos, {_vid(r) for r in records}, dataset)
        kept = [r for r in records if _vid(r) in present]
        if limit is not None:
            kept = kept[: max(0, limit)]
        searcher = _make_searcher(searcher_factory, lib, encoder)
        try:
            step = wrap_progress(progress, 0.5, 1.0)
            if task == "retrieval":
                n_library = len(lib.catalog.videos(status="indexed"))
                metrics = _retrieval(searcher, kept, present, n_library, step, cancel)
            elif task == "highlights":
                metrics = _highlights(searcher, kept, present, moments_k, step, cancel)
            else:
                metrics = _grounding(searcher, kept, present, moments_k, step, cancel)
        finally:
            searcher.close()
    dataset_videos = {_vid(r) for r in records}
    return EvalReport(
        dataset=dataset,
        task=task,
        model=encoder.model_id,
        annotations=str(annotations),
        videos_folder=str(videos),
        queries=len(kept),
        skipped_queries=sum(1 for r in records if _vid(r) not in present),
        dataset_videos=len(dataset_videos),
        found_videos=len(present),
        missing_videos=len(dataset_videos) - len(present) - len(failed),
        failed_videos=len(failed),
        metrics=metrics,
        elapsed_s=time.perf_counter() - started,
    )


@contextlib.contextmanager
def _library(home: Path | None) -> Iterator[Library]:
    """The library at ``home``, or one in a temporary folder removed afterwards."""
    if home is not None:
        with Library(Path(home)) as lib:
            yield lib
        return
    with tempfile.TemporaryDirectory(prefix="scenefind-eval-") as tmp, Library(Path(tmp)) as lib:
        yield lib


def _make_searcher(factory: SearcherFactory | None, lib: Library, encoder: Encoder) -> SearcherLike:
    if factory is not None:
        return factory(lib, encoder)
    from engine.search.searcher import Searcher

    return Searcher(lib, encoder)


def _vid(record: CaptionPair | MomentQuery) -> str:
    return record.video_id if isinstance(record, CaptionPair) else record.vid


def _aliases(vid: str, dataset: str) -> tuple[str, ...]:
    """File stems a dataset video may be stored under (ActivityNet files often drop the ``v_`` prefix)."""
    if dataset == "activitynet" and vid.startswith("v_"):
        return (vid, vid[2:])
    return (vid,)


def _match_videos(
    lib: Library, folder: Path, wanted: set[str], dataset: str
) -> tuple[dict[str, VideoRow], dict[str, VideoRow]]:
    """Dataset video id -> catalog row, for the indexed files under ``folder``; and those that failed."""
    by_stem: dict[str, VideoRow] = {}
    for row in sorted(lib.catalog.videos(), key=lambda r: r["path"]):
        path = Path(row["path"])
        if path.is_relative_to(folder):
            by_stem.setdefault(path.stem, row)
    present: dict[str, VideoRow] = {}
    failed: dict[str, VideoRow] = {}
    for vid in wanted:
        row = next((by_stem[a] for a in _aliases(vid, dataset) if a in by_stem), None)
        if row is not None:
            (present if row["status"] == "indexed" else failed)[vid] = row
    return present, failed


def _retrieval(
    searcher: SearcherLike,
    pairs: Sequence[CaptionPair],
    present: dict[str, VideoRow],
    n_library: int,
    progress: ProgressCallback | None,
    cancel: CancelToken | None,
) -> dict[str, float]:
    if not pairs:
        return {}
    video_ids, text_to_video = video_order(pairs)
    column = {present[v]["id"]: j for j, v in enumerate(video_ids)}
    sim = np.full((len(pairs), len(video_ids)), -np.inf)
    for i, pair in enumerate(pairs):
        check_cancel(cancel)
        results = searcher.search(Query(text=pair.caption, k=max(1, n_library), mode="videos", min_relevance=0))
        for hit in results.videos:
            j = column.get(hit.video_id)
            if j is not None:
                sim[i, j] = hit.score
        report(progress, (i + 1) / len(pairs), f"query {i + 1}/{len(pairs)}")
    return retrieval_metrics(sim, text_to_video)


def _own_moments(
    searcher: SearcherLike, query: MomentQuery, row: VideoRow, k: int
) -> tuple[list[MomentHit], Curve | None]:
    results = searcher.search(Query(text=query.query, mode="moments", min_relevance=0, k=k))
    mine = [m for m in results.moments if m.video_id == row["id"]]
    mine.sort(key=lambda m: -m.score)  # stable: the searcher's order among equal scores
    return mine, results.curves.get(row["id"])


def clip_saliency(
    duration: float,
    times: np.ndarray,
    scores: np.ndarray,
    clip_seconds: float = CLIP_SECONDS,
) -> np.ndarray:
    """One score per ``clip_seconds`` clip of a video from a sampled curve: the best sample in the clip,
    or the curve interpolated at the clip's centre when no sample falls inside it."""
    n = int(duration / clip_seconds)
    out = np.full(n, -np.inf)
    times, scores = np.asarray(times, dtype=float), np.asarray(scores, dtype=float)
    if n == 0 or times.size == 0:
        return np.zeros(n)
    clip = np.floor(times / clip_seconds).astype(np.int64)
    inside = (clip >= 0) & (clip < n)
    np.maximum.at(out, clip[inside], scores[inside])
    empty = np.isinf(out)
    centres = (np.flatnonzero(empty) + 0.5) * clip_seconds
    order = np.argsort(times)
    out[empty] = np.interp(centres, times[order], scores[order])
    return out


def _window_saliency(duration: float, moments: Sequence[MomentHit], clip_seconds: float = CLIP_SECONDS) -> np.ndarray:
    """Clip scores from moments alone (no curve): a clip takes the best score of the moments covering its
    centre, and clips no moment covers rank below all of them."""
    n = int(duration / clip_seconds)
    centres = (np.arange(n) + 0.5) * clip_seconds
    floor = min((m.score for m in moments), default=0.0) - 1.0
    out = np.full(n, floor)
    for m in moments:
        covered = (centres >= m.start) & (centres <= m.end)
        out[covered] = np.maximum(out[covered], m.score)
    return out


def _each_query(
    searcher: SearcherLike,
    queries: Sequence[MomentQuery],
    present: dict[str, VideoRow],
    k: int,
    progress: ProgressCallback | None,
    cancel: CancelToken | None,
) -> Iterator[tuple[MomentQuery, list[MomentHit], Curve | None]]:
    """Each query with its moments in its own video (and that video's curve), checking cancel before and
    reporting progress after each: the loop both moment evaluations share."""
    for i, q in enumerate(queries):
        check_cancel(cancel)
        mine, curve = _own_moments(searcher, q, present[q.vid], k)
        yield q, mine, curve
        report(progress, (i + 1) / len(queries), f"query {i + 1}/{len(queries)}")


def _highlights(
    searcher: SearcherLike,
    queries: Sequence[MomentQuery],
    present: dict[str, VideoRow],
    k: int,
    progress: ProgressCallback | None,
    cancel: CancelToken | None,
) -> dict[str, float]:
    if not queries:
        return {}
    predictions = []
    for q, mine, curve in _each_query(searcher, queries, present, k, progress, cancel):
        windows = tuple((m.start, m.end, m.score) for m in mine) or ((0.0, 0.0, 0.0),)
        duration = float(q.duration or present[q.vid]["duration"] or 0.0)
        if curve is not None and len(curve.times):
            saliency = clip_saliency(duration, curve.times, curve.scores)
        else:
            saliency = _window_saliency(duration, mine)
        predictions.append(MomentPrediction(q.qid, q.query, q.vid, windows, tuple(saliency.tolist())))
    return dict(eval_submission(predictions, list(queries))["brief"])


def _grounding(
    searcher: SearcherLike,
    queries: Sequence[MomentQuery],
    present: dict[str, VideoRow],
    k: int,
    progress: ProgressCallback | None,
    cancel: CancelToken | None,
) -> dict[str, float]:
    if not queries:
        return {}
    tops: list[tuple[float, float] | None] = []
    for _, mine, _ in _each_query(searcher, queries, present, k, progress, cancel):
        tops.append((mine[0].start, mine[0].end) if mine else None)
    return grounding_metrics(tops, [q.windows[0] for q in queries])
