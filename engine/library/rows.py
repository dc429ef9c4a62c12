"""The catalog's row types and errors: what its queries return and what the indexer hands it to commit.

Kept apart from the SQL so modules that only pass rows around (the scanner, the producer, the Ray workers,
evaluation) import plain types, and so each table's queries can live in their own module.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal, TypedDict

Grain = Literal["video", "segment", "frame"]
GRAINS: tuple[Grain, ...] = ("video", "segment", "frame")


class CatalogError(RuntimeError):
    """A catalog operation was refused or the database is unusable; the message says why."""


class FolderRow(TypedDict):
    id: int
    path: str
    added_at: float


@dataclass(frozen=True)
class FolderCounts:
    """One folder's videos for one model: ``indexed + pending + failed == videos``; ``seconds`` of
    video (of the videos read so far: ``unread`` are not); ``no_video`` sound files, apart."""

    path: str
    videos: int
    indexed: int
    pending: int
    failed: int
    seconds: float
    no_video: int = 0  # sound files (no video stream): counted apart, not among the videos
    unread: int = 0  # videos not read yet (before their first index; failed ones apart): not in ``seconds``


class VideoRow(TypedDict):
    id: int
    folder_id: int
    path: str
    size: int
    mtime_ns: int
    fingerprint: str
    duration: float | None
    fps: float | None
    width: int | None
    height: int | None
    codec: str | None
    status: str
    error: str | None


class JobRow(TypedDict):
    id: int
    kind: str
    model_id: str | None
    status: str
    pid: int | None
    started_at: float
    finished_at: float | None
    total: int
    done: int
    failed: int
    message: str | None


@dataclass
class RemovedKeys:
    """Vector keys whose rows were deleted, per model id and grain, to mark deleted in open indexes."""

    by_model: dict[str, dict[Grain, list[int]]] = field(default_factory=dict)

    def add(self, model_id: str, grain: Grain, keys: Sequence[int]) -> None:
        self.by_model.setdefault(model_id, {g: [] for g in GRAINS})[grain].extend(keys)

    def merge(self, other: RemovedKeys) -> None:
        for model_id, grains in other.by_model.items():
            for grain, keys in grains.items():
                self.add(model_id, grain, keys)

    def count(self) -> int:
        return sum(len(k) for grains in self.by_model.values() for k in grains.values())

    def count_for(self, model_id: str) -> int:
        """Keys of one model's vectors."""
        return sum(len(keys) for keys in self.by_model.get(model_id, {}).values())


@dataclass(frozen=True)
class NewEmbedding:
    """What the indexer commits for one video: its sampled frames and pooled segments."""

    video_id: int
    fingerprint: str
    sample_every_s: float
    segment_window_s: float
    segment_stride_s: float
    frame_times: Sequence[float]
    frame_indices: Sequence[int]
    frame_is_cut: Sequence[bool]
    segments: Sequence[tuple[float, float]]


@dataclass(frozen=True)
class EmbeddingKeys:
    """Keys of the rows just inserted: one video key, one per segment, one per frame (in input order)."""

    video: int
    segments: list[int]
    frames: list[int]


def json_ids(ids: Sequence[int]) -> str:
    return "[" + ",".join(str(int(i)) for i in ids) + "]"


def video_row(row: sqlite3.Row) -> VideoRow:
    return VideoRow(**{k: row[k] for k in VideoRow.__annotations__})
