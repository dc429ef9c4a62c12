"""Step 2 of the Training tab: generate negatives for the captions, with the LLM the user chose.

Why its own widget: generating negatives has more states than any other step. The default LLM may first
need a 1 GB download (progress, cancel, resume next time, and a failure that must say why and offer the other
choices); a chosen GGUF file is checked before use; generation itself is a long job with progress and
cancel whose finished captions are cached by the engine. This widget owns those jobs and their states and
hands the ``NegativeReport`` to the tab, which shows it for review.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from PySide6.QtCore import Signal
from PySide6.QtWidgets import QHBoxLayout, QLabel, QProgressBar, QPushButton, QSpinBox, QVBoxLayout, QWidget

from desktop.engine_api import EngineApi
from desktop.jobs import JobRunner, describe_error, format_eta
from desktop.problems import LLM_DOWNLOAD, explain
from desktop.views.training_llm import LlmPicker


def _call(fn: Any, *args: Any, progress: Any = None, cancel: Any = None) -> Any:
    """Run a quick engine call that takes no progress/cancel as a job (a file check, a file lookup)."""
    return fn(*args)


class NegativesGenerator(QWidget):
    """LLM choice, negatives per component, Generate/Cancel, progress and the outcome in words.

    ``generated(report)`` with the engine's ``NegativeReport``; ``busy_changed`` while a download or a
    generation runs (the tab holds training back meanwhile)."""

    generated = Signal(object)
    busy_changed = Signal(bool)

    def __init__(self, engine: EngineApi, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.engine = engine
        self._captions: list[str] = []
        self._generate_after_download = False
        self._allowed = True  # False while training runs
        self.negatives_runner = JobRunner(self)
        self.llm_runner = JobRunner(self)  # the check of a chosen GGUF file
        self.default_llm_runner = JobRunner(self)  # whether the default model is on this computer
        self.download_runner = JobRunner(self)
        self.llm_picker = LlmPicker()
        self.per_component = QSpinBox()
        self.per_component.setRange(1, 16)
        self.per_component.setValue(4)
        self.per_component.setToolTip(
            "Negatives kept per component (subject, verb, object, attribute) and caption; the trainer draws a "
            "fresh one each epoch, so several keep the model from memorising them"
        )
        self.generate_button = QPushButton("Generate negatives")
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.setToolTip("Stop; finished captions (and a partial download) are kept for next time")
        self.progress = QProgressBar()
        self.progress.setRange(0, 1000)
        self.progress.setTextVisible(False)
        self.progress.hide()
        self.status = QLabel("Pick data first")
        self.status.setObjectName("muted")
        self.status.setWordWrap(True)
        per = QLabel("Per component")
        per.setToolTip(self.per_component.toolTip())
        row = QHBoxLayout()
        row.setContentsMargins(0, 0, 0, 0)
        row.addWidget(per)
        row.addWidget(self.per_component)
        row.addStretch(1)
        row.addWidget(self.generate_button)
        row.addWidget(self.cancel_button)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.llm_picker)
        layout.addLayout(row)
        layout.addWidget(self.progress)
        layout.addWidget(self.status)
        self._connect()
        self.llm_picker.restore()
        self._update()

    def _connect(self) -> None:
        self.llm_picker.file_chosen.connect(lambda path: self.llm_runner.start(_call, self.engine.check_llm, path))
        self.llm_picker.download_requested.connect(self.download_llm)
        self.llm_picker.changed.connect(self._update)
        self.llm_picker.kind.currentIndexChanged.connect(self._choice_changed)
        self.llm_runner.finished.connect(lambda text: self.llm_picker.set_file_result(True, str(text)))
        self.llm_runner.failed.connect(lambda exc: self.llm_picker.set_file_result(False, describe_error(exc)))
        self.default_llm_runner.finished.connect(self.llm_picker.set_default_model)
        self.default_llm_runner.failed.connect(
            lambda exc: self.llm_picker.set_default_failed(
                f"Cannot tell whether the default model is here: {describe_error(exc)}"
            )
        )
        self.download_runner.progress.connect(self._progress)
        self.download_runner.finished.connect(self._downloaded)
        self.download_runner.failed.connect(self._download_failed)
        self.download_runner.cancelled.connect(self._download_cancelled)
        self.generate_button.clicked.connect(self.generate)
        self.cancel_button.clicked.connect(self.cancel)
        self.negatives_runner.progress.connect(self._progress)
        self.negatives_runner.finished.connect(self._done)
        self.negatives_runner.failed.connect(lambda exc: self._ended(describe_error(exc), error=True))
        self.negatives_runner.cancelled.connect(
            lambda: self._ended("Generation cancelled; finished captions are kept for next time")
        )
        for runner in (self.negatives_runner, self.download_runner):
            runner.running_changed.connect(self._running_changed)

    # -- public ----------------------------------------------------------------------------------------

    def look_up_default(self) -> None:
        """Ask (on a worker) whether the default model is on this computer; the first time the tab shows."""
        self.default_llm_runner.start(_call, self.engine.default_llm)

    def set_captions(self, captions: list[str], *, announce: bool = True) -> None:
        """The captions to write negatives for; ``announce`` says what to do next (not when the table already
        holds negatives for them)."""
        self._captions = list(dict.fromkeys(captions))
        if self._captions and announce and not self.busy():
            self.say("Generate negatives to review them, or train without them")
        self._update()

    def set_allowed(self, allowed: bool) -> None:
        """Training holds generation back (both would compete for the CPU)."""
        self._allowed = allowed
        self._update()

    def busy(self) -> bool:
        return self.negatives_runner.running or self.download_runner.running

    def generate(self) -> None:
        if not self._captions or not self.llm_picker.ready() or self.busy():
            return
        if self.llm_picker.needs_download():
            self._generate_after_download = True
            self.download_llm()
            return
        self.progress.setValue(0)
        self.progress.show()
        self.say(f"Generating negatives for {len(self._captions)} captions with {self.llm_picker.describe()}…")
        self.negatives_runner.start(
            self.engine.generate_negatives,
            self._captions,
            llm=self.llm_picker.llm_path(),
            per_component=self.per_component.value(),
        )

    def download_llm(self) -> None:
        """Fetch the default model (about 1 GB) as a job with progress; Cancel keeps the part for later."""
        if self.download_runner.running:
            return
        self.llm_picker.set_downloading(True)
        self.progress.setValue(0)
        self.progress.show()
        self.say("Downloading the default model…")
        self.download_runner.start(self.engine.download_llm)

    def cancel(self) -> None:
        self.download_runner.cancel()
        self.negatives_runner.cancel()

    # -- job results -----------------------------------------------------------------------------------

    def _progress(self, fraction: float, message: str, eta: float) -> None:
        self.progress.show()
        self.progress.setValue(round(fraction * self.progress.maximum()))
        self.say(" · ".join(t for t in (message, format_eta(eta)) if t))

    def _downloaded(self, path: Path) -> None:
        self.llm_picker.set_downloaded(Path(path))
        self._ended(f"Downloaded {Path(path).name}")
        if self._generate_after_download:
            self._generate_after_download = False
            self.generate()

    def _download_failed(self, exc: object) -> None:
        waiting, self._generate_after_download = self._generate_after_download, False
        problem = explain(exc)
        said = problem.text if problem.kind == LLM_DOWNLOAD else f"Could not download the default model: {problem.text}"
        self.llm_picker.set_default_failed(said)
        if waiting:  # Generate asked for the download: say that nothing was generated
            self._ended("No negatives written: the default model is not on this computer (see above)", error=True)
        else:  # "Download now": the picker above says what happened; nothing was to be generated
            self._ended("")

    def _download_cancelled(self) -> None:
        self._generate_after_download = False
        self.llm_picker.set_downloading(False)
        self._ended("Download cancelled; the part already fetched is kept, and the next download resumes it")

    def _done(self, report: Any) -> None:
        total = sum(len(v) for item in report.items for v in item.negatives.values())
        valid = [f"{k} {100 * v:.0f}%" for k, v in report.validity.items() if v == v]  # NaN: none proposed
        model = getattr(report, "model", "rules")
        by = "rule-based swaps" if model == "rules" else model.split("#")[0]
        cached = getattr(report, "cached", 0)
        self._ended(
            f"{total} negatives for {len(report.items)} captions, by {by}"
            + (f" ({cached} from the cache)" if cached else "")
            + (f"; LLM proposals valid: {', '.join(valid)}" if valid else "")
        )
        self.generated.emit(report)

    def _choice_changed(self) -> None:
        """Another LLM choice: an outcome about the previous one no longer applies."""
        if not self.busy() and self._captions:
            self.say("Generate negatives to review them, or train without them")

    def _ended(self, text: str, *, error: bool = False) -> None:
        self.progress.hide()
        self.say(text, error=error)
        self._update()

    def _running_changed(self, _: bool) -> None:
        self._update()
        self.busy_changed.emit(self.busy())

    def _update(self) -> None:
        busy = self.busy()
        ready = bool(self._captions) and self._allowed and self.llm_picker.ready()
        self.generate_button.setEnabled(ready and not busy)
        if not self._captions:
            self.generate_button.setToolTip("Pick data first (step 1)")
        elif not self._allowed:
            self.generate_button.setToolTip("Not while training runs")
        elif not self.llm_picker.ready():
            self.generate_button.setToolTip("The chosen LLM is not usable; see above")
        elif self.llm_picker.needs_download():
            self.generate_button.setToolTip("Downloads the default model first (once), then writes the negatives")
        else:
            self.generate_button.setToolTip(f"Write negatives for {len(self._captions)} captions")
        self.cancel_button.setEnabled(busy)
        self.llm_picker.setEnabled(not busy)
        self.per_component.setEnabled(not busy)

    def say(self, text: str, *, error: bool = False) -> None:
        self.status.setText(text)
        name = "errorText" if error else "muted"
        if self.status.objectName() != name:
            self.status.setObjectName(name)
            self.status.style().unpolish(self.status)
            self.status.style().polish(self.status)
