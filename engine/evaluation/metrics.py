"""Text-to-video and video-to-text retrieval metrics: R@1/5/10, median rank (MdR) and mean rank (MnR).

Pure NumPy functions of a similarity matrix, so they are checked against hand-computed cases and can score
any model's output. The conventions are CLIP4Clip's (``compute_metrics`` and, for several captions per
video, ``tensor_text_to_video_metrics`` / ``tensor_video_to_text_sim``):

* rows are texts, columns are videos; text ``i`` belongs to video ``text_to_video[i]`` (the diagonal when
  no map is given);
* text-to-video ranks each text's video among all videos;
* video-to-text scores each video against each video's caption group by the group's best caption, and ranks
  the video's own group (with one caption per video this is the transposed matrix).

Recalls are percentages; ranks are 1-based. NaN similarities count as ``-inf``. Ties are resolved
pessimistically by default (a true video tied with others ranks behind all of them), so a model that gives
every video the same score gets chance-level numbers rather than a perfect R@1; ``ties="optimistic"`` gives
the usual first-match rank instead (identical when no scores tie).
"""

from __future__ import annotations

from typing import Literal

import numpy as np

Ties = Literal["pessimistic", "optimistic"]
RECALL_AT = (1, 5, 10)


def ground_truth_ranks(sim: np.ndarray, truth: np.ndarray, *, ties: Ties = "pessimistic") -> np.ndarray:
    """1-based rank of column ``truth[i]`` in row ``i`` of ``sim`` (higher similarity ranks first)."""
    scores = _clean(sim)
    truth = np.asarray(truth, dtype=np.int64)
    if scores.ndim != 2 or truth.shape != (scores.shape[0],):
        raise ValueError(f"need a 2-d matrix and one column per row (got {scores.shape} and {truth.shape})")
    if truth.size and (truth.min() < 0 or truth.max() >= scores.shape[1]):
        raise ValueError(f"ground-truth columns must lie in [0, {scores.shape[1]})")
    own = scores[np.arange(len(truth)), truth][:, None]
    ahead = (scores > own).sum(axis=1)
    if ties == "optimistic":
        return ahead + 1
    if ties != "pessimistic":
        raise ValueError(f"ties must be 'pessimistic' or 'optimistic', not {ties!r}")
    return ahead + (scores == own).sum(axis=1)  # the equal count includes the true column itself


def rank_metrics(ranks: np.ndarray, prefix: str = "") -> dict[str, float]:
    """R@1/5/10 (percent), MdR and MnR of 1-based ranks, keyed ``{prefix}R1`` ... ``{prefix}MnR``."""
    ranks = np.asarray(ranks, dtype=np.float64)
    if ranks.size == 0:
        raise ValueError("no ranks to summarise (no queries were evaluated)")
    out = {f"{prefix}R{k}": float(100.0 * np.mean(ranks <= k)) for k in RECALL_AT}
    out[f"{prefix}MdR"] = float(np.median(ranks))
    out[f"{prefix}MnR"] = float(np.mean(ranks))
    return out


def retrieval_metrics(
    sim: np.ndarray, text_to_video: np.ndarray | None = None, *, ties: Ties = "pessimistic"
) -> dict[str, float]:
    """``t2v_R1 .. t2v_MnR`` and ``v2t_R1 .. v2t_MnR`` of a (texts, videos) similarity matrix.

    Without ``text_to_video`` the matrix must be square with each text's video on the diagonal. With it,
    ``text_to_video[i]`` is the video column of text ``i``; videos with no caption are still candidates for
    text-to-video but are not queries for video-to-text.
    """
    scores = _clean(sim)
    if scores.ndim != 2:
        raise ValueError(f"the similarity matrix must be 2-d (got shape {scores.shape})")
    n_texts, n_videos = scores.shape
    if text_to_video is None:
        if n_texts != n_videos:
            raise ValueError(f"a {n_texts}x{n_videos} matrix needs a text-to-video map (ground truth off the diagonal)")
        mapping = np.arange(n_texts)
    else:
        mapping = np.asarray(text_to_video, dtype=np.int64)
        if mapping.shape != (n_texts,):
            raise ValueError(f"the text-to-video map needs one entry per text ({n_texts}), got {mapping.shape}")
    out = rank_metrics(ground_truth_ranks(scores, mapping, ties=ties), "t2v_")
    groups = video_to_group_scores(scores, mapping)
    queried = np.flatnonzero(np.bincount(mapping, minlength=n_videos) > 0)
    out.update(rank_metrics(ground_truth_ranks(groups[queried], queried, ties=ties), "v2t_"))
    return out


def video_to_group_scores(sim: np.ndarray, text_to_video: np.ndarray) -> np.ndarray:
    """(videos, videos) matrix: entry [v, g] is the best similarity of video v to any caption of video g.

    ``-inf`` where video g has no caption. This is CLIP4Clip's ``tensor_video_to_text_sim`` for several
    captions per video; with one caption per video it is ``sim.T``.
    """
    scores = _clean(sim)
    n_videos = scores.shape[1]
    groups = np.full((n_videos, n_videos), -np.inf)
    mapping = np.asarray(text_to_video, dtype=np.int64)
    np.maximum.at(groups.T, mapping, scores)  # groups.T[g, v] = max over captions c of g of sim[c, v]
    return groups


def _clean(sim: np.ndarray) -> np.ndarray:
    scores = np.array(sim, dtype=np.float64)
    scores[np.isnan(scores)] = -np.inf
    return scores
