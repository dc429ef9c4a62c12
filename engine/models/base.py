"""The ``Encoder`` protocol every model satisfies (after Immich's ModelSession).

Frames arrive as RGB ``uint8`` arrays already resized by the decoder so that their short side equals
``image_size``; the encoder centre-crops, normalises and embeds them. Outputs are float32 and
L2-normalised, so cosine similarity is a dot product everywhere downstream.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

import numpy as np


class ModelUnavailable(RuntimeError):
    """The model cannot be loaded (unknown name, no weights offline, bad checkpoint); says how to fix it."""


class WeightsUnavailable(ModelUnavailable):
    """A model's weights are not on this computer and could not be downloaded (offline, hub unreachable).

    The message is the command line's advice; ``model`` (the ``arch/tag``) and ``reason`` (what the download
    ran into) let the desktop app say the same in its own words and offer its own ways out."""

    def __init__(self, message: str, *, model: str = "", reason: str = "") -> None:
        super().__init__(message)
        self.model = model
        self.reason = reason


class UnknownModel(ModelUnavailable):
    """No model has this name (a typo, an unknown architecture or weights tag); the message suggests close ones,
    and the CLI adds where the whole list is (``scenefind models``)."""


@runtime_checkable
class Encoder(Protocol):
    """A text/image embedding model."""

    @property
    def model_id(self) -> str:
        """Stable id recorded in indexes; two encoders with the same id produce the same vectors."""
        ...

    @property
    def dim(self) -> int:
        """Embedding width."""
        ...

    @property
    def image_size(self) -> int:
        """Side of the square input the model wants; the decoder resizes short sides to this."""
        ...

    @property
    def device(self) -> str:
        """Where the model runs (``cpu``, ``cuda``, ``cuda:1``, ``mps``)."""
        ...

    def encode_images(self, frames: np.ndarray) -> np.ndarray:
        """(N, H, W, 3) uint8 RGB -> (N, dim) float32, rows L2-normalised."""
        ...

    def encode_texts(self, texts: Sequence[str]) -> np.ndarray:
        """N strings -> (N, dim) float32, rows L2-normalised."""
        ...


class EncoderIdentity:
    """The ``Encoder`` protocol's descriptive half (model id, dimension, input size, device) for encoders to
    inherit, so each one only sets the four values and implements the two ``encode_*`` methods."""

    _model_id: str
    _dim: int
    _image_size: int
    _device: str = "cpu"

    @property
    def model_id(self) -> str:
        return self._model_id

    @property
    def dim(self) -> int:
        return self._dim

    @property
    def image_size(self) -> int:
        return self._image_size

    @property
    def device(self) -> str:
        return self._device


@dataclass(frozen=True)
class ConceptBank:
    """A model's sparse concept head (losses.md §2): concept vectors and a word for each.

    An encoder that has one exposes it as ``concepts``; indexing stores every vector's sparse code and search
    adds the sparse similarities to its fusion and explains hits by the concepts query and video share.
    ``basis`` is the ``Z`` of the sparse embedding ``x^s = π(x)ᵀZ`` when it is not ``vectors`` (a trained
    concept head's concepts are not unit vectors, and §2 embeds with them as trained)."""

    vectors: np.ndarray  # (n_c, D), rows L2-normalised
    words: tuple[str, ...]  # one label per concept (its most typical word)
    tau: float = 0.05
    top_k: int = 16
    basis: np.ndarray | None = None

    @property
    def n_concepts(self) -> int:
        return int(self.vectors.shape[0])

    @property
    def k(self) -> int:
        """Concepts kept per code: ``top_k``, at most all of them."""
        return min(self.top_k, self.n_concepts)


def concepts_of(encoder: object) -> ConceptBank | None:
    """The encoder's concept head, or None for models without one."""
    bank = getattr(encoder, "concepts", None)
    return bank if isinstance(bank, ConceptBank) else None


@runtime_checkable
class TemporalPooling(Protocol):
    """A model's temporal head at index time (``encoder.temporal``; None or absent: mean pooling).

    Segment and video vectors of such a model are its head's output over the window's frames in time order,
    fed exactly as in training: the image tower's raw features (``frame_features``; ``encode_images`` is their
    L2 normalisation), ``n_frames`` of them per window. ``windows`` says how a window with another number of
    frames is fitted (``engine.indexing.head_pooling``)."""

    @property
    def n_frames(self) -> int:
        """Frames per clip the head was trained on."""
        ...

    @property
    def windows(self) -> str:
        """``resample``, ``pad`` or ``slide`` (``engine.settings.HEAD_WINDOWS``)."""
        ...

    def frame_features(self, frames: np.ndarray) -> np.ndarray:
        """(N, H, W, 3) uint8 RGB -> (N, dim) float32 raw tower features (not normalised)."""
        ...

    def pool(self, features: np.ndarray, mask: np.ndarray) -> np.ndarray:
        """Raw features (B, F, dim) in time order with a validity mask (B, F) -> (B, dim) L2-normalised."""
        ...


def temporal_of(encoder: object) -> TemporalPooling | None:
    """The encoder's temporal head when indexing pools through it, else None (mean pooling)."""
    temporal = getattr(encoder, "temporal", None)
    return temporal if isinstance(temporal, TemporalPooling) else None


@runtime_checkable
class WordScoring(Protocol):
    """A model trained to compare a caption with a clip word by word (losses.md §1.4's ``s_fine``, the component
    objectives' training score): search re-scores text queries with it (``engine.search.word_scores``)."""

    @property
    def n_frames(self) -> int:
        """Frames per clip the model was trained on: the window the word score is taken over."""
        ...

    @property
    def windows(self) -> str:
        """How a window is fitted to ``n_frames`` (``TemporalPooling.windows``)."""
        ...

    def encode_words(self, texts: Sequence[str]) -> list[np.ndarray]:
        """Per text, its content tokens' unit vectors (L_i, dim) in the joint space, as training saw them."""
        ...

    def head_outputs(self, frames: np.ndarray, mask: np.ndarray) -> np.ndarray:
        """Unit frame vectors (B, F, dim) in time order with a validity mask (B, F) -> the temporal head's
        per-frame outputs (B, F, dim), unit rows: the frames the word score was trained against."""
        ...


def words_of(encoder: object) -> WordScoring | None:
    """The encoder's word scorer (a run trained with the fine score, pooled through its head), else None: mean
    pooling drops the head whose per-frame output that score was trained on. Read as an attribute, as
    ``temporal_of`` reads ``temporal``, so wrappers that forward attributes (``CachedTexts``) keep it."""
    scorer = getattr(encoder, "word_scorer", None)
    return scorer if isinstance(scorer, WordScoring) and temporal_of(encoder) is not None else None


def pooled_model_id(base: str, pooling: str, windows: str) -> str:
    """The id of a head model's vectors under a pooling choice: ``base`` for the default (through the head,
    windows resampled), ``base+pad`` / ``base+slide`` for the other window handling, ``base+mean`` when mean
    pooling is forced. Each is its own index, so the choices coexist in one library and never mix."""
    if pooling == "mean":
        return f"{base}+mean"
    return base if windows == "resample" else f"{base}+{windows}"


def l2_normalise(x: np.ndarray) -> np.ndarray:
    """Row-wise L2 normalisation that leaves all-zero rows at zero instead of NaN."""
    x = np.asarray(x, dtype=np.float32)
    norms = np.linalg.norm(x, axis=-1, keepdims=True)
    return x / np.maximum(norms, 1e-12)


def check_frames(frames: np.ndarray) -> np.ndarray:
    """Validate the ``encode_images`` input, so a wrong shape fails with a message instead of deep in torch."""
    frames = np.asarray(frames)
    if frames.ndim != 4 or frames.shape[-1] != 3:
        raise ValueError(f"frames must be an (N, H, W, 3) RGB array, not shape {frames.shape}")
    if frames.dtype != np.uint8:
        raise ValueError(f"frames must be uint8 RGB, not {frames.dtype}")
    return frames
