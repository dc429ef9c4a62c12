"""The smaller things a user notices (issue 13, item 14): the shortcuts list, where exports open, what a
card's times mean, the heatmap's legend, the query box beside the player, the focus after Ctrl+2, and one
offer of the weaker matches."""

from __future__ import annotations

from pathlib import Path

import pytest
from PySide6.QtGui import QAction
from PySide6.QtWidgets import QApplication, QFileDialog

from desktop.main_window import MainWindow
from desktop.models.results_model import range_text
from engine.search.results import VideoHit, Why

pytestmark = pytest.mark.gui


def _window(qtbot, engine, tmp_path: Path) -> MainWindow:
    engine.folder_paths.append(str(tmp_path / "videos"))
    engine.indexed = True
    window = MainWindow(engine)
    qtbot.addWidget(window)
    window.resize(1280, 800)
    window.show()
    return window


def test_the_shortcuts_list_has_every_menu_shortcut(qtbot, fake_engine, tmp_path: Path) -> None:
    window = _window(qtbot, fake_engine, tmp_path)
    listed = " | ".join(keys for keys, _ in window.shortcut_rows())
    for action in window.findChildren(QAction):
        if not action.shortcut().isEmpty():
            assert action.shortcut().toString() in listed, action.text()
    assert "Ctrl+E" in listed and "Ctrl+Shift+E" in listed
    assert "Ctrl+2 or Ctrl+F or /" in listed  # the aliases of a menu entry sit with it


def test_ctrl_2_puts_the_cursor_in_the_query_box(qtbot, fake_engine, tmp_path: Path) -> None:
    window = _window(qtbot, fake_engine, tmp_path)
    window.tabs.setCurrentWidget(window.library_view)
    window.activateWindow()
    qtbot.waitUntil(lambda: QApplication.activeWindow() is window, timeout=2000)
    search = next(a for a in window.findChildren(QAction) if a.shortcut().toString() == "Ctrl+2")
    search.trigger()
    assert window.tabs.currentWidget() is window.search_view
    qtbot.waitUntil(lambda: window.search_view.query_box.hasFocus(), timeout=2000)


def test_a_video_card_says_the_length_is_a_length() -> None:
    hit = VideoHit("/v/clip.mp4", 1, 0.3, 80.0, 5.0, 16.0, Why(5.0))
    assert range_text(hit) == "best at 0:05 of 0:16"


def _open_first(qtbot, window: MainWindow) -> None:
    view = window.search_view
    window.tabs.setCurrentWidget(view)
    with qtbot.waitSignal(view.results_shown, timeout=5000):
        view.run_text("a beach")
    view.open_index(view.model.index(0), autoplay=False)


def test_the_player_leaves_the_query_box_room_and_explains_its_heatmap(qtbot, fake_engine, tmp_path) -> None:
    window = _window(qtbot, fake_engine, tmp_path)
    _open_first(qtbot, window)
    qtbot.wait(50)
    view = window.search_view
    assert view.player.isVisible() and view.query_box.width() >= 360, view.query_box.width()
    legend = view.player.legend
    assert legend.isVisible() and legend.width() >= legend.sizeHint().width()
    assert legend.texts() == ["weaker", "closer to your search", "a moment found"]


def test_export_dialogs_open_beside_the_video(qtbot, fake_engine, tmp_path: Path, monkeypatch) -> None:
    window = _window(qtbot, fake_engine, tmp_path)
    _open_first(qtbot, window)
    suggested: list[str] = []
    monkeypatch.setattr(
        QFileDialog, "getSaveFileName", lambda parent, title, start, *a: (suggested.append(start), ("", ""))[1]
    )
    player = window.search_view.player
    player.export_clip_dialog()
    player.opened.all_moments = list(window.search_view.results.moments)
    player.export_markers_dialog()
    folder = Path(player.opened.video).parent
    assert [Path(s).parent for s in suggested] == [folder, folder], suggested
    assert Path(suggested[0]).suffix == ".mp4" and Path(suggested[1]).name == "moments.edl"


def test_weaker_matches_are_offered_once(qtbot, fake_engine, tmp_path: Path) -> None:
    fake_engine.no_results, fake_engine.hidden = True, 23
    window = _window(qtbot, fake_engine, tmp_path)
    view = window.search_view
    window.tabs.setCurrentWidget(view)
    with qtbot.waitSignal(view.results_shown, timeout=5000):
        view.run_text("zebra")
    offers = [t for t in view.message.button_texts() if "weaker" in t]
    offers += [view.show_all_button.text()] if view.show_all_button.isVisibleTo(view) else []
    assert len(offers) == 1, offers


def test_a_run_named_by_a_relative_path_reads_as_a_trained_model(tmp_path: Path, monkeypatch) -> None:
    """The README indexes with ``--model runs/tiny``; the library header read "indexed with runs (tiny)", as if
    "runs" were an open_clip architecture and "tiny" its weights."""
    from desktop.problems import model_label

    monkeypatch.chdir(tmp_path)
    (tmp_path / "runs" / "tiny" / "best").mkdir(parents=True)
    assert model_label("runs/tiny") == model_label("runs/tiny/best") == "the trained model tiny"
    assert model_label("./runs/tiny") == model_label(str(tmp_path / "runs" / "tiny")) == "the trained model tiny"
    assert model_label("runs/moved/best") == "the trained model moved"  # a run folder no longer there
    assert model_label("ViT-B-32/laion2b_s34b_b79k") == "ViT-B-32 (laion2b_s34b_b79k)"
    assert model_label("open_clip:ViT-B-32/openai") == "ViT-B-32 (openai)"
    assert model_label("scratch:tiny") == "scratch:tiny"
