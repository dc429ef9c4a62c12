"""A word the recogniser fused into a longer one ("turkey" for "spare key") earns half credit, never alone.

Measured in ``bench speech``: tiny.en heard "The turkey is under the red flower pot" for "The spare key is under
the red flower pot", and the spoken video lost to a look-alike picture. These tests search a real catalog's FTS
tables through ``search_lexical``.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from engine.library.catalog import Catalog
from engine.library.transcripts import SpeechRow, StageOutcome
from engine.search import lexical
from engine.search.near_words import Near, coverage, near_word
from engine.speech.transcript import Segment, Word


def _say(catalog: Catalog, folder_id: int, root: Path, name: str, sentence: str) -> int:
    vid = catalog.add_video(folder_id, root / name, 1, 1, name)
    words = [Word(1.0 + 0.4 * i, 1.3 + 0.4 * i, w, 0.95) for i, w in enumerate(sentence.split())]
    seg = Segment.from_words(words)
    catalog.commit_speech(vid, name, "m", [SpeechRow(seg.start, seg.end, seg.text, seg.words_json())],
                          StageOutcome("done", items=1))  # fmt: skip
    return vid


@pytest.fixture()
def catalog(tmp_path: Path) -> tuple[Catalog, dict[str, int]]:
    catalog = Catalog(tmp_path / "catalog.sqlite")
    folder, _ = catalog.add_folder(tmp_path)
    ids = {
        "misheard": _say(catalog, folder["id"], tmp_path, "misheard.mp4", "The turkey is under the red flower pot."),
        "partial": _say(catalog, folder["id"], tmp_path, "partial.mp4", "The red pot is on the table."),
        "monkey": _say(catalog, folder["id"], tmp_path, "monkey.mp4", "A monkey climbs the tree."),
    }
    return catalog, ids


def test_near_word_is_a_query_word_at_the_start_or_end_of_a_slightly_longer_word() -> None:
    assert near_word("turkey.", ["spare", "key"]) == "key"
    assert isinstance(near_word("Turkey", ["key"]), Near)
    assert near_word("keyboards", ["key"]) is None  # five letters more: another word
    assert near_word("key", ["key"]) is None  # the same word is an exact match, not a near one
    assert near_word("ox", ["ox"]) is None and near_word("boxes", ["ox"]) is None  # too short to judge
    assert near_word("donkey", ["spare"]) is None


def test_a_near_match_counts_half_and_an_exact_one_wins_over_it() -> None:
    words = ("spare", "key", "pot")
    assert coverage(words, ["spare", Near("key")]) == pytest.approx(0.5)
    assert coverage(words, [Near("key"), "key", "pot"]) == pytest.approx(2 / 3)
    assert coverage(words, ["pot"]) == pytest.approx(1 / 3)


def test_the_misheard_sentence_ranks_first_and_scores_above_four_words_of_five(catalog) -> None:
    cat, ids = catalog
    top = lexical.search_lexical(cat, "speech", "the spare key is under the red flower pot", k=10)
    assert [m.video_id for m in top][:2] == [ids["misheard"], ids["partial"]]
    best = top[0]
    # six content words (spare key under red flower pot): four exact and "key" near, above four exact alone
    exact_only = 100.0 * (4 / 6) ** 1.5 * (0.7 + 0.3 * 0.95)
    assert best.relevance > exact_only + 5
    assert best.coverage == pytest.approx(4.5 / 6)
    assert [w.text for w in best.words if w.matched] == ["turkey", "under", "red", "flower", "pot."]


def test_a_near_match_alone_finds_nothing(catalog) -> None:
    cat, ids = catalog
    found = lexical.search_lexical(cat, "speech", "key", k=10)
    assert ids["monkey"] not in {m.video_id for m in found}
    assert ids["misheard"] not in {m.video_id for m in found}
