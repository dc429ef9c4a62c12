"""Videos with known content for tests and benchmarks.

Decoder tests need ground truth (where the cuts are, what colour each second is), and the throughput
benchmark needs H.264 like a phone writes, which the opencv-python wheels cannot encode: their FFmpeg has
no libx264. Colour videos therefore use ``cv2.VideoWriter`` (MPEG-4 part 2 in ``.mp4``/``.mkv``, Motion JPEG
in ``.avi``); H.264 goes through the ``ffmpeg`` program, or PyAV when that is importable instead.
"""

from __future__ import annotations

import contextlib
import importlib.util
import math
import shutil
import subprocess
import tempfile
from collections.abc import Iterator, Sequence
from fractions import Fraction
from pathlib import Path

import cv2
import numpy as np

from engine.media.decode import MediaError

RGB = tuple[int, int, int]


def write_color_video(
    path: Path | str,
    segments: Sequence[tuple[float, RGB]],
    *,
    fps: float = 10,
    size: tuple[int, int] = (160, 120),
    noise: float = 0,
    moving_box: bool = False,
    seed: int = 0,
) -> Path:
    """Write consecutive ``(duration_s, (r, g, b))`` segments; returns the path.

    ``noise`` is the standard deviation of per-pixel Gaussian noise and ``moving_box`` slides a contrasting
    square across the frame, so frames within a segment differ (as in real footage) while only the colour
    changes count as cuts. Segment ``i`` starts at frame ``round(sum of earlier durations * fps)``.
    """
    p = Path(path)
    width, height = size
    writer = _cv2_writer(p, fps, size)
    rng = np.random.default_rng(seed)
    box = max(4, min(width, height) // 5)
    try:
        start_s = 0.0
        frame_no = 0
        for duration_s, rgb in segments:
            end = round((start_s + duration_s) * fps)
            bgr = np.array(rgb[::-1], dtype=np.int16)
            base = np.empty((height, width, 3), dtype=np.int16)
            base[:] = bgr
            contrast = np.where(bgr > 127, bgr - 110, bgr + 110)  # the box stays visible on any colour
            while frame_no < end:
                frame = base.copy()
                if moving_box:
                    x = _bounce(frame_no * 3, width - box)
                    y = _bounce(frame_no * 2, height - box)
                    frame[y : y + box, x : x + box] = contrast
                if noise > 0:
                    frame += rng.normal(0.0, noise, frame.shape).astype(np.int16)
                writer.write(np.clip(frame, 0, 255).astype(np.uint8))
                frame_no += 1
            start_s += duration_s
    finally:
        writer.release()
    return _written(p)


def write_frames(path: Path | str, frames: Sequence[np.ndarray], *, fps: float = 1.0) -> Path:
    """Write RGB uint8 frames (all one size) as a video; returns the path.

    ``.avi`` is Motion JPEG, which codes every frame on its own: the same picture decodes to the same pixels
    wherever it sits in the file, so a clip and its time-reversal (``frames[::-1]``) hold exactly the same
    decoded frames, which is what a test of order-aware pooling needs. Other suffixes are MPEG-4 part 2.
    """
    p = Path(path)
    if not len(frames):
        raise ValueError(f"{p}: no frames to write")
    height, width = frames[0].shape[:2]
    writer = _cv2_writer(p, fps, (width, height))
    try:
        for frame in frames:
            if frame.shape != (height, width, 3) or frame.dtype != np.uint8:
                raise ValueError(f"{p}: frames must all be ({height}, {width}, 3) uint8, got {frame.shape}")
            writer.write(np.ascontiguousarray(frame[:, :, ::-1]))
    finally:
        writer.release()
    return _written(p)


def _cv2_writer(path: Path, fps: float, size: tuple[int, int]) -> cv2.VideoWriter:
    fourcc = "MJPG" if path.suffix.lower() == ".avi" else "mp4v"
    path.parent.mkdir(parents=True, exist_ok=True)
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*fourcc), float(fps), size)
    if not writer.isOpened():
        raise MediaError(path, f"OpenCV cannot write {fourcc} video here (try .avi or .mp4)")
    return writer


def _written(path: Path) -> Path:
    if not path.is_file() or path.stat().st_size == 0:
        raise MediaError(path, "cv2.VideoWriter produced no file")
    return path


def h264_writer_available() -> str | None:
    """``"ffmpeg"`` or ``"pyav"`` when H.264 can be written here, else None."""
    if shutil.which("ffmpeg"):
        return "ffmpeg"
    if importlib.util.find_spec("av") is not None:
        return "pyav"
    return None


def write_h264_video(
    path: Path | str,
    duration_s: float,
    *,
    size: tuple[int, int] = (1280, 720),
    fps: float = 30,
    seed: int = 0,
    gop: int | None = None,
    crf: int = 23,
    preset: str = "veryfast",
) -> Path:
    """Write an H.264 (yuv420p, libx264) video of a panning textured scene with moving shapes.

    The texture and motion make the encoder do real work, so decoding it costs about what a phone clip of
    the same size costs. ``gop`` is the keyframe interval in frames (None: x264's default of 250, a long GOP
    that makes seeking expensive). Needs the ``ffmpeg`` program (Debian package ``ffmpeg``) or PyAV.
    """
    p = Path(path)
    if duration_s <= 0 or fps <= 0:
        raise ValueError(f"duration_s and fps must be positive, got {duration_s}, {fps}")
    width, height = size
    if width % 2 or height % 2:
        raise ValueError(f"yuv420p needs even width and height, got {width}x{height}")
    n = max(1, round(duration_s * fps))
    frames = _pattern_frames(n, size, seed)
    backend = h264_writer_available()
    p.parent.mkdir(parents=True, exist_ok=True)
    if backend == "ffmpeg":
        _write_ffmpeg(p, frames, size, fps, gop, crf, preset)
    elif backend == "pyav":
        _write_pyav(p, frames, size, fps, gop, crf, preset)
    else:
        raise MediaError(p, "writing H.264 needs the ffmpeg program (Debian package `ffmpeg`) or PyAV (`av`)")
    return p


def _bounce(pos: int, span: int) -> int:
    """Triangle wave over ``0..span`` so a moving box bounces off the edges."""
    if span <= 0:
        return 0
    m = pos % (2 * span)
    return m if m <= span else 2 * span - m


def _pattern_frames(n: int, size: tuple[int, int], seed: int) -> Iterator[np.ndarray]:
    """RGB frames: a window panning over a large blob-and-grain texture, plus a moving disc and box."""
    width, height = size
    rng = np.random.default_rng(seed)
    cell = max(8, min(width, height) // 18)
    tex_w, tex_h = width + 4 * width // 5, height + height // 3
    low = rng.integers(0, 256, (tex_h // cell + 2, tex_w // cell + 2, 3), dtype=np.uint8)
    texture = cv2.resize(low, (tex_w, tex_h), interpolation=cv2.INTER_CUBIC).astype(np.int16)
    texture += rng.integers(-18, 19, (tex_h, tex_w, 1), dtype=np.int16)  # fine grain for the encoder
    texture = np.clip(texture, 0, 255).astype(np.uint8)
    radius = max(4, min(width, height) // 9)
    for i in range(n):
        x = _bounce(i * max(1, width // 320), tex_w - width)
        y = int((tex_h - height) * (0.5 + 0.5 * math.sin(i / 45.0)))
        frame = np.ascontiguousarray(texture[y : y + height, x : x + width])
        cx = int(width * (0.5 + 0.35 * math.cos(i / 25.0)))
        cy = int(height * (0.5 + 0.3 * math.sin(i / 17.0)))
        cv2.circle(frame, (cx, cy), radius, (230, 40, 40), -1, lineType=cv2.LINE_AA)
        bx = _bounce(i * max(1, width // 200), width - 2 * radius)
        cv2.rectangle(frame, (bx, height * 2 // 3), (bx + 2 * radius, height * 2 // 3 + radius), (30, 200, 60), -1)
        yield frame


def _write_ffmpeg(
    path: Path,
    frames: Iterator[np.ndarray],
    size: tuple[int, int],
    fps: float,
    gop: int | None,
    crf: int,
    preset: str,
) -> None:
    width, height = size
    args = ["ffmpeg", "-hide_banner", "-loglevel", "error", "-nostdin", "-y"]
    args += ["-f", "rawvideo", "-pix_fmt", "rgb24", "-s", f"{width}x{height}", "-r", f"{fps:g}", "-i", "-"]
    args += ["-an", "-c:v", "libx264", "-preset", preset, "-crf", str(crf), "-pix_fmt", "yuv420p"]
    if gop is not None:
        args += ["-g", str(gop), "-keyint_min", str(gop), "-sc_threshold", "0"]
    args += ["-movflags", "+faststart", str(path)]
    # stderr goes to a file, not a pipe: a chatty ffmpeg must not block while we fill its stdin
    with tempfile.TemporaryFile() as err:
        proc = subprocess.Popen(args, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=err)
        assert proc.stdin is not None
        try:
            for frame in frames:
                proc.stdin.write(frame.tobytes())
        except BrokenPipeError:
            pass  # ffmpeg died; its exit status and stderr say why
        finally:
            with contextlib.suppress(BrokenPipeError):
                proc.stdin.close()
            proc.wait()
        err.seek(0)
        stderr = err.read().decode("utf-8", "replace").strip()
    if proc.returncode != 0:
        with contextlib.suppress(OSError):
            path.unlink()
        raise MediaError(path, f"ffmpeg failed ({proc.returncode}): {stderr[-500:]}")


def _write_pyav(
    path: Path,
    frames: Iterator[np.ndarray],
    size: tuple[int, int],
    fps: float,
    gop: int | None,
    crf: int,
    preset: str,
) -> None:
    import av  # optional; only here when the ffmpeg program is missing

    try:
        with av.open(str(path), mode="w") as container:
            stream = container.add_stream("libx264", rate=Fraction(fps).limit_denominator(1001))
            stream.width, stream.height = size
            stream.pix_fmt = "yuv420p"
            stream.options = {"crf": str(crf), "preset": preset}
            if gop is not None:
                stream.options |= {"g": str(gop), "keyint_min": str(gop), "sc_threshold": "0"}
            for frame in frames:
                container.mux(stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")))
            container.mux(stream.encode(None))
    except Exception as exc:  # PyAV raises its own FFmpeg error types
        with contextlib.suppress(OSError):
            path.unlink()
        raise MediaError(path, f"PyAV could not write H.264: {exc}") from exc
