"""The figures of ``bench quality``, as pure functions of search answers (and of scores computed in memory).

Why apart: each definition is small and easy to get subtly wrong in a way that flatters a method (a tie counted
as a win, a missing hit ignored), so each is unit-tested on hand-made input.

Through search, a hit's place is its place in the list a user gets: ``search`` lists hits by relevance, ties by
score (issue 13). The picture's relevance rises with its score within a search (one null per search,
``engine.search.calibration``), but fusion with what is said and shown, and a moment's relevance (its curve, not
its proposal score), can still order two hits unlike their raw scores do. Every figure here follows that list
(each hit's key is (relevance, score); a hand-made hit without a relevance is ordered by its score), so the table
says what a user sees, not what the scores alone would give.

* **Video R@K**: a query's right video ranks ``1 + (other returned videos listed at least as high)``, pessimistic
  on ties as ``engine.evaluation.metrics`` is; a right video that was not returned ranks after everything.
* **Twin-pair accuracy**: the share of pairs whose right clip is listed *strictly* above its twin; a tie is a loss,
  and so is a right clip missing from the answer (a twin missing while the right clip is there is a win).
* **Moments**: QVHighlights' moment-retrieval metrics exactly as ``scenefind eval-moments`` computes them
  (``engine.evaluation.moments.eval_submission``), on the video's moments in the order listed: R1@0.5, R1@0.7
  and mAP over IoU 0.5:0.05:0.95, full range; a query with no moment in its video gets one empty window (a miss)
  rather than being left out.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

Place = tuple[float, float]  # where a hit is listed: (relevance, score), larger first


def place(hit: dict[str, Any]) -> Place:
    """A ``search --json`` hit's place in its list: (relevance, score); a hit without relevance by its score."""
    return float(hit.get("relevance", 0.0)), float(hit["score"])


def _places(hits: Sequence[dict[str, Any]]) -> dict[str, Place]:
    """Each video's best place among ``hits`` (a video listed twice, as moments can be, counts once)."""
    out: dict[str, Place] = {}
    for h in hits:
        video, at = str(h["video"]), place(h)
        out[video] = max(out.get(video, at), at)
    return out


def rank_of(target: str, hits: Sequence[dict[str, Any]]) -> float:
    """Rank of the video ``target`` in the list ``hits`` (``search --json`` dicts): pessimistic on ties; ``inf``
    when it was not returned."""
    places = _places(hits)
    if target not in places:
        return math.inf
    mine = places[target]
    return 1.0 + sum(1 for video, at in places.items() if video != target and at >= mine)


def recall_at(ranks: Sequence[float], k: int) -> float:
    """Percent of ranks at most ``k`` (nan for no ranks)."""
    return 100.0 * sum(r <= k for r in ranks) / len(ranks) if ranks else math.nan


def twin_win(right: float | Place | None, twin: float | Place | None) -> bool:
    """Whether the right clip (its score or place, None when absent) is strictly above its twin (None when
    absent)."""
    return right is not None and (twin is None or right > twin)  # type: ignore[operator]


def twin_accuracy(pairs: Sequence[tuple[float | Place | None, float | Place | None]]) -> float:
    """Percent of (right score, twin score) pairs won strictly (see :func:`twin_win`); nan for no pairs."""
    return 100.0 * sum(twin_win(r, t) for r, t in pairs) / len(pairs) if pairs else math.nan


def pair_scores(hits: Sequence[dict[str, Any]], right: str, twin: str) -> tuple[Place | None, Place | None]:
    """The places of the two videos in one answer (None for one not returned)."""
    places = _places(hits)
    return places.get(right), places.get(twin)


def moment_metrics(
    answers: Sequence[tuple[str, str, float, tuple[float, float], Sequence[dict[str, Any]]]],
) -> dict[str, float]:
    """``R1@0.5``, ``R1@0.7`` and ``mAP`` (percent) of moment answers, QVHighlights' definitions.

    Each answer is (query text, its video's path, the video's duration, the ground-truth (start, end), the
    moment hits ``search --moments --json`` returned); hits in other videos are ignored, the rest are the
    submission's windows in the order they are listed."""
    from engine.datasets.common import MomentPrediction, MomentQuery
    from engine.evaluation.moments import eval_submission

    if not answers:
        return {"R1@0.5": math.nan, "R1@0.7": math.nan, "mAP": math.nan}
    submission, truth = [], []
    for qid, (text, video, duration, (start, end), hits) in enumerate(answers):
        listed = sorted((h for h in hits if str(h["video"]) == video), key=place, reverse=True)  # stable
        own = [(float(h["start"]), float(h["end"]), float(len(listed) - i)) for i, h in enumerate(listed)]
        submission.append(MomentPrediction(qid, text, video, tuple(own) or ((0.0, 0.0, 0.0),)))
        truth.append(MomentQuery(qid, text, video, duration, ((start, end),)))
    brief = eval_submission(submission, truth)["brief"]
    return {"R1@0.5": brief["MR-full-R1@0.5"], "R1@0.7": brief["MR-full-R1@0.7"], "mAP": brief["MR-full-mAP"]}


__all__ = ["Place", "moment_metrics", "pair_scores", "place", "rank_of", "recall_at", "twin_accuracy", "twin_win"]
