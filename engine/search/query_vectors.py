"""Turn a ``Query`` into vectors: text, an image file, a clip file (or a span of it), or an indexed moment.

Visual queries are embedded the way indexed frames are (same resize and crop), and a clip or moment is pooled
the way indexed windows are, so "more like this" compares like with like: through the model's temporal head
(``engine.indexing.head_pooling``) when it has one, else as the normalised mean of its frame vectors.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from engine.index.stores import ModelStores
from engine.indexing.head_pooling import pool_windows, window_slots
from engine.library.catalog import Catalog
from engine.media.decode import sample_frames
from engine.media.images import centre_crop, read_image
from engine.models.base import Encoder, l2_normalise, temporal_of
from engine.search.query import MomentRef, Query

MAX_QUERY_CHARS = 2000  # CLIP reads 77 tokens; a longer query is cut rather than refused


class QueryError(ValueError):
    """The query cannot be turned into a vector; the message says what to change."""


def clean_text(text: str) -> str:
    """Strip control characters and surrounding space; refuse an empty query."""
    cleaned = "".join(ch if ch.isprintable() else " " for ch in text).strip()
    if not cleaned:
        raise QueryError("the query is empty; type what you are looking for")
    return " ".join(cleaned.split())[:MAX_QUERY_CHARS]


def _clip_vector(encoder: Encoder, path: Path, span: tuple[float, float] | None, every_s: float) -> np.ndarray:
    side = encoder.image_size
    sampled = [
        (f.t, centre_crop(f.image, side))
        for f in sample_frames(path, every_s, cuts=False, short_side=side)
        if span is None or span[0] <= f.t <= span[1]
    ]
    if not sampled:
        raise QueryError(f"{path}: no frame in the requested span")
    frames = np.stack([image for _, image in sampled])
    temporal = temporal_of(encoder)
    if temporal is None:
        return l2_normalise(encoder.encode_images(frames).mean(axis=0, keepdims=True))[0]
    times = np.array([t for t, _ in sampled])
    start, end = span if span is not None else (float(times[0]), float(times[-1]))
    mode = "pad" if temporal.windows == "pad" else "resample"
    slots = window_slots(times, np.arange(len(times)), start, end, temporal.n_frames, mode)
    return pool_windows(temporal, temporal.frame_features(frames), slots[None])[0]


def _moment_vector(catalog: Catalog, stores: ModelStores, model_id: str, moment: MomentRef) -> np.ndarray:
    embedding = catalog.embedding_for(moment.video_id, model_id)
    if embedding is None:
        raise QueryError(f"video {moment.video_id} is not indexed with {model_id}")
    frames = catalog.frames_of(embedding)
    keys = [f["id"] for f in frames if moment.start <= f["t"] <= moment.end]
    if not keys:  # a span shorter than the sampling step: take the nearest frame
        keys = [min(frames, key=lambda f: abs(f["t"] - (moment.start + moment.end) / 2))["id"]]
    store = stores.context if stores.context is not None else stores.grains["frame"].vectors  # the head's view
    vectors = store.read(np.asarray(keys))
    return l2_normalise(vectors.mean(axis=0, keepdims=True))[0]


def query_vector(
    query: Query, encoder: Encoder, catalog: Catalog, stores: ModelStores, every_s: float = 1.0
) -> np.ndarray:
    """The (D,) vector of a query."""
    kind = query.kind()
    if kind == "text":
        return encoder.encode_texts([clean_text(query.text or "")])[0]
    if kind == "image":
        image = centre_crop(read_image(Path(query.image or ""), encoder.image_size), encoder.image_size)
        return encoder.encode_images(image[None])[0]
    if kind == "clip":
        return _clip_vector(encoder, Path(query.clip or ""), query.clip_span, every_s)
    assert query.moment is not None
    return _moment_vector(catalog, stores, encoder.model_id, query.moment)


def exclude_terms(query: Query) -> list[str]:
    """The query's excluded terms as they are encoded, blank ones left out: row i + 1 of a search's query matrix."""
    return [clean_text(t) for t in query.exclude if t.strip()]


def exclude_vectors(query: Query, encoder: Encoder) -> np.ndarray:
    terms = exclude_terms(query)
    if not terms:
        return np.zeros((0, encoder.dim), dtype=np.float32)
    return encoder.encode_texts(terms)
