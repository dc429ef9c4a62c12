"""The word-frame score of losses.md §1.4 at search time, for models trained with it.

Why search needs it: the component objectives train and select a model by ``½(s_global + s_fine)``, where
``s_fine`` lets each word of the caption find its own frames (a softmax over frames, τ1) and the words be weighed
(a softmax over words, τ2). What such a model learns about *which colour is on which shape* can live in that word
term rather than in the pooled vector, and measured it did: on ``bench quality``'s colour-swapped twins a component
run (seed 1) told the right clip from its twin 89.9 % of the time by its training score but 53.7 % by the pooled
cosine that search served. §1.4 names the remedy: ``s_fine`` as a re-scoring of the candidates at search time.

The frames that score saw are the temporal head's per-frame outputs over a clip of ``n_frames``, not the image
tower's frames nor the index's pooled context vectors, so search reads each window the index pooled (every segment
and the whole video) through the head again, from the stored unit frame vectors, and the best window counts, as
the segment grain does. The stored vectors are the raw features' directions; the head normalises its frame and
motion inputs (LayerNorm), so only the spread of raw norms within a window separates this from what indexing fed
it. The arithmetic (:func:`windows_similarity`) is the numpy twin of training's ``fine_grained_similarity``
(tests hold them equal), since search does not depend on the training package.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from engine.indexing.head_pooling import window_slots
from engine.indexing.pooling import window_frames
from engine.models.base import WordScoring

TAU_FRAMES = 0.1  # τ1: per word, the softmax over frames
TAU_WORDS = 0.1  # τ2: the softmax over words


@dataclass(frozen=True)
class WordRows:
    """Some rows of a query matrix as words: unit token vectors (R, L, D), their mask (R, L), and which rows
    (indices into the query matrix) they stand for."""

    tokens: np.ndarray
    mask: np.ndarray
    rows: np.ndarray

    @classmethod
    def of(cls, words: Sequence[np.ndarray], rows: Sequence[int], dim: int) -> WordRows:
        """Pad per-text token vectors ((L_i, D) each, unit rows) into one block."""
        length = max([len(w) for w in words] + [1])
        tokens = np.zeros((len(words), length, dim), dtype=np.float32)
        mask = np.zeros((len(words), length), dtype=bool)
        for i, w in enumerate(words):
            tokens[i, : len(w)] = w
            mask[i, : len(w)] = True
        return cls(tokens, mask, np.asarray(rows, dtype=np.int64))


def _softmax_weighted(values: np.ndarray, mask: np.ndarray, tau: float) -> np.ndarray:
    """Σ softmax(values/τ)·values along the last axis over ``mask``; 0 where nothing is valid."""
    logits = np.where(mask, values / tau, -np.inf)
    top = logits.max(axis=-1, keepdims=True)
    top = np.where(np.isfinite(top), top, 0.0)
    weights = np.where(mask, np.exp(logits - top), 0.0)
    total = weights.sum(axis=-1, keepdims=True)
    weights = np.divide(weights, total, out=np.zeros_like(weights), where=total > 0)
    return (weights * np.where(mask, values, 0.0)).sum(axis=-1)


@dataclass(frozen=True)
class HeadWindows:
    """One video's windows read through the head: per-frame outputs (W, n, D), unit rows, and their mask (W, n).
    They depend on the video alone, not on the query, so a searcher keeps them (:class:`WindowCache`)."""

    outputs: np.ndarray
    valid: np.ndarray

    @property
    def nbytes(self) -> int:
        return int(self.outputs.nbytes + self.valid.nbytes)


def _slots(head: WordScoring, times: np.ndarray, spans: Sequence[tuple[float, float]], duration: float) -> np.ndarray:
    """(W, n) frame indices of each window the index pooled (each segment span, then the whole video): the frames
    indexing put in it (``window_frames``), fitted to the head's clip length as indexing fits them
    (``window_slots``); -1 marks padding. A stored segment always holds a frame (``segment_windows``)."""
    n, mode = head.n_frames, "pad" if head.windows == "pad" else "resample"
    t = np.asarray(times, dtype=np.float64)
    duration = max(float(duration), float(t[-1]))
    slots = [window_slots(t, window_frames(t, start, end, duration), start, end, n, mode) for start, end in spans]
    slots.append(window_slots(t, np.arange(len(t)), 0.0, duration, n, mode))
    return np.stack(slots)


@dataclass(frozen=True)
class VideoFrames:
    """What the word score needs of one indexed video: its stored unit frame vectors (F, D) sorted by ``times``,
    its segments' spans and its duration."""

    frames: np.ndarray
    times: np.ndarray
    spans: Sequence[tuple[float, float]]
    duration: float


def head_windows_of(head: WordScoring, videos: Sequence[VideoFrames]) -> list[HeadWindows | None]:
    """:class:`HeadWindows` of several videos from one run of the head over all their windows (one call per batch,
    not per video: the first search of a session reads every candidate); None for a video with no frames."""
    blocks = [_slots(head, v.times, v.spans, v.duration) if len(v.frames) else None for v in videos]
    present = [(v, b) for v, b in zip(videos, blocks, strict=True) if b is not None]
    if not present:
        return [None] * len(videos)
    inputs = np.concatenate([v.frames[np.where(b >= 0, b, 0)] for v, b in present])
    valid = np.concatenate([b >= 0 for _, b in present])
    outputs = np.asarray(head.head_outputs(inputs, valid), dtype=np.float32)
    out: list[HeadWindows | None] = []
    at = 0
    for b in blocks:
        if b is None:
            out.append(None)
            continue
        out.append(HeadWindows(outputs[at : at + len(b)], valid[at : at + len(b)]))
        at += len(b)
    return out


def head_windows(
    head: WordScoring,
    frames: np.ndarray,
    times: np.ndarray,
    spans: Sequence[tuple[float, float]],
    duration: float,
) -> HeadWindows | None:
    """One video's windows through the head (:func:`head_windows_of`); None for a video with no frames."""
    return head_windows_of(head, [VideoFrames(frames, times, spans, duration)])[0]


def windows_similarity(words: WordRows, windows: HeadWindows | None) -> np.ndarray:
    """The best window's ``s_fine`` per row (R,): the score of the window each text matches best, as the
    segment grain takes its best segment; zeros for a video with no frames."""
    if windows is None:
        return np.zeros(len(words.rows))
    cos = np.einsum("rld,wnd->rwln", words.tokens.astype(np.float32), windows.outputs)
    valid = np.broadcast_to(windows.valid[None, :, None, :], cos.shape)
    per_word = _softmax_weighted(cos.astype(np.float64), valid, TAU_FRAMES)  # (R, W, L)
    per_window = _softmax_weighted(per_word, np.broadcast_to(words.mask[:, None, :], per_word.shape), TAU_WORDS)
    return per_window.max(axis=1)


def video_word_similarity(
    head: WordScoring,
    words: WordRows,
    frames: np.ndarray,
    times: np.ndarray,
    spans: Sequence[tuple[float, float]],
    duration: float,
) -> np.ndarray:
    """:func:`windows_similarity` over :func:`head_windows` of one video: the best window's ``s_fine`` per row."""
    return windows_similarity(words, head_windows(head, frames, times, spans, duration))


class WindowCache:
    """Head windows by key (the video's embedding row, which a re-index replaces), least recently used dropped
    past ``max_bytes``: a batch of queries, or a GUI session, reads each candidate through the head once."""

    def __init__(self, max_bytes: int = 256 * 2**20) -> None:
        self.max_bytes = max_bytes
        self._items: OrderedDict[int, HeadWindows | None] = OrderedDict()
        self._bytes = 0

    def get(self, key: int, make: Callable[[], HeadWindows | None]) -> HeadWindows | None:
        if key in self._items:
            self._items.move_to_end(key)
            return self._items[key]
        value = make()
        self.put(key, value)
        return value

    def put(self, key: int, value: HeadWindows | None) -> None:
        if key in self._items:
            old = self._items.pop(key)
            self._bytes -= old.nbytes if old is not None else 0
        self._items[key] = value
        self._bytes += value.nbytes if value is not None else 0
        while self._bytes > self.max_bytes and len(self._items) > 1:
            _, dropped = self._items.popitem(last=False)
            self._bytes -= dropped.nbytes if dropped is not None else 0

    def missing(self, keys: Sequence[int]) -> list[int]:
        """The keys not held, in order, each once."""
        return [k for k in dict.fromkeys(keys) if k not in self._items]

    def __len__(self) -> int:
        return len(self._items)


__all__ = [
    "TAU_FRAMES",
    "TAU_WORDS",
    "HeadWindows",
    "VideoFrames",
    "WindowCache",
    "WordRows",
    "head_windows",
    "head_windows_of",
    "video_word_similarity",
    "windows_similarity",
]
