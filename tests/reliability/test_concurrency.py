"""The app and the CLI on one library at once: one writer at a time (a lock that a dead process never
leaves behind), and readers that always see a consistent index, searching while the indexer works."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

import engine.index.hnsw_store as hnsw_store
from engine.bench.faults import index_child, write_kill_library
from engine.bench.harness import MODEL, child_context, prepare_library
from engine.cli import main
from engine.index.hnsw_store import HnswStore
from engine.library.library import Library, LibraryBusy
from engine.search.query import Query
from engine.search.searcher import Searcher, SearchError
from engine.settings import EngineSettings

REPO = Path(__file__).resolve().parents[2]
HOLD = (
    "import sys, time\n"
    "from pathlib import Path\n"
    "from engine.library.library import Library\n"
    "with Library(Path(sys.argv[1])) as lib, lib.writing():\n"
    "    print('holding', flush=True)\n"
    "    time.sleep(120)\n"
)


def _library(tmp_path: Path, videos: int = 3) -> tuple[Path, Path]:
    folder, home = tmp_path / "videos", tmp_path / "home"
    write_kill_library(folder, videos=videos)
    prepare_library(home, folder)
    return folder, home


def test_a_lock_file_left_behind_by_a_dead_process_does_not_block(tmp_path: Path) -> None:
    _, home = _library(tmp_path)
    (home / "writer.lock").write_text("12345\n", encoding="utf-8")  # what a crashed writer may leave
    with Library(home) as lib:
        assert lib.index().indexed == 3


def test_one_writer_at_a_time_and_a_killed_writer_leaves_no_stale_lock(tmp_path: Path, capsys) -> None:
    from desktop.engine_api import RealEngine

    folder, home = _library(tmp_path)
    holder = subprocess.Popen([sys.executable, "-c", HOLD, str(home)], cwd=REPO, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "holding"
        with Library(home) as lib, pytest.raises(LibraryBusy, match="another Scenefind process"):
            lib.index()
        assert main(["--home", str(home), "--model", MODEL, "--no-progress", "index"]) == 2
        assert "another Scenefind process is indexing or changing this library" in capsys.readouterr().err
        engine = RealEngine(Library(home))  # the app gets the same answer, which its views show
        with pytest.raises(LibraryBusy):
            engine.index()
        with pytest.raises(LibraryBusy):
            engine.add_folder(folder)
        engine.close()
    finally:
        holder.kill()  # SIGKILL: no chance to release anything
        holder.wait()
    assert (home / "writer.lock").exists()  # the file stays; the OS lock on it died with the process
    with Library(home) as lib:
        assert lib.index().indexed == 3


@pytest.mark.slow
def test_searching_from_the_app_and_the_cli_while_the_cli_indexes(tmp_path: Path) -> None:
    from desktop.engine_api import RealEngine

    _, home = _library(tmp_path, videos=16)
    indexer = child_context().Process(target=index_child, args=(str(home), MODEL), daemon=True)
    app = RealEngine(Library(home))  # a long-lived searcher, as the app keeps one
    searches, busy, seen = 0, 0, set()
    indexer.start()
    try:
        while indexer.is_alive():
            with Library(home, settings=EngineSettings(model=MODEL)) as lib:
                fresh = Searcher(lib, lib.encoder())
                try:
                    hits = fresh.search_text("red", k=50)
                except SearchError as exc:  # before the first video is committed
                    assert "nothing is indexed" in str(exc)
                    continue
                finally:
                    fresh.close()
                app_hits = app.search(Query(text="a blue scene", k=50, min_relevance=0)).videos
                for hit in [*hits, *app_hits]:
                    row = lib.catalog.video_by_path(hit.video)
                    assert row is not None and row["status"] == "indexed"  # only committed videos are found
                    assert np.isfinite(hit.score) and 0 <= hit.best_time <= (row["duration"] or 0) + 1
                assert len({h.video for h in hits}) == len(hits)
                try:
                    app.index()  # the app cannot write while the CLI does (it may have just finished)
                except LibraryBusy:
                    busy += 1
                seen.update(h.video for h in hits)
                searches += 1
    finally:
        indexer.join(120)
        app.close()
    assert indexer.exitcode == 0
    assert searches >= 2 and busy >= 1, "the indexer finished before a search could overlap it"
    with Library(home, settings=EngineSettings(model=MODEL)) as lib:
        searcher = Searcher(lib, lib.encoder())
        final = {h.video for h in searcher.search_text("red", k=50)}
        searcher.close()
        assert len(final) == 16 and seen <= final


def test_an_index_replaced_by_the_writer_while_a_reader_loads_it_is_read_again(tmp_path: Path, monkeypatch) -> None:
    """Loading checks the file, then hnswlib opens it again: a save in between must not pair one file's
    check with the other file's graph."""
    rng = np.random.default_rng(0)
    writer = HnswStore.create(tmp_path, "frame", model_id="m", dim=8)
    writer.add(rng.standard_normal((10, 8)).astype(np.float32), np.arange(1, 11))
    writer.save()
    real = hnsw_store._inspect_index_file
    calls = {"n": 0}

    def inspect_then_writer_saves(path: Path, **kwargs: int) -> tuple[np.ndarray, np.ndarray]:
        result = real(path, **kwargs)
        calls["n"] += 1
        if calls["n"] == 1:  # the writer saves a bigger index between our check and hnswlib's read
            time.sleep(0.01)  # a new mtime even on coarse clocks
            writer.add(rng.standard_normal((5, 8)).astype(np.float32), np.arange(11, 16))
            writer.save()
        return result

    monkeypatch.setattr(hnsw_store, "_inspect_index_file", inspect_then_writer_saves)
    reader = HnswStore.load(tmp_path, "frame", model_id="m", dim=8)
    assert calls["n"] == 2
    assert reader.keys().tolist() == list(range(1, 16)) and reader.element_count == 15
    keys, _ = reader.search(rng.standard_normal(8).astype(np.float32), 15)
    assert sorted(keys[0].tolist()) == list(range(1, 16))
