"""Retrieval and moment metrics against hand-computed cases and a line-by-line port of the official scripts.

``_official_*`` below is moment_detr ``standalone_eval/eval.py`` + ``utils.py`` as published (dict records,
list sorts, the same loops), with scikit-learn's ``precision_recall_curve`` replaced by a brute-force one
(one point per distinct score, computed by counting). The engine's port must agree with it on synthetic
submissions built from the real QVHighlights val annotations.
"""

from __future__ import annotations

import copy
import json
from collections import defaultdict
from pathlib import Path

import numpy as np
import pytest

from engine.datasets import MomentPrediction, MomentQuery, load_qvhighlights
from engine.evaluation.metrics import ground_truth_ranks, rank_metrics, retrieval_metrics
from engine.evaluation.moments import (
    IOU_THRESHOLDS,
    average_precision_detection,
    eval_submission,
    grounding_metrics,
    gt_saliency,
    precision_recall_curve,
    saliency_ap,
    temporal_iou_cross,
    temporal_iou_paired,
)

# --- retrieval -------------------------------------------------------------------------------------------


def test_retrieval_square_hand_computed() -> None:
    sim = np.array([[0.9, 0.1, 0.3], [0.8, 0.7, 0.2], [0.1, 0.2, 0.3]])
    m = retrieval_metrics(sim)
    # t2v ranks: 1, 2 (0.8 beats 0.7), 1
    assert m["t2v_R1"] == pytest.approx(200 / 3) and m["t2v_R5"] == 100.0 and m["t2v_R10"] == 100.0
    assert m["t2v_MdR"] == 1.0 and m["t2v_MnR"] == pytest.approx(4 / 3)
    # v2t ranks (columns): 1, 1, 2 (text 0 ties text 2 at 0.3: pessimistic)
    assert m["v2t_R1"] == pytest.approx(200 / 3) and m["v2t_MdR"] == 1.0 and m["v2t_MnR"] == pytest.approx(4 / 3)
    optimistic = retrieval_metrics(sim, ties="optimistic")
    assert optimistic["v2t_R1"] == 100.0 and optimistic["t2v_R1"] == pytest.approx(200 / 3)


def test_retrieval_multi_caption_hand_computed() -> None:
    # 4 captions, 2 videos: captions 0,1 describe video 0; captions 2,3 video 1
    sim = np.array([[0.9, 0.1], [0.2, 0.8], [0.3, 0.4], [0.6, 0.5]])
    m = retrieval_metrics(sim, np.array([0, 0, 1, 1]))
    # t2v ranks 1, 2, 1, 2
    assert m["t2v_R1"] == 50.0 and m["t2v_MdR"] == 1.5 and m["t2v_MnR"] == 1.5 and m["t2v_R5"] == 100.0
    # v2t (best caption per video group): video 0 -> groups (0.9, 0.6): rank 1; video 1 -> (0.8, 0.5): rank 2
    assert m["v2t_R1"] == 50.0 and m["v2t_MdR"] == 1.5 and m["v2t_MnR"] == 1.5


def test_retrieval_ties_and_missing_scores_rank_last() -> None:
    m = retrieval_metrics(np.zeros((10, 10)))
    assert m["t2v_R1"] == 0.0 and m["t2v_R5"] == 0.0 and m["t2v_R10"] == 100.0 and m["t2v_MdR"] == 10.0
    assert retrieval_metrics(np.zeros((10, 10)), ties="optimistic")["t2v_R1"] == 100.0
    sim = np.array([[np.nan, 0.2], [-np.inf, 0.5]])  # text 0's video never returned
    assert ground_truth_ranks(sim, np.array([0, 1])).tolist() == [2, 1]


def test_retrieval_matches_clip4clip_compute_metrics_without_ties() -> None:
    rng = np.random.default_rng(0)
    sim = rng.normal(size=(50, 50))

    def compute_metrics(x: np.ndarray) -> dict[str, float]:  # CLIP4Clip metrics.py
        sx = np.sort(-x, axis=1)
        d = np.diag(-x)[:, np.newaxis]
        ind = np.where(sx - d == 0)[1]
        return {
            "R1": float(np.sum(ind == 0)) * 100 / len(ind),
            "R5": float(np.sum(ind < 5)) * 100 / len(ind),
            "R10": float(np.sum(ind < 10)) * 100 / len(ind),
            "MdR": float(np.median(ind) + 1),
            "MnR": float(np.mean(ind) + 1),
        }

    ours = retrieval_metrics(sim)
    for prefix, ref in (("t2v_", compute_metrics(sim)), ("v2t_", compute_metrics(sim.T))):
        for key, value in ref.items():
            assert ours[prefix + key] == pytest.approx(value)


def test_rank_metrics_rejects_nothing_and_bad_shapes() -> None:
    with pytest.raises(ValueError, match="no queries"):
        rank_metrics(np.array([]))
    with pytest.raises(ValueError, match="text-to-video map"):
        retrieval_metrics(np.zeros((3, 2)))


# --- IoU, AP ---------------------------------------------------------------------------------------------


def test_temporal_iou_hand_computed() -> None:
    iou = temporal_iou_cross(np.array([[0, 10], [5, 15]]), np.array([[0, 10], [20, 30]]))
    assert iou.tolist() == [[1.0, 0.0], [pytest.approx(5 / 15), 0.0]]
    assert temporal_iou_paired(np.array([[0, 8], [3, 3]]), np.array([[0, 10], [3, 3]])).tolist() == [0.8, 0.0]


@pytest.mark.parametrize(
    ("gt", "pred", "expected"),
    [
        ([[0, 10]], [[0, 10, 0.9]], [1.0] * 10),
        # tp, fp, tp: precision 1, 1/2, 2/3 at recall 1/2, 1/2, 1 -> 1/2 * 1 + 1/2 * 2/3
        ([[0, 10], [20, 30]], [[20, 30, 0.9], [50, 60, 0.8], [0, 10, 0.7]], [0.5 + 1 / 3] * 10),
        # IoU 0.8: a hit up to threshold 0.8, a miss at 0.85, 0.9, 0.95
        ([[0, 10]], [[0, 8, 0.9]], [1.0] * 7 + [0.0] * 3),
        # a duplicate of a matched window is a false positive after full recall: AP stays 1
        ([[0, 10]], [[0, 10, 0.9], [0, 10, 0.8]], [1.0] * 10),
        # a higher-scored miss first: precision 1/2 at recall 1
        ([[0, 10]], [[50, 60, 0.9], [0, 10, 0.8]], [0.5] * 10),
        # sorted by score, not by submitted order
        ([[0, 10]], [[0, 10, 0.8], [50, 60, 0.9]], [0.5] * 10),
    ],
)
def test_average_precision_detection_hand_computed(gt: list, pred: list, expected: list) -> None:
    assert average_precision_detection(gt, pred, IOU_THRESHOLDS).tolist() == pytest.approx(expected)


def test_saliency_ap_hand_computed() -> None:
    # ranked labels 1, 0, 1, 0: interpolated precision 1 at recall 1/2 and 2/3 at recall 1
    assert saliency_ap(np.array([1, 0, 1, 0]), np.array([0.9, 0.8, 0.7, 0.1])) == pytest.approx((1 + 2 / 3) / 2)
    # tied scores form one point: precision 1/2 at recall 1/2, then 2/3 at recall 1 (interpolated: 2/3, 2/3)
    assert saliency_ap(np.array([1, 0, 1]), np.array([0.5, 0.5, 0.1])) == pytest.approx(2 / 3)
    assert saliency_ap(np.array([0, 0, 0]), np.array([0.5, 0.2, 0.1])) == 0.0
    assert saliency_ap(np.array([1, 1]), np.array([0.5, 0.2])) == 1.0


def test_precision_recall_curve_matches_scikit_learn() -> None:
    sklearn_metrics = pytest.importorskip("sklearn.metrics", reason="scikit-learn is not installed")
    rng = np.random.default_rng(1)
    for _ in range(50):
        y = rng.integers(0, 2, 30)
        y[0], y[1] = 0, 1
        s = rng.integers(0, 6, 30) / 5  # many ties
        ours, ref = precision_recall_curve(y, s), sklearn_metrics.precision_recall_curve(y, s)
        # scikit-learn < 1.1 stops at full recall; compare the shared tail
        n = len(ref[0])
        np.testing.assert_allclose(ours[0][-n:], ref[0])
        np.testing.assert_allclose(ours[1][-n:], ref[1])


def test_grounding_hand_computed() -> None:
    m = grounding_metrics([(0, 10), (5, 15), None, (20, 30)], [(0, 10)] * 4)
    # IoUs 1, 1/3, 0 (no answer), 0
    assert m == {
        "R1@0.3": 50.0,
        "R1@0.5": 25.0,
        "R1@0.7": 25.0,
        "mIoU": pytest.approx(100 * (1 + 1 / 3) / 4),
    }


# --- QVHighlights: hand-computed submission --------------------------------------------------------------


def _tiny_ground_truth() -> list[MomentQuery]:
    return [
        MomentQuery(1, "a", "v1", 8, ((2, 6),), (1, 2), ((4, 2, 0), (3, 3, 1))),
        MomentQuery(2, "b", "v2", 6, ((0, 2),), (0,), ((2, 2, 2),)),
    ]


def test_eval_submission_hand_computed() -> None:
    preds = [
        MomentPrediction(1, "a", "v1", ((2, 6, 0.9),), (0.1, 0.9, 0.5, 0.2)),
        MomentPrediction(2, "b", "v2", ((1, 2, 0.8), (40, 50, 0.1)), (0.1, 0.5, 0.3)),  # IoU 0.5
    ]
    brief = eval_submission(preds, _tiny_ground_truth())["brief"]
    expected = {
        # q1 AP 1 at every threshold; q2 AP 1 at 0.5 only: mean over thresholds (1 + 0.1) / 2
        "MR-full-mAP": 55.0,
        "MR-full-mAP@0.5": 100.0,
        "MR-full-mAP@0.75": 50.0,
        "MR-full-R1@0.5": 100.0,
        "MR-full-R1@0.7": 50.0,
        "MR-short-mAP": 55.0,
        # Fair (>=2): q1 raters AP 1, 1, 0 (rater 3 has no positive); q2 top clip is last: 1/3 each
        "HL-min-Fair-mAP": 50.0,
        "HL-min-Fair-Hit1": 50.0,
        # Good (>=3): q1 raters 1, 1/2, 0; q2 no positive
        "HL-min-Good-mAP": 25.0,
        "HL-min-Good-Hit1": 50.0,
        # VeryGood (4): q1 rater 1 only
        "HL-min-VeryGood-mAP": 16.67,
        "HL-min-VeryGood-Hit1": 50.0,
    }
    for key, value in expected.items():
        assert brief[key] == value, key
    assert np.isnan(brief["MR-middle-mAP"]) and np.isnan(brief["MR-long-mAP"])  # empty buckets
    assert list(brief) == sorted(k for k in brief if k.startswith("MR")) + [
        f"HL-min-{n}-{m}" for n in ("Fair", "Good", "VeryGood") for m in ("mAP", "Hit1")
    ]


def test_eval_submission_gates_and_mismatch() -> None:
    gt = _tiny_ground_truth()
    only_hl = [
        MomentPrediction(1, "a", "v1", None, (0.1, 0.9, 0.5, 0.2)),
        MomentPrediction(2, "b", "v2", None, (1, 0, 0)),
    ]
    result = eval_submission(only_hl, gt)
    assert set(result["brief"]) == {f"HL-min-{n}-{m}" for n in ("Fair", "Good", "VeryGood") for m in ("mAP", "Hit1")}
    assert list(result) == ["brief", "HL-min-Fair", "HL-min-Good", "HL-min-VeryGood"]
    with pytest.raises(ValueError, match="must match"):
        eval_submission(only_hl[:1], gt)
    assert eval_submission(only_hl[:1], gt, match_number=False)["brief"]["HL-min-Fair-Hit1"] == 100.0


# --- QVHighlights: the official script, ported line by line, on the real val set ----------------------


def _ref_precision_recall_curve(y_true: np.ndarray, y_score: np.ndarray) -> tuple[np.ndarray, np.ndarray, None]:
    """Count, for each distinct score t (ascending), the items scored >= t and the positives among them."""
    thresholds = np.unique(y_score)  # ascending threshold = descending recall, as scikit-learn returns
    chosen = y_score[None, :] >= thresholds[:, None]
    true_positives = (chosen * y_true[None, :]).sum(axis=1)
    precision = true_positives / chosen.sum(axis=1)
    recall = true_positives / y_true.sum()
    return np.append(precision, 1.0), np.append(recall, 0.0), None


def _official_get_ap(y_true, y_predict):
    assert len(y_true) == len(y_predict)
    if len(set(y_true)) == 1:
        return 0 if y_true[0] == 0 else 1
    precision, recall, _ = _ref_precision_recall_curve(y_true, y_predict)
    recall = recall.astype(np.float32)
    for i in range(1, len(precision)):
        precision[i] = max(precision[i - 1], precision[i])
    indices = np.where(np.diff(recall))
    return np.mean(precision[indices])


def _official_iou_cross(spans1, spans2):
    areas1 = spans1[:, 1] - spans1[:, 0]
    areas2 = spans2[:, 1] - spans2[:, 0]
    left = np.maximum(spans1[:, None, 0], spans2[None, :, 0])
    right = np.minimum(spans1[:, None, 1], spans2[None, :, 1])
    inter = np.clip(right - left, 0, None)
    union = areas1[:, None] + areas2[None, :] - inter
    return inter / union, union


def _official_iou_paired(pred_windows, gt_windows):
    intersection = np.maximum(
        0, np.minimum(pred_windows[:, 1], gt_windows[:, 1]) - np.maximum(pred_windows[:, 0], gt_windows[:, 0])
    )
    union = np.maximum(pred_windows[:, 1], gt_windows[:, 1]) - np.minimum(pred_windows[:, 0], gt_windows[:, 0])
    return np.divide(intersection, union, out=np.zeros_like(intersection), where=union != 0)


def _official_interpolated_precision_recall(precision, recall):
    mprecision = np.hstack([[0], precision, [0]])
    mrecall = np.hstack([[0], recall, [1]])
    for i in range(len(mprecision) - 1)[::-1]:
        mprecision[i] = max(mprecision[i], mprecision[i + 1])
    idx = np.where(mrecall[1::] != mrecall[0:-1])[0] + 1
    return np.sum((mrecall[idx] - mrecall[idx - 1]) * mprecision[idx])


def _official_ap_detection(ground_truth, prediction, tiou_thresholds):
    num_thresholds, num_gts, num_preds = len(tiou_thresholds), len(ground_truth), len(prediction)
    ap = np.zeros(num_thresholds)
    if len(prediction) == 0:
        return ap
    num_positive = float(num_gts)
    lock_gt = np.ones((num_thresholds, num_gts)) * -1
    prediction.sort(key=lambda x: -x["score"])
    tp = np.zeros((num_thresholds, num_preds))
    fp = np.zeros((num_thresholds, num_preds))
    ground_truth_by_videoid = {}
    for i, item in enumerate(ground_truth):
        item["index"] = i
        ground_truth_by_videoid.setdefault(item["video-id"], []).append(item)
    for idx, pred in enumerate(prediction):
        if pred["video-id"] in ground_truth_by_videoid:
            gts = ground_truth_by_videoid[pred["video-id"]]
        else:
            fp[:, idx] = 1
            continue
        _pred = np.array([[pred["t-start"], pred["t-end"]]])
        _gt = np.array([[gt["t-start"], gt["t-end"]] for gt in gts])
        tiou_arr = _official_iou_cross(_pred, _gt)[0].reshape(-1)
        tiou_sorted_idx = tiou_arr.argsort()[::-1]
        for t_idx, tiou_threshold in enumerate(tiou_thresholds):
            for j_idx in tiou_sorted_idx:
                if tiou_arr[j_idx] < tiou_threshold:
                    fp[t_idx, idx] = 1
                    break
                if lock_gt[t_idx, gts[j_idx]["index"]] >= 0:
                    continue
                tp[t_idx, idx] = 1
                lock_gt[t_idx, gts[j_idx]["index"]] = idx
                break
            if fp[t_idx, idx] == 0 and tp[t_idx, idx] == 0:
                fp[t_idx, idx] = 1
    tp_cumsum = np.cumsum(tp, axis=1).astype(float)
    fp_cumsum = np.cumsum(fp, axis=1).astype(float)
    recall_cumsum = tp_cumsum / num_positive
    precision_cumsum = tp_cumsum / (tp_cumsum + fp_cumsum)
    for t_idx in range(len(tiou_thresholds)):
        ap[t_idx] = _official_interpolated_precision_recall(precision_cumsum[t_idx, :], recall_cumsum[t_idx, :])
    return ap


def _official_mr_ap(submission, ground_truth, iou_thds=np.linspace(0.5, 0.95, 10), max_pred_windows=10):  # noqa: B008
    iou_thds = [float(f"{e:.2f}") for e in iou_thds]
    pred_qid2data = defaultdict(list)
    for d in submission:
        for w in d["pred_relevant_windows"][:max_pred_windows]:
            pred_qid2data[d["qid"]].append({"video-id": d["qid"], "t-start": w[0], "t-end": w[1], "score": w[2]})
    gt_qid2data = defaultdict(list)
    for d in ground_truth:
        for w in d["relevant_windows"]:
            gt_qid2data[d["qid"]].append({"video-id": d["qid"], "t-start": w[0], "t-end": w[1]})
    qid2ap_list = {qid: _official_ap_detection(gt_qid2data[qid], pred_qid2data[qid], iou_thds) for qid in pred_qid2data}
    ap_thds = np.array(list(qid2ap_list.values())).mean(0)
    iou_thd2ap = dict(zip([str(e) for e in iou_thds], ap_thds, strict=True))
    iou_thd2ap["average"] = np.mean(ap_thds)
    return {k: float(f"{100 * v:.2f}") for k, v in iou_thd2ap.items()}


def _official_mr_r1(submission, ground_truth, iou_thds=np.linspace(0.5, 0.95, 10)):  # noqa: B008
    iou_thds = [float(f"{e:.2f}") for e in iou_thds]
    pred_qid2window = {d["qid"]: d["pred_relevant_windows"][0][:2] for d in submission}
    gt_qid2window = {}
    for d in ground_truth:
        cur_gt_windows = d["relevant_windows"]
        cur_max_iou_idx = 0
        if len(cur_gt_windows) > 0:
            cur_ious = _official_iou_cross(np.array([pred_qid2window[d["qid"]]]), np.array(d["relevant_windows"]))[0]
            cur_max_iou_idx = np.argmax(cur_ious)
        gt_qid2window[d["qid"]] = cur_gt_windows[cur_max_iou_idx]
    qids = list(pred_qid2window.keys())
    pred_windows = np.array([pred_qid2window[k] for k in qids]).astype(float)
    gt_windows = np.array([gt_qid2window[k] for k in qids]).astype(float)
    pred_gt_iou = _official_iou_paired(pred_windows, gt_windows)
    return {str(thd): float(f"{np.mean(pred_gt_iou >= thd) * 100:.2f}") for thd in iou_thds}


def _official_by_range(submission, ground_truth, len_range):
    min_l, max_l = len_range
    if min_l == 0 and max_l == 150:
        return submission, ground_truth
    ground_truth_in_range, gt_qids_in_range = [], set()
    for d in ground_truth:
        rel = [w for w in d["relevant_windows"] if min_l < w[1] - w[0] <= max_l]
        if len(rel) > 0:
            d = copy.deepcopy(d)
            d["relevant_windows"] = rel
            ground_truth_in_range.append(d)
            gt_qids_in_range.add(d["qid"])
    return [copy.deepcopy(d) for d in submission if d["qid"] in gt_qids_in_range], ground_truth_in_range


def _official_mk_gt_scores(gt_data, clip_length=2):
    num_clips = int(gt_data["duration"] / clip_length)
    full = np.zeros((num_clips, 3))
    full[np.array(gt_data["relevant_clip_ids"])] = np.array(gt_data["saliency_scores"])
    return full


def _official_eval_highlight(submission, ground_truth):
    qid2preds = {d["qid"]: d for d in submission}
    qid2gt_full = {d["qid"]: _official_mk_gt_scores(d) for d in ground_truth}
    out = {}
    for minimum, name in zip([2, 3, 4], ["Fair", "Good", "VeryGood"], strict=True):
        binary = {k: (v >= minimum).astype(float) for k, v in qid2gt_full.items()}
        hit_scores = np.zeros((len(qid2preds), 3))
        ap_scores = np.zeros((len(qid2preds), 3))
        for idx, qid in enumerate(qid2preds):
            pred = qid2preds[qid]["pred_saliency_scores"]
            top = np.argmax(pred)
            if top < len(binary[qid]):
                hit_scores[idx] = binary[qid][top]
            for w_idx in range(3):
                y_true = binary[qid][:, w_idx]
                y_predict = np.array(pred)
                if len(y_true) < len(y_predict):
                    y_predict = y_predict[: len(y_true)]
                elif len(y_true) > len(y_predict):
                    padded = np.zeros(len(y_true))
                    padded[: len(y_predict)] = y_predict
                    y_predict = padded
                ap_scores[idx, w_idx] = _official_get_ap(y_true, y_predict)
        out[f"HL-min-{name}"] = {
            "HL-mAP": float(f"{100 * np.mean(ap_scores):.2f}"),
            "HL-Hit1": float(f"{100 * np.mean(np.max(hit_scores, 1)):.2f}"),
        }
    return out


def _official_eval_submission(submission, ground_truth):
    ret = {}
    for l_range, name in zip(
        [[0, 10], [10, 30], [30, 150], [0, 150]], ["short", "middle", "long", "full"], strict=True
    ):
        sub, gt = _official_by_range(submission, ground_truth, l_range)
        ret[name] = {"MR-mAP": _official_mr_ap(sub, gt), "MR-R1": _official_mr_r1(sub, gt)}
    brief = {
        "MR-full-mAP": ret["full"]["MR-mAP"]["average"],
        "MR-full-mAP@0.5": ret["full"]["MR-mAP"]["0.5"],
        "MR-full-mAP@0.75": ret["full"]["MR-mAP"]["0.75"],
        "MR-short-mAP": ret["short"]["MR-mAP"]["average"],
        "MR-middle-mAP": ret["middle"]["MR-mAP"]["average"],
        "MR-long-mAP": ret["long"]["MR-mAP"]["average"],
        "MR-full-R1@0.5": ret["full"]["MR-R1"]["0.5"],
        "MR-full-R1@0.7": ret["full"]["MR-R1"]["0.7"],
    }
    brief = dict(sorted(brief.items()))
    hl = _official_eval_highlight(submission, ground_truth)
    brief.update({f"{k}-{sub_k.split('-')[1]}": v[sub_k] for k, v in hl.items() for sub_k in v})
    return {"brief": brief, **dict(sorted({**ret, **hl}.items()))}


def _val_path(shared_data: Path) -> Path:
    return shared_data / "annotations" / "qvhighlights" / "highlight_val_release.jsonl"


def _as_prediction(d: dict) -> MomentPrediction:
    windows = tuple(tuple(w) for w in d["pred_relevant_windows"])
    return MomentPrediction(d["qid"], d["query"], d["vid"], windows, tuple(d["pred_saliency_scores"]))


def _synthetic_submissions(gt: list[dict]) -> dict[str, list[dict]]:
    """Perfect, shifted-and-noisy, and random submissions for every val query (seeded)."""
    rng = np.random.default_rng(7)
    subs: dict[str, list[dict]] = {"perfect": [], "shifted": [], "random": []}
    for d in gt:
        n = int(d["duration"] / 2)
        truth = _official_mk_gt_scores(d).mean(1)
        base = {"qid": d["qid"], "query": d["query"], "vid": d["vid"]}
        perfect = [[s, e, 1.0 - 0.01 * i] for i, (s, e) in enumerate(d["relevant_windows"])]
        subs["perfect"].append({**base, "pred_relevant_windows": perfect, "pred_saliency_scores": truth.tolist()})
        shifted = []
        for s, e in d["relevant_windows"]:
            start = max(0.0, s + rng.uniform(-4, 4))
            shifted.append([start, max(start + 1, e + rng.uniform(-4, 4)), float(rng.integers(0, 5))])
        shifted += [
            [float(a), float(a + rng.integers(2, 40)), float(rng.integers(0, 5))] for a in rng.integers(0, 140, 6)
        ]
        rng.shuffle(shifted)
        length = n + int(rng.integers(-3, 4))  # too short or too long: truncated or zero-padded as there
        noisy = (np.pad(truth, (0, max(0, length - n)))[:length] + rng.normal(0, 1.0, length)).round(1)
        subs["shifted"].append({**base, "pred_relevant_windows": shifted, "pred_saliency_scores": noisy.tolist()})
        windows = [[float(a), float(a + rng.integers(2, 60)), float(rng.random())] for a in rng.integers(0, 140, 12)]
        subs["random"].append(
            {**base, "pred_relevant_windows": windows, "pred_saliency_scores": rng.random(n).tolist()}
        )
    subs["random"] = subs["random"][::3]  # a third of the queries keeps the test quick
    return subs


@pytest.mark.slow
def test_eval_submission_matches_official_port_on_real_val(shared_data: Path) -> None:
    path = _val_path(shared_data)
    gt_dicts = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    gt = load_qvhighlights(path)
    for name, sub in _synthetic_submissions(gt_dicts).items():
        qids = {d["qid"] for d in sub}
        ours = eval_submission([_as_prediction(d) for d in sub], [g for g in gt if g.qid in qids])
        reference = _official_eval_submission(
            copy.deepcopy(sub), [copy.deepcopy(d) for d in gt_dicts if d["qid"] in qids]
        )
        assert json.dumps(ours) == json.dumps(reference), name
        if name == "perfect":
            brief = ours["brief"]
            assert brief["MR-full-R1@0.5"] == brief["MR-full-R1@0.7"] == 100.0
            # 12 queries have more than the 10 windows the script keeps, so mAP is just under 100
            assert 99.0 < brief["MR-full-mAP"] < 100.0 and brief["HL-min-Fair-Hit1"] == 100.0


def test_half_windows_give_iou_one_half_on_real_val(shared_data: Path) -> None:
    """Predicting the first half of each single-window query's window: IoU exactly 0.5 everywhere."""
    gt = [g for g in load_qvhighlights(_val_path(shared_data)) if len(g.windows) == 1]
    assert len(gt) == 1020
    preds = []
    for g in gt:
        (s, e) = g.windows[0]
        preds.append(
            MomentPrediction(g.qid, g.query, g.vid, ((s, s + (e - s) / 2, 1.0),), tuple(gt_saliency(g).mean(1)))
        )
    result = eval_submission(preds, gt)
    assert result["full"]["MR-R1"]["0.5"] == 100.0 and result["full"]["MR-R1"]["0.55"] == 0.0
    assert result["full"]["MR-mAP"]["0.5"] == 100.0 and result["full"]["MR-mAP"]["0.75"] == 0.0
    assert result["brief"]["MR-full-mAP"] == 10.0
