"""An encoder known by its id and width, built only when something must be encoded.

``scenefind index`` with nothing new and ``scenefind search`` with a cached query vector never run the model,
yet building an open_clip encoder imports torch, torchvision and transformers (seconds). ``LazyEncoder`` stands
in for it: ``model_id`` and ``dim`` come from the catalog (the model indexed this library before), and the
real encoder is made on the first ``encode_*`` call, or when anything else about it is asked.

It stands only for plain open_clip models (``engine.models.identity`` tells their ids): they have no concept
head, no temporal head and no calibration captions of their own (only trained runs have those), which is why
``concepts``, ``temporal``, ``calibration_captions`` and ``word_scorer`` can be answered without building them.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from engine.models.base import Encoder, EncoderIdentity, ModelUnavailable


class LazyEncoder(EncoderIdentity):
    """The ``Encoder`` protocol over an encoder that ``build`` makes on first use (once, thread-safely)."""

    concepts = None  # plain open_clip models have no concept head ...
    temporal = None  # ... and no temporal head (so search and indexing need not build them to ask)
    calibration_captions: tuple[str, ...] = ()  # ... and no training captions: search uses the everyday ones
    word_scorer = None  # ... and were not trained with the word-frame score (engine.models.base.words_of)

    def __init__(self, model_id: str, dim: int, build: Callable[[], Encoder]) -> None:
        self._model_id, self._dim, self._build = model_id, int(dim), build
        self._encoder: Encoder | None = None
        self._lock = threading.Lock()

    @property
    def built(self) -> bool:
        """Whether the real encoder exists yet (tests and benchmarks check that nothing was built)."""
        return self._encoder is not None

    def real(self) -> Encoder:
        """The encoder itself, built now if needed; its id must be the one this stand-in promised."""
        with self._lock:
            if self._encoder is None:
                encoder = self._build()
                if encoder.model_id != self._model_id or encoder.dim != self._dim:  # e.g. a checkpoint rewritten
                    raise ModelUnavailable(  # since its id was read: never mix two models' vectors
                        f"the model changed while in use: it was {self._model_id} ({self._dim}-d) and is now "
                        f"{encoder.model_id} ({encoder.dim}-d); run the command again"
                    )
                self._encoder = encoder
            return self._encoder

    @property
    def image_size(self) -> int:
        return self.real().image_size

    @property
    def device(self) -> str:
        return self.real().device

    def encode_images(self, frames: np.ndarray) -> np.ndarray:
        return self.real().encode_images(frames)

    def encode_texts(self, texts: Sequence[str]) -> np.ndarray:
        return self.real().encode_texts(texts)

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__") or name in {"_encoder", "_lock", "_build", "_model_id", "_dim"}:
            raise AttributeError(name)
        return getattr(self.real(), name)

    def __repr__(self) -> str:
        return f"LazyEncoder({self._model_id!r}, built={self.built})"
