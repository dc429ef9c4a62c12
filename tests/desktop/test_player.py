"""Player: opens at the moment's start, loops, next/previous moment, exports; the timeline paints the curve
and seeks where it is clicked."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PySide6.QtCore import QPoint, Qt
from PySide6.QtGui import QColor

from desktop.player.player_view import Opened, PlayerView
from desktop.player.timeline import TimelineStrip, heat_color

pytestmark = pytest.mark.gui


def test_timeline_paints_the_curve_and_seeks_where_clicked(qtbot) -> None:
    strip = TimelineStrip()
    qtbot.addWidget(strip)
    strip.resize(412, 48)
    times = np.arange(0, 20.5, 0.5)
    strip.set_data(20.0, times, np.where((times >= 10) & (times <= 14), 100.0, 0.0), [(10, 14)], 0)
    image = strip.grab().toImage()
    y = 20
    hot, cold = QColor(image.pixel(int(strip.x_at(12)), y)), QColor(image.pixel(int(strip.x_at(3)), y))
    assert hot.lightness() > cold.lightness() + 60
    assert heat_color(100).lightness() > heat_color(0).lightness()
    with qtbot.waitSignal(strip.seek_requested) as blocker:
        qtbot.mouseClick(strip, Qt.MouseButton.LeftButton, pos=QPoint(int(strip.x_at(15.0)), 20))
    assert blocker.args[0] == pytest.approx(15.0, abs=0.1)
    assert strip.relevance_at(12) == 100.0


def _opened(video: Path, current: int = 0) -> Opened:
    return Opened(str(video), 12.0, [(1.0, 3.0), (5.0, 9.0)], current, all_moments=[], query_text="blue")


def test_player_opens_at_the_moment_and_navigates(qtbot, fake_engine, videos) -> None:
    player = PlayerView(fake_engine)
    qtbot.addWidget(player)
    player.show()
    player.open(_opened(videos["red_then_blue"], current=1), autoplay=False)
    qtbot.waitUntil(lambda: player._pending_seek is None, timeout=10000)
    qtbot.waitUntil(lambda: abs(player.position() - 5.0) < 0.3, timeout=5000)
    assert "moment 2 of 2" in player.subtitle.text() and player.title.text() == "red_then_blue.mp4"
    assert player.previous_moment() and player.opened.current == 0
    qtbot.waitUntil(lambda: abs(player.position() - 1.0) < 0.3, timeout=5000)
    assert player.next_moment() and player.opened.current == 1
    assert not player.next_moment()  # no later moment: says so, stays put
    assert player.timeline.current == 1


def test_loop_sends_the_playhead_back_to_the_moment_start(qtbot, fake_engine, videos) -> None:
    player = PlayerView(fake_engine)
    qtbot.addWidget(player)
    player.open(_opened(videos["red_then_blue"], current=0), autoplay=False)
    qtbot.waitUntil(lambda: player._pending_seek is None, timeout=10000)
    player.loop_box.setChecked(True)
    player._on_position(3500)  # past the end of moment 1 (1-3 s)
    qtbot.waitUntil(lambda: abs(player.position() - 1.0) < 0.3, timeout=5000)


def test_exports_a_clip_and_markers(qtbot, fake_engine, videos, tmp_path: Path) -> None:
    from engine.search.results import MomentHit, Why

    player = PlayerView(fake_engine)
    qtbot.addWidget(player)
    opened = _opened(videos["red_then_blue"], current=1)
    opened.all_moments = [MomentHit(str(videos["green"]), 2, 1.0, 2.0, 0.3, 80.0, 1.5, 6.0, Why(1.5))]
    player.open(opened, autoplay=False)
    with qtbot.waitSignal(player.export_runner.finished, timeout=5000):
        player.export_clip(tmp_path / "out.mp4")
    assert fake_engine.exports == [(str(videos["red_then_blue"]), 5.0, 9.0, tmp_path / "out.mp4")]
    out = player.export_markers(tmp_path / "m.edl")
    assert out is not None and "* FROM CLIP NAME: green.mp4" in out.read_text()
