"""``LivePlot``: a small line chart (QtCharts) that grows one point at a time, for training curves.

Why its own widget: the Training tab draws the loss and the validation metrics as epochs finish, and both
need the same things: named series created on first use, axes that always fit every point (a metric never
needs a zoom), colours taken from the app palette so the chart follows the light/dark theme, and the points
kept in Python so tests can read them back without poking at QtCharts internals.
"""

from __future__ import annotations

from PySide6.QtCharts import QChart, QChartView, QLineSeries, QValueAxis
from PySide6.QtCore import QMargins, QPointF, Qt
from PySide6.QtGui import QColor, QPainter, QPalette
from PySide6.QtWidgets import QApplication, QWidget

SERIES_COLOURS = ("#3b82f6", "#f59e0b", "#10b981", "#ef4444", "#8b5cf6")


class LivePlot(QChartView):
    """Line chart with an x axis in epochs; ``add_point(series, x, y)`` appends and refits the axes."""

    def __init__(
        self, title: str, y_title: str, parent: QWidget | None = None, *, y_range: tuple[float, float] | None = None
    ) -> None:
        self._chart = QChart()
        self._y_range = y_range  # a fixed y range (percentages), else fitted to the points
        super().__init__(self._chart, parent)
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
        self._chart.addAxis(self._x, Qt.AlignmentFlag.AlignBottom)
        self._chart.addAxis(self._y, Qt.AlignmentFlag.AlignLeft)
        self._series: dict[str, QLineSeries] = {}
        self._points: dict[str, list[tuple[float, float]]] = {}
        self.apply_palette()
        self._fit()

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
            series.setColor(QColor(SERIES_COLOURS[len(self._series) % len(SERIES_COLOURS)]))
            self._chart.addSeries(series)
            series.attachAxis(self._x)
            series.attachAxis(self._y)
            self._series[name] = series
            self._points[name] = []
        series.append(QPointF(float(x), float(y)))
        self._points[name].append((float(x), float(y)))
        self._fit()

    def clear(self) -> None:
        for series in self._series.values():
            self._chart.removeSeries(series)
        self._series.clear()
        self._points.clear()
        self._fit()

    def apply_palette(self) -> None:
        """Background and text colours from the current palette (called again after a theme switch)."""
        app = QApplication.instance()
        palette = app.palette() if isinstance(app, QApplication) else QPalette()
        base, text = palette.color(QPalette.ColorRole.Base), palette.color(QPalette.ColorRole.Text)
        self._chart.setBackgroundBrush(base)
        self._chart.setTitleBrush(text)
        self._chart.legend().setLabelColor(text)
        grid = QColor(text)
        grid.setAlpha(40)
        for axis in (self._x, self._y):
            axis.setLabelsColor(text)
            axis.setTitleBrush(text)
            axis.setGridLineColor(grid)

    def _fit(self) -> None:
        xs = [x for pts in self._points.values() for x, _ in pts]
        ys = [y for pts in self._points.values() for _, y in pts]
        hi_x = max(1.0, *xs) if xs else 1.0
        self._x.setRange(0.0, hi_x)
        self._x.setTickCount(int(hi_x) + 1 if hi_x <= 10 else 6)
        if self._y_range is not None or not ys:
            self._y.setRange(*(self._y_range or (0.0, 1.0)))
            return
        lo, hi = min(ys), max(ys)
        pad = (hi - lo) * 0.1 or max(abs(hi) * 0.1, 0.1)
        self._y.setRange(max(0.0, lo - pad) if lo >= 0 else lo - pad, hi + pad)
        self._y.applyNiceNumbers()  # round tick labels (0.5, 1.0, ...) rather than 0.67, 1.17
