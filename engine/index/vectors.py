"""Float16 memory-mapped vectors, one row per key, so ANN candidates can be re-scored exactly.

HNSW answers are approximate; re-scoring a few hundred candidates needs only their rows, which a memory map
reads lazily from disk at half the size of float32. The row number is the key itself (catalog row ids start
at 1, row 0 is unused), so no key→row table has to be stored or kept in step with the catalog. The writer
grows the file by doubling and never shrinks it, so a reader in another process can map what exists, never
point past the end, and remap (``refresh``) when the file has grown. Also home to the array checks shared
with ``hnsw_store`` and to ``brute_force_topk``, the exact reference for recall tests and benchmarks.
"""

from __future__ import annotations

import json
import os
import sys
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from engine.atomic import atomic_write_bytes, fsync_dir
from engine.index.errors import IndexCorrupt, IndexModelMismatch

SCHEMA_VERSION = 1
DTYPES = {"float16": np.float16, "uint16": np.uint16}  # uint16 rows hold sparse concept codes (engine.index.codes)
SUFFIXES = {"float16": "f16", "uint16": "u16"}
_INITIAL_ROWS = 1024
# On Linux a shared mapping's pages are the file's page cache, and msync(MS_SYNC) is an fdatasync of the range:
# the fsync that ``flush`` does anyway writes them back, so an msync first would write everything twice (half
# of a committed video's cost with a fast encoder). Elsewhere (macOS, Windows) the mapping is flushed first.
_FSYNC_WRITES_MAPPED_PAGES = sys.platform.startswith("linux")
_TOPK_CELLS = 1 << 24  # query×row scores computed at once by brute_force_topk (64 MiB of float32)

Keys = np.ndarray | Sequence[int]


def as_keys(keys: Keys, what: str = "keys") -> np.ndarray:
    """Keys as a 1-D int64 array; raises ``ValueError`` for non-integers or a wrong shape."""
    arr = np.asarray(keys)
    if arr.ndim == 0:
        arr = arr.reshape(1)
    if arr.ndim != 1:
        raise ValueError(f"{what} must be a 1-D sequence of integers, got shape {arr.shape}")
    if arr.size and not np.issubdtype(arr.dtype, np.integer):
        raise ValueError(f"{what} must be integers, got dtype {arr.dtype}")
    return arr.astype(np.int64, copy=False)


def check_vectors(vectors: np.ndarray, dim: int, what: str = "vectors") -> np.ndarray:
    """Vectors as a C-contiguous (N, dim) float32 array of finite values, or a ``ValueError`` saying why not."""
    arr = np.ascontiguousarray(vectors, dtype=np.float32)
    if arr.ndim != 2 or arr.shape[1] != dim:
        raise ValueError(f"{what} must have shape (N, {dim}), got {arr.shape}")
    if not np.isfinite(arr).all():
        raise ValueError(f"{what} contain NaN or infinite values")
    return arr


def check_row_keys(ks: np.ndarray, n_vectors: int) -> bool:
    """Keys for ``n_vectors`` rows must match them in number and be positive row ids; ``False`` = nothing to do."""
    if len(ks) != n_vectors:
        raise ValueError(f"got {n_vectors} vectors but {len(ks)} keys")
    if not len(ks):
        return False
    if ks.min() < 1:
        raise ValueError(f"keys must be positive row ids, got {int(ks.min())}")
    return True


def brute_force_topk(matrix: np.ndarray, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Exact top-``k`` rows of ``matrix`` by dot product: ``(row indices int64 (Q, k'), scores float32 (Q, k'))``.

    ``k' = min(k, len(matrix))``, best first (equal scores by row). A 1-D query gives a 1-row result.
    """
    m = np.asarray(matrix, dtype=np.float32)
    q = np.asarray(queries, dtype=np.float32)
    q = q[None, :] if q.ndim == 1 else q
    if m.ndim != 2 or q.ndim != 2 or q.shape[1] != m.shape[1]:
        raise ValueError(f"matrix {m.shape} and queries {q.shape} must be 2-D with the same width")
    if k < 0:
        raise ValueError(f"k must not be negative, got {k}")
    kk = min(int(k), len(m))
    rows = np.empty((len(q), kk), np.int64)
    scores = np.empty((len(q), kk), np.float32)
    if kk == 0:
        return rows, scores
    step = max(1, _TOPK_CELLS // len(m))
    for start in range(0, len(q), step):
        sims = q[start : start + step] @ m.T
        # Sort by (-score, row) so ties are deterministic: argsort of a stable key over the kept candidates.
        part = np.argpartition(-sims, kk - 1, axis=1)[:, :kk] if kk < len(m) else np.argsort(-sims, axis=1)
        part.sort(axis=1)
        order = np.argsort(-np.take_along_axis(sims, part, axis=1), axis=1, kind="stable")
        best = np.take_along_axis(part, order, axis=1)
        rows[start : start + step] = best
        scores[start : start + step] = np.take_along_axis(sims, best, axis=1)
    return rows, scores


def _read_header(path: Path) -> dict[str, Any]:
    try:
        header = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise IndexCorrupt(f"{path}: unreadable ({exc}); re-index") from exc
    kinds = {"dim": int, "dtype": str, "schema_version": int, "model_id": str}
    if not isinstance(header, dict) or any(not isinstance(header.get(k), t) for k, t in kinds.items()):
        raise IndexCorrupt(f"{path}: expected an object with {', '.join(kinds)}; re-index")
    return header


class VectorStore:
    """Rows of float16 in ``<name>.f16`` with a JSON header ``<name>.f16.json``; row ``key`` holds key's vector.

    Open with ``open``. One writer at a time (the library's writer lock ensures it); any number of read-only
    openers, in this or other processes. Rows never written read as zeros. ``dtype="uint16"`` stores integer
    rows the same way (``engine.index.codes``); values written must then be integers in 0..65535.
    """

    def __init__(self, path: Path, *, dim: int, model_id: str, readonly: bool, dtype: str = "float16") -> None:
        if dtype not in DTYPES:
            raise ValueError(f"dtype must be one of {', '.join(DTYPES)}, got {dtype!r}")
        self.path = path
        self.header_path = path.with_name(path.name + ".json")
        self.dim = dim
        self.model_id = model_id
        self.readonly = readonly
        self.dtype = dtype
        self._np_dtype = DTYPES[dtype]
        self._row_bytes = dim * 2
        self._lock = threading.RLock()
        self._map: np.memmap | None = None
        self._rows = 0
        self._closed = False

    @classmethod
    def open(
        cls,
        folder: Path,
        name: str,
        *,
        dim: int,
        model_id: str,
        create: bool = True,
        readonly: bool = False,
        dtype: str = "float16",
    ) -> VectorStore:
        """Open (or, when ``create`` and not ``readonly``, create) the store; refuse another model's file.

        A read-only opener of a store not yet created gets an empty one that ``refresh`` fills in later.
        """
        if not isinstance(dim, int) or dim < 1:
            raise ValueError(f"dim must be a positive integer, got {dim!r}")
        path = Path(folder) / f"{name}.{SUFFIXES.get(dtype, 'f16')}"
        store = cls(path, dim=dim, model_id=model_id, readonly=readonly, dtype=dtype)
        if store.header_path.exists():
            store._check_header()
        elif readonly:  # not created yet, or being created: ``refresh`` maps it once its header is there
            return store
        elif store.path.exists():
            raise IndexCorrupt(f"{store.header_path}: missing beside {store.path.name}; re-index")
        elif not create:
            raise IndexCorrupt(f"{store.path}: missing (and create=False); re-index")
        else:
            store._create()
        store._remap()
        return store

    def _check_header(self) -> None:
        if not self.header_path.is_file():
            raise IndexCorrupt(f"{self.header_path}: missing beside {self.path.name}; re-index")
        header = _read_header(self.header_path)
        if header["model_id"] != self.model_id:
            raise IndexModelMismatch(
                f"vectors {self.path} were built with model {header['model_id']!r}, not {self.model_id!r}; "
                "its embeddings must be recomputed (re-index)"
            )
        if header["dim"] != self.dim:
            raise IndexModelMismatch(
                f"vectors {self.path} are {header['dim']}-d but model {self.model_id!r} makes {self.dim}-d "
                "ones; its embeddings must be recomputed (re-index)"
            )
        if header["dtype"] != self.dtype or header["schema_version"] > SCHEMA_VERSION:
            raise IndexCorrupt(
                f"{self.header_path}: dtype {header['dtype']!r}, schema {header['schema_version']} is not "
                f"{self.dtype} up to schema {SCHEMA_VERSION}; upgrade Scenefind or re-index"
            )
        if not self.path.is_file():
            raise IndexCorrupt(f"{self.path}: missing although {self.header_path.name} exists; re-index")

    def _create(self) -> None:
        """Data file first, header second: a header on disk always has its data file beside it."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.path, "wb") as fh:
            fh.truncate(_INITIAL_ROWS * self._row_bytes)
            os.fsync(fh.fileno())
        fsync_dir(self.path.parent)
        header = {"dim": self.dim, "dtype": self.dtype, "schema_version": SCHEMA_VERSION, "model_id": self.model_id}
        atomic_write_bytes(self.header_path, (json.dumps(header, indent=2) + "\n").encode("utf-8"))

    def _remap(self) -> None:
        """Map the whole file as it is now (whole rows only)."""
        self._map = None
        try:
            rows = os.path.getsize(self.path) // self._row_bytes
            mode = "r" if self.readonly else "r+"
            self._map = np.memmap(self.path, self._np_dtype, mode, shape=(rows, self.dim)) if rows else None
        except OSError as exc:
            raise IndexCorrupt(f"{self.path}: cannot map the vectors ({exc}); re-index") from exc
        self._rows = rows

    def _check_open(self) -> None:
        if self._closed:
            raise ValueError(f"{self.path}: the vector store is closed")

    @property
    def capacity(self) -> int:
        """Rows the file holds now, row 0 included; the largest readable key is ``capacity - 1``."""
        return self._rows

    def refresh(self) -> bool:
        """Remap when the file has grown (another process writing); returns whether it did."""
        with self._lock:
            self._check_open()
            if self._map is None and self._rows == 0:  # opened before the writer created the files
                if not self.header_path.exists():
                    return False
                self._check_header()
            if os.path.getsize(self.path) // self._row_bytes == self._rows:
                return False
            self._remap()
            return True

    def write(self, keys: Keys, vectors: np.ndarray) -> None:
        """Store ``vectors`` at rows ``keys`` (growing the file by doubling); call ``flush`` to make them durable."""
        if self.readonly:
            raise PermissionError(f"{self.path}: opened read-only")
        ks = as_keys(keys)
        vecs = check_vectors(vectors, self.dim)
        if not check_row_keys(ks, len(vecs)):
            return
        with self._lock:
            self._check_open()
            needed = int(ks.max()) + 1
            if needed > self._rows:
                self._grow(max(needed, 2 * self._rows, _INITIAL_ROWS))
            if self._map is None:  # only when the file vanished under us
                raise IndexCorrupt(f"{self.path}: the vector file is empty after growing; re-index")
            self._map[ks] = vecs.astype(self._np_dtype)

    def _grow(self, rows: int) -> None:
        if self._map is not None:
            self._map.flush()
        self._map = None
        try:
            os.truncate(self.path, rows * self._row_bytes)
        except OSError as exc:
            self._remap()
            raise OSError(exc.errno, f"{self.path}: cannot grow to {rows} rows ({exc.strerror})") from exc
        self._remap()

    def flush(self) -> None:
        """Make every written row durable (fsync: the rows and the file's size; msync first where the mapping is
        not the page cache); call before committing."""
        if self.readonly:
            return
        with self._lock:
            self._check_open()
            if self._map is not None and not _FSYNC_WRITES_MAPPED_PAGES:
                self._map.flush()
            fd = os.open(self.path, os.O_RDWR)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)

    def read(self, keys: Keys) -> np.ndarray:
        """Rows of ``keys`` as float32 ``(N, dim)``; a key the file does not reach raises ``KeyError``."""
        ks = as_keys(keys)
        with self._lock:
            self._check_open()
            if len(ks) and self.readonly and ks.max() >= self._rows:
                self.refresh()
            bad = ks[(ks < 1) | (ks >= self._rows)]
            if len(bad):
                raise KeyError(f"{self.path}: no vector for key {int(bad[0])} (the file holds keys below {self._rows})")
            if self._map is None:
                return np.empty((0, self.dim), np.float32)
            return self._map[ks].astype(np.float32)

    def close(self) -> None:
        """Flush (when writable) and unmap; later calls raise."""
        with self._lock:
            if self._closed:
                return
            if not self.readonly and self._map is not None:
                self.flush()
            self._map = None
            self._closed = True

    def __enter__(self) -> VectorStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"VectorStore({self.path}, model_id={self.model_id!r}, dim={self.dim}, capacity={self._rows})"
