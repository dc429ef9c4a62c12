"""Moment proposals from a video's similarity curve: where in the video does the query happen?

The curve is judged against the video's own score distribution, not a global threshold: a span is a
proposal when the curve stays above one of several levels between the video's median and its peak. Spans
are snapped to shot cuts where a cut bounds them (a cut frame marks where the new shot starts), merged when
separated by a short gap, scored by how well and how distinctively they match (mean inside, plus the
contrast with the rest of the video), and de-duplicated: a proposal that overlaps a better one by more than
half of the shorter (a span nested in another included) is the same moment (``engine.search.ranking``). All of it is
vectorised or linear in the number of frames, so hour-long videos are fine.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from engine.search.ranking import same_find

LEVELS = (0.35, 0.5, 0.65, 0.8)  # fractions of the way from the median to the peak


@dataclass(frozen=True)
class Proposal:
    start: float
    end: float
    score: float  # mean curve inside + contrast bonus
    mean_inside: float
    peak_time: float


def temporal_iou(a: tuple[float, float], b: tuple[float, float]) -> float:
    inter = max(0.0, min(a[1], b[1]) - max(a[0], b[0]))
    union = max(a[1], b[1]) - min(a[0], b[0])
    return inter / union if union > 0 else 0.0


def _runs(mask: np.ndarray) -> list[tuple[int, int]]:
    """(first, last) index pairs of the True runs of a boolean array."""
    if not mask.any():
        return []
    padded = np.concatenate([[False], mask, [False]]).astype(np.int8)
    edges = np.flatnonzero(np.diff(padded))
    return [(int(s), int(e) - 1) for s, e in zip(edges[::2], edges[1::2], strict=True)]


def _span(times: np.ndarray, cuts: np.ndarray, first: int, last: int, duration: float) -> tuple[float, float]:
    """Time span of frames first..last: to the cut that opens it, or half-way to the neighbouring sample."""
    if first == 0:
        start = 0.0
    elif cuts[first]:
        start = float(times[first])
    else:
        start = float(times[first - 1] + times[first]) / 2
    if last == len(times) - 1:
        end = duration
    elif cuts[last + 1]:
        end = float(times[last + 1])
    else:
        end = float(times[last] + times[last + 1]) / 2
    return start, max(end, start)


def propose(
    times: np.ndarray,
    curve: np.ndarray,
    cuts: np.ndarray,
    duration: float,
    *,
    max_proposals: int = 5,
    merge_gap_s: float = 1.0,
    min_length_s: float = 0.5,
) -> list[Proposal]:
    """Ranked, non-overlapping moment proposals for one video."""
    t = np.asarray(times, dtype=np.float64)
    c = np.asarray(curve, dtype=np.float64)
    cut = np.asarray(cuts, dtype=bool)
    if len(t) == 0:
        return []
    duration = max(float(duration), float(t[-1]))
    median, peak = float(np.median(c)), float(c.max())
    total = float(c.sum())
    candidates: list[Proposal] = []
    levels = [median + f * (peak - median) for f in LEVELS] if peak > median else [median]
    for level in levels:
        runs = _runs(c >= level)
        merged: list[list[int]] = []
        for first, last in runs:  # merge runs separated by a short gap
            if merged and t[first] - t[merged[-1][1]] <= merge_gap_s:
                merged[-1][1] = last
            else:
                merged.append([first, last])
        for first, last in merged:
            start, end = _span(t, cut, first, last, duration)
            if end - start < min_length_s and len(t) > 1:
                continue
            inside = c[first : last + 1]
            n_out = len(c) - len(inside)
            mean_in = float(inside.mean())
            mean_out = (total - float(inside.sum())) / n_out if n_out else median
            peak_time = float(t[first + int(np.argmax(inside))])
            candidates.append(Proposal(start, end, mean_in + 0.5 * (mean_in - mean_out), mean_in, peak_time))
    candidates.sort(key=lambda p: -p.score)
    kept: list[Proposal] = []
    for p in candidates:
        if not any(same_find((p.start, p.end), (k.start, k.end)) for k in kept):
            kept.append(p)
        if len(kept) >= max_proposals:
            break
    return kept


def nms(items: list[tuple[int, float, float, float]], iou: float = 0.5) -> list[int]:
    """Temporal NMS across the library: ``items`` are (video id, start, end, score); returns kept indices,
    best first. Moments of different videos never suppress each other."""
    order = sorted(range(len(items)), key=lambda i: -items[i][3])
    kept: list[int] = []
    for i in order:
        vid, s, e, _ = items[i]
        if all(items[k][0] != vid or temporal_iou((s, e), (items[k][1], items[k][2])) < iou for k in kept):
            kept.append(i)
    return kept
