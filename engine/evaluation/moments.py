"""Moment retrieval and highlight detection metrics, exactly as QVHighlights' official evaluation computes them.

A port of moment_detr ``standalone_eval/eval.py`` and its ``utils.py`` (MMAction2's detection AP and the
video2gif ``get_ap``), kept operation for operation so numbers compare with published ones:

* MR mAP: per query, VOC-2011 interpolated AP of the first 10 predicted windows (by descending score, ties in
  submitted order) at IoU 0.5:0.05:0.95, each ground-truth window matched at most once; averaged over queries,
  then over thresholds. A query whose submission has no window is left out of the average, as there.
* MR R1@IoU: the IoU of the first predicted window with the ground-truth window it overlaps most.
* Length buckets: ``short`` (0, 10], ``middle`` (10, 30], ``long`` (30, 150] seconds keep only the ground-truth
  windows in range (and the queries left with one); ``full`` keeps everything.
* HL: clips are 2 s; a clip is positive for a rater when the rater's score is >= 2 (Fair), 3 (Good) or 4
  (VeryGood). HIT@1 is whether the top-scored clip is positive for any rater; HL mAP is the interpolated AP
  of the clip scores (truncated or zero-padded to the video's clips) averaged over raters and queries.
* Every figure is a percentage rounded to 2 decimals (``float(f"{100 * v:.2f}")``), the mean of unrounded
  values; the brief keys are ``MR-full-mAP``, ``MR-full-mAP@0.5``, ... ``HL-min-VeryGood-Hit1``.

Differences, all on input the official script crashes on: a first window missing for R1 or a prediction
for an unknown qid raises ``ValueError`` naming the qid; a figure over no queries is ``nan``. Also here:
Charades-STA / ActivityNet grounding metrics (R1@IoU and mIoU of the top window).
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence

import numpy as np

from engine.datasets.common import MomentPrediction, MomentQuery

IOU_THRESHOLDS: tuple[float, ...] = tuple(float(f"{t:.2f}") for t in np.linspace(0.5, 0.95, 10))
LENGTH_RANGES: tuple[tuple[str, float, float], ...] = (
    ("short", 0, 10),
    ("middle", 10, 30),
    ("long", 30, 150),
    ("full", 0, 150),
)
SALIENCY_LEVELS: tuple[tuple[str, int], ...] = (("Fair", 2), ("Good", 3), ("VeryGood", 4))
CLIP_SECONDS = 2
MAX_PRED_WINDOWS = 10


def _pct(value: float) -> float:
    """The official formatting: a fraction as a percentage rounded to 2 decimals."""
    return float(f"{100 * value:.2f}")


# --- IoU ------------------------------------------------------------------------------------------------


def temporal_iou_cross(spans1: np.ndarray, spans2: np.ndarray) -> np.ndarray:
    """(N, M) IoU of every span of ``spans1`` with every span of ``spans2`` (each row [start, end])."""
    spans1, spans2 = np.asarray(spans1, dtype=float), np.asarray(spans2, dtype=float)
    areas1 = spans1[:, 1] - spans1[:, 0]
    areas2 = spans2[:, 1] - spans2[:, 0]
    left = np.maximum(spans1[:, None, 0], spans2[None, :, 0])
    right = np.minimum(spans1[:, None, 1], spans2[None, :, 1])
    inter = np.clip(right - left, 0, None)
    union = areas1[:, None] + areas2[None, :] - inter
    with np.errstate(divide="ignore", invalid="ignore"):
        return inter / union


def temporal_iou_paired(pred: np.ndarray, gt: np.ndarray) -> np.ndarray:
    """(N,) IoU of ``pred[i]`` with ``gt[i]``; 0 where both spans are empty."""
    pred, gt = np.asarray(pred, dtype=float), np.asarray(gt, dtype=float)
    inter = np.maximum(0, np.minimum(pred[:, 1], gt[:, 1]) - np.maximum(pred[:, 0], gt[:, 0]))
    union = np.maximum(pred[:, 1], gt[:, 1]) - np.minimum(pred[:, 0], gt[:, 0])  # = true union when they overlap
    return np.divide(inter, union, out=np.zeros_like(inter), where=union != 0)


# --- average precision -------------------------------------------------------------------------------


def interpolated_precision_recall(precision: np.ndarray, recall: np.ndarray) -> float:
    """VOC-2011 interpolated AP of a precision/recall curve (MMAction2 ``interpolated_precision_recall``)."""
    mprecision = np.hstack([[0], precision, [0]])
    mrecall = np.hstack([[0], recall, [1]])
    for i in range(len(mprecision) - 1)[::-1]:
        mprecision[i] = max(mprecision[i], mprecision[i + 1])
    idx = np.where(mrecall[1::] != mrecall[0:-1])[0] + 1
    return float(np.sum((mrecall[idx] - mrecall[idx - 1]) * mprecision[idx]))


def average_precision_detection(
    gt_windows: Sequence[Sequence[float]],
    pred_windows: Sequence[Sequence[float]],
    thresholds: Sequence[float] = IOU_THRESHOLDS,
) -> np.ndarray:
    """AP at each IoU threshold of scored windows [start, end, score] against ground-truth [start, end].

    Predictions are taken by descending score (a stable sort, as Python's ``list.sort``); each one matches
    the unmatched ground-truth window it overlaps most if that IoU reaches the threshold.
    """
    num_thresholds, num_gts, num_preds = len(thresholds), len(gt_windows), len(pred_windows)
    ap = np.zeros(num_thresholds)
    if num_preds == 0:
        return ap
    order = sorted(range(num_preds), key=lambda i: -pred_windows[i][2])
    lock_gt = np.ones((num_thresholds, num_gts)) * -1
    tp = np.zeros((num_thresholds, num_preds))
    fp = np.zeros((num_thresholds, num_preds))
    gt = np.array([[w[0], w[1]] for w in gt_windows], dtype=float).reshape(-1, 2)
    for idx, p in enumerate(order):
        if num_gts == 0:
            fp[:, idx] = 1
            continue
        tiou_arr = temporal_iou_cross(np.array([[pred_windows[p][0], pred_windows[p][1]]], dtype=float), gt)
        tiou_arr = tiou_arr.reshape(-1)
        tiou_sorted_idx = tiou_arr.argsort()[::-1]
        for t_idx, threshold in enumerate(thresholds):
            for j_idx in tiou_sorted_idx:
                if tiou_arr[j_idx] < threshold:
                    fp[t_idx, idx] = 1
                    break
                if lock_gt[t_idx, j_idx] >= 0:
                    continue
                tp[t_idx, idx] = 1
                lock_gt[t_idx, j_idx] = idx
                break
            if fp[t_idx, idx] == 0 and tp[t_idx, idx] == 0:
                fp[t_idx, idx] = 1
    tp_cumsum = np.cumsum(tp, axis=1).astype(float)
    fp_cumsum = np.cumsum(fp, axis=1).astype(float)
    with np.errstate(divide="ignore", invalid="ignore"):
        recall_cumsum = tp_cumsum / float(num_gts)
    precision_cumsum = tp_cumsum / (tp_cumsum + fp_cumsum)
    for t_idx in range(num_thresholds):
        ap[t_idx] = interpolated_precision_recall(precision_cumsum[t_idx, :], recall_cumsum[t_idx, :])
    return ap


def precision_recall_curve(y_true: np.ndarray, y_score: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """scikit-learn's ``precision_recall_curve`` for binary labels (recall decreasing, ending at (1, 0)).

    One point per distinct score; ties form one point. The official ``get_ap`` calls scikit-learn; this is
    the same computation without the dependency (older versions stop at full recall, which ``get_ap``'s
    result does not depend on).
    """
    y_true = np.asarray(y_true, dtype=float)
    y_score = np.asarray(y_score, dtype=float)
    desc = np.argsort(y_score, kind="mergesort")[::-1]
    y_score, y_true = y_score[desc], y_true[desc]
    distinct = np.where(np.diff(y_score))[0]
    threshold_idxs = np.r_[distinct, y_true.size - 1]
    tps = np.cumsum(y_true, dtype=np.float64)[threshold_idxs]
    fps = 1 + threshold_idxs - tps
    precision = tps / (tps + fps)
    recall = tps / tps[-1] if tps[-1] > 0 else np.ones_like(tps)
    return np.hstack((precision[::-1], 1)), np.hstack((recall[::-1], 0)), y_score[threshold_idxs][::-1]


def saliency_ap(y_true: np.ndarray, y_score: np.ndarray) -> float:
    """Interpolated AP of clip scores against binary labels (the official ``get_ap`` with its defaults).

    All-negative labels give 0 and all-positive labels give 1, as there.
    """
    y_true = np.asarray(y_true, dtype=float)
    if len(y_true) != len(y_score):
        raise ValueError("prediction and ground truth need to be of the same length")
    labels = set(y_true.tolist())
    if len(labels) == 1:
        return 0.0 if y_true[0] == 0 else 1.0
    if sorted(labels) != [0, 1]:
        raise ValueError("ground truth can only contain 0 and 1")
    precision, recall, _ = precision_recall_curve(y_true, y_score)
    recall = recall.astype(np.float32)
    for i in range(1, len(precision)):
        precision[i] = max(precision[i - 1], precision[i])
    indices = np.where(np.diff(recall))
    return float(np.mean(precision[indices]))


# --- moment retrieval --------------------------------------------------------------------------------


def _check_pairs(submission: Sequence[MomentPrediction], ground_truth: Sequence[MomentQuery]) -> None:
    known = {g.qid for g in ground_truth}
    unknown = [p.qid for p in submission if p.qid not in known]
    if unknown:
        raise ValueError(f"predictions for qids not in the ground truth: {unknown[:5]}")


def mr_map(
    submission: Sequence[MomentPrediction],
    ground_truth: Sequence[MomentQuery],
    thresholds: Sequence[float] = IOU_THRESHOLDS,
    max_pred_windows: int | None = MAX_PRED_WINDOWS,
) -> dict[str, float]:
    """``{"0.5": mAP, ..., "0.95": mAP, "average": mAP}`` in rounded percent (official ``compute_mr_ap``)."""
    gt_by_qid = {g.qid: g.windows for g in ground_truth}
    aps = []
    for p in submission:
        windows = p.windows or ()
        if max_pred_windows is not None:
            windows = windows[:max_pred_windows]
        if windows:  # the official script never sees a query with no predicted window
            aps.append(average_precision_detection(gt_by_qid.get(p.qid, ()), windows, thresholds))
    with warnings.catch_warnings():  # an empty length bucket averages nothing: nan, not a warning
        warnings.simplefilter("ignore", RuntimeWarning)
        ap_thds = np.array(aps).reshape(-1, len(thresholds)).mean(0)
        average = float(np.mean(ap_thds))
    out = {str(float(t)): _pct(v) for t, v in zip(thresholds, ap_thds, strict=True)}
    out["average"] = _pct(average)
    return out


def mr_r1(
    submission: Sequence[MomentPrediction],
    ground_truth: Sequence[MomentQuery],
    thresholds: Sequence[float] = IOU_THRESHOLDS,
) -> dict[str, float]:
    """``{"0.5": R1, ...}`` in rounded percent: IoU of the first predicted window (official ``compute_mr_r1``)."""
    pred_first: dict[int | str, tuple[float, float]] = {}
    for p in submission:
        if not p.windows:
            raise ValueError(f"qid {p.qid}: R1 needs at least one predicted window")
        pred_first[p.qid] = (p.windows[0][0], p.windows[0][1])
    gt_window: dict[int | str, tuple[float, float]] = {}
    for g in ground_truth:
        if g.qid not in pred_first:
            raise ValueError(f"qid {g.qid}: no prediction for a ground-truth query")
        best = 0
        if g.windows:
            best = int(np.argmax(temporal_iou_cross(np.array([pred_first[g.qid]]), np.array(g.windows))[0]))
        gt_window[g.qid] = g.windows[best] if g.windows else (np.nan, np.nan)
    qids = list(pred_first)
    ious = temporal_iou_paired(
        np.array([pred_first[q] for q in qids], dtype=float).reshape(-1, 2),
        np.array([gt_window[q] for q in qids], dtype=float).reshape(-1, 2),
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return {str(float(t)): float(f"{np.mean(ious >= t) * 100:.2f}") for t in thresholds}


def in_length_range(
    submission: Sequence[MomentPrediction], ground_truth: Sequence[MomentQuery], low: float, high: float
) -> tuple[list[MomentPrediction], list[MomentQuery]]:
    """Keep ground-truth windows with ``low < length <= high`` and the queries left with one (``get_data_by_range``)."""
    if low == 0 and high == 150:  # the official script's whole range, including windows it would not count
        return list(submission), list(ground_truth)
    kept: list[MomentQuery] = []
    for g in ground_truth:
        windows = tuple(w for w in g.windows if low < w[1] - w[0] <= high)
        if windows:
            kept.append(MomentQuery(g.qid, g.query, g.vid, g.duration, windows, g.relevant_clip_ids, g.saliency_scores))
    qids = {g.qid for g in kept}
    return [p for p in submission if p.qid in qids], kept


def eval_moment_retrieval(
    submission: Sequence[MomentPrediction], ground_truth: Sequence[MomentQuery]
) -> dict[str, dict[str, dict[str, float]]]:
    """``{bucket: {"MR-mAP": {...}, "MR-R1": {...}}}`` for the short, middle, long and full buckets."""
    out = {}
    for name, low, high in LENGTH_RANGES:
        sub, gt = in_length_range(submission, ground_truth, low, high)
        out[name] = {"MR-mAP": mr_map(sub, gt), "MR-R1": mr_r1(sub, gt)}
    return out


# --- highlight detection -----------------------------------------------------------------------------


def gt_saliency(query: MomentQuery, clip_seconds: float = CLIP_SECONDS) -> np.ndarray:
    """(clips, raters) scores 0-4 over the whole video, zero outside the relevant clips (``mk_gt_scores``)."""
    num_clips = int(query.duration / clip_seconds) if query.duration else 0
    raters = len(query.saliency_scores[0]) if query.saliency_scores else 3
    full = np.zeros((num_clips, raters))
    if query.relevant_clip_ids:
        ids = np.array(query.relevant_clip_ids)
        if ids.max() >= num_clips:
            raise ValueError(f"qid {query.qid}: relevant clip {ids.max()} lies past the {num_clips} clips of the video")
        full[ids] = np.array(query.saliency_scores)
    return full


def hl_hit1(preds: dict[int | str, np.ndarray], gt_binary: dict[int | str, np.ndarray]) -> float:
    """Percent of queries whose top-scored clip is positive for at least one rater (``compute_hl_hit1``)."""
    hits = np.zeros((len(preds), 3))
    for idx, (qid, scores) in enumerate(preds.items()):
        top = int(np.argmax(scores))
        labels = gt_binary[qid]
        if top < len(labels):
            hits[idx] = labels[top]
    return _pct(float(np.mean(np.max(hits, 1))))


def hl_map(preds: dict[int | str, np.ndarray], gt_binary: dict[int | str, np.ndarray]) -> float:
    """Mean over queries and raters of the clip-score AP (``compute_hl_ap``)."""
    ap_scores = np.zeros((len(preds), 3))
    for idx, (qid, scores) in enumerate(preds.items()):
        for rater in range(3):
            y_true = gt_binary[qid][:, rater]
            y_pred = np.asarray(scores, dtype=float)
            if len(y_true) < len(y_pred):
                y_pred = y_pred[: len(y_true)]
            elif len(y_true) > len(y_pred):
                padded = np.zeros(len(y_true))
                padded[: len(y_pred)] = y_pred
                y_pred = padded
            ap_scores[idx, rater] = saliency_ap(y_true, y_pred)
    return _pct(float(np.mean(ap_scores)))


def eval_highlight(
    submission: Sequence[MomentPrediction], ground_truth: Sequence[MomentQuery]
) -> dict[str, dict[str, float]]:
    """``{"HL-min-Fair": {"HL-mAP": ..., "HL-Hit1": ...}, "HL-min-Good": ..., "HL-min-VeryGood": ...}``."""
    preds = {p.qid: np.asarray(p.saliency if p.saliency is not None else (), dtype=float) for p in submission}
    for qid, scores in preds.items():
        if scores.size == 0:
            raise ValueError(f"qid {qid}: highlight detection needs pred_saliency_scores")
    full = {g.qid: gt_saliency(g) for g in ground_truth}
    out = {}
    for name, minimum in SALIENCY_LEVELS:
        binary = {qid: (full[qid] >= minimum).astype(float) for qid in preds}
        out[f"HL-min-{name}"] = {"HL-mAP": hl_map(preds, binary), "HL-Hit1": hl_hit1(preds, binary)}
    return out


def eval_submission(
    submission: Sequence[MomentPrediction], ground_truth: Sequence[MomentQuery], *, match_number: bool = True
) -> dict[str, dict]:
    """The official ``eval_submission``: ``{"brief": {...}, "HL-min-Fair": ..., "full": ..., ...}``.

    ``match_number`` requires the same qids on both sides (a ``ValueError`` says which differ); without it
    only the shared qids are scored. Moment retrieval is scored when the first prediction has windows,
    highlight detection when it has saliency scores, as there.
    """
    pred_qids = {p.qid for p in submission}
    gt_qids = {g.qid for g in ground_truth}
    if match_number:
        if pred_qids != gt_qids:
            missing, extra = sorted(gt_qids - pred_qids, key=str), sorted(pred_qids - gt_qids, key=str)
            raise ValueError(
                f"qids in ground truth and submission must match: {len(missing)} without a prediction "
                f"{missing[:5]}, {len(extra)} not in the ground truth {extra[:5]}"
            )
    else:
        shared = pred_qids & gt_qids
        submission = [p for p in submission if p.qid in shared]
        ground_truth = [g for g in ground_truth if g.qid in shared]
    if not submission:
        raise ValueError("no predictions to evaluate")
    _check_pairs(submission, ground_truth)
    metrics: dict[str, dict] = {}
    brief: dict[str, float] = {}
    if submission[0].windows is not None:
        mr = eval_moment_retrieval(submission, ground_truth)
        metrics.update(mr)
        mr_brief = {
            "MR-full-mAP": mr["full"]["MR-mAP"]["average"],
            "MR-full-mAP@0.5": mr["full"]["MR-mAP"]["0.5"],
            "MR-full-mAP@0.75": mr["full"]["MR-mAP"]["0.75"],
            "MR-short-mAP": mr["short"]["MR-mAP"]["average"],
            "MR-middle-mAP": mr["middle"]["MR-mAP"]["average"],
            "MR-long-mAP": mr["long"]["MR-mAP"]["average"],
            "MR-full-R1@0.5": mr["full"]["MR-R1"]["0.5"],
            "MR-full-R1@0.7": mr["full"]["MR-R1"]["0.7"],
        }
        brief.update(sorted(mr_brief.items()))
    if submission[0].saliency is not None:
        hl = eval_highlight(submission, ground_truth)
        metrics.update(hl)
        brief.update({f"{k}-{sub.split('-')[1]}": v[sub] for k, v in hl.items() for sub in v})
    return {"brief": brief, **dict(sorted(metrics.items()))}


# --- grounding (Charades-STA, ActivityNet Captions) --------------------------------------------------


def grounding_metrics(
    predictions: Sequence[tuple[float, float] | None],
    ground_truth: Sequence[tuple[float, float]],
    thresholds: Sequence[float] = (0.3, 0.5, 0.7),
) -> dict[str, float]:
    """``R1@0.3``, ``R1@0.5``, ``R1@0.7`` and ``mIoU`` (percent) of each query's top window.

    A query with no prediction (``None``) counts with IoU 0. IoU is the usual intersection over union
    (2D-TAN's ``iou``), 0 for two empty spans.
    """
    if len(predictions) != len(ground_truth):
        raise ValueError(f"{len(predictions)} predictions for {len(ground_truth)} queries")
    if not predictions:
        raise ValueError("no queries to evaluate")
    pred = np.array([p if p is not None else (np.nan, np.nan) for p in predictions], dtype=float)
    ious = temporal_iou_paired(pred, np.asarray(ground_truth, dtype=float))
    ious[np.isnan(pred).any(axis=1)] = 0.0
    out = {f"R1@{t:g}": float(100 * np.mean(ious >= t)) for t in thresholds}
    out["mIoU"] = float(100 * np.mean(ious))
    return out
