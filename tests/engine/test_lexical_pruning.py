"""Lexical search scores only the rows that can still make the list: the answer must be the full path's.

``search_lexical`` bounds each candidate row (its coverage and surest matched word over the whole row) and
stops scoring once ``k`` spans beat the next bound (``engine.search.lexical._best``). Here a catalog of a few
hundred generated rows, some saying the phrase, many only some of its words, with repeated rows (equal
relevance and BM25: the tie-breaks decide), pauses and sentence ends, is searched both ways: bounded, and with
the bound out of play (``k`` above the row count, so every row is scored and sorted).
"""

from __future__ import annotations

import random

import pytest

from engine.library.catalog import Catalog
from engine.library.transcripts import SpeechRow, StageOutcome, TextRow
from engine.search import lexical
from engine.speech.transcript import Segment, Word

PHRASE = ["water", "the", "plants"]
_FILLER_TEXT = """we went home early garden tuesday morning remember please kitchen light planting watered plant waters
the a of and grandmother said cafés résumé running ran"""
FILLER = _FILLER_TEXT.split()
QUERIES = ['"water the plants"', "plants", "water plants", "tuesday plants kitchen", "planting watered", "café running"]


def _sentence(rng: random.Random) -> list[str]:
    words = [rng.choice(FILLER) for _ in range(rng.randint(6, 14))]
    if rng.random() < 0.3:
        at = rng.randrange(len(words))
        words[at:at] = PHRASE
    return [w + rng.choice((".", "?", ",")) if rng.random() < 0.15 else w for w in words]


def _segment(words: list[str], start: float, probs: list[float], rng: random.Random) -> Segment:
    out, t = [], start
    for text, p in zip(words, probs, strict=True):
        out.append(Word(round(t, 3), round(t + 0.3, 3), text, p))
        t += 0.3 + (1.2 if rng.random() < 0.1 else rng.choice((0.05, 0.1, 0.2)))  # some pauses end a sentence
    return Segment.from_words(out)


@pytest.fixture(scope="module")
def catalog(tmp_path_factory: pytest.TempPathFactory) -> Catalog:
    rng = random.Random(7)
    root = tmp_path_factory.mktemp("pruning")
    catalog = Catalog(root / "catalog.sqlite")
    folder, _ = catalog.add_folder(root)
    said = [_sentence(rng) for _ in range(60)]  # repeated below: equal rows in several videos and times
    for v in range(40):
        vid = catalog.add_video(folder["id"], root / f"v{v:02d}.mp4", 1, 1, f"fp{v}")
        speech, text = [], []
        for i in range(9):
            words = rng.choice(said)
            probs = [rng.choice((0.5, 0.75, 0.9, 1.0)) if v % 3 else 0.9 for _ in words]  # a third: all equal
            seg = _segment(words, 20.0 * i, probs, rng)
            speech.append(SpeechRow(seg.start, seg.end, seg.text, seg.words_json()))
            line = " ".join(words[: rng.randint(2, 6)])
            text.append(TextRow(20.0 * i, 20.0 * i + 4, line, rng.choice((0.6, 0.8, 0.95)), (0, 0, 9, 9), 640, 360))
        catalog.commit_speech(vid, f"fp{v}", "m", speech, StageOutcome("done", items=len(speech)))
        catalog.commit_text(vid, f"fp{v}", "m", text, StageOutcome("done", items=len(text)))
    return catalog


def _all_rows(catalog: Catalog, channel: lexical.Channel, q: lexical.LexicalQuery, ranked: bool) -> list:
    """Every row with any query word: ranked by BM25, or (``ranked=False``) the unranked newest rows, BM25 0
    for all, as an expression of common words in a large library gets (``Catalog.fts_rows``)."""
    if ranked:
        return catalog.fts_rows(channel, q.match_any(), limit=100_000, cap=100_000)
    return catalog.fts_rows(channel, q.match_any(), limit=200, cap=1)


@pytest.mark.parametrize("channel", ["speech", "text"])
@pytest.mark.parametrize("ranked", [True, False], ids=["bm25", "newest"])
def test_the_bounded_path_returns_the_moments_of_the_full_path(catalog, channel, ranked, monkeypatch) -> None:
    scorer = "_speech_candidate" if channel == "speech" else "_text_candidate"
    scored = []
    real = getattr(lexical, scorer)
    monkeypatch.setattr(lexical, scorer, lambda row, *a: scored.append(row["id"]) or real(row, *a))
    for text in QUERIES:
        q = lexical.parse_query(text)
        rows = _all_rows(catalog, channel, q, ranked)
        assert len(rows) >= 50, (text, len(rows))  # many matching rows
        full = lexical._best(channel, rows, q, len(rows) + 1)  # every row scored, then sorted
        every_word = sum(1 for c in full if c.coverage == 1.0)
        assert every_word < len(full) or len(q.all_words) == 1, text  # some rows lack some words
        assert every_word > 0 or text != QUERIES[0]  # and some say the phrase
        assert len({c.relevance for c in full}) > 1 and len({c.relevance for c in full}) < len(full) / 4  # ties
        for k in (1, 5, 20, 50):
            scored.clear()
            bounded = lexical._best(channel, rows, q, k)
            assert [lexical._moment(channel, c) for c in bounded] == [lexical._moment(channel, c) for c in full[:k]], (
                text,
                k,
            )
            if k <= 5:
                assert len(scored) < len(rows) / 2, (text, k, len(scored), len(rows))  # the bound did prune


def test_search_lexical_finds_the_phrase_first_and_quotes_it(catalog) -> None:
    top = lexical.search_lexical(catalog, "speech", '"water the plants"', k=10)
    assert len(top) == 10 and all(m.coverage == 1.0 for m in top)
    said = [m for m in top if "water the plants" in m.quote.lower().replace(".", "").replace(",", "")]
    assert top[0] in said and len(said) >= 5  # the phrase said in order ranks above its words apart
    assert [m.relevance for m in top] == sorted((m.relevance for m in top), reverse=True)


def test_stemming_in_one_batch_is_stemming_one_word_at_a_time() -> None:
    words = [*FILLER, "Running,", "GRANDMÔTHER", "don't", "...", "", "naïve", "e-mail", "3rd", "日本語"]
    batch = lexical._Stemmer().stems_of(words)
    assert batch == {w: lexical._Stemmer().stems_of([w])[w] for w in words}
    assert batch["Running,"] == ("run",) and batch["don't"] == ("don", "t") and batch["..."] == ()
    assert lexical.stems("cafés") == lexical.stems("cafe")


def test_a_cache_that_fills_up_starts_over(monkeypatch) -> None:
    stemmer = lexical._Stemmer()
    monkeypatch.setattr(stemmer, "CACHE_SIZE", 5)
    assert stemmer.stems_of(["plants", "running"]) == {"plants": ("plant",), "running": ("run",)}
    assert stemmer.stems_of([f"w{i}" for i in range(4)])["w3"] == ("w3",)
    assert len(stemmer._cache) <= 5 and stemmer.stems_of(["plants"]) == {"plants": ("plant",)}
