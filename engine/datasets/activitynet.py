"""ActivityNet Captions moment grounding: the ``val_1``/``val_2`` json (``{video: {duration, timestamps,
sentences}}``).

Each sentence is one query with its timestamp as the ground-truth window, as in 2D-TAN and later grounding
work. Windows are kept as annotated, even the few that run past the stated duration (the official files have
them and the published numbers include them). Runs of white space in a sentence (a few hold line breaks)
become one space. ``qid`` is the 0-based position of the sentence in file order.
Video ids keep their ``v_`` prefix; the harness also matches files named without it.
"""

from __future__ import annotations

import json
from pathlib import Path

from engine.datasets.common import AnnotationError, MomentQuery


def load_activitynet(path: Path) -> list[MomentQuery]:
    """One query per sentence, videos in file order."""
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8-sig"))
    except json.JSONDecodeError as exc:
        raise AnnotationError(path, exc.lineno, f"not JSON ({exc.msg}, column {exc.colno})") from None
    if not isinstance(data, dict):
        raise AnnotationError(path, 1, "expected an object keyed by video id")
    queries: list[MomentQuery] = []
    for vid, entry in data.items():
        try:
            duration = float(entry["duration"])
            stamps, sentences = entry["timestamps"], entry["sentences"]
            if len(stamps) != len(sentences):
                raise ValueError(f"{len(stamps)} timestamps but {len(sentences)} sentences")
            for (start, end), sentence in zip(stamps, sentences, strict=True):
                if not isinstance(sentence, str) or not sentence.strip():
                    raise ValueError("a sentence is empty")
                window = (float(start), float(end))
                if not 0 <= window[0] <= window[1]:
                    raise ValueError(f"window {list(window)} is not 0 <= start <= end")
                queries.append(MomentQuery(len(queries), " ".join(sentence.split()), vid, duration, (window,)))
        except (KeyError, TypeError, ValueError) as exc:
            raise AnnotationError(path, None, f"video {vid!r}: {type(exc).__name__}: {exc}") from None
    return queries
