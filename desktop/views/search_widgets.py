"""Parts of the search view: the query box that takes dropped files, the result card painter, the filters
and the button that drops them down."""

from __future__ import annotations

import time
from pathlib import Path

from PySide6.QtCore import QModelIndex, QRect, QSize, Qt, Signal
from PySide6.QtGui import QColor, QDragEnterEvent, QDropEvent, QFont, QFontMetrics, QPainter, QPainterPath, QPen
from PySide6.QtWidgets import (
    QComboBox,
    QDoubleSpinBox,
    QFormLayout,
    QLineEdit,
    QMenu,
    QPushButton,
    QStyle,
    QStyledItemDelegate,
    QStyleOptionViewItem,
    QToolButton,
    QWidget,
    QWidgetAction,
)

from desktop import theme
from desktop.highlight import draw_html, marked_html, query_mark, term_spans
from desktop.models.results_model import CHANNEL_WORDS, HitRole, RangeRole, RelevanceRole, TermsRole, why_text
from engine.search.query import SearchFilters

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".webp", ".gif", ".tif", ".tiff"}
CARD = QSize(248, 226)
CHANNEL_DOTS = {"picture": "#4fc3c9", "speech": "#9aa4ff", "text": "#f2b34c"}  # on the badge's dark pill
THUMB_H = 140


def example_kind(path: Path) -> str:
    """``image`` or ``clip``: what a dropped file is searched as."""
    return "image" if path.suffix.lower() in IMAGE_SUFFIXES else "clip"


def popup_button(text: str, panel: QWidget) -> QToolButton:
    """A tool button that drops ``panel`` down as its menu (the filters, beside the query box)."""
    button = QToolButton()
    button.setText(text)
    button.setPopupMode(QToolButton.ToolButtonPopupMode.InstantPopup)
    menu = QMenu(button)
    action = QWidgetAction(menu)
    action.setDefaultWidget(panel)
    menu.addAction(action)
    button.setMenu(menu)
    return button


class QueryBox(QLineEdit):
    """The query line: Enter searches; dropping an image or a video file asks to search by example."""

    example_dropped = Signal(object)  # Path

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("queryBox")
        self.setAcceptDrops(True)
        self.setClearButtonEnabled(True)
        self.setPlaceholderText(
            "Describe what you are looking for, e.g. “a dog catching a frisbee” — or drop a photo or clip here"
        )

    def _files(self, event: QDragEnterEvent | QDropEvent) -> list[Path]:
        urls = event.mimeData().urls() if event.mimeData().hasUrls() else []
        return [Path(u.toLocalFile()) for u in urls if u.isLocalFile() and Path(u.toLocalFile()).is_file()]

    def _set_drop_target(self, on: bool) -> None:
        self.setProperty("dropTarget", on)
        self.style().unpolish(self)
        self.style().polish(self)

    def dragEnterEvent(self, event: QDragEnterEvent) -> None:
        if self._files(event):
            self._set_drop_target(True)
            event.acceptProposedAction()
        else:
            super().dragEnterEvent(event)

    def dragLeaveEvent(self, event) -> None:
        self._set_drop_target(False)
        super().dragLeaveEvent(event)

    def dropEvent(self, event: QDropEvent) -> None:
        self._set_drop_target(False)
        files = self._files(event)
        if files:
            event.acceptProposedAction()
            self.example_dropped.emit(files[0])
        else:
            super().dropEvent(event)


class ResultDelegate(QStyledItemDelegate):
    """A card: the thumbnail, the relevance badge and the range on it, then the file name and folder."""

    def sizeHint(self, option: QStyleOptionViewItem, index: QModelIndex) -> QSize:
        return CARD

    def paint(self, painter: QPainter, option: QStyleOptionViewItem, index: QModelIndex) -> None:
        c = theme.colors()
        painter.save()
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        rect = option.rect.adjusted(6, 6, -6, -6)
        selected = bool(option.state & QStyle.StateFlag.State_Selected)
        hovered = bool(option.state & QStyle.StateFlag.State_MouseOver)
        card = QPainterPath()
        card.addRoundedRect(rect, 10, 10)
        painter.fillPath(card, QColor(c.card))
        painter.setPen(
            QPen(QColor(c.accent if selected else (c.muted if hovered else c.card_border)), 2 if selected else 1)
        )
        painter.drawPath(card)
        thumb = QRect(rect.left() + 1, rect.top() + 1, rect.width() - 2, THUMB_H)
        clip = QPainterPath()
        clip.addRoundedRect(thumb, 9, 9)
        painter.setClipPath(clip)
        painter.fillRect(thumb, QColor("#15161f"))
        pixmap = index.data(Qt.ItemDataRole.DecorationRole)
        if pixmap is not None and not pixmap.isNull():
            scaled = pixmap.scaled(
                thumb.size(), Qt.AspectRatioMode.KeepAspectRatioByExpanding, Qt.TransformationMode.SmoothTransformation
            )
            sx, sy = (scaled.width() - thumb.width()) // 2, (scaled.height() - thumb.height()) // 2
            painter.drawPixmap(thumb.topLeft(), scaled, QRect(sx, sy, thumb.width(), thumb.height()))
        else:
            painter.setPen(QColor("#6b7080"))
            painter.drawText(thumb, Qt.AlignmentFlag.AlignCenter, "loading preview…")
        painter.setClipping(False)
        small = QFont(option.font)
        small.setPointSizeF(max(7.0, option.font.pointSizeF() - 1))
        small.setBold(True)
        painter.setFont(small)
        fm = painter.fontMetrics()
        rel = float(index.data(RelevanceRole) or 0)
        badge_text = f"{rel:.0f}%"
        bw = fm.horizontalAdvance(badge_text) + 14
        badge = QRect(thumb.right() - bw - 8, thumb.top() + 8, bw, fm.height() + 6)
        painter.setPen(Qt.PenStyle.NoPen)
        painter.setBrush(QColor(_relevance_color(rel)))
        painter.drawRoundedRect(badge, badge.height() / 2, badge.height() / 2)
        painter.setPen(QColor("#ffffff"))
        painter.drawText(badge, Qt.AlignmentFlag.AlignCenter, badge_text)
        hit = index.data(HitRole)
        channel = hit.channel if hit is not None else "picture"
        self._paint_channel(painter, thumb, channel, fm)
        range_text = str(index.data(RangeRole) or "")
        rw = fm.horizontalAdvance(range_text) + 14
        pill = QRect(thumb.left() + 8, thumb.bottom() - fm.height() - 12, rw, fm.height() + 6)
        painter.setPen(Qt.PenStyle.NoPen)
        painter.setBrush(QColor(0, 0, 0, 170))
        painter.drawRoundedRect(pill, 5, 5)
        painter.setPen(QColor("#ffffff"))
        painter.drawText(pill, Qt.AlignmentFlag.AlignCenter, range_text)
        name_font = QFont(option.font)
        name_font.setBold(True)
        painter.setFont(name_font)
        text_rect = QRect(rect.left() + 12, thumb.bottom() + 8, rect.width() - 24, painter.fontMetrics().height())
        name = painter.fontMetrics().elidedText(
            str(index.data() or ""), Qt.TextElideMode.ElideMiddle, text_rect.width()
        )
        painter.setPen(QColor(c.text))
        painter.drawText(text_rect, Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter, name)
        painter.setFont(option.font)
        folder = str(Path(hit.video).parent) if hit is not None else ""
        sub_rect = text_rect.translated(0, text_rect.height() + 3)
        painter.setPen(QColor(c.muted))
        folder = painter.fontMetrics().elidedText(folder, Qt.TextElideMode.ElideLeft, sub_rect.width())
        painter.drawText(sub_rect, Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter, folder)
        if hit is not None:
            why_rect = sub_rect.translated(0, sub_rect.height() + 3)
            paint_why(painter, why_rect, hit, tuple(index.data(TermsRole) or ()), option.font)
        painter.restore()

    @staticmethod
    def _paint_channel(painter: QPainter, thumb: QRect, channel: str, fm: QFontMetrics) -> None:
        """The channel badge, top left on the thumbnail: a coloured dot and the word, on a dark pill (so it
        reads on any picture, in either theme)."""
        word = CHANNEL_WORDS.get(channel, channel)
        dot = fm.height() // 2
        pill = QRect(thumb.left() + 8, thumb.top() + 8, fm.horizontalAdvance(word) + dot + 20, fm.height() + 6)
        painter.setPen(Qt.PenStyle.NoPen)
        painter.setBrush(QColor(0, 0, 0, 175))
        painter.drawRoundedRect(pill, pill.height() / 2, pill.height() / 2)
        painter.setBrush(QColor(CHANNEL_DOTS.get(channel, "#ffffff")))
        painter.drawEllipse(pill.left() + 8, pill.center().y() - dot // 2 + 1, dot, dot)
        painter.setPen(QColor("#ffffff"))
        text = pill.adjusted(dot + 13, 0, 0, 0)
        painter.drawText(text, Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter, word)


def fitted_quote(quote: str, terms: tuple[str, ...], fm: QFontMetrics, width: int) -> str:
    """``quote`` in curly quotes, cut to ``width``: from its start when its first matched word fits, else from
    a couple of words before that word (with a leading ellipsis), so the match is what shows."""
    words = quote.split()
    spans = term_spans(quote, terms)
    text = f"“{quote}”"
    if spans and fm.horizontalAdvance(text[: spans[0][1] + 1]) > width * 0.8:
        before = len(quote[: spans[0][0]].split())
        text = "“…" + " ".join(words[max(0, before - 2) :]) + "”"
    return fm.elidedText(text, Qt.TextElideMode.ElideRight, width)


def paint_why(painter: QPainter, rect: QRect, hit: object, terms: tuple[str, ...], font: QFont) -> None:
    """The card's third line: the words said or shown (the query's words marked), or the shared concepts."""
    c = theme.colors()
    quote = getattr(hit, "quote", None)
    if getattr(hit, "channel", "picture") not in ("speech", "text") or not quote:
        painter.setPen(QColor(c.muted))
        text = painter.fontMetrics().elidedText(why_text(hit), Qt.TextElideMode.ElideRight, rect.width())  # type: ignore[arg-type]
        painter.drawText(rect, Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter, text)
        return
    italic = QFont(font)
    italic.setItalic(True)
    shown = fitted_quote(quote, terms, QFontMetrics(italic), rect.width() - 2)
    html = f'<span style="color:{c.text}">{marked_html(shown, [(term_spans(shown, terms), query_mark())])}</span>'
    draw_html(painter, html, italic, rect.left(), rect.top() + 1)  # (marked words make the line a little taller)


def _relevance_color(relevance: float) -> str:
    return "#2e9d5b" if relevance >= 70 else ("#c98a12" if relevance >= 40 else "#7a7f90")


class FiltersPanel(QWidget):
    """Duration, resolution, age and folder bounds, as a ``SearchFilters``."""

    changed = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.min_duration = QDoubleSpinBox(suffix=" s", maximum=86400, decimals=0, specialValueText="any")
        self.max_duration = QDoubleSpinBox(suffix=" s", maximum=86400, decimals=0, specialValueText="any")
        self.resolution = QComboBox()
        for label, height in (("Any", 0), ("720p and above", 720), ("1080p and above", 1080), ("4K", 2160)):
            self.resolution.addItem(label, height)
        self.age = QComboBox()
        for label, days in (("Any time", 0), ("Last 7 days", 7), ("Last 30 days", 30), ("Last year", 365)):
            self.age.addItem(label, days)
        self.folder = QComboBox()
        self.folder.addItem("All folders", "")
        reset = QPushButton("Clear filters")
        reset.clicked.connect(self.clear)
        form = QFormLayout(self)
        form.setContentsMargins(12, 12, 12, 12)
        form.addRow("Shortest", self.min_duration)
        form.addRow("Longest", self.max_duration)
        form.addRow("Resolution", self.resolution)
        form.addRow("Modified", self.age)
        form.addRow("Folder", self.folder)
        form.addRow(reset)
        for w in (self.min_duration, self.max_duration):
            w.valueChanged.connect(self.changed)
        for w in (self.resolution, self.age, self.folder):
            w.currentIndexChanged.connect(self.changed)

    def set_folders(self, folders: list[str]) -> None:
        keep = self.folder.currentData()
        self.folder.blockSignals(True)
        self.folder.clear()
        self.folder.addItem("All folders", "")
        for f in folders:
            self.folder.addItem(Path(f).name or f, f)
        self.folder.setCurrentIndex(max(0, self.folder.findData(keep)))
        self.folder.blockSignals(False)

    def clear(self) -> None:
        for w in (self.min_duration, self.max_duration):
            w.setValue(0)
        for w in (self.resolution, self.age, self.folder):
            w.setCurrentIndex(0)

    def filters(self) -> SearchFilters:
        days = int(self.age.currentData() or 0)
        return SearchFilters(
            folders=(self.folder.currentData(),) if self.folder.currentData() else (),
            modified_after=time.time() - days * 86400 if days else None,
            min_duration=self.min_duration.value() or None,
            max_duration=self.max_duration.value() or None,
            min_height=int(self.resolution.currentData()) or None,
        )

    def active_count(self) -> int:
        f = self.filters()
        return sum(
            x is not None and x != ()
            for x in (f.folders, f.modified_after, f.min_duration, f.max_duration, f.min_height)
        )
