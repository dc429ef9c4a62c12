"""Synthetic frame vectors for ``scenefind bench search``, and exact answers to measure recall against.

Two kinds, reported side by side: uniform random unit vectors (no structure, the hardest case for HNSW) and
clustered ones (gaussian clusters in runs of consecutive keys, as video frames come in near-duplicate shots),
the latter also with "far" queries that sit as far from their frames as a CLIP text query does. Vectors are
generated chunk by chunk from a seed, so a million of them never sit in memory at once and a cached index
built from them can be trusted to hold the same vectors next time.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from functools import cached_property

import numpy as np

from engine.index.vectors import brute_force_topk
from engine.jobs import CancelToken, check_cancel
from engine.models.base import l2_normalise
from engine.settings import EngineSettings

KINDS = ("random", "clustered")
K = 10
CLUSTERS = 1000
CLUSTER_SPREAD = 0.5  # noise norm / centre norm: members of a cluster have cosine ≈ 0.8 with each other
FAR_SPREAD = 2.7  # "far" queries have cosine ≈ 0.35 with their cluster's centre, ≈ 0.3 with its frames,
# as a CLIP text query has with the frames it matches (they sit in another cone: the modality gap)
RUN = 10  # consecutive keys drawn from one cluster (a shot sampled at 1 frame/s)
CHUNK = 20_000  # vectors generated, added and scanned per step
GENERATOR = 1  # bump when the vectors a seed yields change, so cached indexes are rebuilt
_QUERY_STREAM = 1 << 40  # random stream of the queries, apart from the chunks' streams 0, 1, 2, ...


@dataclass(frozen=True)
class Corpus:
    """Synthetic L2-normalised frame vectors, keyed 1..size, regenerated identically from ``seed``."""

    kind: str
    size: int
    dim: int
    seed: int

    def _rng(self, stream: int) -> np.random.Generator:
        return np.random.default_rng([self.seed, KINDS.index(self.kind), stream])

    @cached_property
    def centres(self) -> np.ndarray:
        """Cluster centres (unit vectors); the same for every size, so queries are too."""
        return l2_normalise(self._rng(_QUERY_STREAM + 1).standard_normal((CLUSTERS, self.dim), dtype=np.float32))

    def _draw(self, rng: np.random.Generator, count: int, run: int, spread: float = CLUSTER_SPREAD) -> np.ndarray:
        noise = rng.standard_normal((count, self.dim), dtype=np.float32)
        if self.kind == "clustered":
            labels = np.repeat(rng.integers(0, CLUSTERS, -(-count // run)), run)[:count]
            noise = self.centres[labels] + np.float32(spread / np.sqrt(self.dim)) * noise
        return l2_normalise(noise)

    def chunks(self) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """``(keys, vectors)`` in steps of ``CHUNK`` rows, always the same for the same corpus."""
        for i, start in enumerate(range(0, self.size, CHUNK)):
            count = min(CHUNK, self.size - start)
            yield np.arange(start + 1, start + count + 1, dtype=np.int64), self._draw(self._rng(i), count, RUN)

    def queries(self, count: int) -> dict[str, np.ndarray]:
        """Query sets by label: fresh draws from the data's distribution, plus far ones for clustered data."""
        sets = {self.kind: self._draw(self._rng(_QUERY_STREAM), count, 1)}
        if self.kind == "clustered":
            sets["clustered-far"] = self._draw(self._rng(_QUERY_STREAM + 2), count, 1, FAR_SPREAD)
        return sets

    def cache_key(self, settings: EngineSettings) -> str:
        return (
            f"{self.kind}-n{self.size}-d{self.dim}-M{settings.hnsw_m}-efc{settings.hnsw_ef_construction}"
            f"-s{self.seed}-g{GENERATOR}"
        )


def recall_at(found: np.ndarray, truth: np.ndarray, k: int = K) -> float:
    """Mean fraction of each query's exact top-``k`` keys present among its first ``k`` found keys."""
    hits = [len(np.intersect1d(f[:k], t[:k])) for f, t in zip(found, truth, strict=True)]
    return float(np.mean(hits)) / k


def exact_topk(corpus: Corpus, queries: np.ndarray, k: int = K, *, cancel: CancelToken | None = None) -> np.ndarray:
    """Exact top-``k`` keys per query over the float32 originals, merged chunk by chunk: ``(Q, k)`` int64."""
    best_keys = np.empty((len(queries), 0), np.int64)
    best_scores = np.empty((len(queries), 0), np.float32)
    for keys, vectors in corpus.chunks():
        check_cancel(cancel)
        rows, scores = brute_force_topk(vectors, queries, k)
        all_keys = np.concatenate([best_keys, keys[rows]], axis=1)
        all_scores = np.concatenate([best_scores, scores], axis=1)
        order = np.argsort(-all_scores, axis=1, kind="stable")[:, :k]
        best_keys = np.take_along_axis(all_keys, order, axis=1)
        best_scores = np.take_along_axis(all_scores, order, axis=1)
    return best_keys
