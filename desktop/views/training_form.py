"""The Training tab's hyperparameter form: the loss (objective), its weights, and the schedule.

Why it is built from a ``TrainConfig``: the engine hands over its defaults (the loss papers', through the
trainer), so no default is written twice and the form never imports the trainer (torch would load at window
open). The defaults arrive from a worker a moment after the tab is first shown, so until then the form says
it is loading (and why it failed, with Retry). Every text here is for a user who has the app, not our design
notes: a loss is described by what it teaches (and the paper it follows), each weight's tooltip says what it
changes and its default; the weights of other losses are hidden, and rarely changed settings (learning
rates, schedule details) sit behind "Advanced", so the form's first view fits a laptop screen.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QDoubleValidator
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDoubleSpinBox,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QProgressBar,
    QPushButton,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

OBJECTIVES: dict[str, tuple[str, str]] = {  # name -> (label, what it does, in a user's words)
    "infonce": (
        "Standard (no hard negatives)",
        "Matches each clip with its own caption against the other clips of the batch (CLIP's InfoNCE). "
        "The baseline; it does not use the negatives of step 2.",
    ),
    "component": (
        "Component negatives",
        "Also teaches the model to reject captions that get one part wrong: the subject, the action, the "
        "object, a detail, or who has what. Uses the negatives of step 2.",
    ),
    "component_ie": (
        "Component negatives + importance",
        "Like component negatives, and also learns which kind of mistake is hardest to spot for each caption "
        "and weighs it more. Uses the negatives of step 2.",
    ),
    "ceclip": (
        "CE-CLIP (hard negatives, ranking)",
        "After the CE-CLIP paper: hard negatives in the matching, plus a ranking loss (a caption must beat its "
        "altered versions by a margin) and a loss that keeps captions apart. Uses the negatives of step 2.",
    ),
    "s3ma": (
        "Shared concepts (S3MA)",
        "After the S3MA paper: clips and captions are described by a shared set of concepts, so search can "
        "say which concepts a hit matched. Does not use the negatives.",
    ),
    "emcl": (
        "Compact features (EMCL-Net)",
        "After the EMCL-Net paper: clip and caption features are drawn towards a few shared bases, which "
        "makes them more compact. Does not use the negatives.",
    ),
}
USES_NEGATIVES = frozenset({"component", "component_ie", "ceclip"})
IMC_FORMS = {  # value -> label
    "label0": "label0 (2024-01-31 form, recommended)",
    "head": "head (the released code)",
    "label1": "label1 (2023-06-26 form)",
}
DEVICES = ("auto", "cpu", "cuda", "mps")
_NUMBER_WIDTH = 120


@dataclass(frozen=True)
class Field:
    label: str
    tip: str  # "{default}" is replaced by the engine's default value
    objectives: tuple[str, ...] = ()  # shown only for these losses (empty: always)
    advanced: bool = False


FIELDS: dict[str, Field] = {
    # the chosen loss's weights
    "lam_ie": Field("Importance weight", "How much the learned importance of each mistake counts.", ("component_ie",)),
    "relation_negatives": Field(
        "Relation swaps",
        "Also use negatives that keep every word but swap who has what (two nouns, two details, a path's start "
        "and end): the ones that teach relations.",
        ("component", "component_ie"),
    ),
    "time_reversal": Field(
        "Reversed-clip weight",
        "How much a clip played backwards counts as wrong for a caption that names a path (\"from A to B\"): "
        "teaches the direction of motion. 0 turns it off.",
        advanced=True,
    ),
    "lam_cmr": Field("Ranking weight", "How much the ranking loss counts (beat altered captions).", ("ceclip",)),
    "lam_imc": Field("Caption separation weight", "How much the loss that keeps captions apart counts.", ("ceclip",)),
    "imc": Field(
        "Caption separation form",
        "Which of CE-CLIP's published versions of that loss to use; label0 is the recommended one.",
        ("ceclip",),
    ),
    "s3ma_alpha": Field("Caption–concept weight", "How strongly captions are tied to the shared concepts.", ("s3ma",)),
    "s3ma_beta": Field("Clip–concept weight", "How strongly clips are tied to the shared concepts.", ("s3ma",)),
    "s3ma_k": Field("Concepts per item", "How many concepts describe one clip or caption.", ("s3ma",)),
    "emcl_k": Field("Shared bases", "How many bases the features are drawn towards (EMCL-Net uses 32).", ("emcl",)),
    # schedule
    "epochs": Field("Epochs", "Passes over the training clips; every epoch ends in a checkpoint you can resume from."),
    "batch_size": Field("Batch size", "Clips per step: more gives more in-batch negatives and needs more memory."),
    "val_fraction": Field(
        "Validation share",
        "Share of the videos held out to measure how well search works after each epoch (split by video). 0: no "
        "validation, so no early stop and no best model.",
    ),
    "device": Field("Device", "auto picks a GPU when there is one, else the CPU."),
    "heads_only": Field("Train the heads only", "Freeze both towers: fast and light; learns less."),
    # advanced
    "lr": Field("Learning rate (towers)", "Of the pretrained towers: small, to keep what they know.", advanced=True),
    "head_lr": Field("Learning rate (heads)", "Of the new parts: temporal head, concepts, importance.", advanced=True),
    "weight_decay": Field("Weight decay", "AdamW weight decay (not applied to biases and norms).", advanced=True),
    "n_frames": Field("Frames per clip", "Frames sampled evenly from each clip (or its window).", advanced=True),
    "patience": Field("Early-stop patience", "Stop after this many epochs with no gain; 0 = never.", advanced=True),
    "grad_accum": Field("Gradient accumulation", "Micro-batches per optimiser step.", advanced=True),
    "warmup": Field("Warm-up share", "Share of all steps spent warming the learning rate up.", advanced=True),
    "max_grad_norm": Field("Gradient clip", "Largest gradient norm; 0 = no clipping.", advanced=True),
    "freeze_vision": Field("Freeze the image tower", "Train everything but the image tower.", advanced=True),
    "freeze_text": Field("Freeze the text tower", "Train everything but the text tower.", advanced=True),
    "temporal_layers": Field("Temporal layers", "Transformer layers of the temporal head.", advanced=True),
    "seed": Field("Seed", "Seed of the split, the order of the clips and the negatives drawn.", advanced=True),
    "keep_last": Field("Checkpoints kept", "Epoch checkpoints kept besides best/.", advanced=True),
}  # fmt: skip


class HyperparamForm(QWidget):
    """Objective, schedule and loss weights, built from a ``TrainConfig``'s values (the engine's defaults)."""

    changed = Signal()
    retry_requested = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._defaults: Any = None
        self._editors: dict[str, QWidget] = {}
        # loading state, until the defaults arrive
        self.loading = QWidget()
        self.loading_label = QLabel("Loading the training settings…")
        self.loading_label.setObjectName("muted")
        self.loading_label.setWordWrap(True)
        self.loading_bar = QProgressBar()
        self.loading_bar.setRange(0, 0)  # busy
        self.loading_bar.setTextVisible(False)
        self.retry_button = QPushButton("Retry")
        self.retry_button.hide()
        self.retry_button.clicked.connect(self.retry_requested)
        loading = QVBoxLayout(self.loading)
        loading.setContentsMargins(0, 0, 0, 0)
        loading.addWidget(self.loading_label)
        loading.addWidget(self.loading_bar)
        loading.addWidget(self.retry_button)
        # the form itself
        self.body = QWidget()
        self.form = QFormLayout(self.body)
        self.form.setContentsMargins(0, 0, 0, 0)
        self.form.setFieldGrowthPolicy(QFormLayout.FieldGrowthPolicy.ExpandingFieldsGrow)
        self.form.setLabelAlignment(Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter)
        self.form.setVerticalSpacing(6)
        self.objective = QComboBox()
        for name, (label, text) in OBJECTIVES.items():
            self.objective.addItem(label, name)
            self.objective.setItemData(self.objective.count() - 1, text, Qt.ItemDataRole.ToolTipRole)
        self.objective.currentIndexChanged.connect(self._objective_changed)
        self.objective_text = QLabel("")
        self.objective_text.setObjectName("muted")
        self.objective_text.setWordWrap(True)
        self.base_model = QLabel("")
        self.base_model.setObjectName("muted")
        self.base_model.setToolTip("The model fine-tuning starts from: the library's model (change it in Settings)")
        self.form.addRow("Loss", self.objective)
        self.form.addRow(self.objective_text)  # the full width: a sentence, not a field
        self.form.addRow("Base model", self.base_model)
        self.advanced_button = QPushButton("Show advanced settings")
        self.advanced_button.setCheckable(True)
        self.advanced_button.toggled.connect(self._update_rows)
        self.reset_button = QPushButton("Reset to defaults")
        self.reset_button.setToolTip("Every setting back to its default")
        self.reset_button.clicked.connect(self.reset)
        self.body.hide()
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.loading)
        layout.addWidget(self.body)

    # -- defaults --------------------------------------------------------------------------------------

    def set_loading(self) -> None:
        self.loading_label.setText("Loading the training settings…")
        self.loading_label.setObjectName("muted")
        self._restyle(self.loading_label)
        self.loading_bar.show()
        self.retry_button.hide()

    def set_failed(self, text: str) -> None:
        """The defaults could not load (e.g. torch missing): say why; Retry asks again."""
        self.loading_label.setText(f"Cannot load the training settings: {text}")
        self.loading_label.setObjectName("errorText")
        self._restyle(self.loading_label)
        self.loading_bar.hide()
        self.retry_button.show()

    def is_loading(self) -> bool:
        return self._defaults is None

    def set_defaults(self, config: Any) -> None:
        """Build the editors on first call; fill them with ``config``'s values."""
        first = self._defaults is None
        self._defaults = config
        if first:
            for name, spec in FIELDS.items():
                if hasattr(config, name) and not spec.advanced:
                    self._add(name, spec, getattr(config, name))
            buttons = QHBoxLayout()
            buttons.addWidget(self.advanced_button)
            buttons.addStretch(1)
            buttons.addWidget(self.reset_button)
            self.form.addRow(buttons)
            for name, spec in FIELDS.items():
                if hasattr(config, name) and spec.advanced:
                    self._add(name, spec, getattr(config, name))
            self.loading.hide()
            self.body.show()
        self.base_model.setText(_elide(str(config.model), 48))
        self.base_model.setToolTip(
            f"{config.model}\nThe model fine-tuning starts from: the library's model (change it in Settings)"
        )
        self.reset()

    def has_defaults(self) -> bool:
        return self._defaults is not None

    def reset(self) -> None:
        if self._defaults is None:
            return
        self.set_values(dataclasses.asdict(self._defaults))

    # -- values ----------------------------------------------------------------------------------------

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

    def uses_negatives(self) -> bool:
        return self.objective.currentData() in USES_NEGATIVES

    def editor(self, name: str) -> QWidget:
        return self._editors[name]

    def visible_fields(self) -> list[str]:
        return [n for n in self._editors if self.form.isRowVisible(self._editors[n])]

    # -- internals -------------------------------------------------------------------------------------

    def _add(self, name: str, spec: Field, value: Any) -> None:
        editor: QWidget
        if isinstance(value, bool):
            editor = QCheckBox()
            editor.toggled.connect(self.changed)
        elif name == "imc":
            editor = QComboBox()
            for form, label in IMC_FORMS.items():
                editor.addItem(label, form)
            editor.currentIndexChanged.connect(self.changed)
        elif name == "device":
            editor = QComboBox()
            editor.setFixedWidth(_NUMBER_WIDTH)
            for device in dict.fromkeys((*DEVICES, str(value))):
                editor.addItem(device, device)
            editor.currentIndexChanged.connect(self.changed)
        elif isinstance(value, int):
            editor = QSpinBox()
            editor.setFixedWidth(_NUMBER_WIDTH)
            editor.setRange(0 if name in ("patience", "seed") else 1, 100_000)
            editor.valueChanged.connect(self.changed)
        elif name in ("lr", "head_lr"):
            editor = QLineEdit()
            editor.setValidator(QDoubleValidator(1e-9, 1.0, 10))
            editor.setFixedWidth(_NUMBER_WIDTH)  # as wide as the spin boxes beside it
            editor.textChanged.connect(self.changed)
        else:
            editor = QDoubleSpinBox()
            editor.setFixedWidth(_NUMBER_WIDTH)
            editor.setDecimals(3)
            editor.setSingleStep(0.05)
            editor.setRange(0.0, 0.9 if name == "val_fraction" else 1.0 if name == "warmup" else 100.0)
            editor.valueChanged.connect(self.changed)
        shown = f"{value:g}" if isinstance(value, float) else str(value).lower() if isinstance(value, bool) else value
        tip = f"{spec.tip} Default: {shown}."
        editor.setToolTip(tip)
        self._editors[name] = editor
        label = QLabel(spec.label)
        label.setToolTip(tip)
        label.setAlignment(Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter)
        label.setMinimumHeight(editor.sizeHint().height())  # a form aligns labels to the top: centre them on the field
        self.form.addRow(label, editor)

    @staticmethod
    def _set(editor: QWidget, value: Any) -> None:
        if isinstance(editor, QCheckBox):
            editor.setChecked(bool(value))
        elif isinstance(editor, QComboBox):
            editor.setCurrentIndex(max(0, editor.findData(str(value))))
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
            return editor.currentData()
        if isinstance(editor, QSpinBox | QDoubleSpinBox):
            return editor.value()
        text = editor.text().strip() if isinstance(editor, QLineEdit) else ""
        try:
            return float(text)
        except ValueError:
            return float(getattr(self._defaults, name))

    def _objective_changed(self) -> None:
        objective = self.objective.currentData()
        self.objective_text.setText(OBJECTIVES[objective][1])
        self.objective.setToolTip(OBJECTIVES[objective][1])
        self._update_rows()
        self.changed.emit()

    def _update_rows(self) -> None:
        objective = self.objective.currentData()
        advanced = self.advanced_button.isChecked()
        self.advanced_button.setText("Hide advanced settings" if advanced else "Show advanced settings")
        for name, editor in self._editors.items():
            spec = FIELDS[name]
            shown = (not spec.objectives or objective in spec.objectives) and (advanced or not spec.advanced)
            self.form.setRowVisible(editor, shown)

    @staticmethod
    def _restyle(widget: QWidget) -> None:
        widget.style().unpolish(widget)
        widget.style().polish(widget)


def _elide(text: str, width: int) -> str:
    return text if len(text) <= width else "…" + text[-(width - 1) :]
