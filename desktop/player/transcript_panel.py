"""The transcript beside the player: what is said (and, marked, what is shown on screen), line by line.

The line being said is marked and kept in view as the video plays; clicking a line seeks there; the find
box keeps the lines that contain what is typed and marks it; the query's words are marked in every line, so
a hit found by speech shows where it was said. When there is nothing to list, the panel says why in the
app's words (``desktop.speech_text``). The words are read on a worker (``video_words``), never on the GUI
thread; a video opened while the previous one loads supersedes it. Export writes SRT, VTT or plain text
through the engine (atomically, with the umask's mode), on a worker too.
"""

from __future__ import annotations

import os
from pathlib import Path

from PySide6.QtCore import QModelIndex, QRect, QSettings, QSize, Qt, QTimer, Signal
from PySide6.QtGui import QColor, QFont, QFontMetrics, QPainter
from PySide6.QtWidgets import (
    QAbstractItemView,
    QCheckBox,
    QFileDialog,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QListWidget,
    QListWidgetItem,
    QMessageBox,
    QPushButton,
    QStyle,
    QStyledItemDelegate,
    QStyleOptionViewItem,
    QVBoxLayout,
    QWidget,
)

from desktop import theme
from desktop.engine_api import EngineApi
from desktop.highlight import (
    draw_html,
    find_mark,
    find_spans,
    marked_html,
    query_mark,
    query_terms,
    term_spans,
)
from desktop.jobs import JobRunner, describe_error
from desktop.models.results_model import clock
from desktop.player.transcript_lines import Line, line_at, lines_from
from desktop.speech_text import VideoWords, said_note, shown_note

LineRole = Qt.ItemDataRole.UserRole + 21
SHOWN_KEY = "player/transcript_shown_text"
FORMATS = {"srt": "SubRip subtitles (*.srt)", "vtt": "WebVTT subtitles (*.vtt)", "txt": "Plain text (*.txt)"}
SCROLL_PAUSE_MS = 4000  # after the user scrolls, the panel does not pull the current line back for this long


class LineDelegate(QStyledItemDelegate):
    """A line: its time (muted), an "on screen" tag for shown text, the words with their marks; the line
    being said has the accent bar and a tinted background."""

    PAD = 8

    def __init__(self, panel: TranscriptPanel) -> None:
        super().__init__(panel)
        self.panel = panel
        self._heights: dict[tuple[Line, int, bool], int] = {}

    def _html(self, line: Line) -> str:
        c = theme.colors()
        layers = [(term_spans(line.text, self.panel.terms), query_mark())]
        layers.append((find_spans(line.text, self.panel.find_text()), find_mark()))
        body = marked_html(line.text, layers)
        tag = ""
        if line.kind == "shown":
            tag = f'<span style="color:{c.accent}; font-size:small; font-weight:600">ON SCREEN</span>&nbsp; '
            body = f"<i>{body}</i>"
        time = f'<span style="color:{c.muted}">{clock(line.start)}</span>'
        return f'{time}&nbsp;&nbsp;{tag}<span style="color:{c.text}">{body}</span>'

    def _text_width(self, width: int) -> int:
        return max(40, width - 2 * self.PAD - 4)

    def sizeHint(self, option: QStyleOptionViewItem, index: QModelIndex) -> QSize:
        """The line's height at the list's width, measured with font metrics (in bold where words are marked:
        marks are bold, so they never need a line more than that) and kept per width: laying out rich text for
        every line of a three-hour transcript took seconds on the GUI thread; this takes milliseconds."""
        line: Line = index.data(LineRole)
        width = self.panel.lines_view.viewport().width()
        marked = bool(term_spans(line.text, self.panel.terms) or find_spans(line.text, self.panel.find_text()))
        key = (line, width, marked)
        if key not in self._heights:
            bold = QFont(option.font)
            bold.setBold(marked)
            tag = "ON SCREEN  " if line.kind == "shown" else ""
            text = f"{clock(line.start)}   {tag}{line.text}"
            box = QFontMetrics(bold).boundingRect(
                QRect(0, 0, self._text_width(width), 100000), int(Qt.TextFlag.TextWordWrap), text
            )
            self._heights[key] = box.height() + 2 * self.PAD - 2
        return QSize(width, self._heights[key])

    def forget_sizes(self) -> None:
        self._heights.clear()

    def paint(self, painter: QPainter, option: QStyleOptionViewItem, index: QModelIndex) -> None:
        c = theme.colors()
        painter.save()
        rect = option.rect
        if index.row() == self.panel.current_row:
            tint = QColor(c.accent)
            tint.setAlpha(40)
            painter.fillRect(rect, tint)
            painter.fillRect(rect.left(), rect.top() + 3, 3, rect.height() - 6, QColor(c.accent))
        elif option.state & QStyle.StateFlag.State_MouseOver:
            hover = QColor(c.card_border)
            hover.setAlpha(120)
            painter.fillRect(rect, hover)
        html = self._html(index.data(LineRole))
        draw_html(
            painter,
            html,
            option.font,
            rect.left() + self.PAD + 4,
            rect.top() + self.PAD - 1,
            self._text_width(rect.width()),
        )
        painter.restore()


class TranscriptPanel(QWidget):
    """``seek_requested(seconds)`` when a line is clicked; ``status(message)`` for the status bar."""

    seek_requested = Signal(float)
    status = Signal(str)
    words_loaded = Signal(object)  # VideoWords, for the subtitles

    def __init__(self, engine: EngineApi, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.engine = engine
        self.video: str | None = None
        self.words: VideoWords | None = None
        self.lines: list[Line] = []
        self.terms: tuple[str, ...] = ()
        self.current_row: int | None = None
        self._user_scrolled = QTimer(self)
        self._user_scrolled.setSingleShot(True)
        self._following = False  # the panel itself is scrolling (not the user)
        self.runner = JobRunner(self)
        self.export_runner = JobRunner(self)

        title = QLabel("Transcript")
        title.setObjectName("panelTitle")
        font = title.font()
        font.setBold(True)
        title.setFont(font)
        self.export_button = QPushButton("Export…")
        self.export_button.setToolTip("Save the transcript as SRT or VTT subtitles, or as plain text")
        self.export_button.clicked.connect(self.export_dialog)
        self.find_box = QLineEdit()
        self.find_box.setPlaceholderText("Find in transcript")
        self.find_box.setClearButtonEnabled(True)
        self.find_box.setToolTip("Keep the lines that contain these letters, and mark them")
        self.find_box.textChanged.connect(self._apply_find)
        self.find_box.returnPressed.connect(self._seek_first_match)
        self.shown_box = QCheckBox("On-screen text")
        self.shown_box.setToolTip("Also list the text seen on screen (slides, signs, titles), marked “on screen”")
        self.shown_box.setChecked(bool(QSettings().value(SHOWN_KEY, True, type=bool)))
        self.shown_box.toggled.connect(self._shown_toggled)
        self.count_label = QLabel("")
        self.count_label.setObjectName("muted")

        self.lines_view = QListWidget()
        self.lines_view.setObjectName("transcriptLines")
        self.lines_view.setItemDelegate(LineDelegate(self))
        self.lines_view.setVerticalScrollMode(QAbstractItemView.ScrollMode.ScrollPerPixel)
        self.lines_view.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.lines_view.setResizeMode(QListWidget.ResizeMode.Adjust)
        self.lines_view.setMouseTracking(True)
        self.lines_view.setLayoutMode(QListWidget.LayoutMode.Batched)  # a long transcript lays out in steps
        self.lines_view.setSelectionMode(QAbstractItemView.SelectionMode.NoSelection)
        self.lines_view.setCursor(Qt.CursorShape.PointingHandCursor)
        self.lines_view.itemClicked.connect(self._clicked)
        self.lines_view.verticalScrollBar().valueChanged.connect(self._scrolled)
        self.note = QLabel("")
        self.note.setObjectName("muted")
        self.note.setWordWrap(True)
        self.note.setAlignment(Qt.AlignmentFlag.AlignTop | Qt.AlignmentFlag.AlignLeft)

        head = QHBoxLayout()
        head.addWidget(title, 1)
        head.addWidget(self.export_button)
        options = QHBoxLayout()
        options.addWidget(self.shown_box)
        options.addStretch(1)
        options.addWidget(self.count_label)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(6)
        layout.addLayout(head)
        layout.addWidget(self.find_box)
        layout.addLayout(options)
        layout.addWidget(self.lines_view, 1)
        layout.addWidget(self.note)

        self.runner.finished.connect(self._on_words)
        self.runner.failed.connect(self._on_failed)
        self.export_runner.finished.connect(lambda out: self.status.emit(f"Transcript saved to {out}"))
        self.export_runner.failed.connect(
            lambda exc: QMessageBox.warning(self, "Transcript not saved", describe_error(exc))
        )
        self.export_runner.running_changed.connect(lambda _: self._update_buttons())
        self.clear()

    # -- loading ----------------------------------------------------------------------------------------

    def load(self, video: str, query_text: str = "") -> None:
        """Read ``video``'s words in the background (the list says so meanwhile); the query's words are marked."""
        self.terms = query_terms(query_text)
        waiting = self.words is not None and "pending" in (self.words.said_state, self.words.shown_state)
        if video == self.video and self.words is not None and not waiting:  # (a video waiting is asked again)
            self.lines_view.viewport().update()
            return
        self.video, self.words, self.lines, self.current_row = video, None, [], None
        self.lines_view.clear()
        self._set_note("Reading the transcript…")
        self._update_buttons()
        self.runner.start(lambda *, progress, cancel: (video, self.engine.video_words(video)))

    def clear(self) -> None:
        self.runner.cancel()
        self.video, self.words, self.lines, self.current_row = None, None, [], None
        self.lines_view.clear()
        self._set_note("")
        self.count_label.setText("")
        self._update_buttons()

    def loading(self) -> bool:
        return self.runner.running or self.export_runner.running

    def _on_words(self, answer: tuple[str, VideoWords]) -> None:
        video, words = answer
        if video != self.video:  # the player was closed (or moved on) while the words were read
            return
        self.words = words
        self._fill()
        self.words_loaded.emit(words)

    def _on_failed(self, exc: object) -> None:
        self.words = None
        self._set_note(f"The transcript cannot be read: {describe_error(exc)}")
        self._update_buttons()

    def _fill(self) -> None:
        words = self.words
        self.lines_view.clear()
        self.lines_view.itemDelegate().forget_sizes()
        self.current_row = None
        if words is None:
            return
        self.lines = lines_from(words.said, words.shown if self.shown_box.isChecked() else [])
        for line in self.lines:
            item = QListWidgetItem()
            item.setData(LineRole, line)
            item.setToolTip(f"{clock(line.start)} – {clock(line.end)} · click to play from here")
            self.lines_view.addItem(item)
        notes = [said_note(words)]
        if self.shown_box.isChecked() and words.said_state == "ok":
            notes.append(shown_note(words) if words.shown_state not in ("empty", "ok") else "")
        self._set_note(" ".join(n for n in notes if n))
        self._apply_find()
        self._update_buttons()

    def _shown_toggled(self, on: bool) -> None:
        QSettings().setValue(SHOWN_KEY, on)
        self._fill()

    def _set_note(self, text: str) -> None:
        self.note.setText(text)
        self.note.setVisible(bool(text))

    def _update_buttons(self) -> None:
        said = self.words is not None and bool(self.words.said)
        self.export_button.setEnabled(said and not self.export_runner.running)
        self.find_box.setEnabled(bool(self.lines))

    # -- following playback, seeking, finding -----------------------------------------------------------

    def set_position(self, seconds: float) -> None:
        """Mark the line being said at ``seconds`` (or the text shown then, where nothing is said) and keep it
        in view, unless the user scrolled away a moment ago or is finding."""
        row = line_at(self.lines, seconds, "said")
        if row is None:
            row = line_at(self.lines, seconds, "shown")
        if row == self.current_row:
            return
        self.current_row = row
        self.lines_view.viewport().update()
        if row is not None and not self._user_scrolled.isActive() and not self.find_text():
            self._following = True
            self.lines_view.scrollToItem(self.lines_view.item(row), QAbstractItemView.ScrollHint.PositionAtCenter)
            self._following = False

    def _scrolled(self, _value: int) -> None:
        if not self._following:
            self._user_scrolled.start(SCROLL_PAUSE_MS)

    def _clicked(self, item: QListWidgetItem) -> None:
        line: Line = item.data(LineRole)
        self._user_scrolled.stop()
        self.seek_requested.emit(line.start)

    def find_text(self) -> str:
        return self.find_box.text().strip()

    def matching_rows(self) -> list[int]:
        """Rows the find box keeps (every row when it is empty)."""
        typed = self.find_text()
        return [n for n, line in enumerate(self.lines) if not typed or find_spans(line.text, typed)]

    def _apply_find(self) -> None:
        keep = set(self.matching_rows())
        for n in range(self.lines_view.count()):
            self.lines_view.setRowHidden(n, n not in keep)
        typed = self.find_text()
        if typed and self.lines:
            self.count_label.setText(f"{len(keep)} line{'s' * (len(keep) != 1)}" if keep else "No line has it")
        else:
            self.count_label.setText("")
        self.lines_view.viewport().update()

    def _seek_first_match(self) -> None:
        rows = self.matching_rows()
        if self.find_text() and rows:
            self.seek_requested.emit(self.lines[rows[0]].start)

    # -- export -----------------------------------------------------------------------------------------

    def export_folder(self) -> Path:
        """Beside the video when that folder can be written, else the last export's folder, else home."""
        if self.video is not None:
            folder = Path(self.video).parent
            if folder.is_dir() and os.access(folder, os.W_OK):
                return folder
        last = Path(QSettings().value("player/export_dir", str(Path.home()), type=str))
        return last if last.is_dir() else Path.home()

    def export_dialog(self) -> None:
        if self.video is None:
            return
        if self.words is None or not self.words.said:
            why = said_note(self.words) if self.words is not None else "The transcript is still being read."
            QMessageBox.information(self, "No transcript to export", why or "Nothing was said in this video.")
            return
        suggested = str(self.export_folder() / f"{Path(self.video).stem}.srt")
        path, chosen = QFileDialog.getSaveFileName(self, "Export transcript", suggested, ";;".join(FORMATS.values()))
        if path:
            fmt = next((k for k, v in FORMATS.items() if v == chosen), None) or Path(path).suffix.lstrip(".").lower()
            QSettings().setValue("player/export_dir", str(Path(path).parent))
            self.export(Path(path), fmt if fmt in FORMATS else "srt")

    def export(self, path: Path, fmt: str) -> None:
        """Write the transcript of the open video to ``path`` as ``fmt`` (srt, vtt, txt) in the background."""
        if self.video is None:
            return
        if path.suffix.lower() != f".{fmt}":
            path = path.with_suffix(f".{fmt}")
        video = self.video
        self.export_runner.start(lambda *, progress, cancel: self.engine.export_transcript(video, path, fmt))
