"""Placeholder for the Training tab: fine-tuning arrives in a later release and will replace this widget."""

from __future__ import annotations

from PySide6.QtWidgets import QVBoxLayout, QWidget

from desktop.views.widgets import MessagePage


class TrainingPlaceholder(QWidget):
    """Says plainly that training is not in this release (no controls that pretend otherwise)."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        page = MessagePage()
        page.show_message(
            "Training arrives in a later release",
            "A future version will let you fine-tune the search model on your own captioned clips. "
            "This version does not train; searching and indexing work without it.",
        )
        layout = QVBoxLayout(self)
        layout.addWidget(page)
