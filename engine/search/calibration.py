"""Scores people can trust: a 0-100 relevance per model, and a default cutoff so junk is not shown.

Raw cosine similarities mean different things for different models, queries and videos (a busy video is
"similar" to everything a little). Relevance therefore compares a query's score on a video with the scores
that unrelated everyday captions (``resources/calibration/background_captions.txt``) get on the same video:
``z = (s_query - mean_background) / std_background`` and ``relevance = 100 * Φ(z - Z_MID)``. A query no
better than a typical unrelated caption lands near 2; one that beats the background by ``Z_MID`` standard
deviations lands at 50. Visual queries (an image, a clip, a moment) are judged against the query's own
scores on a random sample of the library instead, since captions are no background for a picture.
"""

from __future__ import annotations

import contextlib
import hashlib
import math
from pathlib import Path

import numpy as np

from engine.atomic import atomic_path
from engine.models.base import Encoder

BACKGROUND_FILE = Path(__file__).resolve().parents[2] / "resources" / "calibration" / "background_captions.txt"
Z_MID = 2.0
DEFAULT_CUTOFF = 30.0  # about 1.5 standard deviations above unrelated captions
# Models whose vectors carry no meaning (random weights): no cutoff, since every score is noise alike.
UNCALIBRATED_PREFIXES = ("test-tiny", "random:", "fake:hash", "scratch:")


def background_captions(path: Path = BACKGROUND_FILE) -> list[str]:
    lines = path.read_text(encoding="utf-8").splitlines()
    return [line.strip() for line in lines if line.strip() and not line.startswith("#")]


def relevance(z: np.ndarray | float) -> np.ndarray:
    """Map standardised scores to 0-100 (normal CDF shifted by ``Z_MID``)."""
    z = np.asarray(z, dtype=np.float64)
    erf = np.vectorize(math.erf, otypes=[np.float64])
    return 100.0 * 0.5 * (1.0 + erf((z - Z_MID) / math.sqrt(2.0)))


def standardise(score: np.ndarray | float, background: np.ndarray) -> np.ndarray:
    """z of ``score`` against background scores along the last axis."""
    bg = np.asarray(background, dtype=np.float64)
    return (np.asarray(score, dtype=np.float64) - bg.mean(axis=-1)) / np.maximum(bg.std(axis=-1), 1e-3)


def default_cutoff(model_id: str) -> float:
    return 0.0 if model_id.startswith(UNCALIBRATED_PREFIXES) else DEFAULT_CUTOFF


class Background:
    """The background captions' vectors for one encoder, computed once and cached beside its index."""

    def __init__(self, encoder: Encoder, cache_dir: Path | None = None, path: Path = BACKGROUND_FILE) -> None:
        self.encoder = encoder
        self.cache_dir = cache_dir
        self.path = path
        self._vectors: np.ndarray | None = None

    def vectors(self) -> np.ndarray:
        if self._vectors is None:
            captions = background_captions(self.path)
            digest = hashlib.sha1("\n".join([self.encoder.model_id, *captions]).encode()).hexdigest()[:12]
            cached = self.cache_dir / f"background-{digest}.npy" if self.cache_dir else None
            if cached is not None and cached.exists():
                self._vectors = np.load(cached)
            else:
                self._vectors = np.asarray(self.encoder.encode_texts(captions), dtype=np.float32)
                if cached is not None and cached.parent.is_dir():
                    # A read-only library still searches; it just re-encodes next time.
                    with contextlib.suppress(OSError), atomic_path(cached) as tmp, open(tmp, "wb") as fh:
                        np.save(fh, self._vectors)
        return self._vectors
