"""A synthetic video library for ``scenefind bench search --library``: videos of frames, segments and a vector.

The frames are the clustered vectors of ``engine.bench.vector_corpus`` (near-duplicate shots of 10 frames, one
frame a second), cut into videos of 20 s to 10 min (log-uniform, as a phone library mixes clips and long takes).
Segments and video vectors are pooled by the indexer's own functions (``engine.indexing.pooling``: 4 s windows
every 2 s, the mean), so the three grains relate as they do in a real index. Everything is regenerated from
the seed, chunk by chunk, so a million frames never sit in memory as float32 at once.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from functools import cached_property

import numpy as np

from engine.bench.vector_corpus import Corpus
from engine.indexing.pooling import pool_segments, pool_video
from engine.settings import EngineSettings

MIN_VIDEO_S, MAX_VIDEO_S = 20, 600
SAMPLE_EVERY_S = 1.0  # the default sampling (EngineSettings.sample_every_s)


@dataclass
class VideoBatch:
    """Consecutive whole videos: their frames, segments and video vectors (float32), with their keys."""

    videos: np.ndarray  # video keys (V,)
    frame_keys: np.ndarray  # (F,)
    frames: np.ndarray  # (F, D)
    frame_video: np.ndarray  # (F,) video key of each frame
    segment_keys: np.ndarray  # (S,)
    segments: np.ndarray  # (S, D)
    segment_video: np.ndarray  # (S,)
    vectors: np.ndarray  # (V, D)


@dataclass(frozen=True)
class LibraryCorpus:
    """``size`` frames (keys 1..size) in videos keyed 1..V; segments keyed 1..S in video order."""

    size: int
    dim: int
    seed: int

    @property
    def frames(self) -> Corpus:
        return Corpus("clustered", self.size, self.dim, self.seed)

    @cached_property
    def lengths(self) -> np.ndarray:
        """Frames per video, summing to ``size``."""
        rng = np.random.default_rng([self.seed, 7])
        draws = np.exp(rng.uniform(np.log(MIN_VIDEO_S), np.log(MAX_VIDEO_S), self.size // MIN_VIDEO_S + 1))
        lengths = np.maximum(1, np.rint(draws / SAMPLE_EVERY_S)).astype(np.int64)
        ends = np.cumsum(lengths)
        n = int(np.searchsorted(ends, self.size)) + 1
        lengths = lengths[:n].copy()
        lengths[-1] -= int(ends[n - 1]) - self.size
        return lengths[lengths > 0]

    @property
    def hours(self) -> float:
        return self.size * SAMPLE_EVERY_S / 3600

    def batches(self, settings: EngineSettings | None = None) -> Iterator[VideoBatch]:
        """The library in batches of whole videos, in key order, always the same for the same corpus."""
        s = settings or EngineSettings()
        ends = np.cumsum(self.lengths)
        pending: list[np.ndarray] = []
        start_key, video, segment_key = 1, 0, 1
        for keys, chunk in self.frames.chunks():
            pending.append(chunk)
            have = np.concatenate(pending) if len(pending) > 1 else chunk
            last = int(keys[-1])
            done = int(np.searchsorted(ends, last, side="right"))  # videos ending within what we have
            if done == video:
                pending = [have]
                continue
            cut = int(ends[done - 1]) - start_key + 1
            batch = self._pool(have[:cut], start_key, video, done, segment_key, s)
            yield batch
            pending = [have[cut:]]
            start_key, video = int(ends[done - 1]) + 1, done
            segment_key += len(batch.segment_keys)

    def _pool(
        self, frames: np.ndarray, first_key: int, video: int, done: int, segment_key: int, s: EngineSettings
    ) -> VideoBatch:
        lengths = self.lengths[video:done]
        segs, seg_video, vectors = [], [], []
        offset = 0
        for i, n in enumerate(lengths):
            own = frames[offset : offset + n]
            offset += n
            times = np.arange(n) * SAMPLE_EVERY_S
            _, pooled = pool_segments(times, own, n * SAMPLE_EVERY_S, s.segment_window_s, s.segment_stride_s)
            segs.append(pooled)
            seg_video.append(np.full(len(pooled), video + i + 1, np.int64))
            vectors.append(pool_video(own))
        segments = np.concatenate(segs)
        return VideoBatch(
            videos=np.arange(video + 1, done + 1, dtype=np.int64),
            frame_keys=np.arange(first_key, first_key + len(frames), dtype=np.int64),
            frames=frames,
            frame_video=np.repeat(np.arange(video + 1, done + 1, dtype=np.int64), lengths),
            segment_keys=np.arange(segment_key, segment_key + len(segments), dtype=np.int64),
            segments=segments,
            segment_video=np.concatenate(seg_video),
            vectors=np.concatenate(vectors),
        )

    def queries(self, count: int) -> np.ndarray:
        """Text-like queries: as far from their frames as a CLIP text query is (``clustered-far``)."""
        return self.frames.queries(count)["clustered-far"]

    def cache_key(self, settings: EngineSettings) -> str:
        return (
            f"library-n{self.size}-d{self.dim}-M{settings.hnsw_m}-efc{settings.hnsw_ef_construction}-s{self.seed}"
            f"-w{settings.segment_window_s:g}-{settings.segment_stride_s:g}"
        )


__all__ = ["LibraryCorpus", "VideoBatch"]
