"""Sparse concept codes stored beside the vectors, one row per key (losses.md §2, computed at index time).

A code is ``k`` (concept id, weight) pairs (``engine.models.sparse.top_codes``). A row holds the ``k`` ids, then
the ``k`` weights scaled to 0..65535, as uint16 in a ``VectorStore`` (so it grows, flushes, maps read-only and
is crash-safe exactly like the vectors, and is keyed by the same catalog ids). The weights are probabilities,
so the quantisation step is 1.5e-5. A row never written reads as all zeros: weights that sum to 0 mean "no
stored code" (a video indexed before codes were stored), and search then codes that vector itself.
"""

from __future__ import annotations

import numpy as np

from engine.index.vectors import Keys, VectorStore

_SCALE = 65535.0
MAX_CONCEPTS = 65536  # ids must fit uint16


class CodeStore:
    """The codes of one grain of one model over its uint16 ``VectorStore`` ``<grain>.codes.u16`` (2k wide)."""

    def __init__(self, vectors: VectorStore, k: int) -> None:
        if vectors.dtype != "uint16" or vectors.dim != 2 * k:
            raise ValueError(f"{vectors.path}: codes of {k} concepts need a uint16 store {2 * k} wide")
        self.vectors, self.k = vectors, k

    def write(self, keys: Keys, ids: np.ndarray, weights: np.ndarray) -> None:
        """Store codes (ids (N, k) below 65536, weights (N, k) in [0, 1]); ``flush`` makes them durable."""
        ids, weights = np.asarray(ids), np.asarray(weights, dtype=np.float64)
        if ids.shape != weights.shape or ids.ndim != 2 or ids.shape[1] != self.k:
            raise ValueError(f"codes must be two (N, {self.k}) arrays, got {ids.shape} and {weights.shape}")
        if ids.size and (ids.min() < 0 or ids.max() >= MAX_CONCEPTS):
            raise ValueError(f"concept ids must be in 0..{MAX_CONCEPTS - 1}")
        rows = np.concatenate([ids, np.rint(np.clip(weights, 0.0, 1.0) * _SCALE)], axis=1).astype(np.float32)
        self.vectors.write(keys, rows)

    def read(self, keys: Keys) -> tuple[np.ndarray, np.ndarray]:
        """(ids (N, k) int64, weights (N, k) float64) of ``keys``; unwritten rows have all-zero weights."""
        rows = self.vectors.read(keys)
        return rows[:, : self.k].astype(np.int64), rows[:, self.k :].astype(np.float64) / _SCALE

    def flush(self) -> None:
        self.vectors.flush()

    def close(self) -> None:
        self.vectors.close()


__all__ = ["MAX_CONCEPTS", "CodeStore"]
