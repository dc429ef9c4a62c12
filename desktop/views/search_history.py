"""Past text queries, newest first and without repeats, kept across restarts in ``QSettings``.

A list model, so the query box's completer offers them as the user types; apart from the search view so the
view only says when a query was run.
"""

from __future__ import annotations

from PySide6.QtCore import QObject, QSettings, QStringListModel

HISTORY_KEY = "search/history"
HISTORY_SIZE = 50


class SearchHistory(QStringListModel):
    """The last ``HISTORY_SIZE`` distinct queries; ``remember`` puts one first, ``forget`` clears them all."""

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(self._load(), parent)

    @staticmethod
    def _load() -> list[str]:
        value = QSettings().value(HISTORY_KEY, [])
        return [str(v) for v in (value if isinstance(value, list) else [value] if value else [])]

    def remember(self, text: str) -> None:
        items = [text] + [h for h in self.stringList() if h != text]
        self.setStringList(items[:HISTORY_SIZE])
        QSettings().setValue(HISTORY_KEY, self.stringList())

    def forget(self) -> None:
        self.setStringList([])
        QSettings().remove(HISTORY_KEY)
