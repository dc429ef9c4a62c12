"""A video stream's timeline (its packets, read without decoding) and which packets to decode for a sampling.

Decoding is where indexing spends its time, and most decoded frames are never looked at: at one sample a
second, a phone file with a one-second GOP has a keyframe at (or within a frame of) every sample time, and a
keyframe decodes on its own. Demuxing is cheap (no pixels: a few microseconds a packet), so the decoder first
reads every packet's presentation time and keyframe flag, and ``plan_samples`` decides from what the file *is*:

* a sample time with a keyframe within ``keyframe_tolerance * every_s`` is served by that keyframe, which is
  decoded alone (``keyframes``);
* any other sample time needs its exact frame, so its GOP is decoded from the keyframe up to that frame and
  the rest of the GOP is skipped (``gops``: "seek to the nearest keyframe and decode forward", without a
  container seek, so it is exact in every container);
* intra-only files (MJPEG, all-intra) have a keyframe at every frame, so only the sampled frames are decoded;
* a stream without timestamps (raw ``.h264``) is decoded sequentially and timed by frame count.

Everything here is NumPy on the packet table; ``engine.media.decode`` runs the plan with PyAV.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from functools import cached_property
from typing import Literal

import numpy as np

DecodeMode = Literal["auto", "exact", "sequential"]
# keyframes: every sample is a keyframe; keyframes+gops: most are, the others' GOPs are decoded up to them;
# gops: most samples need their GOP decoded; intra: every frame is a keyframe; sequential: every packet.
Strategy = Literal["keyframes", "keyframes+gops", "gops", "intra", "sequential"]
KEYFRAME_TOLERANCE = 0.55  # of every_s: keyframes up to 1.1 x every_s apart serve every sample alone
_IRREGULAR_KEY = 0.8  # a keyframe closer than this share of the usual GOP to the previous one: a scene-cut key


@dataclass(frozen=True)
class Timeline:
    """The video stream's packets in decode order, times in seconds from the start of the file.

    ``times`` is NaN for every packet when the stream carries no timestamps (raw elementary streams); then
    only ``frame_s`` (the nominal frame duration) says when frames are.
    """

    times: np.ndarray  # float64 per packet, decode order: presentation time of the frame it carries
    keys: np.ndarray  # bool per packet: a keyframe (decodable on its own)
    sizes: np.ndarray  # int64 per packet: bytes
    frame_s: float  # nominal frame duration (1 / the stream's frame rate)
    end_s: float  # end of the last frame: its time plus its duration
    stopped: str = ""  # why demuxing ended before the container's end ("" when it did not)

    @cached_property
    def timed(self) -> bool:
        return bool(len(self.times)) and not bool(np.isnan(self.times).any())

    @property
    def frame_count(self) -> int:
        return len(self.times)

    def presentation_order(self) -> np.ndarray:
        """Decode indices sorted by presentation time (the frame numbers a user counts)."""
        if not self.timed:
            return np.arange(len(self.times))
        return np.argsort(self.times, kind="stable")

    def key_times(self) -> np.ndarray:
        return np.sort(self.times[self.keys]) if self.timed else np.zeros(0)

    def keyframe_interval_s(self) -> float:
        """Median distance between keyframes (the GOP length); the duration when there is one keyframe."""
        kt = self.key_times()
        if len(kt) < 2:
            return self.end_s
        return float(np.median(np.diff(kt)))


@dataclass
class SamplePlan:
    """Which packets go to the decoder, where it must be drained first, and which frame times to keep."""

    strategy: Strategy
    send: np.ndarray  # bool per packet (decode order)
    drain_before: np.ndarray  # bool per packet: drain and reset the decoder before sending it
    sample_times: np.ndarray  # sorted presentation times of the frames to yield as samples
    probe_keys: np.ndarray = field(default_factory=lambda: np.zeros(0))  # scene-cut keyframes decoded as probes
    # bool per packet: its frame must come out (a sample or a keyframe); the decoder may drop the other sent
    # packets' frames when nothing references them (skip_frame "NONREF": most B-frames of a long GOP)
    needed: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=bool))

    @property
    def decoded_share(self) -> float:
        return float(self.send.mean()) if len(self.send) else 0.0


def sample_grid(length_s: float, every_s: float) -> np.ndarray:
    """Sample offsets ``0, every_s, 2 * every_s, ...`` before ``length_s`` (at least the offset 0); the
    plan adds them to the first frame's time (a video may start a little after its file does)."""
    count = max(1, math.ceil(length_s / every_s - 1e-9))
    return np.arange(count, dtype=np.float64) * every_s


def plan_samples(
    timeline: Timeline,
    every_s: float,
    *,
    mode: DecodeMode = "auto",
    keyframe_tolerance: float = KEYFRAME_TOLERANCE,
    cut_keys: bool = False,
) -> SamplePlan:
    """Decide what to decode so that every sample time gets a frame (see the module docstring).

    ``mode``: "auto" lets a nearby keyframe stand in for a sample time; "exact" always takes the first frame
    at or after each sample time (decoding from its keyframe); "sequential" decodes every packet (the
    reference the others are tested against). ``cut_keys`` also decodes keyframes that come sooner than the
    usual GOP (encoders insert them at scene cuts), as cut probes.
    """
    n = len(timeline.times)
    send = np.zeros(n, dtype=bool)
    drain = np.zeros(n, dtype=bool)
    if n == 0:
        return SamplePlan("sequential", send, drain, np.zeros(0))
    if mode == "sequential" or not timeline.timed:
        send[:] = True
        times = _exact_targets(timeline, every_s) if timeline.timed else np.zeros(0)
        return SamplePlan("sequential", send, drain, times)
    order = timeline.presentation_order()
    frame_times = timeline.times[order]
    slack = 0.5 * timeline.frame_s + 1e-6
    grid = frame_times[0] + sample_grid(timeline.end_s - frame_times[0], every_s)  # from the first frame on
    exact = np.searchsorted(frame_times, grid - slack, side="left")  # presentation index per sample time
    exact = exact[exact < n]
    targets = order[exact]  # decode index of the exact frame of each sample time
    key_idx = np.flatnonzero(timeline.keys)
    if mode == "auto" and len(key_idx):
        by_time = np.argsort(timeline.times[key_idx], kind="stable")
        key_idx = key_idx[by_time]
        key_t = timeline.times[key_idx]
        at = grid[: len(exact)]
        nearest = _nearest(key_t, at)
        distance = np.abs(key_t[nearest] - at)
        served = distance <= max(keyframe_tolerance * every_s, slack)
        # A keyframe stands in for one sample time only (the nearest): the others get their exact frames.
        best = np.full(len(key_t), np.inf)
        np.minimum.at(best, nearest[served], distance[served])
        served &= distance <= best[nearest]
        served[1:] &= ~(served[:-1] & (nearest[1:] == nearest[:-1]))  # equal distances: the earlier one
        targets = np.where(served, key_idx[nearest], targets)
    targets = np.unique(targets)
    gop = np.cumsum(timeline.keys) - 1  # GOP number of every packet (-1: before the first keyframe)
    send[targets] = True
    full_until = _gop_runs(timeline, targets, gop)
    for g, last in full_until.items():
        first = key_idx_of(gop, g)
        send[first : last + 1] = True
    probes = np.zeros(0)
    if cut_keys:
        probes = _scene_cut_keys(timeline)
        send[np.isin(timeline.times, probes) & timeline.keys] = True
    # Drain before a run of packets that holds non-key packets and follows a gap (its references are new),
    # and after such a run when a gap follows (so its frames come out before the next keyframe's).
    sent = np.flatnonzero(send)
    if len(sent):
        gap_before = np.ones(len(sent), dtype=bool)
        gap_before[1:] = np.diff(sent) > 1
        run_id = np.cumsum(gap_before) - 1
        has_inter = np.bincount(run_id, weights=~timeline.keys[sent], minlength=run_id[-1] + 1) > 0
        starts = sent[gap_before]
        for r, start in enumerate(starts):
            if r > 0 and (has_inter[r] or has_inter[r - 1]):
                drain[start] = True
    times = np.unique(timeline.times[targets])
    strategy = _strategy(timeline, send, targets)
    needed = timeline.keys.copy()
    needed[targets] = True
    return SamplePlan(strategy, send, drain, times, probes, needed)


def _nearest(sorted_values: np.ndarray, at: np.ndarray) -> np.ndarray:
    """Index of the value nearest to each of ``at`` in a sorted array (ties go to the earlier one)."""
    hi = np.clip(np.searchsorted(sorted_values, at), 0, len(sorted_values) - 1)
    lo = np.maximum(hi - 1, 0)
    return np.where(np.abs(sorted_values[lo] - at) <= np.abs(sorted_values[hi] - at), lo, hi)


def key_idx_of(gop: np.ndarray, g: int) -> int:
    """Decode index of GOP ``g``'s keyframe."""
    return int(np.searchsorted(gop, g, side="left"))


def _exact_targets(timeline: Timeline, every_s: float) -> np.ndarray:
    frame_times = np.sort(timeline.times)
    slack = 0.5 * timeline.frame_s + 1e-6
    grid = frame_times[0] + sample_grid(timeline.end_s - frame_times[0], every_s)
    idx = np.searchsorted(frame_times, grid - slack, side="left")
    return np.unique(frame_times[idx[idx < len(frame_times)]])


def _gop_runs(timeline: Timeline, targets: np.ndarray, gop: np.ndarray) -> dict[int, int]:
    """For each GOP holding a target that is not its keyframe: the last packet (decode order) to decode.

    A target shown before its GOP's keyframe (a leading picture of an open GOP) references the previous GOP,
    so that GOP is decoded to its end as well.
    """
    runs: dict[int, int] = {}
    for p in targets[~timeline.keys[targets]]:
        g = int(gop[p])
        if g < 0:
            continue
        runs[g] = max(runs.get(g, -1), int(p))
        key = key_idx_of(gop, g)
        if timeline.times[p] < timeline.times[key] and g > 0:
            runs[g - 1] = key - 1
    return runs


def _scene_cut_keys(timeline: Timeline) -> np.ndarray:
    """Times of keyframes that arrive sooner than the usual GOP: most encoders put one at each scene cut."""
    kt = timeline.key_times()
    if len(kt) < 3:
        return np.zeros(0)
    gaps = np.diff(kt)
    usual = float(np.median(gaps))
    return kt[1:][gaps < _IRREGULAR_KEY * usual]


def _strategy(timeline: Timeline, send: np.ndarray, targets: np.ndarray) -> Strategy:
    """Name what the plan does: mostly keyframes (some GOPs decoded) or mostly GOPs, intra, sequential."""
    if bool(timeline.keys.all()):
        return "intra"
    if bool(send.all()):
        return "sequential"
    by_key = float(timeline.keys[targets].mean()) if len(targets) else 1.0
    if by_key == 1.0:
        return "keyframes"
    return "keyframes+gops" if by_key >= 0.5 else "gops"
