"""Deterministic weightless encoders for tests (after rclip's FakeInferenceSession).

``fake:color`` makes search *meaningful* without weights: an image becomes a soft histogram of its pixels over
16 named colours, and a text becomes the colours it names, so "a red scene" ranks red frames above blue ones
and end-to-end tests can assert real rankings. ``fake:hash-N`` only has to be stable and cheap: a fixed
random projection of an 8x8 thumbnail and hashed word vectors, for pipeline tests that care about plumbing.
Both use NumPy alone and give the same vectors in every process.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence

import numpy as np

from engine.models.base import ConceptBank, EncoderIdentity, UnknownModel, check_frames, l2_normalise

# Prototype colours in RGB; the order fixes the vector layout.
COLOURS: dict[str, tuple[int, int, int]] = {
    "red": (220, 30, 30),
    "orange": (245, 140, 20),
    "yellow": (240, 225, 40),
    "lime": (150, 230, 50),
    "green": (30, 150, 50),
    "teal": (20, 128, 128),
    "cyan": (40, 210, 230),
    "blue": (30, 70, 220),
    "navy": (20, 25, 100),
    "purple": (120, 50, 170),
    "magenta": (220, 40, 200),
    "pink": (250, 165, 195),
    "brown": (120, 70, 30),
    "white": (245, 245, 245),
    "grey": (128, 128, 128),
    "black": (12, 12, 12),
}
SYNONYMS: dict[str, str] = {
    "crimson": "red", "scarlet": "red", "ruby": "red",
    "amber": "orange", "tangerine": "orange",
    "gold": "yellow", "golden": "yellow", "lemon": "yellow",
    "chartreuse": "lime",
    "emerald": "green", "olive": "green",
    "turquoise": "teal",
    "aqua": "cyan", "aquamarine": "cyan",
    "azure": "blue", "cobalt": "blue", "sapphire": "blue",
    "indigo": "navy",
    "violet": "purple", "lavender": "purple", "lilac": "purple",
    "fuchsia": "magenta",
    "rose": "pink",
    "chocolate": "brown", "tan": "brown",
    "ivory": "white", "snow": "white",
    "gray": "grey", "silver": "grey",
    "ebony": "black",
}  # fmt: skip
_PROTOTYPES = np.array(list(COLOURS.values()), dtype=np.float32) / 255.0
_TEMPERATURE = 0.02  # squared RGB distance; a pure prototype pixel puts >99% of its mass on its own colour
_MAX_GRID = 32
_WORD = re.compile(r"[a-z0-9]+")


def _grid(frames: np.ndarray, side: int) -> np.ndarray:
    """Pick at most ``side`` x ``side`` evenly spaced pixels per frame (fast, deterministic downscale)."""
    _, height, width, _ = frames.shape
    ys = ((np.arange(min(side, height)) + 0.5) * height / min(side, height)).astype(np.intp)
    xs = ((np.arange(min(side, width)) + 0.5) * width / min(side, width)).astype(np.intp)
    return frames[:, ys][:, :, xs]


def _seeded_vector(text: str, dim: int, salt: str) -> np.ndarray:
    seed = int.from_bytes(hashlib.blake2b(f"{salt}:{text}".encode(), digest_size=8).digest(), "little")
    return np.random.default_rng(seed).standard_normal(dim).astype(np.float32)


class _FakeEncoder(EncoderIdentity):
    """What both fakes share: fixed metadata, CPU only."""

    def __init__(self, model_id: str, dim: int, image_size: int) -> None:
        self._model_id = model_id
        self._dim = dim
        self._image_size = image_size

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self._model_id!r})"


class ColorEncoder(_FakeEncoder):
    """Colour histograms for images, named colours for texts: dim 16, meaningful rankings."""

    def __init__(self) -> None:
        super().__init__("fake:color", len(COLOURS), 32)
        # The colour axes are this model's concepts: exact, so sparse search and "why" are testable.
        self.concepts = ConceptBank(np.eye(len(COLOURS), dtype=np.float32), tuple(COLOURS), tau=0.05, top_k=4)

    def encode_images(self, frames: np.ndarray) -> np.ndarray:
        frames = check_frames(frames)
        if len(frames) == 0:
            return np.zeros((0, self.dim), dtype=np.float32)
        pixels = _grid(frames, _MAX_GRID).reshape(len(frames), -1, 3).astype(np.float32) / 255.0
        dist2 = ((pixels[:, :, None, :] - _PROTOTYPES[None, None]) ** 2).sum(-1)
        logits = -(dist2 - dist2.min(-1, keepdims=True)) / _TEMPERATURE
        weights = np.exp(logits)
        weights /= weights.sum(-1, keepdims=True)
        return l2_normalise(weights.sum(1))

    def colours_in(self, text: str) -> list[str]:
        """The colour names a text mentions (synonyms and ``-ish`` forms resolved)."""
        found = []
        for word in _WORD.findall(text.lower()):
            word = word.removesuffix("ish") if word.endswith("ish") and len(word) > 5 else word
            name = word if word in COLOURS else SYNONYMS.get(word)
            if name is not None:
                found.append(name)
        return found

    def encode_texts(self, texts: Sequence[str]) -> np.ndarray:
        names = list(COLOURS)
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        for row, text in enumerate(texts):
            colours = self.colours_in(text)
            for name in colours:
                out[row, names.index(name)] += 1.0
            if not colours:  # near-uniform, so colourless queries rank by overall colourfulness, stably
                out[row] = 1.0 + 0.05 * np.tanh(_seeded_vector(text, self.dim, "color"))
        return l2_normalise(out)


class HashEncoder(_FakeEncoder):
    """Fixed random projection of an 8x8 thumbnail; hashed bag of words for text."""

    _SEED = 0x5CE9EF1D
    _THUMB = 8

    def __init__(self, dim: int) -> None:
        if not 1 <= dim <= 4096:
            raise ValueError(f"fake:hash dimension must be between 1 and 4096, not {dim}")
        super().__init__(f"fake:hash-{dim}", dim, 32)
        features = self._THUMB * self._THUMB * 3
        rng = np.random.default_rng(self._SEED)
        self._projection = (rng.standard_normal((features, dim)) / np.sqrt(features)).astype(np.float32)

    def encode_images(self, frames: np.ndarray) -> np.ndarray:
        frames = check_frames(frames)
        thumbs = _grid(frames, self._THUMB)
        if thumbs.shape[1:3] != (self._THUMB, self._THUMB):  # a frame smaller than 8 px: repeat pixels
            rows = np.arange(self._THUMB) * thumbs.shape[1] // self._THUMB
            cols = np.arange(self._THUMB) * thumbs.shape[2] // self._THUMB
            thumbs = thumbs[:, rows][:, :, cols]
        features = thumbs.reshape(len(frames), -1).astype(np.float32) / 255.0 - 0.5
        return l2_normalise(features @ self._projection)

    def encode_texts(self, texts: Sequence[str]) -> np.ndarray:
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        for row, text in enumerate(texts):
            words = _WORD.findall(text.lower()) or [text]
            for word in words:
                out[row] += _seeded_vector(word, self.dim, "hash")
        return l2_normalise(out)


def create_fake_encoder(name: str) -> ColorEncoder | HashEncoder:
    """``fake:color`` or ``fake:hash-N``; anything else is an ``UnknownModel`` naming the two forms. NumPy only, so
    building one is as cheap as telling its id (the registry imports open_clip only for the schemes that need it)."""
    kind, _, param = name.strip().removeprefix("fake:").partition("-")
    if kind == "color" and not param:
        return ColorEncoder()
    if kind == "hash" and param.isdigit():
        try:
            return HashEncoder(int(param))
        except ValueError as exc:
            raise UnknownModel(f"fake model {name!r}: {exc}") from exc
    raise UnknownModel(f"unknown fake model {name!r}; use fake:color or fake:hash-N (N = dimension)")
