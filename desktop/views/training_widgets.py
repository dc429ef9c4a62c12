"""The Training tab's parts: the data picker, the negatives review table, and the hyperparameter form.

Why separate widgets: each holds one piece of the state the tab assembles into a run (a data file, the
accepted negatives, a ``TrainConfig``), can be tested alone, and none talks to the engine; the tab owns the
jobs. The form is built from a ``TrainConfig`` the engine hands over (its defaults are losses.md's), so no
default is written twice, and it never imports the trainer itself (that would load torch at window open).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QBrush, QDoubleValidator, QFont, QPalette
from PySide6.QtWidgets import (
    QAbstractItemView,
    QCheckBox,
    QComboBox,
    QDoubleSpinBox,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QPushButton,
    QSpinBox,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

DATA_FILTER = "Captioned clips (*.csv *.tsv *.jsonl *.ndjson *.json);;All files (*)"


class DataPicker(QWidget):
    """A file field and a Browse button; ``chosen(path)`` when the user picks or types a file."""

    chosen = Signal(object)  # Path

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.path_edit = QLineEdit()
        self.path_edit.setPlaceholderText("A CSV or JSON-lines file: video,caption[,start,end]")
        self.path_edit.returnPressed.connect(self._typed)
        browse = QPushButton("Browse…")
        browse.clicked.connect(self.browse)
        self.summary = QLabel("No data chosen")
        self.summary.setObjectName("muted")
        self.summary.setWordWrap(True)
        row = QHBoxLayout()
        row.setContentsMargins(0, 0, 0, 0)
        row.addWidget(self.path_edit, 1)
        row.addWidget(browse)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addLayout(row)
        layout.addWidget(self.summary)

    def browse(self) -> None:
        name, _ = QFileDialog.getOpenFileName(self, "Training data", self.path_edit.text(), DATA_FILTER)
        if name:
            self.set_path(Path(name))

    def set_path(self, path: Path) -> None:
        self.path_edit.setText(str(path))
        self.chosen.emit(Path(path))

    def path(self) -> Path | None:
        text = self.path_edit.text().strip()
        return Path(text).expanduser() if text else None

    def _typed(self) -> None:
        path = self.path()
        if path is not None:
            self.chosen.emit(path)


# --- negatives review ---------------------------------------------------------------------------------------------

USE, CAPTION, KIND, NEGATIVE, SOURCE = range(5)
_ITEM_ROLE = Qt.ItemDataRole.UserRole + 1  # (item index, kind, position) on the caption cell


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
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.table, 1)
        layout.addLayout(buttons)
        self._update_count()

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
        for button in (self.accept_button, self.reject_button, self.accept_all_button):
            button.setEnabled(total > 0)


# --- hyperparameters ----------------------------------------------------------------------------------------------

OBJECTIVE_LABELS = {
    "infonce": "InfoNCE (no hard negatives)",
    "component": "Component negatives",
    "component_ie": "Component negatives + importance",
    "ceclip": "CE-CLIP (ITC + CMR + IMC)",
    "s3ma": "S3MA (concept bank)",
    "emcl": "EMCL-Net",
}
# Loss settings and the objectives they belong to (the others are hidden while they do not apply).
LOSS_FIELDS: dict[str, tuple[str, tuple[str, ...]]] = {
    "lam_ie": ("λ_ie (importance loss)", ("component_ie",)),
    "lam_cmr": ("λ_cmr", ("ceclip",)),
    "lam_imc": ("λ_imc", ("ceclip",)),
    "imc": ("IMC form", ("ceclip",)),
    "s3ma_alpha": ("α (S3MA)", ("s3ma",)),
    "s3ma_beta": ("β (S3MA)", ("s3ma",)),
    "s3ma_k": ("concepts per clip (S3MA)", ("s3ma",)),
    "emcl_k": ("K (EMCL bases)", ("emcl",)),
}
IMC_FORMS = ("label0", "label1", "head")
GENERAL_FIELDS: dict[str, str] = {
    "epochs": "Epochs",
    "batch_size": "Batch size",
    "lr": "Learning rate (towers)",
    "head_lr": "Learning rate (heads)",
    "weight_decay": "Weight decay",
    "n_frames": "Frames per clip",
    "val_fraction": "Validation share",
    "patience": "Early-stop patience",
    "heads_only": "Train the heads only",
}


class HyperparamForm(QWidget):
    """Objective, schedule and loss weights, built from a ``TrainConfig``'s values (losses.md defaults)."""

    changed = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._defaults: Any = None
        self._editors: dict[str, QWidget] = {}
        self.form = QFormLayout(self)
        self.form.setContentsMargins(0, 0, 0, 0)
        self.form.setFieldGrowthPolicy(QFormLayout.FieldGrowthPolicy.ExpandingFieldsGrow)
        self.objective = QComboBox()
        for name, label in OBJECTIVE_LABELS.items():
            self.objective.addItem(label, name)
        self.objective.currentIndexChanged.connect(self._objective_changed)
        self.form.addRow("Loss", self.objective)
        self.reset_button = QPushButton("Reset to defaults")
        self.reset_button.clicked.connect(self.reset)
        self.setEnabled(False)  # until the defaults arrive

    def set_defaults(self, config: Any) -> None:
        """Build the editors on first call; fill them with ``config``'s values."""
        first = self._defaults is None
        self._defaults = config
        if first:
            for name, label in GENERAL_FIELDS.items():
                self._add(name, label, getattr(config, name))
            for name, (label, _) in LOSS_FIELDS.items():
                self._add(name, label, getattr(config, name))
            self.form.addRow("", self.reset_button)
        self.reset()
        self.setEnabled(True)

    def has_defaults(self) -> bool:
        return self._defaults is not None

    def reset(self) -> None:
        if self._defaults is None:
            return
        self.set_values(dataclasses.asdict(self._defaults))

    def set_values(self, values: dict[str, Any]) -> None:
        objective = values.get("objective")
        if objective is not None:
            self.objective.setCurrentIndex(max(0, self.objective.findData(objective)))
        for name, editor in self._editors.items():
            if name in values:
                self._set(editor, values[name])
        self._objective_changed()

    def values(self) -> dict[str, Any]:
        out: dict[str, Any] = {"objective": self.objective.currentData()}
        for name, editor in self._editors.items():
            out[name] = self._get(name, editor)
        return out

    def config(self, **paths: Any) -> Any:
        """The defaults with the form's values and ``paths`` (data, negatives, out, resume...) applied."""
        if self._defaults is None:
            raise RuntimeError("the training defaults have not loaded yet")
        return dataclasses.replace(self._defaults, **self.values(), **paths)

    def editor(self, name: str) -> QWidget:
        return self._editors[name]

    def visible_fields(self) -> list[str]:
        return [n for n in self._editors if self.form.isRowVisible(self._editors[n])]

    def _add(self, name: str, label: str, value: Any) -> None:
        editor: QWidget
        if isinstance(value, bool):
            editor = QCheckBox()
            editor.toggled.connect(self.changed)
        elif name == "imc":
            editor = QComboBox()
            editor.addItems(list(IMC_FORMS))
            editor.setToolTip("label0 is the recommended form (losses.md)")
            editor.currentIndexChanged.connect(self.changed)
        elif isinstance(value, int):
            editor = QSpinBox()
            editor.setRange(0 if name == "patience" else 1, 100_000)
            editor.valueChanged.connect(self.changed)
        elif name in ("lr", "head_lr"):
            editor = QLineEdit()
            editor.setValidator(QDoubleValidator(1e-9, 1.0, 10))
            editor.textChanged.connect(self.changed)
        else:
            editor = QDoubleSpinBox()
            editor.setDecimals(3)
            editor.setSingleStep(0.05)
            editor.setRange(0.0, 0.9 if name == "val_fraction" else 100.0)
            editor.valueChanged.connect(self.changed)
        self._editors[name] = editor
        self.form.addRow(label, editor)

    @staticmethod
    def _set(editor: QWidget, value: Any) -> None:
        if isinstance(editor, QCheckBox):
            editor.setChecked(bool(value))
        elif isinstance(editor, QComboBox):
            editor.setCurrentIndex(max(0, editor.findText(str(value))))
        elif isinstance(editor, QSpinBox):
            editor.setValue(int(value))
        elif isinstance(editor, QDoubleSpinBox):
            editor.setValue(float(value))
        elif isinstance(editor, QLineEdit):
            editor.setText(f"{float(value):g}")

    def _get(self, name: str, editor: QWidget) -> Any:
        if isinstance(editor, QCheckBox):
            return editor.isChecked()
        if isinstance(editor, QComboBox):
            return editor.currentText()
        if isinstance(editor, QSpinBox):
            return editor.value()
        if isinstance(editor, QDoubleSpinBox):
            return editor.value()
        text = editor.text().strip() if isinstance(editor, QLineEdit) else ""
        try:
            return float(text)
        except ValueError:
            return float(getattr(self._defaults, name))

    def _objective_changed(self) -> None:
        objective = self.objective.currentData()
        for name, (_, objectives) in LOSS_FIELDS.items():
            if name in self._editors:
                self.form.setRowVisible(self._editors[name], objective in objectives)
        self.changed.emit()
