"""The search view: a query box (history, completion, drop an image or a clip), exclusions, filters, the
results as a grid of thumbnail cards (``result_grid``), and the player beside them (``opened_hit``).

Every search runs as a job; a new one supersedes the previous. Empty, searching, no-result and error states
each say what to do next. "More like this" searches with the chosen moment itself as the query.
"""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QModelIndex, QPoint, QSettings, Qt, Signal
from PySide6.QtWidgets import (
    QButtonGroup,
    QCompleter,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QMenu,
    QPushButton,
    QSplitter,
    QStackedWidget,
    QVBoxLayout,
    QWidget,
)

from desktop.engine_api import EngineApi
from desktop.jobs import JobRunner, describe_error
from desktop.models.results_model import (
    ResultsModel,
    ThumbnailLoader,
    hit_range,
)
from desktop.player.player_view import Opened, PlayerView
from desktop.problems import MODEL_DOWNLOAD, MODEL_INVALID, NOT_INDEXED, OTHER, Problem, explain
from desktop.views.opened_hit import hit_range_text, opened_for_hit
from desktop.views.result_grid import ResultGrid
from desktop.views.search_history import SearchHistory
from desktop.views.search_widgets import FiltersPanel, QueryBox, example_kind, popup_button
from desktop.views.widgets import MessagePage
from engine.search.query import MomentRef, Query
from engine.search.results import SearchResults

LEFT_MIN_WIDTH = 620  # with the player open: the query box stays above ~360 px at 1280 px wide
EXAMPLES = ("a dog running on the beach", "birthday cake with candles", "city street at night")
CHANNELS = (  # the channel choice beside the query: (button, engine channel, tooltip, placeholder)
    ("All", None, "Search the pictures, what is said and what is shown on screen, in one list",
     "Describe what you are looking for, e.g. “a dog catching a frisbee” — or drop a photo or clip here"),
    ("Said", "speech", "Only what is said in the videos (their transcripts)",
     "Words said in the video, e.g. “the wifi password”"),
    ("Shown", "text", "Only text shown on screen: slides, signs, titles",
     "Text seen on screen, e.g. “quarterly results”"),
)  # fmt: skip


class SearchView(QWidget):
    """``status(message)`` for the status bar; ``library_requested`` to send the user to the Library tab."""

    status = Signal(str)
    library_requested = Signal()
    results_shown = Signal(object)  # SearchResults
    model_failed = Signal(object)  # the exception: the search ran into a model problem (the banner offers ways out)
    index_requested = Signal()  # "Index now" where nothing is indexed with the model yet

    def __init__(self, engine: EngineApi, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.engine = engine
        self.runner = JobRunner(self)
        self.example: Path | None = None
        self.last_query: Query | None = None
        self.results: SearchResults | None = None
        self._model_problem: Problem | None = None
        self._model_actions: list = []
        self._no_results_shown = False  # the page answers the last query with "No results"

        self.query_box = QueryBox()
        self.history = SearchHistory(self)
        completer = QCompleter(self.history, self)
        completer.setCaseSensitivity(Qt.CaseSensitivity.CaseInsensitive)
        completer.setFilterMode(Qt.MatchFlag.MatchContains)
        self.query_box.setCompleter(completer)
        self.query_box.returnPressed.connect(self.run_search)
        self.query_box.example_dropped.connect(self.set_example)
        self.query_box.textEdited.connect(lambda _: self.clear_example(run=False))
        self.exclude_box = QLineEdit()
        self.exclude_box.setPlaceholderText("Without: leash, night…")
        self.exclude_box.setToolTip("Push down results that look like these words (comma-separated)")
        self.exclude_box.setMinimumWidth(130)  # gives way to the query box when the player takes room
        self.exclude_box.setMaximumWidth(240)
        self.exclude_box.returnPressed.connect(self.run_search)
        self.search_button = QPushButton("Search")
        self.search_button.setObjectName("primary")
        self.search_button.clicked.connect(self.run_search)

        self.example_label = QLabel()
        self.example_label.setObjectName("muted")
        self.example_clear = QPushButton("Search by text instead")
        self.example_clear.clicked.connect(lambda: self.clear_example(run=False))
        self.example_row = QWidget()
        er = QHBoxLayout(self.example_row)
        er.setContentsMargins(0, 0, 0, 0)
        er.addWidget(self.example_label)
        er.addWidget(self.example_clear)
        er.addStretch(1)
        self.example_row.hide()

        self.videos_button = QPushButton("Videos")
        self.moments_button = QPushButton("Moments")
        self.mode_group = QButtonGroup(self)
        for n, b in enumerate((self.videos_button, self.moments_button)):
            b.setCheckable(True)
            self.mode_group.addButton(b, n)
        self.videos_button.setToolTip("One result per video")
        self.moments_button.setToolTip("Every matching moment, several per video")
        mode = QSettings().value("search/mode", "moments", type=str)
        (self.moments_button if mode == "moments" else self.videos_button).setChecked(True)
        self.mode_group.idClicked.connect(self._mode_changed)

        self.channel_group = QButtonGroup(self)
        self.channel_buttons: list[QPushButton] = []
        for n, (label, _channel, tip, _placeholder) in enumerate(CHANNELS):
            button = QPushButton(label)
            button.setCheckable(True)
            button.setToolTip(tip)
            self.channel_group.addButton(button, n)
            self.channel_buttons.append(button)
        self.channel_buttons[0].setChecked(True)
        self.channel_group.idClicked.connect(self._channel_changed)

        self.filters_panel = FiltersPanel()
        self.filters_button = popup_button("Filters", self.filters_panel)
        self.filters_panel.changed.connect(self._filters_changed)

        top = QHBoxLayout()
        top.setSpacing(8)
        top.addWidget(self.query_box, 3)
        top.addWidget(self.exclude_box, 1)
        top.addWidget(self.search_button)
        options = QHBoxLayout()
        options.setSpacing(6)
        options.addWidget(self.videos_button)
        options.addWidget(self.moments_button)
        options.addSpacing(8)
        for button in self.channel_buttons:
            options.addWidget(button)
        options.addSpacing(8)
        options.addWidget(self.filters_button)
        options.addStretch(1)
        counts = QHBoxLayout()  # a row of its own: beside the modes, channels and filters it was cut short
        counts.setSpacing(6)
        self.summary = QLabel("")
        self.summary.setObjectName("muted")
        counts.addWidget(self.summary, 1)
        self.show_all_button = QPushButton("Show weaker matches")
        self.show_all_button.setToolTip("Include results below the relevance cutoff")
        self.show_all_button.clicked.connect(self.show_all)
        self.show_all_button.hide()
        counts.addWidget(self.show_all_button)

        self.thumbnails = ThumbnailLoader(engine, self)
        self.model = ResultsModel(self.thumbnails, self)
        results_page = ResultGrid(self.model)
        self.grid = results_page.grid
        self.play_button, self.more_button = results_page.play_button, results_page.more_button
        self.grid.activated.connect(self.open_index)
        self.grid.doubleClicked.connect(self.open_index)
        self.grid.customContextMenuRequested.connect(self._context_menu)
        self.play_button.clicked.connect(lambda: self.open_index(self.grid.currentIndex()))
        self.more_button.clicked.connect(lambda: self.more_like_this(self.grid.currentIndex()))

        self.message = MessagePage()
        self.stack = QStackedWidget()
        self.stack.addWidget(self.message)
        self.stack.addWidget(results_page)

        self.player = PlayerView(engine)
        self.player.status.connect(self.status)
        self.player.closed.connect(self.player.hide)
        self.player.hide()
        left = QWidget()
        ll = QVBoxLayout(left)
        ll.setContentsMargins(16, 14, 8, 8)
        ll.setSpacing(10)
        ll.addLayout(top)
        ll.addWidget(self.example_row)
        ll.addLayout(options)
        ll.addLayout(counts)
        ll.addWidget(self.stack, 1)
        self.splitter = QSplitter(Qt.Orientation.Horizontal)
        self.splitter.setObjectName("searchSplitter")
        self.splitter.addWidget(left)
        self.splitter.addWidget(self.player)
        self.splitter.setStretchFactor(0, 3)
        self.splitter.setStretchFactor(1, 4)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.splitter)

        self.runner.finished.connect(self._on_results)
        self.runner.failed.connect(self._on_failed)
        self.runner.cancelled.connect(lambda: self.status.emit("Search cancelled"))
        self.refresh_state()

    # -- state ------------------------------------------------------------------------------------------

    def mode(self) -> str:
        return "moments" if self.moments_button.isChecked() else "videos"

    def channel(self) -> str | None:
        """The channel the query is restricted to: None (all), "speech" (said) or "text" (shown on screen)."""
        return CHANNELS[max(0, self.channel_group.checkedId())][1]

    def set_channel(self, channel: str | None) -> None:
        n = next(n for n, row in enumerate(CHANNELS) if row[1] == channel)
        self.channel_buttons[n].setChecked(True)
        self._channel_changed(n)

    def _channel_changed(self, n: int) -> None:
        self.query_box.setPlaceholderText(CHANNELS[n][3])
        if self.last_query is not None and self.last_query.text:
            self.run_search()

    def refresh_state(self) -> None:
        """Show the right empty state for the library as it is now (after indexing, adding folders)."""
        try:
            folders = self.engine.folders()
        except Exception as exc:
            self.message.show_message("The library cannot be read", describe_error(exc))
            self.stack.setCurrentIndex(0)
            return
        self.filters_panel.set_folders([f.path for f in folders])
        if self.results is not None and self.stack.currentIndex() == 1:
            return
        indexed = sum(f.indexed for f in folders)
        if self._no_results_shown and indexed and self._model_problem is None:
            return  # the answer stays until the next query: a progress tick once put the welcome page over it
        self._no_results_shown = False
        if folders and not indexed and self._model_problem is not None:
            self._show_model_problem(self._model_problem)
        elif not folders:
            self.message.show_message(
                "Your library is empty",
                "Add a folder of videos in the Library tab. Scenefind indexes it on this computer; "
                "nothing is uploaded.",
                [("Go to Library", self.library_requested.emit)],
            )
        elif not indexed:
            self.message.show_message(
                "Nothing is indexed yet",
                "Start indexing in the Library tab. You can search as soon as the first videos are done.",
                [("Go to Library", self.library_requested.emit)],
            )
        else:
            videos = "video" if indexed == 1 else "videos"
            self.message.show_message(
                "Search your videos",
                f"{indexed} {videos} ready. Describe a scene in plain words, or drop a photo or a clip on the "
                "search box to find similar moments.",
                [(f"Try “{e}”", lambda e=e: self.run_text(e)) for e in EXAMPLES],
            )
        self.stack.setCurrentIndex(0)

    def _show_model_problem(self, problem: Problem) -> None:
        """The model cannot search: said briefly (the banner above says it in full), with the same ways out."""
        if problem.kind == MODEL_DOWNLOAD:
            text = (
                f"{problem.title} (see above). Choose a model file you have, try again when this computer is "
                "online, or try Scenefind now with the colour demo."
            )
        else:
            text = f"{problem.title}: {problem.text}"
        self.message.show_message("Search is waiting for its model", text, self._model_actions)

    def set_model_problem(self, problem: Problem | None, actions: list) -> None:
        """The settings' model cannot search now (``problem``, with the banner's ways out), or can again."""
        self._model_problem, self._model_actions = problem, list(actions)
        self.refresh_state()

    # -- queries ----------------------------------------------------------------------------------------

    def build_query(self, *, min_relevance: float | None = None) -> Query | None:
        exclude = tuple(t.strip() for t in self.exclude_box.text().split(",") if t.strip())
        common = {
            "exclude": exclude,
            "filters": self.filters_panel.filters(),
            "mode": self.mode(),
            "min_relevance": min_relevance,
            "k": 40,
        }
        if self.example is not None:
            kind = example_kind(self.example)
            return Query(image=self.example, **common) if kind == "image" else Query(clip=self.example, **common)
        text = self.query_box.text().strip()
        return Query(text=text, **common) if text else None

    def run_text(self, text: str) -> None:
        self.clear_example(run=False)
        self.query_box.setText(text)
        self.run_search()

    def run_search(self) -> None:
        query = self.build_query()
        if query is None:
            self.query_box.setFocus()
            self.status.emit("Type what you are looking for first")
            return
        if query.text:
            self.history.remember(query.text)
        self.start_query(query)

    def start_query(self, query: Query) -> None:
        self.last_query = query
        self.show_all_button.hide()
        self.summary.setText("Searching…")
        if self.stack.currentIndex() == 0:
            self.message.show_message("Searching…", _describe(query))
        channel = self.channel() if query.text else None  # pictures and clips are not words said or shown
        self.runner.start(self.engine.search, query, channel=channel)

    def show_all(self) -> None:
        if self.last_query is not None:
            q = self.last_query
            self.start_query(Query(**{**q.__dict__, "min_relevance": 0.0}))

    def set_example(self, path: Path) -> None:
        """Search with a dropped image or clip as the example."""
        self.example = Path(path)
        kind = "photo" if example_kind(self.example) == "image" else "clip"
        self.query_box.clear()
        self.example_label.setText(f"Searching by example: {kind} “{self.example.name}”")
        self.example_row.show()
        self.run_search()

    def clear_example(self, *, run: bool = False) -> None:
        if self.example is None:
            return
        self.example = None
        self.example_row.hide()
        if run:
            self.run_search()

    def more_like_this(self, index: QModelIndex) -> None:
        hit = self.model.hit(index.row()) if index.isValid() else None
        if hit is None:
            return
        start, end = hit_range(hit)
        query = Query(
            moment=MomentRef(hit.video_id, start, end),
            exclude=tuple(t.strip() for t in self.exclude_box.text().split(",") if t.strip()),
            filters=self.filters_panel.filters(),
            mode=self.mode(),
            k=40,
        )
        self.example_label.setText(f"More like {Path(hit.video).name} at {hit_range_text(start, end)}")
        self.example_row.show()
        self.start_query(query)

    def _mode_changed(self, _id: int) -> None:
        QSettings().setValue("search/mode", self.mode())
        if self.results is None or self.last_query is None:
            return
        have = self.results.moments if self.mode() == "moments" else self.results.videos
        if have:
            self._show(self.results)
        else:
            self.start_query(Query(**{**self.last_query.__dict__, "mode": self.mode()}))

    def _filters_changed(self) -> None:
        n = self.filters_panel.active_count()
        self.filters_button.setText(f"Filters ({n})" if n else "Filters")
        if self.last_query is not None and self.last_query.moment is None:
            self.run_search()

    # -- results ----------------------------------------------------------------------------------------

    def _on_results(self, results: SearchResults) -> None:
        self.results = results
        self._show(results)
        self.results_shown.emit(results)

    def _show(self, results: SearchResults) -> None:
        mode = self.mode()
        self.model.set_results(results, mode)
        count = self.model.rowCount()
        noun = ("moment" if mode == "moments" else "video") + ("" if count == 1 else "s")
        self.summary.setText(f"{count} {noun} · {results.elapsed_ms / 1000:.2f} s")
        self.show_all_button.setVisible(results.hidden_below_cutoff > 0 and count > 0)  # else the page offers it
        if results.hidden_below_cutoff:
            self.show_all_button.setText(f"Show {results.hidden_below_cutoff} weaker matches")
        self._no_results_shown = not count
        if count:
            self.stack.setCurrentIndex(1)
            self.grid.setCurrentIndex(self.model.index(0))
            self.grid.scrollToTop()
            return
        hidden = results.hidden_below_cutoff
        actions = [("Show weaker matches", self.show_all)] if hidden else []
        if self.filters_panel.active_count():
            actions.append(("Clear filters", self.filters_panel.clear))
        channel = self.channel()
        if channel is not None:  # restricted to words: the advice about pictures would not fit
            actions.append(("Search all", lambda: self.set_channel(None)))
        advice = {
            None: "Try fewer or more general words, describe what is visible rather than a name, remove "
            "exclusions, or clear the filters.",
            "speech": "Nothing said in your videos matches these words. Try other words, or search all to look "
            "in the pictures and the text on screen too.",
            "text": "No text shown on screen in your videos matches these words. Try other words, or search all "
            "to look in the pictures and what is said too.",
        }[channel]
        self.message.show_message(
            "No results",
            (f"{hidden} weaker matches are hidden below the relevance cutoff. " if hidden else "") + advice,
            actions,
        )
        self.stack.setCurrentIndex(0)

    def _on_failed(self, exc: object) -> None:
        self.summary.setText("")
        self._no_results_shown = False
        problem = explain(exc)
        if problem.kind in (MODEL_DOWNLOAD, MODEL_INVALID):
            self.model_failed.emit(exc)  # the window's banner takes it up; its ways out come back here
            self._show_model_problem(problem)
        elif problem.kind == NOT_INDEXED:
            self.message.show_message(problem.title, problem.text, [("Index now", self.index_requested.emit)])
        else:
            self.message.show_message(
                "The search did not run", problem.text, [("Go to Library", self.library_requested.emit)]
            )
        self.stack.setCurrentIndex(0)
        self.status.emit(
            f"The search did not run: {problem.title[0].lower()}{problem.title[1:]}"
            if problem.kind != OTHER
            else f"The search did not run: {problem.text}"
        )

    def _context_menu(self, pos: QPoint) -> None:
        index = self.grid.indexAt(pos)
        if not index.isValid():
            return
        menu = QMenu(self)
        menu.addAction("Play", lambda: self.open_index(index))
        menu.addAction("More like this", lambda: self.more_like_this(index))
        menu.addAction(
            "Export clip…", lambda: (self.open_index(index, autoplay=False), self.player.export_clip_dialog())
        )
        menu.addAction("Copy file path", lambda: _copy(self.model.hit(index.row()).video))
        menu.exec(self.grid.viewport().mapToGlobal(pos))

    # -- player -----------------------------------------------------------------------------------------

    def opened_for(self, index: QModelIndex) -> Opened | None:
        hit = self.model.hit(index.row()) if index.isValid() else None
        if hit is None or self.results is None:
            return None
        return opened_for_hit(hit, self.results)

    def open_index(self, index: QModelIndex, *, autoplay: bool = True) -> None:
        opened = self.opened_for(index)
        if opened is None:
            return
        first_time = not self.player.isVisible()
        self.player.show()
        if first_time:  # the results keep room for a usable query box; the player gets the rest
            total = max(600, self.splitter.width())
            left = min(max(LEFT_MIN_WIDTH, int(total * 0.5)), total - self.player.minimumSizeHint().width())
            self.splitter.setSizes([left, total - left])
        self.player.open(opened, autoplay=autoplay)

    # -- history ----------------------------------------------------------------------------------------

    def clear_history(self) -> None:
        self.history.forget()


def _describe(query: Query) -> str:
    if query.text:
        return f"Looking for “{query.text}”"
    if query.image or query.clip:
        return f"Looking for moments like {(query.image or query.clip).name}"
    return "Looking for similar moments"


def _copy(text: str) -> None:
    from PySide6.QtGui import QGuiApplication

    QGuiApplication.clipboard().setText(text)
