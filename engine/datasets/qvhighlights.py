"""QVHighlights: the annotation jsonl (moments and per-clip saliency) and the submission jsonl.

Annotation lines carry ``qid, query, duration, vid, relevant_windows, relevant_clip_ids, saliency_scores``
(one list of three rater scores, 0-4, per relevant 2 s clip); the test split omits the last three, which load
as empty. Submission lines carry ``qid, query, vid, pred_relevant_windows`` ([[start, end, score], ...]) and
``pred_saliency_scores`` (one score per 2 s clip of the whole video), the format the official
``standalone_eval/eval.py`` scores and ``engine.evaluation.moments.eval_submission`` reproduces.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from engine.datasets.common import AnnotationError, MomentPrediction, MomentQuery, read_lines

CLIP_SECONDS = 2.0  # QVHighlights clip length: relevant_clip_ids and saliency scores are per 2 s clip


def _rows(path: Path) -> list[tuple[int, dict[str, Any]]]:
    rows = []
    for number, line in read_lines(path):
        try:
            row = json.loads(line)
        except json.JSONDecodeError as exc:
            raise AnnotationError(path, number, f"not JSON ({exc.msg}, column {exc.colno})") from None
        if not isinstance(row, dict):
            raise AnnotationError(path, number, "expected a JSON object")
        rows.append((number, row))
    return rows


def load_qvhighlights(path: Path) -> list[MomentQuery]:
    """Every query of an annotation file, in file order."""
    path = Path(path)
    queries: list[MomentQuery] = []
    seen: dict[int, int] = {}
    for number, row in _rows(path):
        try:
            qid = int(row["qid"])
            windows = tuple((float(s), float(e)) for s, e in row.get("relevant_windows", ()))
            clip_ids = tuple(int(c) for c in row.get("relevant_clip_ids", ()))
            scores = tuple(tuple(float(x) for x in s) for s in row.get("saliency_scores", ()))
            query = MomentQuery(
                qid, str(row["query"]), str(row["vid"]), float(row["duration"]), windows, clip_ids, scores
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise AnnotationError(path, number, f"bad annotation ({type(exc).__name__}: {exc})") from None
        if len(clip_ids) != len(scores):
            raise AnnotationError(path, number, f"{len(clip_ids)} relevant clips but {len(scores)} saliency rows")
        if any(not 0 <= s <= e for s, e in windows):
            raise AnnotationError(path, number, "a relevant window is not 0 <= start <= end")
        if qid in seen:
            raise AnnotationError(path, number, f"qid {qid} already on line {seen[qid]}")
        seen[qid] = number
        queries.append(query)
    return queries


def load_predictions(path: Path) -> list[MomentPrediction]:
    """Every line of a submission file, in file order; a qid given twice is an error."""
    path = Path(path)
    predictions: list[MomentPrediction] = []
    seen: dict[int | str, int] = {}
    for number, row in _rows(path):
        if "qid" not in row or not isinstance(row["qid"], int | str) or isinstance(row["qid"], bool):
            raise AnnotationError(path, number, "missing or invalid 'qid'")
        qid = row["qid"]
        try:
            windows = None
            if "pred_relevant_windows" in row:
                windows = tuple((float(w[0]), float(w[1]), float(w[2])) for w in row["pred_relevant_windows"])
            saliency = None
            if "pred_saliency_scores" in row:
                saliency = tuple(float(x) for x in row["pred_saliency_scores"])
        except (IndexError, TypeError, ValueError) as exc:
            raise AnnotationError(
                path, number, f"qid {qid}: windows must be [start, end, score] and saliency numbers ({exc})"
            ) from None
        if qid in seen:
            raise AnnotationError(path, number, f"qid {qid} already on line {seen[qid]}")
        seen[qid] = number
        predictions.append(MomentPrediction(qid, str(row.get("query", "")), str(row.get("vid", "")), windows, saliency))
    return predictions
