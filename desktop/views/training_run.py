"""The Training tab's run: start, cancel, resume, live plots, the run folder, and "Use this model".

Why its own widget: a training run outlives the window. Every epoch ends in a checkpoint and a cancel saves
one mid-epoch, so after a restart the tab must find the last run on disk (its settings, how far it got, its
curves) and offer to resume it with those settings, exactly as after a cancel in the same session. This panel
owns that state and the training job: the job writes the run's files (the reviewed negatives, an official
dataset's items) on the worker and then trains; epoch reports cross to the GUI thread through a queued
signal and grow the loss and validation plots. The tab decides what to train (data, negatives, settings);
the panel decides how a run goes.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from PySide6.QtCore import QObject, Qt, QThreadPool, QUrl, Signal
from PySide6.QtGui import QDesktopServices
from PySide6.QtWidgets import QHBoxLayout, QLabel, QProgressBar, QPushButton, QVBoxLayout, QWidget

from desktop.engine_api import EngineApi
from desktop.jobs import JobRunner, describe_error, format_eta
from desktop.views.plot import LivePlot
from desktop.views.training_form import OBJECTIVES

LOSS_SERIES = "train loss"
METRIC_SERIES = {"t2v_R1": "R@1 text→video", "comp_all": "compositional accuracy"}
NO_VALIDATION = "No validation set: it needs two or more videos and a validation share above 0"


def _loss(objective: str) -> str:
    return OBJECTIVES.get(objective, (objective, ""))[0]


def open_path(path: Path) -> bool:
    """Show a folder in the system's file manager (tests replace this)."""
    return QDesktopServices.openUrl(QUrl.fromLocalFile(str(path)))


class _EpochRelay(QObject):
    """Lives on the GUI thread; the trainer's ``on_epoch`` emits from the worker, so delivery is queued."""

    epoch = Signal(int, object)  # run number, EpochReport


def _call(fn: Any, *args: Any, progress: Any = None, cancel: Any = None) -> Any:
    """Run an engine call that takes no progress/cancel as a job (reading a run folder)."""
    return fn(*args)


def _train_job(
    engine: EngineApi,
    config: Any,
    prepare: Callable[[], object] | None,
    on_epoch: Callable[[Any], None],
    *,
    progress: Any = None,
    cancel: Any = None,
) -> Any:
    """On the worker: make the run folder, write its input files, train."""
    Path(config.out).mkdir(parents=True, exist_ok=True)
    if prepare is not None:
        prepare()
    return engine.train(config, on_epoch=on_epoch, progress=progress, cancel=cancel)


class RunPanel(QWidget):
    """Buttons, progress and run folder of step 4; ``loss_plot``/``metric_plot`` are placed by the tab."""

    status = Signal(str)
    start_requested = Signal()
    use_model_requested = Signal(str)
    busy_changed = Signal(bool)
    run_found = Signal(object)  # TrainingRun found on disk at startup (the tab shows its settings)

    def __init__(self, engine: EngineApi, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.engine = engine
        self._config: Any = None  # TrainConfig of the current (or last) run: Resume reuses it
        self._result: Any = None  # TrainResult of the last finished run
        self._info: Any = None  # TrainingRun read from disk (after a restart, a cancel or a failure)
        self._best: Path | None = None  # what "Use this model" adopts
        self._run = 0
        self._can_start, self._why_not = False, "Pick data first"
        self._pool = QThreadPool(self)  # its own pool, so shutdown can wait for training alone
        self._pool.setMaxThreadCount(1)
        self.train_runner = JobRunner(self, self._pool, background=True)
        self.info_runner = JobRunner(self)
        self._relay = _EpochRelay(self)
        self._relay.epoch.connect(self._on_epoch)
        self._build()
        self._connect()
        self._update_buttons()

    def _build(self) -> None:
        self.start_button = QPushButton("Start training")
        self.start_button.setObjectName("primary")
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.setToolTip("Stop after the current step; a checkpoint is saved, so Resume continues")
        self.resume_button = QPushButton("Resume")
        self.resume_button.setToolTip("Continue the last run from its latest checkpoint, with its own settings")
        self.use_button = QPushButton("Use this model")
        self.use_button.setToolTip("Search with the trained model; the library re-indexes in the background")
        self.progress = QProgressBar()
        self.progress.setRange(0, 1000)
        self.progress.setTextVisible(False)
        self.progress.hide()  # until there is a run to show (started here, or found on disk)
        self.run_status = QLabel("Nothing trained yet")
        self.run_status.setObjectName("muted")
        self.run_status.setWordWrap(True)
        self.folder_label = QLabel("")
        self.folder_label.setObjectName("muted")
        self.folder_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.open_button = QPushButton("Open folder")
        self.open_button.setToolTip("Show the run folder (checkpoints, best/, log.csv) in the file manager")
        self.loss_plot = LivePlot("Training loss", "loss", empty_text="The loss appears as epochs finish")
        self.metric_plot = LivePlot(
            "Validation", "percent", y_range=(0.0, 100.0), empty_text="Validation R@1 appears as epochs finish"
        )
        buttons = QHBoxLayout()
        buttons.setContentsMargins(0, 0, 0, 0)
        for button in (self.start_button, self.cancel_button, self.resume_button):
            buttons.addWidget(button)
        buttons.addStretch(1)
        buttons.addWidget(self.open_button)
        buttons.addWidget(self.use_button)
        result = QHBoxLayout()
        result.setContentsMargins(0, 0, 0, 0)
        result.addWidget(self.run_status, 1)
        result.addWidget(self.folder_label)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addLayout(buttons)
        layout.addWidget(self.progress)
        layout.addLayout(result)

    def _connect(self) -> None:
        self.start_button.clicked.connect(self.start_requested)
        self.cancel_button.clicked.connect(self.cancel)
        self.resume_button.clicked.connect(self.resume)
        self.use_button.clicked.connect(self.use_model)
        self.open_button.clicked.connect(self.open_folder)
        self.train_runner.progress.connect(self._progress)
        self.train_runner.finished.connect(self._done)
        self.train_runner.failed.connect(self._failed)
        self.train_runner.cancelled.connect(self._cancelled)
        self.train_runner.running_changed.connect(self._running_changed)
        self.info_runner.finished.connect(self._info_read)
        self.info_runner.failed.connect(lambda exc: self._say(f"Cannot read the run folder: {describe_error(exc)}"))

    # -- runs ------------------------------------------------------------------------------------------

    def new_run_folder(self) -> Path:
        """A fresh, time-stamped folder under the library's training folder (made by the job)."""
        root = self.engine.training_folder()
        name = time.strftime("run-%Y%m%d-%H%M%S")
        n = 1
        while (root / name).exists():
            n += 1
            name = time.strftime("run-%Y%m%d-%H%M%S") + f"-{n}"
        return root / name

    def launch(self, config: Any, prepare: Callable[[], object] | None = None) -> None:
        """Start ``config`` (a fresh run clears the plots); ``prepare`` writes the run's files on the worker."""
        if not config.resume:
            self.loss_plot.clear()
            self.metric_plot.clear()
            self._result, self._best, self._info = None, None, None
        self._config = config
        self._run += 1
        run = self._run
        self.progress.setValue(0)
        self.progress.show()
        self._show_folder(Path(config.out))
        verb = "Resuming" if config.resume else "Starting"
        self._say(f"{verb}: {_loss(config.objective)}, {config.epochs} epochs", error=False, emit=False)
        self.train_runner.start(
            _train_job, self.engine, config, prepare, lambda report: self._relay.epoch.emit(run, report)
        )
        self.status.emit(f"Training {'resumed' if config.resume else 'started'}")

    def resume(self) -> None:
        config = self._info.config if self._info is not None else self._config
        if config is not None and self.can_resume():
            self.launch(dataclasses.replace(config, resume=True))

    def cancel(self) -> None:
        if self.train_runner.running:
            self._say("Stopping at the next step; a checkpoint is saved…", emit=False)
            self.train_runner.cancel()

    def find_last_run(self) -> None:
        """Read the most recent run on disk (a worker job): a resumable one enables Resume."""
        if not self.train_runner.running and self._config is None:
            self.info_runner.start(_call, self.engine.last_training_run)

    def can_resume(self) -> bool:
        return not self.train_runner.running and self._info is not None and self._info.resumable

    def use_model(self) -> None:
        if self._best is not None:
            self.use_model_requested.emit(str(self._best))
            self._say(f"Re-indexing the library with {self._best.parent.name}; searches keep working meanwhile")

    def open_folder(self) -> None:
        folder = self.folder()
        if folder is not None:
            open_path(folder if folder.exists() else folder.parent)

    def folder(self) -> Path | None:
        if self._config is not None:
            return Path(self._config.out)
        return Path(self._info.folder) if self._info is not None else None

    def set_can_start(self, ok: bool, why_not: str = "") -> None:
        """Whether the tab has what a fresh run needs (data, settings); ``why_not`` becomes the tooltip."""
        self._can_start, self._why_not = ok, why_not
        self._update_buttons()

    def show_error(self, text: str) -> None:
        self._say(text, error=True)

    def training(self) -> bool:
        return self.train_runner.running

    def best(self) -> Path | None:
        return self._best

    def shutdown(self) -> None:
        """Cancel training (the trainer saves a checkpoint) and wait briefly for it."""
        self.train_runner.cancel()
        self._pool.waitForDone(10000)

    # -- job results -----------------------------------------------------------------------------------

    def _on_epoch(self, run: int, report: Any) -> None:
        if run != self._run:
            return  # a superseded run's late report
        self._plot(report)
        epochs = self._config.epochs if self._config is not None else report.epoch
        r1 = report.metrics.get("t2v_R1")
        shown = f", R@1 {r1:.1f}%" if r1 is not None else ""
        self._say(f"Epoch {report.epoch} of {epochs}: loss {report.train_loss:.3f}{shown}", emit=False)

    def _plot(self, report: Any) -> None:
        self.loss_plot.add_point(LOSS_SERIES, report.epoch, report.train_loss)
        for key, label in METRIC_SERIES.items():
            if key in report.metrics:
                self.metric_plot.add_point(label, report.epoch, report.metrics[key])
        if not report.metrics:
            self.metric_plot.set_empty_text(NO_VALIDATION)

    def _progress(self, fraction: float, message: str, eta: float) -> None:
        self.progress.setValue(round(fraction * self.progress.maximum()))
        self._say(" · ".join(t for t in (message, format_eta(eta)) if t), emit=False)

    def _done(self, result: Any) -> None:
        self._result, self._best = result, Path(result.best_checkpoint)
        self.progress.setValue(self.progress.maximum())
        best = f"; best R@1 {result.best_metric:.1f}%" if result.best_metric is not None else ""
        early = " (stopped early: no better validation R@1)" if getattr(result, "stopped_early", False) else ""
        self._say(f"Finished{early}{best}. The model is in {self._best.parent.name}/{self._best.name}")
        self._info = None
        self._update_buttons()

    def _failed(self, exc: object) -> None:
        self._say(f"Training failed: {describe_error(exc)}", error=True)
        self._read_info()

    def _cancelled(self) -> None:
        self._say("Cancelled; a checkpoint was saved")
        self._read_info()

    def _read_info(self) -> None:
        if self._config is not None:
            self.info_runner.start(_call, self.engine.training_run, Path(self._config.out))
        self._update_buttons()

    def _info_read(self, info: Any) -> None:
        """A run folder read from disk: after a restart (restore everything) or after a stop (resumability)."""
        if info is None or self.train_runner.running:
            self._update_buttons()
            return
        restored = self._config is None
        self._info = info
        self._show_folder(Path(info.folder))
        if restored:
            for report in info.history:
                self._plot(report)
            self.progress.setValue(round(1000 * min(1.0, info.epochs_done / max(1, info.config.epochs))))
            self.progress.show()
            self.run_found.emit(info)
        if info.resumable:
            where = f", epoch {info.epochs_done + 1} part-way" if info.mid_epoch else ""
            text = f"A run can be resumed (epoch {info.epochs_done} of {info.config.epochs} done{where})"
            self._say(f"{text}: {_loss(info.config.objective)}, in {Path(info.folder).name}", error=False)
        elif restored:
            self._best = Path(info.best) if info.best is not None else None
            best = f", best R@1 {info.best_metric:.1f}%" if info.best_metric is not None else ""
            early = ", stopped early" if info.stopped_early else ""
            self._say(f"The last run finished ({info.epochs_done} epochs{early}{best})", error=False)
        self._update_buttons()

    # -- state -----------------------------------------------------------------------------------------

    def _running_changed(self, running: bool) -> None:
        self._update_buttons()
        self.busy_changed.emit(running)

    def _update_buttons(self) -> None:
        training = self.train_runner.running
        self.start_button.setEnabled(self._can_start and not training)
        self.start_button.setToolTip("" if self._can_start else self._why_not)
        self.cancel_button.setEnabled(training)
        self.resume_button.setEnabled(self.can_resume())
        if self._info is not None and self._info.resumable:
            info = self._info
            self.resume_button.setText(f"Resume (epoch {info.epochs_done} of {info.config.epochs})")
        else:
            self.resume_button.setText("Resume")
        self.use_button.setEnabled(self._best is not None and not training)
        self.open_button.setVisible(self.folder() is not None)

    def _show_folder(self, folder: Path) -> None:
        self.folder_label.setText(f"Run folder: {folder.name}")
        self.folder_label.setToolTip(str(folder))

    def _say(self, text: str, *, error: bool = False, emit: bool = True) -> None:
        self.run_status.setText(text)
        name = "errorText" if error else "muted"
        if self.run_status.objectName() != name:
            self.run_status.setObjectName(name)
            self.run_status.style().unpolish(self.run_status)
            self.run_status.style().polish(self.run_status)
        if emit:
            self.status.emit(text)
