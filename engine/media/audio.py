"""A video's sound as 16 kHz mono float32, streamed in bounded chunks with PyAV (speech recognition's input).

Speech recognition needs the whole sound track, but a three-hour recording is 690 MB as float32 at 16 kHz, so
``iter_audio`` never holds more than one chunk (ten minutes by default, 38 MB): it decodes and resamples
packet by packet and cuts each chunk at its quietest tenth of a second near the chunk's end, so a chunk
boundary almost never splits a word. Every chunk knows where it starts in the video, so times found in it map
back exactly, including for sound that starts later than the picture.

A file without a sound track raises ``NoAudioStream`` (a fact to record, not a failure); a track that cannot be
decoded raises ``AudioError`` naming the file. Damaged packets are skipped with one warning and their time
stays silent, so later words keep their times; a track of which almost nothing decodes is ``AudioError`` too.
PyAV is imported on first use, so importing this module stays cheap.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from engine.jobs import CancelToken, check_cancel

log = logging.getLogger(__name__)

SAMPLE_RATE = 16_000  # what Whisper models take
_QUIET_WINDOW = SAMPLE_RATE // 10  # 0.1 s: the unit the chunk cut looks for silence in
_CANCEL_EVERY = 200  # packets between cancel checks
_MAX_ERRORS = 200  # damaged packets in a row, with nothing decoded, after which the stream is given up
_GAP_S = 0.05  # a jump in timestamps larger than this (lost packets) is filled with silence


class AudioError(Exception):
    """A sound track cannot be opened or decoded; ``str()`` is ``"PATH: reason"``."""

    def __init__(self, path: Path | str, reason: str) -> None:
        self.path = Path(path)
        self.reason = reason
        super().__init__(f"{self.path}: {reason}")


class NoAudioStream(AudioError):
    """The file has no sound track at all (a silent screen recording, a GIF-like clip)."""


@dataclass(frozen=True)
class AudioInfo:
    """What the container says about the first sound track."""

    codec: str
    sample_rate: int
    channels: int
    duration_s: float | None  # None when the container does not say


@dataclass(frozen=True)
class AudioChunk:
    """``samples`` (float32 mono at ``SAMPLE_RATE``) start ``start_s`` seconds into the video."""

    start_s: float
    samples: np.ndarray

    @property
    def duration_s(self) -> float:
        return len(self.samples) / SAMPLE_RATE


def _open(path: Path) -> Any:
    import av

    try:
        if path.stat().st_size == 0:
            raise AudioError(path, "file is empty (0 bytes)")
    except OSError as exc:
        raise AudioError(path, f"cannot read it: {exc.strerror or exc}") from exc
    try:
        return av.open(str(path), metadata_errors="ignore")
    except (av.FFmpegError, UnicodeDecodeError, ValueError) as exc:
        raise AudioError(path, f"cannot open it ({exc})") from exc


def probe_audio(path: Path | str) -> AudioInfo:
    """The first sound track's codec, rate, channels and duration; ``NoAudioStream`` when there is none."""
    p = Path(path)
    container = _open(p)
    try:
        stream = next(iter(container.streams.audio), None)
        if stream is None:
            raise NoAudioStream(p, "no audio stream")
        ctx = stream.codec_context
        duration = _announced_s(container, stream) or None
        return AudioInfo(ctx.name or "", int(ctx.sample_rate or 0), int(ctx.channels or 0), duration)
    finally:
        container.close()


def iter_audio(path: Path | str, *, chunk_s: float = 600.0, cancel: CancelToken | None = None) -> Iterator[AudioChunk]:
    """Yield the first sound track as consecutive chunks of about ``chunk_s`` seconds (the last one shorter).

    Raises ``NoAudioStream`` when the file has no sound track and ``AudioError`` when nothing of it decodes."""
    import av

    if chunk_s < 1.0:
        raise ValueError(f"chunk_s must be at least 1 s, got {chunk_s}")
    p = Path(path)
    container = _open(p)
    try:
        stream = next(iter(container.streams.audio), None)
        if stream is None:
            raise NoAudioStream(p, "no audio stream")
        stream.thread_type = "AUTO"
        resampler = av.AudioResampler(format="flt", layout="mono", rate=SAMPLE_RATE)
        origin = container.start_time / 1_000_000 if container.start_time is not None else 0.0
        target = int(chunk_s * SAMPLE_RATE)
        margin = min(30 * SAMPLE_RATE, target // 4)  # how far from the target length a quiet cut may move
        pieces: list[np.ndarray] = []
        held = 0  # samples in pieces
        start_s: float | None = None  # video time of the first sample held
        decoded = errors = 0
        for n, packet in enumerate(container.demux(stream)):
            if n % _CANCEL_EVERY == 0:
                check_cancel(cancel)
            try:
                frames = packet.decode()
            except av.FFmpegError as exc:  # a damaged packet: skip it, its time stays silent
                errors += 1
                if errors == 1:
                    log.warning("%s: damaged audio packets skipped (%s)", p, exc)
                if errors >= _MAX_ERRORS and decoded == 0:
                    raise AudioError(p, f"the audio stream cannot be decoded ({exc})") from exc
                continue
            for frame in frames:
                at = (frame.time - origin) if frame.time is not None else None
                if start_s is None:
                    start_s = max(0.0, at or 0.0)
                elif at is not None and at - (start_s + held / SAMPLE_RATE) > _GAP_S:  # lost packets: keep time
                    silence = np.zeros(round((at - start_s) * SAMPLE_RATE) - held, np.float32)
                    pieces.append(silence)
                    held += len(silence)
                for out in resampler.resample(frame):
                    samples = out.to_ndarray().reshape(-1)
                    pieces.append(samples)
                    held += len(samples)
                    decoded += len(samples)
            while start_s is not None and held >= target + margin:
                buffer = np.concatenate(pieces)
                cut = quiet_cut(buffer, target, margin)
                yield AudioChunk(start_s, buffer[:cut])
                start_s += cut / SAMPLE_RATE
                pieces, held = [buffer[cut:]], len(buffer) - cut
        for out in resampler.resample(None):  # flush the resampler's tail
            pieces.append(out.to_ndarray().reshape(-1))
            held += pieces[-1].size
        announced = _announced_s(container, stream)
        if decoded == 0:
            raise AudioError(p, "the audio stream holds no decodable sound")
        if announced > 2.0 and decoded / SAMPLE_RATE < 0.1 * announced:
            raise AudioError(
                p, f"the audio stream is damaged: {decoded / SAMPLE_RATE:.1f} s of its {announced:.0f} s decode"
            )
        if held:
            yield AudioChunk(start_s or 0.0, np.concatenate(pieces))
    finally:
        container.close()


def _announced_s(container: Any, stream: Any) -> float:
    """The sound track's length as the container states it (0 when it does not)."""
    if stream.duration and stream.time_base:
        return float(stream.duration * stream.time_base)
    return container.duration / 1_000_000 if container.duration else 0.0


def quiet_cut(samples: np.ndarray, target: int, search: int = 30 * SAMPLE_RATE) -> int:
    """Where to end a chunk: the start of the quietest 0.1 s window in ``[target - search, target + search)``."""
    lo, hi = max(_QUIET_WINDOW, target - search), min(len(samples) - _QUIET_WINDOW, target + search)
    if hi <= lo:
        return min(len(samples), target)
    windows = (hi - lo) // _QUIET_WINDOW
    energy = np.square(samples[lo : lo + windows * _QUIET_WINDOW].reshape(windows, _QUIET_WINDOW)).mean(axis=1)
    return lo + int(np.argmin(energy)) * _QUIET_WINDOW
