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
it. The arithmetic is the numpy twin of ``engine.train.losses.fine_grained_similarity`` (tests hold them equal),
since search does not depend on the training package.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from engine.indexing.head_pooling import window_slots
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


def word_frame_similarity(
    tokens: np.ndarray, mask: np.ndarray, frames: np.ndarray, *, tau1: float = TAU_FRAMES, tau2: float = TAU_WORDS
) -> np.ndarray:
    """``s_fine`` of texts (R, L, D) with mask (R, L) against one clip's frames (F, D), all unit rows -> (R,)."""
    return _two_stage(tokens.astype(np.float64) @ frames.astype(np.float64).T, mask, tau1, tau2)


def _two_stage(cos: np.ndarray, mask: np.ndarray, tau1: float, tau2: float) -> np.ndarray:
    """Word-frame cosines (R, L, F) -> (R,): attention over frames per word, then over the valid words."""
    per_word = _softmax_weighted(cos, np.ones(cos.shape, dtype=bool), tau1)  # (R, L)
    return _softmax_weighted(per_word, mask, tau2)


def video_word_similarity(
    head: WordScoring,
    words: WordRows,
    frames: np.ndarray,
    times: np.ndarray,
    spans: Sequence[tuple[float, float]],
    duration: float,
) -> np.ndarray:
    """The best window's ``s_fine`` per row (R,) on one video, over the windows the index pooled (each segment
    span and the whole video), each fitted to the head's clip length as indexing fits it (``head_windows``) and
    read through the head from the stored frame vectors (``frames`` (F, D), unit rows, sorted by ``times``)."""
    if len(frames) == 0:
        return np.zeros(len(words.rows))
    n, mode = head.n_frames, "pad" if head.windows == "pad" else "resample"
    t = np.asarray(times, dtype=np.float64)
    slots = []
    for start, end in [*spans, (0.0, max(float(duration), float(t[-1])))]:
        inside = np.flatnonzero((t >= start) & (t <= end))
        if not len(inside):  # a span between two samples: the nearest frame stands for it
            inside = np.array([int(np.abs(t - (start + end) / 2).argmin())])
        slots.append(window_slots(t, inside, start, end, n, mode))
    block = np.stack(slots)
    valid = block >= 0
    outputs = head.head_outputs(frames[np.where(valid, block, 0)], valid)  # (W, n, D) unit rows
    cos = np.einsum("rld,wnd->rwln", words.tokens.astype(np.float64), outputs.astype(np.float64))
    per_word = _softmax_weighted(cos, np.broadcast_to(valid[None, :, None, :], cos.shape), TAU_FRAMES)  # (R, W, L)
    per_window = _softmax_weighted(per_word, np.broadcast_to(words.mask[:, None, :], per_word.shape), TAU_WORDS)
    return per_window.max(axis=1)


__all__ = [
    "TAU_FRAMES",
    "TAU_WORDS",
    "WordRows",
    "video_word_similarity",
    "word_frame_similarity",
]
