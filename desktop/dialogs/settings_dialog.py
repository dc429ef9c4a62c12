"""The settings dialog: model (from the registry, or a local checkpoint), device, sampling, index
parameters (with the Ray cluster that indexes, if any) and the data folder.

Values are checked by ``EngineSettings.validate`` before the dialog closes, and a bad one is named in the
dialog. The model list comes from the registry on a worker thread (it imports open_clip). What to do with
a changed model (offer to re-index) is the main window's business: the dialog only reports the choice.
"""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import Qt
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
from engine.settings import EngineSettings, SettingsError

DEVICES = ("auto", "cpu", "cuda", "mps")


class SettingsDialog(QDialog):
    def __init__(
        self, engine: EngineApi, data_folder: Path, theme_name: str = "light", parent: QWidget | None = None
    ) -> None:
        super().__init__(parent)
        self.setWindowTitle("Settings")
        self.setMinimumWidth(560)
        self.engine = engine
        self.original = engine.settings()
        s = self.original

        self.model = QComboBox()
        self.model.setEditable(True)
        self.model.setInsertPolicy(QComboBox.InsertPolicy.NoInsert)
        self.model.addItem(s.model)
        self.model.setCurrentText(s.model)
        self.model.setToolTip(
            "An open_clip ARCH/PRETRAINED name, scratch:tiny, a training run's folder (its best checkpoint, or "
            "RUN/checkpoints/epoch-N), an open_clip checkpoint folder, or ARCH@/path/to/file"
        )
        browse_model = QPushButton("Model folder…")
        browse_model.setToolTip(
            "Use a trained model: a training run's folder (RUN, RUN/best or an epoch checkpoint), with its "
            "temporal and concept heads, or an open_clip checkpoint folder (config.json + model.safetensors)"
        )
        browse_model.clicked.connect(self._browse_checkpoint)
        self.models_note = QLabel("Loading the model list…")
        self.models_note.setObjectName("muted")
        self.device = QComboBox()
        self.device.setEditable(True)
        self.device.addItems(DEVICES)
        self.device.setCurrentText(s.device)
        self.batch_size = QSpinBox(minimum=1, maximum=4096, value=s.batch_size)

        self.sample_every = QDoubleSpinBox(minimum=0.01, maximum=3600, decimals=2, singleStep=0.25, suffix=" s")
        self.sample_every.setValue(s.sample_every_s)
        self.detect_cuts = QCheckBox("Also sample at scene cuts")
        self.detect_cuts.setChecked(s.detect_cuts)
        self.segment_window = QDoubleSpinBox(
            minimum=0.5, maximum=600, decimals=1, suffix=" s", value=s.segment_window_s
        )
        self.stride = QDoubleSpinBox(minimum=0.25, maximum=600, decimals=2, suffix=" s", value=s.segment_stride_s)

        self.hnsw_m = QSpinBox(minimum=2, maximum=128, value=s.hnsw_m)
        self.ef_construction = QSpinBox(minimum=10, maximum=4096, value=s.hnsw_ef_construction)
        self.ef_search = QSpinBox(minimum=10, maximum=4096, value=s.hnsw_ef_search)
        self.ray_address = QLineEdit(s.ray_address)
        self.ray_address.setPlaceholderText("empty: index on this computer")
        self.ray_address.setToolTip(
            "Decode and embed on a Ray cluster: auto, HOST:PORT or ray://HOST:PORT. Every node must see the "
            "video folders at the same paths; this computer still writes the library."
        )

        self.data_folder = QLineEdit(str(data_folder))
        browse_data = QPushButton("Choose…")
        browse_data.clicked.connect(self._browse_data)
        self.theme = QComboBox()
        self.theme.addItem("Light", "light")
        self.theme.addItem("Dark", "dark")
        self.theme.setCurrentIndex(max(0, self.theme.findData(theme_name)))

        model_box = QGroupBox("Model")
        mf = QFormLayout(model_box)
        row = QHBoxLayout()
        row.addWidget(self.model, 1)
        row.addWidget(browse_model)
        mf.addRow("Model", row)
        mf.addRow("", self.models_note)
        mf.addRow("Device", self.device)
        mf.addRow("Batch size", self.batch_size)
        sampling = QGroupBox("Sampling")
        sf = QFormLayout(sampling)
        sf.addRow("One frame every", self.sample_every)
        sf.addRow("", self.detect_cuts)
        sf.addRow("Moment window", self.segment_window)
        sf.addRow("Window step", self.stride)
        index = QGroupBox("Index (advanced)")
        xf = QFormLayout(index)
        xf.addRow("HNSW M", self.hnsw_m)
        xf.addRow("Build effort (ef construction)", self.ef_construction)
        xf.addRow("Search effort (ef search)", self.ef_search)
        xf.addRow("Ray cluster", self.ray_address)
        app_box = QGroupBox("App")
        af = QFormLayout(app_box)
        drow = QHBoxLayout()
        drow.addWidget(self.data_folder, 1)
        drow.addWidget(browse_data)
        af.addRow("Data folder", drow)
        note = QLabel("A different data folder opens another library the next time Scenefind starts.")
        note.setObjectName("muted")
        note.setWordWrap(True)
        af.addRow("", note)
        af.addRow("Theme", self.theme)

        self.error = QLabel("")
        self.error.setObjectName("errorText")
        self.error.setWordWrap(True)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel)
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        for w in (model_box, sampling, index, app_box, self.error, buttons):
            layout.addWidget(w)

        self.models_runner = JobRunner(self)
        self.models_runner.finished.connect(self._on_models)
        self.models_runner.failed.connect(lambda exc: self.models_note.setText(f"No model list: {describe_error(exc)}"))
        self.models_runner.start(lambda *, progress, cancel: engine.list_models())
        self.result_settings: EngineSettings | None = None

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
        self.models_note.setText(f"{len(models)} models known; you may also type a name or pick a model folder.")

    def _browse_checkpoint(self) -> None:
        path = QFileDialog.getExistingDirectory(self, "Model folder (a training run, or an open_clip checkpoint)")
        if path:
            self.model.setCurrentText(path)

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
        )

    def chosen_data_folder(self) -> Path:
        return Path(self.data_folder.text().strip()).expanduser()

    def chosen_theme(self) -> str:
        return str(self.theme.currentData())

    def accept(self) -> None:
        try:
            self.result_settings = self.settings()
        except SettingsError as exc:
            self.error.setText(describe_error(exc))
            return
        if not self.data_folder.text().strip():
            self.error.setText("Choose a data folder")
            return
        self.models_runner.cancel()
        super().accept()
