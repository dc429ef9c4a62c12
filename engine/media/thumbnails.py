"""Cached thumbnails for the GUI's result grid: one JPEG per (file version, time, size) on disk.

A result grid shows dozens of moments; decoding each again on every search would make scrolling slow, so
a thumbnail is written once under the user cache and found by a key made of the file's path, size and
modification time (a changed file gets new thumbnails) plus the rounded time and the size asked for.
Writes are atomic so two GUI workers asking for the same frame never leave a torn file.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import cv2
import numpy as np

from engine.atomic import atomic_path
from engine.media.decode import MediaError, frame_at
from engine.paths import cache_home

DEFAULT_SIZE = (320, 180)  # (w, h): 16:9 cells in the grid
_TIME_GRAIN_S = 0.1  # thumbnails closer in time than this share a file
_THUMB_DECODE_SIDE = 360  # the decoder scales to this short side (a 4K frame never converts at full size)


def thumbnail_dir() -> Path:
    """Where thumbnails live: ``<user cache>/thumbnails`` (``SCENEFIND_CACHE`` overrides the cache)."""
    return cache_home() / "thumbnails"


def thumbnail_key(video: Path | str, t: float, size: tuple[int, int] = DEFAULT_SIZE) -> str:
    """Cache key of a thumbnail: changes when the file changes (size or mtime) so stale images are not shown."""
    p = Path(video)
    try:
        st = p.stat()
        version = f"{st.st_size}:{st.st_mtime_ns}"
    except OSError as exc:
        raise MediaError(p, f"cannot read it: {exc.strerror or exc}") from exc
    grain = round(max(0.0, t) / _TIME_GRAIN_S)
    text = f"{p.resolve()}|{version}|{grain}|{size[0]}x{size[1]}"
    return hashlib.sha1(text.encode("utf-8")).hexdigest()


def thumbnail(
    video: Path | str, t: float, *, size: tuple[int, int] = DEFAULT_SIZE, cache_dir: Path | None = None
) -> Path:
    """Path of a JPEG showing ``video`` at ``t`` seconds, letterboxed into ``size``; decoded once, then cached.

    Raises ``MediaError`` naming the file when it cannot be opened or has no frame near ``t``.
    """
    p = Path(video)
    folder = cache_dir or thumbnail_dir()
    key = thumbnail_key(p, t, size)
    target = folder / key[:2] / f"{key}.jpg"
    if target.is_file() and target.stat().st_size > 0:
        return target
    frame = _frame_at(p, t)
    image = _letterbox(frame, size)
    ok, data = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, 85])
    if not ok:
        raise MediaError(p, f"cannot encode a thumbnail at {t:.1f} s")
    with atomic_path(target) as tmp:
        tmp.write_bytes(data.tobytes())
    return target


def clear_cache(cache_dir: Path | None = None) -> int:
    """Delete every cached thumbnail; returns how many files were removed."""
    folder = cache_dir or thumbnail_dir()
    removed = 0
    for path in folder.glob("*/*.jpg"):
        try:
            os.remove(path)
            removed += 1
        except OSError:
            continue
    return removed


def _frame_at(path: Path, t: float) -> np.ndarray:
    """The BGR picture shown at ``t`` (upright, tone-mapped when HDR), decoded by ``engine.media.decode``."""
    if not path.is_file():
        raise MediaError(path, "file not found")
    rgb = frame_at(path, max(0.0, t), short_side=_THUMB_DECODE_SIDE)
    return np.ascontiguousarray(rgb[..., ::-1])


def _letterbox(frame: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Fit ``frame`` inside ``size`` keeping its aspect ratio, on a dark background."""
    width, height = size
    h, w = frame.shape[:2]
    scale = min(width / w, height / h)
    nw, nh = max(1, round(w * scale)), max(1, round(h * scale))
    resized = cv2.resize(frame, (nw, nh), interpolation=cv2.INTER_AREA)
    canvas = np.full((height, width, 3), 24, dtype=np.uint8)
    y, x = (height - nh) // 2, (width - nw) // 2
    canvas[y : y + nh, x : x + nw] = resized
    return canvas
