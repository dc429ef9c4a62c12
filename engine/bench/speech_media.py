"""Videos with known speech and known on-screen text, for the speech benchmark and the tests.

Speech is real synthesis: ``espeak-ng`` (Debian package ``espeak-ng``) speaks each sentence in a chosen voice
and speed, and the sentence is placed at a known time on a 22.05 kHz track, so its ground-truth span is exact
(where the synthesised sound starts and ends, to the sample). Noise (white) or music (a chord sequence) is
mixed in at a known signal-to-noise ratio over the speech. Pictures change every few seconds (colour fields
with a moving shape) and captions are drawn at known times with a known text height in pixels. ``ffmpeg``
muxes H.264 and AAC.
"""

from __future__ import annotations

import contextlib
import dataclasses
import io
import shutil
import subprocess
import tempfile
import wave
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np

RATE = 22_050  # espeak-ng's own rate
Noise = Literal["white", "music"]


class SpeechMediaError(RuntimeError):
    """A tool needed to write the media is missing or failed; says which and how to install it."""


@dataclass(frozen=True)
class Utterance:
    """A sentence to say at ``start`` seconds; ``end`` is filled in once it has been synthesised."""

    text: str
    start: float
    voice: str = "en-gb"
    speed: int = 150  # words per minute
    gap: int = 4  # pause between words in 10 ms units (espeak-ng -g): clearer word boundaries for recognisers
    end: float = 0.0


@dataclass(frozen=True)
class Caption:
    """Text drawn from ``start`` to ``end`` with capital letters ``px`` pixels high, at ``(x, y)`` (top left)."""

    text: str
    start: float
    end: float
    px: int
    x: int = 40
    y: int = 60


@dataclass
class SpokenVideo:
    """A written video and its ground truth."""

    path: Path
    duration: float
    utterances: list[Utterance] = field(default_factory=list)
    captions: list[Caption] = field(default_factory=list)
    noise: Noise | None = None
    snr_db: float | None = None


def tools_missing() -> list[str]:
    """The programs this module needs that are not installed."""
    return [tool for tool in ("espeak-ng", "ffmpeg") if shutil.which(tool) is None]


def speak(text: str, voice: str = "en-gb", speed: int = 150, gap: int = 4) -> np.ndarray:
    """``text`` synthesised by espeak-ng as float32 samples at ``RATE``, leading and trailing silence trimmed."""
    if shutil.which("espeak-ng") is None:
        raise SpeechMediaError("espeak-ng is not installed (Debian: apt-get install espeak-ng)")
    out = subprocess.run(
        ["espeak-ng", "-v", voice, "-s", str(speed), "-g", str(gap), "--stdout", text], capture_output=True, check=False
    )
    if out.returncode != 0 or not out.stdout:
        raise SpeechMediaError(f"espeak-ng failed for voice {voice!r}: {out.stderr.decode(errors='replace')[-300:]}")
    with wave.open(io.BytesIO(out.stdout)) as w:
        if w.getframerate() != RATE or w.getsampwidth() != 2:
            raise SpeechMediaError(f"espeak-ng wrote {w.getframerate()} Hz, {8 * w.getsampwidth()}-bit audio")
        samples = np.frombuffer(w.readframes(w.getnframes()), dtype="<i2").astype(np.float32) / 32768.0
    loud = np.flatnonzero(np.abs(samples) > 0.01)
    return samples[loud[0] : loud[-1] + 1] if len(loud) else samples


def _music(n: int, rng: np.random.Generator) -> np.ndarray:
    """A chord every half second (three sines with a decay): music-like, tonal, in the speech band."""
    t = np.arange(n) / RATE
    out = np.zeros(n, np.float32)
    step = RATE // 2
    for k, start in enumerate(range(0, n, step)):
        root = 110.0 * 2 ** (rng.integers(0, 12) / 12)
        seg = slice(start, min(n, start + step))
        local = t[seg] - t[start]
        env = np.exp(-3.0 * local)
        for ratio in (1.0, 1.25, 1.5, 2.0):
            out[seg] += (env * np.sin(2 * np.pi * root * ratio * local + k)).astype(np.float32)
    return out


def sound_track(
    duration: float,
    utterances: Sequence[Utterance],
    *,
    noise: Noise | None = None,
    snr_db: float | None = None,
    seed: int = 0,
) -> tuple[np.ndarray, list[Utterance]]:
    """The track and the utterances with their true ends. The SNR is speech power (over the samples where
    someone speaks) against noise power, so 0 dB means the noise is as loud as the voice."""
    n = round(duration * RATE)
    track = np.zeros(n, np.float32)
    speaking = np.zeros(n, bool)
    placed = []
    for u in utterances:
        voice = speak(u.text, u.voice, u.speed, u.gap)
        a = round(u.start * RATE)
        b = min(n, a + len(voice))
        track[a:b] += voice[: b - a]
        speaking[a:b] = True
        placed.append(dataclasses.replace(u, end=b / RATE))
    if noise is not None and snr_db is not None:
        rng = np.random.default_rng(seed)
        bed = rng.standard_normal(n).astype(np.float32) if noise == "white" else _music(n, rng)
        speech_power = float(np.mean(track[speaking] ** 2)) if speaking.any() else 1e-4
        bed *= np.sqrt(speech_power / (10 ** (snr_db / 10)) / max(1e-12, float(np.mean(bed**2))))
        track = track + bed
    peak = float(np.abs(track).max()) or 1.0
    return (track * min(1.0, 0.9 / peak)).astype(np.float32), placed


def caption_scale(px: int) -> tuple[float, int]:
    """(fontScale, thickness) of OpenCV's Hershey simplex font whose capitals are ``px`` pixels high."""
    import cv2

    base = cv2.getTextSize("H", cv2.FONT_HERSHEY_SIMPLEX, 1.0, 1)[0][1]
    scale = px / base
    return scale, max(1, round(scale * 2))


def _frames(
    duration: float,
    fps: float,
    size: tuple[int, int],
    captions: Sequence[Caption],
    seed: int,
    colour: tuple[int, int, int] | None = None,
) -> Iterator[np.ndarray]:
    """Colour fields that change every 3 s (or one ``colour`` throughout) with a moving disc, and the captions
    on screen at each time."""
    import cv2

    width, height = size
    rng = np.random.default_rng(seed)
    colours = rng.integers(30, 200, (int(duration // 3) + 2, 3))
    if colour is not None:
        colours[:] = colour
    for i in range(round(duration * fps)):
        t = i / fps
        frame = np.empty((height, width, 3), np.uint8)
        frame[:] = colours[int(t // 3)]
        cx = int(width * (0.5 + 0.4 * np.cos(t)))
        cv2.circle(frame, (cx, height * 3 // 4), max(6, height // 12), (240, 240, 240), -1)
        for c in captions:
            if c.start <= t < c.end:
                scale, thick = caption_scale(c.px)
                (tw, th), base = cv2.getTextSize(c.text, cv2.FONT_HERSHEY_SIMPLEX, scale, thick)
                pad = max(4, c.px // 3)
                cv2.rectangle(frame, (c.x - pad, c.y - pad), (c.x + tw + pad, c.y + th + base + pad), (20, 20, 20), -1)
                cv2.putText(frame, c.text, (c.x, c.y + th), cv2.FONT_HERSHEY_SIMPLEX, scale, (250, 250, 250), thick,
                            cv2.LINE_AA)  # fmt: skip
        yield frame


def write_spoken_video(
    path: Path,
    duration: float,
    utterances: Sequence[Utterance] = (),
    captions: Sequence[Caption] = (),
    *,
    noise: Noise | None = None,
    snr_db: float | None = None,
    size: tuple[int, int] = (640, 360),
    fps: float = 10,
    audio: bool = True,
    seed: int = 0,
    colour: tuple[int, int, int] | None = None,
) -> SpokenVideo:
    """Write an H.264 + AAC ``.mp4`` (no audio stream when ``audio`` is False) and return its ground truth;
    ``colour`` (RGB) keeps one colour field throughout, for a picture model that sees colours (``fake:color``)."""
    if shutil.which("ffmpeg") is None:
        raise SpeechMediaError("ffmpeg is not installed (Debian: apt-get install ffmpeg)")
    path.parent.mkdir(parents=True, exist_ok=True)
    track, placed = sound_track(duration, utterances, noise=noise, snr_db=snr_db, seed=seed)
    width, height = size
    with tempfile.TemporaryDirectory(prefix="scenefind-speech-") as tmp:
        wav = Path(tmp) / "track.wav"
        with wave.open(str(wav), "wb") as w:
            w.setnchannels(1)
            w.setsampwidth(2)
            w.setframerate(RATE)
            w.writeframes((track * 32767).astype("<i2").tobytes())
        args = ["ffmpeg", "-hide_banner", "-loglevel", "error", "-nostdin", "-y", "-f", "rawvideo", "-pix_fmt",
                "rgb24", "-s", f"{width}x{height}", "-r", f"{fps:g}", "-i", "-"]  # fmt: skip
        args += ["-i", str(wav), "-c:a", "aac", "-b:a", "64k"] if audio else ["-an"]
        args += ["-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p", "-t", f"{duration:g}", str(path)]
        _pipe(args, _frames(duration, fps, size, captions, seed, colour), path)
    return SpokenVideo(path, duration, placed, list(captions), noise, snr_db)


def _pipe(args: list[str], frames: Iterator[np.ndarray], path: Path) -> None:
    with tempfile.TemporaryFile() as err:
        proc = subprocess.Popen(args, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=err)
        assert proc.stdin is not None
        try:
            for frame in frames:
                proc.stdin.write(frame.tobytes())
        except BrokenPipeError:
            pass  # ffmpeg died; its status and stderr say why
        finally:
            with contextlib.suppress(BrokenPipeError):
                proc.stdin.close()
            proc.wait()
        err.seek(0)
        message = err.read().decode("utf-8", "replace").strip()
    if proc.returncode != 0:
        raise SpeechMediaError(f"{path}: ffmpeg failed ({proc.returncode}): {message[-400:]}")


def write_long_recording(path: Path, hours: float, said: Utterance | None = None) -> SpokenVideo:
    """A long, mostly silent recording written cheaply: a 16x16 picture at 1 frame per second and 8 kHz mono
    AAC, with one sentence (``said``) near its time; for the bounded-memory test of very long files."""
    if shutil.which("ffmpeg") is None:
        raise SpeechMediaError("ffmpeg is not installed (Debian: apt-get install ffmpeg)")
    seconds = hours * 3600
    with tempfile.TemporaryDirectory(prefix="scenefind-long-") as tmp:
        inputs = ["-f", "lavfi", "-i", f"color=c=gray:s=16x16:r=1:d={seconds:g}",
                  "-f", "lavfi", "-i", f"anullsrc=r=8000:cl=mono:d={seconds:g}"]  # fmt: skip
        placed: list[Utterance] = []
        mix = ["-map", "0:v", "-map", "1:a"]
        if said is not None:
            voice = speak(said.text, said.voice, said.speed, said.gap)
            wav = Path(tmp) / "said.wav"
            with wave.open(str(wav), "wb") as w:
                w.setnchannels(1)
                w.setsampwidth(2)
                w.setframerate(RATE)
                w.writeframes((voice * 32767).astype("<i2").tobytes())
            delay = round(said.start * 1000)
            inputs += ["-i", str(wav)]
            mix = ["-filter_complex", f"[2:a]aresample=8000,adelay={delay}[s];[1:a][s]amix=inputs=2:duration=first:"
                   "normalize=0[a]", "-map", "0:v", "-map", "[a]"]  # fmt: skip
            placed.append(dataclasses.replace(said, end=said.start + len(voice) / RATE))
        args = ["ffmpeg", "-hide_banner", "-loglevel", "error", "-nostdin", "-y", *inputs, *mix, "-c:v", "libx264",
                "-preset", "ultrafast", "-g", "600", "-c:a", "aac", "-b:a", "16k", str(path)]  # fmt: skip
        out = subprocess.run(args, capture_output=True, check=False)
        if out.returncode != 0:
            raise SpeechMediaError(f"{path}: ffmpeg failed: {out.stderr.decode(errors='replace')[-400:]}")
    return SpokenVideo(path, seconds, placed)
