"""The vector index layer: HNSW recall against brute force, persistence, failure modes, float16 vector files."""

from __future__ import annotations

import json
import os
import threading
from pathlib import Path

import numpy as np
import pytest

from engine.index.errors import IndexCorrupt, IndexModelMismatch
from engine.index.hnsw_store import HnswStore
from engine.index.vectors import VectorStore, brute_force_topk

DIM = 64
MODEL = "test-model/a"


def unit_vectors(n: int, dim: int = DIM, seed: int = 0) -> np.ndarray:
    x = np.random.default_rng(seed).standard_normal((n, dim)).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def small_store(folder: Path, n: int = 300, seed: int = 0) -> tuple[HnswStore, np.ndarray]:
    vectors = unit_vectors(n, seed=seed)
    store = HnswStore.create(folder, "frame", model_id=MODEL, dim=DIM, capacity=n)
    store.add(vectors, np.arange(1, n + 1))
    return store, vectors


@pytest.fixture(scope="module")
def big(tmp_path_factory: pytest.TempPathFactory) -> tuple[np.ndarray, HnswStore]:
    """5,000 random unit vectors under keys 1..5000, added in batches from a capacity of 10."""
    vectors = unit_vectors(5000)
    store = HnswStore.create(tmp_path_factory.mktemp("big"), "frame", model_id=MODEL, dim=DIM, capacity=10)
    for start in range(0, 5000, 700):
        store.add(vectors[start : start + 700], np.arange(start + 1, min(start + 700, 5000) + 1))
    return vectors, store


# ---------------------------------------------------------------- HnswStore: search quality and shapes


def test_self_recall_at_10_against_brute_force(big: tuple[np.ndarray, HnswStore]) -> None:
    vectors, store = big
    queries = vectors[np.random.default_rng(1).choice(5000, 200, replace=False)]
    truth, truth_scores = brute_force_topk(vectors, queries, 10)
    keys, sims = store.search(queries, 10)
    assert keys.shape == sims.shape == (200, 10)
    assert keys.dtype == np.int64 and sims.dtype == np.float32
    recall = np.mean([len(set(keys[i]) & set(truth[i] + 1)) / 10 for i in range(200)])
    assert recall >= 0.99, f"self-recall@10 = {recall:.4f}"
    # similarity is 1 - cosine distance, i.e. the dot product of unit vectors, best first
    exact = np.einsum("qkd,qd->qk", vectors[keys - 1], queries)
    np.testing.assert_allclose(sims, exact, atol=1e-4)
    assert np.all(np.diff(sims, axis=1) <= 1e-6)
    np.testing.assert_allclose(sims[:, 0], 1.0, atol=1e-4)  # every query finds itself first
    np.testing.assert_allclose(truth_scores[:, 0], 1.0, atol=1e-5)


def test_capacity_grows_from_10_to_5000(big: tuple[np.ndarray, HnswStore]) -> None:
    vectors, store = big
    assert len(store) == 5000 == store.element_count
    assert 5000 <= store.capacity <= 2 * 5000
    np.testing.assert_array_equal(store.keys(), np.arange(1, 5001))
    sample = np.arange(0, 5000, 97)
    keys, _ = store.search(vectors[sample], 1)
    np.testing.assert_array_equal(keys[:, 0], sample + 1)


def test_search_shapes_and_validation(tmp_path: Path) -> None:
    store = HnswStore.create(tmp_path, "video", model_id=MODEL, dim=DIM)
    keys, sims = store.search(unit_vectors(3), 5)
    assert keys.shape == sims.shape == (3, 0)
    store.add(unit_vectors(4), [10, 20, 30, 40])
    keys, sims = store.search(unit_vectors(1)[0], 10)  # a 1-D query, k above the live count
    assert keys.shape == sims.shape == (1, 4)
    assert sorted(keys[0].tolist()) == [10, 20, 30, 40]
    with pytest.raises(ValueError, match=r"\(N, 64\)"):
        store.search(np.ones(8, np.float32), 1)
    with pytest.raises(ValueError, match="NaN"):
        store.search(np.full(DIM, np.nan, np.float32), 1)
    with pytest.raises(ValueError, match="k must be"):
        store.search(unit_vectors(1), 0)


def test_add_validates_shapes_and_keys(tmp_path: Path) -> None:
    store = HnswStore.create(tmp_path, "video", model_id=MODEL, dim=DIM)
    with pytest.raises(ValueError, match="3 vectors but 2 keys"):
        store.add(unit_vectors(3), [1, 2])
    with pytest.raises(ValueError, match=r"\(N, 64\)"):
        store.add(unit_vectors(2, dim=8), [1, 2])
    with pytest.raises(ValueError, match="positive"):
        store.add(unit_vectors(2), [0, 1])
    with pytest.raises(ValueError, match="distinct"):
        store.add(unit_vectors(2), [5, 5])
    with pytest.raises(ValueError, match="integers"):
        store.add(unit_vectors(1), [1.5])
    assert len(store) == 0
    store.add(np.empty((0, DIM), np.float32), [])
    assert len(store) == 0


def test_re_adding_a_live_key_replaces_its_vector(tmp_path: Path) -> None:
    store, vectors = small_store(tmp_path)
    new = unit_vectors(1, seed=99)
    store.add(new, [7])
    assert len(store) == 300
    keys, sims = store.search(new, 1)
    assert keys[0, 0] == 7 and sims[0, 0] == pytest.approx(1.0, abs=1e-4)
    keys, _ = store.search(vectors[6], 1)
    assert keys[0, 0] != 7 or float(vectors[6] @ new[0]) > 0.99


# ---------------------------------------------------------------- deletion


def test_mark_deleted_hides_keys_and_survives_save_load(tmp_path: Path) -> None:
    store, vectors = small_store(tmp_path)
    gone = np.arange(1, 301, 3)
    assert store.mark_deleted(gone) == len(gone)
    assert store.mark_deleted([1, 4, 9999, -5]) == 0  # already deleted or unknown: ignored
    assert len(store) == 300 - len(gone)
    assert not store.contains(1) and store.contains(2) and not store.contains(9999)
    keys, _ = store.search(vectors, 10)
    assert not np.isin(keys, gone).any()
    store.save()
    loaded = HnswStore.load(tmp_path, "frame", model_id=MODEL, dim=DIM)
    assert len(loaded) == len(store) and not loaded.meta_stale
    np.testing.assert_array_equal(loaded.keys(), np.setdiff1d(np.arange(1, 301), gone))
    keys2, _ = loaded.search(vectors, 10)
    assert not np.isin(keys2, gone).any()
    assert loaded.element_count == 300


def test_re_adding_a_deleted_key_revives_it(tmp_path: Path) -> None:
    store, _ = small_store(tmp_path)
    store.mark_deleted([5])
    new = unit_vectors(1, seed=42)
    store.add(new, [5])
    assert store.contains(5) and len(store) == 300 and store.element_count == 300
    keys, sims = store.search(new, 1)
    assert keys[0, 0] == 5 and sims[0, 0] == pytest.approx(1.0, abs=1e-4)
    store.save()
    loaded = HnswStore.load(tmp_path, "frame", model_id=MODEL)
    assert loaded.contains(5)
    assert loaded.search(new, 1)[0][0, 0] == 5
    # deleting again after a reload still works
    assert loaded.mark_deleted([5]) == 1 and not loaded.contains(5)


def test_search_copes_with_most_keys_deleted(tmp_path: Path) -> None:
    store, vectors = small_store(tmp_path, n=2000)
    store.mark_deleted(np.arange(1, 1996))
    keys, sims = store.search(vectors[:20], 10)
    assert keys.shape == (20, 5)
    live = keys[keys > 0]
    assert set(live.tolist()) <= {1996, 1997, 1998, 1999, 2000}
    assert np.isfinite(sims[keys > 0]).all()


class _FewNeighbours:
    """Wraps an hnswlib index that can only ever reach 3 neighbours, as a badly fragmented graph might."""

    def __init__(self, index: object) -> None:
        self._index = index

    def __getattr__(self, name: str) -> object:
        return getattr(self._index, name)

    def knn_query(self, q: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        if k > 3:
            raise RuntimeError("Cannot return the results in a contigious 2D array. Probably ef or M is too small")
        return self._index.knn_query(q, k=k)  # type: ignore[attr-defined]


def test_search_pads_rows_when_the_graph_yields_too_few(tmp_path: Path) -> None:
    store, vectors = small_store(tmp_path, n=50)
    store._index = _FewNeighbours(store._index)
    keys, sims = store.search(vectors[:2], 5)
    assert keys.shape == sims.shape == (2, 5)
    assert (keys[:, :3] > 0).all() and (keys[:, 3:] == -1).all()
    assert np.isfinite(sims[:, :3]).all() and (sims[:, 3:] == -np.inf).all()
    np.testing.assert_array_equal(keys[:, 0], [1, 2])


# ---------------------------------------------------------------- persistence


def test_save_load_round_trip_gives_identical_results(tmp_path: Path) -> None:
    store, _ = small_store(tmp_path, n=1000)
    store.extra["generation"] = 7
    store.ef_search = 64
    assert store.dirty
    store.save()
    assert not store.dirty
    meta = json.loads((tmp_path / "frame.meta.json").read_text())
    assert meta["model_id"] == MODEL and meta["dim"] == DIM and meta["space"] == "cosine"
    assert meta["count"] == 1000 and meta["M"] == 16 and meta["ef_search"] == 64
    assert meta["extra"] == {"generation": 7} and meta["schema_version"] == 1
    loaded = HnswStore.load(tmp_path, "frame", model_id=MODEL, dim=DIM)
    assert (loaded.extra, loaded.ef_search, loaded.capacity) == ({"generation": 7}, 64, store.capacity)
    assert not loaded.dirty and len(loaded) == 1000
    queries = unit_vectors(50, seed=3)
    for before, after in zip(store.search(queries, 10), loaded.search(queries, 10), strict=True):
        np.testing.assert_array_equal(before, after)


def test_empty_store_round_trip(tmp_path: Path) -> None:
    HnswStore.create(tmp_path, "video", model_id=MODEL, dim=DIM).save()
    loaded = HnswStore.load(tmp_path, "video", model_id=MODEL)
    assert len(loaded) == 0 and loaded.search(unit_vectors(1), 3)[0].shape == (1, 0)
    loaded.add(unit_vectors(2), [1, 2])
    assert len(loaded) == 2


def test_load_under_another_model_or_width_is_refused(tmp_path: Path) -> None:
    store, _ = small_store(tmp_path, n=20)
    store.save()
    with pytest.raises(IndexModelMismatch, match=r"built with model 'test-model/a', not 'other/b'.*re-index"):
        HnswStore.load(tmp_path, "frame", model_id="other/b")
    with pytest.raises(IndexModelMismatch, match="512-d"):
        HnswStore.load(tmp_path, "frame", model_id=MODEL, dim=512)
    with pytest.raises(ValueError):  # both error kinds are ValueErrors
        HnswStore.open_or_create(tmp_path, "frame", model_id="other/b", dim=DIM)


def test_open_or_create(tmp_path: Path) -> None:
    created = HnswStore.open_or_create(tmp_path, "segment", model_id=MODEL, dim=DIM)
    assert len(created) == 0 and not (tmp_path / "segment.hnsw").exists()
    created.add(unit_vectors(3), [1, 2, 3])
    created.save()
    opened = HnswStore.open_or_create(tmp_path, "segment", model_id=MODEL, dim=DIM, ef_search=200)
    assert len(opened) == 3 and opened.ef_search == 200 and opened.dirty
    assert HnswStore.open_or_create(tmp_path, "segment", model_id=MODEL, dim=DIM).ef_search == 128


def test_failed_save_keeps_the_previous_files(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    store, _ = small_store(tmp_path, n=100)
    store.save()
    before = {p.name: p.read_bytes() for p in tmp_path.iterdir()}
    store.add(unit_vectors(50, seed=5), np.arange(101, 151))

    def disk_full(src: object, dst: object) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", disk_full)
    with pytest.raises(OSError, match="No space left"):
        store.save()
    monkeypatch.undo()
    assert {p.name: p.read_bytes() for p in tmp_path.iterdir()} == before  # temp files cleaned up too
    assert store.dirty
    assert len(HnswStore.load(tmp_path, "frame", model_id=MODEL)) == 100
    store.save()
    assert len(HnswStore.load(tmp_path, "frame", model_id=MODEL)) == 150


class _ShortWriter:
    """Wraps an hnswlib index so that save_index leaves half a file, as a full disk would."""

    def __init__(self, index: object) -> None:
        self._index = index

    def __getattr__(self, name: str) -> object:
        return getattr(self._index, name)

    def save_index(self, path: str) -> None:
        self._index.save_index(path)  # type: ignore[attr-defined]
        os.truncate(path, os.path.getsize(path) // 2)


def test_short_write_by_hnswlib_is_caught(tmp_path: Path) -> None:
    """hnswlib never checks its output stream; a short file must not replace a good one."""
    store, _ = small_store(tmp_path, n=100)
    store.save()
    before = (tmp_path / "frame.hnsw").read_bytes()
    store.add(unit_vectors(10, seed=6), np.arange(101, 111))
    store._index = _ShortWriter(store._index)
    with pytest.raises(OSError, match="disk full"):
        store.save()
    assert (tmp_path / "frame.hnsw").read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["frame.hnsw", "frame.meta.json"]


def test_meta_failure_after_index_rename_loads_with_stale_meta(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    store, _ = small_store(tmp_path, n=100)
    store.extra["generation"] = 1
    store.save()
    store.add(unit_vectors(20, seed=8), np.arange(101, 121))
    store.extra["generation"] = 2
    real_replace = os.replace

    def fail_for_meta(src: str, dst: str) -> None:
        if str(dst).endswith(".meta.json"):
            raise OSError(28, "No space left on device")
        real_replace(src, dst)

    monkeypatch.setattr(os, "replace", fail_for_meta)
    with pytest.raises(OSError):
        store.save()
    monkeypatch.undo()
    loaded = HnswStore.load(tmp_path, "frame", model_id=MODEL)
    assert len(loaded) == 120 and loaded.meta_stale and loaded.extra == {"generation": 1}


def test_first_save_cut_before_its_meta_loads_as_lagging_and_is_rebuilt(tmp_path: Path) -> None:
    """A kill between the index's rename and its meta's on the *first* save leaves an index without meta.json:
    the writer loads it as lagging (no generation, so it is reconciled), not as corruption."""
    store, _ = small_store(tmp_path, n=50)
    store.extra["generation"] = 3
    store.save()
    index_path, meta_path = HnswStore.files(tmp_path, "frame")
    meta_path.unlink()
    loaded = HnswStore.load(tmp_path, "frame", model_id=MODEL, dim=store.dim)
    assert len(loaded) == 50 and loaded.meta_stale and loaded.extra == {}
    assert np.array_equal(loaded.keys(), store.keys())
    with pytest.raises(IndexCorrupt, match="missing"):  # without the dimension to check against, it stays refused
        HnswStore.load(tmp_path, "frame", model_id=MODEL)
    index_path.write_bytes(index_path.read_bytes()[:40])
    with pytest.raises(IndexCorrupt, match="truncated"):
        HnswStore.load(tmp_path, "frame", model_id=MODEL, dim=store.dim)


# ---------------------------------------------------------------- corruption


@pytest.fixture
def saved(tmp_path: Path) -> Path:
    store, _ = small_store(tmp_path, n=200)
    store.save()
    return tmp_path / "frame.hnsw"


def test_truncated_index_raises_corrupt_without_crashing(saved: Path) -> None:
    good = saved.read_bytes()
    cuts = sorted({0, 1, 50, 95, 96, 97, *np.linspace(100, len(good) - 1, 40).astype(int).tolist()})
    for cut in cuts:
        saved.write_bytes(good[:cut])
        with pytest.raises(IndexCorrupt, match=str(saved)):
            HnswStore.load(saved.parent, "frame", model_id=MODEL)
    saved.write_bytes(good + b"\0" * 13)  # trailing garbage
    with pytest.raises(IndexCorrupt, match=str(saved)):
        HnswStore.load(saved.parent, "frame", model_id=MODEL)
    saved.write_bytes(good)
    assert len(HnswStore.load(saved.parent, "frame", model_id=MODEL)) == 200


def test_meta_and_index_disagreeing_on_dim_is_corrupt(saved: Path) -> None:
    meta_path = saved.with_name("frame.meta.json")
    meta = json.loads(meta_path.read_text())
    meta["dim"] = 512
    meta_path.write_text(json.dumps(meta))
    with pytest.raises(IndexCorrupt, match=r"says dim 512 but the index holds 64-d"):
        HnswStore.load(saved.parent, "frame", model_id=MODEL)


def test_out_of_range_link_is_corrupt(saved: Path) -> None:
    data = bytearray(saved.read_bytes())
    data[96 + 4 : 96 + 8] = (10**6).to_bytes(4, "little")  # first neighbour of element 0
    saved.write_bytes(bytes(data))
    with pytest.raises(IndexCorrupt, match="neighbour out of range"):
        HnswStore.load(saved.parent, "frame", model_id=MODEL)


@pytest.mark.parametrize("damage", ["no index", "bad json", "field missing", "newer schema"])  # no meta: lagging
def test_missing_or_bad_files_are_corrupt(saved: Path, damage: str) -> None:
    meta_path = saved.with_name("frame.meta.json")
    meta = json.loads(meta_path.read_text())
    if damage == "no index":
        saved.unlink()
    elif damage == "bad json":
        meta_path.write_text("{not json")
    elif damage == "field missing":
        del meta["M"]
        meta_path.write_text(json.dumps(meta))
    else:
        meta["schema_version"] = 99
        meta_path.write_text(json.dumps(meta))
    with pytest.raises(IndexCorrupt, match="frame"):
        HnswStore.open_or_create(saved.parent, "frame", model_id=MODEL, dim=DIM)


# ---------------------------------------------------------------- threads


def test_searching_while_another_thread_adds_and_resizes(tmp_path: Path) -> None:
    vectors = unit_vectors(3000)
    store = HnswStore.create(tmp_path, "frame", model_id=MODEL, dim=DIM, capacity=10)
    store.add(vectors[:10], np.arange(1, 11))
    errors: list[BaseException] = []
    done = threading.Event()

    def searcher() -> None:
        try:
            while not done.is_set():
                keys, _ = store.search(vectors[:5], 5)
                assert keys.shape[1] == 5
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    thread = threading.Thread(target=searcher)
    thread.start()
    try:
        for start in range(10, 3000, 100):
            batch = vectors[start : start + 100]
            store.add(batch, np.arange(start + 1, start + 1 + len(batch)))
    finally:
        done.set()
        thread.join()
    assert not errors
    assert len(store) == 3000


# ---------------------------------------------------------------- VectorStore


def test_vectors_round_trip_growth_and_reopen(tmp_path: Path) -> None:
    vectors = unit_vectors(300)
    keys = np.arange(1, 301) * 7  # sparse keys up to 2100 force growth past the initial 1024 rows
    with VectorStore.open(tmp_path, "frame", dim=DIM, model_id=MODEL) as store:
        assert store.capacity == 1024
        store.write(keys[:100], vectors[:100])
        store.write(keys[100:], vectors[100:])
        assert store.capacity >= 2101
        assert (tmp_path / "frame.f16").stat().st_size == store.capacity * DIM * 2
        got = store.read(keys)
        assert got.dtype == np.float32 and got.shape == (300, DIM)
        np.testing.assert_allclose(got, vectors, atol=1e-3)
        store.flush()
        raw = np.fromfile(tmp_path / "frame.f16", dtype=np.float16).reshape(-1, DIM)
        np.testing.assert_array_equal(raw[keys[5]], vectors[5].astype(np.float16))
    header = json.loads((tmp_path / "frame.f16.json").read_text())
    assert header == {"dim": DIM, "dtype": "float16", "schema_version": 1, "model_id": MODEL}
    reopened = VectorStore.open(tmp_path, "frame", dim=DIM, model_id=MODEL, create=False)
    np.testing.assert_allclose(reopened.read(keys), vectors, atol=1e-3)
    np.testing.assert_array_equal(reopened.read([1]), np.zeros((1, DIM)))  # never written: zeros
    reopened.close()
    with pytest.raises(ValueError, match="closed"):
        reopened.read([7])


def test_vectors_key_beyond_file_raises_key_error(tmp_path: Path) -> None:
    store = VectorStore.open(tmp_path, "video", dim=DIM, model_id=MODEL)
    store.write([3], unit_vectors(1))
    with pytest.raises(KeyError, match="key 5000"):
        store.read([3, 5000])
    with pytest.raises(KeyError, match="key 0"):
        store.read([0])
    with pytest.raises(ValueError, match="positive"):
        store.write([0], unit_vectors(1))
    with pytest.raises(ValueError, match=r"\(N, 64\)"):
        store.write([1], unit_vectors(1, dim=8))


def test_vectors_refuse_another_model_or_width(tmp_path: Path) -> None:
    VectorStore.open(tmp_path, "frame", dim=DIM, model_id=MODEL).close()
    with pytest.raises(IndexModelMismatch, match=r"built with model 'test-model/a', not 'other/b'"):
        VectorStore.open(tmp_path, "frame", dim=DIM, model_id="other/b")
    with pytest.raises(IndexModelMismatch, match="64-d"):
        VectorStore.open(tmp_path, "frame", dim=512, model_id=MODEL)
    (tmp_path / "frame.f16.json").unlink()
    with pytest.raises(IndexCorrupt, match=r"frame\.f16\.json"):
        VectorStore.open(tmp_path, "frame", dim=DIM, model_id=MODEL)
    # a reader arriving while the writer is between creating the data file and its header waits for it
    early = VectorStore.open(tmp_path, "frame", dim=DIM, model_id=MODEL, readonly=True)
    assert early.capacity == 0 and not early.refresh()
    with pytest.raises(IndexCorrupt, match="missing"):
        VectorStore.open(tmp_path, "nothing", dim=DIM, model_id=MODEL, create=False)


def test_readonly_reader_follows_a_growing_writer(tmp_path: Path) -> None:
    reader = VectorStore.open(tmp_path, "segment", dim=DIM, model_id=MODEL, readonly=True)
    assert reader.capacity == 0 and not reader.refresh()  # nothing written yet
    writer = VectorStore.open(tmp_path, "segment", dim=DIM, model_id=MODEL)
    vectors = unit_vectors(2)
    writer.write([1], vectors[:1])
    writer.flush()
    assert reader.refresh() and reader.capacity == 1024
    np.testing.assert_allclose(reader.read([1]), vectors[:1], atol=1e-3)
    writer.write([5000], vectors[1:])  # grows the file under the reader's map
    writer.flush()
    assert reader.capacity == 1024
    np.testing.assert_allclose(reader.read([5000]), vectors[1:], atol=1e-3)  # remaps on demand
    assert reader.capacity == writer.capacity
    assert not reader.refresh()
    with pytest.raises(PermissionError, match="read-only"):
        reader.write([2], vectors[:1])
    reader.close()
    writer.close()


# ---------------------------------------------------------------- brute force reference


def test_brute_force_topk_matches_a_full_sort() -> None:
    matrix = unit_vectors(500, seed=11)
    queries = unit_vectors(7, seed=12)
    rows, scores = brute_force_topk(matrix, queries, 5)
    full = queries @ matrix.T
    np.testing.assert_array_equal(rows, np.argsort(-full, axis=1)[:, :5])
    np.testing.assert_allclose(scores, np.take_along_axis(full, rows, axis=1), rtol=1e-6)
    rows, scores = brute_force_topk(matrix[:3], queries[0], 10)
    assert rows.shape == scores.shape == (1, 3)
    assert brute_force_topk(matrix, queries, 0)[0].shape == (7, 0)


def test_code_store_round_trip_unwritten_rows_and_bad_codes(tmp_path: Path) -> None:
    """Sparse codes as uint16 rows: ids exact, weights to 1.5e-5, a row never written has zero weights."""
    from engine.index.codes import CodeStore
    from engine.index.vectors import VectorStore

    rows = VectorStore.open(tmp_path, "frame.codes", dim=8, model_id="m", dtype="uint16")
    codes = CodeStore(rows, 4)
    ids = np.array([[3, 1, 0, 2], [65535, 7, 9, 8]])
    weights = np.array([[0.7, 0.2, 0.06, 0.04], [1.0, 0.0, 0.0, 0.0]])
    codes.write([5, 9], ids, weights)
    codes.flush()
    got_ids, got_weights = CodeStore(
        VectorStore.open(tmp_path, "frame.codes", dim=8, model_id="m", readonly=True, dtype="uint16"), 4
    ).read([5, 9, 7])
    np.testing.assert_array_equal(got_ids[:2], ids)
    np.testing.assert_allclose(got_weights[:2], weights, atol=1e-5)
    assert got_weights[2].sum() == 0  # never written: "no stored code"
    with pytest.raises(ValueError, match="concept ids"):
        codes.write([1], np.array([[70000, 0, 0, 0]]), weights[:1])
    assert (tmp_path / "frame.codes.u16").is_file() and not (tmp_path / "frame.codes.f16").exists()
    header = json.loads((tmp_path / "frame.codes.u16.json").read_text())
    assert header["dtype"] == "uint16" and header["dim"] == 8
