"""``--screenshot`` saves the settled window: laid out in full offscreen, and in a real X window (Xvfb) the
screen's pixels of the answered search, not the "Searching…" frame the X server still held."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from PySide6.QtCore import QRect
from PySide6.QtGui import QColor, QImage

from desktop.main_window import MainWindow
from desktop.screenshot import same_pixels, settle
from tests.desktop.xwindow import REPO, x_env, x_window_problem

pytestmark = pytest.mark.gui


def test_settle_lays_out_the_page_the_answer_switched_to(qtbot, fake_engine, tmp_path: Path) -> None:
    fake_engine.folder_paths.append(str(tmp_path / "videos"))
    fake_engine.indexed, fake_engine.no_results, fake_engine.hidden = True, True, 23
    window = MainWindow(fake_engine)
    qtbot.addWidget(window)
    window.resize(1280, 800)
    window.show()
    view = window.search_view
    window.tabs.setCurrentWidget(view)
    view.run_text("zebra")
    assert settle(window, window.settling, 10)
    body = view.message.body
    assert view.message.title.text() == "No results" and "23 weaker matches" in body.text()
    assert body.height() >= body.heightForWidth(body.width())  # every wrapped line shows: none clipped
    assert view.summary.text() != "Searching…"


def test_same_pixels_tells_pages_apart_outside_the_excluded_rectangles() -> None:
    a = QImage(200, 100, QImage.Format.Format_RGB32)
    a.fill(QColor("white"))
    b = a.copy()
    for x in range(20, 60):
        for y in range(10, 30):
            b.setPixel(x, y, QColor("black").rgb())
    assert same_pixels(a, a.copy(), []) and not same_pixels(a, b, [])
    assert same_pixels(a, b, [QRect(20, 10, 40, 20)])  # the video surface: only the screen can show it


@pytest.mark.slow
def test_a_real_x_window_saves_the_answered_search_not_searching(tmp_path: Path) -> None:
    """The same no-hit search shot in an Xvfb window and offscreen: the two PNGs must agree. Before the fix
    the X one showed "Searching…" every time (the grab beat the last repaint to the X server)."""
    if (why := x_window_problem()) is not None:
        pytest.skip(f"no X window can open here: {why}")
    from engine.library.library import Library
    from engine.settings import EngineSettings
    from tests.engine.videos import color_library

    home = tmp_path / "lib"
    library = Library(home, EngineSettings(model="fake:color"))
    library.add_folder(color_library(tmp_path / "videos")["red_then_blue"].parent)
    library.index()
    library.close()
    env = x_env(tmp_path, home)
    shot = [sys.executable, "-m", "desktop.app", "--model", "fake:color", "--query", "zebra", "--size", "1100x700"]
    x_png, off_png = tmp_path / "x.png", tmp_path / "offscreen.png"
    runs = (
        (["xvfb-run", "-a", *shot, "--screenshot", str(x_png)], env),
        ([*shot, "--screenshot", str(off_png)], dict(env, QT_QPA_PLATFORM="offscreen")),
    )
    for command, run_env in runs:
        done = subprocess.run(command, cwd=REPO, env=run_env, capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, done.stderr
    x_image, off_image = QImage(str(x_png)), QImage(str(off_png))
    assert x_image.size() == off_image.size()
    assert same_pixels(x_image, off_image, []), "the X window's screenshot is not the settled state"
