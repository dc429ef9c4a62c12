"""The player's timeline strip: the query's similarity over the whole video as a heatmap, the moments as
boxes, and the playhead; click or drag anywhere to seek.

The heatmap is the search's ``Curve`` for this video (relevance 0-100 over time), interpolated to one
colour per pixel column in NumPy and drawn as a one-pixel-high image stretched to the strip, so repainting
during playback costs next to nothing.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from PySide6.QtCore import QPointF, QRectF, QSize, Qt, Signal
from PySide6.QtGui import QColor, QImage, QMouseEvent, QPainter, QPainterPath, QPaintEvent, QPen
from PySide6.QtWidgets import QSizePolicy, QToolTip, QWidget

from desktop import theme
from desktop.models.results_model import clock

# Dark (unrelated) to bright (matches): a magma-like ramp that reads in both themes.
_STOPS = [
    (0.0, (27, 31, 59)),
    (0.35, (59, 63, 156)),
    (0.6, (162, 59, 156)),
    (0.8, (239, 111, 60)),
    (1.0, (255, 210, 63)),
]


def _lut() -> np.ndarray:
    xs = np.linspace(0, 1, 256)
    pos = [p for p, _ in _STOPS]
    rgb = np.stack([np.interp(xs, pos, [c[i] for _, c in _STOPS]) for i in range(3)], axis=1).astype(np.uint32)
    return (0xFF << 24) | (rgb[:, 0] << 16) | (rgb[:, 1] << 8) | rgb[:, 2]


LUT = _lut()


def heat_color(relevance: float) -> QColor:
    """The heatmap colour of a 0-100 relevance (for legends and tests)."""
    value = int(LUT[int(np.clip(relevance, 0, 100) / 100 * 255)])
    return QColor.fromRgba(value)


class TimelineStrip(QWidget):
    """``seek_requested(seconds)`` when clicked or dragged."""

    seek_requested = Signal(float)
    _MARGIN = 6

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setMinimumHeight(48)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed)
        self.setMouseTracking(True)
        self.setCursor(Qt.CursorShape.PointingHandCursor)
        self.setAccessibleName("Timeline: brighter means closer to your search; click to seek")
        self.duration = 0.0
        self.position = 0.0
        self.moments: list[tuple[float, float]] = []
        self.current = -1
        self._times: np.ndarray | None = None
        self._relevance: np.ndarray | None = None
        self._image: QImage | None = None
        self._image_width = -1

    def sizeHint(self) -> QSize:
        return QSize(600, 48)

    def set_data(
        self,
        duration: float,
        times: Sequence[float] | np.ndarray | None = None,
        relevance: Sequence[float] | np.ndarray | None = None,
        moments: Sequence[tuple[float, float]] = (),
        current: int = -1,
    ) -> None:
        self.duration = max(0.0, float(duration))
        if times is not None and relevance is not None and len(times) > 0 and len(times) == len(relevance):
            self._times = np.asarray(times, dtype=np.float64)
            self._relevance = np.asarray(relevance, dtype=np.float64)
        else:
            self._times = self._relevance = None
        self.moments = [(float(s), float(e)) for s, e in moments]
        self.current = current
        self._image_width = -1
        self.update()

    def set_duration(self, duration: float) -> None:
        if abs(duration - self.duration) > 1e-3:
            self.duration = max(0.0, duration)
            self._image_width = -1
            self.update()

    def set_position(self, seconds: float) -> None:
        self.position = max(0.0, seconds)
        self.update()

    def has_curve(self) -> bool:
        return self._times is not None

    def relevance_at(self, seconds: float) -> float | None:
        if self._times is None or self._relevance is None:
            return None
        return float(np.interp(seconds, self._times, self._relevance))

    # -- geometry ---------------------------------------------------------------------------------------

    def _track(self) -> QRectF:
        m = self._MARGIN
        return QRectF(m, 8, max(1.0, self.width() - 2 * m), max(1.0, self.height() - 20))

    def time_at(self, x: float) -> float:
        track = self._track()
        if self.duration <= 0:
            return 0.0
        return float(np.clip((x - track.left()) / track.width(), 0, 1) * self.duration)

    def x_at(self, seconds: float) -> float:
        track = self._track()
        return track.left() + (seconds / self.duration if self.duration > 0 else 0.0) * track.width()

    # -- painting ---------------------------------------------------------------------------------------

    def _heat_image(self, width: int) -> QImage | None:
        if self._times is None or self._relevance is None or self.duration <= 0 or width <= 0:
            return None
        if self._image is None or self._image_width != width:
            xs = (np.arange(width) + 0.5) / width * self.duration
            values = np.interp(xs, self._times, self._relevance)
            argb = np.ascontiguousarray(LUT[np.clip(values / 100 * 255, 0, 255).astype(np.int64)], dtype=np.uint32)
            self._image = QImage(argb.tobytes(), width, 1, width * 4, QImage.Format.Format_ARGB32).copy()
            self._image_width = width
        return self._image

    def paintEvent(self, event: QPaintEvent) -> None:
        c = theme.colors()
        p = QPainter(self)
        p.setRenderHint(QPainter.RenderHint.Antialiasing)
        track = self._track()
        clip = QPainterPath()
        clip.addRoundedRect(track, 5, 5)
        p.save()
        p.setClipPath(clip)
        image = self._heat_image(int(track.width()))
        if image is not None:
            p.drawImage(track, image)
        else:
            p.fillRect(track, QColor(c.card_border))
        for n, (start, end) in enumerate(self.moments):
            x0, x1 = self.x_at(start), max(self.x_at(end), self.x_at(start) + 2)
            box = QRectF(x0, track.top(), x1 - x0, track.height())
            fill = QColor(255, 255, 255, 60 if n == self.current else 28)
            p.fillRect(box, fill)
            p.setPen(QPen(QColor(255, 255, 255, 230 if n == self.current else 120), 2 if n == self.current else 1))
            p.drawLine(QPointF(x0, track.top()), QPointF(x0, track.bottom()))
            p.drawLine(QPointF(x1, track.top()), QPointF(x1, track.bottom()))
        p.restore()
        for n, (start, end) in enumerate(self.moments):  # chapter-like bars under the strip
            x0, x1 = self.x_at(start), max(self.x_at(end), self.x_at(start) + 3)
            bar = QRectF(x0, track.bottom() + 3, x1 - x0, 4)
            p.setPen(Qt.PenStyle.NoPen)
            p.setBrush(QColor(c.accent) if n == self.current else QColor(c.muted))
            p.drawRoundedRect(bar, 2, 2)
        if self.duration > 0:
            x = self.x_at(min(self.position, self.duration))
            p.setPen(QPen(QColor(c.text), 2))
            p.drawLine(QPointF(x, 2), QPointF(x, self.height() - 2))
            p.setBrush(QColor(c.text))
            p.drawEllipse(QPointF(x, 4), 4, 4)
        p.end()

    # -- input ------------------------------------------------------------------------------------------

    def mousePressEvent(self, event: QMouseEvent) -> None:
        if event.button() == Qt.MouseButton.LeftButton and self.duration > 0:
            self.seek_requested.emit(self.time_at(event.position().x()))

    def mouseMoveEvent(self, event: QMouseEvent) -> None:
        t = self.time_at(event.position().x())
        if event.buttons() & Qt.MouseButton.LeftButton and self.duration > 0:
            self.seek_requested.emit(t)
        rel = self.relevance_at(t)
        tip = clock(t) + (f" · relevance {rel:.0f}" if rel is not None else "")
        QToolTip.showText(event.globalPosition().toPoint(), tip, self)


class HeatLegend(QWidget):
    """What the timeline's colours and boxes mean: a small ramp from "weaker" to "closer to your search",
    and a box swatch for "a moment found". Painted from the timeline's own ramp, so the two never differ."""

    LOW, HIGH, MOMENT = "weaker", "closer to your search", "a moment found"

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setSizePolicy(QSizePolicy.Policy.Preferred, QSizePolicy.Policy.Fixed)
        self.setAccessibleName(f"Timeline colours: dark is {self.LOW}, bright is {self.HIGH}")

    def texts(self) -> list[str]:
        return [self.LOW, self.HIGH, self.MOMENT]

    def _layout(self) -> tuple[int, int, int, int]:
        fm = self.fontMetrics()
        low, high, moment = (fm.horizontalAdvance(t) for t in self.texts())
        return low, high, moment, fm.height()

    def sizeHint(self) -> QSize:
        low, high, moment, h = self._layout()
        return QSize(low + 8 + 72 + 8 + high + 20 + 18 + 6 + moment + 4, h + 4)

    def minimumSizeHint(self) -> QSize:
        return self.sizeHint()

    def paintEvent(self, event: QPaintEvent) -> None:
        c = theme.colors()
        low, high, moment, h = self._layout()
        p = QPainter(self)
        p.setRenderHint(QPainter.RenderHint.Antialiasing)
        y = (self.height() - h) // 2
        p.setPen(QColor(c.muted))
        x = 0
        p.drawText(x, y, low, h, Qt.AlignmentFlag.AlignVCenter, self.LOW)
        x += low + 8
        ramp = QImage(LUT.astype(np.uint32).tobytes(), 256, 1, 256 * 4, QImage.Format.Format_ARGB32).copy()
        bar = QRectF(x, self.height() / 2 - 4, 72, 8)
        path = QPainterPath()
        path.addRoundedRect(bar, 4, 4)
        p.save()
        p.setClipPath(path)
        p.drawImage(bar, ramp)
        p.restore()
        x += 72 + 8
        p.drawText(x, y, high, h, Qt.AlignmentFlag.AlignVCenter, self.HIGH)
        x += high + 20
        box = QRectF(x, self.height() / 2 - 6, 18, 12)
        p.fillRect(box, heat_color(45))
        p.setPen(QPen(QColor(255, 255, 255, 230), 1.5))
        p.drawLine(QPointF(box.left() + 1, box.top()), QPointF(box.left() + 1, box.bottom()))
        p.drawLine(QPointF(box.right() - 1, box.top()), QPointF(box.right() - 1, box.bottom()))
        p.setPen(QColor(c.muted))
        x += 18 + 6
        p.drawText(x, y, moment, h, Qt.AlignmentFlag.AlignVCenter, self.MOMENT)
        p.end()
