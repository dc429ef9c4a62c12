"""``LivePlot``: a small line chart (QtCharts) that grows one point at a time, for training curves.

Why its own widget: the Training tab draws the loss and the validation metrics as epochs finish, and both
need the same things: named series created on first use, axes that always fit every point (a metric never
needs a zoom), colours taken from the theme that follow a light/dark switch (a palette change event, as Qt
sends every widget when the app's palette changes), a sentence in place of an empty chart, and the points
kept in Python so tests can read them back without poking at QtCharts internals.
"""

from __future__ import annotations

import math

from PySide6.QtCharts import QChart, QChartView, QLineSeries, QValueAxis
from PySide6.QtCore import QEvent, QMargins, QPointF, QRectF, Qt
from PySide6.QtGui import QColor, QPainter, QPalette, QResizeEvent
from PySide6.QtWidgets import QLabel, QWidget

from desktop import theme

SERIES_COLOURS = ("#3b82f6", "#f59e0b", "#10b981", "#ef4444", "#8b5cf6")


class LivePlot(QChartView):
    """Line chart with an x axis in epochs; ``add_point(series, x, y)`` appends and refits the axes."""

    def __init__(
        self,
        title: str,
        y_title: str,
        parent: QWidget | None = None,
        *,
        y_range: tuple[float, float] | None = None,
        empty_text: str = "Points appear as epochs finish",
    ) -> None:
        self._chart = QChart()
        self._y_range = y_range  # a fixed y range (percentages), else fitted to the points
        super().__init__(self._chart, parent)
        self._empty = QLabel(empty_text, self)
        self._empty.setObjectName("muted")
        self._empty.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self._empty.setWordWrap(True)
        self._empty.setAttribute(Qt.WidgetAttribute.WA_TransparentForMouseEvents)
        self._empty.setAutoFillBackground(True)  # over the empty plot area: no grid line runs through the words
        self.setRenderHint(QPainter.RenderHint.Antialiasing)
        self.setMinimumHeight(180)
        self._chart.setTitle(title)
        self._chart.setMargins(QMargins(4, 4, 4, 4))
        self._chart.legend().setAlignment(Qt.AlignmentFlag.AlignBottom)
        self._x = QValueAxis()
        self._x.setTitleText("epoch")
        self._x.setLabelFormat("%d")
        self._y = QValueAxis()
        self._y.setTitleText(y_title)
        self._y.setLabelFormat("%.4g")  # 1.85, not 1.8500
        self._chart.addAxis(self._x, Qt.AlignmentFlag.AlignBottom)
        self._chart.addAxis(self._y, Qt.AlignmentFlag.AlignLeft)
        self._chart.plotAreaChanged.connect(self._place_empty)
        self._series: dict[str, QLineSeries] = {}
        self._points: dict[str, list[tuple[float, float]]] = {}
        self.apply_palette()
        self._fit()

    def empty_text(self) -> str:
        """The sentence shown while no series has a point ("" when points are shown)."""
        return "" if self._points else self._empty.text()

    def set_empty_text(self, text: str) -> None:
        self._empty.setText(text)

    def series_names(self) -> list[str]:
        return list(self._series)

    def points(self, name: str) -> list[tuple[float, float]]:
        return list(self._points.get(name, []))

    def add_point(self, name: str, x: float, y: float) -> None:
        series = self._series.get(name)
        if series is None:
            series = QLineSeries()
            series.setName(name)
            series.setPointsVisible(True)
            series.setMarkerSize(5)
            pen = series.pen()
            pen.setWidthF(2.0)
            pen.setColor(QColor(SERIES_COLOURS[len(self._series) % len(SERIES_COLOURS)]))
            series.setPen(pen)
            self._chart.addSeries(series)
            series.attachAxis(self._x)
            series.attachAxis(self._y)
            self._series[name] = series
            self._points[name] = []
        series.append(QPointF(float(x), float(y)))
        self._points[name].append((float(x), float(y)))
        self._empty.hide()
        self._fit()

    def clear(self) -> None:
        for series in self._series.values():
            self._chart.removeSeries(series)
        self._series.clear()
        self._points.clear()
        self._empty.show()
        self._fit()

    def apply_palette(self) -> None:
        """Background, text and grid colours from the current theme (again after every theme switch)."""
        c = theme.colors()
        text, base = QColor(c.text), QColor(c.base)
        self._chart.setBackgroundBrush(base)
        palette = self._empty.palette()
        palette.setColor(QPalette.ColorRole.Window, base)
        self._empty.setPalette(palette)
        self.setBackgroundBrush(base)  # the view around the chart's rounded plot area
        self._chart.setTitleBrush(text)
        self._chart.legend().setLabelColor(text)
        grid = QColor(c.text)
        grid.setAlpha(40)
        for axis in (self._x, self._y):
            axis.setLabelsColor(text)
            axis.setTitleBrush(text)
            axis.setGridLineColor(grid)
            axis.setLinePenColor(QColor(c.muted))

    def background_color(self) -> QColor:
        return self._chart.backgroundBrush().color()

    def changeEvent(self, event: QEvent) -> None:
        """``apply_theme`` sets the app palette; Qt then sends each widget a palette change."""
        if event.type() in (QEvent.Type.PaletteChange, QEvent.Type.ApplicationPaletteChange):
            self.apply_palette()
        super().changeEvent(event)

    def resizeEvent(self, event: QResizeEvent) -> None:
        super().resizeEvent(event)
        self._place_empty(self._chart.plotArea())

    def _place_empty(self, area: QRectF) -> None:
        """The sentence fills the plot area, inside the axes: over the whole view it ran across the tick labels
        and the axis titles of a small chart."""
        rect = self.mapFromScene(area).boundingRect().adjusted(1, 1, -1, -1)
        self._empty.setGeometry(rect if rect.width() > 40 and rect.height() > 20 else self.rect())

    def _fit(self) -> None:
        """Axes that hold every point with a little room, so a point on the edge is not cut in half; ticks
        stay on whole epochs (and on round numbers of the y range) whatever the padding."""
        xs = [x for pts in self._points.values() for x, _ in pts]
        ys = [y for pts in self._points.values() for _, y in pts]
        hi_x = max(1.0, *xs) if xs else 1.0
        self._x.setTickType(QValueAxis.TickType.TicksDynamic)
        self._x.setTickAnchor(0.0)
        self._x.setTickInterval(float(max(1, math.ceil(hi_x / 10))))
        self._x.setRange(0.0, hi_x + (0.04 * hi_x + 0.1 if xs else 0.0))
        if self._y_range is not None or not ys:
            lo, hi = self._y_range or (0.0, 1.0)
            self._y.setTickType(QValueAxis.TickType.TicksDynamic)
            self._y.setTickAnchor(lo)
            self._y.setTickInterval((hi - lo) / 4)
            self._y.setRange(lo, hi + (0.04 * (hi - lo) if ys else 0.0))
            return
        self._y.setTickType(QValueAxis.TickType.TicksFixed)
        lo, hi = min(ys), max(ys)
        pad = (hi - lo) * 0.1 or max(abs(hi) * 0.1, 0.1)
        self._y.setRange(max(0.0, lo - pad) if lo >= 0 else lo - pad, hi + pad)
        self._y.applyNiceNumbers()  # round tick labels (0.5, 1.0, ...) rather than 0.67, 1.17
