"""The library's folders as rows with a face: a strip of poster frames, the folder's name and place, its
counts and state, and under it the files that could not be indexed, each with its reason.

Why posters: a list of paths says little about what is in a library; three frames of a folder's videos say
at a glance which folder is the holiday and which the screen recordings. Frames come from the engine's
thumbnail cache through the same lazy loader the search grid uses (decoded off the GUI thread, painted when
they arrive). Why failed files under their folder: "clip.mp4 could not be read" means little without the
folder it sits in, and a folder's "2 failed" should be one click from the two files and their reasons.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from PySide6.QtCore import QModelIndex, QRect, QSize, Qt
from PySide6.QtGui import QColor, QFont, QPainter, QPainterPath
from PySide6.QtWidgets import (
    QAbstractItemView,
    QHeaderView,
    QStyle,
    QStyledItemDelegate,
    QStyleOptionViewItem,
    QTreeWidget,
    QTreeWidgetItem,
    QWidget,
)

from desktop import theme
from desktop.engine_api import FolderStatus
from desktop.models.results_model import ThumbnailLoader

POSTERS = 3
POSTER = QSize(88, 50)
ROW_H = 66
NAME_MIN_W = 140  # the folder's name and path keep this much of a narrow first column; posters give way first
COLUMNS = ["Folder", "Videos", "Indexed", "Waiting", "Failed", "Length", "Status"]
PathRole = Qt.ItemDataRole.UserRole + 11
PostersRole = Qt.ItemDataRole.UserRole + 12  # [(video, t)] for a folder row
StateRole = Qt.ItemDataRole.UserRole + 13  # "ok", "busy", "waiting", "failed" (the status colour)
WhyRole = Qt.ItemDataRole.UserRole + 14  # a failed file's reason


def duration_text(seconds: float) -> str:
    s = int(seconds)
    if s < 60:
        return f"{s} s"
    return f"{s // 3600} h {s // 60 % 60:02d} min" if s >= 3600 else f"{s // 60} min {s % 60:02d} s"


def folder_of(path: str, folders: Sequence[str]) -> str | None:
    """The library folder ``path`` lies in (the deepest, should folders nest)."""
    inside = [f for f in folders if Path(path).is_relative_to(f)]
    return max(inside, key=len) if inside else None


def posters_that_fit(width: int) -> int:
    """How many posters a first cell ``width`` pixels wide shows beside a readable name: fewer, down to none,
    as the window narrows, so a poster never covers the name or spills into the next column."""
    room = width - 24 - NAME_MIN_W  # 8 px before the posters, 8 between them and the name, 8 after it
    return max(0, min(POSTERS, room // (POSTER.width() + 6)))


class FolderDelegate(QStyledItemDelegate):
    """Paints a folder row's first cell: posters, then the name above the path. Other cells: the default."""

    def __init__(self, thumbnails: ThumbnailLoader, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.thumbnails = thumbnails

    def sizeHint(self, option: QStyleOptionViewItem, index: QModelIndex) -> QSize:
        size = super().sizeHint(option, index)
        if index.parent().isValid():
            return size
        if index.column() != 0:
            return QSize(size.width(), ROW_H)
        return QSize(max(size.width(), POSTERS * (POSTER.width() + 6) + 220), ROW_H)

    def paint(self, painter: QPainter, option: QStyleOptionViewItem, index: QModelIndex) -> None:
        if index.column() != 0 or index.parent().isValid():
            super().paint(painter, option, index)
            return
        c = theme.colors()
        painter.save()
        style = option.widget.style() if option.widget is not None else None
        if style is not None:  # the selection and hover background, as the other cells have it
            background = QStyleOptionViewItem(option)
            self.initStyleOption(background, index)
            background.text = ""
            style.drawPrimitive(QStyle.PrimitiveElement.PE_PanelItemViewItem, background, painter, option.widget)
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        rect = option.rect
        painter.setClipRect(rect)  # nothing of this cell reaches the Videos column, however narrow it gets
        x = rect.left() + 8
        top = rect.top() + (rect.height() - POSTER.height()) // 2
        posters = index.data(PostersRole) or []
        for n in range(posters_that_fit(rect.width())):
            tile = QRect(x, top, POSTER.width(), POSTER.height())
            path = QPainterPath()
            path.addRoundedRect(tile, 5, 5)
            empty = QColor(c.card_border)
            if n >= max(1, len(posters)):
                empty.setAlpha(90)  # a slot without a video: a faint outline of where one would be
            painter.fillPath(path, empty)
            pixmap = self.thumbnails.get(*posters[n]) if n < len(posters) else None
            if pixmap is not None and not pixmap.isNull():
                painter.save()
                painter.setClipPath(path, Qt.ClipOperation.IntersectClip)
                scaled = pixmap.scaled(
                    tile.size(),
                    Qt.AspectRatioMode.KeepAspectRatioByExpanding,
                    Qt.TransformationMode.SmoothTransformation,
                )
                sx, sy = (scaled.width() - tile.width()) // 2, (scaled.height() - tile.height()) // 2
                painter.drawPixmap(tile.topLeft(), scaled, QRect(sx, sy, tile.width(), tile.height()))
                painter.restore()
            x += POSTER.width() + 6
        text_left = x + 8 if x > rect.left() + 8 else x
        path_text = str(index.data(PathRole) or "")
        name_font = QFont(option.font)
        name_font.setBold(True)
        painter.setFont(name_font)
        line = painter.fontMetrics().height()
        width = rect.right() - text_left - 8
        name_rect = QRect(text_left, rect.top() + rect.height() // 2 - line - 1, width, line)
        name = Path(path_text).name or path_text
        painter.setPen(QColor(c.highlight_text if option.state & QStyle.StateFlag.State_Selected else c.text))
        painter.drawText(name_rect, Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter,
                         painter.fontMetrics().elidedText(name, Qt.TextElideMode.ElideRight, width))  # fmt: skip
        painter.setFont(option.font)
        sub = QRect(text_left, rect.top() + rect.height() // 2 + 1, width, painter.fontMetrics().height())
        if not option.state & QStyle.StateFlag.State_Selected:
            painter.setPen(QColor(c.muted))
        painter.drawText(sub, Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter,
                         painter.fontMetrics().elidedText(path_text, Qt.TextElideMode.ElideMiddle, width))  # fmt: skip
        painter.restore()


class FolderTable(QTreeWidget):
    """Folder rows (with posters) and, under each, its failed files; ``selected_folder()`` is the path."""

    def __init__(self, thumbnails: ThumbnailLoader, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.thumbnails = thumbnails
        self.setHeaderLabels(COLUMNS)
        self.setRootIsDecorated(True)
        self.setIndentation(18)
        self.setUniformRowHeights(False)
        self.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.setItemDelegate(FolderDelegate(thumbnails, self))
        head = self.header()
        head.setStretchLastSection(False)
        head.setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)
        head.setMinimumSectionSize(60)
        for col in range(1, len(COLUMNS)):
            head.setSectionResizeMode(col, QHeaderView.ResizeMode.ResizeToContents)
            self.headerItem().setTextAlignment(col, Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        self.headerItem().setTextAlignment(len(COLUMNS) - 1, Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter)
        self.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        thumbnails.loaded.connect(lambda _key: self.viewport().update())

    def set_rows(
        self,
        folders: Sequence[FolderStatus],
        statuses: Sequence[tuple[str, str]],
        failed: Sequence[tuple[str, str]],
        posters: dict[str, list[tuple[str, float]]],
        selected: str | None,
    ) -> None:
        """One row per folder (``statuses``: its status text and state), its failed files as child rows."""
        expanded = {self.topLevelItem(i).data(0, PathRole) for i in range(self.topLevelItemCount())
                    if self.topLevelItem(i).isExpanded()}  # fmt: skip
        self.clear()
        by_folder: dict[str, list[tuple[str, str]]] = {}
        paths = [f.path for f in folders]
        for path, why in failed:
            owner = folder_of(path, paths)
            if owner is not None:
                by_folder.setdefault(owner, []).append((path, why))
        c = theme.colors()
        for f, (status, state) in zip(folders, statuses, strict=True):
            length = duration_text(f.seconds) if f.seconds > 0 else "—"  # nothing read yet: no length known
            if f.unread and f.seconds > 0:
                length = f"≥ {length}"  # the videos read so far; the rest are read when they are indexed
            item = QTreeWidgetItem(["", str(f.videos), str(f.indexed), str(f.pending), str(f.failed), length, status])
            item.setData(0, PathRole, f.path)
            item.setData(0, PostersRole, posters.get(f.path, []))
            item.setData(0, StateRole, state)
            item.setToolTip(0, f.path)
            item.setToolTip(6, status)
            if f.unread:
                item.setToolTip(5, f"{f.unread} {'video' if f.unread == 1 else 'videos'} not read yet: their length is "
                                   "known once they are indexed")  # fmt: skip
            for col in range(1, 6):
                item.setTextAlignment(col, Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
            item.setForeground(6, QColor(_state_colour(state, c)))
            item.setForeground(4, QColor(c.error if f.failed else c.text))
            self.addTopLevelItem(item)
            for path, why in by_folder.get(f.path, []):
                child = QTreeWidgetItem([f"{Path(path).relative_to(f.path)}: {why}"])
                child.setData(0, PathRole, path)
                child.setData(0, WhyRole, why)
                child.setToolTip(0, f"{path}\n{why}")
                child.setForeground(0, QColor(c.error))
                item.addChild(child)
                child.setFirstColumnSpanned(True)
            item.setExpanded(f.path in expanded or (bool(item.childCount()) and item.childCount() <= 5))
            if f.path == selected:
                item.setSelected(True)

    def selected_folder(self) -> str | None:
        items = self.selectedItems()
        if not items:
            return None
        item = items[0].parent() or items[0]
        return str(item.data(0, PathRole))

    def folder_paths(self) -> list[str]:
        return [str(self.topLevelItem(i).data(0, PathRole)) for i in range(self.topLevelItemCount())]

    def failed_under(self, folder: str) -> list[str]:
        """The failed files shown under ``folder`` (their paths)."""
        for i in range(self.topLevelItemCount()):
            item = self.topLevelItem(i)
            if item.data(0, PathRole) == folder:
                return [str(item.child(n).data(0, PathRole)) for n in range(item.childCount())]
        return []


def failed_rows(table: FolderTable) -> dict[str, str]:
    """Every failed file the table shows (under any folder), with the reason it shows: {path: why}."""
    rows = {}
    for i in range(table.topLevelItemCount()):
        item = table.topLevelItem(i)
        for n in range(item.childCount()):
            rows[str(item.child(n).data(0, PathRole))] = str(item.child(n).data(0, WhyRole))
    return rows


def _state_colour(state: str, c: theme.Colors) -> str:
    return {"ok": c.success, "busy": c.accent, "failed": c.error, "waiting": c.warning}.get(state, c.muted)
