"""The Training tab: pick captioned clips, review generated negatives, set the loss, train, use the model.

Why it looks like this: fine-tuning is a long, interruptible job on the user's own machine, so the tab is a
four-step page (data, negatives, settings, run) whose every slow call (reading the data, checking or
downloading the LLM, generating negatives, loading the defaults, training, reading a run folder) is a
``JobRunner`` job with progress and cancel, never work on the GUI thread. Data is the user's captions file or
an official benchmark's annotations (``training_data``); negatives come from a local GGUF LLM, the default one
(downloaded once) or none (``training_llm``), and the user reviews them (``training_negatives``); the settings
are a form over the engine's ``TrainConfig`` (``training_form``); the run, its plots, Resume (also after a
restart) and "Use this model" live in ``training_run``. This module wires them and decides what to train.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

from PySide6.QtCore import Qt, QThreadPool, Signal
from PySide6.QtGui import QShowEvent
from PySide6.QtWidgets import (
    QFrame,
    QGroupBox,
    QLabel,
    QScrollArea,
    QSplitter,
    QVBoxLayout,
    QWidget,
)

from desktop.engine_api import EngineApi
from desktop.jobs import JobRunner, describe_error
from desktop.views.training_data import DATASET_LABELS, DataPicker, DataSource
from desktop.views.training_form import HyperparamForm
from desktop.views.training_generator import NegativesGenerator
from desktop.views.training_negatives import NegativesTable
from desktop.views.training_run import LOSS_SERIES, METRIC_SERIES, RunPanel

__all__ = ["LOSS_SERIES", "METRIC_SERIES", "NEGATIVES_FILE", "TrainingView"]

NEGATIVES_FILE = "negatives.jsonl"
DATA_FILE = "data.jsonl"  # an official dataset's items, written into the run folder for the trainer


def _call(fn: Any, *args: Any, progress: Any = None, cancel: Any = None) -> Any:
    """Run a quick engine call that takes no progress/cancel as a job (file reads, the defaults' import)."""
    return fn(*args)


def _load(engine: EngineApi, source: DataSource, *, progress: Any = None, cancel: Any = None) -> list[Any]:
    if source.dataset is None:
        return engine.load_training_data(source.path)
    return engine.load_official_data(source.dataset, source.path, source.videos or source.path.parent)


class TrainingView(QWidget):
    """The Training tab. ``use_model_requested(folder)`` when the user adopts a trained checkpoint."""

    status = Signal(str)
    use_model_requested = Signal(str)

    def __init__(self, engine: EngineApi, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.engine = engine
        self._items: list[Any] = []  # TrainItem
        self._source: DataSource | None = None
        self._started = False
        self.data_runner = JobRunner(self)
        self.restore_runner = JobRunner(self)  # a restored run's reviewed negatives
        self._defaults_pool = QThreadPool(self)  # so shutdown can wait for the trainer's (torch) import
        self._defaults_pool.setMaxThreadCount(1)
        self.defaults_runner = JobRunner(self, self._defaults_pool)
        self._build()
        self._connect()
        self._update_buttons()

    # -- layout -----------------------------------------------------------------------------------------

    def _build(self) -> None:
        self.data_picker = DataPicker()
        self.generator = NegativesGenerator(self.engine)
        self.form = HyperparamForm()
        self.objective_hint = QLabel("")
        self.objective_hint.setObjectName("muted")
        self.objective_hint.setWordWrap(True)
        self.run = RunPanel(self.engine)
        self.negatives = NegativesTable()

        left = QWidget()
        column = QVBoxLayout(left)
        column.setContentsMargins(8, 4, 8, 4)
        column.setSpacing(8)
        column.addWidget(self._group("1 · Data", self.data_picker))
        column.addWidget(self._group("2 · Negatives (optional)", self.generator))
        column.addWidget(self._group("3 · Loss and settings", self.form))
        column.addStretch(1)
        scroll = QScrollArea()
        scroll.setWidget(left)
        scroll.setWidgetResizable(True)
        scroll.setFrameShape(QFrame.Shape.NoFrame)
        scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self._scroll = scroll
        self._fit_settings_width()

        plots = QSplitter(Qt.Orientation.Horizontal)
        plots.addWidget(self.run.loss_plot)
        plots.addWidget(self.run.metric_plot)
        train = QWidget()  # step 4 beside the steps it needs: the settings column keeps the full height
        train_layout = QVBoxLayout(train)
        train_layout.setContentsMargins(0, 0, 0, 0)
        train_layout.addWidget(self._group("4 · Train", self.objective_hint, self.run))
        train_layout.addWidget(plots, 1)
        right = QSplitter(Qt.Orientation.Vertical)
        right.addWidget(
            self._group("Review the negatives: untick or Reject to drop one, double-click to edit", self.negatives)
        )
        right.addWidget(train)
        right.setStretchFactor(0, 1)
        right.setStretchFactor(1, 1)
        right.setSizes([380, 420])
        self.splitter = QSplitter(Qt.Orientation.Horizontal)
        self.splitter.addWidget(scroll)
        self.splitter.addWidget(right)
        self.splitter.setStretchFactor(1, 1)
        self.splitter.setSizes([scroll.minimumWidth(), 900])
        layout = QVBoxLayout(self)
        layout.addWidget(self.splitter)
        # the run's widgets, under the names the tab's callers and tests use
        self.loss_plot, self.metric_plot = self.run.loss_plot, self.run.metric_plot
        self.start_button, self.cancel_button = self.run.start_button, self.run.cancel_button
        self.resume_button, self.use_button = self.run.resume_button, self.run.use_button
        self.run_status, self.progress = self.run.run_status, self.run.progress
        self.train_runner = self.run.train_runner
        self.llm_picker, self.generate_button = self.generator.llm_picker, self.generator.generate_button
        self.negatives_status, self.negatives_runner = self.generator.status, self.generator.negatives_runner

    @staticmethod
    def _group(title: str, *parts: Any) -> QGroupBox:
        box = QGroupBox(title)
        layout = QVBoxLayout(box)
        for part in parts:
            (layout.addWidget if isinstance(part, QWidget) else layout.addLayout)(part)
        return box

    def _connect(self) -> None:
        self.data_picker.chosen.connect(self.load_data)
        self.data_runner.finished.connect(self._data_loaded)
        self.data_runner.failed.connect(self._data_failed)
        self.restore_runner.finished.connect(self._negatives_restored)
        self.generator.generated.connect(lambda report: self.negatives.set_items(report.items))
        self.generator.busy_changed.connect(lambda _: self._update_buttons())
        self.negatives.changed.connect(self._update_buttons)
        self.defaults_runner.finished.connect(self._defaults_loaded)
        self.defaults_runner.failed.connect(lambda exc: self.form.set_failed(describe_error(exc)))
        self.form.retry_requested.connect(self.load_defaults)
        self.form.changed.connect(self._update_buttons)
        self.run.start_requested.connect(self.start)
        self.run.status.connect(self.status)
        self.run.use_model_requested.connect(self.use_model_requested)
        self.run.busy_changed.connect(lambda _: self._update_buttons())
        self.run.run_found.connect(self._run_found)
        for runner in (self.data_runner, self.defaults_runner):
            runner.running_changed.connect(lambda _: self._update_buttons())

    def showEvent(self, event: QShowEvent) -> None:
        super().showEvent(event)
        if not self._started:  # the first time the tab is shown: nothing loads at window open
            self._started = True
            self.load_defaults()
            self.generator.look_up_default()

    # -- defaults and the last run ----------------------------------------------------------------------

    def load_defaults(self) -> None:
        """Fetch ``TrainConfig`` defaults on a worker (the trainer imports torch), once; then the last run."""
        if not self.form.has_defaults() and not self.defaults_runner.running:
            self.form.set_loading()
            self.defaults_runner.start(_call, self.engine.train_defaults)

    def _defaults_loaded(self, config: Any) -> None:
        self.form.set_defaults(config)
        self._fit_settings_width()  # the form's editors exist now
        self._update_buttons()
        self.run.find_last_run()

    def _run_found(self, info: Any) -> None:
        """A run on disk from an earlier session: show its settings (Resume uses them)."""
        self.form.set_values(dataclasses.asdict(info.config))
        if not self._items and not self.data_runner.running and info.config.data:
            source = DataSource(Path(info.config.data))
            self.data_picker.set_source(source)
            self.load_data(source)  # as the user left it: Start trains the same data afresh
        if not self.negatives.row_count() and info.config.negatives:  # (a missing file: nothing to show)
            self.restore_runner.start(_call, self.engine.read_negatives, Path(info.config.negatives))

    def _negatives_restored(self, items: list[Any]) -> None:
        if not self.negatives.row_count() and not self.generator.busy():
            self.negatives.set_items(items)
            self.generator.say(f"The last run's reviewed negatives: {self.negatives.row_count()}")

    def _fit_settings_width(self) -> None:
        """The settings column is never narrower than its content: no clipped fields, no sideways scroll."""
        content = self._scroll.widget().minimumSizeHint().width()
        self._scroll.setMinimumWidth(max(460, content + self._scroll.verticalScrollBar().sizeHint().width() + 8))

    # -- data -------------------------------------------------------------------------------------------

    def load_data(self, source: DataSource | Path) -> None:
        source = source if isinstance(source, DataSource) else DataSource(Path(source))
        self._source, self._items = source, []
        self.generator.set_captions([])
        self.data_picker.set_summary(f"Reading {source.describe()}…")
        self.data_runner.start(_load, self.engine, source)
        self._update_buttons()

    def _data_loaded(self, items: list[Any]) -> None:
        self._items = list(items)
        videos = len({item.video for item in self._items})
        captions = len({item.caption for item in self._items})
        windows = sum(item.start is not None or item.end is not None for item in self._items)
        moments = f" · {windows} with a start-end window" if windows else ""
        summary = f"{len(self._items)} clips · {videos} videos · {captions} captions{moments}"
        self.data_picker.set_summary(summary)
        if not set(self.negatives.captions()) <= {item.caption for item in self._items}:
            self.negatives.set_items([])  # another data set's negatives would not match these captions
        self.generator.set_captions([item.caption for item in self._items], announce=not self.negatives.row_count())
        self.negatives.set_empty_text(
            f"No negatives yet for these {captions} captions.\n\nPress Generate negatives (step 2) to review them "
            "here, or train without them."
        )
        self._update_buttons()

    def _data_failed(self, exc: object) -> None:
        self._source = None
        self.data_picker.forget()
        text = describe_error(exc)
        guessed = self.data_picker.switch_to_guessed_dataset()
        if guessed is not None:
            label = DATASET_LABELS.get(guessed, guessed)
            text = (
                f"This looks like {label}'s own annotation file, so the format is now {label}: "
                "choose the folder with its videos"
            )
        self.data_picker.set_summary(text, error=guessed is None)
        self._update_buttons()

    # -- training ---------------------------------------------------------------------------------------

    def start(self) -> None:
        """A fresh run in a new folder, with the accepted negatives and the form's settings."""
        source = self._source
        if source is None or not self._items or not self.form.has_defaults():
            return
        out = self.run.new_run_folder()
        negatives = self.negatives.accepted() if self.negatives.row_count() else None
        items = list(self._items) if source.dataset is not None else None
        data = out / DATA_FILE if items is not None else source.path
        try:
            config = self.form.config(
                data=str(data),
                negatives=str(out / NEGATIVES_FILE) if negatives is not None else None,
                out=str(out),
                resume=False,
            )
        except (TypeError, ValueError) as exc:
            self.run.show_error(f"Cannot train with these settings: {describe_error(exc)}")
            return
        engine = self.engine

        def prepare() -> None:  # on the training worker: the run folder then holds all a resume needs
            if items is not None:
                engine.write_training_data(items, out / DATA_FILE)
            if negatives is not None:
                engine.write_negatives(negatives, out / NEGATIVES_FILE)

        self.run.launch(config, prepare)

    def resume(self) -> None:
        self.run.resume()

    def generate(self) -> None:
        self.generator.generate()

    def cancel(self) -> None:
        self.generator.cancel()
        self.run.cancel()

    # -- state ------------------------------------------------------------------------------------------

    def _update_buttons(self) -> None:
        training = self.run.training()
        busy = self.generator.busy()
        self.generator.set_allowed(not training)
        self.form.setEnabled(not training)  # before the defaults it shows only its loading state (or Retry)
        if not self.form.has_defaults():
            why = "The settings are still loading"
        elif self.data_runner.running:
            why = "Reading the data…"
        elif not self._items:
            why = "Pick data first (step 1)"
        elif busy:
            why = "Wait for the negatives (or cancel them)"
        else:
            why = ""
        self.run.set_can_start(not why, why)
        hint = ""
        if self._items and self.form.has_defaults() and self.form.uses_negatives() and not self.negatives.counts()[0]:
            hint = "No negatives accepted: this loss then trains like the standard one."
        self.objective_hint.setText(hint)
        self.objective_hint.setVisible(bool(hint))

    def loading(self) -> bool:
        """Whether the tab is still filling itself in (defaults, the LLM's state, the last run, its data):
        what a screenshot or a scripted check waits for."""
        runners = (self.defaults_runner, self.data_runner, self.restore_runner, self.run.info_runner)
        return any(r.running for r in runners) or self.generator.default_llm_runner.running

    def shutdown(self) -> None:
        """Cancel running jobs (the trainer saves a checkpoint) and wait briefly for them."""
        self.generator.cancel()
        self.data_runner.cancel()
        self.run.shutdown()
        self._defaults_pool.waitForDone(10000)
