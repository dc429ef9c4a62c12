"""One hnswlib index plus its ``meta.json`` (after hnswlib's ``examples/python/pyw_hnswlib.py``).

The graphs of index folders written before ``engine.index.ann_store`` (usearch, int8) replaced it: libraries
now keep no frame graph, and video and segment graphs are ``AnnStore`` files (an old folder is rebuilt from its
float16 files, ``engine.index.stores``). It stays because ``scenefind bench search`` measures that earlier
layout beside the current one in the same run, so the size and recall figures compare like with like.

Keys are the catalog's positive int64 row ids, used directly as hnswlib labels, so no key↔label map has to be
persisted or kept in step with the catalog. The meta file records which model built the vectors: loading under
another model raises ``IndexModelMismatch`` (rclip refuses likewise), because mixing embedding spaces silently
ruins every search. Saves are atomic, index first and meta second. hnswlib trusts the header of the file it
loads, so the header and the level-0 graph are checked here first and a torn or foreign file raises
``IndexCorrupt`` instead of crashing the process.
"""

from __future__ import annotations

import json
import logging
import os
import struct
import threading
from pathlib import Path
from typing import Any

import hnswlib
import numpy as np

from engine.atomic import atomic_write_bytes, atomic_write_with
from engine.index.errors import IndexCorrupt, refuse_foreign_index
from engine.index.vectors import Keys, as_keys, check_row_keys, check_vectors

log = logging.getLogger(__name__)

SCHEMA_VERSION = 1
SPACE = "cosine"
# HierarchicalNSW::saveIndex header: offsetLevel0, max_elements, cur_element_count, size_data_per_element,
# label_offset, offsetData (size_t), maxlevel (int), enterpoint_node (uint32), maxM, maxM0, M (size_t),
# mult (double), ef_construction (size_t). Native byte order, no padding: 96 bytes.
_HEADER = struct.Struct("=6QiI3QdQ")
_MAX_KEY = 2**63 - 1
_LOAD_TRIES = 3
_CHECK_ROWS = 65536  # level-0 rows checked per numpy block, to bound the temporary memory
_META_TYPES: dict[str, type] = {"model_id": str, "space": str} | dict.fromkeys(
    ("dim", "M", "ef_construction", "ef_search", "schema_version", "count"), int
)


def _read_header(path: Path) -> tuple[int, tuple[Any, ...]]:
    """(file size, the hnswlib header's fields); a file shorter than the header is corrupt."""
    try:
        size = path.stat().st_size
        with open(path, "rb") as fh:
            head = fh.read(_HEADER.size)
    except OSError as exc:
        raise IndexCorrupt(f"{path}: cannot read the index ({exc}); re-index") from exc
    if len(head) < _HEADER.size:
        raise IndexCorrupt(f"{path}: truncated ({size} bytes, shorter than the hnswlib header); re-index")
    return size, _HEADER.unpack(head)


def _inspect_index_file(path: Path, *, dim: int, m: int) -> tuple[np.ndarray, np.ndarray]:
    """Check an hnswlib file against its meta before hnswlib reads it; return its labels and deleted flags.

    Checks the header layout, the length the header implies, and that every level-0 link points at an
    existing element. hnswlib's own loader then walks the upper-level link lists against the file length.
    """
    size, header = _read_header(path)
    (off0, max_elements, count, per, label_off, off_data, max_level, entry, max_m, max_m0, m_file, _, _) = header
    links_bytes = max_m0 * 4 + 4
    if off0 != 0 or off_data != links_bytes or per != label_off + 8 or (label_off - off_data) % 4:
        raise IndexCorrupt(f"{path}: not an hnswlib index this release can read (bad header); re-index")
    file_dim = (label_off - off_data) // 4
    if file_dim != dim:
        raise IndexCorrupt(f"{path}: its meta.json says dim {dim} but the index holds {file_dim}-d vectors")
    if m_file != m or max_m != m or max_m0 != 2 * m:
        raise IndexCorrupt(f"{path}: its meta.json says M {m} but the index was built with M {m_file}")
    if count > max_elements or (count and (entry >= count or not 0 <= max_level < 256)):
        raise IndexCorrupt(f"{path}: inconsistent header (count {count}, capacity {max_elements}); re-index")
    if size < _HEADER.size + count * (per + 4):
        raise IndexCorrupt(f"{path}: truncated ({size} bytes for {count} vectors); re-index")
    if count == 0:
        return np.empty(0, np.int64), np.empty(0, bool)
    level0 = np.memmap(path, dtype=np.uint8, mode="r", offset=_HEADER.size, shape=(count, per))
    try:
        labels = np.ascontiguousarray(level0[:, label_off : label_off + 8]).view(np.uint64).ravel()
        deleted = (np.asarray(level0[:, 2]) & 1).astype(bool)  # DELETE_MARK in the link-count word
        n_links = np.ascontiguousarray(level0[:, 0:2]).view(np.uint16).ravel()
        if (n_links > max_m0).any():
            raise IndexCorrupt(f"{path}: corrupt level-0 links (count above {max_m0}); re-index")
        slots = np.arange(max_m0)
        for start in range(0, count, _CHECK_ROWS):
            block = np.ascontiguousarray(level0[start : start + _CHECK_ROWS, 4:links_bytes]).view(np.uint32)
            used = slots < n_links[start : start + _CHECK_ROWS, None]
            if (block[used] >= count).any():
                raise IndexCorrupt(f"{path}: corrupt level-0 links (neighbour out of range); re-index")
    finally:
        del level0
    if (labels == 0).any() or (labels > _MAX_KEY).any() or len(np.unique(labels)) != count:
        raise IndexCorrupt(f"{path}: labels are not distinct positive int64 keys; re-index")
    return labels.astype(np.int64), deleted


def _meta_before_first_save(index_path: Path, *, model_id: str, dim: int) -> dict[str, Any]:
    """The meta.json a store's *first* save did not get to write (a kill between the index's rename and its
    meta's): M comes from the index header, the model and dimension from the caller (the folder is the model's
    own). ``count`` −1 marks it lagging, and an empty ``extra`` has no generation, so the caller reconciles the
    index with the catalog, as after any lagging meta. Anything else wrong with the file is still caught by the
    checks that follow."""
    m_file = _read_header(index_path)[1][10]
    log.warning("%s has no meta.json yet (its first save was interrupted); rebuilding it", index_path)
    return {
        "schema_version": SCHEMA_VERSION,
        "model_id": model_id,
        "dim": dim,
        "space": SPACE,
        "M": int(m_file),
        "ef_construction": 0,
        "ef_search": 128,
        "count": -1,
        "extra": {},
    }


def _file_id(path: Path) -> tuple[int, ...] | None:
    """Identity of the file at ``path`` now: an atomic save renames a new inode in, so this changes."""
    try:
        st = os.stat(path)
    except OSError:
        return None
    return (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns)


def _read_meta(path: Path) -> dict[str, Any]:
    try:
        meta = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise IndexCorrupt(f"{path}: missing; re-index") from exc
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise IndexCorrupt(f"{path}: unreadable ({exc}); re-index") from exc
    if not isinstance(meta, dict):
        raise IndexCorrupt(f"{path}: not a JSON object; re-index")
    for key, kind in _META_TYPES.items():
        value = meta.get(key)
        if not isinstance(value, kind) or isinstance(value, bool):
            raise IndexCorrupt(f"{path}: field {key!r} missing or not a {kind.__name__} ({value!r}); re-index")
    if not isinstance(meta.setdefault("extra", {}), dict):
        raise IndexCorrupt(f"{path}: field 'extra' must be an object; re-index")
    return meta


class HnswStore:
    """An HNSW index over L2-normalised vectors keyed by catalog row ids, with its meta.json.

    Build with ``create``, ``load`` or ``open_or_create``. Every method holds one re-entrant lock, so a search
    from another thread never meets a half-done resize. Deleted keys stay in the graph (hnswlib keeps them
    for navigation) and still use capacity; re-adding one revives it with the new vector.
    """

    def __init__(self, folder: Path, name: str, index: hnswlib.Index, *, model_id: str, ef_search: int) -> None:
        self.folder = Path(folder)
        self.name = name
        self.model_id = model_id
        self.dim = int(index.dim)
        self.m = int(index.M)
        self.ef_construction = int(index.ef_construction)
        self.extra: dict[str, Any] = {}
        self.meta_stale = False  # set by load when meta.json lags its index (a crash between the two renames)
        self._index = index
        self._lock = threading.RLock()
        self._keys = np.empty(0, np.int64)  # every label in the index, sorted
        self._dead = np.empty(0, bool)  # aligned with _keys: marked deleted
        self._live = 0
        self._ef_search = int(ef_search)
        self._dirty = True

    @staticmethod
    def files(folder: Path, name: str) -> tuple[Path, Path]:
        """``(<name>.hnsw, <name>.meta.json)`` in ``folder``."""
        return Path(folder) / f"{name}.hnsw", Path(folder) / f"{name}.meta.json"

    @classmethod
    def create(
        cls,
        folder: Path,
        name: str,
        *,
        model_id: str,
        dim: int,
        m: int = 16,
        ef_construction: int = 200,
        ef_search: int = 128,
        capacity: int = 1024,
    ) -> HnswStore:
        """A new, empty store in memory; nothing is written until ``save``."""
        if not model_id:
            raise ValueError("model_id must not be empty")
        for label, value, low in (
            ("dim", dim, 1),
            ("m", m, 2),
            ("ef_construction", ef_construction, 1),
            ("ef_search", ef_search, 1),
            ("capacity", capacity, 1),
        ):
            if not isinstance(value, int) or value < low:
                raise ValueError(f"{label} must be an integer >= {low}, got {value!r}")
        index = hnswlib.Index(space=SPACE, dim=dim)
        index.init_index(max_elements=capacity, M=m, ef_construction=ef_construction, random_seed=100)
        index.set_ef(ef_search)
        return cls(folder, name, index, model_id=model_id, ef_search=ef_search)

    @classmethod
    def load(cls, folder: Path, name: str, *, model_id: str, dim: int | None = None) -> HnswStore:
        """Read a saved store; refuse another model's files and files that are torn or inconsistent."""
        index_path, meta_path = cls.files(folder, name)
        if not meta_path.exists() and index_path.is_file() and dim is not None:
            meta = _meta_before_first_save(index_path, model_id=model_id, dim=dim)
        else:
            meta = _read_meta(meta_path)
        refuse_foreign_index(index_path, meta["model_id"], meta["dim"], model_id, dim)
        if meta["schema_version"] > SCHEMA_VERSION:
            raise IndexCorrupt(
                f"{meta_path}: written by a newer Scenefind (schema {meta['schema_version']}, this release "
                f"reads up to {SCHEMA_VERSION}); upgrade Scenefind or re-index"
            )
        if meta["space"] != SPACE or meta["dim"] < 1 or meta["M"] < 2 or meta["ef_search"] < 1:
            raise IndexCorrupt(f"{meta_path}: unsupported space or parameters; re-index")
        if not index_path.is_file():
            raise IndexCorrupt(f"{index_path}: missing although {meta_path.name} exists; re-index")
        for attempt in range(_LOAD_TRIES):  # the check and hnswlib each open the file: both must see one file
            before = _file_id(index_path)
            try:
                labels, deleted = _inspect_index_file(index_path, dim=meta["dim"], m=meta["M"])
                index = hnswlib.Index(space=SPACE, dim=meta["dim"])
                try:
                    index.load_index(str(index_path), max_elements=0)
                except (RuntimeError, MemoryError) as exc:
                    raise IndexCorrupt(f"{index_path}: hnswlib cannot read it ({exc}); re-index") from exc
            except IndexCorrupt:
                if _file_id(index_path) == before or attempt == _LOAD_TRIES - 1:
                    raise
                continue  # a writer saved (renamed a new file in) while we read: read the new one
            if _file_id(index_path) == before:
                break
        else:
            raise IndexCorrupt(f"{index_path}: replaced by a writer on each of {_LOAD_TRIES} reads; try again")
        if index.element_count != len(labels):
            raise IndexCorrupt(f"{index_path}: hnswlib read {index.element_count} of {len(labels)} vectors")
        order = np.argsort(labels, kind="stable")
        store = cls(folder, name, index, model_id=model_id, ef_search=meta["ef_search"])
        store.extra = meta["extra"]
        store._keys, store._dead = labels[order], deleted[order]
        store._live = int(len(labels) - deleted.sum())
        store._dirty = False
        if meta["count"] != store._live or meta.get("element_count", len(labels)) != len(labels):
            store.meta_stale = True
            log.warning(
                "%s lags %s (count %d, index has %d live); its 'extra' may be from the save before",
                meta_path,
                index_path.name,
                meta["count"],
                store._live,
            )
        return store

    @classmethod
    def open_or_create(
        cls,
        folder: Path,
        name: str,
        *,
        model_id: str,
        dim: int,
        m: int = 16,
        ef_construction: int = 200,
        ef_search: int | None = None,
        capacity: int = 1024,
    ) -> HnswStore:
        """Load when either file exists, else create. ``m``/``ef_construction`` only shape a new graph;
        ``ef_search``, when given, overrides the saved value (it is a query-time knob)."""
        if any(path.exists() for path in cls.files(folder, name)):
            store = cls.load(folder, name, model_id=model_id, dim=dim)
            if ef_search is not None and ef_search != store.ef_search:
                store.ef_search = ef_search
            return store
        return cls.create(
            folder,
            name,
            model_id=model_id,
            dim=dim,
            m=m,
            ef_construction=ef_construction,
            ef_search=128 if ef_search is None else ef_search,
            capacity=capacity,
        )

    @property
    def path(self) -> Path:
        return self.files(self.folder, self.name)[0]

    @property
    def meta_path(self) -> Path:
        return self.files(self.folder, self.name)[1]

    @property
    def capacity(self) -> int:
        """Slots allocated; deleted keys keep theirs. ``add`` grows it by doubling."""
        with self._lock:
            return int(self._index.max_elements)

    @property
    def element_count(self) -> int:
        """Slots used, live and deleted."""
        with self._lock:
            return len(self._keys)

    @property
    def dirty(self) -> bool:
        """Changed since the last save or load."""
        return self._dirty

    @property
    def ef_search(self) -> int:
        return self._ef_search

    @ef_search.setter
    def ef_search(self, value: int) -> None:
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise ValueError(f"ef_search must be an integer >= 1, got {value!r}")
        with self._lock:
            self._ef_search = value
            self._dirty = True

    def __len__(self) -> int:
        return self._live

    def __repr__(self) -> str:
        return f"HnswStore({self.path}, model_id={self.model_id!r}, dim={self.dim}, live={self._live})"

    def _locate(self, keys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Positions of ``keys`` in ``_keys`` and whether each is there."""
        pos = np.searchsorted(self._keys, keys)
        found = pos < len(self._keys)
        found[found] = self._keys[pos[found]] == keys[found]
        return pos, found

    def keys(self) -> np.ndarray:
        """Live keys, sorted (int64)."""
        with self._lock:
            return self._keys[~self._dead].copy()

    def contains(self, key: int) -> bool:
        """Whether ``key`` is live (present and not deleted)."""
        with self._lock:
            pos, found = self._locate(np.array([key], np.int64))
            return bool(found[0] and not self._dead[pos[0]])

    def add(self, vectors: np.ndarray, keys: Keys) -> None:
        """Insert rows under ``keys``; an existing key (live or deleted) gets the new vector and is live."""
        vecs = check_vectors(vectors, self.dim)
        ks = as_keys(keys)
        if not check_row_keys(ks, len(vecs)):
            return
        if len(np.unique(ks)) != len(ks):
            raise ValueError("keys must be distinct within one add")
        with self._lock:
            pos, found = self._locate(ks)
            new = np.sort(ks[~found])
            needed = len(self._keys) + len(new)
            if needed > self._index.max_elements:
                self._index.resize_index(max(needed, 2 * self._index.max_elements))
            self._index.add_items(vecs, ks)  # hnswlib unmarks and updates labels it already holds
            revived = pos[found][self._dead[pos[found]]]
            self._dead[revived] = False
            self._live += len(revived) + len(new)
            if len(new) and (not len(self._keys) or new[0] > self._keys[-1]):
                self._keys = np.concatenate([self._keys, new])
                self._dead = np.concatenate([self._dead, np.zeros(len(new), bool)])
            elif len(new):
                merged = np.concatenate([self._keys, new])
                order = np.argsort(merged, kind="stable")
                self._keys = merged[order]
                self._dead = np.concatenate([self._dead, np.zeros(len(new), bool)])[order]
            self._dirty = True

    def mark_deleted(self, keys: Keys) -> int:
        """Hide ``keys`` from searches; unknown or already deleted keys are ignored. Returns how many were hidden."""
        ks = np.unique(as_keys(keys))
        with self._lock:
            pos, found = self._locate(ks)
            hits = pos[found]
            hits = hits[~self._dead[hits]]
            for key in self._keys[hits]:
                self._index.mark_deleted(int(key))
            self._dead[hits] = True
            self._live -= len(hits)
            if len(hits):
                self._dirty = True
            return len(hits)

    def search(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """Nearest live keys to each query: ``(keys int64 (Q, k'), similarities float32 (Q, k'))``.

        ``k' = min(k, len(self))``; similarity is ``1 - cosine distance``, best first. In the rare case that
        the graph yields fewer than ``k'`` live neighbours, the row is padded with key -1 and similarity -inf.
        """
        q = np.asarray(queries, dtype=np.float32)
        q = check_vectors(q[None, :] if q.ndim == 1 else q, self.dim, "queries")
        if not isinstance(k, (int, np.integer)) or k < 1:
            raise ValueError(f"k must be a positive integer, got {k!r}")
        with self._lock:
            kk = min(int(k), self._live)
            if kk == 0 or not len(q):
                return np.empty((len(q), 0), np.int64), np.empty((len(q), 0), np.float32)
            ef = max(self._ef_search, kk)
            try:
                labels, dist = self._query(q, kk, ef)
            except RuntimeError:  # too few live neighbours reached: widen the beam, then go row by row
                labels, dist = self._query_padded(q, kk, max(4 * ef, 256))
        return labels.astype(np.int64), (1.0 - dist).astype(np.float32)

    def _query(self, q: np.ndarray, k: int, ef: int) -> tuple[np.ndarray, np.ndarray]:
        self._index.set_ef(ef)
        return self._index.knn_query(q, k=k)

    def _query_padded(self, q: np.ndarray, k: int, ef: int) -> tuple[np.ndarray, np.ndarray]:
        labels = np.full((len(q), k), -1, np.int64)
        dist = np.full((len(q), k), np.inf, np.float32)
        for row in range(len(q)):
            lo, hi = 0, k  # the largest count that succeeds lies in [lo, hi]
            while lo < hi:
                mid = (lo + hi + 1) // 2
                try:
                    got_l, got_d = self._query(q[row : row + 1], mid, ef)
                except RuntimeError:
                    hi = mid - 1
                    continue
                lo = mid
                labels[row, :mid], dist[row, :mid] = got_l[0], got_d[0]
        return labels, dist

    def save(self) -> None:
        """Write the index, then meta.json, each atomically; on failure the previous files stay as they were."""
        with self._lock:
            meta = {
                "schema_version": SCHEMA_VERSION,
                "model_id": self.model_id,
                "dim": self.dim,
                "space": SPACE,
                "M": self.m,
                "ef_construction": self.ef_construction,
                "ef_search": self._ef_search,
                "count": self._live,
                "element_count": len(self._keys),
                "extra": self.extra,
            }
            try:
                meta_bytes = (json.dumps(meta, indent=2, sort_keys=True) + "\n").encode("utf-8")
            except (TypeError, ValueError) as exc:
                raise ValueError(f"{self.meta_path}: 'extra' must be JSON-serialisable ({exc})") from exc
            expected = self._index.index_file_size()

            def write_index(tmp: Path) -> None:
                self._index.save_index(str(tmp))
                written = tmp.stat().st_size
                if written != expected:  # hnswlib does not check its stream; a full disk shows up as a short file
                    raise OSError(f"{tmp}: hnswlib wrote {written} of {expected} bytes (disk full?)")

            atomic_write_with(self.path, write_index)
            atomic_write_bytes(self.meta_path, meta_bytes)
            self._dirty = False
