"""Candidate videos for a query: the union of the nearest videos and segments in their HNSW graphs.

Frames have no graph (``engine.index.stores``): a moment is found through the segments around it (4 s windows
every 2 s, so each frame lies in two) and through its video, and the searcher then scores every frame of each
candidate exactly from the float16 file. The segment budget is the one frames had (``max(20 k, 400)``), which
``scenefind bench search --library`` measures to find the exact top-10 videos and frames as often as the frame
graph did. With a filter that leaves few candidates, the searches widen (×4, ×16) until ``k`` pass it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Protocol

import numpy as np

# grain -> (candidates per result asked for, at least): how many neighbours each graph is asked for
PER_GRAIN: dict[str, tuple[int, int]] = {"video": (4, 64), "segment": (20, 400)}
WIDEN = (1, 4, 16)


class Graph(Protocol):
    def search(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]: ...


def candidate_videos(
    q: np.ndarray,
    graphs: Mapping[str, Graph],
    videos_of: Callable[[str, list[int]], Iterable[int]],
    k: int,
    allowed: set[int] | None = None,
    per_grain: Mapping[str, tuple[int, int]] = PER_GRAIN,
) -> list[int]:
    """Sorted ids of the videos whose vectors or segments are among ``q``'s nearest in ``graphs``.

    ``videos_of(grain, keys)`` maps a grain's keys to video ids (the catalog; an array in benchmarks);
    ``allowed``, when given, keeps only those videos, widening the searches until ``k`` of them are found."""
    found: set[int] = set()
    for factor in WIDEN:
        for grain, (per_k, least) in per_grain.items():
            keys, _ = graphs[grain].search(q, max(per_k * k, least) * factor)
            found.update(videos_of(grain, keys[0][keys[0] > 0].tolist()))
        if allowed is None or len(found & allowed) >= k:
            break
    return sorted(found if allowed is None else found & allowed)


__all__ = ["PER_GRAIN", "Graph", "candidate_videos"]
