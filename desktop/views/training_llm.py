"""The Training tab's LLM chooser: which local model writes the negatives, or none (rule-based swaps).

Why a choice: negatives are written by a llama.cpp GGUF model on this computer. The default (a small
instruct model) is a 1 GB download, fetched once with progress and cancel; a user may already have a GGUF
file, or may want no LLM at all (the rule-based swap from the captions' own vocabulary: fast, offline, less
varied). A chosen file is checked at once (the engine reads its GGUF header) so a wrong or truncated file is
named before any work starts, not half-way through. The widget holds the choice and shows its state; the tab
runs the check and the download as jobs. The choice (and the last file) is remembered across restarts in
``QSettings``: a user who picked a file or rule-based swaps should not pick it again every session.
"""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path
from typing import Any

from PySide6.QtCore import QSettings, Signal
from PySide6.QtWidgets import (
    QComboBox,
    QFileDialog,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from desktop.engine_api import size_text

DEFAULT, FILE, RULES = "default", "file", "rules"
KIND_KEY, FILE_KEY = "training/llm", "training/llm_file"
_URL = re.compile(r"https?://([^/\s]+)/\S*")
GGUF_FILTER = "GGUF models (*.gguf);;All files (*)"
RULES_TEXT = (
    "No LLM: each component word is swapped for another word of the same kind from your captions' own "
    "vocabulary (checked by parsing). Fast and offline; less varied than an LLM."
)


class LlmPicker(QWidget):
    """Default model / a GGUF file / rule-based only, with the chosen model's state in words.

    ``file_chosen(path)`` asks the tab to check a file; ``download_requested`` to fetch the default model;
    ``changed`` whenever what ``llm_path()``/``ready()`` answer may have changed."""

    changed = Signal()
    file_chosen = Signal(object)  # Path
    download_requested = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._default: Any = None  # LlmModel, once the tab has asked the engine
        self._file_ok: bool | None = None  # None: not checked (or checking)
        self._file_message = ""  # the last check's words
        self._default_error = ""  # the last download's failure
        self._downloading = False
        self.kind = QComboBox()
        self.kind.addItem("Default model (downloaded once)", DEFAULT)
        self.kind.addItem("A GGUF model file on this computer", FILE)
        self.kind.addItem("Rule-based only (no LLM)", RULES)
        self.kind.setToolTip("Which model writes the negatives (llama.cpp, on this computer)")
        self.file_edit = QLineEdit()
        self.file_edit.setPlaceholderText("path/to/model.gguf (an instruct LLM)")
        self.file_edit.editingFinished.connect(self._file_typed)
        self.browse_button = QPushButton("Browse…")
        self.browse_button.clicked.connect(self.browse)
        self.download_button = QPushButton("Download now")
        self.download_button.setToolTip("Fetch the default model now (otherwise Generate fetches it first)")
        self.download_button.clicked.connect(self.download_requested)
        self.choose_button = QPushButton("Choose a GGUF file…")
        self.choose_button.setToolTip("Use a GGUF model file you already have")
        self.choose_button.clicked.connect(self._choose_file)
        self.rules_button = QPushButton("Use rule-based only")
        self.rules_button.setToolTip("Generate negatives without an LLM")
        self.rules_button.clicked.connect(lambda: self.set_kind(RULES))
        self.state = QLabel("")
        self.state.setWordWrap(True)
        self.state.setObjectName("muted")
        file_row = QHBoxLayout()
        file_row.setContentsMargins(0, 0, 0, 0)
        file_row.addWidget(self.file_edit, 1)
        file_row.addWidget(self.browse_button)
        self._file_row = QWidget()
        self._file_row.setLayout(file_row)
        buttons = QHBoxLayout()
        buttons.setContentsMargins(0, 0, 0, 0)
        buttons.addWidget(self.state, 1)
        buttons.addWidget(self.choose_button)
        buttons.addWidget(self.download_button)
        buttons.addWidget(self.rules_button)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        kind_row = QHBoxLayout()
        kind_row.setContentsMargins(0, 0, 0, 0)
        kind_row.addWidget(QLabel("Written by"))
        kind_row.addWidget(self.kind, 1)
        layout.addLayout(kind_row)
        layout.addWidget(self._file_row)
        layout.addLayout(buttons)  # the state in words, and beside it what can be done about it
        self.kind.currentIndexChanged.connect(self._kind_changed)
        self.kind.currentIndexChanged.connect(lambda: QSettings().setValue(KIND_KEY, self.choice()))
        self._kind_changed()

    def restore(self) -> None:
        """Take the last session's choice back (call once the tab listens: a remembered file is checked again,
        since it may have moved or changed since)."""
        settings = QSettings()
        path = settings.value(FILE_KEY, "", type=str)
        if path:
            self.file_edit.setText(path)
        self.set_kind(settings.value(KIND_KEY, DEFAULT, type=str))

    # -- the choice ------------------------------------------------------------------------------------

    def choice(self) -> str:
        return str(self.kind.currentData())

    def set_kind(self, kind: str) -> None:
        self.kind.setCurrentIndex(max(0, self.kind.findData(kind)))

    def file(self) -> Path | None:
        text = self.file_edit.text().strip()
        return Path(text).expanduser() if text else None

    def set_file(self, path: Path) -> None:
        """Choose a GGUF file (browsed, typed or scripted); the tab is asked to check it."""
        self.set_kind(FILE)
        self.file_edit.setText(str(path))
        self._file_typed()

    def browse(self) -> None:
        name, _ = QFileDialog.getOpenFileName(self, "LLM for negatives", str(self.file() or ""), GGUF_FILTER)
        if name:
            self.set_file(Path(name))

    def needs_download(self) -> bool:
        """The default model is chosen and not on this computer yet (Generate fetches it first)."""
        return self.choice() == DEFAULT and self._default is not None and not self._default.cached

    def ready(self) -> bool:
        """Whether Generate can start: rules, a checked file, or the default model (present or fetchable)."""
        kind = self.choice()
        if kind == RULES:
            return True
        if kind == FILE:
            return self._file_ok is True
        return self._default is not None and not self._downloading

    def llm_path(self) -> Path | None:
        """The GGUF file the negatives are written with; None means rule-based."""
        kind = self.choice()
        if kind == FILE and self._file_ok:
            return self.file()
        if kind == DEFAULT and self._default is not None and self._default.cached:
            return Path(self._default.path)
        return None

    def describe(self) -> str:
        """The choice in a few words, for status lines."""
        kind = self.choice()
        if kind == RULES:
            return "rule-based swaps"
        if kind == FILE:
            return self.file().name if self.file() else "a GGUF file"
        return self._default.name if self._default is not None else "the default model"

    # -- state the tab reports -------------------------------------------------------------------------

    def set_default_model(self, model: Any) -> None:
        """The engine's ``LlmModel`` for the default (name, size, path, downloaded or not)."""
        self._default = model
        self._downloading = False
        self._default_error = ""
        self._refresh()

    def set_downloaded(self, path: Path) -> None:
        """The default model has just been fetched to ``path``."""
        if self._default is not None:
            self._default = dataclasses.replace(self._default, cached=True, path=path)
        self.set_downloading(False)

    def set_default_failed(self, text: str) -> None:
        """The download failed (no network, checksum, disk): say why (``text``, a sentence for the user) and
        offer the other choices: a file, again, or rule-based swaps."""
        self._downloading = False
        self._default_error = text
        self._refresh()

    def set_downloading(self, downloading: bool) -> None:
        self._downloading = downloading
        if downloading:
            self._default_error = ""
        self._refresh()

    def set_file_checking(self) -> None:
        self._file_ok, self._file_message = None, "Checking the file…"
        self._refresh()

    def set_file_result(self, ok: bool, text: str) -> None:
        """The engine's check of the chosen file: a description, or its error (which names the file)."""
        self._file_ok, self._file_message = ok, (f"✓ {text}" if ok else text)
        self._refresh()

    def is_error(self) -> bool:
        return self.state.objectName() == "errorText"

    # -- internals -------------------------------------------------------------------------------------

    def _show(self, text: str, *, error: bool = False) -> None:
        self.state.setText(_URL.sub(r"\1/…", text))  # a download URL is long and says little; the host does
        self.state.setToolTip(text if error else "")
        self.state.setObjectName("errorText" if error else "muted")
        self.state.style().unpolish(self.state)  # the style sheet picks the new object name up
        self.state.style().polish(self.state)

    def _choose_file(self) -> None:
        self.set_kind(FILE)
        self.browse()

    def _file_typed(self) -> None:
        path = self.file()
        if self.choice() != FILE:
            return
        QSettings().setValue(FILE_KEY, str(path or ""))
        if path is None:
            self._file_ok, self._file_message = None, ""
            self._refresh()
            return
        self.set_file_checking()
        self.file_chosen.emit(path)

    def _kind_changed(self) -> None:
        if self.choice() == FILE and self._file_ok is None and self.file() is not None:
            self._file_typed()  # a typed path not checked yet
        self._refresh()

    def _refresh(self) -> None:
        kind = self.choice()
        self._file_row.setVisible(kind == FILE)
        failed = (kind == FILE and self._file_ok is False) or (kind == DEFAULT and bool(self._default_error))
        self.rules_button.setVisible(failed)
        self.choose_button.setVisible(kind == DEFAULT and bool(self._default_error))
        self.download_button.setVisible(kind == DEFAULT and self.needs_download() and not self._downloading)
        self.download_button.setText("Try again" if self._default_error else "Download now")
        if kind == RULES:
            self._show(RULES_TEXT)
        elif kind == FILE:
            self._show(
                self._file_message or "Choose a .gguf file (an instruct LLM, e.g. Qwen2.5 1.5B Instruct Q4_K_M)",
                error=self._file_ok is False,
            )
        elif self._default_error:
            self._show(self._default_error, error=True)
        elif self._downloading:
            self._show("Downloading the default model…")
        elif self._default is None:
            self._show("Looking for the default model…")
        else:
            size = size_text(self._default.size) if self._default.size else "size unknown"
            if self._default.cached:
                self._show(f"{self._default.name} ({size}), on this computer")
            else:
                self._show(f"{self._default.name} ({size}) is not on this computer yet; it downloads once.")
        self.changed.emit()
