"""Player glyphs painted in the theme's text colour (the style's stock media icons vanish on dark themes)."""

from __future__ import annotations

from PySide6.QtCore import QPointF, QRectF, Qt
from PySide6.QtGui import QColor, QIcon, QPainter, QPixmap, QPolygonF

from desktop import theme


def glyph(kind: str, size: int = 32) -> QIcon:
    """``play``, ``pause``, ``next`` or ``previous``."""
    pix = QPixmap(size, size)
    pix.fill(Qt.GlobalColor.transparent)
    p = QPainter(pix)
    p.setRenderHint(QPainter.RenderHint.Antialiasing)
    p.setPen(Qt.PenStyle.NoPen)
    p.setBrush(QColor(theme.colors().text))
    s = size
    if kind == "play":
        p.drawPolygon(QPolygonF([QPointF(s * 0.3, s * 0.2), QPointF(s * 0.8, s * 0.5), QPointF(s * 0.3, s * 0.8)]))
    elif kind == "pause":
        p.drawRoundedRect(QRectF(s * 0.27, s * 0.2, s * 0.16, s * 0.6), 2, 2)
        p.drawRoundedRect(QRectF(s * 0.57, s * 0.2, s * 0.16, s * 0.6), 2, 2)
    else:
        forward = kind == "next"
        tip, base = (s * 0.68, s * 0.25) if forward else (s * 0.32, s * 0.75)
        p.drawPolygon(QPolygonF([QPointF(base, s * 0.22), QPointF(tip, s * 0.5), QPointF(base, s * 0.78)]))
        bar_x = s * 0.7 if forward else s * 0.2
        p.drawRoundedRect(QRectF(bar_x, s * 0.22, s * 0.1, s * 0.56), 1.5, 1.5)
    p.end()
    return QIcon(pix)
