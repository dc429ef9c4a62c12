"""Text-to-video search: ANN candidates from the video and frame indexes, re-scored exactly.

Candidates are the union of the nearest whole-video vectors and the videos owning the nearest frames (so a
video whose one relevant moment is drowned in its average is still found). Each candidate is then scored
from its stored float16 vectors: the fusion of its video similarity and its best frame similarity, and the
best frame's time is where the player should open.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from engine.index.stores import ModelStores
from engine.library.library import Library
from engine.models.base import Encoder

VIDEO_WEIGHT = 0.5  # fused score = w * video similarity + (1 - w) * best frame similarity


class SearchError(RuntimeError):
    """The query cannot be answered (nothing indexed with this model, empty query); says what to do."""


@dataclass(frozen=True)
class VideoHit:
    video: str
    video_id: int
    score: float
    best_time: float
    video_score: float
    frame_score: float

    def to_json(self) -> dict[str, object]:
        return asdict(self)


class Searcher:
    """Answers queries against one library with one encoder; keeps the indexes open between queries."""

    def __init__(self, library: Library, encoder: Encoder) -> None:
        self.library = library
        self.encoder = encoder
        self._stores: ModelStores | None = None

    def stores(self) -> ModelStores:
        if self._stores is None:
            catalog, model_id = self.library.catalog, self.encoder.model_id
            if not len(catalog.live_keys(model_id, "video")):
                raise SearchError(
                    f"nothing is indexed with model {model_id} yet; run `scenefind index` (or pick the model "
                    "the library was indexed with)"
                )
            folder = self.library.paths.index_dir(model_id)
            self._stores = ModelStores.open(
                folder, catalog, model_id, self.encoder.dim, self.library.settings, readonly=True
            )
        return self._stores

    def close(self) -> None:
        if self._stores is not None:
            self._stores.close()
            self._stores = None

    def search_text(self, text: str, k: int = 10) -> list[VideoHit]:
        query = text.strip()
        if not query:
            raise SearchError("the query is empty; type what you are looking for")
        return self.search_vector(self.encoder.encode_texts([query])[0], k)

    def search_vector(self, query: np.ndarray, k: int = 10) -> list[VideoHit]:
        if k < 1:
            raise SearchError("k must be at least 1")
        stores, catalog, model_id = self.stores(), self.library.catalog, self.encoder.model_id
        video_keys, _ = stores.grains["video"].index.search(query, max(4 * k, 32))
        frame_keys, _ = stores.grains["frame"].index.search(query, max(20 * k, 128))
        candidates = set(catalog.videos_for_keys(model_id, "video", video_keys[0].tolist()).values())
        candidates |= set(catalog.videos_for_keys(model_id, "frame", frame_keys[0].tolist()).values())
        hits = [hit for vid in candidates if (hit := self._score(vid, query, stores)) is not None]
        hits.sort(key=lambda h: (-h.score, h.video))
        return hits[:k]

    def _score(self, video_id: int, query: np.ndarray, stores: ModelStores) -> VideoHit | None:
        catalog = self.library.catalog
        video = catalog.video(video_id)
        embedding = catalog.embedding_for(video_id, self.encoder.model_id)
        if video is None or embedding is None:
            return None
        frames = catalog.frames_of(embedding)
        if not frames:
            return None
        q = np.asarray(query, dtype=np.float32)
        video_sim = float(stores.grains["video"].vectors.read(np.array([embedding]))[0] @ q)
        frame_sims = stores.grains["frame"].vectors.read(np.array([f["id"] for f in frames])) @ q
        best = int(np.argmax(frame_sims))
        frame_sim = float(frame_sims[best])
        score = VIDEO_WEIGHT * video_sim + (1 - VIDEO_WEIGHT) * frame_sim
        return VideoHit(video["path"], video_id, score, float(frames[best]["t"]), video_sim, frame_sim)
