"""The Training tab's data picker: the user's own captioned clips, or an official benchmark's annotations.

Why both: a user fine-tunes on their own descriptions (a CSV or JSON-lines file of video, caption and an
optional window) or on a public benchmark they downloaded (MSR-VTT, QVHighlights, ...), whose annotation file
comes in the dataset's own format and whose videos sit in a folder of their own. The picker only collects the
choice as a ``DataSource``; the tab reads it on a worker (``engine.train.data``), so a large file never freezes
the window. Which loaders exist comes from ``engine.datasets``, so a new loader shows up here by itself.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QComboBox,
    QFileDialog,
    QGridLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from engine.datasets import LOADERS, TASKS, guess_dataset

CAPTIONS = ""  # the format value of the user's own captioned-clips file
DATA_FILTER = "Captioned clips (*.csv *.tsv *.jsonl *.ndjson *.json);;All files (*)"
ANNOTATION_FILTER = "Annotation files (*.json *.jsonl *.csv *.tsv *.txt);;All files (*)"
DATASET_LABELS = {
    "msrvtt": "MSR-VTT",
    "msvd": "MSVD",
    "didemo": "DiDeMo",
    "qvhighlights": "QVHighlights",
    "charades_sta": "Charades-STA",
    "activitynet": "ActivityNet Captions",
}
_TASK_WORDS = {"retrieval": "whole-video captions", "highlights": "moments", "grounding": "moments"}


@dataclass(frozen=True)
class DataSource:
    """What to train on: a captions file (``dataset`` None), or an official annotation file and its videos."""

    path: Path
    dataset: str | None = None
    videos: Path | None = None

    def describe(self) -> str:
        if self.dataset is None:
            return self.path.name
        return f"{DATASET_LABELS.get(self.dataset, self.dataset)} · {self.path.name}"


class DataPicker(QWidget):
    """Format, file and (for a benchmark) its videos folder; ``chosen(DataSource)`` once the choice is complete."""

    chosen = Signal(object)  # DataSource

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.format = QComboBox()
        self.format.addItem("My captioned clips (CSV / JSON lines)", CAPTIONS)
        for name in LOADERS:
            label = DATASET_LABELS.get(name, name)
            self.format.addItem(f"{label}: official annotations", name)
            self.format.setItemData(
                self.format.count() - 1,
                f"The annotation file exactly as {label} publishes it ({_TASK_WORDS.get(TASKS[name], 'captions')})",
                Qt.ItemDataRole.ToolTipRole,
            )
        self.format.setToolTip("What kind of file holds the captions")
        self.path_edit = QLineEdit()
        self.path_edit.returnPressed.connect(self._typed)
        self.path_edit.editingFinished.connect(self._typed)
        self.browse_button = QPushButton("Browse…")
        self.browse_button.clicked.connect(self.browse)
        self.videos_label = QLabel("Videos")
        self.videos_edit = QLineEdit()
        self.videos_edit.setPlaceholderText("The folder holding the dataset's videos (searched by file name)")
        self.videos_edit.returnPressed.connect(self._typed)
        self.videos_edit.editingFinished.connect(self._typed)
        self.videos_button = QPushButton("Browse…")
        self.videos_button.clicked.connect(self.browse_videos)
        self.summary = QLabel("No data chosen")
        self.summary.setObjectName("muted")
        self.summary.setWordWrap(True)
        grid = QGridLayout()
        grid.setContentsMargins(0, 0, 0, 0)
        grid.addWidget(QLabel("Format"), 0, 0)
        grid.addWidget(self.format, 0, 1, 1, 2)
        grid.addWidget(QLabel("File"), 1, 0)
        grid.addWidget(self.path_edit, 1, 1)
        grid.addWidget(self.browse_button, 1, 2)
        grid.addWidget(self.videos_label, 2, 0)
        grid.addWidget(self.videos_edit, 2, 1)
        grid.addWidget(self.videos_button, 2, 2)
        grid.setColumnStretch(1, 1)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addLayout(grid)
        layout.addWidget(self.summary)
        self._last: DataSource | None = None
        self.format.currentIndexChanged.connect(self._format_changed)
        self._format_changed()

    # -- the choice ------------------------------------------------------------------------------------

    def dataset(self) -> str | None:
        """The chosen official dataset, or None for the user's own captions file."""
        return self.format.currentData() or None

    def set_dataset(self, dataset: str | None) -> None:
        self.format.setCurrentIndex(max(0, self.format.findData(dataset or CAPTIONS)))

    def path(self) -> Path | None:
        text = self.path_edit.text().strip()
        return Path(text).expanduser() if text else None

    def videos(self) -> Path | None:
        text = self.videos_edit.text().strip()
        return Path(text).expanduser() if text else None

    def source(self) -> DataSource | None:
        """The complete choice, or None (no file yet; a benchmark without its videos folder)."""
        path, dataset = self.path(), self.dataset()
        if path is None:
            return None
        if dataset is None:
            return DataSource(path)
        videos = self.videos()
        return DataSource(path, dataset, videos) if videos is not None else None

    def set_path(self, path: Path) -> None:
        """Choose a file (typed, browsed or scripted)."""
        self.path_edit.setText(str(path))
        self._typed()

    def switch_to_guessed_dataset(self) -> str | None:
        """After a captions file failed to read: if its name says which benchmark it is (``msrvtt_test.csv``),
        switch the format to that dataset and return its name (the user then picks the videos folder)."""
        path = self.path()
        guessed = guess_dataset(path) if path is not None and self.dataset() is None else None
        if guessed is not None:
            self.set_dataset(guessed)
        return guessed

    def set_summary(self, text: str, *, error: bool = False) -> None:
        """What was read (or why it could not be), under the fields."""
        self.summary.setText(text)
        name = "errorText" if error else "muted"
        if self.summary.objectName() != name:
            self.summary.setObjectName(name)
            self.summary.style().unpolish(self.summary)
            self.summary.style().polish(self.summary)

    def forget(self) -> None:
        """Read the same choice again the next time it is confirmed (after it failed to load)."""
        self._last = None

    def set_videos(self, folder: Path) -> None:
        self.videos_edit.setText(str(folder))
        self._typed()

    def set_source(self, source: DataSource) -> None:
        """Show ``source`` without announcing it (a restored run's data)."""
        self.blockSignals(True)
        self.set_dataset(source.dataset)
        self.path_edit.setText(str(source.path))
        self.videos_edit.setText(str(source.videos or ""))
        self._last = source
        self.blockSignals(False)

    def browse(self) -> None:
        dataset = self.dataset()
        title = "Training data" if dataset is None else f"{DATASET_LABELS.get(dataset, dataset)} annotation file"
        start = str(self.path() or "")
        name, _ = QFileDialog.getOpenFileName(self, title, start, DATA_FILTER if dataset is None else ANNOTATION_FILTER)
        if name:
            self.set_path(Path(name))

    def browse_videos(self) -> None:
        start = str(self.videos() or (self.path().parent if self.path() else ""))
        folder = QFileDialog.getExistingDirectory(self, "Folder with the dataset's videos", start)
        if folder:
            self.set_videos(Path(folder))

    # -- internals -------------------------------------------------------------------------------------

    def _format_changed(self) -> None:
        dataset = self.dataset()
        official = dataset is not None
        for widget in (self.videos_label, self.videos_edit, self.videos_button):
            widget.setVisible(official)
        if official:
            label = DATASET_LABELS.get(dataset, dataset)
            self.path_edit.setPlaceholderText(f"The {label} annotation file, as the dataset publishes it")
        else:
            self.path_edit.setPlaceholderText("CSV or JSON lines: video, caption[, start, end]")
        self.path_edit.setToolTip(
            "Header video,caption[,start,end]; video paths may be relative to the file"
            if not official
            else "The official annotation file; only the captions whose video is in the folder are used"
        )
        self._last = None
        self._typed()

    def _typed(self) -> None:
        source = self.source()
        if source is None:
            if self.path() is not None and self.dataset() is not None:
                self.set_summary("Now choose the folder that holds the dataset's videos")
            elif self.path() is None:
                self.set_summary("No data chosen")
            return
        if source != self._last:
            self._last = source
            self.chosen.emit(source)
