"""Component negatives and paraphrase positives for captions: proposed by a local LLM, validated by parsing.

For each caption and each component (subject, verb, object, attribute) the LLM proposes replacement words
for one component word at a time; the program splices each in, re-parses the sentence and keeps it only if
exactly that component changed, to a word of the same part of speech and inflection, with a different lemma
that is neither an inflection nor a synonym of the original (``engine.train.components``), and the sentence
kept a fluent length. Small models often answer with the original word or a synonym, so nothing they write is
trusted. After a retry, the rest is filled by a rule-based swap drawn from the dataset's own vocabulary of that
component (same fine tag, so "dogs" becomes another plural noun), validated the same way. Relation
negatives keep every word and swap who has what: two noun chunks (CE-CLIP), two attributes, or a path's source
and goal (``engine.train.relations``). Positives are LLM paraphrases that keep every component's lemma
and add no negation, with a template fallback ("in this video, ...").

Several negatives per component are kept, because negatives fixed once per clip get memorised (findings.md
#2): the trainer samples a fresh one each epoch. Results are cached in SQLite keyed by caption, model, prompt
version and settings, so a run that was stopped resumes where it was; the report gives, per component, the
fraction of LLM proposals that validated.
"""

from __future__ import annotations

import hashlib
import json
import math
import random
import sqlite3
from collections import Counter
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any, Protocol

from engine.jobs import CancelToken, ProgressCallback, check_cancel, report
from engine.paths import cache_home
from engine.train.components import (
    COMPONENTS,
    Parsed,
    Span,
    check_paraphrase,
    check_substitution,
    load_nlp,
    norm_text,
    parse_many,
    precheck_word,
    splice,
    substitute,
)
from engine.train.negative_records import (
    NEGATIVE_KINDS,
    RELATION,
    CaptionNegatives,
    NegativeReport,
    read_negatives,
    write_negatives,
)
from engine.train.prompts import (
    negative_prompt,
    parse_paraphrase,
    parse_replacements,
    positive_prompt,
    prompt_fingerprint,
)
from engine.train.relations import relation_negatives

CACHE_VERSION = 4  # bump when generation or validation changes: cached results were made by the old rules
LLM_ATTEMPTS = 2  # calls per component: the first, then one retry (another span, or hotter sampling)
_RULE_TRIES = 40  # substitutions parsed per component before the rule-based swap gives up
_NEGATIVE_TOKENS = 20  # about five short words: the examples show five, and small models repeat themselves
_POSITIVE_TEMPLATES = ("in this video, {c}", "in this clip, {c}", "on screen, {c}")

# Backup vocabulary for the rule-based swap when a small dataset has too few words of a kind, keyed like the
# dataset vocabulary: nouns by number, verbs by fine tag, adjectives as one class.


def _words(text: str) -> tuple[str, ...]:
    return tuple(text.split())


_VERBS = _words("cook dance paint jump walk climb talk play laugh clean kick push open wash type smile pour fold")
_BUILTIN: dict[str, tuple[str, ...]] = {  # regular verbs only, so their forms follow the rules below
    "noun:sg": _words(
        "man woman dog cat car ball guitar horse boat table phone bicycle tree baby bird computer book beach "
        "field house street piano robot"
    ),
    "noun:pl": _words("men women dogs cats cars balls guitars horses boats birds trees books children robots"),
    "verb:VB": _VERBS,
    "verb:VBP": _VERBS,
    "verb:VBZ": tuple(v + ("es" if v.endswith(("sh", "ch")) else "s") for v in _VERBS),
    "verb:VBG": tuple((v[:-1] if v.endswith("e") else v) + "ing" for v in _VERBS),
    "verb:VBD": tuple(v + ("d" if v.endswith("e") else "ed") for v in _VERBS),
    "verb:VBN": tuple(v + ("d" if v.endswith("e") else "ed") for v in _VERBS),
    "attribute": _words("red blue green black white yellow young old wet dry empty crowded tall wooden"),
}


class TextGenerator(Protocol):
    """What the generator needs of an LLM (``engine.train.llm.LocalLLM``, or a fake in tests)."""

    @property
    def model_id(self) -> str: ...

    def complete(
        self,
        prompt: str,
        *,
        max_tokens: int = ...,
        temperature: float = ...,
        seed: int = ...,
        stop: tuple[str, ...] = ...,
    ) -> str: ...


def generate_negatives(
    captions: Iterable[str],
    *,
    llm: TextGenerator | Path | str | None = None,
    per_component: int = 4,
    positives: int = 1,
    cache_dir: Path | None = None,
    seed: int = 0,
    progress: ProgressCallback | None = None,
    cancel: CancelToken | None = None,
    nlp: Any | None = None,
) -> NegativeReport:
    """Negatives and positives for each distinct caption, in first-seen order.

    ``llm``: a ``TextGenerator``, a GGUF path (loaded as ``LocalLLM``), or ``None`` for the rule-based swap
    alone. ``cache_dir`` defaults to ``cache_home()/negatives``; finished captions are committed one by one, so
    a cancelled run loses nothing.
    """
    if per_component < 1 or positives < 0:
        raise ValueError(f"per_component must be >= 1 and positives >= 0 (got {per_component}, {positives})")
    if isinstance(llm, str | Path):
        from engine.train.llm import LocalLLM

        with LocalLLM(llm) as local:
            return generate_negatives(
                captions,
                llm=local,
                per_component=per_component,
                positives=positives,
                cache_dir=cache_dir,
                seed=seed,
                progress=progress,
                cancel=cancel,
                nlp=nlp,
            )
    unique = list(dict.fromkeys(c.strip() for c in captions if c and c.strip()))
    nlp = nlp if nlp is not None else load_nlp()
    report(progress, 0.0, f"parsing {len(unique)} captions")
    parsed = parse_many(unique, nlp)
    model = llm.model_id if llm is not None else "rules"
    gen = _Generator(llm, nlp, _vocabulary(parsed), per_component, positives, seed)
    settings = [CACHE_VERSION, model, prompt_fingerprint(), per_component, positives, seed]
    items: list[CaptionNegatives] = []
    stats: list[dict[str, Any]] = []
    cached = 0
    with _Cache(Path(cache_dir) if cache_dir is not None else cache_home() / "negatives") as cache:
        for i, p in enumerate(parsed):
            check_cancel(cancel)
            key = hashlib.sha256(json.dumps([p.caption, *settings]).encode("utf-8")).hexdigest()
            hit = cache.get(key)
            if hit is not None:
                item, st = CaptionNegatives.from_json(hit["item"]), hit["stats"]
                cached += 1
            else:
                item, st = gen.run(p)
                cache.put(key, {"item": item.to_json(), "stats": st})
            items.append(item)
            stats.append(st)
            report(progress, (i + 1) / max(1, len(parsed)), f"negatives {i + 1}/{len(parsed)}")
    return _summarise(items, stats, model, cached)


def _summarise(items: list[CaptionNegatives], stats: list[dict[str, Any]], model: str, cached: int) -> NegativeReport:
    proposed, accepted = Counter[str](), Counter[str]()
    rejections: dict[str, Counter[str]] = {c: Counter() for c in COMPONENTS}
    for st in stats:
        proposed.update(st["proposed"])
        accepted.update(st["accepted"])
        for comp, reasons in st["rejected"].items():
            rejections[comp].update(reasons)
    rule = sum(s.count("rule") for i in items for c in COMPONENTS for s in [i.sources.get(c, [])])
    total = sum(len(i.negatives.get(c, [])) for i in items for c in COMPONENTS)
    pos_proposed = sum(st["positive_proposed"] for st in stats)
    return NegativeReport(
        items=items,
        validity={c: accepted[c] / proposed[c] if proposed[c] else math.nan for c in COMPONENTS},
        fallback_rate=rule / total if total else math.nan,
        proposed={c: proposed[c] for c in COMPONENTS},
        accepted={c: accepted[c] for c in COMPONENTS},
        rejections={c: dict(r.most_common()) for c, r in rejections.items()},
        positive_validity=sum(st["positive_accepted"] for st in stats) / pos_proposed if pos_proposed else math.nan,
        model=model,
        prompt_version=prompt_fingerprint(),
        cached=cached,
    )


def _vocab_key(component: str, span: Span) -> str:
    if span.pos in ("NOUN", "PROPN"):
        return f"noun:{'pl' if span.tag in ('NNS', 'NNPS') else 'sg'}"
    if span.pos == "VERB":
        return f"verb:{span.tag}"
    return "attribute"


def _vocabulary(parsed: Sequence[Parsed]) -> dict[tuple[str, str], list[str]]:
    """(component, kind) -> the dataset's words of that kind, most frequent first (lower-cased)."""
    counts: dict[tuple[str, str], Counter[str]] = {}
    for p in parsed:
        for s in p.spans:
            counts.setdefault((s.component, _vocab_key(s.component, s)), Counter())[s.text.lower()] += 1
    return {k: [w for w, _ in c.most_common()] for k, c in counts.items()}


class _Generator:
    """Writes one caption's negatives and positives; holds the LLM, the parser and the dataset vocabulary."""

    def __init__(
        self,
        llm: TextGenerator | None,
        nlp: Any,
        vocabulary: dict[tuple[str, str], list[str]],
        per_component: int,
        positives: int,
        seed: int,
    ) -> None:
        self.llm, self.nlp, self.vocabulary = llm, nlp, vocabulary
        self.need, self.positives, self.seed = per_component, positives, seed

    def run(self, p: Parsed) -> tuple[CaptionNegatives, dict[str, Any]]:
        st: dict[str, Any] = {
            "proposed": {},
            "accepted": {},
            "rejected": {},
            "positive_proposed": 0,
            "positive_accepted": 0,
        }
        negatives: dict[str, list[str]] = {}
        sources: dict[str, list[str]] = {}
        for comp in COMPONENTS:
            negatives[comp], sources[comp] = self._component(p, comp, st)
        negatives[RELATION] = self._relations(p)
        sources[RELATION] = ["rule"] * len(negatives[RELATION])
        return CaptionNegatives(p.caption, negatives, self._positives(p, st), sources), st

    # --- one component --------------------------------------------------------------------------------------

    def _component(self, p: Parsed, comp: str, st: dict[str, Any]) -> tuple[list[str], list[str]]:
        spans = p.of(comp)
        out: list[str] = []
        src: list[str] = []
        if not spans:
            return out, src
        seen = {norm_text(p.caption)}
        proposed, accepted, rejected = 0, 0, Counter[str]()
        for attempt in range(LLM_ATTEMPTS if self.llm is not None else 0):
            if len(out) >= self.need:
                break
            span = spans[attempt % len(spans)]
            hotter = attempt >= len(spans)
            answer = self.llm.complete(  # type: ignore[union-attr]
                negative_prompt(p.caption, span),
                max_tokens=_NEGATIVE_TOKENS,
                temperature=1.0 if hotter else 0.7,
                seed=_seed(self.seed, p.caption, comp, attempt),
                stop=("\n",),
            )
            candidates = parse_replacements(answer)
            proposed += len(candidates)
            for candidate, reason in zip(candidates, self._check_all(p, span, candidates), strict=True):
                if reason:
                    rejected[reason] += 1
                    continue
                accepted += 1
                text = substitute(p.caption, span, candidate)
                if len(out) < self.need and norm_text(text) not in seen:
                    seen.add(norm_text(text))
                    out.append(text)
                    src.append("llm")
        st["proposed"][comp], st["accepted"][comp], st["rejected"][comp] = proposed, accepted, dict(rejected)
        if len(out) < self.need:
            for text in self._rule_swaps(p, comp, spans, self.need - len(out), seen):
                out.append(text)
                src.append("rule")
        return out, src

    def _rule_swaps(self, p: Parsed, comp: str, spans: Sequence[Span], need: int, seen: set[str]) -> list[str]:
        """Swaps drawn from the dataset's words of this component (then its other noun component, then a small
        built-in list), the same kind as the span; each validated like an LLM proposal."""
        rng = random.Random(f"{self.seed}:{p.caption}:{comp}")
        queues = []
        for span in spans:
            key = _vocab_key(comp, span)
            own = list(self.vocabulary.get((comp, key), []))
            other = [w for c in ("subject", "object") if c != comp for w in self.vocabulary.get((c, key), [])]
            builtin = list(_BUILTIN.get(key, ()))
            for words in (own, other, builtin):
                rng.shuffle(words)
            queue = list(dict.fromkeys(w for w in own + other + builtin if w != span.text.lower()))
            queues.append((span, queue))
        pairs: list[tuple[Span, str]] = []  # round robin over the spans, so negatives spread over them
        while len(pairs) < _RULE_TRIES and any(q for _, q in queues):
            pairs.extend((span, q.pop(0)) for span, q in queues if q)
        out: list[str] = []
        while len(out) < need and pairs:
            batch, pairs = pairs[: need - len(out) + 2], pairs[need - len(out) + 2 :]
            for (span, word), reason in zip(batch, self._check_pairs(p, batch), strict=True):
                text = substitute(p.caption, span, word)
                if not reason and len(out) < need and norm_text(text) not in seen:
                    seen.add(norm_text(text))
                    out.append(text)
        return out

    def _check_all(self, p: Parsed, span: Span, words: Sequence[str]) -> list[str | None]:
        return self._check_pairs(p, [(span, w) for w in words])

    def _check_pairs(self, p: Parsed, pairs: Sequence[tuple[Span, str]]) -> list[str | None]:
        """None for each substitution that validates, else the reason it does not (parsed as one batch)."""
        reasons: list[str | None] = [precheck_word(span, word) for span, word in pairs]
        todo = [i for i, r in enumerate(reasons) if r is None]
        spliced = [splice(p.caption, pairs[i][0], pairs[i][1]) for i in todo]
        for i, (_, start), new in zip(todo, spliced, parse_many([t for t, _ in spliced], self.nlp), strict=True):
            reasons[i] = check_substitution(p, pairs[i][0], pairs[i][1], new, start, self.nlp)
        return reasons

    # --- relation and positives -----------------------------------------------------------------------------

    def _relations(self, p: Parsed) -> list[str]:
        return relation_negatives(p, self.need)

    def _positives(self, p: Parsed, st: dict[str, Any]) -> list[str]:
        if self.positives == 0:
            return []
        out: list[str] = []
        for attempt in range(LLM_ATTEMPTS if self.llm is not None else 0):
            if len(out) >= self.positives:
                break
            answer = self.llm.complete(  # type: ignore[union-attr]
                positive_prompt(p.caption),
                max_tokens=max(16, 2 * len(p.caption.split()) + 8),
                temperature=0.7 if attempt == 0 else 1.0,
                seed=_seed(self.seed, p.caption, "positive", attempt),
                stop=("\n",),
            )
            text = parse_paraphrase(answer)
            st["positive_proposed"] += 1
            if text and check_paraphrase(p, parse_many([text], self.nlp)[0]) and text not in out:
                st["positive_accepted"] += 1
                out.append(text)
        for template in _POSITIVE_TEMPLATES:
            if len(out) >= self.positives:
                break
            caption = p.caption if p.caption[:2].isupper() else p.caption[:1].lower() + p.caption[1:]
            text = template.format(c=caption)
            if check_paraphrase(p, parse_many([text], self.nlp)[0]):
                out.append(text)
        return out


def _seed(seed: int, *parts: object) -> int:
    digest = hashlib.sha256(json.dumps([seed, *map(str, parts)]).encode("utf-8")).digest()
    return int.from_bytes(digest[:4], "little") & 0x7FFFFFFF


class _Cache:
    """caption+settings hash -> JSON, in one SQLite file (WAL, so a reader never blocks the writer)."""

    def __init__(self, folder: Path) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        self.path = folder / "negatives.sqlite"
        self.db = sqlite3.connect(self.path, timeout=30)
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("CREATE TABLE IF NOT EXISTS entries (key TEXT PRIMARY KEY, value TEXT NOT NULL)")

    def get(self, key: str) -> dict[str, Any] | None:
        row = self.db.execute("SELECT value FROM entries WHERE key = ?", (key,)).fetchone()
        if row is None:
            return None
        try:
            value = json.loads(row[0])
            CaptionNegatives.from_json(value["item"])
            return value if isinstance(value.get("stats"), dict) else None
        except (ValueError, KeyError, TypeError):
            return None  # a damaged entry is recomputed

    def put(self, key: str, value: dict[str, Any]) -> None:
        with self.db:
            self.db.execute("INSERT OR REPLACE INTO entries VALUES (?, ?)", (key, json.dumps(value)))

    def __enter__(self) -> _Cache:
        return self

    def __exit__(self, *exc: object) -> None:
        self.db.close()


__all__ = [
    "COMPONENTS",
    "NEGATIVE_KINDS",
    "RELATION",
    "CaptionNegatives",
    "NegativeReport",
    "TextGenerator",
    "generate_negatives",
    "read_negatives",
    "write_negatives",
]
