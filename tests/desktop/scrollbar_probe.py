"""Run in a real X window (``xvfb-run``) by ``test_theme.py``: the search view with more cards than fit, then
the screen's pixels of the results grid's scroll bar, written as JSON for the test to judge.

A separate process because a test session's Qt runs offscreen, where a transparent background is composed onto
the window and looks right; only an X window showed the scroll bar's page painted black.
"""

from __future__ import annotations

import json
import sys
import tempfile
from pathlib import Path

from PySide6.QtCore import QPoint, QRect
from PySide6.QtWidgets import QApplication


def main(theme_name: str, out: Path) -> None:
    from desktop import theme
    from desktop.main_window import MainWindow
    from desktop.screenshot import grab, settle
    from desktop.views.result_grid import ResultGrid
    from tests.desktop.fakes import FakeEngine

    app = QApplication([])
    theme.apply_theme(app, theme_name)
    root = Path(tempfile.mkdtemp())
    engine = FakeEngine(root, [root / f"video{n:02d}.mp4" for n in range(24)])
    engine.folder_paths.append(str(root))
    engine.indexed = True
    window = MainWindow(engine)
    window.resize(1100, 700)
    window.show()
    view = window.search_view
    window.tabs.setCurrentWidget(view)
    view.run_text("beach")
    settle(window, window.settling, 20)
    scroll = window.findChild(ResultGrid).grid.verticalScrollBar()
    image = grab(window)
    corner = scroll.mapTo(window, QPoint(0, 0))
    rect = QRect(corner, scroll.size()).intersected(QRect(0, 0, image.width(), image.height()))
    dark = total = 0
    for x in range(rect.left(), rect.right() + 1):
        for y in range(rect.top(), rect.bottom() + 1):
            c = image.pixelColor(x, y)
            total += 1
            dark += max(c.red(), c.green(), c.blue()) < 8
    figures = {"visible": scroll.isVisible(), "maximum": scroll.maximum(), "pixels": total, "black": dark}
    out.write_text(json.dumps(figures))
    window.close()
    app.processEvents()


if __name__ == "__main__":
    main(sys.argv[1], Path(sys.argv[2]))
