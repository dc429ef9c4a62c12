"""How a model's index was built: pooling, per-frame context vectors, sparse codes (``layout.json``).

Why it is recorded: vectors pooled as the mean of their frames and vectors pooled through a temporal head live in
the same embedding space but answer "moves left" and "moves right" differently, so an index built one way must
never be extended the other way. Each pooling choice has its own model id (``engine.models.base.pooled_model_id``),
so this is a second line of defence, and it tells search which side stores exist:

* ``context``: one vector per frame key, the head over the window centred on that frame (the moment curve);
* ``code_k``: concepts per stored sparse code (0: none stored; ``engine.index.codes``).

An index folder from before this file existed holds mean-pooled vectors without codes.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from engine.atomic import atomic_write_bytes
from engine.index.errors import IndexCorrupt, IndexModelMismatch

LAYOUT_NAME = "layout.json"
SCHEMA_VERSION = 1


@dataclass(frozen=True)
class IndexLayout:
    pooling: str = "mean"  # "mean" or "head"
    windows: str = ""  # the head's window handling (engine.settings.HEAD_WINDOWS); "" for mean pooling
    n_frames: int = 0  # frames per head window; 0 for mean pooling
    context: bool = False  # per-frame context vectors stored (head models)
    code_k: int = 0  # concepts per stored sparse code; 0: no codes stored
    n_concepts: int = 0

    @property
    def label(self) -> str:
        """Short description for messages and meta files, e.g. ``head (resample, 8 frames)`` or ``mean``."""
        return f"head ({self.windows}, {self.n_frames} frames)" if self.pooling == "head" else "mean"

    def same_pooling(self, other: IndexLayout) -> bool:
        return (self.pooling, self.windows, self.n_frames, self.context) == (
            other.pooling,
            other.windows,
            other.n_frames,
            other.context,
        )


def layout_for(encoder: object) -> IndexLayout:
    """The layout ``encoder``'s vectors get: through its head when it has one, codes when it has concepts."""
    from engine.models.base import concepts_of, temporal_of

    temporal, bank = temporal_of(encoder), concepts_of(encoder)
    codes = {"code_k": bank.k, "n_concepts": bank.n_concepts} if bank is not None else {}
    if temporal is None:
        return IndexLayout(**codes)
    return IndexLayout("head", temporal.windows, temporal.n_frames, context=True, **codes)


def read_layout(folder: Path) -> IndexLayout | None:
    """The recorded layout, or None when the folder has none (a new index, or one from before layouts)."""
    path = folder / LAYOUT_NAME
    if not path.exists():
        return None
    try:
        raw: Any = json.loads(path.read_text(encoding="utf-8"))
        if not isinstance(raw, dict) or raw.get("schema_version", 0) > SCHEMA_VERSION:
            raise ValueError("not a layout this release reads")
        return IndexLayout(**{k: v for k, v in raw.items() if k != "schema_version"})
    except (OSError, ValueError, TypeError) as exc:
        raise IndexCorrupt(f"{path}: unreadable ({exc}); re-index") from exc


def write_layout(folder: Path, layout: IndexLayout) -> None:
    data = {"schema_version": SCHEMA_VERSION, **asdict(layout)}
    atomic_write_bytes(folder / LAYOUT_NAME, (json.dumps(data, indent=2) + "\n").encode("utf-8"))


def settle_layout(folder: Path, model_id: str, have: IndexLayout | None, want: IndexLayout) -> IndexLayout:
    """The layout a writer may extend ``have`` with ``want``: the same pooling, and codes of the same shape (an
    index without codes gains them; its older rows are coded by search). Otherwise ``IndexModelMismatch``."""
    if have is None:
        return want
    if not have.same_pooling(want):
        raise IndexModelMismatch(
            f"{folder}: the index of {model_id} was pooled with {have.label}, but this model pools with "
            f"{want.label}; it cannot be extended (pick the pooling it was built with, or re-index)"
        )
    if have.code_k and (have.code_k, have.n_concepts) != (want.code_k, want.n_concepts):
        raise IndexModelMismatch(
            f"{folder}: the index of {model_id} stores codes of {have.code_k} of {have.n_concepts} concepts, "
            f"this model makes {want.code_k} of {want.n_concepts}; re-index"
        )
    return want if not have.code_k else have


__all__ = ["LAYOUT_NAME", "IndexLayout", "layout_for", "read_layout", "settle_layout", "write_layout"]
