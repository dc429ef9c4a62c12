"""Video probing and frame sampling: the only module (with ``synthetic``) that imports OpenCV.

Decoding is the indexer's bottleneck next to the image encoder, so this module decodes no more than sampling
needs: it ``grab()``s frames it will not look at (demux + decode, no colour conversion), ``retrieve()``s only
the frames it returns or probes for shot cuts, detects cuts on a tiny thumbnail at a few probes per second,
and, when cuts are off and the gap between samples is long, seeks instead of grabbing if a measured seek is
cheaper. Every failure surfaces as ``MediaError`` naming the file, never as a ``cv2.error``.
"""

from __future__ import annotations

import logging
import math
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import cv2
import numpy as np

from engine.jobs import CancelToken, check_cancel

log = logging.getLogger(__name__)

# FFmpeg prints every hiccup of a damaged file to stderr; we log one warning per file instead. OpenCV reads
# this when it first opens a video; set OPENCV_FFMPEG_LOGLEVEL yourself (e.g. 24) to see FFmpeg's messages.
os.environ.setdefault("OPENCV_FFMPEG_LOGLEVEL", "-8")
if "OPENCV_LOG_LEVEL" not in os.environ:  # OpenCV's own "can't capture by name" noise on bad files
    cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_ERROR)

VIDEO_EXTENSIONS: frozenset[str] = frozenset(
    {
        ".mp4", ".m4v", ".mkv", ".mov", ".qt", ".avi", ".webm", ".mpg", ".mpeg", ".mpe", ".m2v", ".wmv",
        ".asf", ".flv", ".f4v", ".ts", ".mts", ".m2ts", ".3gp", ".3g2", ".ogv", ".vob", ".divx", ".dv",
        ".mxf", ".rm", ".rmvb", ".y4m",
    }
)  # fmt: skip
# Extensions FFmpeg would happily open as a one-frame "video" (photos) or that are never video: a photo
# library must not be indexed as clips, and probing them is wasted time.
_NOT_VIDEO_EXTENSIONS: frozenset[str] = frozenset(
    {
        ".jpg", ".jpeg", ".png", ".gif", ".bmp", ".tif", ".tiff", ".webp", ".heic", ".heif", ".avif",
        ".raw", ".cr2", ".nef", ".dng", ".svg", ".mp3", ".wav", ".flac", ".aac", ".m4a", ".ogg", ".opus",
        ".txt", ".md", ".json", ".xml", ".csv", ".pdf", ".doc", ".docx", ".zip", ".gz", ".srt", ".vtt",
    }
)  # fmt: skip

_MAX_FRAMES = 10**9  # a larger frame count is a broken header (that is 1.1 years at 30 fps)
_MAX_FPS = 1000.0  # high-speed phone footage tops out near 960 fps; more is a broken header
_CANCEL_EVERY = 16  # grabs between cancel checks (a grab of 4K H.264 is a few ms)
_THUMB_SIZE = (32, 18)  # (w, h) of the cut-detection signature
_MIN_SHOT_S = 1.0  # flashes and strobes would otherwise emit a "cut" at every probe


class MediaError(Exception):
    """A file cannot be probed or decoded; ``str()`` is ``"PATH: reason"`` so logs say which file."""

    def __init__(self, path: Path | str, reason: str) -> None:
        self.path = Path(path)
        self.reason = reason
        super().__init__(f"{self.path}: {reason}")


@dataclass(frozen=True)
class VideoInfo:
    path: Path
    duration_s: float
    fps: float
    frame_count: int
    width: int
    height: int
    codec: str  # FOURCC as text ("h264", "fmp4", "mjpg"); "" when the container does not say


@dataclass(frozen=True)
class SampledFrame:
    t: float  # seconds from the start of the video
    index: int  # frame number, 0-based
    is_cut: bool  # first probe after a detected shot change
    image: np.ndarray  # (H, W, 3) uint8 RGB, C-contiguous


@dataclass
class DecodeStats:
    """Counters a caller may pass to ``sample_frames`` to see what decoding cost (benchmarks, logs)."""

    grabbed: int = 0  # frames decoded without conversion (grab() calls that succeeded)
    retrieved: int = 0  # frames converted to BGR (samples and cut probes)
    seeks: int = 0
    seek_fallbacks: int = 0  # seeks that landed wrong or failed, after which decoding restarted
    yielded: int = 0
    cuts: int = 0
    seconds: float = 0.0  # wall time inside OpenCV's grab/retrieve/seek (not resizing or cut scoring)


SeekMode = Literal["auto", "always", "never"]


def looks_like_video(path: Path | str) -> bool:
    """Cheap test for the scanner: known extension, or an unknown one that opens and decodes two frames."""
    p = Path(path)
    suffix = p.suffix.lower()
    if suffix in VIDEO_EXTENSIONS:
        return True
    if suffix in _NOT_VIDEO_EXTENSIONS:
        return False
    try:
        if not p.is_file() or p.stat().st_size == 0:
            return False
        cap = cv2.VideoCapture(str(p), cv2.CAP_FFMPEG)
        try:
            return bool(cap.isOpened() and cap.grab() and cap.grab())
        finally:
            cap.release()
    except Exception:  # a yes/no question must not raise
        return False


def probe(path: Path | str, *, threads: int | None = None) -> VideoInfo:
    """Open, check and describe a video; raises ``MediaError`` with the reason it is unusable."""
    p = Path(path)
    cap = _open(p, threads)
    try:
        fps = _checked_fps(cap, p)
        ok, frame = _read(cap, p)
        if not ok or frame is None or frame.ndim < 2:
            raise MediaError(p, "cannot decode the first frame (corrupt file or unsupported codec)")
        height, width = int(frame.shape[0]), int(frame.shape[1])  # after OpenCV's auto-rotation
        if width <= 0 or height <= 0:
            raise MediaError(p, f"nonsense frame size {width}x{height}")
        frame_count = _frame_count(cap)
        if frame_count <= 0:  # raw streams and some containers do not store it: count
            frame_count = 1
            while _grab(cap, p):
                frame_count += 1
        return VideoInfo(
            path=p,
            duration_s=frame_count / fps,
            fps=fps,
            frame_count=frame_count,
            width=width,
            height=height,
            codec=_fourcc_text(cap.get(cv2.CAP_PROP_FOURCC)),
        )
    finally:
        cap.release()


def sample_frames(
    path: Path | str,
    every_s: float = 1.0,
    *,
    cuts: bool = True,
    short_side: int | None = None,
    cut_threshold: float = 0.3,
    cut_probe_hz: float = 4.0,
    seek: SeekMode = "auto",
    seek_min_gap_s: float = 4.0,
    threads: int | None = None,
    stats: DecodeStats | None = None,
    cancel: CancelToken | None = None,
) -> Iterator[SampledFrame]:
    """Yield one frame every ``every_s`` seconds plus the first frame of each detected shot, in time order.

    Periodic samples are the frames nearest to ``0, every_s, 2*every_s, ...`` by presentation time (right
    for variable frame rates too). With ``cuts``, about ``cut_probe_hz`` times a second (at times that
    include the sample times, so samples double as probes) a frame is compared with the previous probe
    (see ``cut_score``); a probe scoring at least ``cut_threshold`` is yielded with ``is_cut=True`` (at most
    one per ``_MIN_SHOT_S``). A frame that is both is yielded once. ``short_side`` resizes outputs so their
    short side equals it, keeping the aspect ratio. ``seek``: "auto" seeks across gaps of
    ``seek_min_gap_s`` or more when cuts are off and a measured seek beats grabbing; "always" seeks across
    every gap (tests); "never" only grabs. ``threads`` is FFmpeg's decoder thread count (None: OpenCV's
    default, one per core). A file that breaks part way yields what decoded, logs a warning and stops; one
    that yields nothing raises ``MediaError``.
    """
    if not every_s > 0:
        raise ValueError(f"every_s must be positive, got {every_s}")
    if short_side is not None and short_side <= 0:
        raise ValueError(f"short_side must be positive, got {short_side}")
    st = stats if stats is not None else DecodeStats()
    reader = _Reader(Path(path), threads, st)
    try:
        fps = reader.fps
        slack = 0.5 / fps + 1e-6  # a frame within half a frame of a sample time is the nearest one
        # Probe times divide the sample interval, so every sample doubles as a probe (one retrieve, not two).
        probe_dt = every_s / max(1, round(every_s * cut_probe_hz))
        next_probe_t = 0.0 if cuts else math.inf
        seek_gap = 2 if seek == "always" else max(2, round(seek_min_gap_s * fps))
        can_seek = not cuts and seek != "never" and reader.frame_count > 0 and every_s * fps >= seek_gap
        k, next_t = 0, 0.0  # number and time of the next periodic sample
        prev_sig: np.ndarray | None = None
        last_cut_t = -math.inf
        while True:
            if reader.idx % _CANCEL_EVERY == 0:
                check_cancel(cancel)
            target = math.ceil((next_t - slack) * fps)  # the sample's frame number if the rate is constant
            dest = _seek_target(reader, target, seek_gap, seek == "always") if can_seek else None
            if dest is not None:
                if not reader.seek(dest):
                    can_seek = False  # the reader restarted from frame 0; grab our way there
                    continue
            elif not reader.grab():
                break
            t = reader.t
            is_sample = t >= next_t - slack
            is_probe = t >= next_probe_t - slack
            if not (is_sample or is_probe):
                continue
            bgr = reader.retrieve()
            if bgr is None:
                break
            is_cut = False
            if is_probe:
                sig = _signature(bgr)
                if prev_sig is not None and t - last_cut_t >= _MIN_SHOT_S:
                    is_cut = cut_score(prev_sig, sig) >= cut_threshold
                    last_cut_t = t if is_cut else last_cut_t
                    st.cuts += is_cut
                prev_sig = sig
                next_probe_t = (math.floor((t + slack) / probe_dt) + 1) * probe_dt
            while is_sample and next_t - slack <= t:  # skip sample times this frame already serves
                k += 1
                next_t = k * every_s
            if is_sample or is_cut:
                check_cancel(cancel)
                st.yielded += 1
                yield SampledFrame(t=t, index=reader.idx, is_cut=is_cut, image=_to_rgb(bgr, short_side))
        if st.yielded == 0:
            raise MediaError(reader.path, "no decodable frames (corrupt file or unsupported codec)")
        n, expected = reader.idx + 1, reader.frame_count
        if expected > 0 and n < expected - max(2, 0.05 * expected):
            log.warning("%s: decoding stopped at frame %d of %d (truncated or corrupt)", reader.path, n, expected)
    finally:
        reader.release()


class _Reader:
    """An open capture plus where it stands: frame number, its time, and measured grab and seek costs."""

    def __init__(self, path: Path, threads: int | None, stats: DecodeStats) -> None:
        self.path, self.threads, self.stats = path, threads, stats
        self.cap = _open(path, threads)
        self.fps = _checked_fps(self.cap, path)
        self.frame_count = _frame_count(self.cap)  # 0 when unknown; may still be wrong, so never trusted to stop
        self.idx = -1  # number of the frame last grabbed
        self.t = -math.inf  # its presentation time in seconds
        self.grab_cost = 0.0  # seconds per grab (running mean) once grabs_timed > 0
        self.grabs_timed = 0
        self.seek_cost: float | None = None
        self._msec_ok = True  # the container's timestamps have been sane so far
        self._last_msec = -math.inf

    def grab(self) -> bool:
        t0 = time.perf_counter()
        ok = _grab(self.cap, self.path)
        dt = time.perf_counter() - t0
        self.stats.seconds += dt
        if not ok:
            return False
        self.stats.grabbed += 1
        if self.idx >= 0:  # the first grab after opening pays for decoder set-up: not a fair sample
            self.grabs_timed += 1
            self.grab_cost += (dt - self.grab_cost) / min(self.grabs_timed, 64)
        self.idx += 1
        self._update_time()
        return True

    def seek(self, target: int) -> bool:
        """Make ``target`` the frame last grabbed, or return False having reopened the file positioned where
        it was before (back at the start when even that seek cannot be verified), to go on by grabbing.
        """
        t0 = time.perf_counter()
        landed = _seek_to(self.cap, target, self.fps)
        dt = time.perf_counter() - t0
        self.stats.seconds += dt
        self.stats.seeks += 1
        if landed:
            self.seek_cost = dt if self.seek_cost is None else 0.5 * (self.seek_cost + dt)
            self.idx = target
            self._update_time()
            return True
        self.stats.seek_fallbacks += 1
        log.info("%s: seek to frame %d did not land there; decoding sequentially instead", self.path, target)
        good = self.idx
        self.cap.release()
        self.cap = _open(self.path, self.threads)
        self.idx, self.t, self._last_msec = -1, -math.inf, -math.inf
        if good > 0 and _seek_to(self.cap, good, self.fps):  # a frame count that overshoots fails only late
            self.idx = good
            self._update_time()
        return False

    def retrieve(self) -> np.ndarray | None:
        t0 = time.perf_counter()
        ok, frame = _retrieve(self.cap, self.path)
        self.stats.seconds += time.perf_counter() - t0
        self.stats.retrieved += ok
        return frame if ok else None

    def release(self) -> None:
        self.cap.release()

    def _update_time(self) -> None:
        """Prefer the container's timestamp (exact for variable frame rates) while it stays plausible."""
        nominal = self.idx / self.fps
        msec = float(self.cap.get(cv2.CAP_PROP_POS_MSEC))
        if self._msec_ok:
            plausible = abs(msec / 1000.0 - nominal) <= max(2.0, 0.25 * nominal)
            self._msec_ok = math.isfinite(msec) and msec >= 0 and msec > self._last_msec and plausible
            self._last_msec = msec
        t = msec / 1000.0 if self._msec_ok else nominal
        self.t = max(t, self.t)  # never backwards, even when switching from timestamps to frame numbers


def _seek_target(reader: _Reader, target: int, min_gap: int, always: bool) -> int | None:
    """Where to seek, or None to grab: seek when grabbing there would cost more than a seek (both measured).

    Past the announced last frame the destination is that last frame, so the tail after the final sample is
    skipped too; grabbing on from there still finds frames a wrong frame count left out.
    """
    target = min(target, reader.frame_count - 1)
    gap = target - reader.idx
    if gap < min_gap:
        return None
    if always or (reader.grabs_timed >= 8 and reader.seek_cost is None):  # measure grabbing, then one seek
        return target
    if reader.seek_cost is not None and reader.seek_cost < gap * reader.grab_cost:
        return target
    return None


def cut_score(a: np.ndarray, b: np.ndarray) -> float:
    """Shot-change score in [0, 1] between two ``_signature`` thumbnails.

    The geometric mean of a colour-histogram distance and a pixel distance: motion and camera pans move
    pixels but keep the histogram; noise and lighting flicker nudge the histogram across bin edges but barely
    move the averaged pixels; a cut changes both.
    """
    hist_a, hist_b = _hsv_hist(a), _hsv_hist(b)
    hist_d = 0.5 * float(np.abs(hist_a - hist_b).sum())
    pix_d = float(np.abs(a.astype(np.int16) - b.astype(np.int16)).mean()) / 255.0
    return math.sqrt(max(0.0, hist_d) * pix_d)


def _hsv_hist(thumb: np.ndarray) -> np.ndarray:
    hsv = cv2.cvtColor(thumb, cv2.COLOR_BGR2HSV)
    hist = cv2.calcHist([hsv], [0, 1, 2], None, [8, 4, 4], [0, 180, 0, 256, 0, 256]).ravel()
    return hist / max(1.0, float(hist.sum()))


def _signature(bgr: np.ndarray) -> np.ndarray:
    """Tiny area-averaged thumbnail: cheap to compare, and averaging removes sensor/compression noise."""
    tw, th = _THUMB_SIZE
    if bgr.shape[0] > 4 * th and bgr.shape[1] > 4 * tw:  # bilinear to 4x first: 20x cheaper than AREA on 720p
        bgr = cv2.resize(bgr, (4 * tw, 4 * th), interpolation=cv2.INTER_LINEAR)
    return cv2.resize(bgr, _THUMB_SIZE, interpolation=cv2.INTER_AREA)


def _to_rgb(bgr: np.ndarray, short_side: int | None) -> np.ndarray:
    """Resize (short side to ``short_side``, aspect kept) then convert: converting the small image is cheaper.

    Large reductions go bilinear to twice the target, then INTER_AREA by exactly 2: within about 1 grey level
    of a direct INTER_AREA but 6-8x faster (5 ms -> 0.7 ms for 720p -> 224p), which matters at 1 frame/s.
    """
    if short_side is not None:
        h, w = bgr.shape[:2]
        scale = short_side / min(h, w)
        size = (max(1, round(w * scale)), max(1, round(h * scale)))
        if scale < 0.5:
            bgr = cv2.resize(bgr, (2 * size[0], 2 * size[1]), interpolation=cv2.INTER_LINEAR)
            bgr = cv2.resize(bgr, size, interpolation=cv2.INTER_AREA)
        elif scale != 1.0:
            interp = cv2.INTER_AREA if scale < 1.0 else cv2.INTER_LINEAR
            bgr = cv2.resize(bgr, size, interpolation=interp)
    return np.ascontiguousarray(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB))


def _seek_to(cap: cv2.VideoCapture, target: int, fps: float) -> bool:
    """Seek and grab ``target``; False unless frame number and timestamp both say we landed there."""
    try:
        if not cap.set(cv2.CAP_PROP_POS_FRAMES, target) or int(cap.get(cv2.CAP_PROP_POS_FRAMES)) != target:
            return False
        if not cap.grab() or int(cap.get(cv2.CAP_PROP_POS_FRAMES)) != target + 1:
            return False
        msec = cap.get(cv2.CAP_PROP_POS_MSEC)
    except cv2.error:
        return False
    return abs(msec / 1000.0 - target / fps) <= 0.5 / fps + 1e-3


def _open(path: Path, threads: int | None) -> cv2.VideoCapture:
    try:
        if not path.exists():
            raise MediaError(path, "file not found")
        if not path.is_file():
            raise MediaError(path, "not a regular file")
        if path.stat().st_size == 0:
            raise MediaError(path, "file is empty (0 bytes)")
    except OSError as exc:
        raise MediaError(path, f"cannot read it: {exc.strerror or exc}") from exc
    params = [] if threads is None else [cv2.CAP_PROP_N_THREADS, int(threads)]
    try:
        cap = cv2.VideoCapture(str(path), cv2.CAP_FFMPEG, params)
    except cv2.error as exc:
        raise MediaError(path, f"OpenCV cannot open it: {exc}") from exc
    if not cap.isOpened():
        cap.release()
        raise MediaError(path, "cannot open as a video (not a video, or a codec this OpenCV build lacks)")
    return cap


def _checked_fps(cap: cv2.VideoCapture, path: Path) -> float:
    fps = float(cap.get(cv2.CAP_PROP_FPS))
    if not (math.isfinite(fps) and 0.0 < fps <= _MAX_FPS):
        raise MediaError(path, f"nonsense frame rate {fps!r} in the container")
    return fps


def _frame_count(cap: cv2.VideoCapture) -> int:
    """The container's frame count, or 0 when missing or absurd (raw H.264 reports garbage)."""
    value = cap.get(cv2.CAP_PROP_FRAME_COUNT)
    return int(value) if math.isfinite(value) and 0 < value < _MAX_FRAMES else 0


def _grab(cap: cv2.VideoCapture, path: Path) -> bool:
    try:
        return bool(cap.grab())
    except cv2.error as exc:
        log.warning("%s: decoder error, stopping: %s", path, exc)
        return False


def _retrieve(cap: cv2.VideoCapture, path: Path) -> tuple[bool, np.ndarray | None]:
    try:
        ok, frame = cap.retrieve()
    except cv2.error as exc:
        log.warning("%s: decoder error, stopping: %s", path, exc)
        return False, None
    return bool(ok), frame


def _read(cap: cv2.VideoCapture, path: Path) -> tuple[bool, np.ndarray | None]:
    return _retrieve(cap, path) if _grab(cap, path) else (False, None)


def _fourcc_text(value: float) -> str:
    code = int(value) if math.isfinite(value) and value > 0 else 0
    text = code.to_bytes(4, "little", signed=False).decode("latin-1") if 0 < code < 2**32 else ""
    text = text.strip("\x00 ").lower()
    return text if text.isprintable() and text.isascii() else ""
