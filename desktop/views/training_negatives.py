"""The Training tab's review table of generated negatives: accept, reject or edit each one before training.

Why a table of its own: the LLM (or the rule-based swap) proposes several negatives per caption and
component, and a wrong one ("a dog" → "a puppy" is no negative) teaches the model the wrong thing, so the
user reviews them: untick or Reject drops a row, a double-click edits it in place, struck-through rows read
as dropped at a glance. ``accepted()`` returns the reviewed set in the engine's ``CaptionNegatives`` form,
which the tab writes into the run folder for the trainer. It never talks to the engine.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any

from PySide6.QtCore import QEvent, Qt, Signal
from PySide6.QtGui import QBrush, QFont, QPalette
from PySide6.QtWidgets import (
    QAbstractItemView,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QPushButton,
    QStackedWidget,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

USE, CAPTION, KIND, NEGATIVE, SOURCE = range(5)
_ITEM_ROLE = Qt.ItemDataRole.UserRole + 1  # (item index, kind, position) on the caption cell


EMPTY_TEXT = (
    "No negatives yet.\n\nPick data (step 1), then Generate negatives (step 2) to review them here. "
    "Training also works without them (like the standard loss)."
)


def _source(item: Any, kind: str, j: int) -> str:
    sources = item.sources.get(kind, [])
    return sources[j] if j < len(sources) else ""


class NegativesTable(QWidget):
    """One row per generated negative: caption, component, the negative (edit in place), its source.

    A row is accepted while its box is ticked; Accept/Reject act on the selected rows. ``accepted()`` is the
    reviewed set in ``CaptionNegatives`` form (every caption stays, with its positives and only the accepted,
    possibly edited, negatives); that is what training reads.
    """

    changed = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._items: list[Any] = []  # CaptionNegatives, as generated
        self._filling = False
        self.table = QTableWidget(0, 5)
        self.table.setHorizontalHeaderLabels(["Use", "Caption", "Component", "Negative (double-click to edit)", "By"])
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setEditTriggers(
            QAbstractItemView.EditTrigger.DoubleClicked
            | QAbstractItemView.EditTrigger.EditKeyPressed
            | QAbstractItemView.EditTrigger.AnyKeyPressed
        )
        self.table.verticalHeader().setVisible(False)
        self.table.setWordWrap(False)
        header = self.table.horizontalHeader()
        header.setSectionResizeMode(USE, QHeaderView.ResizeMode.ResizeToContents)
        header.setSectionResizeMode(CAPTION, QHeaderView.ResizeMode.Interactive)
        header.setSectionResizeMode(KIND, QHeaderView.ResizeMode.ResizeToContents)
        header.setSectionResizeMode(NEGATIVE, QHeaderView.ResizeMode.Stretch)
        header.setSectionResizeMode(SOURCE, QHeaderView.ResizeMode.ResizeToContents)
        self.table.setColumnWidth(CAPTION, 260)
        self.table.itemChanged.connect(self._item_changed)
        self.accept_button = QPushButton("Accept")
        self.reject_button = QPushButton("Reject")
        self.accept_all_button = QPushButton("Accept all")
        for button, state in ((self.accept_button, True), (self.reject_button, False)):
            button.clicked.connect(lambda _=False, s=state: self.set_selected(s))
            button.setToolTip("Applies to the selected rows")
        self.accept_all_button.clicked.connect(self.accept_all)
        self.count_label = QLabel("")
        self.count_label.setObjectName("muted")
        buttons = QHBoxLayout()
        buttons.setContentsMargins(0, 0, 0, 0)
        buttons.addWidget(self.count_label, 1)
        for button in (self.accept_button, self.reject_button, self.accept_all_button):
            buttons.addWidget(button)
        self.empty = QLabel(EMPTY_TEXT)
        self.empty.setObjectName("muted")
        self.empty.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.empty.setWordWrap(True)
        self.empty.setMargin(24)
        self.pages = QStackedWidget()
        self.pages.addWidget(self.empty)
        self.pages.addWidget(self.table)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.pages, 1)
        layout.addLayout(buttons)
        self._update_count()

    def changeEvent(self, event: QEvent) -> None:
        """A theme switch: rejected rows take the new theme's dim colour."""
        super().changeEvent(event)
        if event.type() in (QEvent.Type.PaletteChange, QEvent.Type.ApplicationPaletteChange):
            for row in range(self.table.rowCount()):
                self._style_row(row)

    def set_empty_text(self, text: str) -> None:
        """What the review area says while there is nothing to review (the next step to take)."""
        self.empty.setText(text)

    def set_items(self, items: Sequence[Any]) -> None:
        """Show ``items`` (``CaptionNegatives``), every negative accepted."""
        self._items = list(items)
        self._filling = True
        self.table.setRowCount(0)
        rows = [
            (i, kind, j, text, _source(item, kind, j))
            for i, item in enumerate(self._items)
            for kind, texts in item.negatives.items()
            for j, text in enumerate(texts)
        ]
        self.table.setRowCount(len(rows))
        for row, (i, kind, j, text, source) in enumerate(rows):
            use = QTableWidgetItem()
            use.setFlags(Qt.ItemFlag.ItemIsUserCheckable | Qt.ItemFlag.ItemIsEnabled | Qt.ItemFlag.ItemIsSelectable)
            use.setCheckState(Qt.CheckState.Checked)
            caption = self._fixed(self._items[i].caption)
            caption.setData(_ITEM_ROLE, (i, kind, j))
            caption.setToolTip(self._items[i].caption)
            negative = QTableWidgetItem(text)
            negative.setToolTip(text)
            for col, cell in ((USE, use), (CAPTION, caption), (KIND, self._fixed(kind)), (NEGATIVE, negative)):
                self.table.setItem(row, col, cell)
            self.table.setItem(row, SOURCE, self._fixed(source))
        self._filling = False
        self._update_count()
        self.changed.emit()

    def captions(self) -> list[str]:
        """The captions whose negatives are shown."""
        return [item.caption for item in self._items]

    def row_count(self) -> int:
        return self.table.rowCount()

    def is_accepted(self, row: int) -> bool:
        return self.table.item(row, USE).checkState() == Qt.CheckState.Checked

    def set_accepted(self, row: int, accepted: bool) -> None:
        self.table.item(row, USE).setCheckState(Qt.CheckState.Checked if accepted else Qt.CheckState.Unchecked)

    def set_selected(self, accepted: bool) -> None:
        for row in sorted({index.row() for index in self.table.selectedIndexes()}):
            self.set_accepted(row, accepted)

    def accept_all(self) -> None:
        for row in range(self.table.rowCount()):
            self.set_accepted(row, True)

    def edit_negative(self, row: int, text: str) -> None:
        """What an inline edit does (tests and scripted use)."""
        self.table.item(row, NEGATIVE).setText(text)

    def negative_text(self, row: int) -> str:
        return self.table.item(row, NEGATIVE).text()

    def counts(self) -> tuple[int, int]:
        rows = self.table.rowCount()
        return sum(self.is_accepted(r) for r in range(rows)), rows

    def accepted(self) -> list[Any]:
        """The reviewed ``CaptionNegatives``: edited texts, rejected rows left out; sources say "edited"."""
        kept: list[tuple[dict[str, list[str]], dict[str, list[str]]]] = [({}, {}) for _ in self._items]
        for row in range(self.table.rowCount()):
            text = self.negative_text(row).strip()
            if not self.is_accepted(row) or not text:
                continue
            i, kind, j = self.table.item(row, CAPTION).data(_ITEM_ROLE)
            original = self._items[i].negatives[kind][j]
            negatives, sources = kept[i]
            negatives.setdefault(kind, []).append(text)
            sources.setdefault(kind, []).append(self.table.item(row, SOURCE).text() if text == original else "edited")
        return [
            dataclasses.replace(item, negatives=negs, sources=srcs)
            for item, (negs, srcs) in zip(self._items, kept, strict=True)
        ]

    def _fixed(self, text: str) -> QTableWidgetItem:
        cell = QTableWidgetItem(text)
        cell.setFlags(Qt.ItemFlag.ItemIsEnabled | Qt.ItemFlag.ItemIsSelectable)
        return cell

    def _item_changed(self, cell: QTableWidgetItem) -> None:
        if self._filling:
            return
        row = cell.row()
        if cell.column() == NEGATIVE:
            i, kind, j = self.table.item(row, CAPTION).data(_ITEM_ROLE)
            edited = cell.text().strip() != self._items[i].negatives[kind][j]
            font = cell.font()
            font.setItalic(edited)
            self._filling = True
            cell.setFont(font)
            self._filling = False
        if cell.column() in (USE, NEGATIVE):
            self._style_row(row)
            self._update_count()
            self.changed.emit()

    def _style_row(self, row: int) -> None:
        """Rejected rows are struck through and dimmed, so the accepted set reads at a glance."""
        accepted = self.is_accepted(row)
        dim = self.palette().color(QPalette.ColorGroup.Disabled, QPalette.ColorRole.Text)
        self._filling = True
        for col in (CAPTION, KIND, NEGATIVE, SOURCE):
            cell = self.table.item(row, col)
            font = QFont(cell.font())
            font.setStrikeOut(not accepted)
            cell.setFont(font)
            cell.setForeground(QBrush() if accepted else QBrush(dim))
        self._filling = False

    def _update_count(self) -> None:
        accepted, total = self.counts()
        captions = len(self._items)
        self.count_label.setText(
            f"{accepted} of {total} negatives accepted, {captions} captions" if total else "No negatives yet"
        )
        self.pages.setCurrentWidget(self.table if total else self.empty)
        for button in (self.accept_button, self.reject_button, self.accept_all_button):
            button.setEnabled(total > 0)
