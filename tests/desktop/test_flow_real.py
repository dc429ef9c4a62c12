"""The whole flow with the real engine and the tiny model: add a folder of generated videos, index, search,
open the player at the moment, export the clip (the file exists and lasts as long as the moment)."""

from __future__ import annotations

from pathlib import Path

import pytest

from desktop.engine_api import RealEngine
from desktop.main_window import MainWindow

pytestmark = [pytest.mark.gui, pytest.mark.slow]


def test_add_index_search_play_export(qtbot, tmp_path: Path, videos) -> None:
    from engine.library.library import Library
    from engine.media.decode import probe
    from engine.settings import EngineSettings

    engine = RealEngine(Library(tmp_path / "lib", EngineSettings(model="test-tiny")))
    window = MainWindow(engine)
    qtbot.addWidget(window)
    window.show()
    library, search = window.library_view, window.search_view

    with qtbot.waitSignal(library.index_finished, timeout=120000) as indexed:
        library.add_folders([tmp_path / "videos"])
    assert indexed.args[0].indexed == 3
    assert library.table.topLevelItem(0).text(2) == "3"

    window.tabs.setCurrentWidget(search)
    search.moments_button.setChecked(True)
    with qtbot.waitSignal(search.results_shown, timeout=60000):
        search.run_text("a blue screen")
    if search.model.rowCount() == 0:  # the tiny model is random: its calibrated cutoff may hide everything
        with qtbot.waitSignal(search.results_shown, timeout=60000):
            search.show_all()
    assert search.model.rowCount() > 0
    hit = search.model.hit(0)
    assert Path(hit.video).exists() and 0 <= hit.start < hit.end

    search.open_index(search.model.index(0), autoplay=False)
    player = search.player
    assert player.isVisible() and player.title.text() == Path(hit.video).name
    qtbot.waitUntil(lambda: player._pending_seek is None, timeout=20000)
    qtbot.waitUntil(lambda: abs(player.position() - hit.start) < 0.3, timeout=10000)

    out = tmp_path / "moment.mp4"
    with qtbot.waitSignal(player.export_runner.finished, timeout=60000) as exported:
        player.export_clip(out)
    assert Path(exported.args[0]) == out and out.is_file()
    assert abs(probe(out).duration_s - (hit.end - hit.start)) <= 0.2
    window.close()
    engine.close()
