"""What the negative writer produces, and its file: one JSON object per caption (``scenefind negatives``).

Why apart from the writer: the trainer, the Training tab and the CLI read and write these records without
parsing or an LLM; only ``engine.train.negatives`` generates them.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from engine.atomic import atomic_path
from engine.datasets.common import AnnotationError, read_lines
from engine.train.components import COMPONENTS

RELATION = "relation"
NEGATIVE_KINDS: tuple[str, ...] = (*COMPONENTS, RELATION)


@dataclass
class CaptionNegatives:
    """A caption's validated negatives per kind (COMPONENTS plus "relation"), its positives, and for each
    negative whether the LLM ("llm") or the rule-based swap ("rule") wrote it."""

    caption: str
    negatives: dict[str, list[str]]
    positives: list[str]
    sources: dict[str, list[str]]

    def to_json(self) -> dict[str, Any]:
        return {
            "caption": self.caption,
            "negatives": self.negatives,
            "positives": self.positives,
            "sources": self.sources,
        }

    @classmethod
    def from_json(cls, data: Any) -> CaptionNegatives:
        """Rebuild from ``to_json``; a ``ValueError`` says which field is malformed."""
        if not isinstance(data, dict) or not isinstance(data.get("caption"), str):
            raise ValueError("expected an object with a 'caption' string")

        def lists(name: str) -> dict[str, list[str]]:
            value = data.get(name, {})
            if not isinstance(value, dict) or not all(
                isinstance(v, list) and all(isinstance(s, str) for s in v) for v in value.values()
            ):
                raise ValueError(f"'{name}' must map each kind to a list of strings")
            return {str(k): list(v) for k, v in value.items()}

        positives = data.get("positives", [])
        if not isinstance(positives, list) or not all(isinstance(p, str) for p in positives):
            raise ValueError("'positives' must be a list of strings")
        negatives, sources = lists("negatives"), lists("sources")
        for kind, values in negatives.items():
            if len(sources.get(kind, values)) != len(values):
                raise ValueError(f"'sources' of {kind!r} does not match its negatives")
        return cls(data["caption"], negatives, list(positives), sources)


@dataclass
class NegativeReport:
    """Every caption's negatives, and how well the LLM did: per component, the share of its proposals that
    validated (NaN when it proposed none), and the share of component negatives the rule-based swap wrote."""

    items: list[CaptionNegatives]
    validity: dict[str, float]
    fallback_rate: float
    proposed: dict[str, int] = field(default_factory=dict)
    accepted: dict[str, int] = field(default_factory=dict)
    rejections: dict[str, dict[str, int]] = field(default_factory=dict)
    positive_validity: float = math.nan
    model: str = "rules"
    prompt_version: str = ""
    cached: int = 0

    def to_json(self) -> dict[str, Any]:
        """The summary (not the items), with NaN as null so it is strict JSON."""

        def clean(x: float) -> float | None:
            return None if math.isnan(x) else round(x, 4)

        return {
            "captions": len(self.items),
            "model": self.model,
            "prompt_version": self.prompt_version,
            "validity": {k: clean(v) for k, v in self.validity.items()},
            "proposed": self.proposed,
            "accepted": self.accepted,
            "rejections": self.rejections,
            "fallback_rate": clean(self.fallback_rate),
            "positive_validity": clean(self.positive_validity),
            "negatives": {k: sum(len(i.negatives.get(k, [])) for i in self.items) for k in NEGATIVE_KINDS},
            "cached": self.cached,
        }

    def table(self) -> str:
        rows = [f"{len(self.items)} captions, model {self.model}, prompts v{self.prompt_version}"]
        rows.append(f"{'component':<11}{'LLM valid':>10}{'proposed':>10}{'negatives':>11}")
        for kind in NEGATIVE_KINDS:
            v = self.validity.get(kind, math.nan)
            shown = "-" if math.isnan(v) else f"{100 * v:.0f}%"
            count = sum(len(i.negatives.get(kind, [])) for i in self.items)
            rows.append(f"{kind:<11}{shown:>10}{self.proposed.get(kind, 0):>10}{count:>11}")
        fb = "-" if math.isnan(self.fallback_rate) else f"{100 * self.fallback_rate:.0f}%"
        pv = "-" if math.isnan(self.positive_validity) else f"{100 * self.positive_validity:.0f}%"
        rows.append(f"rule-based fallback wrote {fb} of component negatives; LLM paraphrases valid: {pv}")
        return "\n".join(rows)


def write_negatives(result: NegativeReport | Iterable[CaptionNegatives], path: Path) -> Path:
    """One JSON object per caption (``CaptionNegatives.to_json``), written atomically."""
    items = result.items if isinstance(result, NegativeReport) else list(result)
    path = Path(path)
    with atomic_path(path) as tmp:
        tmp.write_text("".join(json.dumps(i.to_json(), ensure_ascii=False) + "\n" for i in items), encoding="utf-8")
    return path


def read_negatives(path: Path) -> dict[str, CaptionNegatives]:
    """caption -> its negatives, from a ``write_negatives`` file; a bad line raises naming file and line."""
    path = Path(path)
    out: dict[str, CaptionNegatives] = {}
    try:
        lines = list(read_lines(path))
    except OSError as exc:
        raise AnnotationError(path, None, f"cannot read ({exc.strerror})") from None
    for number, line in lines:
        try:
            item = CaptionNegatives.from_json(json.loads(line))
        except json.JSONDecodeError as exc:
            raise AnnotationError(path, number, f"not JSON ({exc.msg})") from None
        except ValueError as exc:
            raise AnnotationError(path, number, str(exc)) from None
        out[item.caption] = item
    return out


__all__ = ["NEGATIVE_KINDS", "RELATION", "CaptionNegatives", "NegativeReport", "read_negatives", "write_negatives"]
