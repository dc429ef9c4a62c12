"""Small shared widgets: the empty-state page every view uses to say what to do next."""

from __future__ import annotations

from collections.abc import Callable

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QHBoxLayout, QLabel, QPushButton, QVBoxLayout, QWidget


class MessagePage(QWidget):
    """A centred title, a sentence, and up to a few action buttons (empty, no-result and error states)."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.title = QLabel()
        self.title.setObjectName("emptyTitle")
        self.title.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.body = QLabel()
        self.body.setObjectName("emptyBody")
        self.body.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.body.setWordWrap(True)
        self.body.setMaximumWidth(560)
        self.body.setMinimumWidth(280)
        self.body.setTextFormat(Qt.TextFormat.PlainText)
        self._buttons = QHBoxLayout()
        self._buttons.setSpacing(8)
        layout = QVBoxLayout(self)
        layout.addStretch(2)
        layout.addWidget(self.title)
        layout.addSpacing(6)
        body_row = QHBoxLayout()  # no alignment flag: a word-wrapped label then gets its full height
        body_row.addStretch(1)
        body_row.addWidget(self.body, 6)
        body_row.addStretch(1)
        layout.addLayout(body_row)
        layout.addSpacing(14)
        row = QHBoxLayout()
        row.addStretch(1)
        row.addLayout(self._buttons)
        row.addStretch(1)
        layout.addLayout(row)
        layout.addStretch(3)

    def show_message(self, title: str, body: str, actions: list[tuple[str, Callable[[], object]]] = ()) -> None:
        self.title.setText(title)
        self.body.setText(body)
        while self._buttons.count():
            item = self._buttons.takeAt(0)
            widget = item.widget()
            if widget is not None:
                widget.hide()
                widget.deleteLater()
        for n, (label, callback) in enumerate(actions):
            button = QPushButton(label)
            if n == 0:
                button.setObjectName("primary")
            button.clicked.connect(lambda _checked=False, act=callback: act())  # not clicked's bool
            self._buttons.addWidget(button)

    def button_texts(self) -> list[str]:
        return [self._buttons.itemAt(i).widget().text() for i in range(self._buttons.count())]
