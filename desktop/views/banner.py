"""A banner across the top of the window: what the app needs from the user now, with the ways out as buttons.

Why a banner and not a dialog: a missing model is a state of the app, not an event. A modal said it once
and left the library "Waiting" forever; the banner stays until the state changes (the model arrived, another
was chosen), and its buttons are the actions. It can also show progress with Cancel (a download).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QFrame,
    QHBoxLayout,
    QLabel,
    QMenu,
    QProgressBar,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

Action = tuple[str, Callable[[], object] | Sequence[tuple[str, Callable[[], object]]]]  # a menu: (label, items)
KINDS = ("info", "warning", "error")


class Banner(QFrame):
    """``show_message(kind, title, text, actions)``; an action whose target is a list drops a menu down."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("banner")
        self.title = QLabel()
        self.title.setObjectName("bannerTitle")
        self.text = QLabel()
        self.text.setObjectName("bannerText")
        self.text.setWordWrap(True)
        self.text.setTextFormat(Qt.TextFormat.PlainText)
        self.progress = QProgressBar()
        self.progress.setRange(0, 1000)
        self.progress.setTextVisible(False)
        self.progress.hide()
        texts = QVBoxLayout()
        texts.setSpacing(3)
        texts.addWidget(self.title)
        texts.addWidget(self.text)
        texts.addWidget(self.progress)
        self._buttons = QHBoxLayout()
        self._buttons.setSpacing(8)
        layout = QHBoxLayout(self)
        layout.setContentsMargins(16, 10, 16, 10)
        layout.setSpacing(16)
        layout.addLayout(texts, 1)
        layout.addLayout(self._buttons)
        self.hide()

    def show_message(self, kind: str, title: str, text: str, actions: Sequence[Action] = ()) -> None:
        self.setProperty("kind", kind if kind in KINDS else "info")
        self.style().unpolish(self)
        self.style().polish(self)
        self.title.setText(title)
        self.text.setText(text)
        self.progress.hide()
        self._clear_buttons()
        for n, (label, target) in enumerate(actions):
            button = QPushButton(label)
            if n == 0:
                button.setObjectName("primary")
            if callable(target):
                button.clicked.connect(lambda _checked=False, act=target: act())  # not clicked's bool
            else:
                menu = QMenu(button)
                for item, callback in target:
                    menu.addAction(item, callback)
                button.setMenu(menu)
            self._buttons.addWidget(button)
        self.show()

    def set_progress(self, fraction: float | None, text: str | None = None) -> None:
        """Show a progress bar (``None``: busy, no fraction) and optionally replace the sentence."""
        if fraction is None:
            self.progress.setRange(0, 0)
        else:
            self.progress.setRange(0, 1000)
            self.progress.setValue(round(1000 * max(0.0, min(1.0, fraction))))
        if text is not None:
            self.text.setText(text)
        self.progress.show()

    def kind(self) -> str:
        return str(self.property("kind") or "info")

    def button_texts(self) -> list[str]:
        return [self._buttons.itemAt(i).widget().text() for i in range(self._buttons.count())]

    def button(self, text: str) -> QPushButton:
        return next(
            w
            for i in range(self._buttons.count())
            if isinstance(w := self._buttons.itemAt(i).widget(), QPushButton) and w.text() == text
        )

    def _clear_buttons(self) -> None:
        while self._buttons.count():
            widget = self._buttons.takeAt(0).widget()
            if widget is not None:
                widget.hide()
                widget.deleteLater()
