"""Scores people can trust: a 0-100 relevance per model, and a default cutoff so junk is not shown.

Raw cosine similarities mean different things for different models and queries. Relevance therefore compares a
query's score with the scores that unrelated everyday captions (``resources/calibration/background_captions.txt``;
for a trained run, a sample of its own training captions, kept in its ``config.json``) get on a sample of the
library's videos: ``z = (s_query - mean) / std`` and ``relevance = 100 * Φ(z - Z_MID)``,
with the grand mean over the sample and the standard deviation *within* a video pooled over it (``Null``). A query
no better than a typical unrelated caption lands near 2; one that beats the background by ``Z_MID`` standard
deviations lands at 50. Visual queries (an image, a clip, a moment) are judged against the query's own scores on
the same sample instead, since captions are no background for a picture.

Why one null for every video of a search, and not each video against its own background (as before): a per-video
null re-orders what the model ranks: it judged a clip and its time-reversed twin against different backgrounds. On
the trained ``scratch:tiny`` runs of ``bench quality`` (same runs, same index, searched both ways) the list a user
got had video R@1 8.0 / 4.3 (InfoNCE / component negatives) where one null gives 25.0 / 21.3, colour-twin accuracy
66.5 / 66.5 → 81.0 / 85.5 and moment R1@0.5 40.0 / 30.0 → 65.0 / 52.5. With one null, relevance rises with the
score within a search, so the list follows both the number it shows and what training taught the model. What it
gives up is the per-video correction of a "busy" video that is a little similar to everything; the cutoff still
keeps such a video out of queries it only vaguely fits, but it no longer lists below a better-scoring one.
"""

from __future__ import annotations

import contextlib
import hashlib
import math
from collections.abc import Sequence
from dataclasses import dataclass
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


@dataclass(frozen=True)
class Null:
    """What one search's scores are judged against, the same for every video: video scores (``mean``, ``std``)
    and points of the similarity curve (``frame_mean``, ``frame_std``)."""

    mean: float
    std: float
    frame_mean: float
    frame_std: float

    def video(self, score: np.ndarray | float) -> np.ndarray:
        """Relevance of fused video scores."""
        return relevance((np.asarray(score, dtype=np.float64) - self.mean) / max(self.std, 1e-3))

    def frames(self, values: np.ndarray | float) -> np.ndarray:
        """Relevance of curve values (a frame, or the mean over a moment's frames)."""
        return relevance((np.asarray(values, dtype=np.float64) - self.frame_mean) / max(self.frame_std, 1e-3))


def background_null(fused: Sequence[np.ndarray], curves: Sequence[np.ndarray]) -> Null:
    """The background captions on a sample of videos: ``fused[i]`` (B,) their fused scores on video i, ``curves[i]``
    (B, F_i) their smoothed per-frame curves. The mean is the grand mean; the standard deviation is the one within
    a video (across captions) pooled over the sample, so a score lands where the per-video z of earlier releases
    put it on a typical video and ``DEFAULT_CUTOFF`` keeps its meaning."""
    if not fused:
        return Null(0.0, 1.0, 0.0, 1.0)
    scores = [np.asarray(f, dtype=np.float64) for f in fused]
    points = [np.asarray(c, dtype=np.float64) for c in curves if np.size(c)]
    frame_mean = float(np.mean([c.mean() for c in points])) if points else 0.0
    frame_var = float(np.mean([c.var(axis=0).mean() for c in points])) if points else 1.0
    return Null(
        mean=float(np.mean([f.mean() for f in scores])),
        std=math.sqrt(float(np.mean([f.var() for f in scores]))),
        frame_mean=frame_mean,
        frame_std=math.sqrt(frame_var),
    )


def sample_null(fused: np.ndarray, frame_sims: np.ndarray) -> Null:
    """A visual query's own scores on a sample of the library: its fused scores and its per-frame similarities."""
    f, s = np.asarray(fused, dtype=np.float64), np.asarray(frame_sims, dtype=np.float64)
    return Null(float(f.mean()), float(f.std()), float(s.mean()), float(s.std()))


def default_cutoff(model_id: str) -> float:
    return 0.0 if model_id.startswith(UNCALIBRATED_PREFIXES) else DEFAULT_CUTOFF


class Background:
    """The background captions' vectors for one encoder, computed once and cached beside its index."""

    def __init__(self, encoder: Encoder, cache_dir: Path | None = None, path: Path = BACKGROUND_FILE) -> None:
        self.encoder = encoder
        self.cache_dir = cache_dir
        self.path = path
        self._vectors: np.ndarray | None = None

    def captions(self) -> list[str]:
        """The encoder's own calibration captions (a trained run's sample of its training captions), else the
        everyday ones of ``path``."""
        own = getattr(self.encoder, "calibration_captions", ())
        return list(own) if own else background_captions(self.path)

    def vectors(self) -> np.ndarray:
        if self._vectors is None:
            captions = self.captions()
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
