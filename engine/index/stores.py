"""The three grains' vector stores of one model, kept in step with the catalog.

Each grain (video, segment, frame) has a float16 vector file for exact re-scoring; the video and segment grains
also have an HNSW graph for candidates (``engine.index.ann_store``: usearch, int8). Frames have no graph of
their own: search reaches them through their segments and videos and re-scores every frame of a candidate
video from the float16 file, which finds the same moments at less than half the bytes (``scenefind bench
search --library`` measures both layouts). Beside them, as the index's ``layout.json`` records
(``engine.index.layout``): a head model's per-frame context vectors (``context.f16``, keyed by frame keys, no
graph) and a concept head's sparse codes (``<grain>.codes.u16``, and ``context.codes.u16``). Side rows are
written and flushed with the vectors (``flush_written``, all files at once), before the catalog transaction
that names them, so they are exactly as crash-safe; they need no reconciling, since only keys the catalog
names are ever read.

The catalog is the source of truth: every vector change bumps the model's generation in the
same transaction that commits the rows. Indexes are saved now and then with the generation they reflect;
when one is opened at another generation (a crash or kill since the last save, or a removal while another
model was active) it is reconciled: keys the catalog has but the index lacks are added back from the
vector file (which is flushed before each commit), and keys the catalog no longer has are marked deleted.

Index folders written before the graphs moved to usearch hold hnswlib files (``<grain>.hnsw`` and
``<grain>.meta.json``, a frame graph among them). They are derived data, so opening such a folder builds the new
graphs from the float16 files (a reconcile from nothing); a writer then saves them and deletes the old files
(``LEGACY_FILES``), a reader keeps its graphs in memory until a writer has done so.
"""

from __future__ import annotations

import logging
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from engine.index.ann_store import AnnStore
from engine.index.codes import CodeStore
from engine.index.errors import IndexCorrupt
from engine.index.layout import IndexLayout, read_layout, settle_layout, write_layout
from engine.index.vectors import SUFFIXES, VectorStore
from engine.library.catalog import GRAINS, Catalog, Grain, RemovedKeys
from engine.settings import EngineSettings

log = logging.getLogger(__name__)


ANN_GRAINS: tuple[Grain, ...] = ("video", "segment")  # the grains with a graph; frames are reached through them
LEGACY_SUFFIXES = (".hnsw", ".meta.json")  # hnswlib graphs of earlier releases, one per grain
_REBUILD_ROWS = 65536  # vectors read and added per step when a graph is filled from its vector file


@dataclass
class Grains:
    """Vectors of one grain, plus its graph when it has one (``ANN_GRAINS``)."""

    index: AnnStore | None
    vectors: VectorStore


def legacy_files(folder: Path) -> list[Path]:
    """The hnswlib graphs (and their meta files) an earlier release left in an index folder."""
    return [folder / f"{g}{suffix}" for g in GRAINS for suffix in LEGACY_SUFFIXES if (folder / f"{g}{suffix}").exists()]


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


def _open_vectors(
    folder: Path, name: str, dim: int, model_id: str, readonly: bool, dtype: str = "float16"
) -> VectorStore:
    """Open a grain's vectors (or a side store); the writer re-creates a file whose creation a kill cut short
    (data file written, header not yet): it holds no vector, since rows are written only once the header exists."""
    try:
        return VectorStore.open(
            folder, name, dim=dim, model_id=model_id, create=not readonly, readonly=readonly, dtype=dtype
        )
    except IndexCorrupt:
        data = folder / f"{name}.{SUFFIXES[dtype]}"
        if readonly or data.with_name(data.name + ".json").exists() or not _never_written(data):
            raise
        log.warning("%s: its creation was interrupted before any vector was stored; creating it again", data)
        data.unlink()
        return VectorStore.open(folder, name, dim=dim, model_id=model_id, dtype=dtype)


CONTEXT = "context"  # the side store of per-frame context vectors, keyed like the frame grain


class ModelStores:
    """All stores of one model in one library folder."""

    def __init__(
        self,
        folder: Path,
        model_id: str,
        dim: int,
        grains: dict[Grain, Grains],
        layout: IndexLayout | None = None,
        context: VectorStore | None = None,
        codes: dict[str, CodeStore] | None = None,
    ) -> None:
        self.folder = folder
        self.model_id = model_id
        self.dim = dim
        self.grains = grains
        self.layout = layout or IndexLayout()
        self.context = context  # per-frame context vectors (head models), or None
        self.codes = codes or {}  # "video", "segment", "frame", "context" -> sparse codes, when stored
        self._unflushed: dict[int, VectorStore] = {}  # written since the last ``flush_written``

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
        layout: IndexLayout | None = None,
    ) -> ModelStores:
        """Open (or create) the stores and reconcile them with the catalog when their generation differs.

        ``layout`` is how the caller's model pools (``engine.index.layout.layout_for``): a writer records it on
        first use and refuses an index built another way (``IndexModelMismatch``), a reader refuses likewise.
        Without it the recorded layout is used as it is (removing folders, tools)."""
        folder.mkdir(parents=True, exist_ok=True)
        if not readonly:  # the writer (under the library lock) clears saves a kill or power cut interrupted
            for stale in folder.glob(".*.tmp"):
                stale.unlink(missing_ok=True)
        grains = {
            grain: Grains(
                _open_graph(folder, grain, model_id, dim, settings),
                _open_vectors(folder, grain, dim, model_id, readonly),
            )
            for grain in GRAINS
        }
        legacy = legacy_files(folder)
        have = read_layout(folder)
        if have is None and len(catalog.live_keys(model_id, "video")):
            have = IndexLayout()  # vectors from before layout.json: mean-pooled, no codes
        if layout is None:
            chosen = have or IndexLayout()
        elif readonly:
            if have is not None:
                settle_layout(folder, model_id, have, layout)  # refuses an index pooled another way
            chosen = have or layout
        else:
            chosen = settle_layout(folder, model_id, have, layout)
            if chosen != read_layout(folder):
                write_layout(folder, chosen)
        context, codes = _open_side_stores(folder, model_id, dim, chosen, readonly)
        stores = cls(folder, model_id, dim, grains, chosen, context, codes)
        stores.reconcile(catalog)
        if legacy and not readonly:
            stores.migrate(catalog, legacy)
        return stores

    def migrate(self, catalog: Catalog, legacy: list[Path]) -> None:
        """Save the graphs just rebuilt from the vector files, then delete the earlier release's hnswlib files
        (in that order: a kill in between leaves both, and the next writer deletes the old ones)."""
        self.save(catalog)
        for path in legacy:
            path.unlink(missing_ok=True)
        log.info("%s: replaced the hnswlib graphs of an earlier release (%d files)", self.folder, len(legacy))

    def reconcile(self, catalog: Catalog) -> int:
        """Bring every index in line with the catalog; returns how many keys were added or deleted."""
        generation = catalog.generation(self.model_id)
        changed = 0
        for grain, g in self.grains.items():
            if g.index is None or g.index.extra.get("generation") == generation:
                continue
            want = catalog.live_keys(self.model_id, grain)
            have = g.index.keys()
            missing = np.setdiff1d(want, have, assume_unique=True)
            extra = np.setdiff1d(have, want, assume_unique=True)
            if len(extra):
                changed += g.index.mark_deleted(extra.tolist())
            if len(missing):
                g.vectors.refresh()
                for start in range(0, len(missing), _REBUILD_ROWS):  # bounded memory for a whole rebuild
                    part = missing[start : start + _REBUILD_ROWS]
                    g.index.add(g.vectors.read(part), part)
                changed += len(missing)
            g.index.extra["generation"] = generation
            if len(missing) or len(extra):
                log.info("reconciled %s index of %s: +%d -%d", grain, self.model_id, len(missing), len(extra))
        return changed

    def write_vectors(self, grain: Grain, keys: list[int], vectors: np.ndarray) -> None:
        """Store vectors; ``flush_written`` makes them durable before the catalog transaction that names them
        commits."""
        if keys:
            self._write(self.grains[grain].vectors, keys, vectors)

    def write_context(self, keys: list[int], vectors: np.ndarray) -> None:
        """Store the per-frame context vectors of frame ``keys``, like ``write_vectors``."""
        if keys:
            if self.context is None:
                raise ValueError(f"{self.folder}: this index stores no context vectors ({self.layout.label})")
            self._write(self.context, keys, vectors)

    def write_codes(self, name: str, keys: list[int], ids: np.ndarray, weights: np.ndarray) -> None:
        """Store the sparse codes of ``name``'s ``keys`` (a grain or ``context``), like ``write_vectors``; a
        no-op without codes."""
        store = self.codes.get(name)
        if keys and store is not None:
            store.write(np.asarray(keys, dtype=np.int64), ids, weights)
            self._unflushed[id(store.vectors)] = store.vectors

    def _write(self, store: VectorStore, keys: list[int], vectors: np.ndarray) -> None:
        store.write(np.asarray(keys, dtype=np.int64), vectors)
        self._unflushed[id(store)] = store

    def flush_written(self) -> None:
        """Make every file written since the last call durable; call before committing the rows that name them.
        The files' fsyncs run at once: a journalling file system commits them together (six files in a row
        took 35 ms here, at once 4 ms, each video's cost with a fast encoder)."""
        pending = list(self._unflushed.values())
        self._unflushed = {}
        if len(pending) == 1:
            pending[0].flush()
        elif pending:
            with ThreadPoolExecutor(len(pending), thread_name_prefix="scenefind-fsync") as pool:
                list(pool.map(VectorStore.flush, pending))

    def add_to_indexes(self, grain: Grain, keys: list[int], vectors: np.ndarray) -> None:
        """Add to ``grain``'s graph; a no-op for a grain without one (frames)."""
        index = self.grains[grain].index
        if keys and index is not None:
            index.add(vectors, np.asarray(keys, dtype=np.int64))

    def mark_removed(self, removed: RemovedKeys) -> None:
        for grain, keys in removed.by_model.get(self.model_id, {}).items():
            index = self.grains[grain].index
            if keys and index is not None:
                index.mark_deleted(keys)

    def save(self, catalog: Catalog) -> None:
        """Save every index atomically, recording the catalog generation it now reflects (and the pooling)."""
        generation = catalog.generation(self.model_id)
        for g in self.grains.values():
            if g.index is not None:
                g.index.extra["generation"] = generation
                g.index.extra["pooling"] = self.layout.label
                g.index.save()

    def close(self) -> None:
        for g in self.grains.values():
            g.vectors.close()
        if self.context is not None:
            self.context.close()
        for store in self.codes.values():
            store.close()


def _open_graph(folder: Path, grain: Grain, model_id: str, dim: int, settings: EngineSettings) -> AnnStore | None:
    """``grain``'s graph (None for frames): loaded, or new and marked unreconciled (generation -1) so that the
    reconcile that follows fills it from the vector file. A new one is what a folder of an earlier release
    (hnswlib graphs), a corrupt graph file and a fresh index all get."""
    if grain not in ANN_GRAINS:
        return None
    params = {
        "model_id": model_id,
        "dim": dim,
        "m": settings.hnsw_m,
        "ef_construction": settings.hnsw_ef_construction,
        "ef_search": settings.hnsw_ef_search,
    }
    try:
        return AnnStore.open_or_create(folder, grain, **params)
    except IndexCorrupt as exc:
        # The graph is derived data: rebuild it from the vector file rather than refuse to work.
        log.warning("%s; rebuilding it from the stored vectors", exc)
    index = AnnStore.create(folder, grain, **params)
    index.extra["generation"] = -1
    return index


def _open_side_stores(
    folder: Path, model_id: str, dim: int, layout: IndexLayout, readonly: bool
) -> tuple[VectorStore | None, dict[str, CodeStore]]:
    """The context vectors and code stores ``layout`` says this index has (created by a writer)."""
    context = _open_vectors(folder, CONTEXT, dim, model_id, readonly) if layout.context else None
    codes: dict[str, CodeStore] = {}
    if layout.code_k:
        for name in (*GRAINS, *((CONTEXT,) if layout.context else ())):
            rows = _open_vectors(folder, f"{name}.codes", 2 * layout.code_k, model_id, readonly, "uint16")
            codes[name] = CodeStore(rows, layout.code_k)
    return context, codes
