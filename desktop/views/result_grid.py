"""The results page of the search view: thumbnail cards in a grid, with Play and More like this below.

Apart from the search view so the view keeps to queries, states and the player; the page only lays out the
cards and enables its buttons while a card is selected. The view connects what the buttons and cards do.
"""

from __future__ import annotations

from PySide6.QtCore import QModelIndex, Qt
from PySide6.QtWidgets import QAbstractItemView, QHBoxLayout, QLabel, QListView, QPushButton, QVBoxLayout, QWidget

from desktop.models.results_model import ResultsModel
from desktop.views.search_widgets import CARD, ResultDelegate


class ResultGrid(QWidget):
    """``grid`` shows ``model`` as cards; ``play_button`` and ``more_button`` act on its current card."""

    def __init__(self, model: ResultsModel, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.grid = QListView()
        self.grid.setViewMode(QListView.ViewMode.IconMode)
        self.grid.setResizeMode(QListView.ResizeMode.Adjust)
        self.grid.setMovement(QListView.Movement.Static)
        self.grid.setUniformItemSizes(True)
        self.grid.setGridSize(CARD)
        self.grid.setSpacing(0)
        self.grid.setMouseTracking(True)
        self.grid.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.grid.setVerticalScrollMode(QAbstractItemView.ScrollMode.ScrollPerPixel)
        self.grid.setModel(model)
        self.grid.setItemDelegate(ResultDelegate(self.grid))
        self.grid.setContextMenuPolicy(Qt.ContextMenuPolicy.CustomContextMenu)
        self.grid.setObjectName("resultGrid")  # the theme draws it borderless, on the window's colour

        actions = QHBoxLayout()
        self.play_button = QPushButton("Play")
        self.more_button = QPushButton("More like this")
        self.more_button.setToolTip("Search with the selected moment as the example")
        for b in (self.play_button, self.more_button):
            b.setEnabled(False)
            actions.addWidget(b)
        hint = QLabel("Double-click a result to watch it · right-click for more")
        hint.setObjectName("muted")
        actions.addSpacing(8)
        actions.addWidget(hint)
        actions.addStretch(1)
        self.grid.selectionModel().currentChanged.connect(self._selection_changed)

        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.grid, 1)
        layout.addLayout(actions)

    def _selection_changed(self, current: QModelIndex, _previous: QModelIndex) -> None:
        for b in (self.play_button, self.more_button):
            b.setEnabled(current.isValid())
