"""The usearch graph store: recall against brute force, keys, persistence in one self-checking file, failures."""

from __future__ import annotations

import json
import os
import struct
from pathlib import Path

import numpy as np
import pytest

from engine.index.ann_store import AnnStore
from engine.index.errors import IndexCorrupt, IndexModelMismatch
from engine.index.vectors import brute_force_topk

DIM = 64
MODEL = "test-model/a"


def unit_vectors(n: int, dim: int = DIM, seed: int = 0) -> np.ndarray:
    x = np.random.default_rng(seed).standard_normal((n, dim)).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def saved_store(folder: Path, n: int = 300) -> tuple[AnnStore, np.ndarray]:
    vectors = unit_vectors(n)
    store = AnnStore.create(folder, "segment", model_id=MODEL, dim=DIM)
    store.add(vectors, np.arange(1, n + 1))
    store.extra["generation"] = 3
    store.save()
    return store, vectors


def test_recall_after_exact_re_scoring_matches_brute_force() -> None:
    """int8 graph vectors only pick candidates; re-scored exactly (as search does) they find the true top 10."""
    vectors = unit_vectors(5000)
    store = AnnStore.create(Path("."), "segment", model_id=MODEL, dim=DIM, ef_search=512)  # the engine uses 2048
    for start in range(0, 5000, 700):  # in batches, as commits add them
        store.add(vectors[start : start + 700], np.arange(start + 1, min(start + 700, 5000) + 1))
    queries = unit_vectors(100, seed=1)
    keys, sims = store.search(queries, 100)
    truth, _ = brute_force_topk(vectors, queries, 10)
    rescored = [k[np.argsort(-(vectors[k - 1] @ q))[:10]] for k, q in zip(keys, queries, strict=True)]
    recall = np.mean([len(np.intersect1d(r, t + 1)) / 10 for r, t in zip(rescored, truth, strict=True)])
    assert recall >= 0.99
    assert keys.shape == sims.shape == (100, 100) and keys.dtype == np.int64
    assert (np.diff(sims, axis=1) <= 1e-6).all()  # best first
    assert len(store) == 5000 and store.keys().tolist() == list(range(1, 5001))


def test_keys_delete_and_re_add(tmp_path: Path) -> None:
    store, vectors = saved_store(tmp_path, 50)
    assert store.mark_deleted([1, 2, 2, 999, -4]) == 2
    assert len(store) == 48 and not store.contains(1) and store.contains(3) and not store.contains(0)
    assert 1 not in store.search(vectors[0], 48)[0][0]
    store.add(vectors[10:11], [3])  # an existing key gets the new vector
    assert store.search(vectors[10], 2)[0][0].tolist().count(3) == 1 and len(store) == 48
    store.add(vectors[:1], [1])  # a deleted key comes back
    assert store.contains(1) and store.search(vectors[0], 1)[0][0, 0] == 1
    with pytest.raises(ValueError, match="distinct"):
        store.add(vectors[:2], [5, 5])
    with pytest.raises(ValueError, match="positive"):
        store.add(vectors[:1], [0])
    with pytest.raises(ValueError, match="shape"):
        store.add(vectors[:1, :8], [7])


def test_search_pads_when_fewer_live_than_asked(tmp_path: Path) -> None:
    store, vectors = saved_store(tmp_path, 20)
    store.mark_deleted(range(1, 18))
    keys, sims = store.search(vectors[:2], 10)
    assert keys.shape == sims.shape == (2, 3) and sorted(keys[0].tolist()) == [18, 19, 20]
    empty = AnnStore.create(tmp_path, "video", model_id=MODEL, dim=DIM)
    assert empty.search(vectors[0], 5)[0].shape == (1, 0)


def test_save_load_round_trip(tmp_path: Path) -> None:
    store, vectors = saved_store(tmp_path)
    store.mark_deleted([5])
    store.ef_search = 300
    store.save()
    loaded = AnnStore.load(tmp_path, "segment", model_id=MODEL, dim=DIM)
    assert loaded.extra == {"generation": 3} and loaded.ef_search == 300 and not loaded.dirty
    assert loaded.keys().tolist() == store.keys().tolist() and not loaded.contains(5)
    np.testing.assert_array_equal(loaded.search(vectors[:20], 10)[0], store.search(vectors[:20], 10)[0])
    assert sorted(p.name for p in tmp_path.iterdir()) == ["segment.ann"]  # one file: no meta to lag behind
    AnnStore.create(tmp_path, "video", model_id=MODEL, dim=DIM).save()
    assert len(AnnStore.load(tmp_path, "video", model_id=MODEL)) == 0
    opened = AnnStore.open_or_create(tmp_path, "segment", model_id=MODEL, dim=DIM, ef_search=64)
    assert len(opened) == 299 and opened.ef_search == 64
    assert len(AnnStore.open_or_create(tmp_path, "other", model_id=MODEL, dim=DIM)) == 0


def test_another_model_or_width_is_refused(tmp_path: Path) -> None:
    saved_store(tmp_path)
    with pytest.raises(IndexModelMismatch, match="recomputed"):
        AnnStore.load(tmp_path, "segment", model_id="other/b")
    with pytest.raises(IndexModelMismatch, match="512-d"):
        AnnStore.load(tmp_path, "segment", model_id=MODEL, dim=512)


def _rewrite_header(path: Path, **changes: object) -> None:
    data = path.read_bytes()
    length = struct.unpack_from("<I", data, 8)[0]
    header = json.loads(data[12 : 12 + length]) | changes
    head = json.dumps(header).encode()
    path.write_bytes(data[:8] + struct.pack("<I", len(head)) + head + data[12 + length :])


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        (lambda b: b[: len(b) // 2], "truncated"),
        (lambda b: b[:6], "truncated"),
        (lambda b: b[:20], "truncated inside its header"),
        (lambda b: os.urandom(len(b)), "bad magic"),
        (lambda b: b[:-50] + bytes([b[-50] ^ 0xFF]) + b[-49:], "checksum"),
        (lambda b: b"", "truncated"),
    ],
)
def test_a_damaged_file_raises_corrupt_naming_it(tmp_path: Path, damage, message: str) -> None:
    store, _ = saved_store(tmp_path)
    store.path.write_bytes(damage(store.path.read_bytes()))
    with pytest.raises(IndexCorrupt, match=message) as info:
        AnnStore.load(tmp_path, "segment", model_id=MODEL)
    assert str(store.path) in str(info.value)


def test_bad_headers_are_refused(tmp_path: Path) -> None:
    store, _ = saved_store(tmp_path)
    _rewrite_header(store.path, schema_version=99)
    with pytest.raises(IndexCorrupt, match="newer Scenefind"):
        AnnStore.load(tmp_path, "segment", model_id=MODEL)
    _rewrite_header(store.path, schema_version=1, count="many")
    with pytest.raises(IndexCorrupt, match="'count'"):
        AnnStore.load(tmp_path, "segment", model_id=MODEL)
    _rewrite_header(store.path, count=7)
    with pytest.raises(IndexCorrupt, match="does not match its header"):
        AnnStore.load(tmp_path, "segment", model_id=MODEL)
    with pytest.raises(IndexCorrupt, match="missing"):
        AnnStore.load(tmp_path, "nothing", model_id=MODEL)


def test_a_failed_save_keeps_the_previous_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    store, _ = saved_store(tmp_path, 100)
    before = store.path.read_bytes()
    store.add(unit_vectors(50, seed=5), np.arange(101, 151))

    def full_disk(self: Path, data: bytes) -> int:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(Path, "write_bytes", full_disk)
    with pytest.raises(OSError, match="No space"):
        store.save()
    monkeypatch.undo()
    assert store.path.read_bytes() == before and store.dirty
    assert [p.name for p in tmp_path.iterdir()] == ["segment.ann"]  # the temp file was removed
    assert len(AnnStore.load(tmp_path, "segment", model_id=MODEL)) == 100
    store.save()
    assert len(AnnStore.load(tmp_path, "segment", model_id=MODEL)) == 150


def test_extra_must_be_json(tmp_path: Path) -> None:
    store, _ = saved_store(tmp_path, 10)
    store.extra["bad"] = object()
    with pytest.raises(ValueError, match="JSON-serialisable"):
        store.save()
