"""The indexing run: scan -> decode -> embed -> pool -> commit, incremental and resumable.

Incremental: the scan decides unchanged files by size and mtime, and only videos without an embedding for
this model, fingerprint and sampling settings are decoded. Resumable: each video is committed on its own
(vectors flushed, then one catalog transaction), so a crash or a cancel loses at most the videos in flight;
the next run finds them still pending. A file that cannot be decoded is recorded as failed with the reason
and the run goes on.
"""

from __future__ import annotations

import logging
import queue
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from engine.index.stores import ModelStores
from engine.indexing.pooling import pool_segments, pool_video
from engine.indexing.producer import Ended, Failed, FrameProducer, Frames, Started
from engine.jobs import CancelToken, JobCancelled, ProgressCallback, check_cancel, report, wrap_progress
from engine.library.catalog import Catalog, NewEmbedding, RemovedKeys, VideoRow
from engine.library.scanner import fingerprint, scan_library
from engine.media.decode import SampledFrame, VideoInfo
from engine.models.base import Encoder
from engine.paths import LibraryPaths
from engine.settings import EngineSettings

log = logging.getLogger(__name__)


@dataclass
class IndexReport:
    """What one run did; ``failed`` lists (path, reason) for files that failed in this run."""

    new: int = 0
    changed: int = 0
    moved: int = 0
    removed: int = 0
    unchanged: int = 0
    indexed: int = 0
    frames: int = 0
    seconds_of_video: float = 0.0
    failed: list[tuple[str, str]] = field(default_factory=list)
    unreadable: list[tuple[str, str]] = field(default_factory=list)
    elapsed_s: float = 0.0


@dataclass
class _Work:
    """A video being embedded: frame metadata in time order, and vectors as batches finish."""

    video: VideoRow
    info: VideoInfo
    times: list[float] = field(default_factory=list)
    indices: list[int] = field(default_factory=list)
    cuts: list[bool] = field(default_factory=list)
    vectors: dict[int, np.ndarray] = field(default_factory=dict)  # position -> vector
    ended: bool = False

    @property
    def complete(self) -> bool:
        return self.ended and len(self.vectors) == len(self.times)


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
                catalog.mark_failed(row["id"], f"cannot read it: {why}")
                result.failed.append((str(stat.path), f"cannot read it: {why}"))
            continue
        removed.merge(catalog.update_video_file(row["id"], stat.path, stat.size, stat.mtime_ns, fp))
    for item in scan.new:
        catalog.add_video(item.folder_id, item.stat.path, item.stat.size, item.stat.mtime_ns, item.fingerprint)
    for item, why in scan.rejected:  # a failed row with the reason; the next scan looks at it again
        known = catalog.video_by_path(item.stat.path)
        video_id = (
            known["id"]
            if known
            else catalog.add_video(item.folder_id, item.stat.path, item.stat.size, item.stat.mtime_ns, "")
        )
        catalog.mark_failed(video_id, why)
        result.failed.append((str(item.stat.path), why))
    removed.merge(catalog.remove_videos([row["id"] for row in scan.removed]))
    result.new, result.changed, result.moved, result.removed = (
        len(scan.new),
        len(scan.changed),
        len(scan.moved),
        len(scan.removed),
    )
    return result, removed


class Indexer:
    """Embeds a library's pending videos with one encoder into that model's stores."""

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
        model_id = self.encoder.model_id
        self.catalog.ensure_model(model_id, self.encoder.dim)
        s = self.settings
        todo = self.catalog.pending_videos(model_id, s.sample_every_s, s.segment_window_s, s.segment_stride_s)
        stores = ModelStores.open(self.paths.index_dir(model_id), self.catalog, model_id, self.encoder.dim, s)
        stores.mark_removed(removed)
        job = self.catalog.start_job("index", model_id, len(todo))
        status, message = "failed", ""
        try:
            self._embed_all(todo, stores, result, job, wrap_progress(progress, 0.02, 1.0), cancel)
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
        report(progress, 1.0, f"Indexed {result.indexed} videos ({len(result.failed)} failed)")
        return result

    def _embed_all(
        self,
        todo: list[VideoRow],
        stores: ModelStores,
        result: IndexReport,
        job: int,
        progress: ProgressCallback | None,
        cancel: CancelToken | None,
    ) -> None:
        if not todo:
            return
        s = self.settings
        producer = FrameProducer(
            todo, every_s=s.sample_every_s, cuts=s.detect_cuts, side=self.encoder.image_size
        ).start()
        works: dict[int, _Work] = {}
        buffer: list[tuple[int, int, SampledFrame]] = []  # (video id, position, frame)
        counts = {"finished": 0, "since_save": 0}

        def done(video: VideoRow, outcome: str = "Indexed") -> None:
            """After each video (indexed or failed): save now and then, record, report, honour a cancel."""
            counts["finished"] += 1
            counts["since_save"] += 1
            if counts["since_save"] >= s.save_every_videos:
                stores.save(self.catalog)
                counts["since_save"] = 0
            finished = counts["finished"]
            self.catalog.update_job(job, done=finished, failed=len(result.failed))
            name = Path(video["path"]).name
            report(progress, finished / len(todo), f"{outcome} {finished}/{len(todo)}: {name}")
            check_cancel(cancel)

        producing = True
        try:
            while producing or buffer:
                check_cancel(cancel)
                try:
                    item = producer.queue.get(timeout=0.2) if not buffer else producer.queue.get_nowait()
                except queue.Empty:
                    if buffer:  # the decoder is behind: embed what we have rather than wait
                        self._encode(buffer, works)
                        buffer = []
                    self._commit_ready(works, stores, result, done)
                    continue
                if item is None:
                    producing = False
                elif isinstance(item, Started):
                    works[item.video["id"]] = _Work(item.video, item.info)
                    info = item.info
                    self.catalog.set_video_info(
                        item.video["id"],
                        duration=info.duration_s,
                        fps=info.fps,
                        width=info.width,
                        height=info.height,
                        codec=info.codec,
                    )
                elif isinstance(item, Frames):
                    work = works[item.video_id]
                    for frame in item.frames:
                        buffer.append((item.video_id, len(work.times), frame))
                        work.times.append(frame.t)
                        work.indices.append(frame.index)
                        work.cuts.append(frame.is_cut)
                elif isinstance(item, Ended):
                    works[item.video_id].ended = True
                elif isinstance(item, Failed):
                    work = works.pop(item.video_id, None)
                    buffer = [b for b in buffer if b[0] != item.video_id]
                    row = work.video if work else next(v for v in todo if v["id"] == item.video_id)
                    self._fail(row, item.error, result)
                    done(row, "Failed")
                if len(buffer) >= s.batch_size or (not producing and buffer):
                    self._encode(buffer[: s.batch_size], works)
                    buffer = buffer[s.batch_size :]
                self._commit_ready(works, stores, result, done)
            self._commit_ready(works, stores, result, done)
        finally:
            producer.stop()

    def _encode(self, batch: list[tuple[int, int, SampledFrame]], works: dict[int, _Work]) -> None:
        images = np.stack([frame.image for _, _, frame in batch])
        vectors = self.encoder.encode_images(images)
        for (video_id, position, _), vector in zip(batch, vectors, strict=True):
            works[video_id].vectors[position] = vector

    def _fail(self, video: VideoRow, error: str, result: IndexReport) -> None:
        log.info("%s failed: %s", video["path"], error)  # reported in the run's result and the catalog
        self.catalog.mark_failed(video["id"], error)
        result.failed.append((video["path"], error))

    def _commit_ready(
        self, works: dict[int, _Work], stores: ModelStores, result: IndexReport, done: Callable[[VideoRow], None]
    ) -> None:
        for vid in [vid for vid, work in works.items() if work.complete]:
            work = works.pop(vid)
            outcome = "Indexed"
            if not work.times:
                self._fail(work.video, "no frame could be decoded", result)
                outcome = "Failed"
            else:
                self._commit(work, stores)
                result.indexed += 1
                result.frames += len(work.times)
                result.seconds_of_video += work.info.duration_s
            done(work.video, outcome)

    def _commit(self, work: _Work, stores: ModelStores) -> None:
        """Write vectors (flushed), then commit the rows that name them, then update the in-memory indexes."""
        s = self.settings
        order = np.argsort(np.asarray(work.times), kind="stable")
        frame_vecs = np.stack([work.vectors[i] for i in order]).astype(np.float32)
        times = [work.times[i] for i in order]
        spans, seg_vecs = pool_segments(times, frame_vecs, work.info.duration_s, s.segment_window_s, s.segment_stride_s)
        video_vec = pool_video(frame_vecs)
        new = NewEmbedding(
            video_id=work.video["id"],
            fingerprint=work.video["fingerprint"],
            sample_every_s=s.sample_every_s,
            segment_window_s=s.segment_window_s,
            segment_stride_s=s.segment_stride_s,
            frame_times=times,
            frame_indices=[work.indices[i] for i in order],
            frame_is_cut=[work.cuts[i] for i in order],
            segments=spans,
        )
        model_id = self.encoder.model_id
        with self.catalog.transaction() as db:
            keys, removed = self.catalog.insert_embedding(db, model_id, new)
            stores.write_vectors("video", [keys.video], video_vec)
            stores.write_vectors("segment", keys.segments, seg_vecs)
            stores.write_vectors("frame", keys.frames, frame_vecs)
        stores.mark_removed(removed)
        stores.add_to_indexes("video", [keys.video], video_vec)
        stores.add_to_indexes("segment", keys.segments, seg_vecs)
        stores.add_to_indexes("frame", keys.frames, frame_vecs)
