"""Relation negatives: captions that keep every word and change who has what (binding negatives).

Why a kind of its own: a one-word component negative ("a red circle" -> "a blue circle") can be rejected by a
bag-of-words match, so it never teaches the model *which* noun an attribute, a role or a direction belongs to.
These swaps keep the multiset of words and change the meaning, the kind of foil that bag-of-words matching
fails (ARO's relation/attribution sets, CE-CLIP's swap negative):

* two noun chunks swapped (CE-CLIP's relation negative): "a dog bites a man" -> "a man bites a dog";
* two attributes of different nouns swapped: "a black dog chases a white cat" -> "a white dog chases a black cat";
* the source and goal of a path swapped: "walks from the kitchen to the garden" -> "from the garden to the kitchen".

Rule-based and deterministic (no LLM: a swap is a string operation, and it is either meaning-changing or not
by construction); each kind is tried in turn so a small ``need`` still gets one of each where the caption has it.
"""

from __future__ import annotations

from collections.abc import Iterator

from engine.train.components import Parsed, Span, norm_text, splice, swap_chunks, synonyms

_PLURAL = ("NNS", "NNPS")


def relation_negatives(p: Parsed, need: int) -> list[str]:
    """Up to ``need`` distinct relation negatives of ``p``, interleaving the three kinds (chunks first)."""
    kinds = [_chunk_swaps(p), _attribute_swaps(p), _path_swaps(p)]
    out: list[str] = []
    while kinds and len(out) < need:
        for kind in list(kinds):
            text = next(kind, None)
            if text is None:
                kinds.remove(kind)
            elif norm_text(text) != norm_text(p.caption) and text not in out:
                out.append(text)
            if len(out) >= need:
                break
    return out


def _chunk_swaps(p: Parsed) -> Iterator[str]:
    """Swap two noun chunks with different head lemmas; pairs with the subject first, and a pair involving the
    subject only when both chunks agree in number (the verb agrees with the subject)."""
    subject_starts = {s.start for s in p.of("subject")}

    def has_subject(c: Span) -> bool:
        return any(c.start <= s < c.end for s in subject_starts)

    pairs = []
    for i, a in enumerate(p.chunks):
        for b in p.chunks[i + 1 :]:
            if a.lemma == b.lemma or a.end > b.start or synonyms(a.lemma, b.lemma):
                continue
            if (has_subject(a) or has_subject(b)) and (a.tag in _PLURAL) != (b.tag in _PLURAL):
                continue
            pairs.append((0 if has_subject(a) or has_subject(b) else 1, a, b))
    pairs.sort(key=lambda t: t[0])
    for _, a, b in pairs:
        yield swap_chunks(p.caption, a, b)


def _attribute_swaps(p: Parsed) -> Iterator[str]:
    """Swap two attributes with different lemmas that modify different noun chunks (articles mended)."""

    def chunk_of(s: Span) -> int | None:
        return next((k for k, c in enumerate(p.chunks) if c.start <= s.start < c.end), None)

    attributes = [(a, chunk_of(a)) for a in p.of("attribute")]
    for i, (a, ca) in enumerate(attributes):
        for b, cb in attributes[i + 1 :]:
            if ca is None or cb is None or ca == cb or a.lemma == b.lemma:
                continue
            yield swap_words(p.caption, a, b)


def _path_swaps(p: Parsed) -> Iterator[str]:
    for source, goal in p.paths:
        yield swap_words(p.caption, source, goal)


def swap_words(caption: str, a: Span, b: Span) -> str:
    """Swap the texts of two non-overlapping spans, mending the article before each ("a old" -> "an old")."""
    first, second = (a, b) if a.start < b.start else (b, a)
    text, _ = splice(caption, second, first.text)  # the later span first, so the earlier offsets stay valid
    text, _ = splice(text, first, second.text)
    return text


__all__ = ["relation_negatives", "swap_words"]
