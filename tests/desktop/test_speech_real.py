"""The app over a real library that heard something: espeak-ng speech transcribed by the real tiny.en model and a
caption read by RapidOCR, shown by the player's transcript panel and subtitles, counted by the Library, and
exported from the player. One short video, indexed once for the module."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from desktop.engine_api import RealEngine
from desktop.player.player_view import Opened, PlayerView
from desktop.views.library_view import LibraryView
from engine.bench.speech_media import Caption, Utterance, write_spoken_video
from engine.media.synthetic import write_color_video
from tests.engine.speech_fixtures import library, tiny_en

pytestmark = [pytest.mark.gui, pytest.mark.slow]

SAID = Utterance("My grandmother grew tomatoes in the garden every summer.", 1.0)
SHOWN = Caption("Quarterly results 2024", 0.0, 4.0, 28)


@pytest.fixture(scope="module")
def engine(tmp_path_factory: pytest.TempPathFactory):
    tiny_en()
    root = tmp_path_factory.mktemp("speech-app")
    folder = root / "videos"
    talk = write_spoken_video(folder / "talk.mp4", 8, [SAID], [SHOWN])
    write_color_video(folder / "silent.avi", [(2, (200, 30, 30))])
    lib = library(root / "home", folder, text_every_s=2.0)
    lib.index()
    real = RealEngine(lib)
    yield real, talk
    real.close()


def test_the_panel_shows_the_real_transcript_and_the_shown_text(qtbot, engine) -> None:
    real, talk = engine
    player = PlayerView(real)
    qtbot.addWidget(player)
    player.open(Opened(str(talk.path), 8.0, [(1.0, 4.0)], 0, query_text="tomatoes"), autoplay=False)
    qtbot.waitUntil(lambda: player.transcript.words is not None, timeout=10000)
    panel = player.transcript
    said = [line for line in panel.lines if line.kind == "said"]
    shown = [line for line in panel.lines if line.kind == "shown"]
    assert said and "grandmother" in " ".join(line.text.lower() for line in said)
    assert abs(said[0].start - SAID.start) < 0.6, said[0]
    assert shown and "quarterly" in shown[0].text.lower()
    assert "tomatoes" in panel.lines_view.itemDelegate()._html(said[0])
    player.subtitles_box.setChecked(True)
    player._on_position(int((SAID.start + 0.8) * 1000))
    assert panel.current_row == panel.lines.index(said[0]) and player.subtitle_text()


def test_a_silent_video_says_it_has_no_sound(qtbot, engine) -> None:
    real, talk = engine
    player = PlayerView(real)
    qtbot.addWidget(player)
    player.open(Opened(str(talk.path.parent / "silent.avi"), 2.0, [], -1), autoplay=False)
    qtbot.waitUntil(lambda: player.transcript.words is not None, timeout=10000)
    assert "has no sound" in player.transcript.note.text() and not player.transcript.lines_view.count()


def test_the_library_counts_the_real_stages(qtbot, engine) -> None:
    real, _ = engine
    view = LibraryView(real)
    qtbot.addWidget(view)
    assert view.stages_label.text() == "Speech: 1 transcribed · 1 without sound      Screen text: 2 read"
    row = view.table.topLevelItem(0).text(6)  # the folder's own counts (one folder: the library's)
    assert row == "Indexed · Speech: 1 transcribed, 1 without sound · Screen text: 2 read"


def test_the_player_exports_the_real_transcript(qtbot, engine, tmp_path: Path) -> None:
    real, talk = engine
    player = PlayerView(real)
    qtbot.addWidget(player)
    player.open(Opened(str(talk.path), 8.0, [(1.0, 4.0)], 0), autoplay=False)
    qtbot.waitUntil(lambda: player.transcript.words is not None, timeout=10000)
    umask = os.umask(0)
    os.umask(umask)
    for fmt, start in (("srt", "1\n00:00:0"), ("vtt", "WEBVTT\n\n00:00:0"), ("txt", "[00:00:0")):
        with qtbot.waitSignal(player.transcript.export_runner.finished, timeout=10000):
            player.transcript.export(tmp_path / "talk", fmt)
        out = tmp_path / f"talk.{fmt}"
        text = out.read_text(encoding="utf-8")
        assert text.startswith(start) and "grandmother" in text.lower(), text
        assert out.stat().st_mode & 0o777 == 0o666 & ~umask


def test_said_and_shown_search_the_real_words(qtbot, engine) -> None:
    from desktop.views.search_view import SearchView

    real, talk = engine
    view = SearchView(real)
    qtbot.addWidget(view)
    view.moments_button.setChecked(True)
    view.set_channel("speech")
    with qtbot.waitSignal(view.results_shown, timeout=30000):
        view.run_text("tomatoes in the garden")
    top = view.model.hit(0)
    assert top is not None and top.channel == "speech" and top.video == str(talk.path)
    assert "tomatoes" in (top.quote or "").lower() and abs(top.start - SAID.start) < 1.5
    view.set_channel("text")
    with qtbot.waitSignal(view.results_shown, timeout=30000):
        view.run_text("quarterly results")
    shown = view.model.hit(0)
    assert shown is not None and shown.channel == "text" and "quarterly" in (shown.quote or "").lower()
