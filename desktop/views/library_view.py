"""The library view: folders (added by dialog or drag and drop), their counts, indexing with progress, ETA,
cancel and resume, the files that failed and why, and folder watching that re-indexes after changes settle.

Indexing runs as a job (one at a time); adding a folder starts it. A cancelled run keeps what it finished,
so "Resume indexing" simply indexes again. The watcher is a second job that runs until switched off; each
settled change it reports starts an incremental run (or queues one behind the run in progress).
"""

from __future__ import annotations

import threading
from pathlib import Path

from PySide6.QtCore import QObject, QSettings, Signal
from PySide6.QtGui import QDragEnterEvent, QDropEvent
from PySide6.QtWidgets import (
    QCheckBox,
    QFileDialog,
    QFrame,
    QHBoxLayout,
    QLabel,
    QMessageBox,
    QProgressBar,
    QPushButton,
    QStackedWidget,
    QVBoxLayout,
    QWidget,
)

from desktop.engine_api import EngineApi, FolderStatus, IndexSummary
from desktop.jobs import JobRunner, describe_error, format_eta
from desktop.models.results_model import ThumbnailLoader
from desktop.problems import MODEL_DOWNLOAD, MODEL_INVALID, Problem, explain, model_label
from desktop.speech_text import StageStatus
from desktop.views.library_rows import POSTERS, FolderTable
from desktop.views.library_stages import StageSteps, folder_stage_text, stage_failures, stages_summary
from desktop.views.library_videos import FolderVideos
from desktop.views.widgets import MessagePage

WATCH_KEY = "library/watch"
MODEL_PROBLEMS = (MODEL_DOWNLOAD, MODEL_INVALID)
DEBOUNCE_S = 2.0


class _WatchRelay(QObject):
    changed = Signal()  # emitted on the watcher's thread, delivered queued on the GUI thread


class LibraryView(QWidget):
    """``status(message)`` for the status bar; ``library_changed`` after folders or the index changed."""

    status = Signal(str)
    library_changed = Signal()
    index_finished = Signal(object)  # IndexSummary
    model_failed = Signal(object)  # the exception: indexing ran into a model problem (the banner offers ways out)

    def __init__(self, engine: EngineApi, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.engine = engine
        self.setAcceptDrops(True)
        self.runner = JobRunner(self, background=True)
        self.watch_runner = JobRunner(self, background=True)
        self.folder_runner = JobRunner(self)
        self._watch_stop: threading.Event | None = None
        self._rerun = False
        self._resumable = False
        self._model_for_run: str | None = None
        self._model_problem: Problem | None = None  # the settings' model cannot index now (see ModelGuard)
        self.waiting_for_model = False  # indexing was asked for and waits for a usable model
        self._watch_relay = _WatchRelay(self)
        self._watch_relay.changed.connect(self._on_watch_change)

        title = QLabel("Library")
        title.setObjectName("sectionTitle")
        self.summary = QLabel("")
        self.summary.setObjectName("muted")
        self.stages_label = QLabel("")
        self.stages_label.setObjectName("muted")
        self.stages_label.setToolTip(
            "After its pictures, each video is transcribed (what is said) and read (text shown on screen). "
            "Search uses each part as soon as it is done."
        )
        self.stages_label.hide()
        self.stages: list[StageStatus] = []
        self.add_button = QPushButton("Add folder…")
        self.add_button.setObjectName("primary")
        self.add_button.clicked.connect(self.add_folder_dialog)
        self.remove_button = QPushButton("Remove")
        self.remove_button.setToolTip("Forget the selected folder (its files are not touched)")
        self.remove_button.clicked.connect(self.remove_selected)
        self.index_button = QPushButton("Index now")
        self.index_button.setToolTip("Index new and changed videos")
        self.index_button.clicked.connect(lambda: self.start_index())
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.setToolTip("Stop indexing; what is done is kept and you can resume later")
        self.cancel_button.clicked.connect(self.cancel_index)
        self.retry_button = QPushButton("Try failed files again")
        self.retry_button.setToolTip("Index the files that failed once more (after you fixed or replaced them)")
        self.retry_button.clicked.connect(self.retry_failed)
        self.retry_button.hide()

        self.watch_box = QCheckBox("Watch folders for changes")
        self.watch_box.setToolTip("Index new and changed files automatically, a few seconds after copying stops")
        self.watch_box.toggled.connect(self.set_watching)

        header = QHBoxLayout()
        texts = QVBoxLayout()
        texts.setSpacing(2)
        texts.addWidget(title)
        texts.addWidget(self.summary)
        texts.addWidget(self.stages_label)
        header.addLayout(texts, 1)
        for w in (self.watch_box, self.retry_button, self.remove_button, self.index_button, self.add_button):
            header.addWidget(w)

        self.thumbnails = ThumbnailLoader(engine, self)
        self.table = FolderTable(self.thumbnails)
        self.table.itemSelectionChanged.connect(self._update_buttons)
        self.videos = FolderVideos()  # the selected folder's videos, speech and screen text video by video
        self.table.itemSelectionChanged.connect(self._show_videos)

        self.empty = MessagePage()
        self.empty.show_message(
            "Add your first folder",
            "Drop a folder of videos here, or click “Add folder…”. Scenefind finds every video inside it "
            "(sub-folders too) and indexes them on this computer. Your files are never changed or uploaded.",
            [("Add folder…", self.add_folder_dialog)],
        )
        drop = QFrame()
        drop.setObjectName("dropZone")
        dl = QVBoxLayout(drop)
        dl.addWidget(self.empty)
        self.stack = QStackedWidget()
        self.stack.addWidget(drop)
        self.stack.addWidget(self.table)

        self.progress = QProgressBar()
        self.progress.setRange(0, 1000)
        self.progress.setTextVisible(False)
        self.progress_label = QLabel("")
        self.steps = StageSteps()
        self.eta_label = QLabel("")
        self.eta_label.setObjectName("muted")
        progress_row = QHBoxLayout()
        progress_row.addWidget(self.progress_label, 1)
        progress_row.addWidget(self.eta_label)
        progress_row.addWidget(self.cancel_button)
        self.progress_box = QWidget()
        pl = QVBoxLayout(self.progress_box)
        pl.setContentsMargins(0, 0, 0, 0)
        pl.addWidget(self.steps)
        pl.addLayout(progress_row)
        pl.addWidget(self.progress)
        self.progress_box.hide()

        layout = QVBoxLayout(self)
        layout.setContentsMargins(16, 14, 16, 12)
        layout.setSpacing(12)
        layout.addLayout(header)
        layout.addWidget(self.stack, 1)
        layout.addWidget(self.videos)
        layout.addWidget(self.progress_box)

        self.runner.progress.connect(self._on_progress)
        self.runner.finished.connect(self._on_indexed)
        self.runner.failed.connect(self._on_index_failed)
        self.runner.cancelled.connect(self._on_index_cancelled)
        self.runner.running_changed.connect(lambda _: self._update_buttons())
        self.folder_runner.finished.connect(self._on_folder_changed)
        self.folder_runner.failed.connect(self._on_folder_failed)
        self.watch_runner.failed.connect(self._on_watch_failed)
        self.refresh()
        if QSettings().value(WATCH_KEY, False, type=bool):
            self.watch_box.setChecked(True)

    # -- folders ----------------------------------------------------------------------------------------

    def refresh(self) -> None:
        """Re-read folder counts and failed files from the engine (cheap: catalog queries)."""
        try:
            folders = self.engine.folders()
            failed = self.engine.failed_files()
            posters = {f.path: self.engine.posters(f.path, POSTERS) for f in folders}
            self.stages = self.engine.stage_status()
        except Exception as exc:
            self.summary.setText(f"The library cannot be read: {describe_error(exc)}")
            return
        statuses = [self._status(f, folder_stage_text(self.stages, f.path)) for f in folders]
        pictures_failed = {path for path, _ in failed}  # its picture's reason says it all: not repeated per stage
        all_failed = failed + [(p, why) for p, why in stage_failures(self.stages) if p not in pictures_failed]
        self.table.set_rows(folders, statuses, all_failed, posters, self.selected_folder())
        summary = stages_summary(self.stages) if folders else ""
        self.stages_label.setText(summary)
        self.stages_label.setVisible(bool(summary))
        self.stack.setCurrentIndex(1 if folders else 0)
        videos = sum(f.videos for f in folders)
        indexed = sum(f.indexed for f in folders)
        model = model_label(self.engine.settings().model)
        text = f"{len(folders)} folder{'s' * (len(folders) != 1)} · {indexed} of {videos} videos indexed with {model}"
        if failed:
            text += f" · {len(failed)} could not be read"
        sounds = sum(f.no_video for f in folders)
        if sounds:
            text += f" · {sounds} sound file{'s' * (sounds != 1)} without a video stream"
        if self._model_problem is not None and any(f.pending or not f.videos for f in folders):
            text += " · indexing waits for the search model (see above)"
        self.summary.setText(text if folders else "No folders yet")
        self.retry_button.setVisible(bool(all_failed))
        self.table.headerItem().setToolTip(2, f"Videos indexed with {model}, the model searches use now")
        self._update_buttons()
        self._show_videos()

    def _show_videos(self) -> None:
        self.videos.show_folder(self.selected_folder(), self.stages)

    def _status(self, f: FolderStatus, stages: str = "") -> tuple[str, str]:
        """A folder's state in words, and its kind (``ok``, ``busy``, ``waiting``, ``failed``, ``none``); sound
        files (no video stream: not failures, kept for speech indexing) are said after it, then how far speech
        and screen text have got there (``folder_stage_text``)."""
        text, kind = self._video_status(f)
        if f.no_video:
            sounds = f"{f.no_video} sound file{'s' * (f.no_video != 1)} (no video)"
            text = f"{text} · {sounds}" if f.videos or kind == "busy" else sounds
        return (f"{text} · {stages}" if stages else text), kind

    def _video_status(self, f: FolderStatus) -> tuple[str, str]:
        if self.runner.running and (f.pending or not f.videos):
            return "Indexing…", "busy"
        if (f.pending or not f.videos) and self._model_problem is not None:  # (not scanned yet: that waits too)
            return "Waiting for the search model", "waiting"
        if not f.videos:
            return "No videos found yet", "none"
        if f.pending:
            return (f"{f.pending} not indexed yet" if f.indexed else "Not indexed yet"), "waiting"
        if f.failed:
            return ("Indexed, some could not be read" if f.indexed else "Could not be read"), "failed"
        return "Indexed", "ok"

    def selected_folder(self) -> str | None:
        return self.table.selected_folder()

    def add_folder_dialog(self) -> None:
        start = QSettings().value("library/last_dir", str(Path.home()), type=str)
        path = QFileDialog.getExistingDirectory(self, "Add a folder of videos", start)
        if path:
            QSettings().setValue("library/last_dir", str(Path(path).parent))
            self.add_folders([Path(path)])

    def add_folders(self, paths: list[Path]) -> None:
        """Add folders (in the background: the writer lock may wait for nothing, but the disk may) and index."""
        if self.runner.running:
            QMessageBox.information(
                self, "Indexing in progress", "Wait for indexing to finish, or cancel it, then add the folder."
            )
            return

        def add(*, progress, cancel) -> list[Path]:
            for p in paths:
                self.engine.add_folder(p)
            return paths

        self.folder_runner.start(add)

    def remove_selected(self) -> None:
        folder = self.selected_folder()
        if folder is None:
            return
        answer = QMessageBox.question(
            self,
            "Remove folder",
            f"Forget {folder}?\n\nIts videos leave the library and search. The files themselves are not touched.",
        )
        if answer != QMessageBox.StandardButton.Yes:
            return

        def remove(*, progress, cancel) -> list[Path]:
            self.engine.remove_folder(Path(folder))
            return []

        self.folder_runner.start(remove)

    def _on_folder_changed(self, added: list[Path]) -> None:
        self.refresh()
        self.library_changed.emit()
        if added:
            self.status.emit(f"Added {', '.join(p.name for p in added)}; indexing…")
            self.start_index()
        else:
            self.status.emit("Folder removed")
        if self.watch_box.isChecked():  # watch the new set of folders
            self.set_watching(False, remember=False)
            self.set_watching(True)

    def _on_folder_failed(self, exc: object) -> None:
        QMessageBox.warning(self, "Folder not changed", describe_error(exc))

    def dragEnterEvent(self, event: QDragEnterEvent) -> None:
        if any(Path(u.toLocalFile()).is_dir() for u in event.mimeData().urls() if u.isLocalFile()):
            event.acceptProposedAction()

    def dropEvent(self, event: QDropEvent) -> None:
        folders = [Path(u.toLocalFile()) for u in event.mimeData().urls() if u.isLocalFile()]
        folders = [f for f in folders if f.is_dir()]
        if folders:
            event.acceptProposedAction()
            self.add_folders(folders)

    # -- indexing ---------------------------------------------------------------------------------------

    def set_model_problem(self, problem: Problem | None) -> None:
        """The settings' model cannot index now (``problem``), or can again (None: indexing that waited goes)."""
        self._model_problem = problem
        if problem is None and self.waiting_for_model and not self.runner.running:
            self.start_index()
            return
        self.refresh()

    def start_index(self, model: str | None = None) -> None:
        """Index what is new or changed (with ``model``, or the settings' model); resumes a cancelled run.
        While the settings' model cannot be used, the request waits for it (the rows say so)."""
        if model is None and self._model_problem is not None:
            self.waiting_for_model = True
            self.refresh()
            self.status.emit(f"Indexing waits for the search model: {self._model_problem.title.lower()}")
            return
        self.waiting_for_model = False
        if self.runner.running:
            self._rerun = True
            return
        self._rerun = False
        self._model_for_run = model
        self.progress.setValue(0)
        self.progress_label.setText("Starting…" if model is None else f"Indexing with {model}…")
        settings = self.engine.settings()
        self.steps.set_steps(settings.speech, settings.screen_text)
        self.eta_label.setText("")
        self.progress_box.show()
        self.runner.start(self.engine.index, model=model)
        self.refresh()

    def cancel_index(self) -> None:
        self.runner.cancel()
        self.progress_label.setText("Stopping after the current video…")

    def retry_failed(self) -> None:
        try:
            count = self.engine.retry_failed()
        except Exception as exc:
            QMessageBox.warning(self, "Cannot retry", describe_error(exc))
            return
        self.status.emit(f"Trying {count} file{'s' * (count != 1)} again")
        self.start_index()

    def _on_progress(self, fraction: float, message: str, eta: float) -> None:
        self.progress.setValue(int(fraction * 1000))
        self.progress_label.setText(message)
        self.steps.set_current(message)
        self.eta_label.setText(format_eta(eta))

    def _on_indexed(self, summary: IndexSummary) -> None:
        self._resumable = False
        self.progress_box.hide()
        failed = len(summary.failed)
        text = f"Indexed {summary.indexed} video{'s' * (summary.indexed != 1)}"
        self.status.emit(text + (f"; {failed} could not be read (see the list)" if failed else ""))
        if summary.stages_not_run:
            self.status.emit(f"{text}. Not run: {'; '.join(summary.stages_not_run)}")
        self.refresh()
        self.library_changed.emit()
        self.index_finished.emit(summary)
        if self._rerun:
            self.start_index()

    def _on_index_failed(self, exc: object) -> None:
        self.progress_box.hide()
        problem = explain(exc)
        if problem.kind in MODEL_PROBLEMS and self._model_for_run is None:
            self._model_problem, self.waiting_for_model = problem, True  # the banner says it, with the ways out
            self.refresh()
            self.model_failed.emit(exc)
            self.status.emit(f"Indexing waits for the search model: {problem.title.lower()}")
            return
        self.refresh()
        QMessageBox.warning(self, "Indexing stopped", problem.text)
        self.status.emit(f"Indexing failed: {problem.text}")

    def _on_index_cancelled(self) -> None:
        self._resumable = True
        self.progress_box.hide()
        self.refresh()
        self.library_changed.emit()
        self.status.emit("Indexing stopped. Finished videos are kept; click “Resume indexing” to go on.")

    def _update_buttons(self) -> None:
        running = self.runner.running
        self.index_button.setText("Resume indexing" if self._resumable else "Index now")
        self.index_button.setEnabled(not running and self.table.topLevelItemCount() > 0)
        self.remove_button.setEnabled(not running and self.selected_folder() is not None)
        self.cancel_button.setEnabled(running)
        self.retry_button.setEnabled(not running)

    # -- watching ---------------------------------------------------------------------------------------

    def set_watching(self, on: bool, *, remember: bool = True) -> None:
        if remember:
            QSettings().setValue(WATCH_KEY, on)
        if self._watch_stop is not None:
            self._watch_stop.set()
            self._watch_stop = None
        if not on:
            return
        stop = threading.Event()
        self._watch_stop = stop

        def watch(*, progress, cancel) -> None:
            self.engine.watch(self._watch_relay.changed.emit, debounce_s=DEBOUNCE_S, stop=stop)

        self.watch_runner.start(watch)

    def _on_watch_change(self) -> None:
        self.status.emit("Folders changed; indexing the changes…")
        self.start_index()

    def _on_watch_failed(self, exc: object) -> None:
        self.watch_box.setChecked(False)
        self.status.emit(f"Folder watching stopped: {describe_error(exc)}")

    def shutdown(self) -> None:
        """Stop the watcher and cancel indexing (the window is closing)."""
        if self._watch_stop is not None:
            self._watch_stop.set()
        self.runner.cancel()
