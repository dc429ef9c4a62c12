"""Words the recogniser nearly got right: half credit for a query word heard inside a longer word.

Whisper's small models often fuse two spoken words into one they know: measured in ``bench speech``, tiny.en
wrote "The turkey is under the red flower pot" for "The spare key is under …". Matching by stems alone then
counts "key" as missing, and the spoken video loses to a look-alike picture. A transcript word that begins or
ends with a query word of three or more letters and is at most ``MAX_EXTRA`` letters longer ("turkey" for
"key") is a *near* match: it earns ``NEAR_CREDIT`` of a word in the lexical coverage, and only beside an exact
match in the same span, so a near match alone never finds anything ("key" never lists "monkey").

A near match is marked by its type, :class:`Near`, a ``str`` equal to the query word it stands for, so the
order checks and the quote's highlighting treat it as that word.
"""

from __future__ import annotations

import string
from collections.abc import Callable, Iterable, Sequence

NEAR_CREDIT = 0.5
MIN_LETTERS = 3
MAX_EXTRA = 4
_PUNCTUATION = string.punctuation + "…“”‘’«»¿¡"


class Near(str):
    """A query word matched only nearly (see the module docstring)."""

    __slots__ = ()


def near_matcher(words: Sequence[str]) -> Callable[[str], Near | None]:
    """A function from a transcript word to the query word it nearly is (begins or ends with it, a little
    longer), or None. A candidate list holds thousands of words, so each is cut ``MAX_EXTRA`` ways at either
    end and looked up in a set of the query words: under 1 µs a word, where comparing it with every query
    word in Python cost 2 µs and more."""
    usable = frozenset(w.casefold() for w in words if len(w) >= MIN_LETTERS)
    cuts = range(1, MAX_EXTRA + 1)

    def near(token: str) -> Near | None:
        t = token.casefold().strip(_PUNCTUATION)
        for k in cuts:
            if len(t) - k < MIN_LETTERS:
                break
            if t[k:] in usable:
                return Near(t[k:])
            if t[:-k] in usable:
                return Near(t[:-k])
        return None

    return near


def near_word(token: str, words: Sequence[str]) -> Near | None:
    """The query word ``token`` nearly is, or None (:func:`near_matcher` for one word)."""
    return near_matcher(words)(token)


def has_exact(found: Iterable[str]) -> bool:
    """Whether any of the matched query words is an exact (stem) match."""
    return any(not isinstance(m, Near) for m in found)


def coverage(words: Sequence[str], found: Iterable[str]) -> float:
    """The share of ``words`` found: 1 for an exact match, ``NEAR_CREDIT`` for a word found only nearly."""
    found = list(found)
    exact = {m for m in found if not isinstance(m, Near)}
    near = {str(m) for m in found if isinstance(m, Near)} - exact
    return sum(1.0 if w in exact else NEAR_CREDIT if w in near else 0.0 for w in words) / len(words)
