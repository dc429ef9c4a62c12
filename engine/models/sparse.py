"""Sparse concept codes (losses.md §2) in NumPy: computed at index time, stored, and used by search.

``π(x)`` keeps the top ``k_s`` concept logits ``<x̂, Ẑ_k>/τ_s`` and soft-maxes them; everything else is 0. A code
is therefore ``k_s`` (concept id, weight) pairs, which is how the index stores it (``engine.index.codes``) and how
search reads it back: ``sparse_embed_top`` builds ``x^s = π(x)ᵀZ`` from the pairs without a dense
``(N, n_concepts)`` array, so an hour of frames costs ``N × D`` memory, not ``N × n_concepts``.
"""

from __future__ import annotations

import numpy as np

from engine.models.base import ConceptBank, l2_normalise


def top_codes(x: np.ndarray, bank: ConceptBank) -> tuple[np.ndarray, np.ndarray]:
    """π(x) as (concept ids (N, k) int64, weights (N, k) float64), ids in descending weight order."""
    logits = np.atleast_2d(np.asarray(x, dtype=np.float64)) @ bank.vectors.T.astype(np.float64) / bank.tau
    k = bank.k
    top = np.argpartition(-logits, k - 1, axis=1)[:, :k]
    picked = np.take_along_axis(logits, top, axis=1)
    order = np.argsort(-picked, axis=1, kind="stable")
    top, picked = np.take_along_axis(top, order, axis=1), np.take_along_axis(picked, order, axis=1)
    weights = np.exp(picked - picked[:, :1])
    weights /= weights.sum(axis=1, keepdims=True)
    return top.astype(np.int64), weights


def dense_codes(ids: np.ndarray, weights: np.ndarray, n_concepts: int) -> np.ndarray:
    """(ids, weights) pairs as dense codes (N, n_concepts)."""
    codes = np.zeros((len(ids), n_concepts), dtype=np.float64)
    np.put_along_axis(codes, np.asarray(ids, dtype=np.int64), np.asarray(weights, dtype=np.float64), axis=1)
    return codes


def sparse_codes(x: np.ndarray, bank: ConceptBank) -> np.ndarray:
    """π(x) of losses.md §2 as dense codes (N, n_c): softmax over the top-k logits, zero elsewhere."""
    return dense_codes(*top_codes(x, bank), bank.n_concepts)


def _basis(bank: ConceptBank) -> np.ndarray:
    return (bank.basis if bank.basis is not None else bank.vectors).astype(np.float32)


def sparse_embed(codes: np.ndarray, bank: ConceptBank) -> np.ndarray:
    """x^s = π(x)ᵀ Z from dense codes, L2-normalised so it enters cosine similarities like the dense vectors."""
    return l2_normalise((np.asarray(codes, dtype=np.float64) @ _basis(bank).astype(np.float64)).astype(np.float32))


def sparse_embed_top(ids: np.ndarray, weights: np.ndarray, bank: ConceptBank) -> np.ndarray:
    """x^s from (ids, weights) pairs, the stored form; the same vectors as :func:`sparse_embed`."""
    basis = _basis(bank)
    out = np.zeros((len(ids), basis.shape[1]), dtype=np.float32)
    for j in range(np.shape(ids)[1] if np.ndim(ids) == 2 else 0):
        out += np.asarray(weights[:, j : j + 1], dtype=np.float32) * basis[np.asarray(ids[:, j], dtype=np.int64)]
    return l2_normalise(out)


__all__ = ["dense_codes", "sparse_codes", "sparse_embed", "sparse_embed_top", "top_codes"]
