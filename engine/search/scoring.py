"""Similarity at three grains and their fusion (losses.md §1.4 and §2), as pure numpy functions.

* coarse: the query against the whole-video vector, ``s_c = <q, v>``;
* segment: the best 4-second window, ``s_s = max_k <q, g_k>``;
* fine: frame attention, ``s_f = Σ_j softmax_j(<q, f_j>/τ_f) <q, f_j>`` with ``τ_f = 0.1`` (§2): a soft maximum
  over frames, so one strongly matching moment counts without letting a single noisy frame decide.

The fused score is their weighted mean. All inputs are L2-normalised, so dot products are cosines.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from engine.models.sparse import sparse_codes, sparse_embed, sparse_embed_top

TAU_FINE = 0.1

__all__ = [
    "TAU_FINE",
    "FusionWeights",
    "fine_similarity",
    "fuse",
    "smooth_curve",
    "sparse_codes",
    "sparse_embed",
    "sparse_embed_top",
]


@dataclass(frozen=True)
class FusionWeights:
    coarse: float = 1.0
    segment: float = 1.0
    fine: float = 1.0

    def normalised(self) -> tuple[float, float, float]:
        total = self.coarse + self.segment + self.fine
        if total <= 0:
            raise ValueError("fusion weights must not all be zero")
        return self.coarse / total, self.segment / total, self.fine / total


def fine_similarity(frame_sims: np.ndarray, tau: float = TAU_FINE) -> np.ndarray:
    """Frame-attention similarity along the last axis (frames); any leading axes are kept (e.g. queries)."""
    sims = np.asarray(frame_sims, dtype=np.float64)
    if sims.shape[-1] == 0:
        return np.full(sims.shape[:-1], -1.0)
    logits = sims / tau
    logits -= logits.max(axis=-1, keepdims=True)
    weights = np.exp(logits)
    weights /= weights.sum(axis=-1, keepdims=True)
    return (weights * sims).sum(axis=-1)


def fuse(
    coarse: np.ndarray | float,
    segment: np.ndarray | float,
    fine: np.ndarray | float,
    weights: FusionWeights | None = None,
) -> np.ndarray:
    wc, ws, wf = (weights or FusionWeights()).normalised()
    return wc * np.asarray(coarse) + ws * np.asarray(segment) + wf * np.asarray(fine)


def smooth_curve(times: np.ndarray, values: np.ndarray, sigma_s: float = 1.0) -> np.ndarray:
    """Gaussian smoothing over time (not over sample index: cut frames make sampling uneven).

    ``values`` may be (F,) or (Q, F). Only neighbours within 3σ contribute, gathered into a fixed-width
    neighbour table, so the cost is O(Q·F·w) in a few vectorised operations even for hour-long videos."""
    t = np.asarray(times, dtype=np.float64)
    v = np.asarray(values, dtype=np.float64)
    n = len(t)
    if n < 2 or sigma_s <= 0:
        return v.copy()
    lo = np.searchsorted(t, t - 3 * sigma_s, side="left")
    hi = np.searchsorted(t, t + 3 * sigma_s, side="right")
    width = int((hi - lo).max())
    idx = lo[:, None] + np.arange(width)[None, :]  # (F, W) neighbour indices, padded past ``hi``
    valid = idx < hi[:, None]
    idx = np.minimum(idx, n - 1)
    w = np.where(valid, np.exp(-0.5 * ((t[idx] - t[:, None]) / sigma_s) ** 2), 0.0)
    w /= w.sum(axis=1, keepdims=True)
    return (v[..., idx] * w).sum(axis=-1)
