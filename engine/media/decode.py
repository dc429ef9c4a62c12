"""Video probing and frame sampling with PyAV: the only module that imports a video decoder.

Decoding is the indexer's bottleneck, and most frames of a video are never looked at. A ``VideoFile`` opens a
file once, demuxes its video packets without decoding them (presentation times, keyframe flags: a few
microseconds a packet), and ``engine.media.timeline`` decides from that what to decode: keyframes alone where
they are dense enough for the sampling rate, a GOP from its keyframe up to the sampled frame where they are
not, only the sampled frames of intra-only files. Inside a decoded GOP, frames nothing references and
nothing samples are dropped by the decoder unseen (``skip_frame`` NONREF); keyframes decoded alone skip
their loop filter. The decoder runs with one thread per core, scales on the decoder side (FFmpeg's swscale,
straight to the encoder's size, so a 4K frame is never converted to RGB at full size), and every time is a
presentation time from the container, so a moment found at 0:42 plays at 0:42 whatever the frame rate does.
Pictures come out upright (rotation metadata applied) and, for HDR (PQ or HLG), tone-mapped to SDR
(``engine.media.tonemap``).

Cut detection compares the decoded frames' thumbnails (``engine.media.cuts``). Where every frame is decoded
anyway it probes a few times a second; between two keyframe samples it compares the samples and, on a
change, decodes that stretch again (its packets are kept in memory) to find the cut's first frame; keyframes
an encoder put early (at a scene cut) are decoded as probes. PyAV is imported on first use, so importing this
module (the scanner does) stays cheap. Every failure is a ``MediaError`` naming the file.
"""

from __future__ import annotations

import logging
import math
import time
from collections import deque
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from engine.jobs import CancelToken, check_cancel
from engine.media.cut_finder import CutFinder
from engine.media.cuts import cut_score
from engine.media.media_types import (
    AUDIO_EXTENSIONS,
    NOT_VIDEO_EXTENSIONS,
    VIDEO_EXTENSIONS,
    DecodeStats,
    MediaError,
    NoVideoStream,
    SampledFrame,
    VideoInfo,
)
from engine.media.timeline import KEYFRAME_TOLERANCE, DecodeMode, SamplePlan, Timeline, plan_samples
from engine.media.tonemap import Transfer, tone_map, transfer_of

if TYPE_CHECKING:
    from av.container import InputContainer
    from av.packet import Packet
    from av.video.codeccontext import VideoCodecContext
    from av.video.frame import VideoFrame
    from av.video.stream import VideoStream

__all__ = [
    "AUDIO_EXTENSIONS",
    "VIDEO_EXTENSIONS",
    "DecodeMode",
    "DecodeStats",
    "MediaError",
    "NoVideoStream",
    "SampledFrame",
    "VideoFile",
    "VideoInfo",
    "cut_score",
    "frame_at",
    "load_decoder",
    "looks_like_video",
    "probe",
    "sample_frames",
]

log = logging.getLogger(__name__)

_MAX_FPS = 1000.0  # high-speed phone footage tops out near 960 fps; more is a broken header
_CANCEL_EVERY = 32  # packets between cancel checks
_MAX_DECODE_ERRORS = 16  # consecutive packets the decoder rejects before we call the rest unreadable
_PROBE_SIZE = (64, 36)  # decoder-side size of a cut probe (then averaged to the 32x18 signature)


def load_decoder() -> None:
    """Import PyAV now (it takes a few hundred ms and holds the GIL): the app calls this while it starts, so
    the first indexing run's decoder thread does not freeze the window with the import."""
    import av
    import av.video.reformatter  # noqa: F401


def looks_like_video(path: Path | str) -> bool:
    """Cheap test for odd extensions: a known one, or a file FFmpeg opens and decodes a video frame of."""
    p = Path(path)
    suffix = p.suffix.lower()
    if suffix in VIDEO_EXTENSIONS:
        return True
    if suffix in NOT_VIDEO_EXTENSIONS or suffix in AUDIO_EXTENSIONS:
        return False
    try:
        if not p.is_file() or p.stat().st_size == 0:
            return False
        with VideoFile(p) as video:
            for _ in video.frames_from(0.0, limit=1, raw=True):
                return True
    except Exception:  # a yes/no question must not raise
        return False
    return False


def probe(path: Path | str, *, threads: int | None = None) -> VideoInfo:
    """Open, check and describe a video (demuxing its packets, decoding one frame for its rotation);
    raises ``MediaError`` (``NoVideoStream`` for a sound file)."""
    with VideoFile(path, threads=threads) as video:
        return video.info


def sample_frames(
    path: Path | str, every_s: float = 1.0, *, threads: int | None = None, **options: Any
) -> Iterator[SampledFrame]:
    """Open ``path`` and yield ``VideoFile(path).sample(every_s, **options)`` (cuts, short_side, mode, stats,
    cancel, ...: see there); the file is closed when the iterator ends."""
    with VideoFile(path, threads=threads) as video:
        yield from video.sample(every_s, **options)


def frame_at(path: Path | str, t: float, *, short_side: int | None = None) -> np.ndarray:
    """The upright RGB picture shown at ``t`` seconds (the last one when ``t`` is past the end)."""
    with VideoFile(path) as video:
        for frame in video.frames_from(max(0.0, t), short_side=short_side, limit=1):
            return frame.image
    raise MediaError(path, f"no frame to show at {t:.1f} s")


class VideoFile:
    """One open video: its info and packet timeline (read once, lazily), sampling and single frames."""

    def __init__(self, path: Path | str, *, threads: int | None = None) -> None:
        self.path = Path(path)
        self.threads = threads
        self._container = _open_container(self.path)
        try:
            self.stream = _video_stream(self._container, self.path)
            self._tb = float(self.stream.time_base) if self.stream.time_base else 0.0
            self._origin = _origin_s(self._container, self.stream)
        except BaseException:
            self._container.close()
            raise
        self._timeline: Timeline | None = None
        self._info: VideoInfo | None = None
        self._rotation: int | None = None  # learnt from the first decoded frame (its display matrix)
        self._read_from_start = True  # the container is positioned at its start

    def close(self) -> None:
        self._container.close()

    def __enter__(self) -> VideoFile:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- description ------------------------------------------------------------------------------------

    @property
    def timeline(self) -> Timeline:
        if self._timeline is None:
            self._timeline = self._read_timeline()
        return self._timeline

    @property
    def info(self) -> VideoInfo:
        """What the file is. Its rotation is in the first frame's display matrix, so before ``sample`` has
        decoded a frame this decodes one; once sampling has started it costs nothing."""
        if self._rotation is None:
            self._rotation = self._first_rotation()
            self._info = None
        if self._info is None:
            self._info = self._describe(self.timeline)
        return self._info

    def _read_timeline(self) -> Timeline:
        """Demux every video packet (no decoding): times, keyframe flags, sizes; stops cleanly at damage."""
        import av

        pts: list[int | None] = []
        keys: list[bool] = []
        sizes: list[int] = []
        durations: list[int] = []
        stopped = ""
        self._rewind()
        self._read_from_start = False
        try:
            for packet in self._container.demux(self.stream):
                if packet.size == 0:  # the demuxer's end-of-stream marker
                    continue
                pts.append(packet.pts)
                keys.append(bool(packet.is_keyframe))
                sizes.append(int(packet.size))
                durations.append(int(packet.duration or 0))
        except av.FFmpegError as exc:
            stopped = _reason(exc)
        frame_s = self._frame_s(durations)
        if pts and all(p is not None for p in pts):
            times = np.array(pts, dtype=np.float64) * self._tb - self._origin
            ends = times + np.where(np.array(durations) > 0, np.array(durations) * self._tb, frame_s)
            end_s = float(ends.max())
        else:  # raw elementary streams: no timestamps, frames at the nominal rate
            times = np.full(len(pts), np.nan)
            end_s = len(pts) * frame_s
        return Timeline(times, np.array(keys, dtype=bool), np.array(sizes, dtype=np.int64), frame_s, end_s, stopped)

    def _frame_s(self, durations: list[int]) -> float:
        rate = self.stream.average_rate or self.stream.guessed_rate or self.stream.base_rate
        fps = float(rate) if rate else 0.0
        if not (math.isfinite(fps) and 0.0 < fps <= _MAX_FPS):
            known = [d for d in durations if d > 0]
            fps = 1.0 / (float(np.median(known)) * self._tb) if known and self._tb else 0.0
        if not (math.isfinite(fps) and 0.0 < fps <= _MAX_FPS):
            raise MediaError(self.path, f"nonsense frame rate {fps!r} in the container")
        return 1.0 / fps

    def _describe(self, tl: Timeline) -> VideoInfo:
        if tl.frame_count == 0:
            why = f" ({tl.stopped})" if tl.stopped else ""
            raise MediaError(self.path, f"no video frames in the file (truncated or corrupt){why}")
        ctx = self.stream.codec_context
        width, height = int(ctx.width or 0), int(ctx.height or 0)
        if width <= 0 or height <= 0:
            raise MediaError(self.path, f"nonsense frame size {width}x{height}")
        sar = _pixel_aspect(self.stream)
        width = max(1, round(width * sar))
        rotation = self._rotation or 0
        if rotation % 180:
            width, height = height, width
        duration = tl.end_s
        return VideoInfo(
            path=self.path,
            duration_s=duration,
            fps=tl.frame_count / duration if duration > 0 else 1.0 / tl.frame_s,
            frame_count=tl.frame_count,
            width=width,
            height=height,
            codec=_codec_name(ctx),
            rotation=rotation,
            hdr=transfer_of(int(ctx.color_trc or 0)) or "",
            keyframe_interval_s=tl.keyframe_interval_s() if tl.timed else 0.0,
        )

    def _first_rotation(self) -> int:
        """Display rotation from the first frame's display matrix (where FFmpeg puts the stream's)."""
        for frame in self.frames_from(0.0, limit=1, raw=True):
            return _rotation_of(frame)
        return 0

    # -- decoding ---------------------------------------------------------------------------------------

    def _rewind(self) -> None:
        """Go back to the first packet: a seek, or reopening where the container cannot seek (raw streams)."""
        import av

        if self._read_from_start:
            return
        try:
            self._container.seek(0)
        except (av.FFmpegError, OSError):
            self._container.close()
            self._container = _open_container(self.path)
            self.stream = _video_stream(self._container, self.path)
        self._read_from_start = True

    def _decoder(self, *, fresh: bool = False) -> VideoCodecContext:
        """The stream's decoder (threads on), or a new one from its parameters (to locate a cut)."""
        import av

        if fresh:
            ctx = av.CodecContext.create(self.stream.codec_context.codec.name, "r")
            ctx.extradata = self.stream.codec_context.extradata
        else:
            ctx = self.stream.codec_context
        if not ctx.is_open:
            ctx.thread_type = "AUTO"
            ctx.thread_count = _decoder_threads() if self.threads is None else int(self.threads)
        return ctx

    def _time_of(self, frame: VideoFrame) -> float | None:
        return None if frame.pts is None else frame.pts * self._tb - self._origin

    def _redecode(self, packets: list[Packet], st: DecodeStats) -> Iterator[VideoFrame]:
        """Decode ``packets`` (from a keyframe on) again with a decoder of their own (to locate a cut)."""
        decoder = self._decoder(fresh=True)
        for packet in packets:
            yield from _decode(decoder, packet, st)
        yield from _drain(decoder)

    def frames_from(
        self, t: float, *, short_side: int | None = None, limit: int = 1, raw: bool = False
    ) -> Iterator[Any]:
        """Decode from the keyframe before ``t``; yield the first ``limit`` frames at or after it (the last
        frame of the file when ``t`` is past its end), as ``SampledFrame`` or, with ``raw``, PyAV frames.
        For thumbnails and checks; sampling uses ``sample``."""
        import av

        self._rewind()
        self._read_from_start = False
        if t > 0 and self._tb:
            try:
                self._container.seek(round((t + self._origin) / self._tb), stream=self.stream, backward=True)
            except (av.FFmpegError, OSError):
                self._rewind()
                self._read_from_start = False
        picture = None if raw else _Picture(self.stream, short_side)
        given, last = 0, None
        decoder = self._decoder()
        try:
            for frame in self._all_frames(decoder):
                last = frame
                ft = self._time_of(frame)
                if ft is not None and ft < t - 1e-3:
                    continue
                given += 1
                yield frame if picture is None else SampledFrame(ft or 0.0, -1, False, picture.image(frame))
                if given >= limit:
                    return
            if given == 0 and last is not None:
                ft = self._time_of(last) or 0.0
                yield last if picture is None else SampledFrame(ft, -1, False, picture.image(last))
        finally:
            self._reset_decoder()

    def _all_frames(self, decoder: VideoCodecContext) -> Iterator[VideoFrame]:
        """Every frame from the container's position on (damaged data ends it quietly)."""
        import av

        try:
            for packet in self._container.demux(self.stream):
                if packet.size:
                    yield from _decode(decoder, packet)
        except av.FFmpegError as exc:
            log.info("%s: reading stopped: %s", self.path, _reason(exc))
        yield from _drain(decoder)

    def _reset_decoder(self) -> None:
        ctx = self.stream.codec_context
        if ctx.is_open:
            ctx.flush_buffers()
        ctx.skip_frame = "DEFAULT"

    def sample(
        self,
        every_s: float = 1.0,
        *,
        cuts: bool = True,
        short_side: int | None = None,
        cut_threshold: float = 0.3,
        cut_probe_hz: float = 4.0,
        mode: DecodeMode = "auto",
        keyframe_tolerance: float = KEYFRAME_TOLERANCE,
        stats: DecodeStats | None = None,
        cancel: CancelToken | None = None,
    ) -> Iterator[SampledFrame]:
        """Yield a frame for every ``every_s`` seconds plus the first frame of each detected shot, in time order.

        Sample ``k`` is the first frame at or after ``k * every_s`` by presentation time or, in ``mode``
        "auto", the keyframe nearest to it when one lies within ``keyframe_tolerance * every_s`` (its true
        time is reported, so a moment still plays where it was found). "exact" never substitutes keyframes;
        "sequential" decodes every frame (the reference for tests). With ``cuts``, a frame whose thumbnail
        scores at least ``cut_threshold`` against the previous one (``cut_score``) is yielded with
        ``is_cut=True`` (at most one per ``cut_finder.MIN_SHOT_S``), located to the frame (``cut_probe_hz`` probes a
        second where every frame is decoded). ``short_side`` scales outputs on the decoder side so their
        short side equals it, aspect kept. A file that breaks part way yields what decoded and says where it
        stopped (``stats.stopped``, a warning); one that yields nothing raises ``MediaError``.
        """
        if not every_s > 0:
            raise ValueError(f"every_s must be positive, got {every_s}")
        if short_side is not None and short_side <= 0:
            raise ValueError(f"short_side must be positive, got {short_side}")
        st = stats if stats is not None else DecodeStats()
        started, waited = time.perf_counter(), 0.0
        tl = self.timeline
        plan = plan_samples(tl, every_s, mode=mode, keyframe_tolerance=keyframe_tolerance, cut_keys=cuts)
        st.strategy = plan.strategy
        st.keyframe_interval_s = tl.keyframe_interval_s() if tl.timed else 0.0
        run = _SamplingRun(self, plan.sample_times, every_s, short_side, st)
        finder = None
        if cuts:
            finder = CutFinder(tl, run.picture, self._time_of, self._redecode, cut_threshold, 1.0 / cut_probe_hz, st)
        self._rewind()
        self._read_from_start = False
        decoder = self._decoder()
        if plan.strategy in ("keyframes", "intra") and not decoder.is_open:
            # Frames decoded alone, never as references: their deblocking can go (5-20% of a 4K HEVC
            # keyframe's decoding; under 0.1 grey level once scaled to the encoder's size)
            decoder.options = {**decoder.options, "skip_loop_filter": "all"}
        try:
            for frame in self._planned_frames(decoder, plan, finder, st, cancel):
                if self._rotation is None:
                    self._rotation, self._info = _rotation_of(frame), None
                for out in run.take(frame, finder):
                    check_cancel(cancel)
                    st.yielded += 1
                    st.cuts += out.is_cut
                    paused = time.perf_counter()
                    yield out
                    waited += time.perf_counter() - paused
        finally:
            self._reset_decoder()
            st.seconds += time.perf_counter() - started - waited
        if st.yielded == 0:
            why = f" ({st.stopped})" if st.stopped else ""
            raise MediaError(self.path, f"no decodable frames (corrupt file or unsupported codec){why}")
        self._note_early_end(run.last_t, tl, st)

    def _planned_frames(
        self,
        decoder: VideoCodecContext,
        plan: SamplePlan,
        finder: CutFinder | None,
        st: DecodeStats,
        cancel: CancelToken | None,
    ) -> Iterator[VideoFrame]:
        """Read every packet once, give the planned ones to the decoder, yield the frames that come out.

        Unless the plan is sequential, a sent packet whose frame is not needed (not a sample, not a keyframe)
        is decoded with ``skip_frame`` "NONREF": when no other frame references it, the decoder drops it
        without decoding it (the B-frames of a long GOP are mostly such). Cut probes take what comes out."""
        import av

        send, drain_before, needed = plan.send, plan.drain_before, plan.needed
        may_skip = plan.strategy != "sequential" and len(needed) == len(send)
        skipping = False
        packets = self._container.demux(self.stream)
        failing = 0  # consecutive packets the decoder rejected
        i = -1
        while True:
            try:
                packet = next(packets)
            except StopIteration:
                break
            except av.FFmpegError as exc:  # damaged data ends the file here
                st.stopped = _reason(exc)
                break
            if packet.size == 0:
                continue
            i += 1
            st.packets += 1
            if i % _CANCEL_EVERY == 0:
                check_cancel(cancel)
            if finder is not None:
                finder.keep(i, packet)
            if i < len(send) and not send[i]:
                continue
            if i < len(drain_before) and drain_before[i]:
                yield from _drain(decoder)
                decoder.flush_buffers()
                st.drains += 1
            st.sent += 1
            if may_skip and skipping == bool(needed[i]):
                skipping = not skipping
                decoder.skip_frame = "NONREF" if skipping else "DEFAULT"
            errors = st.decode_errors
            frames = list(_decode(decoder, packet, st))
            failing = failing + 1 if st.decode_errors > errors and not frames else 0
            yield from frames
            if failing >= _MAX_DECODE_ERRORS:
                st.stopped = "the decoder rejects the rest of the data"
                break
        yield from _drain(decoder)

    def _note_early_end(self, last_t: float, tl: Timeline, st: DecodeStats) -> None:
        """Say where a damaged or truncated file stopped, against the length its headers announce."""
        declared, own = self._declared_s()
        declared = max(declared, tl.end_s)
        end = max(last_t + tl.frame_s, tl.end_s if st.decode_errors == 0 else 0.0)  # the readable part's end
        # The stream's own length is exact; a container's may be a longer sound track's.
        slack = max(2 * tl.frame_s, 0.01 * declared) if own else max(1.0, 0.05 * declared)
        if declared - end <= slack and not (st.stopped or tl.stopped):
            return
        why = st.stopped or tl.stopped or "the rest is missing"
        st.stopped = f"decoding stopped at {end:.1f} s of {declared:.1f} s: {why} (truncated or corrupt)"
        log.info("%s: %s", self.path, st.stopped)  # the caller reports it (indexing: "partly indexed")

    def _declared_s(self) -> tuple[float, bool]:
        """The length the headers announce, and whether it is the video stream's own (not the container's)."""
        if self.stream.duration and self._tb:
            return float(self.stream.duration * self._tb), True
        if self.stream.frames and self.timeline.frame_s:
            return self.stream.frames * self.timeline.frame_s, True
        return (self._container.duration / 1e6 if self._container.duration else 0.0), False


class _Picture:
    """Turns decoded frames into upright SDR RGB arrays at the output size, scaling on the decoder side."""

    def __init__(self, stream: VideoStream, short_side: int | None) -> None:
        from av.video.reformatter import VideoReformatter

        self.short_side = short_side
        self._sar = _pixel_aspect(stream)
        self._scaler = VideoReformatter()
        self._probe_scaler = VideoReformatter()
        self._size: tuple[int, int] | None = None  # (w, h) before rotation

    def _output_size(self, frame: VideoFrame) -> tuple[int, int]:
        if self._size is None:
            w, h = frame.width * self._sar, float(frame.height)
            scale = 1.0 if self.short_side is None else self.short_side / min(w, h)
            self._size = (max(1, round(w * scale)), max(1, round(h * scale)))
        return self._size

    def image(self, frame: VideoFrame) -> np.ndarray:
        """Full output picture: scaled, tone-mapped when HDR, rotated upright."""
        return self.upright(self.unrotated(frame), frame)

    @staticmethod
    def upright(array: np.ndarray, frame: VideoFrame) -> np.ndarray:
        """``array`` (made from ``frame``) turned as the frame's display matrix says."""
        return _upright(array, _rotation_of(frame))

    def unrotated(self, frame: VideoFrame) -> np.ndarray:
        w, h = self._output_size(frame)
        area = w * 2 <= frame.width  # area averaging for large reductions, bilinear otherwise
        return self._convert(self._scaler, frame, w, h, "AREA" if area else "BILINEAR")

    def probe(self, frame: VideoFrame) -> np.ndarray:
        """A tiny picture for cut detection (same colours as ``image``; not rotated)."""
        return self._convert(self._probe_scaler, frame, *_PROBE_SIZE, "AREA", threads=1)

    @staticmethod
    def _convert(scaler: Any, frame: VideoFrame, w: int, h: int, interpolation: str, threads: int = 0) -> np.ndarray:
        transfer: Transfer | None = transfer_of(int(frame.color_trc or 0))
        fmt = "rgb48le" if transfer else "rgb24"
        src_range = int(frame.color_range or 0) or None  # 1: limited (TV), 2: full (JPEG, many phones)
        out = scaler.reformat(frame, w, h, fmt, interpolation=interpolation, src_color_range=src_range, threads=threads)
        array = out.to_ndarray()
        return tone_map(array, transfer) if transfer else np.ascontiguousarray(array)


class _SamplingRun:
    """Matches frames coming out of the decoder to the plan's sample times and cut probes."""

    def __init__(
        self, video: VideoFile, sample_times: np.ndarray, every_s: float, short_side: int | None, st: DecodeStats
    ) -> None:
        self.video = video
        self.tl = video.timeline
        self.picture = _Picture(video.stream, short_side)
        self.st = st
        self.pending: deque[float] = deque(float(t) for t in sample_times)
        self.eps = 0.5 * self.tl.frame_s
        self.sorted_times = np.sort(self.tl.times) if self.tl.timed else np.zeros(0)
        self.count = 0  # frames out so far (the clock of streams without timestamps)
        self.every_s = every_s
        self.next_untimed = 0.0
        self.last_t = -math.inf

    def _index(self, t: float) -> int:
        if not self.tl.timed:
            return self.count - 1
        return int(min(np.searchsorted(self.sorted_times, t - self.eps), len(self.sorted_times) - 1))

    def take(self, frame: VideoFrame, finder: CutFinder | None) -> Iterator[SampledFrame]:
        self.st.decoded += 1
        self.count += 1
        t = self.video._time_of(frame) if self.tl.timed else None
        if t is None:
            t = (self.count - 1) * self.tl.frame_s
        if t <= self.last_t:  # a frame of a stretch already passed (a decoder hiccup): never go back
            return
        if self.tl.timed:
            is_sample = bool(self.pending) and self.pending[0] <= t + self.eps
            while self.pending and self.pending[0] <= t + self.eps:
                self.pending.popleft()
        else:
            is_sample = t >= self.next_untimed - self.eps
            while self.next_untimed <= t + self.eps:
                self.next_untimed += self.every_s
        is_cut = False
        if finder is not None:
            found = finder.look(frame, t, force=is_sample)
            if found is not None:  # a cut found earlier in the stretch since the last sample
                self.st.converted += 1
                yield SampledFrame(found[0], self._index(found[0]), True, found[1])
            is_cut = finder.cut_here
        if not (is_sample or is_cut):
            return
        self.last_t = t
        self.st.converted += 1
        image = finder.image if finder is not None and finder.image is not None else self.picture.image(frame)
        yield SampledFrame(t, self._index(t), is_cut, image)


# -- helpers --------------------------------------------------------------------------------------------


def _open_container(path: Path) -> InputContainer:
    try:
        if not path.exists():
            raise MediaError(path, "file not found")
        if not path.is_file():
            raise MediaError(path, "not a regular file")
        if path.stat().st_size == 0:
            raise MediaError(path, "file is empty (0 bytes)")
    except OSError as exc:
        raise MediaError(path, f"cannot read it: {exc.strerror or exc}") from exc
    import av

    try:
        return av.open(str(path), "r", metadata_errors="ignore")
    except PermissionError as exc:
        raise MediaError(path, f"cannot read it: {exc.strerror or 'Permission denied'}") from exc
    except (av.FFmpegError, OSError, UnicodeDecodeError, ValueError) as exc:
        raise MediaError(path, f"cannot open as a video ({_reason(exc)})") from exc


def _decoder_threads() -> int:
    """One decoder thread per core this process may use (FFmpeg's own default is one more, which on two
    cores costs a 4K HEVC decoder 150 MB of frames in flight for no speed), at most 8."""
    import os

    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    return max(1, min(8, cores))


def _video_stream(container: InputContainer, path: Path) -> VideoStream:
    """The main video stream (not a cover picture); ``NoVideoStream`` for sound files."""
    import av

    videos = [s for s in container.streams.video if not s.disposition & av.stream.Disposition.attached_pic]
    if not videos:
        if container.streams.audio:
            raise NoVideoStream(path, "no video stream (audio only)")
        raise MediaError(path, "cannot open as a video (no video or audio stream in it)")
    videos.sort(key=lambda s: (not s.disposition & av.stream.Disposition.default, -(s.codec_context.width or 0)))
    stream = videos[0]
    if stream.codec_context is None or not stream.codec_context.is_decoder:
        raise MediaError(path, f"cannot open as a video (no decoder for {stream.codec_context or 'its codec'})")
    return stream


def _origin_s(container: InputContainer, stream: VideoStream) -> float:
    """Time zero of the file: the container's start (players count from there), else the stream's."""
    if container.start_time is not None:
        return container.start_time / 1e6
    if stream.start_time is not None and stream.time_base:
        return float(stream.start_time * stream.time_base)
    return 0.0


def _pixel_aspect(stream: VideoStream) -> float:
    sar = stream.sample_aspect_ratio or stream.codec_context.sample_aspect_ratio
    value = float(sar) if sar else 1.0
    return value if 0.2 <= value <= 5.0 else 1.0


def _codec_name(ctx: VideoCodecContext) -> str:
    codec = ctx.codec
    return str(getattr(codec, "canonical_name", "") or codec.name)


def _rotation_of(frame: VideoFrame) -> int:
    """Counter-clockwise degrees (0, 90, 180, 270) the frame must turn to be upright."""
    try:
        angle = float(frame.rotation or 0)
    except (AttributeError, ValueError):
        return 0
    return round(angle / 90.0) % 4 * 90


def _upright(image: np.ndarray, rotation: int) -> np.ndarray:
    if rotation == 0:
        return image
    return np.ascontiguousarray(np.rot90(image, k=rotation // 90))


def _decode(ctx: VideoCodecContext, packet: Packet | None, st: DecodeStats | None = None) -> Iterator[VideoFrame]:
    """The frames a packet completes; a packet the decoder rejects (damaged data) is counted and skipped."""
    import av

    try:
        frames = ctx.decode(packet)
    except av.FFmpegError as exc:
        if st is not None:
            st.decode_errors += 1
        log.debug("decoder rejected a packet: %s", exc)
        return iter(())
    return iter(frames)


def _drain(ctx: VideoCodecContext) -> Iterator[VideoFrame]:
    """Frames still inside the decoder (its reorder buffer and frame threads)."""
    if not ctx.is_open:
        return iter(())
    return _decode(ctx, None)


def _reason(exc: BaseException) -> str:
    """FFmpeg's message without the errno and the C function name PyAV adds."""
    text = getattr(exc, "strerror", None) or str(exc)
    return str(text).split(": '")[0].strip() or type(exc).__name__
