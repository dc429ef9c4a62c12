"""Image preparation shared by indexing, search and the benchmarks: a still image (a query by example) read
as RGB and resized like a decoded frame, and the square centre crop every frame and image gets before the
encoder. One implementation, so a query image and an indexed frame reach the model prepared the same way."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from engine.media.decode import MediaError

IMAGE_EXTENSIONS = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff"})


def read_image(path: Path | str, short_side: int | None = None) -> np.ndarray:
    """(H, W, 3) uint8 RGB with the short side resized to ``short_side``; MediaError names the file."""
    import cv2  # here, not at the top: indexing imports this module for centre_crop and decodes no stills

    p = Path(path)
    if not p.is_file():
        raise MediaError(p, "no such file")
    data = np.fromfile(p, dtype=np.uint8)  # cv2.imread cannot open some unicode paths on Windows
    image = cv2.imdecode(data, cv2.IMREAD_COLOR) if data.size else None
    if image is None:
        raise MediaError(p, "not an image OpenCV can read (jpeg, png, bmp, webp, tiff)")
    if short_side:
        h, w = image.shape[:2]
        scale = short_side / min(h, w)
        size = (max(short_side, round(w * scale)), max(short_side, round(h * scale)))
        image = cv2.resize(image, size, interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_CUBIC)
    return np.ascontiguousarray(cv2.cvtColor(image, cv2.COLOR_BGR2RGB))


def centre_crop(image: np.ndarray, side: int) -> np.ndarray:
    """Square centre crop of an image whose short side is already ``side``."""
    h, w = image.shape[:2]
    top, left = max(0, (h - side) // 2), max(0, (w - side) // 2)
    return np.ascontiguousarray(image[top : top + side, left : left + side])
