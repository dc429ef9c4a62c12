"""Videos whose every picture shows its own presentation time, in the formats people have (tests, benchmarks).

A decoder test needs ground truth it can read back from any codec, at any bit depth, after tone mapping and
rotation: each picture is a red band across its top (which way is up) over a 4x4 grid of black and white
cells spelling its time in centiseconds (``read_clock``). Big flat cells survive every lossy codec. The
pictures are drawn with NumPy at a small size and written by the ``ffmpeg`` program (Debian package
``ffmpeg``), which scales them up, encodes them (H.264, HEVC 8/10-bit, AV1, VP9, MJPEG), makes them HDR (PQ
or HLG, BT.2020), variable-rate, rotated (display matrix) or adds subtitle, data and audio streams.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np

from engine.media.decode import MediaError
from engine.media.synthetic import run_ffmpeg

Codec = Literal["h264", "hevc", "av1", "vp9", "mjpeg"]
HDR = Literal["pq", "hlg"]
_BITS = 16
_BAND = 0.2  # share of the height taken by the red "this way up" band
_ENCODERS: dict[str, list[str]] = {
    "h264": ["-c:v", "libx264", "-preset", "ultrafast", "-crf", "20"],
    "hevc": ["-c:v", "libx265", "-preset", "ultrafast", "-crf", "22", "-tag:v", "hvc1"],
    "av1": ["-c:v", "libsvtav1", "-preset", "12", "-crf", "35"],
    "vp9": ["-c:v", "libvpx-vp9", "-deadline", "realtime", "-cpu-used", "8", "-row-mt", "1", "-b:v", "0"],
    "mjpeg": ["-c:v", "mjpeg", "-q:v", "4"],
}


@dataclass(frozen=True)
class RateStep:
    """Frames at ``fps`` until ``until_s`` (for variable-frame-rate files)."""

    until_s: float
    fps: float


def ffmpeg_available() -> bool:
    return shutil.which("ffmpeg") is not None


def clock_picture(t: float, size: tuple[int, int] = (160, 90)) -> np.ndarray:
    """(h, w, 3) uint8 RGB picture showing ``t``: a red band on top, then 16 cells of ``round(t * 100)``."""
    w, h = size
    code = round(t * 100) % (1 << _BITS)
    image = np.zeros((h, w, 3), dtype=np.uint8)
    band = max(1, round(h * _BAND))
    image[:band] = (220, 30, 30)
    rows, cols = _cells(w, h)
    for bit in range(_BITS):
        if code >> (_BITS - 1 - bit) & 1:
            r, c = divmod(bit, 4)
            image[rows[r] : rows[r + 1], cols[c] : cols[c + 1]] = 235
    return image


def read_clock(image: np.ndarray) -> float | None:
    """The time shown by an upright ``clock_picture`` (any size or codec), or None when the red band is not on top
    (the picture is on its side or upside down) or the cells cannot be read."""
    h, w = image.shape[:2]
    band = image[: max(1, round(h * _BAND * 0.8))].reshape(-1, 3).astype(np.float32)
    r, g, b = np.median(band, axis=0)
    if not (r > 120 and r > 2 * g and r > 2 * b):
        return None
    rows, cols = _cells(w, h)
    luma = image.astype(np.float32) @ np.array([0.299, 0.587, 0.114], dtype=np.float32)
    code = 0
    for bit in range(_BITS):
        rr, cc = divmod(bit, 4)
        y0, y1, x0, x1 = rows[rr], rows[rr + 1], cols[cc], cols[cc + 1]
        dy, dx = (y1 - y0) // 4, (x1 - x0) // 4
        value = float(np.median(luma[y0 + dy : y1 - dy, x0 + dx : x1 - dx]))
        if 70 < value < 150:
            return None  # neither black nor white: not a clock picture
        code = code << 1 | (value >= 110)
    return code / 100.0


def _cells(w: int, h: int) -> tuple[list[int], list[int]]:
    band = max(1, round(h * _BAND))
    rows = [band + round(i * (h - band) / 4) for i in range(5)]
    cols = [round(i * w / 4) for i in range(5)]
    return rows, cols


def write_clock_video(
    path: Path | str,
    duration_s: float,
    *,
    fps: float = 30.0,
    size: tuple[int, int] = (320, 180),
    codec: Codec = "h264",
    gop_s: float | None = 1.0,
    ten_bit: bool = False,
    hdr: HDR | None = None,
    rates: Sequence[RateStep] = (),
    rotation: int = 0,
    subtitles: bool = False,
    data_stream: bool = False,
    audio: bool = False,
) -> Path:
    """Write a clock video (see the module docstring) and return its path; the container follows the suffix.

    ``gop_s`` is the keyframe interval (None: the encoder's default, a long GOP with scene-cut keyframes).
    ``rates`` makes a variable-rate file: ``RateStep(4, 30), RateStep(8, 10), RateStep(12, 60)`` is 30 fps
    for 4 s, then 10, then 60 (keyframes are then placed by time, every ``gop_s``). ``size`` is the stored
    picture; with ``rotation`` (90 or 270) the picture is drawn upright the other way round and stored on its
    side with a display matrix that turns it upright, as phones store portrait video. ``hdr`` writes 10-bit
    BT.2020 PQ or HLG (HEVC) whose tone-mapped picture is the SDR one.
    """
    if not ffmpeg_available():
        raise MediaError(path, "writing test videos needs the ffmpeg program (Debian package `ffmpeg`)")
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    source_fps = max([fps, *(r.fps for r in rates)])
    shown = size if rotation % 180 == 0 else (size[1], size[0])
    small = (160, max(2, round(160 * shown[1] / shown[0]))) if shown[0] >= shown[1] else (
        max(2, round(160 * shown[0] / shown[1])), 160)  # fmt: skip
    frames = _frames(duration_s, source_fps, small, rotation, hdr)
    height, width = next(_frames(0.0, 1.0, small, rotation, hdr)).shape[:2]
    args = ["-f", "rawvideo", "-pix_fmt", "rgb48le" if hdr else "rgb24", "-s", f"{width}x{height}"]
    args += ["-r", f"{source_fps:g}", "-i", "-"]
    if subtitles:
        args += ["-i", str(_subtitle_file(p, duration_s))]
    if audio:
        args += ["-f", "lavfi", "-i", f"sine=frequency=330:duration={duration_s:g}"]
    vf = [f"scale={size[0]}:{size[1]}:flags=neighbor"]
    if rates:
        vf.insert(0, f"select='{_select(rates, source_fps)}'")
    if hdr:
        vf.append("scale=out_color_matrix=bt2020:out_range=limited")
    args += ["-vf", ",".join(vf), "-map", "0:v"]
    args += ["-map", "1:s"] if subtitles else []
    args += ["-map", f"{1 + subtitles}:a", "-c:a", "aac"] if audio else []
    args += _ENCODERS[codec]
    x265 = ["log-level=error"]
    args += _gop_args(codec, gop_s, fps, bool(rates), x265)
    args += ["-pix_fmt", _pix_fmt(codec, ten_bit or bool(hdr))]
    if rates:
        args += ["-fps_mode", "vfr"]
    if hdr:
        trc = "smpte2084" if hdr == "pq" else "arib-std-b67"
        args += ["-color_primaries", "bt2020", "-color_trc", trc, "-colorspace", "bt2020nc"]
        x265 += ["colorprim=bt2020", f"transfer={trc}", "colormatrix=bt2020nc"]
    if codec == "hevc":
        args += ["-x265-params", ":".join(x265)]
    if subtitles:
        args += ["-c:s", "srt" if p.suffix.lower() == ".mkv" else "mov_text"]
    if data_stream:
        args += ["-timecode", "00:00:00:00"]
    if p.suffix.lower() in (".mp4", ".mov", ".m4v"):
        args += ["-movflags", "+faststart"]  # the index first, as cameras that can be cut off mid-file do
    target = p.with_name(f".{p.stem}.tmp{p.suffix}") if rotation else p
    run_ffmpeg([*args, str(target)], frames, p)
    if rotation:
        run_ffmpeg(["-i", str(target), "-map", "0", "-c", "copy", "-metadata:s:v:0", f"rotate={rotation}", str(p)])
        target.unlink()
    return p


def write_sound_file(path: Path | str, duration_s: float = 2.0) -> Path:
    """A file with sound only (the codec follows the suffix: .m4a/.mp4 AAC, .mp3, .wav, .ogg)."""
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    codec = {".mp3": "libmp3lame", ".wav": "pcm_s16le", ".ogg": "libvorbis", ".opus": "libopus"}
    args = ["-f", "lavfi", "-i", f"sine=frequency=440:duration={duration_s:g}"]
    run_ffmpeg([*args, "-c:a", codec.get(p.suffix.lower(), "aac"), str(p)])
    return p


def _frames(
    duration_s: float, fps: float, small: tuple[int, int], rotation: int, hdr: HDR | None
) -> Iterator[np.ndarray]:
    count = max(1, round(duration_s * fps))
    for n in range(count):
        picture = clock_picture(n / fps, small)
        if rotation:  # stored so that turning it ``rotation`` degrees counter-clockwise shows it upright
            picture = np.ascontiguousarray(np.rot90(picture, k=-(rotation // 90)))
        yield _to_hdr(picture, hdr) if hdr else picture


def _to_hdr(rgb: np.ndarray, hdr: HDR) -> np.ndarray:
    """SDR sRGB -> 16-bit BT.2020 PQ or HLG whose display light is the SDR picture at 203-nit reference white."""
    from engine.media.tonemap import REFERENCE_WHITE_NITS

    srgb = rgb.astype(np.float32) / 255.0
    linear = np.where(srgb <= 0.04045, srgb / 12.92, ((srgb + 0.055) / 1.055) ** 2.4)
    to2020 = np.array([[0.6274, 0.3293, 0.0433], [0.0691, 0.9195, 0.0114], [0.0164, 0.0880, 0.8956]], np.float32)
    nits = (linear @ to2020.T) * REFERENCE_WHITE_NITS
    if hdr == "pq":
        y = np.power(nits / 10000.0, 0.1593017578125)
        signal = np.power((0.8359375 + 18.8515625 * y) / (1 + 18.6875 * y), 78.84375)
    else:  # invert the 1000-nit OOTF on each channel (exact for greys, close for colours), then the OETF
        scene = np.power(np.maximum(nits / 1000.0, 0.0), 1 / 1.2)
        a, b, c = 0.17883277, 0.28466892, 0.55991073
        signal = np.where(scene <= 1 / 12, np.sqrt(3 * scene), a * np.log(np.maximum(12 * scene - b, 1e-6)) + c)
    return np.ascontiguousarray((np.clip(signal, 0, 1) * 65535 + 0.5).astype("<u2"))


def _select(rates: Sequence[RateStep], source_fps: float) -> str:
    """An ffmpeg ``select`` expression keeping every k-th source frame while each rate step lasts."""
    expr = "1"
    for step in reversed(rates):
        k = max(1, round(source_fps / step.fps))
        expr = f"if(lt(t\\,{step.until_s:g})\\,not(mod(n\\,{k}))\\,{expr})"
    return expr


def _gop_args(codec: str, gop_s: float | None, fps: float, vfr: bool, x265: list[str]) -> list[str]:
    """Encoder arguments for a keyframe every ``gop_s`` (x265's go into ``x265``, its one parameter string)."""
    if gop_s is None or codec == "mjpeg":
        return []
    if vfr:  # a GOP in frames would be a different length at each rate: place keyframes by time
        x265 += ["scenecut=0"]
        return ["-force_key_frames", f"expr:gte(t,n_forced*{gop_s:g})", "-g", "100000", "-sc_threshold", "0"]
    frames = max(1, round(gop_s * fps))
    if codec == "h264":
        return ["-g", str(frames), "-keyint_min", str(frames), "-sc_threshold", "0"]
    if codec == "hevc":
        x265 += [f"keyint={frames}", f"min-keyint={frames}", "scenecut=0"]
        return []
    return ["-g", str(frames)]


def _pix_fmt(codec: str, ten_bit: bool) -> str:
    if codec == "mjpeg":
        return "yuvj420p"
    return "yuv420p10le" if ten_bit else "yuv420p"


def _subtitle_file(path: Path, duration_s: float) -> Path:
    srt = path.with_suffix(".srt")
    end = f"00:00:{min(59.0, duration_s):06.3f}".replace(".", ",")
    srt.write_text(f"1\n00:00:00,000 --> {end}\nA subtitle line\n", encoding="utf-8")
    return srt
