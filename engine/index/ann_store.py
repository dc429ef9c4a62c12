"""One approximate-nearest-neighbour graph (usearch HNSW, int8 vectors) in one self-checking file.

Why usearch and int8: an HNSW graph is only a way to find candidates, which search then re-scores exactly from
the float16 vector files (``engine.index.vectors``), so the graph does not need full-precision vectors. hnswlib
keeps a float32 copy of every vector (2 KB at 512-d, twice the float16 file); usearch stores them as int8 (512
bytes) and its recall after re-scoring is the same (``scenefind bench search --library``). That is what brings
an index under 8 MB per hour of video.

The file ``<name>.ann`` is one unit: a magic, a JSON header (model, width, graph parameters, live count, the
caller's ``extra`` such as the catalog generation, and the CRC-32 of the payload), then usearch's serialised
index. One atomic rename replaces it, so the header can never lag the graph, and a torn, truncated or foreign
file fails its checks (``IndexCorrupt``) before usearch reads a byte of it. Loading under another model raises
``IndexModelMismatch`` (rclip refuses likewise). The graph is derived data: a caller that meets a corrupt file
rebuilds it from the vector file (``engine.index.stores``).
"""

from __future__ import annotations

import json
import struct
import threading
import zlib
from pathlib import Path
from typing import Any

import numpy as np
from usearch.index import Index

from engine.atomic import atomic_write_bytes
from engine.index.errors import IndexCorrupt, refuse_foreign_index
from engine.index.vectors import Keys, as_keys, check_row_keys, check_vectors

SCHEMA_VERSION = 1
SUFFIX = "ann"
DTYPES = ("i8", "f16", "f32")  # usearch scalar kinds a store may keep its vectors in
DEFAULT_DTYPE = "i8"
_MAGIC = b"SFANN\x00\r\n"  # the CR/LF catches a file mangled by a text-mode copy
_PREFIX = struct.Struct("<8sI")  # magic, header length
_HEADER_TYPES: dict[str, type] = {"model_id": str, "dtype": str, "space": str} | dict.fromkeys(
    ("schema_version", "dim", "M", "ef_construction", "ef_search", "count", "payload_bytes", "payload_crc32"), int
)


def _check_int(label: str, value: object, low: int) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or value < low:
        raise ValueError(f"{label} must be an integer >= {low}, got {value!r}")


def _parse(path: Path, data: bytes) -> tuple[dict[str, Any], memoryview]:
    """(header, payload) of a store file's bytes; ``IndexCorrupt`` naming the file for anything malformed."""
    if len(data) < _PREFIX.size:
        raise IndexCorrupt(f"{path}: truncated ({len(data)} bytes, shorter than its header); re-index")
    magic, length = _PREFIX.unpack_from(data)
    if magic != _MAGIC:
        raise IndexCorrupt(f"{path}: not a Scenefind index file (bad magic); re-index")
    if len(data) < _PREFIX.size + length:
        raise IndexCorrupt(f"{path}: truncated inside its header; re-index")
    try:
        header = json.loads(data[_PREFIX.size : _PREFIX.size + length].decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise IndexCorrupt(f"{path}: unreadable header ({exc}); re-index") from exc
    if not isinstance(header, dict):
        raise IndexCorrupt(f"{path}: the header is not a JSON object; re-index")
    for key, kind in _HEADER_TYPES.items():
        value = header.get(key)
        if not isinstance(value, kind) or isinstance(value, bool):
            raise IndexCorrupt(f"{path}: header field {key!r} missing or not a {kind.__name__} ({value!r}); re-index")
    if not isinstance(header.setdefault("extra", {}), dict):
        raise IndexCorrupt(f"{path}: header field 'extra' must be an object; re-index")
    payload = memoryview(data)[_PREFIX.size + length :]
    if len(payload) != header["payload_bytes"]:
        raise IndexCorrupt(f"{path}: truncated ({len(payload)} of {header['payload_bytes']} graph bytes); re-index")
    if zlib.crc32(payload) != header["payload_crc32"]:
        raise IndexCorrupt(f"{path}: checksum mismatch (the file was damaged); re-index")
    return header, payload


class AnnStore:
    """An HNSW graph over L2-normalised vectors keyed by catalog row ids (positive int64), saved as one file.

    Build with ``create``, ``load`` or ``open_or_create``; the interface is ``HnswStore``'s (``add``,
    ``mark_deleted``, ``search``, ``keys``, ``save``, ``extra``), so ``engine.index.stores`` treats both alike.
    Every method holds one re-entrant lock, so a search from another thread never meets a half-done insert.
    Deleted keys leave the graph (usearch removes them); re-adding one stores the new vector.
    """

    def __init__(
        self,
        folder: Path,
        name: str,
        index: Index,
        *,
        model_id: str,
        dim: int,
        dtype: str,
        m: int,
        ef_construction: int,
    ) -> None:
        self.folder = Path(folder)
        self.name = name
        self.model_id = model_id
        self.dim = dim
        self.dtype = dtype
        self.m = m
        self.ef_construction = ef_construction
        self.extra: dict[str, Any] = {}
        self.meta_stale = False  # never: header and graph are one file (kept for HnswStore's callers)
        self._index = index
        self._lock = threading.RLock()
        self._dirty = True

    @staticmethod
    def file(folder: Path, name: str) -> Path:
        """``<name>.ann`` in ``folder``."""
        return Path(folder) / f"{name}.{SUFFIX}"

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
        dtype: str = DEFAULT_DTYPE,
    ) -> AnnStore:
        """A new, empty store in memory; nothing is written until ``save``."""
        if not model_id:
            raise ValueError("model_id must not be empty")
        for label, value, low in (("dim", dim, 1), ("m", m, 2), ("ef_construction", ef_construction, 1)):
            _check_int(label, value, low)
        _check_int("ef_search", ef_search, 1)
        if dtype not in DTYPES:
            raise ValueError(f"dtype must be one of {', '.join(DTYPES)}, got {dtype!r}")
        index = Index(
            ndim=dim,
            metric="cos",
            dtype=dtype,
            connectivity=m,
            expansion_add=ef_construction,
            expansion_search=ef_search,
        )
        return cls(folder, name, index, model_id=model_id, dim=dim, dtype=dtype, m=m, ef_construction=ef_construction)

    @classmethod
    def load(cls, folder: Path, name: str, *, model_id: str, dim: int | None = None) -> AnnStore:
        """Read a saved store; refuse another model's file and files that are torn, damaged or foreign."""
        path = cls.file(folder, name)
        try:
            data = path.read_bytes()
        except FileNotFoundError as exc:
            raise IndexCorrupt(f"{path}: missing; re-index") from exc
        except OSError as exc:
            raise IndexCorrupt(f"{path}: cannot read the index ({exc}); re-index") from exc
        header, payload = _parse(path, data)
        refuse_foreign_index(path, header["model_id"], header["dim"], model_id, dim)
        if header["schema_version"] > SCHEMA_VERSION:
            raise IndexCorrupt(
                f"{path}: written by a newer Scenefind (schema {header['schema_version']}, this release reads up "
                f"to {SCHEMA_VERSION}); upgrade Scenefind or re-index"
            )
        if header["space"] != "cos" or header["dtype"] not in DTYPES or header["dim"] < 1 or header["M"] < 2:
            raise IndexCorrupt(f"{path}: unsupported space or parameters; re-index")
        store = cls.create(
            folder,
            name,
            model_id=model_id,
            dim=header["dim"],
            m=header["M"],
            ef_construction=max(1, header["ef_construction"]),
            ef_search=max(1, header["ef_search"]),
            dtype=header["dtype"],
        )
        if header["count"]:
            try:
                store._index.load(bytes(payload))
            except (RuntimeError, ValueError, MemoryError) as exc:
                raise IndexCorrupt(f"{path}: usearch cannot read it ({exc}); re-index") from exc
            store._index.expansion_add = store.ef_construction  # not part of usearch's file
            store._index.expansion_search = header["ef_search"]
            if store._index.ndim != header["dim"] or len(store._index) != header["count"]:
                raise IndexCorrupt(f"{path}: the graph does not match its header; re-index")
        store.extra = header["extra"]
        store._dirty = False
        return store

    @classmethod
    def open_or_create(
        cls, folder: Path, name: str, *, model_id: str, dim: int, ef_search: int | None = None, **shape: Any
    ) -> AnnStore:
        """Load when the file exists, else create with ``shape`` (``m``, ``ef_construction``, ``dtype``: they only
        shape a new graph); ``ef_search``, when given, overrides the saved value (it is a query-time knob)."""
        if cls.file(folder, name).exists():
            store = cls.load(folder, name, model_id=model_id, dim=dim)
            if ef_search is not None:
                store.ef_search = ef_search
            return store
        return cls.create(folder, name, model_id=model_id, dim=dim, ef_search=ef_search or 128, **shape)

    @property
    def path(self) -> Path:
        return self.file(self.folder, self.name)

    @property
    def dirty(self) -> bool:
        """Changed since the last save or load."""
        return self._dirty

    @property
    def ef_search(self) -> int:
        return int(self._index.expansion_search)

    @ef_search.setter
    def ef_search(self, value: int) -> None:
        _check_int("ef_search", value, 1)
        with self._lock:
            if value != self._index.expansion_search:
                self._index.expansion_search = value
                self._dirty = True

    def __len__(self) -> int:
        with self._lock:
            return len(self._index)

    def __repr__(self) -> str:
        return f"AnnStore({self.path}, model_id={self.model_id!r}, dim={self.dim}, {self.dtype}, live={len(self)})"

    def keys(self) -> np.ndarray:
        """Live keys, sorted (int64)."""
        with self._lock:
            return np.sort(np.asarray(self._index.keys, dtype=np.int64))

    def contains(self, key: int) -> bool:
        """Whether ``key`` is live."""
        with self._lock:
            return key > 0 and bool(self._index.contains(int(key)))

    def add(self, vectors: np.ndarray, keys: Keys) -> None:
        """Insert rows under ``keys``; an existing key gets the new vector."""
        vecs = check_vectors(vectors, self.dim)
        ks = as_keys(keys)
        if not check_row_keys(ks, len(vecs)):
            return
        if len(np.unique(ks)) != len(ks):
            raise ValueError("keys must be distinct within one add")
        with self._lock:
            present = np.asarray(self._index.contains(ks), dtype=bool).reshape(-1)
            if present.any():
                self._index.remove(ks[present])
            self._index.add(ks, vecs, threads=0)
            self._dirty = True

    def mark_deleted(self, keys: Keys) -> int:
        """Remove ``keys`` from the graph; unknown keys are ignored. Returns how many were removed."""
        ks = np.unique(as_keys(keys))
        ks = ks[ks > 0]
        if not len(ks):
            return 0
        with self._lock:
            present = ks[np.asarray(self._index.contains(ks), dtype=bool).reshape(-1)]
            if len(present):
                self._index.remove(present)
                self._dirty = True
            return len(present)

    def search(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """Nearest live keys to each query: ``(keys int64 (Q, k'), similarities float32 (Q, k'))``.

        ``k' = min(k, len(self))``; similarity is ``1 - cosine distance`` on the stored (int8) vectors, best first.
        A row the graph yields fewer than ``k'`` neighbours for is padded with key -1 and similarity -inf."""
        q = np.asarray(queries, dtype=np.float32)
        q = check_vectors(q[None, :] if q.ndim == 1 else q, self.dim, "queries")
        if not isinstance(k, (int, np.integer)) or k < 1:
            raise ValueError(f"k must be a positive integer, got {k!r}")
        with self._lock:
            kk = min(int(k), len(self._index))
            if kk == 0 or not len(q):
                return np.empty((len(q), 0), np.int64), np.empty((len(q), 0), np.float32)
            found = self._index.search(q, kk, threads=1)  # one query gives ``Matches``, several ``BatchMatches``
            counts = np.asarray(getattr(found, "counts", [len(found.keys)])).reshape(-1)
            keys = np.full((len(q), kk), -1, np.int64)
            sims = np.full((len(q), kk), -np.inf, np.float32)
            got_keys = np.asarray(found.keys, dtype=np.int64).reshape(len(q), -1)[:, :kk]
            keys[:, : got_keys.shape[1]] = got_keys
            sims[:, : got_keys.shape[1]] = 1.0 - np.asarray(found.distances, np.float32).reshape(len(q), -1)[:, :kk]
        short = np.arange(kk)[None, :] >= counts[:, None]
        keys[short], sims[short] = -1, -np.inf
        return keys, sims

    def save(self) -> None:
        """Write the store atomically; on failure the previous file stays as it was."""
        with self._lock:
            payload = bytes(self._index.save()) if len(self._index) else b""
            header = {
                "schema_version": SCHEMA_VERSION,
                "model_id": self.model_id,
                "dim": self.dim,
                "space": "cos",
                "dtype": self.dtype,
                "M": self.m,
                "ef_construction": self.ef_construction,
                "ef_search": self.ef_search,
                "count": len(self._index),
                "payload_bytes": len(payload),
                "payload_crc32": zlib.crc32(payload),
                "extra": self.extra,
            }
            try:
                head = json.dumps(header, sort_keys=True).encode("utf-8")
            except (TypeError, ValueError) as exc:
                raise ValueError(f"{self.path}: 'extra' must be JSON-serialisable ({exc})") from exc
            atomic_write_bytes(self.path, _PREFIX.pack(_MAGIC, len(head)) + head + payload)
            self._dirty = False


__all__ = ["DEFAULT_DTYPE", "DTYPES", "SUFFIX", "AnnStore"]
