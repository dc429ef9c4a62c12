"""The Training tab's hyperparameter form: the loss (objective), its weights, and the schedule.

Why it is built from a ``TrainConfig``: the engine hands over its defaults (losses.md's, through the trainer),
so no default is written twice and the form never imports the trainer (torch would load at window open). The
defaults arrive from a worker a moment after the tab is first shown, so until then the form says it is
loading (and why it failed, with Retry). Each loss weight says in its tooltip where in losses.md it comes from
and what its default is; the weights of other losses are hidden, and a sentence under the loss says what it
does and whether it uses the negatives of step 2. Rarely changed settings sit behind "Advanced".
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

OBJECTIVES: dict[str, tuple[str, str]] = {  # name -> (label, what it does)
    "infonce": (
        "InfoNCE (no hard negatives)",
        "CLIP's symmetric contrastive loss over the batch. The baseline; it ignores the negatives of step 2.",
    ),
    "component": (
        "Component negatives",
        "losses.md §1: each clip is also contrasted with captions that change one component (subject, verb, "
        "object, attribute) or swap who has what (two nouns, two attributes, from/to). Uses the negatives of step 2.",
    ),
    "component_ie": (
        "Component negatives + importance",
        "losses.md §1 with an importance estimator that learns which component's negative is hardest for each "
        "caption (weighted by λ_ie). Uses the negatives of step 2.",
    ),
    "ceclip": (
        "CE-CLIP (ITC + CMR + IMC)",
        "losses.md §4: hard negatives in the contrastive loss, plus a cross-modal rank loss (λ_cmr) and an "
        "intra-modal loss (λ_imc). Uses the negatives of step 2.",
    ),
    "s3ma": (
        "S3MA (shared sparse concepts)",
        "losses.md §2: a bank of concepts shared by text and video, aligned by α·L_sim + β·L_align; search can "
        "then explain a hit by its concepts. Ignores the negatives.",
    ),
    "emcl": (
        "EMCL-Net",
        "losses.md §3.2: expectation-maximisation over K bases makes video and text features compact. "
        "Ignores the negatives.",
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
    # the chosen loss's weights (losses.md)
    "lam_ie": Field("λ_ie (importance)", "Weight of the importance loss L_ie (losses.md §1.5).", ("component_ie",)),
    "relation_negatives": Field(
        "Relation swap",
        "Add the relation negatives as a fifth type: swaps that keep every word (two nouns as in CE-CLIP, two "
        "attributes, a path's from/to), the ones that teach who has what.",
        ("component", "component_ie"),
    ),
    "lam_cmr": Field("λ_cmr (rank loss)", "Weight of the cross-modal rank loss (losses.md §4.2).", ("ceclip",)),
    "lam_imc": Field("λ_imc (intra-modal)", "Weight of the intra-modal loss (losses.md §4.2).", ("ceclip",)),
    "imc": Field(
        "IMC form",
        "Which of CE-CLIP's four IMC implementations: label0 is the recommended training form (losses.md §4.2.4).",
        ("ceclip",),
    ),
    "s3ma_alpha": Field("α (L_sim)", "Weight of the text-to-concept loss L_sim (losses.md §2).", ("s3ma",)),
    "s3ma_beta": Field("β (L_align)", "Weight of the video-to-concept loss L_align (losses.md §2).", ("s3ma",)),
    "s3ma_k": Field("Concepts per code", "Top-k concepts kept in a sparse code, k_s (losses.md §2).", ("s3ma",)),
    "emcl_k": Field("K (EMCL bases)", "Number of EM bases (losses.md §3.2, the EMCL-Net default).", ("emcl",)),
    # schedule
    "epochs": Field("Epochs", "Passes over the training clips; every epoch ends in a resumable checkpoint."),
    "batch_size": Field("Batch size", "Clips per step: more gives more in-batch negatives and needs more memory."),
    "lr": Field("Learning rate (towers)", "Of the pretrained towers: small, so they keep what they know."),
    "head_lr": Field("Learning rate (heads)", "Of the new parts: temporal head, concept bank, importance estimator."),
    "weight_decay": Field("Weight decay", "AdamW weight decay (not applied to biases and norms)."),
    "n_frames": Field("Frames per clip", "Frames sampled evenly from each clip (or its start-end window)."),
    "val_fraction": Field(
        "Validation share",
        "Share of the videos held out to measure R@1 after each epoch (split by video). 0: no validation, "
        "so no early stop and no best model.",
    ),
    "patience": Field("Early-stop patience", "Stop after this many epochs without a better validation R@1; 0 = never."),
    "heads_only": Field("Train the heads only", "Freeze both towers: fast and light; learns less."),
    "device": Field("Device", "auto picks a GPU when there is one, else the CPU."),
    # advanced
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
    """Objective, schedule and loss weights, built from a ``TrainConfig``'s values (losses.md defaults)."""

    changed = Signal()
    retry_requested = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._defaults: Any = None
        self._editors: dict[str, QWidget] = {}
        # loading state, until the defaults arrive
        self.loading = QWidget()
        self.loading_label = QLabel("Loading the training defaults (losses.md)…")
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
        self.reset_button.setToolTip("Every setting back to the defaults of losses.md and the trainer")
        self.reset_button.clicked.connect(self.reset)
        self.body.hide()
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.loading)
        layout.addWidget(self.body)

    # -- defaults --------------------------------------------------------------------------------------

    def set_loading(self) -> None:
        self.loading_label.setText("Loading the training defaults (losses.md)…")
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
            for device in dict.fromkeys((*DEVICES, str(value))):
                editor.addItem(device, device)
            editor.currentIndexChanged.connect(self.changed)
        elif isinstance(value, int):
            editor = QSpinBox()
            editor.setMinimumWidth(_NUMBER_WIDTH)
            editor.setRange(0 if name in ("patience", "seed") else 1, 100_000)
            editor.valueChanged.connect(self.changed)
        elif name in ("lr", "head_lr"):
            editor = QLineEdit()
            editor.setValidator(QDoubleValidator(1e-9, 1.0, 10))
            editor.setMaximumWidth(_NUMBER_WIDTH)  # as wide as the spin boxes beside it
            editor.textChanged.connect(self.changed)
        else:
            editor = QDoubleSpinBox()
            editor.setMinimumWidth(_NUMBER_WIDTH)
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
