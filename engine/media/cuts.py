"""Shot-cut scoring on tiny thumbnails (NumPy only, so cut detection loads no image library).

A signature is a 32x18 area-averaged RGB thumbnail: cheap to make from a frame the decoder scales down
anyway, and averaging removes sensor and compression noise. ``cut_score`` compares two signatures with the
geometric mean of a colour-histogram distance and a pixel distance: motion and camera pans move pixels but
keep the histogram; noise and lighting flicker nudge the histogram across bin edges but barely move the
averaged pixels; a cut changes both. Both halves are kept from the OpenCV version this replaces (same HSV
bins: 8 hue, 4 saturation, 4 value), so its threshold of 0.3 still holds.
"""

from __future__ import annotations

import math

import numpy as np

SIGNATURE_SIZE = (32, 18)  # (w, h)
_H_BINS, _S_BINS, _V_BINS = 8, 4, 4


def signature(rgb: np.ndarray) -> np.ndarray:
    """(18, 32, 3) uint8 area average of an RGB image at least 32x18 (block means; edges trimmed to fit)."""
    w, h = SIGNATURE_SIZE
    if rgb.shape[0] < h or rgb.shape[1] < w:
        rows = np.linspace(0, rgb.shape[0] - 1, h).round().astype(int)
        cols = np.linspace(0, rgb.shape[1] - 1, w).round().astype(int)
        return np.ascontiguousarray(rgb[rows][:, cols])
    bh, bw = rgb.shape[0] // h, rgb.shape[1] // w
    top, left = (rgb.shape[0] - bh * h) // 2, (rgb.shape[1] - bw * w) // 2
    blocks = rgb[top : top + bh * h, left : left + bw * w].reshape(h, bh, w, bw, 3)
    return blocks.mean(axis=(1, 3)).round().astype(np.uint8)


def cut_score(a: np.ndarray, b: np.ndarray) -> float:
    """Shot-change score in [0, 1] between two signatures (see the module docstring)."""
    hist_d = 0.5 * float(np.abs(_hsv_hist(a) - _hsv_hist(b)).sum())
    pix_d = float(np.abs(a.astype(np.int16) - b.astype(np.int16)).mean()) / 255.0
    return math.sqrt(max(0.0, hist_d) * pix_d)


def is_cut(a: np.ndarray, b: np.ndarray, threshold: float) -> bool:
    """``cut_score(a, b) >= threshold``, without the histograms when the pixels alone rule a cut out (the
    histogram distance is at most 1, so a score reaches ``threshold`` only if the pixel distance reaches its
    square): most probes of a continuous shot stop there."""
    pix_d = float(np.abs(a.astype(np.int16) - b.astype(np.int16)).mean()) / 255.0
    return pix_d >= threshold * threshold and cut_score(a, b) >= threshold


def _hsv_hist(rgb: np.ndarray) -> np.ndarray:
    """Normalised 8x4x4 histogram of hue (0-180, OpenCV's scale), saturation and value (0-255)."""
    x = rgb.reshape(-1, 3).astype(np.float32)
    r, g, b = x[:, 0], x[:, 1], x[:, 2]
    v = x.max(axis=1)
    span = v - x.min(axis=1)
    s = np.where(v > 0, 255.0 * span / np.maximum(v, 1e-6), 0.0)
    safe = np.maximum(span, 1e-6)
    h = np.where(v == r, (g - b) / safe, np.where(v == g, 2.0 + (b - r) / safe, 4.0 + (r - g) / safe))
    h = np.where(span > 0, (h * 30.0) % 180.0, 0.0)  # 60 degrees a sextant, halved as OpenCV stores it
    hi = np.minimum((h * _H_BINS / 180.0).astype(int), _H_BINS - 1)
    si = np.minimum((s * _S_BINS / 256.0).astype(int), _S_BINS - 1)
    vi = np.minimum((v * _V_BINS / 256.0).astype(int), _V_BINS - 1)
    hist = np.bincount((hi * _S_BINS + si) * _V_BINS + vi, minlength=_H_BINS * _S_BINS * _V_BINS)
    return hist.astype(np.float64) / max(1, len(x))
