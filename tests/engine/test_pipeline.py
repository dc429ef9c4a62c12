"""The indexing pipeline end to end: incremental, resumable, keeps going past bad files."""

from __future__ import annotations

import os
import shutil
import signal
import sqlite3
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from engine.jobs import CancelToken, JobCancelled
from engine.library.library import Library, LibraryBusy
from engine.search.searcher import Searcher, SearchError
from engine.settings import EngineSettings
from tests.engine.processes import signal_once_committed
from tests.engine.videos import color_library

REPO = Path(__file__).resolve().parents[2]


def _lib(home: Path, model: str = "fake:color", **changes: object) -> Library:
    return Library(home, settings=EngineSettings(model=model).replace(**changes))


def _snapshot(home: Path) -> dict[str, list[tuple[object, ...]]]:
    """Catalog content that must not depend on how the run went (ids excluded)."""
    db = sqlite3.connect(home / "catalog.sqlite")
    try:
        return {
            "videos": db.execute("SELECT path, fingerprint, status, duration FROM videos ORDER BY path").fetchall(),
            "frames": db.execute(
                "SELECT v.path, f.t, f.frame_index, f.is_cut FROM frames f JOIN embeddings e ON e.id = f.embedding_id"
                " JOIN videos v ON v.id = e.video_id ORDER BY v.path, f.t"
            ).fetchall(),
            "segments": db.execute(
                "SELECT v.path, s.start, s.end FROM segments s JOIN embeddings e ON e.id = s.embedding_id"
                " JOIN videos v ON v.id = e.video_id ORDER BY v.path, s.start"
            ).fetchall(),
        }
    finally:
        db.close()


def _results(home: Path, queries: list[str]) -> list[list[tuple[str, float, float]]]:
    with _lib(home) as lib:
        searcher = Searcher(lib, lib.encoder())
        out = [[(h.video, round(h.score, 4), h.best_time) for h in searcher.search_text(q, k=10)] for q in queries]
        searcher.close()
    return out


def test_index_then_search_finds_the_moment_and_reports_bad_files(tmp_path: Path) -> None:
    videos = color_library(tmp_path / "videos")
    (tmp_path / "videos" / "broken.mp4").write_bytes(os.urandom(4096))
    progress: list[tuple[float, str]] = []
    with _lib(tmp_path / "home") as lib:
        lib.add_folder(tmp_path / "videos")
        result = lib.index(progress=lambda f, m: progress.append((f, m)))
        assert result.indexed == 3
        assert [Path(p).name for p, _ in result.failed] == ["broken.mp4"]
        assert "broken.mp4" not in result.failed[0][1] or result.failed[0][1]
        failed = lib.catalog.videos(status="failed")
        assert len(failed) == 1 and failed[0]["error"]
        fractions = [f for f, _ in progress]
        assert fractions == sorted(fractions) and fractions[-1] == 1.0
        searcher = Searcher(lib, lib.encoder())
        blue = searcher.search_text("a blue scene", k=3)
        assert blue[0].video == str(videos["red_then_blue"])
        assert 5.0 <= blue[0].best_time <= 9.0
        green = searcher.search_text("green", k=3)
        assert green[0].video == str(videos["green"])
        searcher.close()


def test_second_run_touches_nothing_unchanged(tmp_path: Path) -> None:
    color_library(tmp_path / "videos")
    home = tmp_path / "home"
    with _lib(home) as lib:
        lib.add_folder(tmp_path / "videos")
        lib.index()
    before = _snapshot(home)
    ids_before = sqlite3.connect(home / "catalog.sqlite").execute("SELECT id FROM frames ORDER BY id").fetchall()
    index_files = {p: p.stat().st_mtime_ns for p in (home / "indexes").rglob("*.f16")}
    with _lib(home) as lib:
        again = lib.index()
    assert (again.indexed, again.new, again.changed, again.unchanged) == (0, 0, 0, 3)
    assert _snapshot(home) == before
    ids_after = sqlite3.connect(home / "catalog.sqlite").execute("SELECT id FROM frames ORDER BY id").fetchall()
    assert ids_after == ids_before
    assert {p: p.stat().st_mtime_ns for p in index_files} == index_files


def test_moved_video_keeps_its_vectors_and_removed_video_disappears(tmp_path: Path) -> None:
    videos = color_library(tmp_path / "videos")
    home = tmp_path / "home"
    with _lib(home) as lib:
        lib.add_folder(tmp_path / "videos")
        lib.index()
        keys_before = lib.catalog.live_keys("fake:color", "frame").tolist()
    moved = videos["green"].rename(tmp_path / "videos" / "renamed green.mp4")
    videos["yellow"].unlink()
    with _lib(home) as lib:
        result = lib.index()
        assert (result.moved, result.removed, result.indexed) == (1, 1, 0)
        assert lib.catalog.video_by_path(moved) is not None
        remaining = lib.catalog.live_keys("fake:color", "frame").tolist()
        assert set(remaining) < set(keys_before)  # nothing re-embedded, yellow's frames gone
        searcher = Searcher(lib, lib.encoder())
        hits = searcher.search_text("yellow", k=10)
        assert str(videos["yellow"]) not in {h.video for h in hits}
        for grain in ("video", "segment"):  # the grains with a graph; frames are reached through them
            graph = searcher.stores().grains[grain].index
            assert graph is not None and graph.keys().tolist() == lib.catalog.live_keys("fake:color", grain).tolist()
        assert searcher.stores().grains["frame"].index is None
        searcher.close()


def test_cancel_keeps_finished_videos_and_resume_completes(tmp_path: Path) -> None:
    color_library(tmp_path / "videos")
    home = tmp_path / "home"
    token = CancelToken()

    def progress(fraction: float, message: str) -> None:
        if message.startswith("Indexed 1/"):
            token.cancel()

    with _lib(home) as lib:
        lib.add_folder(tmp_path / "videos")
        with pytest.raises(JobCancelled):
            lib.index(progress=progress, cancel=token)
        indexed = len(lib.catalog.videos(status="indexed"))
        assert 1 <= indexed < 3
        assert lib.catalog.jobs()[0]["status"] == "cancelled"
        result = lib.index()
        assert result.indexed == 3 - indexed
    reference = tmp_path / "reference"
    with _lib(reference) as lib:
        lib.add_folder(tmp_path / "videos")
        lib.index()
    assert _snapshot(home) == _snapshot(reference)


def _index_command(home: Path) -> list[str]:
    return [sys.executable, "-m", "engine.cli", "--home", str(home), "--model", "fake:color", "--no-progress", "index"]


@pytest.mark.slow
def test_killed_index_run_resumes_to_the_same_catalog_and_results(tmp_path: Path) -> None:
    folder = tmp_path / "videos"
    for i in range(3):
        color_library(folder / f"set{i}")
    home, reference = tmp_path / "home", tmp_path / "reference"
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    for h in (home, reference):
        subprocess.run([*_index_command(h)[:-1], "add", str(folder)], check=True, env=env, cwd=REPO)
    subprocess.run(_index_command(reference), check=True, env=env, cwd=REPO, capture_output=True)

    interrupted = False
    for _attempt in range(6):  # kill once at least one video is committed but before the run finishes
        proc = subprocess.Popen(
            _index_command(home), env=env, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        signal_once_committed(proc, home, 2, signal.SIGKILL, timeout_s=60)
        proc.wait()
        if proc.returncode == -signal.SIGKILL:
            db = sqlite3.connect(home / "catalog.sqlite")
            pending = db.execute("SELECT COUNT(*) FROM videos WHERE status = 'pending'").fetchone()[0]
            db.close()
            interrupted = pending > 0
            if interrupted:
                break
        shutil.rmtree(home / "indexes", ignore_errors=True)
        for f in home.glob("catalog.sqlite*"):
            f.unlink()
        subprocess.run([*_index_command(home)[:-1], "add", str(folder)], check=True, env=env, cwd=REPO)
    assert interrupted, "could not kill the indexer mid-run in 6 attempts"
    resumed = subprocess.run(_index_command(home), env=env, cwd=REPO, capture_output=True, text=True)
    assert resumed.returncode == 0, resumed.stderr
    assert _snapshot(home) == _snapshot(reference)
    queries = ["red", "a blue scene", "green", "yellow"]
    assert _results(home, queries) == _results(reference, queries)
    db = sqlite3.connect(home / "catalog.sqlite")
    index_jobs = [r[0] for r in db.execute("SELECT status FROM jobs WHERE kind = 'index' ORDER BY id")]
    assert index_jobs[-2:] == ["interrupted", "done"]
    assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"


def test_real_clips_decode_and_index(shared_data: Path, tmp_path: Path) -> None:
    with _lib(tmp_path / "home", model="test-tiny") as lib:
        lib.add_folder(shared_data / "videos")
        result = lib.index()
        assert result.failed == []
        assert result.indexed == 10
        for video in lib.catalog.videos():
            assert video["status"] == "indexed" and video["duration"] and video["duration"] > 1
        searcher = Searcher(lib, lib.encoder())
        hits = searcher.search_text("a person playing the guitar", k=10)
        assert len(hits) == 10 and all(0 <= h.best_time <= 600 for h in hits)
        searcher.close()


def test_one_writer_at_a_time(tmp_path: Path) -> None:
    (tmp_path / "videos").mkdir()
    with (
        _lib(tmp_path / "home") as lib,
        lib.writing(),
        _lib(tmp_path / "home") as other,
        pytest.raises(LibraryBusy, match="another Scenefind process"),
    ):
        other.add_folder(tmp_path / "videos")


def test_search_with_a_model_that_indexed_nothing_says_so(tmp_path: Path) -> None:
    color_library(tmp_path / "videos")
    with _lib(tmp_path / "home") as lib:
        lib.add_folder(tmp_path / "videos")
        lib.index()
        searcher = Searcher(lib, lib.encoder("fake:hash-8"))
        with pytest.raises(SearchError, match="nothing is indexed with model fake:hash-8"):
            searcher.search_text("red")
        with pytest.raises(SearchError, match="empty"):
            Searcher(lib, lib.encoder()).search_text("   ")


def test_segments_cover_the_video_and_pool_frames(tmp_path: Path) -> None:
    color_library(tmp_path / "videos")
    with _lib(tmp_path / "home") as lib:
        lib.add_folder(tmp_path / "videos")
        lib.index()
        video = lib.catalog.video_by_path(tmp_path / "videos" / "red_then_blue.mp4")
        emb = lib.catalog.embedding_for(video["id"], "fake:color")
        segments = lib.catalog.segments_of(emb)
        assert segments[0]["start"] == 0.0 and segments[-1]["end"] == pytest.approx(12.0, abs=0.2)
        starts = [s["start"] for s in segments]
        assert np.allclose(np.diff(starts), 2.0)
        frames = lib.catalog.frames_of(emb)
        assert len(frames) >= 12 and any(f["is_cut"] for f in frames)


@pytest.mark.skipif(not Path("/proc/self/fd").is_dir(), reason="names fsynced files through /proc (Linux)")
def test_every_file_written_for_a_video_is_fsynced_before_its_rows_commit(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The vectors and sparse codes of a video are fsynced (together, from threads) inside the catalog
    transaction that names them, so the catalog never names a row a crash could lose; a failed fsync fails
    the run, and no row names what it wrote."""
    from engine.media.synthetic import write_color_video

    write_color_video(tmp_path / "videos" / "red.mp4", [(2, (220, 30, 30))], fps=10)
    events: list[str] = []
    real_fsync = os.fsync

    def fsync(fd: int) -> None:
        events.append(Path(os.readlink(f"/proc/self/fd/{fd}")).name)
        real_fsync(fd)

    lib = _lib(tmp_path / "home", speech=False, screen_text=False)
    lib.add_folder(tmp_path / "videos")
    lib.catalog._db.set_trace_callback(lambda sql: events.append(sql) if sql in ("BEGIN IMMEDIATE", "COMMIT") else None)
    monkeypatch.setattr(os, "fsync", fsync)
    with lib:
        assert lib.index().indexed == 1
    written = {f"{grain}.{kind}" for grain in ("video", "segment", "frame") for kind in ("f16", "codes.u16")}
    synced_inside: list[set[str]] = []  # per transaction: the files fsynced after its BEGIN, before its COMMIT
    inside = False
    for event in events:
        if event in ("BEGIN IMMEDIATE", "COMMIT"):
            inside = event == "BEGIN IMMEDIATE"
            synced_inside += [set()] if inside else []
        elif inside:
            synced_inside[-1].add(event)
    assert any(written <= names for names in synced_inside), events

    def failing(fd: int) -> None:
        if Path(os.readlink(f"/proc/self/fd/{fd}")).name == "segment.codes.u16":
            raise OSError(5, "Input/output error")
        real_fsync(fd)

    write_color_video(tmp_path / "videos" / "green.mp4", [(2, (30, 200, 30))], fps=10)
    monkeypatch.setattr(os, "fsync", failing)
    with _lib(tmp_path / "home", speech=False, screen_text=False) as again:
        with pytest.raises(OSError, match="Input/output error"):
            again.index()
        green = again.catalog.video_by_path(tmp_path / "videos" / "green.mp4")
        red = again.catalog.video_by_path(tmp_path / "videos" / "red.mp4")
        assert green is not None and again.catalog.embedding_for(green["id"], "fake:color") is None
        assert red is not None and again.catalog.embedding_for(red["id"], "fake:color") is not None
