"""Whether the search model can work now, said in the window's banner with the ways out.

Why: on a first start with no network, the app used to open without a word about its model; adding a
folder then raised a modal with command-line advice (``--model ViT-B-32@/path/...``, a raw ``[Errno -2]``)
and the folder stayed "Waiting" forever. The guard checks the model when the window opens (on a worker: it
imports open_clip and asks the model hub within seconds) and again whenever the model changes or indexing
or a search runs into a model problem. Its banner says what is the matter and offers what a user can do:
download now, choose a model file they have, try again, or try a demo model that needs no download. A model
the user chooses is checked before it replaces the settings' one, so a wrong file never leaves the library
with an unusable model.
"""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QObject, QSettings, Signal
from PySide6.QtWidgets import QFileDialog, QWidget

from desktop.engine_api import EngineApi, ModelState
from desktop.jobs import JobRunner, describe_error, format_eta
from desktop.problems import DEMO_MODELS, MODEL_DOWNLOAD, Problem, explain, is_demo, model_label
from desktop.views.banner import Action, Banner
from engine.settings import DEFAULT_MODEL

CHECKPOINT_FILTER = "Model weights or config.json (*.safetensors *.pt *.pth *.bin config.json);;All files (*)"
LAST_DIR_KEY = "model/last_dir"


def checkpoint_name(chosen: Path, current: str) -> str:
    """The model name for a file the user picked: its folder when it is a checkpoint folder's config.json or
    sits beside one, else ``ARCH@file`` with the architecture of the current (or default) open_clip model."""
    chosen = Path(chosen)
    if chosen.name == "config.json" or (chosen.parent / "config.json").is_file():
        return str(chosen.parent)
    arch = current.removeprefix("open_clip:").split("/")[0].split("@")[0]
    if ":" in arch or not arch or arch.startswith(("/", "~", ".")) or arch in DEMO_MODELS:
        arch = DEFAULT_MODEL.split("/")[0]
    return f"{arch}@{chosen}"


def ask_for_checkpoint(parent: QWidget | None) -> Path | None:
    """A file dialog for a model file; tests replace this."""
    start = QSettings().value(LAST_DIR_KEY, str(Path.home()), type=str)
    name, _ = QFileDialog.getOpenFileName(parent, "Choose a model file", start, CHECKPOINT_FILTER)
    if not name:
        return None
    QSettings().setValue(LAST_DIR_KEY, str(Path(name).parent))
    return Path(name)


class ModelGuard(QObject):
    """``changed`` after every new verdict; ``use_model(name)`` when the user chose a model that checked out
    (the window switches to it); ``settings_requested`` for the Settings dialog."""

    changed = Signal()
    use_model = Signal(str)
    settings_requested = Signal()

    def __init__(self, engine: EngineApi, banner: Banner, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.engine = engine
        self.banner = banner
        self._window = parent
        self._state: ModelState | None = None
        self._problem: Problem | None = None
        self._candidate: str | None = None  # a model the user chose, being checked
        self.ask_for_checkpoint = ask_for_checkpoint
        self.check_runner = JobRunner(self)
        self.check_runner.finished.connect(self._checked)
        self.check_runner.failed.connect(lambda exc: self._verdict(ModelState(self._name(), problem=exc)))
        self.download_runner = JobRunner(self, background=True)
        self.download_runner.progress.connect(self._download_progress)
        self.download_runner.finished.connect(self._checked)
        self.download_runner.failed.connect(lambda exc: self._verdict(ModelState(self._name(), problem=exc)))
        self.download_runner.cancelled.connect(self._download_cancelled)

    # -- what the rest of the window asks --------------------------------------------------------------

    def problem(self) -> Problem | None:
        """Why the settings' model cannot index or search now (None: it can, or it is not known yet)."""
        return self._problem

    def state(self) -> ModelState | None:
        return self._state

    def busy(self) -> bool:
        return self.check_runner.running or self.download_runner.running

    def actions(self, *, menus: bool = True) -> list[Action]:
        """The ways out of the current problem, most useful first; ``menus=False`` flattens the demo menu to
        its first entry (for pages whose buttons cannot drop a menu down)."""
        demos = [
            (f"{label}: {what}", lambda name=name: self.choose(name)) for name, (label, what) in DEMO_MODELS.items()
        ]
        demo: Action = (
            ("Try a demo model", demos) if menus else (f"Try the {DEMO_MODELS['fake:color'][0].lower()}", demos[0][1])
        )
        choose: Action = ("Choose a model file…", self.choose_checkpoint)
        if self._problem is None:
            return []
        if self._problem.kind == MODEL_DOWNLOAD:
            return [choose, ("Try again", self.check), demo]
        return [
            choose,
            ("Use the default model", lambda: self.choose(DEFAULT_MODEL)),
            ("Settings…", self.settings_requested.emit),
        ]

    # -- checks and downloads --------------------------------------------------------------------------

    def check(self, model: str | None = None) -> None:
        """Check the settings' model (or ``model``, a candidate to switch to) on a worker."""
        if self.download_runner.running:
            return
        self._candidate = model
        self.check_runner.start(_state_of, self.engine, model)

    def choose(self, name: str) -> None:
        """Switch to ``name`` once it checks out (a demo, the default, a file)."""
        if name == self.engine.settings().model:
            self.check()
        else:
            self.check(name)

    def choose_checkpoint(self) -> None:
        chosen = self.ask_for_checkpoint(self._window)
        if chosen is not None:
            self.choose(checkpoint_name(chosen, self.engine.settings().model))

    def download(self) -> None:
        """Fetch the settings' model now, with progress and Cancel in the banner."""
        if self.busy():
            return
        label = model_label(self._name())
        self.banner.show_message(
            "info", f"Downloading {label}", "Starting the download…", [("Cancel", self.download_runner.cancel)]
        )
        self.banner.set_progress(None)
        self.download_runner.start(self.engine.prepare_model)

    def failed(self, exc: object) -> None:
        """Indexing or a search ran into a model problem: show it (and its ways out) without asking again."""
        self._verdict(ModelState(self._name(), problem=exc if isinstance(exc, Exception) else None))

    # -- results ---------------------------------------------------------------------------------------

    def _name(self) -> str:
        return self._candidate or self.engine.settings().model

    def _checked(self, state: ModelState) -> None:
        self._verdict(state)

    def _verdict(self, state: ModelState) -> None:
        candidate, self._candidate = self._candidate, None
        if candidate is not None and state.problem is None:
            self.use_model.emit(candidate)  # the window switches and asks again for the new settings' model
            return
        if candidate is None:
            self._state = state
            self._problem = explain(state.problem) if state.problem is not None else None
        self._show(state, rejected=candidate)
        self.changed.emit()

    def _show(self, state: ModelState, *, rejected: str | None) -> None:
        if rejected is not None and state.problem is not None:
            self.banner.show_message(
                "error",
                f"{model_label(rejected).capitalize()} cannot be used",
                describe_error(state.problem),
                self.actions() or [("Choose a model file…", self.choose_checkpoint)],
            )
            return
        name = state.name
        if self._problem is not None:
            kind = "warning" if self._problem.kind == MODEL_DOWNLOAD else "error"
            self.banner.show_message(kind, self._problem.title, self._problem.text, self.actions())
        elif state.download is not None:
            self.banner.show_message(
                "info",
                "The search model downloads on first use",
                f"Scenefind understands your videos with {model_label(name)}. It is downloaded once from "
                "Hugging Face, the first time you index, and then stays on this computer.",
                [("Download now", self.download)],
            )
        elif is_demo(name):
            label, what = DEMO_MODELS[name]
            self.banner.show_message(
                "info",
                f"You are trying the {label.lower()}",
                f"It {what}. To search in plain words, use a real model.",
                [
                    ("Use the default model", lambda: self.choose(DEFAULT_MODEL)),
                    ("Choose a model file…", self.choose_checkpoint),
                ],
            )
        else:
            self.banner.hide()

    def _download_progress(self, fraction: float, message: str, eta: float) -> None:
        self.banner.set_progress(fraction, " · ".join(t for t in (message, format_eta(eta)) if t))

    def _download_cancelled(self) -> None:
        self.banner.progress.hide()
        self.check()


def _state_of(engine: EngineApi, model: str | None, *, progress: object = None, cancel: object = None) -> ModelState:
    return engine.model_state(model)
