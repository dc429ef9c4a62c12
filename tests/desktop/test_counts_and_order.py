"""The app with the real engine: its counts are the current model's (Library table, summary, status bar), and
its result grid follows the relevance it shows."""

from __future__ import annotations

from pathlib import Path

import pytest

from desktop.engine_api import RealEngine
from desktop.main_window import MainWindow
from desktop.models.results_model import RelevanceRole

pytestmark = pytest.mark.gui


def test_counts_follow_the_model_and_results_their_relevance(qtbot, tmp_path: Path, videos) -> None:
    from engine.library.library import Library
    from engine.settings import EngineSettings

    with Library(tmp_path / "lib", EngineSettings(model="fake:hash-8")) as other:
        other.add_folder(tmp_path / "videos")
        other.index()  # the whole library, but with another model
    engine = RealEngine(Library(tmp_path / "lib", EngineSettings(model="fake:color")))
    window = MainWindow(engine)
    qtbot.addWidget(window)
    library = window.library_view
    row = library.table.topLevelItem(0)
    assert [row.text(c) for c in (1, 2, 3)] == ["3", "0", "3"]  # videos, indexed, pending: with fake:color
    assert "0 of 3 videos indexed with the colour demo" in library.summary.text()  # fake:color, as users read it
    assert window.status_label.text().startswith("0/3 videos indexed · model fake:color")
    assert window.tabs.currentWidget() is library  # nothing to search with this model yet

    with qtbot.waitSignal(library.index_finished, timeout=60000):
        library.start_index()
    assert library.table.topLevelItem(0).text(2) == "3"
    assert window.status_label.text().startswith("3/3 videos indexed")

    search = window.search_view
    for mode_button in (search.videos_button, search.moments_button):
        mode_button.setChecked(True)
        for text in ("red", "a blue screen", "green"):
            with qtbot.waitSignal(search.results_shown, timeout=60000):
                search.run_text(text)
            if search.show_all_button.isVisible():
                with qtbot.waitSignal(search.results_shown, timeout=60000):
                    search.show_all()
            shown = [search.model.index(i).data(RelevanceRole) for i in range(search.model.rowCount())]
            assert shown and shown == sorted(shown, reverse=True), (text, shown)
    window.close()
    engine.close()
