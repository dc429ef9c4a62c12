"""Lexical search of what was said and what was shown: FTS5 candidates, word-level moments, calibrated relevance.

This is the speech and screen-text half of the fused ranking (``engine.search.channels`` fuses it with the
picture). For a query and a channel it returns ``LexicalMoment`` candidates, each a span of one video:

* ``video_id``, ``channel`` (``"speech"`` or ``"text"``), ``start``/``end`` in seconds. For speech the span is
  the sentence in which the query's words were said, timed by its words (word timestamps are accurate to
  ~0.4 s where Whisper's segment times drift by seconds, findings #8); for text, the span the line stays up.
* ``quote``: those words as said or shown, and ``words``: each with its own times and whether it matched, so
  a result can quote "…the wifi password is on the fridge…" and highlight the matched words.
* ``bm25``: SQLite FTS5's BM25 of the row, sign flipped so higher is better (comparable within one channel
  and one query only).
* ``relevance`` (0-100), calibrated to mean the same across queries and channels: the share of the query's
  content words found in the span (``coverage``), raised to 1.5 so half the words found scores ~35, times
  0.85 when two or more were found out of order or apart, times the recogniser's confidence in the matched
  words (0.7 + 0.3 × mean word probability for speech; the line's OCR confidence for text). Every content
  word found in order with sure recognition scores ~100; the fusion maps it with the picture's 0-100. A word
  the recogniser fused into a longer one ("turkey" for "spare key") counts half beside an exact match
  (``engine.search.near_words``).

Queries are words, never FTS5 syntax: the text is split into words (Unicode letters and digits), each sent
quoted, so ``"``, ``*``, ``-``, ``NEAR``, ``AND``, ``OR``, ``NOT`` and ``:`` can never raise a syntax error;
text between double quotes is a phrase that must appear in that order. Stopwords ("the", "where", "says")
are dropped unless the query has nothing else. A query with no word at all raises ``LexicalQueryError`` with a
message for the user. Matching uses the FTS tokenizer itself (porter stemming over unicode61 without
diacritics), also for locating the matched words inside a row, so "cafés" finds "cafe" and "running" "run".

The cost is in Python, not in SQLite (~3 ms of a query at 10,000 hours): up to ~120 candidate rows of ~20
words each. So every word of every candidate is stemmed in one batch through the tokenizer (words already
seen come from a cache) and matched with one dict look-up; a row is scored sentence by sentence only while
its bound (its coverage and surest word over the whole row) can still beat the ``k``-th span found; and only
the ``k`` best get their quote built. The answer is the one scoring every row would give.

Rows come from an AND query first (every content word), then, when that finds fewer than ``k``, an OR query
fills in partial matches (ranked lower by their coverage). A word found in more than ``COMMON_ROWS`` rows
selects little and costs most, so while the query has rarer words it only counts in the relevance ("dynamic
stopwords"); an expression of common words alone is ranked by relevance over its newest rows, without BM25
(``Catalog.fts_rows``).
"""

from __future__ import annotations

import bisect
import json
import re
import sqlite3
import threading
from collections.abc import Collection
from dataclasses import dataclass
from itertools import pairwise
from typing import Any

import orjson

from engine.library.catalog import Catalog
from engine.library.schema import FTS_TOKENIZER
from engine.library.transcripts import Channel
from engine.search import near_words

_WORD = re.compile(r"[^\W_]+")  # letters and digits: what FTS5 unicode61 keeps
_PHRASE = re.compile(r'"([^"]*)"')
PAUSE_S = 1.0  # a silence this long between two words ends a sentence
COMMON_ROWS = 200  # a word in more rows than this only scores; an expression matching more ranks its newest
_SENTENCE_END = (".", "?", "!", "…", "。", "？", "！")
_STOPWORD_TEXT = """
a an and are as at be but by did do does for from had has have he her him his how i if in into is it its me my
of on or our she so than that the their them then there these they this to too us was we were what when where
which while who whom why will with would you your part says said say saying talks talk about shows show showing
written moment scene video clip
"""
STOPWORDS = frozenset(_STOPWORD_TEXT.split())


class LexicalQueryError(ValueError):
    """The query holds nothing to search for (only punctuation or operators); the message says so."""


@dataclass(frozen=True)
class LexicalQuery:
    """A query as FTS5 will see it: content words (stems decide matches) and quoted phrases."""

    text: str
    terms: tuple[str, ...]  # content words, in query order, unique
    phrases: tuple[tuple[str, ...], ...]  # each phrase's words, in order

    @property
    def all_words(self) -> tuple[str, ...]:
        seen = dict.fromkeys([*self.terms, *(w for p in self.phrases for w in p)])
        return tuple(seen)

    def match_all(self, common: frozenset[str] = frozenset()) -> str:
        """FTS5 expression: every term and every phrase; terms in ``common`` are left to the scoring unless
        nothing else would remain."""
        terms = [t for t in self.terms if t not in common] or ([] if self.phrases else list(self.terms))
        return " AND ".join([_quoted(t) for t in terms] + [_quoted(" ".join(p)) for p in self.phrases])

    def match_any(self, common: frozenset[str] = frozenset()) -> str:
        """FTS5 expression: any term or any content word of a phrase, but not the ``common`` ones (nor
        stopwords) while others remain."""
        words = [w for w in self.all_words if w not in STOPWORDS] or list(self.all_words)
        return " OR ".join(_quoted(w) for w in ([w for w in words if w not in common] or words))


def _quoted(text: str) -> str:
    return '"' + text.replace('"', "") + '"'


def parse_query(text: str) -> LexicalQuery:
    """Words and quoted phrases of ``text``; ``LexicalQueryError`` when there is no word in it."""
    phrases, singles = [], []
    for raw in _PHRASE.findall(text):
        words = tuple(w.lower() for w in _WORD.findall(raw))
        if len(words) > 1:
            phrases.append(words)
        else:
            singles.extend(words)
    words = [w.lower() for w in _WORD.findall(_PHRASE.sub(" ", text))] + singles
    if not words and not phrases:
        shown = text if len(text) <= 40 else text[:37] + "..."
        raise LexicalQueryError(
            f"nothing to search for in {shown!r}: type words (punctuation and search operators are ignored)"
        )
    content = [w for w in words if w not in STOPWORDS] or ([] if phrases else words)
    return LexicalQuery(text, tuple(dict.fromkeys(content)), tuple(phrases))


@dataclass(frozen=True)
class QuotedWord:
    """A word of a quote with its own times, and whether it matched the query."""

    text: str
    start: float
    end: float
    matched: bool


@dataclass(frozen=True)
class LexicalMoment:
    """One candidate moment of one channel (see the module docstring for what each field means)."""

    video_id: int
    channel: Channel
    start: float
    end: float
    quote: str
    words: tuple[QuotedWord, ...]
    bm25: float
    relevance: float
    coverage: float  # share of the query's content words found, 0-1
    row_id: int


class _Stemmer:
    """The FTS tokenizer as a Python function: an in-memory FTS5 table and its vocabulary of instances.

    A query's candidate rows hold a few thousand words, most never seen by this process (a CLI search is a
    fresh process), and a round trip per word cost ~0.1 ms: so the words not yet known go in one batch, one
    document each, and are read back in one pass. Known words come from a bounded cache."""

    CACHE_SIZE = 1 << 16  # words (~15 MB at most), as the lru_cache it replaces held

    def __init__(self) -> None:
        self._db = sqlite3.connect(":memory:", check_same_thread=False)
        # contentless: emptying it is one command, where DELETE re-reads and re-tokenizes every row (10x dearer)
        self._db.execute(f"CREATE VIRTUAL TABLE t USING fts5(x, content='', tokenize='{FTS_TOKENIZER}')")
        self._db.execute("CREATE VIRTUAL TABLE v USING fts5vocab(t, 'instance')")
        self._cache: dict[str, tuple[str, ...]] = {}
        self._lock = threading.Lock()

    def stems_of(self, texts: Collection[str]) -> dict[str, tuple[str, ...]]:
        """The tokens FTS5 makes of each of ``texts``, in order."""
        with self._lock:
            cache = self._cache
            todo = [t for t in set(texts) if t not in cache]
            if todo:
                if len(cache) + len(todo) > self.CACHE_SIZE:
                    cache.clear()
                db = self._db
                db.execute("INSERT INTO t(t) VALUES ('delete-all')")
                db.executemany("INSERT INTO t(rowid, x) VALUES (?, ?)", enumerate(todo, 1))
                found: dict[int, list[str]] = {}
                for doc, term in db.execute("SELECT doc, term FROM v ORDER BY doc, offset"):
                    found.setdefault(doc, []).append(term)
                for i, text in enumerate(todo, 1):
                    cache[text] = tuple(found.get(i, ()))
            return {t: cache[t] for t in texts}


_STEMMER = _Stemmer()


def stems(text: str) -> tuple[str, ...]:
    """The FTS tokens of ``text`` (lower case, accents removed, porter-stemmed)."""
    return _STEMMER.stems_of((text,))[text]


def search_lexical(
    catalog: Catalog,
    channel: Channel,
    query: str | LexicalQuery,
    *,
    k: int = 20,
    video_ids: list[int] | set[int] | None = None,
) -> list[LexicalMoment]:
    """The best ``k`` moments of ``channel`` for ``query``, by relevance then BM25 (see the module docstring).

    ``video_ids`` restricts the search (the filters' selection). Raises ``LexicalQueryError`` for a query with
    no word in it."""
    q = parse_query(query) if isinstance(query, str) else query
    ids = None if video_ids is None else sorted(video_ids)
    limit = max(2 * k, 20)  # BM25's best rows; relevance re-orders them
    # Words in more than COMMON_ROWS rows ("dynamic stopwords") select nothing and cost most: they only score.
    common = frozenset(w for w in q.all_words if catalog.fts_count(channel, _quoted(w), cap=COMMON_ROWS) > COMMON_ROWS)
    rows = catalog.fts_rows(channel, q.match_all(common), limit=limit, video_ids=ids, cap=COMMON_ROWS)
    if len(rows) < k and len(q.all_words) > 1:
        seen = {r["id"] for r in rows}
        more = catalog.fts_rows(channel, q.match_any(common), limit=limit, video_ids=ids, cap=COMMON_ROWS)
        rows += [r for r in more if r["id"] not in seen]
    return [_moment(channel, c) for c in _best(channel, rows, q, k)]


def excluded_videos(catalog: Catalog, channel: Channel, text: str) -> set[int]:
    """Videos whose ``channel`` has any word of ``text`` (``--exclude`` per channel); empty for no words."""
    try:
        q = parse_query(text)
    except LexicalQueryError:
        return set()
    return catalog.fts_videos(channel, q.match_any())


def excluded_spans(catalog: Catalog, channel: Channel, text: str) -> list[tuple[int, float, float]]:
    """``(video id, start, end)`` of every segment or line of ``channel`` with any word of ``text``."""
    try:
        q = parse_query(text)
    except LexicalQueryError:
        return []
    return catalog.fts_spans(channel, q.match_any())


def _wanted(q: LexicalQuery) -> dict[str, str]:
    """Stem -> the query word it came from, for every content word and phrase word."""
    out: dict[str, str] = {}
    for word in q.all_words:
        for stem in stems(word):
            out.setdefault(stem, word)
    return out


def _score(q: LexicalQuery, found_words: list[str], in_order: bool, confidence: float) -> tuple[float, float]:
    """(relevance 0-100, coverage 0-1) from the query words found in a span, in the order found."""
    hit = set(found_words)
    coverage = near_words.coverage(q.all_words, found_words)
    ordered = 1.0 if len(hit) <= 1 or in_order else 0.85
    return round(100.0 * coverage**1.5 * ordered * confidence, 2), coverage


def _in_order(q: LexicalQuery, found: list[str]) -> bool:
    """Whether the query words appear in the span in the query's order, each once, with nothing out of place."""
    order = [w for w in q.all_words if w in set(found)]
    deduped = [w for i, w in enumerate(found) if i == 0 or found[i - 1] != w]
    return deduped == order


@dataclass(frozen=True)
class _Candidate:
    """A row's best span, scored but not yet quoted: only the rows that make the list get a quote built."""

    relevance: float
    coverage: float
    bm25: float
    video_id: int
    start: float
    row: sqlite3.Row
    items: list[Any]  # speech: the row's words ``[start, end, text, probability]``; text: the line's tokens
    matches: list[str | None]  # per item, the query word it matched
    a: int  # the span is items[a:b]
    b: int


def _best(channel: Channel, rows: list[sqlite3.Row], q: LexicalQuery, k: int) -> list[_Candidate]:
    """The ``k`` best rows' best spans, by relevance, BM25, video and start (rows in which no query word is
    found drop out): what scoring every row and sorting would give, without scoring most rows.

    Every word of every row is matched against the query's stems through one batch of the tokenizer and a
    table from word to query word, so the per-word work is one dict look-up. What no span of a row can
    beat is known from its matches alone: its coverage over the whole row, and the surest matched word as
    the confidence. So rows are scored best bound first, and once ``k`` spans beat the next row's bound,
    the rest (mostly ~100 of ~120 rows, whose bound ties the ``k``-th relevance) cannot enter."""
    speech = channel == "speech"
    items = [_words(r["words"]) if speech else r["text"].split() for r in rows]
    texts = {w[2] for ws in items for w in ws} if speech else {t for ts in items for t in ts}
    wanted = _wanted(q)
    hit = {
        t: wanted.get(st[0]) if len(st) == 1 else next((wanted[s] for s in st if s in wanted), None)
        for t, st in _STEMMER.stems_of(texts).items()
    }
    near = near_words.near_matcher(q.all_words)
    hit.update({t: near(t) for t, m in hit.items() if m is None})
    # Sort keys, lowest first: (-relevance, SQLite's bm25 (lower is better), video, start, row order); the row
    # order keeps equal spans in the order a stable sort of every row would.
    bounded = []  # (a key no span of the row can beat, row order, row, items, matches)
    for n, (row, its) in enumerate(zip(rows, items, strict=True)):
        matches = [hit[w[2]] for w in its] if speech else [hit[t] for t in its]
        at = [i for i, m in enumerate(matches) if m is not None]
        if not at:
            continue
        sure = 0.7 + 0.3 * max(float(its[i][3]) for i in at) if speech else float(row["confidence"])
        coverage = len({matches[i] for i in at}) / len(q.all_words)
        bound = round(100.0 * coverage**1.5 * sure * (1 + 1e-12), 2)  # the margin absorbs float rounding
        bounded.append(((-bound, float(row["bm25"]), int(row["video_id"])), n, row, its, matches))
    bounded.sort(key=lambda b: b[:2])
    score = _speech_candidate if speech else _text_candidate
    best: list[tuple[tuple[float, float, int, float, int], _Candidate]] = []  # sorted, at most k
    for bound_key, n, row, its, matches in bounded:
        if best and len(best) >= k and best[-1][0][:3] < bound_key:
            break  # the k-th span beats this row's bound, hence every later row's
        if (c := score(row, its, matches, q)) is not None:
            bisect.insort(best, ((-c.relevance, -c.bm25, c.video_id, c.start, n), c), key=lambda e: e[0])
            del best[k:]
    return [c for _, c in best]


def _words(text: str) -> list[list[Any]]:
    """A row's stored words, ``[[start, end, text, probability], ...]``: orjson parses them 3x faster, json
    takes what it refuses (``NaN``, which json writes)."""
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError:
        return json.loads(text)


def _speech_candidate(
    row: sqlite3.Row, words: list[list[Any]], matches: list[str | None], q: LexicalQuery
) -> _Candidate | None:
    best: tuple[float, float, int, int] | None = None
    for a, b in _sentences(words):
        found = [m for m in matches[a:b] if m is not None]
        if not near_words.has_exact(found):
            continue
        probs = [w[3] for w, m in zip(words[a:b], matches[a:b], strict=True) if m is not None]
        relevance, coverage = _score(q, found, _in_order(q, found), 0.7 + 0.3 * sum(probs) / len(probs))
        if best is None or relevance > best[0]:
            best = (relevance, coverage, a, b)
    if best is None:
        return None
    relevance, coverage, a, b = best
    return _Candidate(
        relevance, coverage, -float(row["bm25"]), int(row["video_id"]), float(words[a][0]), row, words, matches, a, b
    )


def _text_candidate(
    row: sqlite3.Row, tokens: list[str], matches: list[str | None], q: LexicalQuery
) -> _Candidate | None:
    found = [m for m in matches if m is not None]
    if not near_words.has_exact(found):
        return None
    relevance, coverage = _score(q, found, _in_order(q, found), float(row["confidence"]))
    return _Candidate(
        relevance, coverage, -float(row["bm25"]), int(row["video_id"]), float(row["start"]), row, tokens, matches,
        0, len(tokens),
    )  # fmt: skip


def _moment(channel: Channel, c: _Candidate) -> LexicalMoment:
    """The candidate as a moment, with its quote and each quoted word's times and match."""
    row, matches = c.row, c.matches[c.a : c.b]
    if channel == "speech":
        span = c.items[c.a : c.b]
        quoted = tuple(
            QuotedWord(str(w[2]), float(w[0]), float(w[1]), m is not None) for w, m in zip(span, matches, strict=True)
        )
        end, quote = max(float(w[1]) for w in span), " ".join(str(w[2]) for w in span)
    else:
        end, quote = float(row["end"]), row["text"]
        quoted = tuple(QuotedWord(t, c.start, end, m is not None) for t, m in zip(c.items, matches, strict=True))
    return LexicalMoment(
        c.video_id, channel, c.start, end, quote, quoted, c.bm25, c.relevance, c.coverage, int(row["id"])
    )


def _sentences(words: list[list[Any]]) -> list[tuple[int, int]]:
    """``[a, b)`` word ranges of the sentences of a segment: a sentence ends at . ? !, before a pause of
    ``PAUSE_S`` or more (Whisper often joins two sentences with a comma), or at the segment's end."""
    if not words:
        return []
    cuts = [
        i + 1
        for i, (w, after) in enumerate(pairwise(words))
        if after[0] - w[1] >= PAUSE_S or str(w[2]).endswith(_SENTENCE_END)
    ]
    bounds = [0, *cuts, len(words)]
    return list(pairwise(bounds))
