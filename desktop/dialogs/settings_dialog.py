"""The settings dialog: the model (from the registry, or a model file of the user's), where it runs, how
videos are sampled, the library folder and the theme; index parameters and the Ray cluster under Advanced.

Why laid out like this: the settings a user changes (model, sampling, folder, theme) come first, in forms
whose labels and fields line up across sections; what only matters for tuning (HNSW's M and ef, batch size,
a Ray cluster) sits folded under "Advanced", each with a label that says what it changes and its technical
name in the tooltip. Values are checked by ``EngineSettings.validate`` before the dialog closes, and a bad
one is named by its label in the dialog. The model list comes from the registry on a worker thread (it
imports open_clip). What to do with a changed model (offer to re-index) is the main window's business: the
dialog only reports the choice.
"""

from __future__ import annotations

import re
from pathlib import Path

from PySide6.QtCore import Qt
from PySide6.QtGui import QIcon
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QDoubleSpinBox,
    QFileDialog,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from desktop.engine_api import EngineApi, ModelChoice
from desktop.jobs import JobRunner, describe_error
from desktop.model_guard import ask_for_checkpoint, checkpoint_name
from engine.settings import EngineSettings, SettingsError

DEVICES = ("auto", "cpu", "cuda", "mps")
NUMBER_WIDTH = 130
LABELS = {  # settings key -> the label the dialog shows it under (also in error messages)
    "model": "Model",
    "device": "Run the model on",
    "sample_every_s": "One frame every",
    "segment_window_s": "Moment length",
    "segment_stride_s": "A moment starts every",
    "batch_size": "Frames per batch",
    "hnsw_m": "Links per entry",
    "hnsw_ef_construction": "Build thoroughness",
    "hnsw_ef_search": "Search thoroughness",
    "ray_address": "Ray cluster",
    "speech_model": "Speech model",
    "speech_language": "Spoken language",
}
SPEECH_SIZES = ("tiny", "base", "small", "medium", "large-v3", "tiny.en", "base.en", "small.en", "distil-large-v3")
LANGUAGES = (("Detect for each video", "auto"), ("English", "en"), ("German", "de"), ("French", "fr"),
             ("Spanish", "es"), ("Italian", "it"), ("Portuguese", "pt"), ("Dutch", "nl"), ("Japanese", "ja"),
             ("Chinese", "zh"))  # fmt: skip
_SETTINGS_ERROR = re.compile(r"^[^:]*: (\w+) = (.*)$")


def _number(box: QSpinBox | QDoubleSpinBox, tip: str) -> QSpinBox | QDoubleSpinBox:
    box.setFixedWidth(NUMBER_WIDTH)
    box.setToolTip(tip)
    return box


def align_forms(*forms: QFormLayout) -> None:
    """One label column for several forms (each section is its own form, so by default each has its own
    label width and the fields start at different places); labels centred on their fields' height."""
    labels: list[tuple[QLabel, QWidget | None]] = []
    for form in forms:
        for row in range(form.rowCount()):
            label = form.itemAt(row, QFormLayout.ItemRole.LabelRole)
            field = form.itemAt(row, QFormLayout.ItemRole.FieldRole)
            if label is not None and isinstance(label.widget(), QLabel):
                labels.append((label.widget(), field.widget() if field is not None else None))
    width = max((label.sizeHint().width() for label, _ in labels), default=0)
    for label, field in labels:
        label.setFixedWidth(width)
        label.setAlignment(Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter)
        height = field.sizeHint().height() if field is not None else 0
        if field is not None and field.layout() is not None:
            height = field.layout().sizeHint().height()
        label.setMinimumHeight(height)


def _form(box: QGroupBox) -> QFormLayout:
    form = QFormLayout(box)
    form.setFieldGrowthPolicy(QFormLayout.FieldGrowthPolicy.ExpandingFieldsGrow)
    form.setLabelAlignment(Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter)
    form.setHorizontalSpacing(14)
    form.setVerticalSpacing(8)
    return form


def _row(*widgets: QWidget, stretch_first: bool = True) -> QWidget:
    holder = QWidget()
    row = QHBoxLayout(holder)
    row.setContentsMargins(0, 0, 0, 0)
    for n, widget in enumerate(widgets):
        row.addWidget(widget, 1 if n == 0 and stretch_first else 0)
    if not stretch_first:
        row.addStretch(1)
    return holder


class SettingsDialog(QDialog):
    def __init__(
        self, engine: EngineApi, data_folder: Path, theme_name: str = "light", parent: QWidget | None = None
    ) -> None:
        super().__init__(parent)
        self.setWindowTitle("Settings")
        self.setMinimumWidth(600)
        self.engine = engine
        self.original = engine.settings()
        s = self.original

        self.model = QComboBox()
        self.model.setEditable(True)
        self.model.setInsertPolicy(QComboBox.InsertPolicy.NoInsert)
        self.model.addItem(s.model)
        self.model.setCurrentText(s.model)
        self.model.setToolTip(
            "A model from the list (an open_clip name, or scratch:tiny), a training run's folder (RUN, RUN/best or "
            "RUN/checkpoints/epoch-N, with its temporal and concept heads), an open_clip checkpoint folder, or a "
            "weights file (ARCH@/path/to/file)"
        )
        browse_model = QPushButton("Model folder…")
        browse_model.setToolTip(
            "Use a trained model: a training run's folder (RUN, RUN/best or an epoch checkpoint), with its "
            "temporal and concept heads, or an open_clip checkpoint folder (config.json + model.safetensors)"
        )
        browse_file = QPushButton("Model file…")
        browse_file.setToolTip(
            "Use a weights file you have (.safetensors, .pt), e.g. the default model downloaded elsewhere"
        )
        browse_file.clicked.connect(self._browse_model_file)
        browse_model.clicked.connect(self._browse_checkpoint)
        self.models_note = QLabel("Loading the model list…")
        self.models_note.setObjectName("muted")
        self.device = QComboBox()
        self.device.setEditable(True)
        self.device.addItems(DEVICES)
        self.device.setCurrentText(s.device)
        self.device.setFixedWidth(NUMBER_WIDTH)
        self.device.setToolTip("auto: a GPU when there is one, else the CPU; cuda:N picks one of several GPUs")

        self.sample_every = _number(
            QDoubleSpinBox(minimum=0.01, maximum=3600, decimals=2, singleStep=0.25, suffix=" s"),
            "How often a frame is taken from each video: more often finds shorter moments and takes longer",
        )
        self.sample_every.setValue(s.sample_every_s)
        self.detect_cuts = QCheckBox("Also take a frame at every scene cut")
        self.detect_cuts.setChecked(s.detect_cuts)
        self.segment_window = _number(
            QDoubleSpinBox(minimum=0.5, maximum=600, decimals=1, suffix=" s", value=s.segment_window_s),
            "How long a moment found by search is, at least",
        )
        self.stride = _number(
            QDoubleSpinBox(minimum=0.25, maximum=600, decimals=2, suffix=" s", value=s.segment_stride_s),
            "How far apart the moments that search weighs start",
        )

        self.batch_size = _number(
            QSpinBox(minimum=1, maximum=4096, value=s.batch_size),
            "Frames the model embeds at once: more is faster on a GPU and needs more memory (batch size)",
        )
        self.hnsw_m = _number(
            QSpinBox(minimum=2, maximum=128, value=s.hnsw_m),
            "How many neighbours each entry of the search index links to (HNSW M): more finds a little more and "
            "takes more memory. Applies to indexes built from now on.",
        )
        self.ef_construction = _number(
            QSpinBox(minimum=10, maximum=4096, value=s.hnsw_ef_construction),
            "How hard indexing looks for good links (HNSW ef_construction): higher builds a better index, "
            "more slowly. Applies to indexes built from now on.",
        )
        self.ef_search = _number(
            QSpinBox(minimum=10, maximum=4096, value=s.hnsw_ef_search),
            "How many candidates a search looks at (HNSW ef_search): higher misses fewer matches in a large "
            "library and answers more slowly.",
        )
        self.ray_address = QLineEdit(s.ray_address)
        self.ray_address.setPlaceholderText("empty: index on this computer")
        self.ray_address.setToolTip(
            "Decode and embed on a Ray cluster: auto, HOST:PORT or ray://HOST:PORT. Every node must see the "
            "video folders at the same paths; this computer still writes the library."
        )

        self.speech = QCheckBox("Transcribe what is said")
        self.speech.setToolTip("After the pictures, indexing writes down what is said, so you can search for words")
        self.speech.setChecked(s.speech)
        self.speech_model = QComboBox()
        self.speech_model.setEditable(True)
        self.speech_model.setInsertPolicy(QComboBox.InsertPolicy.NoInsert)
        self.speech_model.addItems(SPEECH_SIZES)
        self.speech_model.setCurrentText(s.speech_model)
        self.speech_model.setToolTip(
            "A Whisper size (tiny, base, small, …; .en sizes hear English only, a little better), downloaded once "
            "the first time it is needed, or a faster-whisper model folder of your own"
        )
        self.browse_speech = QPushButton("Model folder…")
        self.browse_speech.setToolTip(
            "Use a faster-whisper (CTranslate2) model folder: model.bin, config.json, tokenizer"
        )
        self.browse_speech.clicked.connect(self._browse_speech_model)
        self.speech_note = QLabel("Larger sizes hear more accurately and transcribe more slowly.")
        self.speech_note.setObjectName("muted")
        self.language = QComboBox()
        self.language.setEditable(True)
        for label, code in LANGUAGES:
            self.language.addItem(label, code)
        found = self.language.findData(s.speech_language)
        if found >= 0:
            self.language.setCurrentIndex(found)
        else:
            self.language.setCurrentText(s.speech_language)
        self.language.setToolTip("The language spoken in your videos, or detected for each video (a code: en, de, …)")
        self.language.setMinimumWidth(2 * NUMBER_WIDTH)
        self.screen_text = QCheckBox("Read text shown on screen (slides, signs, titles)")
        self.screen_text.setToolTip("After speech, indexing reads the text seen in the videos, so you can search it")
        self.screen_text.setChecked(s.screen_text)
        self.speech.toggled.connect(self._speech_toggled)
        self._speech_toggled(s.speech)

        self.data_folder = QLineEdit(str(data_folder))
        browse_data = QPushButton("Choose…")
        browse_data.clicked.connect(self._browse_data)
        self.theme = QComboBox()
        self.theme.addItem("Light", "light")
        self.theme.addItem("Dark", "dark")
        self.theme.setCurrentIndex(max(0, self.theme.findData(theme_name)))
        self.theme.setFixedWidth(NUMBER_WIDTH)

        model_box = QGroupBox("Model")
        mf = _form(model_box)
        mf.addRow(LABELS["model"], _row(self.model, browse_model, browse_file))
        mf.addRow("", self.models_note)
        mf.addRow(LABELS["device"], _row(self.device, stretch_first=False))
        sampling = QGroupBox("Sampling")
        sf = _form(sampling)
        sf.addRow(LABELS["sample_every_s"], _row(self.sample_every, stretch_first=False))
        sf.addRow("", self.detect_cuts)
        sf.addRow(LABELS["segment_window_s"], _row(self.segment_window, stretch_first=False))
        sf.addRow(LABELS["segment_stride_s"], _row(self.stride, stretch_first=False))
        speech_box = QGroupBox("Speech and on-screen text (this library)")
        vf = _form(speech_box)
        vf.addRow("", self.speech)
        vf.addRow(LABELS["speech_model"], _row(self.speech_model, self.browse_speech))
        vf.addRow("", self.speech_note)
        vf.addRow(LABELS["speech_language"], _row(self.language, stretch_first=False))
        vf.addRow("", self.screen_text)
        app_box = QGroupBox("App")
        af = _form(app_box)
        af.addRow("Library folder", _row(self.data_folder, browse_data))
        note = QLabel("Another folder opens another library the next time Scenefind starts.")
        note.setObjectName("muted")
        af.addRow("", note)
        af.addRow("Theme", _row(self.theme, stretch_first=False))
        self.advanced = QGroupBox("Advanced")
        xf = _form(self.advanced)
        xf.addRow(LABELS["batch_size"], _row(self.batch_size, stretch_first=False))
        xf.addRow(LABELS["hnsw_m"], _row(self.hnsw_m, stretch_first=False))
        xf.addRow(LABELS["hnsw_ef_construction"], _row(self.ef_construction, stretch_first=False))
        xf.addRow(LABELS["hnsw_ef_search"], _row(self.ef_search, stretch_first=False))
        xf.addRow(LABELS["ray_address"], self.ray_address)
        self.advanced.hide()
        self.advanced_button = QPushButton("Show advanced settings")
        self.advanced_button.setCheckable(True)
        self.advanced_button.setToolTip("Index parameters, batch size and a Ray cluster: for tuning, rarely needed")
        self.advanced_button.toggled.connect(self._show_advanced)
        align_forms(mf, sf, vf, af, xf)

        self.error = QLabel("")
        self.error.setObjectName("errorText")
        self.error.setWordWrap(True)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel)
        for button in buttons.buttons():
            button.setIcon(QIcon())  # Fusion's stock icons (a green tick) look out of place here
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        bottom = QHBoxLayout()
        bottom.addWidget(self.advanced_button)
        bottom.addStretch(1)
        bottom.addWidget(buttons)
        layout = QVBoxLayout(self)
        layout.setSpacing(10)
        for w in (model_box, sampling, speech_box, app_box, self.advanced, self.error):
            layout.addWidget(w)
        layout.addLayout(bottom)

        self.models_runner = JobRunner(self)
        self.models_runner.finished.connect(self._on_models)
        self.models_runner.failed.connect(lambda exc: self.models_note.setText(f"No model list: {describe_error(exc)}"))
        self.models_runner.start(lambda *, progress, cancel: engine.list_models())
        self.result_settings: EngineSettings | None = None

    def _show_advanced(self, on: bool) -> None:
        self.advanced.setVisible(on)
        self.advanced_button.setText("Hide advanced settings" if on else "Show advanced settings")
        self.adjustSize()

    def loading(self) -> bool:
        """Whether the model list is still being read (a screenshot waits for it)."""
        return self.models_runner.running

    def _on_models(self, models: list[ModelChoice]) -> None:
        current = self.model.currentText()
        self.model.clear()
        for m in models:
            self.model.addItem(m.name)
            self.model.setItemData(self.model.count() - 1, m.description, Qt.ItemDataRole.ToolTipRole)
        self.model.setCurrentText(current)
        self.models_note.setText(f"{len(models)} models to choose from, or a model folder or file of your own")

    def _browse_checkpoint(self) -> None:
        path = QFileDialog.getExistingDirectory(self, "Model folder (a training run, or an open_clip checkpoint)")
        if path:
            self.model.setCurrentText(path)

    def _browse_model_file(self) -> None:
        chosen = ask_for_checkpoint(self)
        if chosen is not None:
            self.model.setCurrentText(checkpoint_name(chosen, self.model.currentText()))

    def _speech_toggled(self, on: bool) -> None:
        for w in (self.speech_model, self.browse_speech, self.language, self.speech_note):
            w.setEnabled(on)

    def _browse_speech_model(self) -> None:
        start = self.speech_model.currentText() if Path(self.speech_model.currentText()).is_dir() else str(Path.home())
        path = QFileDialog.getExistingDirectory(self, "Speech model folder (faster-whisper / CTranslate2)", start)
        if path:
            self.speech_model.setCurrentText(path)

    def language_code(self) -> str:
        """The chosen language's code ("auto" to detect); a code typed in is taken as it is."""
        text = self.language.currentText().strip()
        for label, code in LANGUAGES:
            if text in (label, code):
                return code
        return text

    def _browse_data(self) -> None:
        path = QFileDialog.getExistingDirectory(self, "Data folder", self.data_folder.text())
        if path:
            self.data_folder.setText(path)

    def settings(self) -> EngineSettings:
        """The edited settings; raises ``SettingsError`` naming the first bad value."""
        return self.original.replace(
            model=self.model.currentText().strip(),
            device=self.device.currentText().strip(),
            batch_size=self.batch_size.value(),
            sample_every_s=self.sample_every.value(),
            detect_cuts=self.detect_cuts.isChecked(),
            segment_window_s=self.segment_window.value(),
            segment_stride_s=self.stride.value(),
            hnsw_m=self.hnsw_m.value(),
            hnsw_ef_construction=self.ef_construction.value(),
            hnsw_ef_search=self.ef_search.value(),
            ray_address=self.ray_address.text().strip(),
            speech=self.speech.isChecked(),
            speech_model=self.speech_model.currentText().strip(),
            speech_language=self.language_code(),
            screen_text=self.screen_text.isChecked(),
        )

    def chosen_data_folder(self) -> Path:
        return Path(self.data_folder.text().strip()).expanduser()

    def chosen_theme(self) -> str:
        return str(self.theme.currentData())

    def accept(self) -> None:
        try:
            self.result_settings = self.settings()
        except SettingsError as exc:
            self.error.setText(said(exc))
            self.advanced_button.setChecked(self.advanced_button.isChecked() or _in_advanced(str(exc)))
            return
        if not self.data_folder.text().strip():
            self.error.setText("Choose a data folder")
            return
        self.models_runner.cancel()
        super().accept()


def said(exc: SettingsError) -> str:
    """A validation error under the label the dialog shows ("Run the model on: 'gpu9' must be ...")."""
    found = _SETTINGS_ERROR.match(str(exc))
    if found is None or found.group(1) not in LABELS:
        return describe_error(exc)
    return f"{LABELS[found.group(1)]}: {found.group(2)}"


def _in_advanced(text: str) -> bool:
    found = _SETTINGS_ERROR.match(text)
    return found is not None and found.group(1) in (
        "batch_size",
        "hnsw_m",
        "hnsw_ef_construction",
        "hnsw_ef_search",
        "ray_address",
    )
