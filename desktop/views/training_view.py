"""The Training tab: pick captioned clips, review generated negatives, set the loss, train, use the model.

Why it looks like this: fine-tuning is a long, interruptible job on the user's own machine, so the tab is a
four-step page (data, negatives, settings, run) whose every slow call (reading the data, generating
negatives, training) is a ``JobRunner`` job with progress and cancel, never work on the GUI thread. Epoch
reports come from the trainer's worker thread through a queued signal and grow two live plots (loss; R@1 and
compositional accuracy). Cancel leaves a resumable checkpoint in the run folder and Resume continues it with
the run's own settings. The negatives the user accepted (and edited) are written with ``write_negatives``
into the run folder and are what the trainer reads. "Use this model" asks the main window to switch models;
it re-indexes in the background while the old index keeps answering.
"""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path
from typing import Any

from PySide6.QtCore import QObject, Qt, QThreadPool, Signal
from PySide6.QtGui import QShowEvent
from PySide6.QtWidgets import (
    QFrame,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QProgressBar,
    QPushButton,
    QScrollArea,
    QSpinBox,
    QSplitter,
    QVBoxLayout,
    QWidget,
)

from desktop.engine_api import EngineApi
from desktop.jobs import JobRunner, describe_error, format_eta
from desktop.views.plot import LivePlot
from desktop.views.training_widgets import DataPicker, HyperparamForm, NegativesTable

LOSS_SERIES = "train loss"
METRIC_SERIES = {"t2v_R1": "R@1 text→video", "comp_all": "compositional accuracy"}
NEGATIVES_FILE = "negatives.jsonl"


class _EpochRelay(QObject):
    """Lives on the GUI thread; the trainer's ``on_epoch`` emits from the worker, so delivery is queued."""

    epoch = Signal(int, object)  # run id, EpochReport


def _call(fn: Any, *args: Any, progress: Any = None, cancel: Any = None) -> Any:
    """Run a quick engine call that takes no progress/cancel as a job (file reads, the defaults' import)."""
    return fn(*args)


class TrainingView(QWidget):
    """The Training tab. ``use_model_requested(folder)`` when the user adopts a trained checkpoint."""

    status = Signal(str)
    use_model_requested = Signal(str)

    def __init__(self, engine: EngineApi, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.engine = engine
        self._items: list[Any] = []  # TrainItem
        self._data: Path | None = None
        self._config: Any = None  # the TrainConfig of the current (or last) run: Resume reuses it
        self._result: Any = None  # TrainResult of the last finished run
        self._run = 0
        self._epochs = 0
        self.data_runner = JobRunner(self)
        self.negatives_runner = JobRunner(self)
        self._train_pool = QThreadPool(self)  # its own pool, so shutdown can wait for training alone
        self._train_pool.setMaxThreadCount(1)
        self.train_runner = JobRunner(self, self._train_pool, background=True)
        self.defaults_runner = JobRunner(self, self._train_pool)  # so shutdown waits for its torch import
        self._relay = _EpochRelay(self)
        self._relay.epoch.connect(self._on_epoch)
        self._build()
        self._connect()
        self._update_buttons()

    # -- layout -----------------------------------------------------------------------------------------

    def _build(self) -> None:
        self.data_picker = DataPicker()
        self.per_component = QSpinBox()
        self.per_component.setRange(1, 16)
        self.per_component.setValue(4)
        self.per_component.setToolTip("Negatives per component (subject, verb, object, attribute) and caption")
        self.generate_button = QPushButton("Generate negatives")
        self.negatives_status = QLabel("Pick data first")
        self.negatives_status.setObjectName("muted")
        self.negatives_status.setWordWrap(True)
        self.form = HyperparamForm()
        self.start_button = QPushButton("Start training")
        self.start_button.setObjectName("primary")
        self.cancel_button = QPushButton("Cancel")
        self.resume_button = QPushButton("Resume")
        self.resume_button.setToolTip("Continue the last run from its latest checkpoint, with its own settings")
        self.use_button = QPushButton("Use this model")
        self.use_button.setToolTip("Search with the trained model; the library re-indexes in the background")
        self.progress = QProgressBar()
        self.progress.setRange(0, 1000)
        self.progress.setTextVisible(False)
        self.run_status = QLabel("")
        self.run_status.setObjectName("muted")
        self.run_status.setWordWrap(True)

        negatives_row = QHBoxLayout()
        negatives_row.addWidget(QLabel("Per component"))
        negatives_row.addWidget(self.per_component)
        negatives_row.addStretch(1)
        negatives_row.addWidget(self.generate_button)
        run_row = QHBoxLayout()
        for button in (self.start_button, self.cancel_button, self.resume_button):
            run_row.addWidget(button)
        run_row.addStretch(1)

        left = QWidget()
        column = QVBoxLayout(left)
        column.addWidget(self._group("1 · Data", self.data_picker))
        column.addWidget(self._group("2 · Negatives", negatives_row, self.negatives_status))
        column.addWidget(self._group("3 · Loss and settings", self.form))
        column.addStretch(1)
        scroll = QScrollArea()
        scroll.setWidget(left)
        scroll.setWidgetResizable(True)
        scroll.setFrameShape(QFrame.Shape.NoFrame)
        scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        # never narrower than its content (no horizontal scrolling), room for the vertical scroll bar
        self._scroll = scroll
        self._fit_settings_width()
        steps = QWidget()  # the Train step stays in view below the scrolling settings
        steps_layout = QVBoxLayout(steps)
        steps_layout.setContentsMargins(0, 0, 0, 0)
        steps_layout.addWidget(scroll, 1)
        run_group = self._group("4 · Train", run_row, self.progress, self.run_status, self.use_button)
        run_group.setContentsMargins(9, 0, 9, 0)
        steps_layout.addWidget(run_group)

        self.negatives = NegativesTable()
        self.loss_plot = LivePlot("Training loss", "loss")
        self.metric_plot = LivePlot("Validation", "percent", y_range=(0.0, 100.0))
        plots = QSplitter(Qt.Orientation.Horizontal)
        plots.addWidget(self.loss_plot)
        plots.addWidget(self.metric_plot)
        right = QSplitter(Qt.Orientation.Vertical)
        right.addWidget(self._group("Review negatives: untick or Reject to drop, double-click to edit", self.negatives))
        right.addWidget(plots)
        right.setStretchFactor(0, 1)
        right.setStretchFactor(1, 1)
        right.setSizes([450, 350])
        self.splitter = QSplitter(Qt.Orientation.Horizontal)
        self.splitter.addWidget(steps)
        self.splitter.addWidget(right)
        self.splitter.setStretchFactor(1, 1)
        self.splitter.setSizes([scroll.minimumWidth(), 900])
        layout = QVBoxLayout(self)
        layout.addWidget(self.splitter)

    @staticmethod
    def _group(title: str, *parts: Any) -> QGroupBox:
        box = QGroupBox(title)
        layout = QVBoxLayout(box)
        for part in parts:
            (layout.addWidget if isinstance(part, QWidget) else layout.addLayout)(part)
        return box

    def _connect(self) -> None:
        self.data_picker.chosen.connect(self.load_data)
        self.generate_button.clicked.connect(self.generate)
        self.start_button.clicked.connect(self.start)
        self.cancel_button.clicked.connect(self.cancel)
        self.resume_button.clicked.connect(self.resume)
        self.use_button.clicked.connect(self.use_model)
        self.negatives.changed.connect(self._update_buttons)
        self.data_runner.finished.connect(self._data_loaded)
        self.data_runner.failed.connect(lambda exc: self._data_failed(exc))
        self.defaults_runner.finished.connect(self._defaults_loaded)
        self.defaults_runner.failed.connect(lambda exc: self._say(f"Cannot load the settings: {describe_error(exc)}"))
        self.negatives_runner.progress.connect(lambda f, m, eta: self._progress(f, m, eta, self.negatives_status))
        self.negatives_runner.finished.connect(self._negatives_done)
        self.negatives_runner.failed.connect(lambda exc: self._negatives_ended(f"Failed: {describe_error(exc)}"))
        self.negatives_runner.cancelled.connect(lambda: self._negatives_ended("Generation cancelled"))
        self.train_runner.progress.connect(lambda f, m, eta: self._progress(f, m, eta, self.run_status))
        self.train_runner.finished.connect(self._train_done)
        self.train_runner.failed.connect(self._train_failed)
        self.train_runner.cancelled.connect(self._train_cancelled)
        for runner in (self.data_runner, self.negatives_runner, self.train_runner, self.defaults_runner):
            runner.running_changed.connect(lambda _: self._update_buttons())

    def showEvent(self, event: QShowEvent) -> None:
        super().showEvent(event)
        self.load_defaults()

    # -- steps ------------------------------------------------------------------------------------------

    def load_defaults(self) -> None:
        """Fetch ``TrainConfig`` defaults on a worker (the trainer imports torch), once."""
        if not self.form.has_defaults() and not self.defaults_runner.running:
            self.defaults_runner.start(_call, self.engine.train_defaults)

    def _defaults_loaded(self, config: Any) -> None:
        self.form.set_defaults(config)
        self._fit_settings_width()  # the form's editors exist now
        self._update_buttons()

    def _fit_settings_width(self) -> None:
        """The settings column is never narrower than its content: no clipped fields, no sideways scroll."""
        content = self._scroll.widget().minimumSizeHint().width()
        self._scroll.setMinimumWidth(max(400, content + self._scroll.verticalScrollBar().sizeHint().width() + 8))

    def load_data(self, path: Path) -> None:
        self._data, self._items = Path(path), []
        self.data_picker.summary.setText(f"Reading {Path(path).name}…")
        self.data_runner.start(_call, self.engine.load_training_data, Path(path))
        self._update_buttons()

    def _data_loaded(self, items: list[Any]) -> None:
        self._items = list(items)
        videos = len({item.video for item in self._items})
        captions = len({item.caption for item in self._items})
        self.data_picker.summary.setText(f"{len(self._items)} clips · {videos} videos · {captions} captions")
        self.negatives_status.setText("Generate negatives, or train without them")
        self._update_buttons()

    def _data_failed(self, exc: object) -> None:
        self._data = None
        self.data_picker.summary.setText(describe_error(exc))
        self._update_buttons()

    def generate(self) -> None:
        captions = list(dict.fromkeys(item.caption for item in self._items))
        if not captions:
            return
        self.negatives_status.setText(f"Generating negatives for {len(captions)} captions…")
        self.negatives_runner.start(self.engine.generate_negatives, captions, per_component=self.per_component.value())

    def _negatives_done(self, report: Any) -> None:
        self.negatives.set_items(report.items)
        valid = [f"{k} {100 * v:.0f}%" for k, v in report.validity.items() if v == v]  # NaN: none proposed
        self._negatives_ended(
            f"{len(report.items)} captions by {getattr(report, 'model', 'rules')}"
            + (f"; LLM proposals valid: {', '.join(valid)}" if valid else "")
        )

    def _negatives_ended(self, text: str) -> None:
        self.negatives_status.setText(text)
        self._update_buttons()

    def start(self) -> None:
        """A fresh run in a new folder, with the accepted negatives and the form's settings."""
        if self._data is None or not self._items or not self.form.has_defaults():
            return
        out = self.engine.training_folder() / time.strftime("run-%Y%m%d-%H%M%S")
        out.mkdir(parents=True, exist_ok=True)
        negatives = None
        if self.negatives.row_count():
            negatives = str(self.engine.write_negatives(self.negatives.accepted(), out / NEGATIVES_FILE))
        try:
            config = self.form.config(data=str(self._data), negatives=negatives, out=str(out), resume=False)
        except (TypeError, ValueError) as exc:
            self._say(f"Cannot train with these settings: {describe_error(exc)}")
            return
        self.loss_plot.clear()
        self.metric_plot.clear()
        self._result = None
        self._launch(config)

    def resume(self) -> None:
        if self._config is not None:
            self._launch(dataclasses.replace(self._config, resume=True))

    def cancel(self) -> None:
        self.negatives_runner.cancel()
        if self.train_runner.running:
            self.run_status.setText("Stopping at the next step; a checkpoint is saved…")
            self.train_runner.cancel()

    def _launch(self, config: Any) -> None:
        self._config = config
        self._run += 1
        self._epochs = config.epochs
        run = self._run
        self.progress.setValue(0)
        self.run_status.setText(f"Starting: {config.objective}, {config.epochs} epochs → {config.out}")
        self.train_runner.start(self.engine.train, config, on_epoch=lambda r: self._relay.epoch.emit(run, r))
        self.status.emit("Training started")

    def _on_epoch(self, run: int, report: Any) -> None:
        if run != self._run:
            return  # a superseded run's late report
        self.loss_plot.add_point(LOSS_SERIES, report.epoch, report.train_loss)
        for key, label in METRIC_SERIES.items():
            if key in report.metrics:
                self.metric_plot.add_point(label, report.epoch, report.metrics[key])
        r1 = report.metrics.get("t2v_R1")
        shown = f", R@1 {r1:.1f}" if r1 is not None else ""
        self.run_status.setText(f"Epoch {report.epoch}/{self._epochs}: loss {report.train_loss:.3f}{shown}")

    def _train_done(self, result: Any) -> None:
        self._result = result
        self.progress.setValue(self.progress.maximum())
        best = f"; best R@1 {result.best_metric:.1f}" if result.best_metric is not None else ""
        early = " (stopped early)" if getattr(result, "stopped_early", False) else ""
        self.run_status.setText(f"Finished{early}{best}. Model: {result.best_checkpoint}")
        self.status.emit("Training finished")
        self._update_buttons()

    def _train_failed(self, exc: object) -> None:
        self.run_status.setText(f"Training failed: {describe_error(exc)}")
        self.status.emit("Training failed")
        self._update_buttons()

    def _train_cancelled(self) -> None:
        self.run_status.setText("Cancelled; Resume continues from the saved checkpoint")
        self.status.emit("Training cancelled")
        self._update_buttons()

    def use_model(self) -> None:
        if self._result is not None:
            self.use_model_requested.emit(str(self._result.best_checkpoint))

    # -- state ------------------------------------------------------------------------------------------

    def can_resume(self) -> bool:
        if self._config is None or self.train_runner.running or self._result is not None:
            return False
        return self.engine.latest_checkpoint(Path(self._config.out)) is not None

    def _update_buttons(self) -> None:
        training = self.train_runner.running
        has_data = bool(self._items) and not self.data_runner.running
        self.generate_button.setEnabled(has_data and not self.negatives_runner.running and not training)
        self.start_button.setEnabled(has_data and self.form.has_defaults() and not training)
        self.cancel_button.setEnabled(training or self.negatives_runner.running)
        self.resume_button.setEnabled(self.can_resume())
        self.use_button.setEnabled(self._result is not None and not training)
        self.form.setEnabled(self.form.has_defaults() and not training)

    def _progress(self, fraction: float, message: str, eta: float, label: QLabel) -> None:
        if label is self.run_status:
            self.progress.setValue(round(fraction * self.progress.maximum()))
        label.setText(" · ".join(t for t in (message, format_eta(eta)) if t))

    def _say(self, text: str) -> None:
        self.run_status.setText(text)
        self.status.emit(text)

    def shutdown(self) -> None:
        """Cancel running jobs (the trainer saves a checkpoint) and wait briefly for them."""
        for runner in (self.negatives_runner, self.train_runner, self.data_runner):
            runner.cancel()
        self._train_pool.waitForDone(10000)
