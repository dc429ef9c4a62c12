"""The search results as a Qt list model, with thumbnails loaded lazily off the GUI thread.

A thumbnail is only asked for when the view paints its cell (``data(DecorationRole)``), decoded by the
engine on a small pool of its own (so it never queues behind indexing), cached on disk by the engine and in
memory here, and announced with ``dataChanged`` for the rows that show it.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from PySide6.QtCore import (
    QAbstractListModel,
    QModelIndex,
    QObject,
    QPersistentModelIndex,
    QRunnable,
    Qt,
    QThreadPool,
    Signal,
)
from PySide6.QtGui import QImage, QPixmap

from desktop.engine_api import EngineApi
from desktop.highlight import query_terms
from engine.search.results import MomentHit, SearchResults, VideoHit

HitRole = Qt.ItemDataRole.UserRole + 1
RangeRole = Qt.ItemDataRole.UserRole + 2
RelevanceRole = Qt.ItemDataRole.UserRole + 3
FolderRole = Qt.ItemDataRole.UserRole + 4
TermsRole = Qt.ItemDataRole.UserRole + 5  # the query's words to mark in a quote (desktop.highlight)

CHANNEL_WORDS = {"picture": "Picture", "speech": "Said", "text": "On screen"}  # the card's badge

Hit = VideoHit | MomentHit
ThumbKey = tuple[str, float]


def clock(seconds: float) -> str:
    """``1:02`` or ``1:02:03``."""
    s = max(0, int(seconds + 0.5))
    return f"{s // 3600}:{s // 60 % 60:02d}:{s % 60:02d}" if s >= 3600 else f"{s // 60}:{s % 60:02d}"


def hit_range(hit: Hit) -> tuple[float, float]:
    """The span a hit stands for: a moment's own, or a few seconds around a video's best frame."""
    if isinstance(hit, MomentHit):
        return hit.start, hit.end
    start = max(0.0, hit.best_time - 2.0)
    return start, min(hit.duration or start + 4.0, start + 4.0)


def why_text(hit: Hit) -> str:
    """Why the hit matched, in a line: the words said or shown at that time, else the concepts it shares."""
    if hit.channel in ("speech", "text") and hit.quote:
        where = "said" if hit.channel == "speech" else "on screen"
        at = f" at {clock(hit.quote_start)}" if hit.quote_start is not None else ""
        return f"{where}{at}: “{hit.quote}”"
    return f"shares: {', '.join(hit.why.concepts)}" if hit.why.concepts else ""


def range_text(hit: Hit) -> str:
    if isinstance(hit, MomentHit):
        return f"{clock(hit.start)} – {clock(hit.end)}"
    return f"best at {clock(hit.best_time)} of {clock(hit.duration)}"  # "0:05 · 0:16" read as a range


class _Relay(QObject):
    ready = Signal(object, object)  # key, QImage or None


class _ThumbTask(QRunnable):
    def __init__(self, engine: EngineApi, key: ThumbKey, relay: _Relay) -> None:
        super().__init__()
        self.engine, self.key, self.relay = engine, key, relay

    def run(self) -> None:
        try:
            path = self.engine.thumbnail(*self.key)
            image = QImage(str(path))  # QImage (unlike QPixmap) may be built off the GUI thread
            self.relay.ready.emit(self.key, None if image.isNull() else image)
        except Exception:  # a missing thumbnail shows a placeholder, never an error
            self.relay.ready.emit(self.key, None)


class ThumbnailLoader(QObject):
    """In-memory pixmaps in front of the engine's disk cache; ``loaded(key)`` when one arrives."""

    loaded = Signal(object)

    def __init__(self, engine: EngineApi, parent: QObject | None = None, threads: int = 2) -> None:
        super().__init__(parent)
        self.engine = engine
        self.pool = QThreadPool(self)
        self.pool.setMaxThreadCount(threads)
        self._relay = _Relay(self)
        self._relay.ready.connect(self._on_ready)
        self._pixmaps: dict[ThumbKey, QPixmap | None] = {}
        self._pending: set[ThumbKey] = set()

    def get(self, video: str, t: float) -> QPixmap | None:
        """The pixmap if loaded; otherwise ``None`` and a background load is queued (once)."""
        key = (video, round(t, 1))
        if key in self._pixmaps:
            return self._pixmaps[key]
        if key not in self._pending:
            self._pending.add(key)
            self.pool.start(_ThumbTask(self.engine, key, self._relay))
        return None

    def pending(self) -> int:
        return len(self._pending)

    def _on_ready(self, key: ThumbKey, image: QImage | None) -> None:
        self._pending.discard(key)
        self._pixmaps[key] = QPixmap.fromImage(image) if image is not None else None
        self.loaded.emit(key)


@dataclass
class _Row:
    hit: Hit
    key: ThumbKey


class ResultsModel(QAbstractListModel):
    """Hits of the current mode (videos or moments) of one ``SearchResults``."""

    def __init__(self, thumbnails: ThumbnailLoader, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.thumbnails = thumbnails
        thumbnails.loaded.connect(self._on_thumbnail)
        self.results: SearchResults | None = None
        self.mode = "videos"
        self._rows: list[_Row] = []
        self._terms: tuple[str, ...] = ()

    def set_results(self, results: SearchResults | None, mode: str | None = None) -> None:
        self.beginResetModel()
        self.results = results
        self.mode = mode or (results.query.mode if results else self.mode)
        hits: list[Hit] = []
        if results is not None:
            hits = list(results.moments if self.mode == "moments" else results.videos)
        self._rows = [_Row(h, (h.video, round(self._thumb_time(h), 1))) for h in hits]
        self._terms = query_terms(results.query.text or "") if results is not None else ()
        self.endResetModel()

    def set_mode(self, mode: str) -> None:
        self.set_results(self.results, mode)

    def hit(self, row: int) -> Hit | None:
        return self._rows[row].hit if 0 <= row < len(self._rows) else None

    def hits(self) -> list[Hit]:
        return [r.hit for r in self._rows]

    def rowCount(self, parent: QModelIndex | QPersistentModelIndex = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else len(self._rows)

    def data(self, index: QModelIndex | QPersistentModelIndex, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if not index.isValid() or not 0 <= index.row() < len(self._rows):
            return None
        row = self._rows[index.row()]
        hit = row.hit
        if role == Qt.ItemDataRole.DisplayRole:
            return Path(hit.video).name
        if role == Qt.ItemDataRole.DecorationRole:
            return self.thumbnails.get(*row.key)
        if role == Qt.ItemDataRole.ToolTipRole:
            why = why_text(hit)
            channel = CHANNEL_WORDS.get(hit.channel, hit.channel).lower()
            head = f"{hit.video}\n{range_text(hit)} · relevance {hit.relevance:.0f} · found by {channel}"
            return head + (f"\n{why}" if why else "")
        if role == TermsRole:
            return self._terms
        if role == HitRole:
            return hit
        if role == RangeRole:
            return range_text(hit)
        if role == RelevanceRole:
            return float(hit.relevance)
        if role == FolderRole:
            return Path(hit.video).parent.name
        return None

    @staticmethod
    def _thumb_time(hit: Hit) -> float:
        return hit.best_time

    def _on_thumbnail(self, key: ThumbKey) -> None:
        for n, row in enumerate(self._rows):
            if row.key == key:
                index = self.index(n)
                self.dataChanged.emit(index, index, [Qt.ItemDataRole.DecorationRole])
