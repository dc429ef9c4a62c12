"""What a user asks: a query (text, image, clip or moment), terms to exclude, filters, and what to return.

One ``Query`` type serves the CLI, the GUI and the evaluation harness, so every query type and filter is
available everywhere with the same meaning.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

Mode = Literal["videos", "moments"]
QueryChannel = Literal["speech", "text"]  # a text query restricted to what is said, or to what is on screen


@dataclass(frozen=True)
class SearchFilters:
    """Restrict which videos may be returned. ``None`` means no bound."""

    folders: tuple[str, ...] = ()  # absolute folder paths; a video matches if it lies under one of them
    modified_after: float | None = None  # file modification time, seconds since the epoch
    modified_before: float | None = None
    min_duration: float | None = None  # seconds
    max_duration: float | None = None
    min_height: int | None = None  # pixels (e.g. 720 keeps HD and above)
    max_height: int | None = None

    def is_empty(self) -> bool:
        return self == SearchFilters()


@dataclass(frozen=True)
class MomentRef:
    """An indexed moment used as a query ("more like this")."""

    video_id: int
    start: float
    end: float


@dataclass(frozen=True)
class Query:
    """Exactly one of ``text``, ``image``, ``clip`` or ``moment`` says what to look for."""

    text: str | None = None
    image: Path | None = None  # an image file as the query
    clip: Path | None = None  # a video file as the query (its frames are pooled)
    clip_span: tuple[float, float] | None = None  # optional (start, end) seconds within ``clip``
    moment: MomentRef | None = None  # an indexed moment as the query
    exclude: tuple[str, ...] = ()  # "not on a leash": results close to these are pushed down or dropped
    filters: SearchFilters = field(default_factory=SearchFilters)
    k: int = 20
    mode: Mode = "videos"
    min_relevance: float | None = None  # 0-100 cutoff; None: the model's default cutoff; 0: show everything
    channel: QueryChannel | None = None  # None: picture, speech and screen text fused; else that channel only

    def kind(self) -> str:
        """Which query type this is; raises ``ValueError`` unless exactly one is given."""
        given = [name for name in ("text", "image", "clip", "moment") if getattr(self, name) is not None]
        if len(given) != 1:
            raise ValueError(f"a query needs exactly one of text, image, clip or moment (got {given or 'none'})")
        if self.channel is not None and given[0] != "text":
            raise ValueError(f"only words can be looked for in what is said or shown, not a {given[0]}")
        return given[0]
