"""``scenefind-gui`` (and ``scenefind gui``): start the desktop app.

Starts fast: Qt and the window come first; OpenCV, torch and open_clip load on worker threads when a job
first needs them. ``--screenshot PATH`` renders the main window (optionally after running ``--query``,
waiting for results and thumbnails) to a PNG and exits, for smoke tests and for looking at the app.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import time
from collections.abc import Sequence
from pathlib import Path

APP_NAME = "Scenefind"
ORG_NAME = "Scenefind"


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="scenefind-gui", description="Open the Scenefind desktop app.")
    p.add_argument("--home", type=Path, help="library folder (default: the one chosen in Settings, or the user's)")
    p.add_argument("--model", help="encoder for this session (default: the settings')")
    p.add_argument("--theme", choices=("light", "dark"), help="colour theme (default: the last one used)")
    p.add_argument("--screenshot", type=Path, metavar="PATH", help="render the window to PATH (PNG) and exit")
    p.add_argument("--query", help="with --screenshot: search for this first")
    p.add_argument("--mode", choices=("videos", "moments"), help="with --query: what to list")
    p.add_argument("--tab", choices=("library", "search", "training"), help="with --screenshot: which tab")
    p.add_argument("--size", default="1280x800", help="with --screenshot: window size WxH (default 1280x800)")
    p.add_argument("--timeout", type=float, default=60.0, help="with --screenshot: seconds to wait for results")
    return p


def _gui_args(argv: Sequence[str] | None) -> list[str]:
    """Explicit ``argv``, else what follows ``gui`` when started as ``scenefind ... gui ...``."""
    if argv is not None:
        return list(argv)
    args = sys.argv[1:]
    return args[args.index("gui") + 1 :] if "gui" in args and Path(sys.argv[0]).stem == "scenefind" else args


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(_gui_args(argv))
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    from PySide6.QtCore import QCoreApplication, QSettings
    from PySide6.QtWidgets import QApplication, QMessageBox

    QCoreApplication.setOrganizationName(ORG_NAME)
    QCoreApplication.setApplicationName(APP_NAME)
    app = QApplication.instance() or QApplication([sys.argv[0]])
    assert isinstance(app, QApplication)
    from desktop import theme

    app.setWindowIcon(theme.app_icon())
    app.setApplicationDisplayName(APP_NAME)
    theme.apply_theme(app, args.theme or str(QSettings().value("app/theme", "light")))
    try:
        engine = open_engine(args.home, args.model)
    except Exception as exc:  # a broken settings file or catalog: say so instead of a traceback
        QMessageBox.critical(None, "Scenefind cannot open the library", str(exc))
        print(f"scenefind-gui: error: {exc}", file=sys.stderr)
        return 2
    from desktop.main_window import MainWindow

    window = MainWindow(engine)
    if args.screenshot:
        return screenshot(window, args)
    window.show()
    warm = start_warm_up(window)
    code = app.exec()
    warm.cancel()
    engine.close()
    return int(code)


def open_engine(home: Path | None, model: str | None):
    """The real engine on ``home``, else the data folder chosen in Settings, else the default library."""
    from PySide6.QtCore import QSettings

    from desktop.engine_api import RealEngine

    if home is None and not os.environ.get("SCENEFIND_HOME"):
        chosen = QSettings().value("app/data_folder", "", type=str)
        home = Path(chosen) if chosen else None
    engine = RealEngine.open(home)
    if model:
        engine.library.settings = engine.library.settings.replace(model=model)
    return engine


def start_warm_up(parent):
    """Load the engine's heavy modules in the background once the window is up (see ``warm_up``)."""
    from desktop.engine_api import warm_up
    from desktop.jobs import JobRunner

    runner = JobRunner(parent)
    runner.start(lambda *, progress, cancel: warm_up())
    return runner


def screenshot(window, args: argparse.Namespace) -> int:
    """Show the window, optionally search and wait for results and thumbnails, grab it to a PNG."""
    from PySide6.QtCore import QEventLoop
    from PySide6.QtWidgets import QApplication

    loop = QEventLoop()  # its processEvents, unlike QApplication's, keeps Python's refcounts (PySide6 6.12)
    width, _, height = args.size.partition("x")
    window.resize(int(width), int(height))
    window.show()
    view = window.search_view
    if args.query:
        window.tabs.setCurrentWidget(view)
        if args.mode:
            (view.moments_button if args.mode == "moments" else view.videos_button).setChecked(True)
        view.run_text(args.query)
    if args.tab:
        window.tabs.setCurrentIndex(("library", "search", "training").index(args.tab))
    deadline = time.monotonic() + args.timeout

    def busy() -> bool:
        searching = view.runner.running or (view.model.rowCount() > 0 and view.thumbnails.pending() > 0)
        return searching or (args.tab == "training" and window.training_view.loading())

    while time.monotonic() < deadline and (busy() or time.monotonic() < deadline - args.timeout + 0.5):
        loop.processEvents()
        time.sleep(0.05)
    if args.query and view.model.rowCount():
        view.open_index(view.model.index(0), autoplay=True)  # playing puts a frame on the video surface
        settle = time.monotonic() + 1.5
        while time.monotonic() < settle:
            loop.processEvents()
            time.sleep(0.05)
        view.player.media.pause()
        loop.processEvents()
    args.screenshot.parent.mkdir(parents=True, exist_ok=True)
    # The screen's pixels include the video surface (a native child that QWidget.grab cannot see); the
    # offscreen platform has no screen pixels, so there the widget tree is rendered instead.
    on_screen = QApplication.platformName() not in ("offscreen", "minimal")
    image = window.screen().grabWindow(window.winId()) if on_screen else window.grab()
    ok = image.save(str(args.screenshot), "PNG")
    window.save_state = lambda: None  # a smoke run must not overwrite the user's window geometry
    window.close()
    print(
        args.screenshot if ok else f"scenefind-gui: could not write {args.screenshot}",
        file=sys.stdout if ok else sys.stderr,
    )
    return 0 if ok else 2


if __name__ == "__main__":
    sys.exit(main())
