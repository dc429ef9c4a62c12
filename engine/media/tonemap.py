"""HDR (PQ and HLG, BT.2020) frames to SDR BT.709 for the image encoder: a simple, documented operator.

CLIP-style encoders were trained on SDR photos. An HDR phone clip shown as if it were SDR looks washed out and
desaturated (PQ code values are not gamma values, BT.2020 primaries are wider than BT.709's), so its frames
would embed unlike the same scene filmed in SDR. The operator, applied to small frames (a few ms):

1. decode the transfer function to display light in nits: PQ (SMPTE ST 2084) directly; HLG (ARIB STD-B67)
   through its inverse OETF and the BT.2100 OOTF for a 1000-nit display (system gamma 1.2);
2. express luminance relative to HDR reference white (203 nits, ITU-R BT.2408) and tone-map it: identity up
   to a knee at 0.75, then an extended Reinhard shoulder that is C1-continuous at the knee and maps the
   assumed 1000-nit mastering peak to SDR white. RGB is scaled by the luminance ratio, which keeps hue;
3. convert BT.2020 primaries to BT.709 (linear 3x3 matrix), clip out-of-gamut colours, apply the sRGB curve.
"""

from __future__ import annotations

from typing import Literal

import numpy as np

Transfer = Literal["pq", "hlg"]
REFERENCE_WHITE_NITS = 203.0
PEAK_NITS = 1000.0
_KNEE = 0.75
_BT2020_LUMA = np.array([0.2627, 0.6780, 0.0593], dtype=np.float32)
_BT2020_TO_BT709 = np.array(
    [[1.6605, -0.5876, -0.0728], [-0.1246, 1.1329, -0.0083], [-0.0182, -0.1006, 1.1187]], dtype=np.float32
)
# SMPTE ST 2084 constants
_M1, _M2 = 2610 / 16384, 2523 / 4096 * 128
_C1, _C2, _C3 = 3424 / 4096, 2413 / 4096 * 32, 2392 / 4096 * 32
# ARIB STD-B67 constants
_HLG_A, _HLG_B, _HLG_C = 0.17883277, 0.28466892, 0.55991073


def transfer_of(color_trc: int) -> Transfer | None:
    """The HDR transfer named by an FFmpeg ``color_trc`` code (16: SMPTE ST 2084, 18: ARIB STD-B67), or None."""
    return {16: "pq", 18: "hlg"}.get(int(color_trc))


def pq_to_nits(e: np.ndarray) -> np.ndarray:
    """PQ signal in [0, 1] to display light in nits (0-10000)."""
    p = np.power(np.clip(e, 0.0, 1.0), 1.0 / _M2)
    return 10000.0 * np.power(np.maximum(p - _C1, 0.0) / (_C2 - _C3 * p), 1.0 / _M1)


def hlg_to_nits(e: np.ndarray, peak: float = PEAK_NITS) -> np.ndarray:
    """HLG signal (H, W, 3) in [0, 1] to display light in nits on a ``peak``-nit display (BT.2100 OOTF)."""
    e = np.clip(e, 0.0, 1.0)
    scene = np.where(e <= 0.5, e * e / 3.0, (np.exp((e - _HLG_C) / _HLG_A) + _HLG_B) / 12.0)
    luma = np.maximum(scene @ _BT2020_LUMA, 1e-6)[..., None]
    return peak * np.power(luma, 0.2) * scene


def tone_curve(ratio: np.ndarray, peak_ratio: float = PEAK_NITS / REFERENCE_WHITE_NITS) -> np.ndarray:
    """Luminance relative to reference white -> SDR luminance in [0, 1] (identity, then a Reinhard shoulder)."""
    s = np.maximum(ratio - _KNEE, 0.0) / (1.0 - _KNEE)
    s_max = (peak_ratio - _KNEE) / (1.0 - _KNEE)
    shoulder = _KNEE + (1.0 - _KNEE) * s * (1.0 + s / (s_max * s_max)) / (1.0 + s)
    return np.minimum(np.where(ratio <= _KNEE, ratio, shoulder), 1.0)


def tone_map(rgb16: np.ndarray, transfer: Transfer) -> np.ndarray:
    """(H, W, 3) uint16 non-linear BT.2020 RGB (full range) -> (H, W, 3) uint8 sRGB/BT.709."""
    e = rgb16.astype(np.float32) / 65535.0
    nits = pq_to_nits(e) if transfer == "pq" else hlg_to_nits(e)
    linear = nits / REFERENCE_WHITE_NITS
    luma = np.maximum(linear @ _BT2020_LUMA, 1e-6)[..., None]
    mapped = linear * (tone_curve(luma) / luma)
    bt709 = np.clip(mapped @ _BT2020_TO_BT709.T, 0.0, 1.0)
    srgb = np.where(bt709 <= 0.0031308, 12.92 * bt709, 1.055 * np.power(bt709, 1.0 / 2.4) - 0.055)
    return np.ascontiguousarray((srgb * 255.0 + 0.5).astype(np.uint8))
