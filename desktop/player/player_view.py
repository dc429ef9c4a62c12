"""The player: a video opened at the moment's start, the similarity timeline, moment navigation, exports,
the transcript beside the picture and subtitles under it.

``QMediaPlayer`` loads asynchronously, so the seek to the moment's start waits for ``LoadedMedia``. The
moments of the open video (from the current results) are sorted by time; next/previous jump between them,
and "Loop moment" sends the playhead back to the moment's start when it passes its end. Exports run as jobs.
Subtitles sit in the black band of the video frame, under the picture, not painted over it: ``QVideoWidget``
is a native surface on most platforms, and a widget stacked on it is drawn underneath or flickers.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from PySide6.QtCore import QSettings, Qt, QUrl, Signal
from PySide6.QtMultimedia import QAudioOutput, QMediaPlayer
from PySide6.QtMultimediaWidgets import QVideoWidget
from PySide6.QtWidgets import (
    QCheckBox,
    QFileDialog,
    QFrame,
    QHBoxLayout,
    QLabel,
    QMenu,
    QMessageBox,
    QProgressBar,
    QPushButton,
    QSizePolicy,
    QSplitter,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from desktop.engine_api import EngineApi
from desktop.jobs import JobRunner, describe_error
from desktop.models.results_model import clock
from desktop.player.icons import glyph
from desktop.player.timeline import HeatLegend, TimelineStrip
from desktop.player.transcript_lines import subtitle_at
from desktop.player.transcript_panel import TranscriptPanel
from desktop.speech_text import VideoWords

SUBTITLES_KEY = "player/subtitles"
TRANSCRIPT_KEY = "player/transcript"


@dataclass
class Opened:
    """What the player shows: one video, its moments (sorted), which one is current, the curve."""

    video: str
    duration: float
    moments: list[tuple[float, float]]
    current: int
    times: Any = None
    relevance: Any = None
    query_text: str = ""
    all_moments: list[Any] = field(default_factory=list)  # every moment of the results, for marker export


class PlayerView(QWidget):
    """``status(message)`` for the window's status bar."""

    status = Signal(str)
    closed = Signal()

    def __init__(self, engine: EngineApi, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.engine = engine
        self.opened: Opened | None = None
        self._pending_seek: float | None = None
        self._autoplay = True
        self.export_runner = JobRunner(self)

        self.media = QMediaPlayer(self)
        self.audio = QAudioOutput(self)
        self.media.setAudioOutput(self.audio)
        self.video_widget = QVideoWidget(self)
        self.video_widget.setMinimumSize(320, 180)
        self.video_widget.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)
        self.media.setVideoOutput(self.video_widget)
        self.video_frame = QFrame()
        self.video_frame.setObjectName("videoFrame")
        self.video_frame.setStyleSheet("QFrame#videoFrame { background: #000000; border-radius: 8px; }")
        self.subtitle_label = QLabel("")
        self.subtitle_label.setObjectName("subtitles")
        self.subtitle_label.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.subtitle_label.setWordWrap(True)
        self.subtitle_label.setStyleSheet(
            "QLabel#subtitles { color: #ffffff; background: #000000; font-size: 15px; font-weight: 600;"
            " padding: 4px 12px 8px 12px; }"
        )
        self.subtitle_label.setTextFormat(Qt.TextFormat.PlainText)
        self.subtitle_label.setMinimumHeight(2 * self.subtitle_label.fontMetrics().height() + 16)
        self.subtitle_label.hide()
        self._segments: list[Any] = []
        vf = QVBoxLayout(self.video_frame)
        vf.setContentsMargins(0, 0, 0, 0)
        vf.setSpacing(0)
        vf.addWidget(self.video_widget, 1)
        vf.addWidget(self.subtitle_label)
        self.transcript = TranscriptPanel(engine)
        self.transcript.setMinimumWidth(220)
        self.transcript.seek_requested.connect(self._seek_from_transcript)
        self.transcript.status.connect(self.status)
        self.transcript.words_loaded.connect(self._on_words)
        self.body = QSplitter(Qt.Orientation.Horizontal)
        self.body.setObjectName("playerSplitter")
        self.body.setChildrenCollapsible(False)
        self.body.addWidget(self.video_frame)
        self.body.addWidget(self.transcript)
        self.body.setStretchFactor(0, 3)
        self.body.setStretchFactor(1, 2)

        self.title = QLabel("Nothing playing")
        self.title.setObjectName("sectionTitle")
        self.title.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.subtitle = QLabel("")
        self.subtitle.setObjectName("muted")
        close = QPushButton("Close")
        close.setToolTip("Close the player")
        close.clicked.connect(self.close_video)

        self.timeline = TimelineStrip(self)
        self.timeline.seek_requested.connect(self.seek)
        self.timeline.setToolTip("Brighter means closer to your search. Click to jump there.")
        self.legend = HeatLegend()

        self.prev_button = QPushButton(glyph("previous"), "")
        self.prev_button.setToolTip("Previous moment  ( [ )")
        self.prev_button.clicked.connect(self.previous_moment)
        self.play_button = QPushButton(glyph("play"), "")
        self.play_button.setToolTip("Play / pause  (Space)")
        self.play_button.clicked.connect(self.toggle_play)
        self.next_button = QPushButton(glyph("next"), "")
        self.next_button.setToolTip("Next moment  ( ] )")
        self.next_button.clicked.connect(self.next_moment)
        self.loop_box = QCheckBox("Loop")
        self.loop_box.setToolTip("Loop the moment: play the current moment over and over  (L)")
        self.loop_box.setChecked(bool(QSettings().value("player/loop", False, type=bool)))
        self.loop_box.toggled.connect(lambda on: QSettings().setValue("player/loop", on))
        self.time_label = QLabel("0:00 / 0:00")
        self.time_label.setObjectName("muted")
        self.subtitles_box = QCheckBox("Subtitles")
        self.subtitles_box.setToolTip("Show what is said under the picture  (C)")
        self.subtitles_box.setChecked(bool(QSettings().value(SUBTITLES_KEY, False, type=bool)))
        self.subtitles_box.toggled.connect(self._subtitles_toggled)
        self.transcript_button = QPushButton("Transcript")
        self.transcript_button.setCheckable(True)
        self.transcript_button.setToolTip("Show or hide what is said and shown, beside the picture  (T)")
        self.transcript_button.setChecked(bool(QSettings().value(TRANSCRIPT_KEY, True, type=bool)))
        self.transcript_button.toggled.connect(self._transcript_toggled)
        self.transcript.setVisible(self.transcript_button.isChecked())
        self.export_button = QToolButton()
        self.export_button.setText("Export")
        self.export_button.setPopupMode(QToolButton.ToolButtonPopupMode.InstantPopup)
        export_menu = QMenu(self.export_button)
        self.clip_button = export_menu.addAction("Clip of this moment (.mp4)…", self.export_clip_dialog)
        self.clip_button.setToolTip("Save the current moment as an .mp4 file")
        self.markers_button = export_menu.addAction("Moments as markers (EDL, FCPXML)…", self.export_markers_dialog)
        self.markers_button.setToolTip("Save the moments of this search as an EDL or FCPXML file for a video editor")
        self.transcript_action = export_menu.addAction("Transcript (SRT, VTT, text)…", self.transcript.export_dialog)
        self.transcript_action.setToolTip("Save what is said as subtitles or plain text")
        export_menu.setToolTipsVisible(True)
        self.export_button.setMenu(export_menu)
        self.export_button.setToolTip("Save this moment, the search's moments or the transcript")
        self.export_progress = QProgressBar()
        self.export_progress.setMaximumWidth(120)
        self.export_progress.setRange(0, 1000)
        self.export_progress.hide()

        head = QHBoxLayout()
        titles = QVBoxLayout()
        titles.setSpacing(2)
        titles.addWidget(self.title)
        titles.addWidget(self.subtitle)
        head.addLayout(titles, 1)
        head.addWidget(close, 0, Qt.AlignmentFlag.AlignTop)
        controls = QHBoxLayout()
        for w in (self.prev_button, self.play_button, self.next_button):
            w.setFixedWidth(44)  # (the row also holds the transcript's and the export's buttons)
            controls.addWidget(w)
        for w in (self.loop_box, self.subtitles_box, self.time_label):
            w.setMinimumWidth(w.sizeHint().width())  # never squashed into clipped words
        controls.addSpacing(8)
        controls.addWidget(self.time_label)
        controls.addSpacing(12)
        controls.addWidget(self.loop_box)
        controls.addWidget(self.subtitles_box)
        controls.addStretch(1)
        controls.addWidget(self.export_progress)
        controls.addWidget(self.transcript_button)
        controls.addWidget(self.export_button)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(12, 12, 12, 12)
        layout.setSpacing(8)
        layout.addLayout(head)
        layout.addWidget(self.body, 1)
        layout.addWidget(self.timeline)
        layout.addWidget(self.legend, 0, Qt.AlignmentFlag.AlignRight)
        layout.addLayout(controls)

        self.media.mediaStatusChanged.connect(self._on_status)
        self.media.positionChanged.connect(self._on_position)
        self.media.durationChanged.connect(lambda ms: self.timeline.set_duration(ms / 1000))
        self.media.playbackStateChanged.connect(self._on_state)
        self.media.errorOccurred.connect(self._on_error)
        self.export_runner.progress.connect(lambda f, m, eta: self.export_progress.setValue(int(f * 1000)))
        self.export_runner.finished.connect(self._on_exported)
        self.export_runner.failed.connect(self._on_export_failed)
        self.export_runner.cancelled.connect(lambda: self._export_done("Export cancelled"))
        self._update_buttons()

    # -- opening ----------------------------------------------------------------------------------------

    def open(self, opened: Opened, *, autoplay: bool = True) -> None:
        """Load ``opened.video`` and seek to its current moment's start (once the media has loaded)."""
        same = self.opened is not None and self.opened.video == opened.video
        self.opened = opened
        self._autoplay = autoplay
        self.timeline.set_data(opened.duration, opened.times, opened.relevance, opened.moments, opened.current)
        self.title.setText(Path(opened.video).name)
        self._update_subtitle()
        if not same:
            self._segments = []
            self._show_subtitle(0.0)
        self.transcript.load(opened.video, opened.query_text)
        start = self.current_range()[0]
        if same and self.media.mediaStatus() in (
            QMediaPlayer.MediaStatus.LoadedMedia,
            QMediaPlayer.MediaStatus.BufferedMedia,
            QMediaPlayer.MediaStatus.EndOfMedia,
        ):
            self.seek(start)
            if autoplay:
                self.media.play()
        else:
            self._pending_seek = start
            self.media.setSource(QUrl.fromLocalFile(opened.video))
        self.timeline.set_position(start)
        self._update_buttons()

    def close_video(self) -> None:
        self.media.stop()
        self.media.setSource(QUrl())
        self.opened = None
        self.timeline.set_data(0)
        self.title.setText("Nothing playing")
        self.subtitle.setText("")
        self.transcript.clear()
        self._segments = []
        self._show_subtitle(0.0)
        self._update_buttons()
        self.closed.emit()

    def current_range(self) -> tuple[float, float]:
        if self.opened is None:
            return 0.0, 0.0
        if 0 <= self.opened.current < len(self.opened.moments):
            return self.opened.moments[self.opened.current]
        return 0.0, self.opened.duration

    # -- playback ---------------------------------------------------------------------------------------

    def seek(self, seconds: float) -> None:
        self.media.setPosition(int(seconds * 1000))
        self.timeline.set_position(seconds)

    def position(self) -> float:
        return self.media.position() / 1000

    def toggle_play(self) -> None:
        if self.opened is None:
            return
        if self.media.playbackState() == QMediaPlayer.PlaybackState.PlayingState:
            self.media.pause()
        else:
            self.media.play()

    def toggle_loop(self) -> None:
        self.loop_box.toggle()

    def toggle_subtitles(self) -> None:
        self.subtitles_box.toggle()

    def set_subtitles(self, on: bool, *, remember: bool = True) -> None:
        """Subtitles on or off; ``remember=False`` leaves the user's saved choice alone (a screenshot run)."""
        self.subtitles_box.blockSignals(not remember)
        self.subtitles_box.setChecked(on)
        self.subtitles_box.blockSignals(False)
        self._show_subtitle(self.position())

    def toggle_transcript(self) -> None:
        self.transcript_button.toggle()

    # -- transcript and subtitles -----------------------------------------------------------------------

    def _on_words(self, words: VideoWords) -> None:
        self._segments = list(words.said)
        self._show_subtitle(self.position())

    def _seek_from_transcript(self, seconds: float) -> None:
        self.seek(seconds)
        self._show_subtitle(seconds)
        self.transcript.set_position(seconds)

    def _subtitles_toggled(self, on: bool) -> None:
        QSettings().setValue(SUBTITLES_KEY, on)
        self._show_subtitle(self.position())

    def _transcript_toggled(self, on: bool) -> None:
        QSettings().setValue(TRANSCRIPT_KEY, on)
        self.transcript.setVisible(on)

    def _show_subtitle(self, seconds: float) -> None:
        """The subtitle band: shown while subtitles are on for a video with a transcript, its text the words
        said at ``seconds`` (empty in pauses; the band keeps its height so the picture does not jump)."""
        on = self.subtitles_box.isChecked() and bool(self._segments)
        self.subtitle_label.setVisible(on)
        self.subtitle_label.setText(subtitle_at(self._segments, seconds) if on else "")

    def subtitle_text(self) -> str:
        """What the subtitle band shows now ("" when hidden)."""
        return "" if self.subtitle_label.isHidden() else self.subtitle_label.text()

    def next_moment(self) -> bool:
        """Jump to the first moment starting after the playhead (or after the current one)."""
        if self.opened is None:
            return False
        here = max(self.position(), self.current_range()[0])
        later = [n for n, (s, _) in enumerate(self.opened.moments) if s > here + 0.25]
        return self._go_to(later[0]) if later else self._say("No later moment in this video")

    def previous_moment(self) -> bool:
        """Jump to the moment before the current one (or the last one starting before the playhead)."""
        if self.opened is None:
            return False
        here = min(self.position(), self.current_range()[0]) if self.opened.current >= 0 else self.position()
        earlier = [n for n, (s, _) in enumerate(self.opened.moments) if s < here - 0.25]
        return self._go_to(earlier[-1]) if earlier else self._say("No earlier moment in this video")

    def _go_to(self, n: int) -> bool:
        assert self.opened is not None
        self.opened.current = n
        self.timeline.current = n
        self.seek(self.opened.moments[n][0])
        self._update_subtitle()
        return True

    def _say(self, text: str) -> bool:
        self.status.emit(text)
        return False

    def _on_status(self, status: QMediaPlayer.MediaStatus) -> None:
        if status == QMediaPlayer.MediaStatus.LoadedMedia and self._pending_seek is not None:
            self.seek(self._pending_seek)
            self._pending_seek = None
            if self._autoplay:
                self.media.play()
        elif status == QMediaPlayer.MediaStatus.InvalidMedia:
            self.status.emit(f"Cannot play {self.opened.video if self.opened else 'this file'}")

    def _on_position(self, ms: int) -> None:
        seconds = ms / 1000
        if self.opened is not None and self.loop_box.isChecked() and self.opened.current >= 0:
            start, end = self.current_range()
            if seconds >= end or seconds < start - 0.5:
                self.media.setPosition(int(start * 1000))
                seconds = start
        self.timeline.set_position(seconds)
        self.transcript.set_position(seconds)
        self._show_subtitle(seconds)
        total = self.media.duration() / 1000 or (self.opened.duration if self.opened else 0)
        self.time_label.setText(f"{clock(seconds)} / {clock(total)}")

    def _on_state(self, state: QMediaPlayer.PlaybackState) -> None:
        self.refresh_icons()

    def refresh_icons(self) -> None:
        """Repaint the glyphs (after a theme change, or play/pause)."""
        playing = self.media.playbackState() == QMediaPlayer.PlaybackState.PlayingState
        self.play_button.setIcon(glyph("pause" if playing else "play"))
        self.prev_button.setIcon(glyph("previous"))
        self.next_button.setIcon(glyph("next"))

    def _on_error(self, error: QMediaPlayer.Error, text: str) -> None:
        if error != QMediaPlayer.Error.NoError:
            self.status.emit(f"Playback problem: {text or error.name}")

    def _update_subtitle(self) -> None:
        if self.opened is None:
            return
        start, end = self.current_range()
        count = len(self.opened.moments)
        which = f"moment {self.opened.current + 1} of {count} · " if count and self.opened.current >= 0 else ""
        query = f" · “{self.opened.query_text}”" if self.opened.query_text else ""
        self.subtitle.setText(f"{which}{clock(start)} – {clock(end)}{query}")

    def _update_buttons(self) -> None:
        has = self.opened is not None
        for w in (self.prev_button, self.play_button, self.next_button, self.clip_button, self.loop_box):
            w.setEnabled(has)
        self.export_button.setEnabled(has)
        self.transcript_action.setEnabled(has)
        self.markers_button.setEnabled(has and bool(self.opened and self.opened.all_moments))

    # -- exports ----------------------------------------------------------------------------------------

    def export_clip_dialog(self) -> None:
        if self.opened is None:
            return
        start, end = self.current_range()
        from engine.media.export import clip_file_name  # OpenCV loads here, on the first export only

        suggested = str(self.export_folder() / clip_file_name(self.opened.video, start, end))
        path, _ = QFileDialog.getSaveFileName(self, "Export clip", suggested, "MP4 video (*.mp4)")
        if path:
            QSettings().setValue("player/export_dir", str(Path(path).parent))
            self.export_clip(Path(path))

    def export_folder(self) -> Path:
        """Where an export dialog opens: beside the video (where its clips belong) when that folder can be
        written, else the folder of the last export, else the home folder."""
        if self.opened is not None:
            folder = Path(self.opened.video).parent
            if folder.is_dir() and os.access(folder, os.W_OK):
                return folder
        last = Path(QSettings().value("player/export_dir", str(Path.home()), type=str))
        return last if last.is_dir() else Path.home()

    def export_clip(self, out: Path) -> None:
        """Export the current moment to ``out`` in the background; ``status`` says where it went."""
        if self.opened is None:
            return
        start, end = self.current_range()
        self.export_progress.setValue(0)
        self.export_progress.show()
        self.clip_button.setEnabled(False)
        self.export_runner.start(self.engine.export_clip, self.opened.video, start, end, out)

    def export_markers_dialog(self) -> None:
        if self.opened is None or not self.opened.all_moments:
            return
        path, chosen = QFileDialog.getSaveFileName(
            self,
            "Export moments as markers",
            str(self.export_folder() / "moments.edl"),
            "EDL, for Premiere / Resolve / Avid (*.edl);;Final Cut Pro XML (*.fcpxml)",
        )
        if path:
            suffix = ".fcpxml" if "fcpxml" in chosen else ".edl"
            self.export_markers(Path(path).with_suffix(suffix))

    def export_markers(self, path: Path) -> Path | None:
        if self.opened is None or not self.opened.all_moments:
            return None
        try:
            out = self.engine.export_markers(self.opened.all_moments, path, title=self.opened.query_text or "Scenefind")
        except Exception as exc:
            QMessageBox.warning(self, "Markers not written", describe_error(exc))
            return None
        self.status.emit(f"Saved {len(self.opened.all_moments)} markers to {out}")
        return out

    def _on_exported(self, out: object) -> None:
        self._export_done(f"Clip saved to {out}")

    def _on_export_failed(self, exc: object) -> None:
        self._export_done("Export failed")
        QMessageBox.warning(self, "Clip not exported", describe_error(exc))

    def _export_done(self, text: str) -> None:
        self.export_progress.hide()
        self._update_buttons()
        self.status.emit(text)
