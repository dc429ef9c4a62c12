"""The three grains' vector stores of one model, kept in step with the catalog.

Each grain (video, segment, frame) has an HNSW index for candidates and a float16 vector file for exact
re-scoring. The catalog is the source of truth: every vector change bumps the model's generation in the
same transaction that commits the rows. Indexes are saved now and then with the generation they reflect;
when one is opened at another generation (a crash or kill since the last save, or a removal while another
model was active) it is reconciled: keys the catalog has but the index lacks are added back from the
vector file (which is flushed before each commit), and keys the catalog no longer has are marked deleted.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from engine.index.errors import IndexCorrupt
from engine.index.hnsw_store import HnswStore
from engine.index.vectors import VectorStore
from engine.library.catalog import GRAINS, Catalog, Grain, RemovedKeys
from engine.settings import EngineSettings

log = logging.getLogger(__name__)


@dataclass
class Grains:
    """Index plus vectors of one grain."""

    index: HnswStore
    vectors: VectorStore


def _never_written(data: Path) -> bool:
    """Whether a vector file holds only zeros, as ``VectorStore`` creation leaves it before the header."""
    try:
        with open(data, "rb") as fh:
            while chunk := fh.read(1 << 20):
                if chunk.strip(b"\0"):
                    return False
    except OSError:
        return False
    return True


def _open_vectors(folder: Path, grain: Grain, dim: int, model_id: str, readonly: bool) -> VectorStore:
    """Open a grain's vectors; the writer re-creates a file whose creation a kill cut short (data file
    written, header not yet): it holds no vector, since rows are written only once the header exists."""
    try:
        return VectorStore.open(folder, grain, dim=dim, model_id=model_id, create=not readonly, readonly=readonly)
    except IndexCorrupt:
        data = folder / f"{grain}.f16"
        if readonly or data.with_name(data.name + ".json").exists() or not _never_written(data):
            raise
        log.warning("%s: its creation was interrupted before any vector was stored; creating it again", data)
        data.unlink()
        return VectorStore.open(folder, grain, dim=dim, model_id=model_id)


class ModelStores:
    """All stores of one model in one library folder."""

    def __init__(self, folder: Path, model_id: str, dim: int, grains: dict[Grain, Grains]) -> None:
        self.folder = folder
        self.model_id = model_id
        self.dim = dim
        self.grains = grains

    @classmethod
    def open(
        cls,
        folder: Path,
        catalog: Catalog,
        model_id: str,
        dim: int,
        settings: EngineSettings,
        *,
        readonly: bool = False,
    ) -> ModelStores:
        """Open (or create) the stores and reconcile them with the catalog when their generation differs."""
        folder.mkdir(parents=True, exist_ok=True)
        if not readonly:  # the writer (under the library lock) clears saves a kill or power cut interrupted
            for stale in folder.glob(".*.tmp"):
                stale.unlink(missing_ok=True)
        grains: dict[Grain, Grains] = {}
        for grain in GRAINS:
            vectors = _open_vectors(folder, grain, dim, model_id, readonly)
            params = {
                "model_id": model_id,
                "dim": dim,
                "m": settings.hnsw_m,
                "ef_construction": settings.hnsw_ef_construction,
                "ef_search": settings.hnsw_ef_search,
            }
            try:
                index = HnswStore.open_or_create(folder, grain, **params)
            except IndexCorrupt as exc:
                # The index is derived data: rebuild it from the vector file rather than refuse to work.
                log.warning("%s; rebuilding it from the stored vectors", exc)
                index = HnswStore.create(folder, grain, **params)
                index.extra["generation"] = -1
            grains[grain] = Grains(index, vectors)
        stores = cls(folder, model_id, dim, grains)
        stores.reconcile(catalog)
        return stores

    def reconcile(self, catalog: Catalog) -> int:
        """Bring every index in line with the catalog; returns how many keys were added or deleted."""
        generation = catalog.generation(self.model_id)
        changed = 0
        for grain, g in self.grains.items():
            if g.index.extra.get("generation") == generation:
                continue
            want = catalog.live_keys(self.model_id, grain)
            have = g.index.keys()
            missing = np.setdiff1d(want, have, assume_unique=True)
            extra = np.setdiff1d(have, want, assume_unique=True)
            if len(extra):
                changed += g.index.mark_deleted(extra.tolist())
            if len(missing):
                g.vectors.refresh()
                g.index.add(g.vectors.read(missing), missing)
                changed += len(missing)
            g.index.extra["generation"] = generation
            if len(missing) or len(extra):
                log.info("reconciled %s index of %s: +%d -%d", grain, self.model_id, len(missing), len(extra))
        return changed

    def write_vectors(self, grain: Grain, keys: list[int], vectors: np.ndarray) -> None:
        """Store vectors durably (flushed) before the catalog transaction that names them commits."""
        if keys:
            store = self.grains[grain].vectors
            store.write(np.asarray(keys, dtype=np.int64), vectors)
            store.flush()

    def add_to_indexes(self, grain: Grain, keys: list[int], vectors: np.ndarray) -> None:
        if keys:
            self.grains[grain].index.add(vectors, np.asarray(keys, dtype=np.int64))

    def mark_removed(self, removed: RemovedKeys) -> None:
        for grain, keys in removed.by_model.get(self.model_id, {}).items():
            if keys:
                self.grains[grain].index.mark_deleted(keys)

    def save(self, catalog: Catalog) -> None:
        """Save every index atomically, recording the catalog generation it now reflects."""
        generation = catalog.generation(self.model_id)
        for g in self.grains.values():
            g.index.extra["generation"] = generation
            g.index.save()

    def close(self) -> None:
        for g in self.grains.values():
            g.vectors.close()
