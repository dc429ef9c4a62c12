"""Speech and on-screen text in the app, with the fake engine: the transcript panel (follows playback, seeks on
click, finds and marks), subtitles, the channel badge and quote on cards, the All/Said/Shown choice, the
stages in the Library and its index progress, the speech settings, and the transcript export."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from PySide6.QtCore import QRect, QSettings, Qt
from PySide6.QtGui import QColor, QFontMetrics, QImage, QPainter
from PySide6.QtWidgets import QApplication, QFileDialog

from desktop.highlight import FIND_MARK_COLOUR, query_terms, term_spans
from desktop.models.results_model import why_text
from desktop.player.player_view import Opened, PlayerView
from desktop.player.transcript_lines import line_at, lines_from, subtitle_at
from desktop.player.transcript_panel import LineRole
from desktop.speech_text import StageStatus, VideoWords
from desktop.views.library_rows import PathRole, failed_rows
from desktop.views.library_view import LibraryView
from desktop.views.search_view import SearchView
from desktop.views.search_widgets import CHANNEL_DOTS, ResultDelegate, fitted_quote
from tests.desktop.fakes import spoken_words

pytestmark = pytest.mark.gui


def _player(qtbot, engine, video: Path, query: str = "password") -> PlayerView:
    player = PlayerView(engine)
    qtbot.addWidget(player)
    player.resize(1000, 600)
    player.show()
    player.open(Opened(str(video), 12.0, [(4.0, 6.0)], 0, query_text=query), autoplay=False)
    qtbot.waitUntil(lambda: player.transcript.words is not None, timeout=5000)
    return player


def _texts(player: PlayerView) -> list[str]:
    view = player.transcript.lines_view
    return [view.item(n).data(LineRole).text for n in range(view.count()) if not view.isRowHidden(n)]


def test_lines_and_subtitles_follow_the_words() -> None:
    words = spoken_words()
    lines = lines_from(words.said, words.shown)
    assert [line.kind for line in lines] == ["said", "said", "shown", "said"]
    assert line_at(lines, 0.2) is None and line_at(lines, 1.0) == 0 and line_at(lines, 4.2) == 1
    assert line_at(lines, 3.5) == 0  # a short pause keeps the line that was said last
    assert line_at(lines, 7.0, "shown") == 2
    assert subtitle_at(words.said, 4.6).startswith("The wifi password")
    assert subtitle_at(words.said, 3.6) == ""  # between sentences the screen is clear
    long = subtitle_at(words.said, 11.0)  # a long sentence shows the line being said, not all of it
    assert long and len(long) <= 42 and "forty four" in long and not long.startswith("Grandma")


def test_the_transcript_follows_playback_and_seeks_where_clicked(qtbot, fake_engine, videos) -> None:
    video = videos["red_then_blue"]
    fake_engine.words[str(video)] = spoken_words()
    player = _player(qtbot, fake_engine, video)
    panel = player.transcript
    assert _texts(player)[:2] == ["Hello and welcome home.", "The wifi password is on the fridge."]
    assert "ON SCREEN" in panel.lines_view.itemDelegate()._html(panel.lines[2])  # shown text is marked as such
    player._on_position(4500)
    assert panel.current_row == 1
    player._on_position(9000)
    assert panel.current_row == 3
    qtbot.waitUntil(lambda: player._pending_seek is None, timeout=10000)
    item = panel.lines_view.item(0)
    rect = panel.lines_view.visualItemRect(item)
    with qtbot.waitSignal(panel.seek_requested, timeout=2000) as clicked:
        qtbot.mouseClick(panel.lines_view.viewport(), Qt.MouseButton.LeftButton, pos=rect.center())
    assert clicked.args[0] == pytest.approx(0.5)
    qtbot.waitUntil(lambda: abs(player.position() - 0.5) < 0.3, timeout=5000)
    assert panel.current_row == 0
    panel.shown_box.setChecked(False)  # on-screen text can be left out of the list (remembered)
    assert len(_texts(player)) == 3 and QSettings().value("player/transcript_shown_text", type=bool) is False


def test_find_keeps_the_matching_lines_and_marks_them_and_the_query_words(qtbot, fake_engine, videos) -> None:
    video = videos["red_then_blue"]
    fake_engine.words[str(video)] = spoken_words()
    player = _player(qtbot, fake_engine, video, query="the wifi passwords")
    panel, delegate = player.transcript, player.transcript.lines_view.itemDelegate()
    query_marked = delegate._html(panel.lines[1])
    assert query_terms("the wifi passwords") == ("wifi", "password")
    assert query_marked.count('font-weight:600">') == 2 and ">wifi<" in query_marked and ">password<" in query_marked
    panel.find_box.setText("FRID")  # case does not matter
    assert _texts(player) == ["The wifi password is on the fridge."]
    assert panel.count_label.text() == "1 line"
    marked = delegate._html(panel.lines[1])
    assert FIND_MARK_COLOUR in marked and ">frid</span>ge" in marked
    with qtbot.waitSignal(panel.seek_requested, timeout=2000) as sought:
        panel.find_box.returnPressed.emit()  # Enter plays the first line that has it
    assert sought.args[0] == pytest.approx(4.0)
    panel.find_box.setText("zebra")
    assert _texts(player) == [] and panel.count_label.text() == "No line has it"
    panel.find_box.clear()
    assert len(_texts(player)) == 4


@pytest.mark.parametrize(
    ("words", "says"),
    [
        (VideoWords(said_state="pending", shown_state="pending"), "Not transcribed yet"),
        (VideoWords(said_state="no_audio", shown_state="ok"), "has no sound"),
        (VideoWords(said_state="off", shown_state="off"), "Speech is off for this library"),
        (VideoWords(said_state="failed", said_error="audio stream is corrupt"), "audio stream is corrupt"),
        (VideoWords(said_state="empty"), "No speech was heard"),
    ],
)
def test_an_empty_transcript_says_why(qtbot, fake_engine, videos, words, says) -> None:
    video = videos["green"]
    fake_engine.words[str(video)] = words
    player = _player(qtbot, fake_engine, video)
    assert player.transcript.note.isVisible() and says in player.transcript.note.text()
    assert not player.transcript.export_button.isEnabled()


def _held_back_player(qtbot, fake_engine, videos) -> PlayerView:
    """A player opened on a video whose transcript the engine holds back until ``fake_engine.words_gate`` is set
    (``open`` returns while the engine waits)."""
    import threading

    video = videos["red_then_blue"]
    fake_engine.words[str(video)] = spoken_words()
    fake_engine.words_gate = threading.Event()
    player = PlayerView(fake_engine)
    qtbot.addWidget(player)
    player.open(Opened(str(video), 12.0, [(4.0, 6.0)], 0), autoplay=False)
    return player


def test_words_load_off_the_gui_thread(qtbot, fake_engine, videos) -> None:
    player = _held_back_player(qtbot, fake_engine, videos)
    assert player.transcript.loading() and "Reading the transcript" in player.transcript.note.text()
    fake_engine.words_gate.set()
    qtbot.waitUntil(lambda: player.transcript.words is not None, timeout=5000)
    assert not player.transcript.loading() and len(player.transcript.lines) == 4


def test_subtitles_toggle_show_what_is_said_and_are_remembered(qtbot, fake_engine, videos) -> None:
    video = videos["red_then_blue"]
    fake_engine.words[str(video)] = spoken_words()
    player = _player(qtbot, fake_engine, video)
    assert not player.subtitles_box.isChecked() and player.subtitle_text() == ""
    player.toggle_subtitles()
    player._on_position(4600)
    assert player.subtitle_label.isVisible() and player.subtitle_text().startswith("The wifi password")
    player._on_position(3600)
    assert player.subtitle_label.isVisible() and player.subtitle_text() == ""  # the band stays: no jump
    again = PlayerView(fake_engine)  # the choice is remembered
    qtbot.addWidget(again)
    assert again.subtitles_box.isChecked()
    player.subtitles_box.setChecked(False)
    assert not player.subtitle_label.isVisible() and player.subtitle_text() == ""


def test_the_transcript_exports_beside_the_video_with_the_umasks_mode(
    qtbot, fake_engine, videos, tmp_path: Path, monkeypatch
) -> None:
    video = videos["red_then_blue"]
    fake_engine.words[str(video)] = spoken_words()
    player = _player(qtbot, fake_engine, video)
    asked: list[str] = []
    out = tmp_path / "out" / "talk.vtt"
    out.parent.mkdir()
    monkeypatch.setattr(
        QFileDialog, "getSaveFileName", lambda parent, title, start, filters: (asked.append(start), (str(out), ""))[1]
    )
    with qtbot.waitSignal(player.transcript.export_runner.finished, timeout=5000):
        player.transcript_action.trigger()  # the player's Export menu
    assert asked == [str(video.parent / "red_then_blue.srt")]
    assert out.read_text(encoding="utf-8").startswith("WEBVTT") and "wifi password" in out.read_text()
    umask = os.umask(0)
    os.umask(umask)
    assert out.stat().st_mode & 0o777 == 0o666 & ~umask
    for fmt, start in (("srt", "1\n00:00:00,500 --> "), ("txt", "[00:00:00")):
        with qtbot.waitSignal(player.transcript.export_runner.finished, timeout=5000):
            player.transcript.export(tmp_path / "out" / "talk", fmt)
        assert (tmp_path / "out" / f"talk.{fmt}").read_text(encoding="utf-8").startswith(start)


def _badge_pixel(channel: str) -> QColor:
    image = QImage(248, 140, QImage.Format.Format_RGB32)
    image.fill(QColor("#808080"))
    painter = QPainter(image)
    fm = QFontMetrics(QApplication.font())
    ResultDelegate._paint_channel(painter, QRect(0, 0, 248, 140), channel, fm)
    painter.end()
    dot = fm.height() // 2
    return image.pixelColor(8 + 8 + dot // 2, 8 + (fm.height() + 6) // 2)


@pytest.mark.parametrize("channel", ["picture", "speech", "text"])
def test_each_channel_has_its_badge(qtbot, channel) -> None:
    colour = _badge_pixel(channel)
    expected = QColor(CHANNEL_DOTS[channel])
    assert abs(colour.red() - expected.red()) + abs(colour.green() - expected.green()) < 40, colour.name()
    others = {QColor(CHANNEL_DOTS[c]).name() for c in CHANNEL_DOTS if c != channel}
    assert colour.name() not in others


def _searched(qtbot, engine, tmp_path: Path, text: str) -> SearchView:
    """A search view over the indexed fake library, after searching ``text`` for videos."""
    engine.folder_paths.append(str(tmp_path / "videos"))
    engine.indexed = True
    view = SearchView(engine)
    qtbot.addWidget(view)
    view.resize(1200, 800)
    view.videos_button.setChecked(True)
    with qtbot.waitSignal(view.results_shown, timeout=5000):
        view.run_text(text)
    return view


def test_cards_quote_what_was_said_and_mark_the_query(qtbot, fake_engine, tmp_path: Path) -> None:
    view = _searched(qtbot, fake_engine, tmp_path, "wifi password")
    said, shown, seen = (view.model.hit(n) for n in range(3))
    assert [h.channel for h in (said, shown, seen)] == ["speech", "text", "picture"]
    assert why_text(said) == "said at 0:01: “the wifi password is on the fridge”"
    assert why_text(shown).startswith("on screen at 0:01: “Quarterly")
    assert "found by said" in view.model.index(0).data(Qt.ItemDataRole.ToolTipRole)
    assert term_spans(said.quote, query_terms("wifi password")) == [(4, 8), (9, 17)]
    # A word the search counted as a near match is marked where the quote has an exact one, as the search did.
    heard = "The turkey is under the red flower pot."
    assert [heard[a:b] for a, b in term_spans(heard, query_terms("spare key under the red flower pot"))] == [
        "turkey", "under", "red", "flower", "pot"]  # fmt: skip
    assert term_spans("the monkey sleeps", query_terms("key")) == []  # a near match alone is no match
    fm = QFontMetrics(QApplication.font())
    long = "and then after a very long time of saying nothing much at all she told us the wifi password"
    fitted = fitted_quote(long, query_terms("wifi password"), fm, 200)
    assert fitted.startswith("“…") and "wifi" in fitted  # cut so the matched words show
    view.show()
    view.grid.viewport().grab()  # the cards paint (badge, quote with marks) without error


def test_the_channel_choice_restricts_the_search(qtbot, fake_engine, tmp_path: Path) -> None:
    view = _searched(qtbot, fake_engine, tmp_path, "password")
    assert fake_engine.queries[-1].channel is None and view.model.rowCount() == 3
    with qtbot.waitSignal(view.results_shown, timeout=5000):
        view.channel_buttons[1].click()  # "Said": searches again, only what is said
    assert fake_engine.queries[-1].channel == "speech" and view.channel() == "speech"
    assert [view.model.hit(n).channel for n in range(view.model.rowCount())] == ["speech"]
    assert "said" in view.query_box.placeholderText().lower()
    with qtbot.waitSignal(view.results_shown, timeout=5000):
        view.channel_buttons[2].click()
    assert fake_engine.queries[-1].channel == "text"
    with qtbot.waitSignal(view.results_shown, timeout=5000):
        view.set_example(next(iter(fake_engine.video_files)))  # a clip is no words: all channels
    assert fake_engine.queries[-1].channel is None and fake_engine.queries[-1].clip is not None


def test_the_library_counts_each_stage_and_shows_which_one_runs(qtbot, fake_engine, tmp_path: Path) -> None:
    folder, other = str(tmp_path / "videos"), str(tmp_path / "more")
    fake_engine.folder_paths += [folder, other]
    fake_engine.indexed = True
    first, second = (str(v) for v in fake_engine.video_files[:2])
    speech = {folder: {"done": 1, "pending": 1, "no_audio": 1, "failed": 1}, other: {"done": 3}}
    fake_engine.stages = [
        StageStatus("speech", True, 4, 1, 1, 1, (first,), ((second, "the audio stream is corrupt"),), speech),
        StageStatus("text", True, 2, 1, 0, 0, (first,), (), {folder: {"done": 2, "pending": 1}}),
    ]
    view = LibraryView(fake_engine)
    qtbot.addWidget(view)
    view.show()
    assert view.stages_label.text() == (
        "Speech: 4 transcribed · 1 waiting · 1 without sound · 1 failed      Screen text: 2 read · 1 waiting"
    )
    rows = {view.table.topLevelItem(n).data(0, PathRole): view.table.topLevelItem(n).text(6) for n in range(2)}
    assert rows == {  # each folder its own counts, which add up to the library's line
        folder: "Indexed · Speech: 1 transcribed, 1 waiting, 1 without sound, 1 failed"
        " · Screen text: 2 read, 1 waiting",
        other: "Indexed · Speech: 3 transcribed",
    }
    assert failed_rows(view.table) == {second: "Speech failed: the audio stream is corrupt"}
    assert view.retry_button.isVisibleTo(view)
    assert not view.videos.isVisibleTo(view)  # no folder selected: no list of its videos
    steps: list[str] = []
    view.runner.progress.connect(lambda f, m, eta: steps.append(view.steps.current))
    with qtbot.waitSignal(view.index_finished, timeout=5000):
        view.start_index()
        assert view.steps.isVisible() and "Step 1 of 3" in view.steps.text()
    assert steps[0] == "Pictures" and steps[-1] == "Screen text" and "Speech" in steps
    fake_engine.stages = [StageStatus("speech", False), StageStatus("text", False)]
    fake_engine.save_settings(fake_engine.settings().replace(speech=False, screen_text=False))
    view.refresh()
    assert view.stages_label.text() == "Speech: off      Screen text: off"
    view.start_index()
    assert not view.steps.isVisible()  # pictures alone: no steps to tell apart
    view.runner.wait()


def test_the_library_lists_a_folders_videos_with_their_speech_and_text(qtbot, fake_engine, tmp_path: Path) -> None:
    folder, other = tmp_path / "videos", tmp_path / "more"
    fake_engine.folder_paths += [str(folder), str(other)]
    fake_engine.indexed = True
    said, broken, silent, later = (str(folder / n) for n in ("talk.mp4", "sub/broken.mp4", "quiet.mp4", "new.mp4"))
    speech = {str(folder): {said: "done", broken: "failed", silent: "no_audio", later: "pending"}}
    speech[str(other)] = {str(other / "x.mp4"): "done"}
    text = {str(folder): {said: "pending", later: "pending", silent: "done"}}  # the broken file: no text stage
    fake_engine.stages = [
        StageStatus("speech", True, 2, 1, 1, 1, (later,), ((broken, "the audio stream is corrupt"),), {}, speech),
        StageStatus("text", False, 1, 2, 0, 0, (said, later), (), {}, text),
    ]
    view = LibraryView(fake_engine)
    qtbot.addWidget(view)
    view.show()
    rows = [view.table.topLevelItem(n) for n in range(view.table.topLevelItemCount())]
    view.table.setCurrentItem(next(item for item in rows if item.data(0, PathRole) == str(folder)))
    assert view.videos.isVisibleTo(view)
    assert view.videos.title.text() == "videos: speech and screen text, video by video"
    assert view.videos.rows() == {  # this folder's videos only, in path order; the text stage is switched off
        "new.mp4": ("Waiting", "Off"),
        "quiet.mp4": ("No sound", "Read"),
        str(Path("sub/broken.mp4")): ("Failed", "—"),
        "talk.mp4": ("Transcribed", "Off"),
    }
    failed = view.videos.list.topLevelItem(2)
    assert failed.text(1) == "Failed" and failed.toolTip(1) == "Speech failed: the audio stream is corrupt"
    view.table.clearSelection()
    assert not view.videos.isVisibleTo(view)


def test_settings_round_trip_the_speech_model_and_switches(qtbot, fake_engine, tmp_path: Path, monkeypatch) -> None:
    from desktop.dialogs.settings_dialog import SettingsDialog

    model = tmp_path / "my-whisper"
    model.mkdir()
    dialog = SettingsDialog(fake_engine, Path("/tmp/lib"))
    qtbot.addWidget(dialog)
    assert dialog.speech.isChecked() and dialog.speech_model.currentText() == "base"
    monkeypatch.setattr(QFileDialog, "getExistingDirectory", lambda *a: str(model))
    dialog.browse_speech.click()
    dialog.language.setCurrentText("German")
    dialog.screen_text.setChecked(False)
    dialog.accept()
    chosen = dialog.result_settings
    assert (chosen.speech_model, chosen.speech_language, chosen.speech, chosen.screen_text) == (
        str(model), "de", True, False
    )  # fmt: skip
    fake_engine.save_settings(chosen)
    again = SettingsDialog(fake_engine, Path("/tmp/lib"))
    qtbot.addWidget(again)
    assert again.speech_model.currentText() == str(model) and again.language.currentText() == "German"
    assert not again.screen_text.isChecked()
    again.speech.setChecked(False)
    assert not again.speech_model.isEnabled() and not again.browse_speech.isEnabled()
    again.speech.setChecked(True)
    again.speech_model.setCurrentText("  ")
    again.accept()
    assert again.result_settings is None and again.error.text().startswith("Speech model: ")


def test_switching_speech_on_in_settings_starts_transcribing(qtbot, fake_engine, tmp_path: Path) -> None:
    from desktop.main_window import MainWindow

    fake_engine.folder_paths.append(str(tmp_path / "videos"))
    fake_engine.indexed = True
    fake_engine.save_settings(fake_engine.settings().replace(speech=False))
    window = MainWindow(fake_engine)
    qtbot.addWidget(window)
    calls = len(fake_engine.index_calls)
    dialog = window.open_settings()
    dialog.theme.setCurrentIndex(dialog.theme.findData("light"))
    dialog.accept()  # nothing about speech changed: no indexing
    assert len(fake_engine.index_calls) == calls
    dialog = window.open_settings()
    dialog.speech.setChecked(True)
    with qtbot.waitSignal(window.library_view.index_finished, timeout=5000):
        dialog.accept()
    assert fake_engine.settings().speech and len(fake_engine.index_calls) == calls + 1


def test_words_that_arrive_after_the_player_closed_are_dropped(qtbot, fake_engine, videos) -> None:
    player = _held_back_player(qtbot, fake_engine, videos)
    player.close_video()
    fake_engine.words_gate.set()
    assert player.transcript.runner.wait(5000)
    qtbot.wait(50)  # the answer's signal is delivered, and dropped
    assert player.transcript.words is None and player.transcript.lines_view.count() == 0
