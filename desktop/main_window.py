"""The main window: Library, Search and Training tabs, menus with keyboard shortcuts, themes, settings.

Geometry, splitter positions, the theme, the data folder and the query history live in ``QSettings``
(window state only; engine settings live in the engine's ``settings.toml``). A model change in Settings
offers to re-index in the background; the old model's index keeps answering searches until the new one
is complete, and only then do the settings switch to the new model.
"""

from __future__ import annotations

from PySide6.QtCore import QByteArray, QSettings, Qt
from PySide6.QtGui import QAction, QCloseEvent, QKeySequence, QShortcut
from PySide6.QtWidgets import (
    QApplication,
    QLabel,
    QMainWindow,
    QMenu,
    QMessageBox,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from desktop import theme
from desktop.dialogs.settings_dialog import SettingsDialog
from desktop.engine_api import EngineApi, IndexSummary
from desktop.model_guard import ModelGuard
from desktop.problems import model_label
from desktop.views.banner import Banner
from desktop.views.library_view import LibraryView
from desktop.views.search_view import SearchView
from desktop.views.training_view import TrainingView

DESCRIPTIONS = {  # menu entries whose name alone would say too little in the shortcuts list
    "Library": "Show the Library",
    "Search": "Search: the cursor goes to the search box",
    "Training": "Show the Training tab",
    "Play / pause": "Play / pause (when not typing)",
    "Export clip": "Export the current moment as a clip",
    "Export markers": "Export the moments as editor markers",
    "Subtitles": "Subtitles on / off",
    "Transcript": "Show / hide the transcript beside the video",
}
EXTRA_KEYS = {  # keys that do what a menu entry does, besides the entry's own shortcut
    "Search": ["Ctrl+F", "/"],
    "Next moment": ["Alt+Right"],
    "Previous moment": ["Alt+Left"],
}


class MainWindow(QMainWindow):
    def __init__(self, engine: EngineApi, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.engine = engine
        self.setWindowTitle("Scenefind")
        self.setWindowIcon(theme.app_icon())
        self.resize(1280, 800)
        self.setMinimumSize(900, 600)
        self._pending_model: str | None = None

        self.library_view = LibraryView(engine)
        self.search_view = SearchView(engine)
        self.training_view = TrainingView(engine)
        self.tabs = QTabWidget()
        self.tabs.setDocumentMode(True)
        self.tabs.addTab(self.library_view, "Library")
        self.tabs.addTab(self.search_view, "Search")
        self.tabs.addTab(self.training_view, "Training")
        self.banner = Banner()
        self.model_guard = ModelGuard(engine, self.banner, self)
        central = QWidget()
        column = QVBoxLayout(central)
        column.setContentsMargins(0, 0, 0, 0)
        column.setSpacing(0)
        column.addWidget(self.banner)
        column.addWidget(self.tabs, 1)
        self.setCentralWidget(central)

        self.status_label = QLabel("")
        self.status_label.setObjectName("muted")
        self.statusBar().addPermanentWidget(self.status_label)
        for view in (self.library_view, self.search_view, self.training_view):
            view.status.connect(lambda text: self.statusBar().showMessage(text, 8000))
        self.library_view.library_changed.connect(self._library_changed)
        self.library_view.index_finished.connect(self._index_finished)
        self.search_view.library_requested.connect(lambda: self.tabs.setCurrentWidget(self.library_view))
        self.training_view.use_model_requested.connect(self.use_trained_model)
        self.model_guard.changed.connect(self._model_checked)
        self.model_guard.use_model.connect(self.switch_model)
        self.model_guard.settings_requested.connect(self.open_settings)
        self.library_view.model_failed.connect(self.model_guard.failed)
        self.search_view.model_failed.connect(self.model_guard.failed)
        self.search_view.index_requested.connect(self._index_from_search)

        self._build_menus()
        self._restore()
        self._library_changed()
        folders = self._safe_folders()
        self.tabs.setCurrentWidget(self.search_view if any(f.indexed for f in folders) else self.library_view)

    # -- menus and shortcuts ----------------------------------------------------------------------------

    def _action(self, menu, text: str, slot, shortcut: str | QKeySequence.StandardKey | None = None) -> QAction:
        action = QAction(text, self)
        if shortcut is not None:
            action.setShortcut(QKeySequence(shortcut))
        action.triggered.connect(slot)
        menu.addAction(action)
        return action

    def shortcut_rows(self) -> list[tuple[str, str]]:
        """(keys, what they do) for every menu entry with a shortcut, read from the menus themselves, so the
        list cannot leave one out (it once omitted the export keys)."""
        rows = []
        menus = [a.menu() for a in self.menuBar().actions() if isinstance(a.menu(), QMenu)]
        for menu in menus:
            for action in menu.actions():
                if action.shortcut().isEmpty():
                    continue
                name = action.text().replace("&", "").rstrip("…").strip()
                keys = [action.shortcut().toString(QKeySequence.SequenceFormat.NativeText), *EXTRA_KEYS.get(name, [])]
                rows.append((" or ".join(keys), DESCRIPTIONS.get(name, name)))
        return rows

    def _build_menus(self) -> None:
        bar = self.menuBar()
        file = bar.addMenu("&File")
        self._action(file, "Add folder…", self.library_view.add_folder_dialog, "Ctrl+O")
        self._action(file, "Settings…", self.open_settings, "Ctrl+,")
        file.addSeparator()
        self._action(file, "Quit", self.close, QKeySequence.StandardKey.Quit)
        view = bar.addMenu("&View")
        self._action(view, "Library", lambda: self.tabs.setCurrentIndex(0), "Ctrl+1")
        self._action(view, "Search", self.focus_search, "Ctrl+2")
        self._action(view, "Training", lambda: self.tabs.setCurrentIndex(2), "Ctrl+3")
        view.addSeparator()
        self._action(view, "Switch light / dark theme", self.toggle_theme, "Ctrl+Shift+L")
        play = bar.addMenu("&Playback")
        player = self.search_view.player
        self._action(play, "Play / pause", player.toggle_play, "Space")
        self._action(play, "Next moment", player.next_moment, "]")
        self._action(play, "Previous moment", player.previous_moment, "[")
        self._action(play, "Loop moment", player.toggle_loop, "L")
        self._action(play, "Subtitles", player.toggle_subtitles, "C")
        self._action(play, "Transcript", player.toggle_transcript, "T")
        play.addSeparator()
        self._action(play, "Export clip…", player.export_clip_dialog, "Ctrl+E")
        self._action(play, "Export markers…", player.export_markers_dialog, "Ctrl+Shift+E")
        self._action(play, "Export transcript…", player.transcript.export_dialog)
        help_menu = bar.addMenu("&Help")
        self._action(help_menu, "Keyboard shortcuts", self.show_shortcuts, QKeySequence.StandardKey.HelpContents)
        self._action(help_menu, "About Scenefind", self.show_about)
        for key, slot in (
            ("Ctrl+F", self.focus_search),
            ("/", self.focus_search),
            ("Alt+Right", player.next_moment),
            ("Alt+Left", player.previous_moment),
        ):
            QShortcut(QKeySequence(key), self, activated=slot)

    def focus_search(self) -> None:
        self.tabs.setCurrentWidget(self.search_view)
        self.search_view.query_box.setFocus(Qt.FocusReason.ShortcutFocusReason)
        self.search_view.query_box.selectAll()

    def toggle_theme(self) -> None:
        self.set_theme("dark" if theme.current() == "light" else "light")

    def set_theme(self, name: str) -> None:
        app = QApplication.instance()
        if isinstance(app, QApplication):
            theme.apply_theme(app, name)
        QSettings().setValue("app/theme", theme.current())
        self.search_view.player.refresh_icons()
        self.library_view.refresh()  # its rows' colours (status, failures) come from the theme
        self.update()

    def show_shortcuts(self) -> None:
        rows = "".join(f"<tr><td><b>{k}</b></td><td>&nbsp;&nbsp;{v}</td></tr>" for k, v in self.shortcut_rows())
        QMessageBox.information(self, "Keyboard shortcuts", f"<table>{rows}</table>")

    def show_about(self) -> None:
        QMessageBox.about(
            self,
            "About Scenefind",
            "<b>Scenefind</b><br>Search your own videos in plain language, down to the moment.<br>"
            f"Everything stays on this computer.<br><br>Library: {self.engine.library_root()}",
        )

    def check_model(self) -> None:
        """Ask (on a worker) whether the settings' model can index and search; the banner says the verdict.
        The app calls this once the window is up (not the constructor: nothing heavy before the first paint)."""
        self.model_guard.check()

    def _model_checked(self) -> None:
        problem = self.model_guard.problem()
        self.library_view.set_model_problem(problem)
        self.search_view.set_model_problem(problem, self.model_guard.actions(menus=False))

    def switch_model(self, name: str) -> None:
        """A model the user chose in the banner (a file, a demo, the default), already checked. With a usable
        index of the current model, it re-indexes in the background while that one answers (as a change in
        Settings does); with none, it switches at once and indexes."""
        settings = self.engine.settings().replace(model=name)
        if self.model_guard.problem() is None and any(f.indexed for f in self._safe_folders()):
            self.apply_model_change(settings, reindex=True)
            return
        self.engine.save_settings(settings)
        self.library_view.set_model_problem(None)
        self._library_changed()
        self.model_guard.check()
        if self._safe_folders():
            self.library_view.start_index()
        self.statusBar().showMessage(f"Now using {model_label(name)}", 10000)

    def _index_from_search(self) -> None:
        self.tabs.setCurrentWidget(self.library_view)
        self.library_view.start_index()

    def settling(self) -> bool:
        """Whether the window is still filling itself in (a search, its thumbnails, the Training tab's
        defaults): what a screenshot or a scripted check waits for."""
        view = self.search_view
        searching = view.runner.running or (view.model.rowCount() > 0 and view.thumbnails.pending() > 0)
        player = view.player.transcript.loading() or self.library_view.thumbnails.pending() > 0  # (and posters)
        return searching or player or self.training_view.loading() or self.model_guard.check_runner.running

    # -- library state ----------------------------------------------------------------------------------

    def _safe_folders(self) -> list:
        try:
            return self.engine.folders()
        except Exception:
            return []

    def _library_changed(self) -> None:
        folders = self._safe_folders()
        indexed = sum(f.indexed for f in folders)
        videos = sum(f.videos for f in folders)
        model = self.engine.settings().model
        pending = f" · indexing with {self._pending_model}" if self._pending_model else ""
        self.status_label.setText(f"{indexed}/{videos} videos indexed · model {model}{pending}")
        self.search_view.refresh_state()

    def _index_finished(self, summary: IndexSummary) -> None:
        if self._pending_model is not None:
            model, self._pending_model = self._pending_model, None
            self.engine.save_settings(self.engine.settings().replace(model=model))
            self.statusBar().showMessage(f"The new index is complete; searches now use {model_label(model)}", 10000)
            self._library_changed()
            self.model_guard.check()

    # -- settings ---------------------------------------------------------------------------------------

    def open_settings(self) -> SettingsDialog:
        dialog = SettingsDialog(self.engine, self.engine.library_root(), theme.current(), self)
        dialog.finished.connect(lambda code: self._settings_done(dialog, code))
        dialog.open()
        return dialog

    def _settings_done(self, dialog: SettingsDialog, code: int) -> None:
        if code != SettingsDialog.DialogCode.Accepted or dialog.result_settings is None:
            return
        new = dialog.result_settings
        old = self.engine.settings()
        self.set_theme(dialog.chosen_theme())
        folder = dialog.chosen_data_folder()
        if folder.resolve() != self.engine.library_root().resolve():
            QSettings().setValue("app/data_folder", str(folder))
            self.statusBar().showMessage(f"The library in {folder} opens the next time Scenefind starts", 10000)
        if new.model != old.model:
            self.apply_model_change(new, reindex=self.ask_reindex(old.model, new.model))
            self.model_guard.check()
        else:
            self.engine.save_settings(new)
        self._library_changed()
        if new.model == old.model and _stages_have_new_work(old, new):
            self.library_view.start_index()  # (it waits behind a run in progress)
            self.statusBar().showMessage("Indexing transcribes and reads the videos with the new settings", 10000)

    def ask_reindex(self, old: str, new: str) -> bool:
        answer = QMessageBox.question(
            self,
            "Re-index with the new model?",
            f"Search results come from the model the videos were indexed with.\n\nIndex the library with {new} "
            f"now, in the background? Searches keep using {old} until the new index is complete.\n\n"
            f"If you choose No, the model switches now and search finds nothing until you index.",
        )
        return answer == QMessageBox.StandardButton.Yes

    def apply_model_change(self, new, *, reindex: bool) -> None:
        if reindex:
            self.engine.save_settings(new.replace(model=self.engine.settings().model))  # all but the model
            self._pending_model = new.model
            self.library_view.start_index(model=new.model)
            self.tabs.setCurrentWidget(self.library_view)
        else:
            self.engine.save_settings(new)

    def use_trained_model(self, folder: str) -> None:
        """The Training tab's "Use this model": the checkpoint folder becomes the model, re-indexed in the
        background while the current index keeps answering (the same flow as a model change in Settings)."""
        self.apply_model_change(self.engine.settings().replace(model=folder), reindex=True)
        self.statusBar().showMessage(f"Re-indexing with the trained model {folder}", 10000)

    # -- geometry ---------------------------------------------------------------------------------------

    def _restore(self) -> None:
        s = QSettings()
        geometry = s.value("window/geometry")
        if isinstance(geometry, QByteArray | bytes):
            self.restoreGeometry(geometry)
        state = s.value("window/state")
        if isinstance(state, QByteArray | bytes):
            self.restoreState(state)
        splitter = s.value("window/search_splitter")
        if isinstance(splitter, QByteArray | bytes):
            self.search_view.splitter.restoreState(splitter)

    def save_state(self) -> None:
        s = QSettings()
        s.setValue("window/geometry", self.saveGeometry())
        s.setValue("window/state", self.saveState())
        s.setValue("window/search_splitter", self.search_view.splitter.saveState())
        s.sync()

    def closeEvent(self, event: QCloseEvent) -> None:
        self.save_state()
        self.library_view.shutdown()
        self.training_view.shutdown()
        self.search_view.player.media.stop()
        super().closeEvent(event)


def _stages_have_new_work(old, new) -> bool:
    """Whether changed speech or screen-text settings leave videos to do: a stage switched on, or another speech
    model while speech is on (the catalog holds no results for it yet). A new language applies to videos
    transcribed from now on."""
    speech = new.speech and (not old.speech or new.speech_model != old.speech_model)
    return speech or (new.screen_text and not old.screen_text)
