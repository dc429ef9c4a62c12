"""The indexing run: scan -> decode -> embed -> pool -> commit, incremental and resumable.

Pooling is the mean of the frame vectors (``engine.indexing.pooling``), or, for a model with a temporal head,
the head over each window's raw frame features (``engine.indexing.head_pooling``), which also gives every frame
a context vector for the moment curve. A model with a concept head gets every vector's sparse code stored beside
it (``engine.index.codes``), written and flushed with the vectors.

Incremental: the scan decides unchanged files by size and mtime, and only videos without an embedding for
this model, fingerprint and sampling settings are decoded. Resumable: each video is committed on its own
(vectors flushed, then one catalog transaction), so a crash or a cancel loses at most the videos in flight;
the next run finds them still pending. A file that cannot be decoded is recorded as failed with the reason
and the run goes on; a sound file (no video stream) is recorded as such, for the speech stage, not as
failed. The committing half (``VideoWriter``) is shared with runs whose decoding and embedding happen on Ray
workers (``engine.indexing.ray_indexer``), so both leave the library in the same state.
"""

from __future__ import annotations

import logging
import queue
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import numpy as np

from engine.index.layout import layout_for
from engine.index.stores import CONTEXT, ModelStores
from engine.indexing.core_sharing import embedding_threads
from engine.indexing.head_pooling import head_pool
from engine.indexing.pooling import pool_segments, pool_video
from engine.indexing.producer import Ended, Failed, FrameProducer, Frames, Started
from engine.indexing.stages import StageReport
from engine.jobs import CancelToken, JobCancelled, ProgressCallback, check_cancel, report, wrap_progress
from engine.library.catalog import Catalog, NewEmbedding, RemovedKeys, VideoRow
from engine.library.scanner import fingerprint, scan_library
from engine.media.decode import SampledFrame, VideoInfo
from engine.models.base import ConceptBank, Encoder, TemporalPooling, concepts_of, l2_normalise, temporal_of
from engine.models.sparse import top_codes
from engine.paths import LibraryPaths
from engine.settings import EngineSettings

log = logging.getLogger(__name__)


@dataclass
class IndexReport:
    """What one run did. Each count means one thing.

    The scan's counts are about files on disk: ``new``, ``changed``, ``moved`` and ``unchanged`` files, and
    ``removed`` (gone from disk, so dropped). The rest are about the library's videos and this run's model, and
    add up to the videos in the library: ``indexed`` (embedded by this run), ``already_indexed`` (indexed with
    this model before, left alone), ``failed`` (failed in this run, with the reason) and ``failed_before``
    (failed in an earlier run and skipped until the file changes or ``--retry-failed``)."""

    new: int = 0
    changed: int = 0
    moved: int = 0
    removed: int = 0
    unchanged: int = 0
    indexed: int = 0
    already_indexed: int = 0
    failed_before: int = 0
    frames: int = 0
    seconds_of_video: float = 0.0
    failed: list[tuple[str, str]] = field(default_factory=list)
    unreadable: list[tuple[str, str]] = field(default_factory=list)
    no_video: list[str] = field(default_factory=list)  # sound files found in this run (no video stream)
    partial: list[tuple[str, str]] = field(default_factory=list)  # indexed up to where the file broke, and why
    elapsed_s: float = 0.0
    model_id: str = ""
    stages: list[StageReport] = field(default_factory=list)  # speech and text, after the picture


@dataclass
class EmbeddedVideo:
    """One video decoded and embedded, ready to commit: frames in decode order, one vector row each.

    A local run builds it from its batches; a Ray worker returns it whole (``engine.indexing.ray_worker``).
    """

    video: VideoRow
    info: VideoInfo
    times: list[float]
    indices: list[int]
    cuts: list[bool]
    vectors: np.ndarray  # (len(times), dim) float32
    features: np.ndarray | None = None  # raw tower features (len(times), dim) for a model with a temporal head
    note: str = ""  # where a damaged or truncated file stopped being readable ("" when read to its end)


@dataclass
class _Work:
    """A video being embedded: frame metadata in time order, and vectors as batches finish."""

    video: VideoRow
    info: VideoInfo
    times: list[float] = field(default_factory=list)
    indices: list[int] = field(default_factory=list)
    cuts: list[bool] = field(default_factory=list)
    vectors: dict[int, np.ndarray] = field(default_factory=dict)  # position -> vector
    features: dict[int, np.ndarray] = field(default_factory=dict)  # position -> raw features (head models)
    ended: bool = False
    note: str = ""

    @property
    def complete(self) -> bool:
        return self.ended and len(self.vectors) == len(self.times)

    def embedded(self, dim: int) -> EmbeddedVideo:
        def stacked(rows: dict[int, np.ndarray]) -> np.ndarray:
            if not self.times:
                return np.zeros((0, dim), np.float32)
            return np.stack([rows[i] for i in range(len(self.times))]).astype(np.float32)

        features = stacked(self.features) if self.features else None
        return EmbeddedVideo(
            self.video, self.info, self.times, self.indices, self.cuts, stacked(self.vectors), features, self.note
        )


class EmbedSink(Protocol):
    """Where :func:`embed_videos` hands what it learns: ``VideoWriter`` (commit here) or a Ray worker's collector."""

    def record_info(self, video: VideoRow, info: VideoInfo) -> None: ...

    def commit(self, embedded: EmbeddedVideo) -> bool: ...

    def fail(self, video: VideoRow, error: str, *, no_video: bool = False) -> bool: ...


def embed_videos(
    todo: list[VideoRow],
    encoder: Encoder,
    settings: EngineSettings,
    sink: EmbedSink,
    cancel: CancelToken | None = None,
) -> None:
    """Decode on a background thread, embed here in batches across videos, hand each video to ``sink`` when
    whole (or its failure). The one decode+embed loop: a local run passes its ``VideoWriter``, a Ray worker a
    sink that keeps its one video for the trip back."""
    s = settings
    producer = FrameProducer(todo, every_s=s.sample_every_s, cuts=s.detect_cuts, side=encoder.image_size).start()
    works: dict[int, _Work] = {}
    buffer: list[tuple[int, int, SampledFrame]] = []  # (video id, position, frame)
    producing = True
    try:
        while producing or buffer:
            check_cancel(cancel)
            try:
                item = producer.queue.get(timeout=0.2) if not buffer else producer.queue.get_nowait()
            except queue.Empty:
                if buffer:  # the decoder is behind: embed what we have rather than wait
                    _encode(encoder, buffer, works, decoding=producing)
                    buffer = []
                _commit_ready(works, sink, encoder.dim)
                continue
            if item is None:
                producing = False
            elif isinstance(item, Started):
                works[item.video["id"]] = _Work(item.video, item.info)
                sink.record_info(item.video, item.info)
            elif isinstance(item, Frames):
                work = works[item.video_id]
                for frame in item.frames:
                    buffer.append((item.video_id, len(work.times), frame))
                    work.times.append(frame.t)
                    work.indices.append(frame.index)
                    work.cuts.append(frame.is_cut)
            elif isinstance(item, Ended):
                works[item.video_id].ended = True
                works[item.video_id].note = item.note
            elif isinstance(item, Failed):
                work = works.pop(item.video_id, None)
                buffer = [b for b in buffer if b[0] != item.video_id]
                row = work.video if work else next(v for v in todo if v["id"] == item.video_id)
                sink.fail(row, item.error, no_video=item.no_video)
            if len(buffer) >= s.batch_size or (not producing and buffer):
                _encode(encoder, buffer[: s.batch_size], works, decoding=producing)
                buffer = buffer[s.batch_size :]
            _commit_ready(works, sink, encoder.dim)
        _commit_ready(works, sink, encoder.dim)
    finally:
        producer.stop()


def _encode(
    encoder: Encoder, batch: list[tuple[int, int, SampledFrame]], works: dict[int, _Work], *, decoding: bool
) -> None:
    """Embed one batch; a head model keeps the raw features too (its head pools them, not the vectors).
    ``decoding``: the decoder thread still runs, so the model leaves it a share of the cores."""
    images = np.stack([frame.image for _, _, frame in batch])
    temporal = temporal_of(encoder)
    with embedding_threads(encoder.device, decoding=decoding):
        features = temporal.frame_features(images) if temporal is not None else None
        vectors = l2_normalise(features) if features is not None else encoder.encode_images(images)
    for row, (video_id, position, _) in enumerate(batch):
        works[video_id].vectors[position] = vectors[row]
        if features is not None:
            works[video_id].features[position] = features[row]


def _commit_ready(works: dict[int, _Work], sink: EmbedSink, dim: int) -> None:
    for vid in [vid for vid, work in works.items() if work.complete]:
        sink.commit(works.pop(vid).embedded(dim))


def apply_scan(catalog: Catalog, *, cancel: CancelToken | None = None) -> tuple[IndexReport, RemovedKeys]:
    """Scan every folder and record new, changed, moved and removed files in the catalog."""
    scan = scan_library(catalog, cancel=cancel)
    result = IndexReport(unchanged=scan.unchanged, unreadable=[(str(p), why) for p, why in scan.unreadable])
    removed = RemovedKeys()
    for row, item in scan.moved:
        removed.merge(
            catalog.update_video_file(
                row["id"],
                item.stat.path,
                item.stat.size,
                item.stat.mtime_ns,
                item.fingerprint,
                folder_id=item.folder_id,
            )
        )
    for row, stat in scan.changed:
        check_cancel(cancel)
        try:
            fp = fingerprint(stat.path, stat.size)
        except OSError as exc:
            why = exc.strerror or str(exc)
            if row["fingerprint"]:
                result.unreadable.append((str(stat.path), why))
            else:  # still unreadable: keep it failed, with today's reason
                _fail(catalog, result, row, str(stat.path), f"cannot read it: {why}")
            continue
        removed.merge(catalog.update_video_file(row["id"], stat.path, stat.size, stat.mtime_ns, fp))
    for item in scan.new:
        catalog.add_video(item.folder_id, item.stat.path, item.stat.size, item.stat.mtime_ns, item.fingerprint)
    for item, why in scan.rejected:  # a failed row with the reason; the next scan looks at it again
        known = catalog.video_by_path(item.stat.path)
        if known is None:
            video_id = catalog.add_video(item.folder_id, item.stat.path, item.stat.size, item.stat.mtime_ns, "")
            known = catalog.video(video_id)
        assert known is not None
        _fail(catalog, result, known, str(item.stat.path), why)
    removed.merge(catalog.remove_videos([row["id"] for row in scan.removed]))
    result.new, result.changed, result.moved, result.removed = (
        len(scan.new),
        len(scan.changed),
        len(scan.moved),
        len(scan.removed),
    )
    return result, removed


def _fail(catalog: Catalog, result: IndexReport, row: VideoRow, path: str, why: str) -> None:
    """Record that the scan found a file unusable. It is a failure of this run unless it had already failed for
    the same reason (then it is one of the failures from before, and changes nothing)."""
    if row["status"] == "failed" and row["error"] == why:
        return
    catalog.mark_failed(row["id"], why)
    result.failed.append((path, why))


class VideoWriter:
    """The one writer of a run: commits finished videos and records failures, whoever embedded them.

    Local and Ray runs share it, so a video is committed the same way wherever it was embedded: its vectors
    written and flushed, then one catalog transaction naming them, then the in-memory indexes. A video is
    finished at most once per run (a late duplicate, from a worker whose task was retried, is ignored). After
    each video it saves the indexes now and then, keeps the job row current, reports progress and honours a
    cancel, so a crash or a cancel loses at most the videos still in flight.
    """

    def __init__(
        self,
        catalog: Catalog,
        stores: ModelStores,
        settings: EngineSettings,
        model_id: str,
        result: IndexReport,
        job: int,
        total: int,
        *,
        progress: ProgressCallback | None = None,
        cancel: CancelToken | None = None,
        temporal: TemporalPooling | None = None,
        concepts: ConceptBank | None = None,
    ) -> None:
        self.catalog = catalog
        self.stores = stores
        self.settings = settings
        self.model_id = model_id
        self.temporal = temporal  # pool through this head (None: mean pooling)
        self.concepts = concepts  # store sparse codes under this concept head (None: no codes)
        self.result = result
        self.job = job
        self.total = total
        self.progress = progress
        self.cancel = cancel
        self.finished: set[int] = set()  # video ids committed or failed in this run
        self._since_save = 0

    def record_info(self, video: VideoRow, info: VideoInfo) -> None:
        """Store what the decoder learnt about the file (kept even if decoding fails later on)."""
        self.catalog.set_video_info(
            video["id"],
            duration=info.duration_s,
            fps=info.fps,
            width=info.width,
            height=info.height,
            codec=info.codec,
        )

    def commit(self, embedded: EmbeddedVideo) -> bool:
        """Commit one embedded video; False when this run has already finished it (nothing is written)."""
        if embedded.video["id"] in self.finished:
            return False
        if not embedded.times:
            return self.fail(embedded.video, "no frame could be decoded")
        self._write(embedded)
        self.result.indexed += 1
        self.result.frames += len(embedded.times)
        self.result.seconds_of_video += embedded.info.duration_s
        if embedded.note:
            self.result.partial.append((embedded.video["path"], embedded.note))
        self._done(embedded.video, "Indexed")
        return True

    def fail(self, video: VideoRow, error: str, *, no_video: bool = False) -> bool:
        """Record a video that could not be indexed, with the reason (or, with ``no_video``, a sound file,
        which is not a failure); False when already finished."""
        if video["id"] in self.finished:
            return False
        if no_video:
            self.catalog.mark_no_video(video["id"], error)
            self.result.no_video.append(video["path"])
            self._done(video, "No video stream in")
            return True
        log.info("%s failed: %s", video["path"], error)  # reported in the run's result and the catalog
        self.catalog.mark_failed(video["id"], error)
        self.result.failed.append((video["path"], error))
        self._done(video, "Failed")
        return True

    def _done(self, video: VideoRow, outcome: str) -> None:
        """After each video (indexed or failed): save now and then, record, report, honour a cancel."""
        self.finished.add(video["id"])
        self._since_save += 1
        if self._since_save >= self.settings.save_every_videos:
            self.stores.save(self.catalog)
            self._since_save = 0
        count = len(self.finished)
        self.catalog.update_job(self.job, done=count, failed=len(self.result.failed))
        name = Path(video["path"]).name
        report(self.progress, count / max(1, self.total), f"{outcome} {count}/{self.total}: {name}")
        check_cancel(self.cancel)

    def _write(self, embedded: EmbeddedVideo) -> None:
        """Write vectors (flushed, every file at once), then commit the rows that name them, then update the
        in-memory indexes."""
        s = self.settings
        shape = (len(embedded.times), self.stores.dim)
        if np.shape(embedded.vectors) != shape:  # a worker on another model or a truncated answer: never store it
            got = np.shape(embedded.vectors)
            raise ValueError(f"{embedded.video['path']}: got vectors of shape {got}, not {shape}")
        order = np.argsort(np.asarray(embedded.times), kind="stable")
        frame_vecs = np.asarray(embedded.vectors, dtype=np.float32)[order]
        times = [embedded.times[i] for i in order]
        context = None
        if self.temporal is not None:
            if embedded.features is None or np.shape(embedded.features) != shape:  # never mean-pool silently
                got = None if embedded.features is None else np.shape(embedded.features)
                raise ValueError(
                    f"{embedded.video['path']}: {self.model_id} pools through its head, got features {got}"
                )
            pooled = head_pool(
                np.asarray(times),
                np.asarray(embedded.features, dtype=np.float32)[order],
                embedded.info.duration_s,
                s.segment_window_s,
                s.segment_stride_s,
                self.temporal,
            )
            spans, seg_vecs, video_vec, context = pooled.spans, pooled.segments, pooled.video, pooled.context
        else:
            spans, seg_vecs = pool_segments(
                times, frame_vecs, embedded.info.duration_s, s.segment_window_s, s.segment_stride_s
            )
            video_vec = pool_video(frame_vecs)
        new = NewEmbedding(
            video_id=embedded.video["id"],
            fingerprint=embedded.video["fingerprint"],
            sample_every_s=s.sample_every_s,
            segment_window_s=s.segment_window_s,
            segment_stride_s=s.segment_stride_s,
            frame_times=times,
            frame_indices=[embedded.indices[i] for i in order],
            frame_is_cut=[embedded.cuts[i] for i in order],
            segments=spans,
        )
        stores = self.stores
        with self.catalog.transaction() as db:
            keys, removed = self.catalog.insert_embedding(db, self.model_id, new)
            written = [("video", [keys.video], video_vec), ("segment", keys.segments, seg_vecs)]
            written.append(("frame", keys.frames, frame_vecs))
            for grain, grain_keys, vectors in written:
                stores.write_vectors(grain, grain_keys, vectors)  # type: ignore[arg-type]
            if context is not None:
                stores.write_context(keys.frames, context)
                written.append((CONTEXT, keys.frames, context))
            if self.concepts is not None:
                for name, name_keys, vectors in written:
                    stores.write_codes(name, name_keys, *top_codes(vectors, self.concepts))
            stores.flush_written()  # durable before the rows that name them commit
        stores.mark_removed(removed)
        stores.add_to_indexes("video", [keys.video], video_vec)
        stores.add_to_indexes("segment", keys.segments, seg_vecs)


class Indexer:
    """Embeds a library's pending videos with one encoder into that model's stores.

    ``run`` is the whole job (scan, pending videos, stores, job row, ``VideoWriter``); ``_embed_all`` is the
    part that turns pending videos into embedded ones, here on this machine (``RayIndexer`` overrides it)."""

    def __init__(self, paths: LibraryPaths, catalog: Catalog, encoder: Encoder, settings: EngineSettings) -> None:
        self.paths = paths
        self.catalog = catalog
        self.encoder = encoder
        self.settings = settings

    def run(self, *, progress: ProgressCallback | None = None, cancel: CancelToken | None = None) -> IndexReport:
        """Scan, then embed every pending video. Raises ``JobCancelled`` after saving what was done."""
        started = time.perf_counter()
        report(progress, 0.0, "Scanning folders")
        result, removed = apply_scan(self.catalog, cancel=cancel)
        model_id = result.model_id = self.encoder.model_id
        s = self.settings
        todo = self.catalog.pending_videos(model_id, s.sample_every_s, s.segment_window_s, s.segment_stride_s)
        if not todo and not removed.count_for(model_id):
            # Nothing to embed and nothing of this model's to drop: the stores stay closed and the model is
            # never built (a ``LazyEncoder`` stays unbuilt), so an unchanged library costs what its scan costs.
            job = self.catalog.start_job("index", model_id, 0)
            self.catalog.finish_job(job, "done", "nothing to index")
            return self._finish(result, started, progress)
        layout = layout_for(self.encoder) if todo else None  # loads a head model: a bad one fails before any write
        self.catalog.ensure_model(model_id, self.encoder.dim)
        folder = self.paths.index_dir(model_id)
        stores = ModelStores.open(folder, self.catalog, model_id, self.encoder.dim, s, layout=layout)
        stores.mark_removed(removed)
        job = self.catalog.start_job("index", model_id, len(todo))
        writer = VideoWriter(
            self.catalog,
            stores,
            s,
            model_id,
            result,
            job,
            len(todo),
            progress=wrap_progress(progress, 0.02, 1.0),
            cancel=cancel,
            temporal=temporal_of(self.encoder),
            concepts=concepts_of(self.encoder) if todo and stores.layout.code_k else None,
        )
        status, message = "failed", ""
        try:
            if todo:
                self._embed_all(todo, writer, cancel)
            status = "done"
            message = f"{result.indexed} indexed, {len(result.failed)} failed"
        except JobCancelled:
            status, message = "cancelled", f"cancelled after {result.indexed} of {len(todo)} videos"
            raise
        except BaseException as exc:
            message = f"{type(exc).__name__}: {exc}"
            raise
        finally:
            stores.save(self.catalog)
            stores.close()
            self.catalog.finish_job(job, status, message)
            result.elapsed_s = time.perf_counter() - started
        return self._finish(result, started, progress)

    def _finish(self, result: IndexReport, started: float, progress: ProgressCallback | None) -> IndexReport:
        """Count the videos this run did not touch (indexed or failed before) and report the end."""
        s = self.settings
        counts = self.catalog.folder_counts(result.model_id, s.sample_every_s, s.segment_window_s, s.segment_stride_s)
        result.already_indexed = max(0, sum(c.indexed for c in counts) - result.indexed)
        result.failed_before = max(0, sum(c.failed for c in counts) - len(result.failed))
        result.elapsed_s = time.perf_counter() - started
        report(progress, 1.0, f"Indexed {result.indexed} videos ({len(result.failed)} failed)")
        return result

    def _embed_all(self, todo: list[VideoRow], writer: VideoWriter, cancel: CancelToken | None) -> None:
        embed_videos(todo, self.encoder, self.settings, writer, cancel)
