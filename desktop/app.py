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
    p.add_argument(
        "--channel",
        choices=("all", "said", "shown"),
        help="with --query: search everything, or only what is said or shown",
    )
    p.add_argument("--subtitles", action="store_true", help="with --query: subtitles on in the player")
    p.add_argument("--tab", choices=("library", "search", "training"), help="with --screenshot: which tab")
    p.add_argument(
        "--dialog",
        choices=("settings", "settings-advanced"),
        help="with --screenshot: open this dialog (settings-advanced: with its advanced part shown) and save it",
    )
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

    if QApplication.instance() is None and (code := check_display(args)) is not None:
        return code
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
    window.check_model()
    code = app.exec()
    warm.cancel()
    engine.close()
    return int(code)


def check_display(args: argparse.Namespace) -> int | None:
    """Exit code 2 with a sentence when no window can open here (instead of Qt's abort); a screenshot then
    renders offscreen instead. None when the app can go on."""
    from desktop.display import display_problem

    problem = display_problem(os.environ)
    if problem is None:
        return None
    if args.screenshot:
        os.environ["QT_QPA_PLATFORM"] = "offscreen"
        first = problem.split(". ")[0]
        note = "rendering offscreen (a video frame shows only in a real window)"
        print(f"scenefind-gui: {first}; {note}", file=sys.stderr)
        return None
    print(f"scenefind-gui: error: {problem}", file=sys.stderr)
    return 2


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
    """Show the window, optionally search (and open the first hit) or open a dialog, wait until everything
    has settled (``desktop.screenshot``), and save what the screen shows to a PNG."""
    from PySide6.QtCore import QPoint, QRect

    from desktop.screenshot import grab, pump, settle

    width, _, height = args.size.partition("x")
    window.resize(int(width), int(height))
    window.show()
    window.check_model()
    view = window.search_view
    if args.query:
        window.tabs.setCurrentWidget(view)
        if args.mode:
            (view.moments_button if args.mode == "moments" else view.videos_button).setChecked(True)
        if args.channel:
            view.set_channel({"all": None, "said": "speech", "shown": "text"}[args.channel])
        if args.subtitles:
            view.player.set_subtitles(True, remember=False)
        view.run_text(args.query)
    if args.tab:
        window.tabs.setCurrentIndex(("library", "search", "training").index(args.tab))
    settled = settle(window, window.settling, args.timeout)
    if args.query and view.model.rowCount():
        view.open_index(view.model.index(0), autoplay=True)  # playing puts a frame on the video surface
        pump(1.5)
        view.player.media.pause()
        settled = settle(window, window.settling, args.timeout) and settled
    target = window
    if args.dialog in ("settings", "settings-advanced"):
        target = window.open_settings()
        target.advanced_button.setChecked(args.dialog == "settings-advanced")
        settled = settle(target, target.loading, args.timeout) and settled
    if not settled:
        print(f"scenefind-gui: still busy after {args.timeout:g} s; saving the window as it is", file=sys.stderr)

    def video_surface() -> list[QRect]:
        video = view.player.video_widget
        if target is not window or not video.isVisible():
            return []
        return [QRect(video.mapTo(window, QPoint(0, 0)), video.size())]

    args.screenshot.parent.mkdir(parents=True, exist_ok=True)
    ok = grab(target, exclude=video_surface).save(str(args.screenshot), "PNG")
    window.save_state = lambda: None  # a smoke run must not overwrite the user's window geometry
    if target is not window:
        target.reject()
    window.close()
    print(
        args.screenshot if ok else f"scenefind-gui: could not write {args.screenshot}",
        file=sys.stdout if ok else sys.stderr,
    )
    return 0 if ok else 2


if __name__ == "__main__":
    sys.exit(main())
