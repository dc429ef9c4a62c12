"""The selected folder's videos, one row each: how far speech and screen text have got with that video.

A folder row's counts ("Speech: 5 transcribed, 2 waiting, 1 without sound") answer "how far along is it?" but
not "which of my videos can I already find by what is said?". This list answers the second for the folder the
user selects. Its words are the folder row's words, and it is built from the same per-video states the counts
are summed from (``Catalog.stage_folder_states``), so the list and the counts cannot disagree. A failed video says why
in its tooltip; the reason is also shown under its folder in the table above.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from PySide6.QtGui import QColor
from PySide6.QtWidgets import QAbstractItemView, QHeaderView, QLabel, QTreeWidget, QTreeWidgetItem, QVBoxLayout, QWidget

from desktop import theme
from desktop.speech_text import StageStatus

MAX_ROWS = 1000  # a folder of thousands of videos lists its first ones (in path order) and says how many more
_WORDS = {
    "speech": {"done": "Transcribed", "no_audio": "No sound", "failed": "Failed", "pending": "Waiting"},
    "text": {"done": "Read", "no_audio": "No sound", "failed": "Failed", "pending": "Waiting"},
}
NOT_APPLICABLE = "—"  # the text stage on a sound file or a video whose pictures could not be read


def stage_word(stage: StageStatus, status: str | None) -> str:
    """A video's state in one stage, in the folder row's words; "Off" for work a switched-off stage left."""
    if status is None:
        return NOT_APPLICABLE
    if status == "pending" and not stage.enabled:
        return "Off"
    return _WORDS.get(stage.stage, _WORDS["speech"]).get(status, status)


class FolderVideos(QWidget):
    """A title and a list: video (relative to its folder), then one column per stage."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.title = QLabel("")
        self.title.setObjectName("muted")
        self.list = QTreeWidget()
        self.list.setRootIsDecorated(False)
        self.list.setUniformRowHeights(True)
        self.list.setSelectionMode(QAbstractItemView.SelectionMode.NoSelection)
        self.list.setMaximumHeight(200)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(4)
        layout.addWidget(self.title)
        layout.addWidget(self.list)
        self.folder: str | None = None
        self.hide()

    def show_folder(self, folder: str | None, stages: Sequence[StageStatus]) -> None:
        """List ``folder``'s videos with their state in each stage; hidden without a folder or stage states."""
        self.folder = folder
        paths = sorted({p for s in stages for p in s.videos.get(folder, {})}) if folder else []
        if folder is None or not paths:
            self.list.clear()
            self.hide()
            return
        self.list.clear()
        self.list.setHeaderLabels(["Video", *(s.name for s in stages)])
        head = self.list.header()
        head.setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)
        for col in range(1, len(stages) + 1):
            head.setSectionResizeMode(col, QHeaderView.ResizeMode.ResizeToContents)
        reasons = {s.stage: dict(s.failed_files) for s in stages}
        c = theme.colors()
        for path in paths[:MAX_ROWS]:
            item = QTreeWidgetItem([str(Path(path).relative_to(folder))])
            item.setToolTip(0, path)
            for col, s in enumerate(stages, start=1):
                status = s.videos.get(folder, {}).get(path)
                item.setText(col, stage_word(s, status))
                if status == "failed":
                    item.setForeground(col, QColor(c.error))
                    item.setToolTip(col, f"{s.name} failed: {reasons[s.stage].get(path) or 'unknown error'}")
                elif status != "done":
                    item.setForeground(col, QColor(c.muted))
            self.list.addTopLevelItem(item)
        more = len(paths) - MAX_ROWS
        name = Path(folder).name or folder
        self.title.setText(
            f"{name}: speech and screen text, video by video"
            + (f" (the first {MAX_ROWS} of {len(paths)})" if more > 0 else "")
        )
        self.show()

    def rows(self) -> dict[str, tuple[str, ...]]:
        """What the list shows: {video relative to its folder: (its word per stage)} (tests read it)."""
        out = {}
        for n in range(self.list.topLevelItemCount()):
            item = self.list.topLevelItem(n)
            out[item.text(0)] = tuple(item.text(col) for col in range(1, item.columnCount()))
        return out
