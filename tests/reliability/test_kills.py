"""Crash safety: SIGKILLs at random points, a full disk and failing saves never lose a row or a vector.

The kill harness is ``engine.bench.faults`` (the same code as ``scenefind bench faults``): the indexer runs in
child processes forked from a pre-imported server and is SIGKILLed after seeded random delays.
"""

from __future__ import annotations

import errno
import os
import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from engine.bench.faults import (
    KillReport,
    catalog_rows,
    check_after_kill,
    compare,
    full_disk_child,
    index_child,
    kill_and_resume,
    write_kill_library,
)
from engine.bench.harness import MODEL, prepare_library, run_child
from engine.index.hnsw_store import HnswStore
from engine.library.library import Library
from engine.settings import EngineSettings, load, save


@pytest.mark.slow
def test_twenty_sigkills_at_random_points_then_resume_equals_an_uninterrupted_run(tmp_path: Path) -> None:
    folder = tmp_path / "videos"
    write_kill_library(folder)
    result = kill_and_resume(folder, tmp_path / "work", kills=20, seed=1)
    assert result.kills >= 20
    assert result.kills_with_work_pending >= 5, result  # most kills interrupt real work, not an idle run
    assert result.integrity_failures == []
    assert result.index_load_failures == []
    assert result.resume_exit_code == 0
    assert (result.rows_lost, result.rows_extra, result.vectors_lost) == (0, 0, 0)
    assert result.results_equal
    assert result.temp_files_after_resume == 0  # interrupted atomic saves are cleaned up by the next writer
    assert result.ok
    db = sqlite3.connect(tmp_path / "work" / "killed" / "catalog.sqlite")
    statuses = [r[0] for r in db.execute("SELECT status FROM jobs ORDER BY id")]
    db.close()
    assert statuses[-1] == "done" and "running" not in statuses and "interrupted" in statuses


@pytest.mark.slow
def test_sigkills_in_the_speech_and_text_stages_lose_at_most_the_video_in_flight(tmp_path: Path) -> None:
    """The same harness on videos with speech and captions, indexed with the real tiny.en and RapidOCR: kills
    land in transcription and OCR too, and the resumed library has every transcript segment, word and text
    line of an uninterrupted run."""
    from engine.bench.speech_media import Caption, Utterance, write_spoken_video
    from tests.engine.speech_fixtures import tiny_en

    model = tiny_en()
    folder = tmp_path / "videos"
    for i, text in enumerate(("The train leaves from platform nine.", "Please water the plants on Tuesday.",
                              "We walked home in the rain.")):  # fmt: skip
        write_spoken_video(folder / f"talk{i}.mp4", 6, [Utterance(text, 1.0)], [Caption(f"Slide {i + 1}", 0, 5, 32)])
    result = kill_and_resume(folder, tmp_path / "work", kills=4, seed=3, settings={"speech_model": str(model)})
    assert result.kills >= 4 and result.integrity_failures == [] and result.index_load_failures == []
    assert result.resume_exit_code == 0
    assert (result.rows_lost, result.rows_extra, result.vectors_lost) == (0, 0, 0), result
    rows = catalog_rows(tmp_path / "work" / "killed")
    assert len(rows["speech"]) >= 3 and len(rows["text"]) >= 3  # the stages did real work
    assert {status for _, _, status, _, _ in rows["stages"]} == {"done"}
    db = sqlite3.connect(tmp_path / "work" / "killed" / "catalog.sqlite")
    kinds = {kind for (kind,) in db.execute("SELECT kind FROM jobs")}
    db.close()
    assert {"index", "speech", "text"} <= kinds


def _library(folder: Path, home: Path, videos: int) -> None:
    write_kill_library(folder, videos=videos)
    prepare_library(home, folder)


def test_a_full_disk_fails_the_run_with_a_message_and_loses_nothing(tmp_path: Path) -> None:
    """RLIMIT_FSIZE makes the kernel refuse every write past the limit (EFBIG), as a full disk would."""
    folder, home, reference = tmp_path / "videos", tmp_path / "home", tmp_path / "reference"
    _library(folder, home, 6)
    assert run_child(index_child, (str(home), MODEL)) == 0
    before = catalog_rows(home)
    write_kill_library(folder / "more", videos=6)
    prepare_library(reference, folder)
    assert run_child(index_child, (str(reference), MODEL)) == 0

    limit = max(p.stat().st_size for p in home.rglob("*") if p.is_file())
    log = tmp_path / "full.log"
    assert run_child(full_disk_child, (str(home), MODEL, str(log), limit)) == 2  # an error, not a crash
    message = log.read_text(encoding="utf-8")
    assert "scenefind: error:" in message and "disk full" in message and "Traceback" not in message
    assert check_after_kill(home)[:2] == ([], [])
    after = catalog_rows(home)
    assert all(before[table] <= after[table] for table in before)  # nothing indexed before was lost

    assert run_child(index_child, (str(home), MODEL)) == 0
    report = KillReport()
    compare(home, reference, report)
    assert (report.rows_lost, report.rows_extra, report.vectors_lost, report.results_equal) == (0, 0, 0, True)


def _failing(real: Callable[..., Any], fail_on: int, error: int) -> Callable[..., Any]:
    calls = {"n": 0}

    def wrapper(*args: Any, **kwargs: Any) -> Any:
        calls["n"] += 1
        if calls["n"] == fail_on:
            raise OSError(error, os.strerror(error))
        return real(*args, **kwargs)

    return wrapper


def _store(folder: Path, keys: range) -> HnswStore:
    store = HnswStore.create(folder, "frame", model_id="m", dim=8)
    rng = np.random.default_rng(0)
    store.add(rng.standard_normal((len(keys), 8)).astype(np.float32), np.asarray(keys))
    return store


def test_a_failed_index_save_leaves_the_previous_files_intact(tmp_path: Path, monkeypatch) -> None:
    store = _store(tmp_path, range(1, 11))
    store.save()
    before = {p.name: p.read_bytes() for p in tmp_path.iterdir()}
    store.add(np.ones((5, 8), np.float32), np.arange(11, 16))
    with monkeypatch.context() as m:  # the disk fills up as the new index is renamed in
        m.setattr(os, "replace", _failing(os.replace, 1, errno.ENOSPC))
        with pytest.raises(OSError, match="No space left"):
            store.save()
    assert {p.name: p.read_bytes() for p in tmp_path.iterdir()} == before  # no temp file left either
    assert HnswStore.load(tmp_path, "frame", model_id="m", dim=8).keys().tolist() == list(range(1, 11))


def test_a_short_write_by_hnswlib_is_caught_and_the_previous_index_kept(tmp_path: Path) -> None:
    store = _store(tmp_path, range(1, 11))
    store.save()
    before = {p.name: p.read_bytes() for p in tmp_path.iterdir()}
    store.add(np.ones((5, 8), np.float32), np.arange(11, 16))

    class ShortWrites:  # hnswlib does not check its stream: a full disk shows up as a short file
        def __init__(self, index: Any) -> None:
            self._index = index

        def __getattr__(self, name: str) -> Any:
            return getattr(self._index, name)

        def save_index(self, path: str) -> None:
            self._index.save_index(path)
            os.truncate(path, os.path.getsize(path) // 2)

    store._index = ShortWrites(store._index)
    with pytest.raises(OSError, match="disk full"):
        store.save()
    assert {p.name: p.read_bytes() for p in tmp_path.iterdir()} == before


def test_a_meta_write_failing_after_the_index_was_renamed_still_loads(tmp_path: Path, monkeypatch) -> None:
    store = _store(tmp_path, range(1, 11))
    store.save()
    store.add(np.ones((5, 8), np.float32), np.arange(11, 16))
    with monkeypatch.context() as m:
        m.setattr(os, "replace", _failing(os.replace, 2, errno.EIO))  # the index goes in, its meta does not
        with pytest.raises(OSError):
            store.save()
    loaded = HnswStore.load(tmp_path, "frame", model_id="m", dim=8)
    assert loaded.meta_stale and loaded.keys().tolist() == list(range(1, 16))


@pytest.mark.parametrize(
    ("call", "fail_on", "error"),
    [("replace", 2, errno.ENOSPC), ("replace", 7, errno.EIO), ("fsync", 3, errno.EIO), ("fsync", 29, errno.ENOSPC)],
)
def test_an_index_run_hit_by_a_write_error_resumes_to_the_same_library(
    tmp_path: Path, monkeypatch, call: str, fail_on: int, error: int
) -> None:
    """A write error part way (an index save, a vector flush before a commit) stops the run with an
    OSError; nothing committed is lost and the next run ends where an uninterrupted one does."""
    folder, home, reference = tmp_path / "videos", tmp_path / "home", tmp_path / "reference"
    _library(folder, home, 6)
    prepare_library(reference, folder)
    with Library(reference) as lib:
        lib.index()
    with monkeypatch.context() as m, Library(home) as lib:
        m.setattr(os, call, _failing(getattr(os, call), fail_on, error))
        with pytest.raises(OSError):
            lib.index()
    assert check_after_kill(home)[:2] == ([], [])
    assert not list((home / "indexes").rglob(".*.tmp"))  # the failed save removed its temp file
    with Library(home) as lib:
        lib.index()
    report = KillReport()
    compare(home, reference, report)
    assert (report.rows_lost, report.rows_extra, report.vectors_lost, report.results_equal) == (0, 0, 0, True)


def test_a_failed_settings_save_keeps_the_previous_settings(tmp_path: Path, monkeypatch) -> None:
    path = tmp_path / "settings.toml"
    save(EngineSettings(model="fake:color", batch_size=8), path)
    with monkeypatch.context() as m:
        m.setattr(os, "replace", _failing(os.replace, 1, errno.ENOSPC))
        with pytest.raises(OSError):
            save(EngineSettings(model="fake:color", batch_size=64), path)
    assert load(path).batch_size == 8
    assert [p.name for p in tmp_path.iterdir()] == ["settings.toml"]


def test_a_vector_file_whose_creation_was_killed_is_created_again(tmp_path: Path) -> None:
    """A kill between writing a new vector file and its header left a header-less file of zeros: the writer
    starts it again (it cannot hold a vector) instead of refusing to index forever."""
    folder, home = tmp_path / "videos", tmp_path / "home"
    _library(folder, home, 2)
    with Library(home) as lib:
        index_dir = lib.paths.index_dir(MODEL)
        index_dir.mkdir(parents=True)
        (index_dir / "frame.f16").write_bytes(bytes(16 * 2 * 1024))
        assert lib.index().indexed == 2
    assert check_after_kill(home)[:2] == ([], [])
