"""Pool frame vectors into segment and video vectors (the coarser grains) by their mean.

Segments are sliding windows (default 4 s wide every 2 s) over the sampled frames, so a moment that spans a
window boundary is still covered whole by one segment. Mean pooling is the mean of the frame vectors inside,
re-normalised; a window with no sampled frame (very sparse sampling) is skipped rather than invented. Models with
a temporal head pool the same windows through it instead (``engine.indexing.head_pooling``).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from engine.models.base import l2_normalise


def segment_spans(duration: float, window_s: float, stride_s: float) -> list[tuple[float, float]]:
    """Window (start, end) pairs covering ``[0, duration]``; a video shorter than a window gets one span."""
    if duration <= window_s:
        return [(0.0, max(duration, 0.0))]
    spans = []
    start = 0.0
    while start < duration:
        end = min(start + window_s, duration)
        spans.append((round(start, 6), round(end, 6)))
        if end >= duration:
            break
        start += stride_s
    return spans


def window_frames(times: np.ndarray, start: float, end: float, duration: float) -> np.ndarray:
    """Indices of the frames a window holds, in time order: ``start <= t < end``, and those at its end too for the
    window that reaches ``duration`` (the longer of the video's duration and its last frame's time)."""
    t = np.asarray(times, dtype=np.float64)
    return np.flatnonzero((t >= start) & ((t <= end) if end >= duration else (t < end)))


def segment_windows(
    times: Sequence[float], duration: float, window_s: float, stride_s: float
) -> list[tuple[tuple[float, float], np.ndarray]]:
    """The segments that contain at least one frame: (span, indices of the frames inside, in time order), as
    :func:`window_frames` reads a window."""
    t = np.asarray(times, dtype=np.float64)
    duration = max(duration, float(t.max()) if len(t) else 0.0)
    out = []
    for start, end in segment_spans(duration, window_s, stride_s):
        inside = window_frames(t, start, end, duration)
        if len(inside):
            out.append(((start, end), inside))
    return out


def pool_segments(
    times: Sequence[float], vectors: np.ndarray, duration: float, window_s: float, stride_s: float
) -> tuple[list[tuple[float, float]], np.ndarray]:
    """Segments that contain at least one frame, with their mean-pooled, L2-normalised vectors."""
    windows = segment_windows(times, duration, window_s, stride_s)
    if not windows:
        return [], np.zeros((0, vectors.shape[1]), dtype=np.float32)
    return [span for span, _ in windows], l2_normalise(np.stack([vectors[i].mean(axis=0) for _, i in windows]))


def pool_video(vectors: np.ndarray) -> np.ndarray:
    """Whole-video vector: the normalised mean of its frame vectors, shape (1, D)."""
    return l2_normalise(vectors.mean(axis=0, keepdims=True))
