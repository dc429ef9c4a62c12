"""The figures of ``bench quality``, as pure functions of search answers (and of scores computed in memory).

Why apart: each definition is small and easy to get subtly wrong in a way that flatters a method (a tie counted
as a win, a missing hit ignored), so each is unit-tested on hand-made input.

* **Video R@K**: a query's right video ranks ``1 + (other returned videos scoring at least as high)``, pessimistic
  on ties as ``engine.evaluation.metrics`` is; a right video that was not returned ranks after everything.
* **Twin-pair accuracy**: the share of pairs whose right clip scores *strictly* above its twin; a tie is a loss,
  and so is a right clip missing from the answer (a twin missing while the right clip is there is a win).
* **Moments**: QVHighlights' moment-retrieval metrics exactly as ``scenefind eval-moments`` computes them
  (``engine.evaluation.moments.eval_submission``): R1@0.5, R1@0.7 and mAP over IoU 0.5:0.05:0.95, full range;
  a query with no moment in its video gets one empty window (a miss) rather than being left out.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any


def rank_of(target: str, hits: Sequence[dict[str, Any]]) -> float:
    """Rank of the video ``target`` among ``hits`` (``search --json`` dicts): pessimistic on ties; ``inf``
    when it was not returned."""
    scores = {str(h["video"]): float(h["score"]) for h in hits}
    if target not in scores:
        return math.inf
    mine = scores[target]
    return 1.0 + sum(1 for video, score in scores.items() if video != target and score >= mine)


def recall_at(ranks: Sequence[float], k: int) -> float:
    """Percent of ranks at most ``k`` (nan for no ranks)."""
    return 100.0 * sum(r <= k for r in ranks) / len(ranks) if ranks else math.nan


def twin_win(right: float | None, twin: float | None) -> bool:
    """Whether the right clip (score ``right``, None when absent) is strictly above its twin (None when absent)."""
    return right is not None and (twin is None or right > twin)


def twin_accuracy(pairs: Sequence[tuple[float | None, float | None]]) -> float:
    """Percent of (right score, twin score) pairs won strictly (see :func:`twin_win`); nan for no pairs."""
    return 100.0 * sum(twin_win(r, t) for r, t in pairs) / len(pairs) if pairs else math.nan


def pair_scores(hits: Sequence[dict[str, Any]], right: str, twin: str) -> tuple[float | None, float | None]:
    """The scores of the two videos in one answer (None for one not returned)."""
    scores = {str(h["video"]): float(h["score"]) for h in hits}
    return scores.get(right), scores.get(twin)


def moment_metrics(
    answers: Sequence[tuple[str, str, float, tuple[float, float], Sequence[dict[str, Any]]]],
) -> dict[str, float]:
    """``R1@0.5``, ``R1@0.7`` and ``mAP`` (percent) of moment answers, QVHighlights' definitions.

    Each answer is (query text, its video's path, the video's duration, the ground-truth (start, end), the
    moment hits ``search --moments --json`` returned); hits in other videos are ignored, the rest keep their
    order (score order) as the submission's windows."""
    from engine.datasets.common import MomentPrediction, MomentQuery
    from engine.evaluation.moments import eval_submission

    if not answers:
        return {"R1@0.5": math.nan, "R1@0.7": math.nan, "mAP": math.nan}
    submission, truth = [], []
    for qid, (text, video, duration, (start, end), hits) in enumerate(answers):
        own = [(float(h["start"]), float(h["end"]), float(h["score"])) for h in hits if str(h["video"]) == video]
        submission.append(MomentPrediction(qid, text, video, tuple(own) or ((0.0, 0.0, 0.0),)))
        truth.append(MomentQuery(qid, text, video, duration, ((start, end),)))
    brief = eval_submission(submission, truth)["brief"]
    return {"R1@0.5": brief["MR-full-R1@0.5"], "R1@0.7": brief["MR-full-R1@0.7"], "mAP": brief["MR-full-mAP"]}


__all__ = ["moment_metrics", "pair_scores", "rank_of", "recall_at", "twin_accuracy", "twin_win"]
