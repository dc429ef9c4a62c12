"""Export a moment as its own ``.mp4`` clip, for sharing or for a video editor.

The ``ffmpeg`` program, when installed, cuts frame-accurately and keeps the sound (H.264 + AAC, or MPEG-4
part 2 where its build lacks libx264); it runs as an argument list, never through a shell, so no file name
can inject a command. Without it, OpenCV re-encodes the picture alone (MPEG-4 part 2, no audio). Clips are
written to a temporary sibling and renamed when complete, and generated names are sanitised so that they
always stay inside the folder the user chose.
"""

from __future__ import annotations

import logging
import os
import re
import shutil
import subprocess
from pathlib import Path

import cv2

from engine.atomic import atomic_path
from engine.jobs import CancelToken, JobCancelled, ProgressCallback, check_cancel, report
from engine.media.decode import MediaError, probe

log = logging.getLogger(__name__)

_UNSAFE = re.compile(r"[^A-Za-z0-9._ -]+")
_MAX_STEM = 80


class ExportError(RuntimeError):
    """A clip could not be written; the message names the file and the reason."""


def clip_file_name(video: Path | str, start: float, end: float, suffix: str = ".mp4") -> str:
    """``<stem> 00m12s-00m17s.mp4`` with anything but letters, digits, ``._ -`` replaced: never a path."""
    stem = _UNSAFE.sub("_", Path(video).stem).strip(" ._") or "clip"
    return f"{stem[:_MAX_STEM]} {_stamp(start)}-{_stamp(end)}{suffix}"


def safe_output_path(folder: Path | str, name: str) -> Path:
    """``folder / name`` with ``name`` sanitised; raises ``ExportError`` if it would leave ``folder``."""
    base = Path(folder).expanduser().resolve()
    clean = _UNSAFE.sub("_", Path(name).name).strip(" .") or "clip.mp4"
    target = (base / clean).resolve()
    if target.parent != base:
        raise ExportError(f"{name!r}: not a plain file name inside {base}")
    return target


def export_clip(
    video: Path | str,
    start: float,
    end: float,
    out: Path | str,
    *,
    use_ffmpeg: bool | None = None,
    progress: ProgressCallback | None = None,
    cancel: CancelToken | None = None,
) -> Path:
    """Write ``video[start:end]`` to ``out`` (a file, or an existing folder to get a generated name).

    ``use_ffmpeg=None`` uses the ``ffmpeg`` program when it is on the PATH. Returns the written path;
    raises ``ExportError`` (bad range, unwritable target, encoder failure), ``MediaError`` (unreadable
    source) or ``JobCancelled`` (nothing is left behind).
    """
    src = Path(video).expanduser().resolve()
    info = probe(src)
    start = max(0.0, float(start))
    end = min(float(end), info.duration_s)
    if not end > start:
        raise ExportError(f"{src}: empty range {start:.2f}-{end:.2f} s (the video lasts {info.duration_s:.2f} s)")
    target = Path(out).expanduser()
    if target.is_dir():
        target = safe_output_path(target, clip_file_name(src, start, end))
    if target.suffix.lower() != ".mp4":
        target = target.with_suffix(".mp4")
    if not target.parent.is_dir():
        raise ExportError(f"{target.parent}: folder does not exist")
    exe = shutil.which("ffmpeg") if use_ffmpeg is not False else None
    if use_ffmpeg and exe is None:
        raise ExportError("the ffmpeg program is not installed (install it, or export without ffmpeg)")
    report(progress, 0.0, f"Exporting {target.name}")
    with atomic_path(target) as tmp:
        if exe:
            _ffmpeg_cut(exe, src, start, end, tmp, progress, cancel)
        else:  # OpenCV picks the container from the extension, so write a .mp4 sibling first
            staged = tmp.with_name(tmp.name + ".mp4")
            try:
                _opencv_cut(src, start, end, staged, info.fps, progress, cancel)
                os.replace(staged, tmp)
            finally:
                staged.unlink(missing_ok=True)
    report(progress, 1.0, f"Exported {target.name}")
    return target


def _stamp(seconds: float) -> str:
    s = max(0, int(seconds))
    return f"{s // 3600}h{s // 60 % 60:02d}m{s % 60:02d}s" if s >= 3600 else f"{s // 60:02d}m{s % 60:02d}s"


def _ffmpeg_cut(
    exe: str,
    src: Path,
    start: float,
    end: float,
    tmp: Path,
    progress: ProgressCallback | None,
    cancel: CancelToken | None,
) -> None:
    errors = []
    for codec in ("libx264", "mpeg4"):  # some ffmpeg builds lack libx264
        try:
            _run_ffmpeg(_ffmpeg_args(exe, src, start, end, tmp, codec), end - start, progress, cancel)
            return
        except ExportError as exc:
            errors.append(str(exc))
            log.info("ffmpeg with %s failed: %s", codec, exc)
    raise ExportError(f"{src}: ffmpeg could not export the clip ({errors[-1]})")


def _ffmpeg_args(exe: str, src: Path, start: float, end: float, tmp: Path, codec: str) -> list[str]:
    quality = ["-preset", "veryfast", "-crf", "20"] if codec == "libx264" else ["-q:v", "3"]
    return [
        exe, "-hide_banner", "-nostdin", "-loglevel", "error", "-y",
        "-ss", f"{start:.3f}", "-i", str(src), "-t", f"{end - start:.3f}",
        "-map", "0:v:0", "-map", "0:a:0?",
        "-vf", "scale=trunc(iw/2)*2:trunc(ih/2)*2", "-pix_fmt", "yuv420p",
        "-c:v", codec, *quality, "-c:a", "aac", "-movflags", "+faststart",
        "-progress", "pipe:1", "-nostats", "-f", "mp4", str(tmp),
    ]  # fmt: skip


def _run_ffmpeg(
    args: list[str], duration: float, progress: ProgressCallback | None, cancel: CancelToken | None
) -> None:
    proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        for line in proc.stdout:
            if cancel is not None and cancel.cancelled:
                proc.kill()
                raise JobCancelled("cancelled by the user")
            key, _, value = line.strip().partition("=")
            if key == "out_time_us" and value.isdigit():
                report(progress, int(value) / 1e6 / max(duration, 1e-6), "Exporting clip")
        stderr = proc.stderr.read() if proc.stderr else ""
        if proc.wait() != 0:
            raise ExportError(stderr.strip().splitlines()[-1] if stderr.strip() else f"exit code {proc.returncode}")
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait()
        for stream in (proc.stdout, proc.stderr):
            if stream is not None:
                stream.close()


def _opencv_cut(
    src: Path,
    start: float,
    end: float,
    tmp: Path,
    fps: float,
    progress: ProgressCallback | None,
    cancel: CancelToken | None,
) -> None:
    cap = cv2.VideoCapture(str(src), cv2.CAP_FFMPEG)
    writer: cv2.VideoWriter | None = None
    try:
        if not cap.isOpened():
            raise MediaError(src, "cannot open as a video")
        first = round(start * fps)
        last = round(end * fps)  # exclusive
        cap.set(cv2.CAP_PROP_POS_FRAMES, first)
        position = int(cap.get(cv2.CAP_PROP_POS_FRAMES))
        while position < first and cap.grab():  # containers that cannot seek exactly
            position += 1
        for n in range(first, last):
            if n % 16 == 0:
                check_cancel(cancel)
                report(progress, (n - first) / max(1, last - first), "Exporting clip")
            ok, frame = cap.read()
            if not ok or frame is None:
                break
            if writer is None:
                h, w = frame.shape[:2]
                writer = cv2.VideoWriter(str(tmp), cv2.VideoWriter_fourcc(*"mp4v"), fps, (w, h))
                if not writer.isOpened():
                    raise ExportError(f"{tmp.parent}: OpenCV cannot write an mp4 clip here")
            writer.write(frame)
        if writer is None:
            raise ExportError(f"{src}: no frames between {start:.2f} and {end:.2f} s")
    except cv2.error as exc:
        raise ExportError(f"{src}: OpenCV failed while exporting ({exc})") from exc
    finally:
        if writer is not None:
            writer.release()
        cap.release()
