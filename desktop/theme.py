"""Light and dark themes: Fusion style, a palette, and a small style sheet from ``resources/styles``.

Custom-painted widgets (result cards, the timeline) read ``colors()`` so they follow the theme too.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from PySide6.QtGui import QColor, QIcon, QPalette
from PySide6.QtWidgets import QApplication

RESOURCES = Path(__file__).resolve().parents[1] / "resources"
THEMES = ("light", "dark")


@dataclass(frozen=True)
class Colors:
    window: str
    base: str
    card: str
    card_border: str
    text: str
    muted: str
    accent: str
    highlight_text: str
    success: str
    warning: str
    error: str


_COLORS = {
    "light": Colors(
        "#f4f5f9",
        "#ffffff",
        "#ffffff",
        "#e1e3ea",
        "#1d2030",
        "#6b7080",
        "#4f5bd5",
        "#ffffff",
        "#237a48",
        "#9a5b00",
        "#b3261e",
    ),
    "dark": Colors(
        "#181a27",
        "#1f2235",
        "#23263a",
        "#33364a",
        "#eceef6",
        "#9296a8",
        "#7480ff",
        "#ffffff",
        "#5fcf8f",
        "#e5a54b",
        "#ff8a80",
    ),
}
_current = "light"


def colors() -> Colors:
    return _COLORS[_current]


def current() -> str:
    return _current


def app_icon() -> QIcon:
    return QIcon(str(RESOURCES / "icons" / "scenefind.svg"))


def apply_theme(app: QApplication, name: str) -> str:
    """Switch the whole app to ``name`` (``light`` or ``dark``; anything else means light)."""
    global _current
    _current = name if name in THEMES else "light"
    c = colors()
    app.setStyle("Fusion")
    pal = QPalette()
    roles = {
        QPalette.ColorRole.Window: c.window,
        QPalette.ColorRole.WindowText: c.text,
        QPalette.ColorRole.Base: c.base,
        QPalette.ColorRole.AlternateBase: c.window,
        QPalette.ColorRole.Text: c.text,
        QPalette.ColorRole.Button: c.base,
        QPalette.ColorRole.ButtonText: c.text,
        QPalette.ColorRole.Highlight: c.accent,
        QPalette.ColorRole.HighlightedText: c.highlight_text,
        QPalette.ColorRole.ToolTipBase: c.base,
        QPalette.ColorRole.ToolTipText: c.text,
        QPalette.ColorRole.PlaceholderText: c.muted,
        QPalette.ColorRole.Link: c.accent,
    }
    # Fusion draws frames, tab-bar lines and check-box outlines from the 3D roles; left at their defaults
    # they are near white, a bright line across the dark theme. Derive them from the theme's own colours.
    border, window = QColor(c.card_border), QColor(c.window)
    roles.update(
        {
            QPalette.ColorRole.Light: border.name(),
            QPalette.ColorRole.Midlight: border.name(),
            QPalette.ColorRole.Mid: border.darker(115).name(),
            QPalette.ColorRole.Dark: window.darker(130).name(),
            QPalette.ColorRole.Shadow: window.darker(160).name(),
        }
    )
    for role, value in roles.items():
        pal.setColor(role, QColor(value))
    for role in (QPalette.ColorRole.Text, QPalette.ColorRole.ButtonText, QPalette.ColorRole.WindowText):
        pal.setColor(QPalette.ColorGroup.Disabled, role, QColor(c.muted))
    app.setPalette(pal)
    qss = RESOURCES / "styles" / f"{_current}.qss"
    sheet = qss.read_text(encoding="utf-8") if qss.is_file() else ""
    app.setStyleSheet(sheet.replace("@ICONS@", (RESOURCES / "icons").as_posix()))  # url() needs absolute paths
    return _current
