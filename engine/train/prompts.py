"""Prompt templates for the local LLM that proposes component negatives and paraphrases, and their parsing.

The templates live in ``resources/prompts/*.txt`` as few-shot *completions*, not chat turns: models of 0.1-2B
parameters follow a pattern ("Replacements: a, b, c") far more reliably than an instruction. Both tasks share
one block of examples (``examples.txt``) and differ only in the last lines (``negative.txt``,
``positive.txt``), so llama.cpp reuses the examples' KV cache from one call to the next whichever task it is:
on a CPU the prompt, not the answer, is most of the time of a call. ``PROMPT_VERSION`` plus a hash of
the template text goes into the negatives cache key, so editing a template never serves stale answers.
"""

from __future__ import annotations

import functools
import hashlib
import re
from pathlib import Path

from engine.train.components import Span

PROMPT_VERSION = "1"
PROMPT_DIR = Path(__file__).resolve().parents[2] / "resources" / "prompts"
TEMPLATES = ("examples", "negative", "positive")

_KINDS = {
    "NNS": "plural noun",
    "NNPS": "plural noun",
    "VBG": "verb ending in -ing",
    "VBZ": "verb ending in -s",
    "VBD": "verb in the past tense",
    "VBN": "verb in the past participle",
    "VB": "verb",
    "VBP": "verb",
}
_POS_KINDS = {"NOUN": "noun", "PROPN": "noun", "VERB": "verb", "ADJ": "adjective"}
_ITEM_SPLIT = re.compile(r"[,;\n]|\s\d+[.)]\s|\bor\b")
_ARTICLE = re.compile(r"^(?:a|an|the|some|his|her|their)\s+", re.IGNORECASE)
_NOISE = re.compile(r"^\s*(?:\d+[.)]|[-*•])\s*")


@functools.cache
def template(name: str) -> str:
    """The text of ``resources/prompts/<name>.txt``; a missing file names itself."""
    path = PROMPT_DIR / f"{name}.txt"
    try:
        return path.read_text(encoding="utf-8")
    except OSError as exc:
        raise FileNotFoundError(f"{path}: prompt template missing ({exc.strerror})") from exc


def prompt_fingerprint() -> str:
    """``PROMPT_VERSION`` plus a short hash of every template: the prompt part of a cache key."""
    digest = hashlib.sha256("\0".join(template(name) for name in TEMPLATES).encode("utf-8")).hexdigest()
    return f"{PROMPT_VERSION}-{digest[:10]}"


def kind_of(span: Span) -> str:
    """How the prompt names the word's kind, inflection included, so the answer fits the sentence."""
    if span.pos in ("NOUN", "PROPN") and span.tag not in ("NNS", "NNPS"):
        return "noun"
    return _KINDS.get(span.tag) or _POS_KINDS.get(span.pos, "word")


def negative_prompt(caption: str, span: Span) -> str:
    query = template("negative").format(caption=_one_line(caption), word=span.text, kind=kind_of(span))
    return template("examples") + query.strip()


def positive_prompt(caption: str) -> str:
    return template("examples") + template("positive").format(caption=_one_line(caption)).strip()


def parse_replacements(text: str, limit: int = 12) -> list[str]:
    """Distinct candidate words from an answer such as ``" dancing, arguing (verb), 3. sleeping."``."""
    out: list[str] = []
    text = re.sub(r"\([^)]*\)?|\[[^\]]*\]?", " ", text.split("\n\n", 1)[0])  # "(noun)", even unclosed
    for raw in _ITEM_SPLIT.split(text):
        item = _NOISE.sub(" ", raw)
        item = item.strip().strip("\"'`.:!?").strip()
        item = re.sub(r"\s+", " ", item)
        item = _ARTICLE.sub("", item)  # the caption keeps its own article: "a kid" -> "kid"
        if item and item.lower() not in (o.lower() for o in out):
            out.append(item)
        if len(out) >= limit:
            break
    return out


def parse_paraphrase(text: str) -> str:
    """The first line of an answer, without quotes or a trailing full stop."""
    line = text.strip().split("\n", 1)[0].strip()
    line = line.strip("\"'`").strip()
    return re.sub(r"\s+", " ", line.rstrip(".")).strip()


def _one_line(text: str) -> str:
    return re.sub(r"\s+", " ", text).strip()
