"""Segment, video and moment-curve vectors through a model's temporal head (findings.md #1 and #7).

The mean of a clip's frame vectors equals the mean of its time-reversal, so mean pooling erases what a temporal
head learned about order and motion. A model with a head (``engine.models.base.TemporalPooling``) therefore
pools every window here instead: the head reads the window's raw frame features in time order, exactly as in
training, and its L2-normalised output is the window's vector. Three kinds of window:

* each segment (the same spans mean pooling uses, ``engine.indexing.pooling.segment_windows``);
* the whole video;
* one *context* window per frame, a segment-wide window centred on it: the head's view of that moment, from
  which search draws the moment curve and the fine similarity, so neither is order-blind where the model is not.

The head was trained on clips of ``n_frames`` frames spread evenly over the clip, but a window holds however many
frames the sampling put there. How it is fitted is the ``head_windows`` setting:

* ``resample`` (default): ``n_frames`` slots evenly over the window, each taking the frame nearest its centre,
  which is how training samples a clip (``engine.train.data``), so a window looks like what the head learned;
  a window with fewer frames repeats some (a repeated frame is a zero motion step);
* ``pad``: a window with at most ``n_frames`` frames is fed as it is, masked to ``n_frames``, so no frame is
  repeated; more frames are resampled;
* ``slide``: windows as ``resample``, but the video vector is the mean of the segment vectors (slide and pool)
  instead of ``n_frames`` frames spread over a video that may be an hour long.

``resample`` is the default because it is the only one that shows the head the same thing at index time as at
training time for a clip the length of a training clip; ``scenefind bench quality`` measures the others.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from engine.indexing.pooling import segment_windows
from engine.models.base import TemporalPooling, l2_normalise

_CHUNK = 1024  # windows gathered at once: 1024 × n_frames × dim float32 (32 MiB for 8 × 1024-d)


@dataclass
class HeadPooled:
    """A video's head vectors: segments (with their spans), the video, and one context vector per frame."""

    spans: list[tuple[float, float]]
    segments: np.ndarray  # (S, D)
    video: np.ndarray  # (1, D)
    context: np.ndarray  # (F, D), row i for frame i


def window_slots(times: np.ndarray, inside: np.ndarray, start: float, end: float, n: int, mode: str) -> np.ndarray:
    """Frame indices for the head's ``n`` slots over ``[start, end]`` (``inside``: the frames in it, in time
    order), padded with -1 in ``pad`` mode when the window holds fewer than ``n`` frames."""
    if mode == "pad" and len(inside) <= n:
        return np.concatenate([inside, np.full(n - len(inside), -1, dtype=np.int64)])
    centres = start + (np.arange(n) + 0.5) * (end - start) / n
    nearest = np.abs(times[inside][None, :] - centres[:, None]).argmin(axis=1)  # first of equals: the earlier
    return inside[nearest]


def pool_windows(temporal: TemporalPooling, features: np.ndarray, slots: np.ndarray) -> np.ndarray:
    """Head vectors (W, D) of windows given as frame-index slots (W, n) into ``features`` (F, D); -1 = padding."""
    out = []
    for begin in range(0, len(slots), _CHUNK):
        part = slots[begin : begin + _CHUNK]
        mask = part >= 0
        out.append(temporal.pool(features[np.where(mask, part, 0)], mask))
    return np.concatenate(out) if out else np.zeros((0, features.shape[1]), np.float32)


def head_pool(
    times: np.ndarray,
    features: np.ndarray,
    duration: float,
    window_s: float,
    stride_s: float,
    temporal: TemporalPooling,
) -> HeadPooled:
    """Every head vector of one video from its frames' raw features (F, D), frames sorted by time."""
    t = np.asarray(times, dtype=np.float64)
    n, mode = temporal.n_frames, temporal.windows
    duration = max(float(duration), float(t[-1]) if len(t) else 0.0)
    window_mode = "resample" if mode == "slide" else mode
    segments = segment_windows(t, duration, window_s, stride_s)
    slots = [window_slots(t, inside, s, e, n, window_mode) for (s, e), inside in segments]
    whole = np.arange(len(t))
    if mode != "slide":
        slots.append(window_slots(t, whole, 0.0, duration, n, window_mode))
    half = window_s / 2
    for i, ti in enumerate(t):
        start, end = max(0.0, ti - half), min(duration, ti + half)
        inside = np.flatnonzero((t >= start) & (t <= end))
        slots.append(window_slots(t, inside if len(inside) else np.array([i]), start, end, n, window_mode))
    pooled = pool_windows(temporal, features, np.stack(slots)) if slots else np.zeros((0, features.shape[1]))
    n_seg = len(segments)
    seg_vecs = pooled[:n_seg].astype(np.float32)
    if mode == "slide":
        video = l2_normalise(seg_vecs.mean(axis=0, keepdims=True))
        context = pooled[n_seg:]
    else:
        video, context = pooled[n_seg : n_seg + 1], pooled[n_seg + 1 :]
    return HeadPooled([span for span, _ in segments], seg_vecs, video.astype(np.float32), context.astype(np.float32))


__all__ = ["HeadPooled", "head_pool", "pool_windows", "window_slots"]
