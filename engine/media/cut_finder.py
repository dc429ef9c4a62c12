"""Where the shot cuts are, from the frames the decoder hands out (``engine.media.decode`` runs it).

Cuts are found by comparing thumbnails (``engine.media.cuts``) of what is decoded anyway. Where every frame is
decoded, a probe a few times a second; between two keyframe samples (all a 1 s-GOP phone file decodes) the
samples are compared and, on a change, the stretch between them is decoded again, from packets kept for the
purpose, to find the first frame unlike the earlier sample: the cut's own frame. A cut is at most one per
``MIN_SHOT_S`` (flashes and strobes would otherwise make one at every probe). No decoder is imported here:
the decoder module hands in how to time, picture and decode again.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from typing import Any, Protocol

import numpy as np

from engine.media.cuts import is_cut, signature
from engine.media.media_types import DecodeStats
from engine.media.timeline import Timeline

MIN_SHOT_S = 1.0
_CUT_BUFFER_BYTES = 64 * 2**20  # packets kept to locate a cut between two keyframe samples


class Pictures(Protocol):
    """How frames become arrays (``engine.media.decode``'s scaler)."""

    def image(self, frame: Any) -> np.ndarray: ...

    def unrotated(self, frame: Any) -> np.ndarray: ...

    def upright(self, array: np.ndarray, frame: Any) -> np.ndarray: ...

    def probe(self, frame: Any) -> np.ndarray: ...


class CutFinder:
    """Cut detection over the frames that come out of one sampling pass (see the module docstring)."""

    def __init__(
        self,
        timeline: Timeline,
        picture: Pictures,
        time_of: Callable[[Any], float | None],
        redecode: Callable[[list[Any], DecodeStats], Iterator[Any]],
        threshold: float,
        probe_dt: float,
        st: DecodeStats,
    ) -> None:
        self.picture = picture
        self._time_of = time_of
        self._redecode = redecode
        self.threshold = threshold
        self.probe_dt = probe_dt
        self.st = st
        self.prev_sig: np.ndarray | None = None
        self.prev_t = -math.inf
        self.last_cut_t = -math.inf
        self.next_probe_t = 0.0
        self.cut_here = False
        self.image: np.ndarray | None = None  # the output picture made while probing, reused for the sample
        tl = timeline
        self._timed = tl.timed
        self._order = tl.presentation_order()  # decode indices by presentation time
        self._sorted_times = tl.times[self._order] if self._timed else np.zeros(0)
        self._keys = np.flatnonzero(tl.keys)
        self._kept: dict[int, Any] = {}
        self._kept_bytes = 0

    def keep(self, i: int, packet: Any) -> None:
        """Hold a packet (sent or skipped) while it may be needed to locate a cut since the last probe."""
        if not self._timed:
            return
        self._kept[i] = packet
        self._kept_bytes += int(packet.size)
        while self._kept_bytes > _CUT_BUFFER_BYTES and self._kept:
            oldest = min(self._kept)
            self._kept_bytes -= int(self._kept.pop(oldest).size)

    def _trim(self, t: float) -> None:
        """Forget packets before the keyframe that starts the GOP holding the frame at ``t``."""
        start = self._gop_start(t)
        for i in [i for i in self._kept if i < start]:
            self._kept_bytes -= int(self._kept.pop(i).size)

    def _decode_index(self, t: float) -> int:
        """Decode index of the frame shown at ``t`` (or the next one)."""
        pos = int(np.searchsorted(self._sorted_times, t - 1e-6))
        return int(self._order[min(pos, len(self._order) - 1)])

    def _gop_start(self, t: float) -> int:
        pos = int(np.searchsorted(self._keys, self._decode_index(t), side="right")) - 1
        return int(self._keys[max(pos, 0)]) if len(self._keys) else 0

    def look(self, frame: Any, t: float, *, force: bool) -> tuple[float, np.ndarray] | None:
        """Probe ``frame`` if due (or ``force``d: a sample); returns a cut located before it, if any."""
        self.cut_here, self.image = False, None
        if not force and t < self.next_probe_t - 1e-6:
            return None
        self.next_probe_t = (math.floor(t / self.probe_dt + 1e-6) + 1) * self.probe_dt
        if force:
            self.image = self.picture.unrotated(frame)
            sig = signature(self.image)
            self.image = self.picture.upright(self.image, frame)
        else:
            sig = signature(self.picture.probe(frame))
            self.st.probes += 1
        found = None
        due = self.prev_sig is not None and t - self.last_cut_t >= MIN_SHOT_S
        if due and is_cut(self.prev_sig, sig, self.threshold):
            if t - self.prev_t > 1.5 * self.probe_dt:
                found = self._locate(self.prev_sig, self.prev_t, t)
            if found is None:
                self.cut_here, self.last_cut_t = True, t
            else:
                self.last_cut_t = found[0]
                self.st.located_cuts += 1
        if self.cut_here and self.image is None:
            self.image = self.picture.image(frame)
        self.prev_sig, self.prev_t = sig, t
        if self._timed:
            self._trim(t)
        return found

    def _locate(self, sig_a: np.ndarray, t_a: float, t_b: float) -> tuple[float, np.ndarray] | None:
        """Decode the stretch between two probes again and return the first frame unlike the first probe."""
        if not self._timed:
            return None
        start = self._gop_start(t_a)
        end = self._decode_index(t_b)
        if end <= start or any(i not in self._kept for i in range(start, end)):
            return None  # the packets are gone (a stretch longer than the buffer): mark the cut where seen
        for frame in self._redecode([self._kept[i] for i in range(start, end)], self.st):
            hit = self._unlike(frame, sig_a, t_a, t_b)
            if hit is not None:
                return hit
        return None

    def _unlike(self, frame: Any, sig_a: np.ndarray, t_a: float, t_b: float) -> tuple[float, np.ndarray] | None:
        self.st.decoded += 1
        t = self._time_of(frame)
        if t is None or not t_a < t < t_b - 1e-6:
            return None
        self.st.probes += 1
        if not is_cut(sig_a, signature(self.picture.probe(frame)), self.threshold):
            return None
        return t, self.picture.image(frame)
