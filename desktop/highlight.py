"""Which words of a text to highlight: the query's words (in a hit's quote, in the transcript) and the words
typed into the transcript's filter box, as character spans and as HTML with those spans marked.

Why a module of its own: the result cards and the transcript panel must agree on what "matched" means, and
it is pure text work, tested without widgets. A query word matches a word of the text when one is the other
with a common ending (``password``/``passwords``, ``talk``/``talked``), compared without case or accents;
words that carry no meaning alone ("the", "a", "of") are never highlighted for a query; a word the search counted
as a near match ("turkey" for "key", beside an exact match) is marked too. The filter box
matches what is typed anywhere in a word (as a find-in-page does). The two painting helpers at the end are
what the cards and the transcript share to draw marked text (Qt is imported there only).
"""

from __future__ import annotations

import html
import re
import unicodedata
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING

from engine.search.near_words import near_matcher

if TYPE_CHECKING:
    from PySide6.QtGui import QFont, QPainter

Span = tuple[int, int]
_WORD = re.compile(r"\w+(?:['’]\w+)*")
_ENDINGS = ("ing", "ed", "s", "'s", "’s")
STOPWORDS = frozenset({  # words that mean nothing alone: never marked as a query's match
    "a", "about", "after", "all", "an", "and", "any", "are", "as", "at", "be", "been", "before", "but", "by",
    "can", "could", "did", "do", "does", "for", "from", "had", "has", "have", "he", "her", "his", "how", "into",
    "just", "no", "not", "out", "over", "some", "than", "up", "would",
    "i", "in", "is", "it", "its", "me", "my", "of", "on", "or", "our", "she", "so", "that", "the", "their",
    "them", "then", "there", "they", "this", "to", "was", "we", "were", "what", "when", "where", "which",
    "who", "will", "with", "you", "your",
})  # fmt: skip


def fold(text: str) -> str:
    """Lower case without accents: ``Café`` and ``cafe`` compare equal."""
    decomposed = unicodedata.normalize("NFKD", text.casefold())
    return "".join(ch for ch in decomposed if not unicodedata.combining(ch))


def _stem(word: str) -> str:
    for ending in _ENDINGS:
        if len(word) > len(ending) + 2 and word.endswith(ending):
            return word[: -len(ending)]
    return word


def query_terms(query: str) -> tuple[str, ...]:
    """The words of a query worth highlighting (folded and stemmed), in order, without repeats; FTS syntax
    (quotes, ``*``, ``NEAR``, a leading ``-``) is not a word."""
    words = [fold(w) for w in _WORD.findall(query.replace("NEAR", " "))]
    return tuple(dict.fromkeys(_stem(w) for w in words if w not in STOPWORDS and len(w) > 1))


def term_spans(text: str, terms: Sequence[str]) -> list[Span]:
    """Spans of ``text``'s words that match one of ``terms`` (from ``query_terms``), and of the words that match
    one only nearly where the text also has an exact match: the search counted "turkey" for "key" in "the turkey
    is under the red flower pot" (``engine.search.near_words``), so the quote marks it too."""
    if not terms:
        return []
    wanted = set(terms)
    words = list(_WORD.finditer(text))
    spans = [(m.start(), m.end()) for m in words if _stem(fold(m.group())) in wanted]
    if spans:
        near = near_matcher(terms)
        spans = sorted({*spans, *((m.start(), m.end()) for m in words if near(fold(m.group())) is not None)})
    return spans


def find_spans(text: str, typed: str) -> list[Span]:
    """Spans where ``typed`` occurs in ``text`` (case and accents ignored); nothing for blank input."""
    needle = fold(typed.strip())
    if not needle:
        return []
    folded = fold(text)
    if len(folded) != len(text):  # a character that folds to several: fall back to plain lower case
        folded, needle = text.lower(), typed.strip().lower()
    spans, start = [], folded.find(needle)
    while start >= 0:
        spans.append((start, start + len(needle)))
        start = folded.find(needle, start + len(needle))
    return spans


def merge(spans: Iterable[Span]) -> list[Span]:
    """Overlapping or touching spans as one, in order."""
    out: list[Span] = []
    for start, end in sorted(spans):
        if out and start <= out[-1][1]:
            out[-1] = (out[-1][0], max(end, out[-1][1]))
        else:
            out.append((start, end))
    return out


def marked_html(text: str, layers: Sequence[tuple[Iterable[Span], str]]) -> str:
    """``text`` as HTML (escaped), each layer's spans in its CSS style; where layers overlap, the later wins
    (the filter's marks over the query's)."""
    styles: list[str | None] = [None] * len(text)
    for spans, style in layers:
        for start, end in spans:
            styles[max(0, start) : max(0, end)] = [style] * (min(end, len(text)) - max(0, start))
    parts, at = [], 0
    while at < len(text):
        style, end = styles[at], at
        while end < len(text) and styles[end] == style:
            end += 1
        chunk = html.escape(text[at:end])
        parts.append(f'<span style="{style}">{chunk}</span>' if style else chunk)
        at = end
    return "".join(parts)


def mark_style(background: str, foreground: str) -> str:
    return f"background-color:{background}; color:{foreground}; font-weight:600"


FIND_MARK_COLOUR = "#ffd75e"  # a highlighter's yellow, with dark text: reads on light and dark rows alike


def find_mark() -> str:
    """The style of what the find box matched."""
    return mark_style(FIND_MARK_COLOUR, "#1d2030")


def query_mark() -> str:
    """The style of the query's words: a tint of the accent, readable in the light and the dark theme."""
    from desktop import theme

    light = theme.current() == "light"
    return mark_style("#dfe2fb" if light else "#3b4180", "#2630a0" if light else "#ffffff")


def draw_html(painter: QPainter, html_text: str, font: QFont, x: float, y: float, width: float | None = None) -> float:
    """Paint rich text (the marked lines) at ``x, y``, wrapped to ``width`` when given; returns its height."""
    from PySide6.QtGui import QAbstractTextDocumentLayout, QColor, QPalette, QTextDocument

    from desktop import theme

    doc = QTextDocument()
    doc.setDefaultFont(font)
    doc.setDocumentMargin(0)
    doc.setHtml(html_text)
    if width is not None:
        doc.setTextWidth(width)
    painter.save()
    painter.translate(x, y)
    context = QAbstractTextDocumentLayout.PaintContext()
    context.palette.setColor(QPalette.ColorRole.Text, QColor(theme.colors().text))
    doc.documentLayout().draw(painter, context)
    painter.restore()
    return doc.size().height()


def html_height(html_text: str, font: QFont, width: float) -> float:
    """The height ``draw_html`` will take for this text at this width."""
    from PySide6.QtGui import QTextDocument

    doc = QTextDocument()
    doc.setDefaultFont(font)
    doc.setDocumentMargin(0)
    doc.setHtml(html_text)
    doc.setTextWidth(width)
    return doc.size().height()
