"""Search view with a fake engine: states, results grid with lazy thumbnails, history, exclusions, filters,
search by example, "more like this", videos/moments switch."""

from __future__ import annotations

from pathlib import Path

import pytest
from PySide6.QtCore import QMimeData, QPointF, QSettings, Qt, QUrl
from PySide6.QtGui import QDropEvent
from PySide6.QtWidgets import QPushButton

from desktop.views.search_view import SearchView
from engine.search.query import MomentRef

pytestmark = pytest.mark.gui


def _view(qtbot, engine) -> SearchView:
    view = SearchView(engine)
    qtbot.addWidget(view)
    view.resize(1200, 800)
    return view


def _indexed(engine, tmp_path: Path):
    engine.folder_paths.append(str(tmp_path / "videos"))
    engine.indexed = True
    return engine


def test_empty_library_says_to_add_a_folder(qtbot, fake_engine) -> None:
    view = _view(qtbot, fake_engine)
    assert view.message.title.text() == "Your library is empty"
    with qtbot.waitSignal(view.library_requested):
        view.message._buttons.itemAt(0).widget().click()


def test_search_fills_the_grid_and_loads_thumbnails(qtbot, fake_engine, tmp_path: Path) -> None:
    view = _view(qtbot, _indexed(fake_engine, tmp_path))
    assert view.message.title.text() == "Search your videos" and view.message.button_texts()[0].startswith("Try")
    view.show()
    view.moments_button.setChecked(True)
    view.query_box.setText("a dog on the beach")
    with qtbot.waitSignal(view.results_shown, timeout=5000):
        view.search_button.click()
    assert view.stack.currentIndex() == 1 and view.model.rowCount() == 6
    assert fake_engine.queries[-1].text == "a dog on the beach" and fake_engine.queries[-1].mode == "moments"
    assert view.summary.text().startswith("6 moments")
    index = view.model.index(0)
    assert index.data() == "red_then_blue.mp4" and index.data(Qt.ItemDataRole.UserRole + 2) == "0:01 – 0:03"
    qtbot.waitUntil(lambda: view.model.data(index, Qt.ItemDataRole.DecorationRole) is not None, timeout=5000)
    assert not view.model.data(index, Qt.ItemDataRole.DecorationRole).isNull()
    view.videos_button.click()  # both lists came back: switching needs no new search
    assert view.model.rowCount() == 3 and len(fake_engine.queries) == 1


def test_history_is_kept_and_completes(qtbot, fake_engine, tmp_path: Path) -> None:
    view = _view(qtbot, _indexed(fake_engine, tmp_path))
    for text in ("red car", "dog", "red car"):
        with qtbot.waitSignal(view.results_shown, timeout=5000):
            view.run_text(text)
    assert view.history.stringList() == ["red car", "dog"]
    assert QSettings().value("search/history") == ["red car", "dog"]
    assert _view(qtbot, fake_engine).history.stringList() == ["red car", "dog"]  # survives a restart
    completer = view.query_box.completer()
    completer.setCompletionPrefix("car")
    assert completer.currentCompletion() == "red car"


def test_exclusions_and_filters_go_into_the_query(qtbot, fake_engine, tmp_path: Path) -> None:
    view = _view(qtbot, _indexed(fake_engine, tmp_path))
    view.exclude_box.setText("leash, night ,")
    view.filters_panel.min_duration.setValue(5)
    view.filters_panel.resolution.setCurrentIndex(1)
    view.filters_panel.folder.setCurrentIndex(1)
    assert view.filters_button.text() == "Filters (3)"
    with qtbot.waitSignal(view.results_shown, timeout=5000):
        view.run_text("dog")
    q = fake_engine.queries[-1]
    assert q.exclude == ("leash", "night")
    assert (q.filters.min_duration, q.filters.min_height, q.filters.folders) == (5.0, 720, (str(tmp_path / "videos"),))


def test_no_results_state_offers_weaker_matches(qtbot, fake_engine, tmp_path: Path) -> None:
    fake_engine.no_results, fake_engine.hidden = True, 4
    view = _view(qtbot, _indexed(fake_engine, tmp_path))
    with qtbot.waitSignal(view.results_shown, timeout=5000):
        view.run_text("unicorn")
    assert view.stack.currentIndex() == 0 and view.message.title.text() == "No results"
    assert "4 weaker matches" in view.message.body.text()
    with qtbot.waitSignal(view.results_shown, timeout=5000):
        view.show_all()
    assert fake_engine.queries[-1].min_relevance == 0.0 and view.model.rowCount() > 0


def test_no_results_stays_while_the_library_changes(qtbot, fake_engine, tmp_path: Path) -> None:
    """Seen in an Xvfb window: "0 moments" above the welcome page ("Search your videos", with examples to try),
    because a library refresh after the answer put the empty state over "No results"."""
    fake_engine.no_results = True
    view = _view(qtbot, _indexed(fake_engine, tmp_path))
    with qtbot.waitSignal(view.results_shown, timeout=5000):
        view.run_text("unicorn")
    view.refresh_state()  # what the window does at every indexing or text-stage tick
    assert view.message.title.text() == "No results" and view.summary.text().startswith("0 moments")
    assert "describe what is visible" in view.message.body.text()
    with qtbot.waitSignal(view.results_shown, timeout=5000):
        view.set_channel("text")  # the same words, on screen only: the advice says so and offers the way back
    assert fake_engine.queries[-1].channel == "text"
    assert view.message.title.text() == "No results" and "No text shown on screen" in view.message.body.text()
    assert "Search all" in [b.text() for b in view.message.findChildren(QPushButton) if b.isVisibleTo(view)]
    fake_engine.folder_paths.clear()  # the library emptied: that is news, and it replaces the old answer
    view.refresh_state()
    assert view.message.title.text() == "Your library is empty"


def test_search_failure_is_shown_with_its_reason(qtbot, fake_engine, tmp_path: Path) -> None:
    fake_engine.search_error = RuntimeError("nothing is indexed with model x yet; run `scenefind index`")
    view = _view(qtbot, _indexed(fake_engine, tmp_path))
    with qtbot.waitSignal(view.runner.failed, timeout=5000):
        view.run_text("dog")
    assert view.message.title.text() == "The search did not run"
    assert "nothing is indexed" in view.message.body.text()


def test_dropping_an_image_searches_by_example(qtbot, fake_engine, tmp_path: Path) -> None:
    view = _view(qtbot, _indexed(fake_engine, tmp_path))
    image = fake_engine.thumbnail("x.mp4", 1.0)
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(image))])
    event = QDropEvent(
        QPointF(5, 5), Qt.DropAction.CopyAction, mime, Qt.MouseButton.NoButton, Qt.KeyboardModifier.NoModifier
    )
    with qtbot.waitSignal(view.results_shown, timeout=5000):
        view.query_box.dropEvent(event)
    assert fake_engine.queries[-1].image == image and fake_engine.queries[-1].text is None
    assert "Searching by example" in view.example_label.text()


def test_more_like_this_queries_with_the_moment(qtbot, fake_engine, tmp_path: Path) -> None:
    view = _view(qtbot, _indexed(fake_engine, tmp_path))
    view.moments_button.setChecked(True)
    with qtbot.waitSignal(view.results_shown, timeout=5000):
        view.run_text("dog")
    view.grid.setCurrentIndex(view.model.index(1))
    with qtbot.waitSignal(view.results_shown, timeout=5000):
        view.more_button.click()
    assert fake_engine.queries[-1].moment == MomentRef(1, 5.0, 9.0)


def test_opening_a_result_prepares_the_player(qtbot, fake_engine, tmp_path: Path) -> None:
    view = _view(qtbot, _indexed(fake_engine, tmp_path))
    view.moments_button.setChecked(True)
    with qtbot.waitSignal(view.results_shown, timeout=5000):
        view.run_text("dog")
    opened = view.opened_for(view.model.index(1))
    assert opened.moments == [(1.0, 3.0), (5.0, 9.0)] and opened.current == 1
    assert opened.times is not None and len(opened.all_moments) == 6 and opened.query_text == "dog"
