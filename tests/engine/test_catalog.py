"""Catalog: schema migrations, folders, videos, embeddings and the generation counter."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from engine.library.catalog import Catalog, CatalogError, NewEmbedding
from engine.library.schema import MIGRATIONS, SCHEMA_VERSION


def _embedding(video_id: int, fp: str = "fp", frames: int = 3) -> NewEmbedding:
    return NewEmbedding(
        video_id=video_id,
        fingerprint=fp,
        sample_every_s=1.0,
        segment_window_s=4.0,
        segment_stride_s=2.0,
        frame_times=[float(i) for i in range(frames)],
        frame_indices=list(range(frames)),
        frame_is_cut=[False] * frames,
        segments=[(0.0, float(frames))],
    )


def test_new_catalog_is_at_current_schema_and_healthy(tmp_path: Path) -> None:
    with Catalog(tmp_path / "c.sqlite") as cat:
        assert cat.schema_version == SCHEMA_VERSION
        assert cat.integrity_check() == ["ok"]
        mode = cat._query("PRAGMA journal_mode")[0][0]
        assert mode == "wal"


def test_migrates_a_version_1_catalog_step_by_step_keeping_rows(tmp_path: Path) -> None:
    path = tmp_path / "old.sqlite"
    db = sqlite3.connect(path)
    db.executescript(MIGRATIONS[0])
    db.execute("PRAGMA user_version = 1")
    db.execute("INSERT INTO folders (path, added_at) VALUES ('/videos', 1.0)")
    db.execute("INSERT INTO models (model_id, dim, created_at) VALUES ('m', 8, 1.0)")
    db.execute(
        "INSERT INTO videos (folder_id, path, size, mtime_ns, fingerprint, added_at, updated_at)"
        " VALUES (1, '/videos/a.mp4', 10, 5, 'fp', 1.0, 1.0)"
    )
    db.execute(
        "INSERT INTO embeddings (video_id, model, fingerprint, sample_every_s, n_frames, n_segments, created_at)"
        " VALUES (1, 1, 'fp', 1.0, 0, 0, 1.0)"
    )
    db.commit()
    db.close()
    with Catalog(path) as cat:
        assert cat.schema_version == SCHEMA_VERSION
        assert [f["path"] for f in cat.folders()] == ["/videos"]
        row = cat._query("SELECT segment_window_s, segment_stride_s FROM embeddings")[0]
        assert (row[0], row[1]) == (4.0, 2.0)  # defaults filled by the v2 step


def test_refuses_a_catalog_from_a_newer_release(tmp_path: Path) -> None:
    path = tmp_path / "new.sqlite"
    db = sqlite3.connect(path)
    db.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    db.close()
    with pytest.raises(CatalogError, match="newer Scenefind"):
        Catalog(path)


def test_refuses_a_file_that_is_not_a_database(tmp_path: Path) -> None:
    path = tmp_path / "junk.sqlite"
    path.write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(CatalogError, match=str(path)):
        Catalog(path)


def test_folders_nested_and_duplicate(tmp_path: Path) -> None:
    outer = tmp_path / "outer"
    (outer / "inner").mkdir(parents=True)
    with Catalog(tmp_path / "c.sqlite") as cat:
        inner_row, _ = cat.add_folder(outer / "inner")
        vid = cat.add_video(inner_row["id"], outer / "inner" / "a.mp4", 1, 1, "fp")
        outer_row, _ = cat.add_folder(outer)  # absorbs the inner folder; its video moves over
        assert [f["path"] for f in cat.folders()] == [str(outer.resolve())]
        assert cat.video(vid)["folder_id"] == outer_row["id"]
        again, _ = cat.add_folder(outer)
        assert again["id"] == outer_row["id"]
        with pytest.raises(CatalogError, match="already part of the library"):
            cat.add_folder(outer / "inner")
        with pytest.raises(CatalogError, match="not a folder"):
            cat.add_folder(tmp_path / "missing")


def test_embeddings_keys_generation_and_removal(tmp_path: Path) -> None:
    folder = tmp_path / "v"
    folder.mkdir()
    with Catalog(tmp_path / "c.sqlite") as cat:
        f, _ = cat.add_folder(folder)
        a = cat.add_video(f["id"], folder / "a.mp4", 1, 1, "fa")
        b = cat.add_video(f["id"], folder / "b.mp4", 1, 1, "fb")
        cat.ensure_model("m", 8)
        assert cat.generation("m") == 0
        assert [v["id"] for v in cat.pending_videos("m", 1.0, 4.0, 2.0)] == [a, b]
        with cat.transaction() as db:
            keys_a, removed = cat.insert_embedding(db, "m", _embedding(a, "fa"))
        assert removed.count() == 0
        assert cat.generation("m") == 1
        assert len(keys_a.frames) == 3 and len(keys_a.segments) == 1
        assert [v["id"] for v in cat.pending_videos("m", 1.0, 4.0, 2.0)] == [b]
        assert [v["id"] for v in cat.pending_videos("m", 0.5, 4.0, 2.0)] == [a, b]  # other sampling: pending
        assert cat.live_keys("m", "frame").tolist() == keys_a.frames
        # Re-embedding replaces the old rows; the old keys come back to be marked deleted, never reused.
        with cat.transaction() as db:
            keys_a2, removed = cat.insert_embedding(db, "m", _embedding(a, "fa"))
        assert sorted(removed.by_model["m"]["frame"]) == keys_a.frames
        assert min(keys_a2.frames) > max(keys_a.frames)
        # A failing transaction leaves nothing behind.
        with pytest.raises(RuntimeError), cat.transaction() as db:
            cat.insert_embedding(db, "m", _embedding(b, "fb"))
            raise RuntimeError("simulated crash before commit")
        assert cat.embedding_for(b, "m") is None
        assert cat.video(b)["status"] == "pending"
        removed = cat.remove_videos([a])
        assert sorted(removed.by_model["m"]["frame"]) == keys_a2.frames
        assert cat.live_keys("m", "frame").size == 0
        assert cat.video(a) is None


def test_changed_file_drops_vectors_but_a_move_keeps_them(tmp_path: Path) -> None:
    folder = tmp_path / "v"
    folder.mkdir()
    with Catalog(tmp_path / "c.sqlite") as cat:
        f, _ = cat.add_folder(folder)
        a = cat.add_video(f["id"], folder / "a.mp4", 1, 1, "fa")
        cat.ensure_model("m", 8)
        with cat.transaction() as db:
            cat.insert_embedding(db, "m", _embedding(a, "fa"))
        removed = cat.update_video_file(a, folder / "renamed.mp4", 1, 2, "fa")
        assert removed.count() == 0 and cat.embedding_for(a, "m") is not None
        assert cat.video(a)["path"] == str(folder / "renamed.mp4")
        removed = cat.update_video_file(a, folder / "renamed.mp4", 2, 3, "changed")
        assert removed.count() == 5 and cat.embedding_for(a, "m") is None
        assert cat.video(a)["status"] == "pending"


def test_jobs_left_running_by_a_dead_process_become_interrupted(tmp_path: Path) -> None:
    with Catalog(tmp_path / "c.sqlite") as cat:
        job = cat.start_job("index", "m", 10)
        with cat.transaction() as db:
            db.execute("UPDATE jobs SET pid = 999999999 WHERE id = ?", (job,))
        second = cat.start_job("index", "m", 10)
        statuses = {j["id"]: j["status"] for j in cat.jobs()}
        assert statuses == {job: "interrupted", second: "running"}
        cat.finish_job(second, "done", "ok")
        assert cat.jobs()[0]["status"] == "done"


def test_failed_video_is_not_pending_until_it_changes(tmp_path: Path) -> None:
    folder = tmp_path / "v"
    folder.mkdir()
    with Catalog(tmp_path / "c.sqlite") as cat:
        f, _ = cat.add_folder(folder)
        a = cat.add_video(f["id"], folder / "a.mp4", 1, 1, "fa")
        cat.mark_failed(a, "cannot decode")
        assert cat.pending_videos("m", 1.0, 4.0, 2.0) == []
        assert cat.video(a)["error"] == "cannot decode"
        cat.update_video_file(a, folder / "a.mp4", 5, 5, "fa2")
        assert [v["id"] for v in cat.pending_videos("m", 1.0, 4.0, 2.0)] == [a]


def test_v3_migration_rebuilds_videos_keeping_rows_and_their_vectors(tmp_path: Path) -> None:
    """The v2 -> v3 step rebuilds ``videos`` (to allow 'no_video'). With foreign keys on, dropping the old
    table would cascade into embeddings, segments and frames: nothing may be lost, and keys still cascade."""
    path = tmp_path / "v2.sqlite"
    db = sqlite3.connect(path)
    db.executescript(MIGRATIONS[0] + ";" + MIGRATIONS[1])
    db.execute("PRAGMA user_version = 2")
    db.execute("INSERT INTO folders (path, added_at) VALUES ('/videos', 1.0)")
    db.execute("INSERT INTO models (model_id, dim, created_at) VALUES ('m', 8, 1.0)")
    for name, status in (("a", "indexed"), ("b", "failed")):
        db.execute(
            "INSERT INTO videos (folder_id, path, size, mtime_ns, fingerprint, status, error, added_at, updated_at)"
            f" VALUES (1, '/videos/{name}.mp4', 10, 5, 'fp{name}', '{status}', NULL, 1.0, 1.0)"
        )
    db.execute(
        "INSERT INTO embeddings (video_id, model, fingerprint, sample_every_s, n_frames, n_segments, created_at)"
        " VALUES (1, 1, 'fpa', 1.0, 2, 1, 1.0)"
    )
    db.execute("INSERT INTO segments (embedding_id, idx, start, end) VALUES (1, 0, 0.0, 2.0)")
    db.executemany("INSERT INTO frames (embedding_id, t, frame_index, is_cut) VALUES (1, ?, ?, 0)", [(0, 0), (1, 30)])
    db.commit()
    db.close()
    with Catalog(path) as cat:
        assert cat.schema_version == SCHEMA_VERSION >= 3
        assert [(v["path"], v["status"]) for v in cat.videos()] == [
            ("/videos/a.mp4", "indexed"),
            ("/videos/b.mp4", "failed"),
        ]
        assert cat.embedding_for(1, "m") == 1 and len(cat.frames_of(1)) == 2 and len(cat.segments_of(1)) == 1
        assert cat.integrity_check() == ["ok"]
        assert cat._query("PRAGMA foreign_keys")[0][0] == 1
        removed = cat.remove_videos([1])  # the rebuilt table still cascades to its embeddings
        assert removed.count() == 4 and cat._query("SELECT COUNT(*) FROM frames")[0][0] == 0


def test_a_sound_file_is_recorded_as_no_video_not_failed_and_not_pending(tmp_path: Path) -> None:
    folder = tmp_path / "v"
    folder.mkdir()
    with Catalog(tmp_path / "c.sqlite") as cat:
        f, _ = cat.add_folder(folder)
        a = cat.add_video(f["id"], folder / "memo.m4a", 1, 1, "fa")
        b = cat.add_video(f["id"], folder / "clip.mp4", 1, 1, "fb")
        cat.mark_no_video(a, "no video stream (audio only)")
        assert [v["id"] for v in cat.pending_videos("m", 1.0, 4.0, 2.0)] == [b]
        assert [v["path"] for v in cat.videos(status="no_video")] == [str(folder / "memo.m4a")]
        assert cat.videos(status="failed") == []
        (counts,) = cat.folder_counts("m", 1.0, 4.0, 2.0)
        assert (counts.videos, counts.pending, counts.failed, counts.no_video) == (1, 1, 0, 1)
        cat.update_video_file(a, folder / "memo.m4a", 5, 5, "fa2")  # changed: looked at again
        assert {v["id"] for v in cat.pending_videos("m", 1.0, 4.0, 2.0)} == {a, b}


def test_a_folder_length_says_how_many_videos_are_not_read_yet(tmp_path: Path) -> None:
    # Mid-way through a first index only some lengths are known: the folder's length is then a lower bound, and
    # says so; a failed file has no length to wait for.
    folder = tmp_path / "v"
    folder.mkdir()
    with Catalog(tmp_path / "c.sqlite") as cat:
        f, _ = cat.add_folder(folder)
        read, waiting, broken = (cat.add_video(f["id"], folder / n, 1, 1, n) for n in ("a.mp4", "b.mp4", "c.mp4"))
        cat.set_video_info(read, duration=90.0, fps=30.0, width=640, height=360, codec="h264")
        cat.mark_failed(broken, "moov atom not found")
        (counts,) = cat.folder_counts("m", 1.0, 4.0, 2.0)
        assert (counts.seconds, counts.unread) == (90.0, 1)
        cat.set_video_info(waiting, duration=30.0, fps=30.0, width=640, height=360, codec="h264")
        (counts,) = cat.folder_counts("m", 1.0, 4.0, 2.0)
        assert (counts.seconds, counts.unread) == (120.0, 0)


def test_the_text_stage_skips_sound_files_and_files_whose_pictures_failed(tmp_path: Path) -> None:
    """Screen text reads pictures: a sound file has none, and a file the picture stage failed on would only fail
    again for the same reason. Speech still hears both."""
    folder = tmp_path / "v"
    folder.mkdir()
    with Catalog(tmp_path / "c.sqlite") as cat:
        f, _ = cat.add_folder(folder)
        sound = cat.add_video(f["id"], folder / "memo.m4a", 1, 1, "fa")
        broken = cat.add_video(f["id"], folder / "broken.mp4", 1, 1, "fb")
        fine = cat.add_video(f["id"], folder / "fine.mp4", 1, 1, "fc")
        cat.mark_no_video(sound, "no video stream (audio only)")
        cat.mark_failed(broken, "cannot decode the first frame")
        assert [v["id"] for v in cat.stage_pending("text", "ocr")] == [fine]
        assert {v["id"] for v in cat.stage_pending("speech", "tiny.en")} == {sound, broken, fine}


def test_stage_counts_are_per_folder_and_add_up_to_the_librarys(tmp_path: Path) -> None:
    from engine.library.transcripts import SpeechRow, StageOutcome

    catalog = Catalog(tmp_path / "catalog.sqlite")
    home, work, empty = (tmp_path / name for name in ("home", "work", "empty"))
    ids = {}
    for folder, names in ((home, ("a", "b", "c", "d")), (work, ("e", "f"))):
        folder.mkdir()
        row, _ = catalog.add_folder(folder)
        for name in names:
            ids[name] = catalog.add_video(row["id"], folder / f"{name}.mp4", 1, 1, f"fp-{name}")
    empty.mkdir()
    catalog.add_folder(empty)
    said = [SpeechRow(0.0, 1.0, "hello", '[[0.0,1.0,"hello",0.9]]')]
    catalog.commit_speech(ids["a"], "fp-a", "tiny", said, StageOutcome("done", items=1))
    catalog.commit_speech(ids["e"], "fp-e", "tiny", said, StageOutcome("done", items=1))
    catalog.commit_speech(ids["f"], "fp-f", "base", said, StageOutcome("done", items=1))  # another model
    catalog.record_stage(ids["b"], "speech", "fp-b", "other", StageOutcome("no_audio"))  # whatever the model
    catalog.record_stage(ids["c"], "speech", "fp-c", "tiny", StageOutcome("failed", error="corrupt"))
    catalog.commit_speech(ids["d"], "old-fp", "tiny", said, StageOutcome("done", items=1))  # the file changed
    by_folder = catalog.stage_folder_counts("speech", "tiny")
    assert by_folder == {
        str(home): {"done": 1, "no_audio": 1, "failed": 1, "pending": 1},
        str(work): {"done": 1, "no_audio": 0, "failed": 0, "pending": 1},
        str(empty): {"done": 0, "no_audio": 0, "failed": 0, "pending": 0},
    }
    assert catalog.stage_counts("speech", "tiny") == {"done": 2, "no_audio": 1, "failed": 1, "pending": 2}
    text = catalog.stage_folder_counts("text", "ocr")
    assert text[str(work)] == {"done": 0, "no_audio": 0, "failed": 0, "pending": 2}
    folders = catalog.stage_folder_states("speech", "tiny")
    states = {Path(path).name: status for videos in folders.values() for path, status in videos.items()}
    assert set(folders[str(work)]) == {str(work / "e.mp4"), str(work / "f.mp4")} and folders[str(empty)] == {}
    assert states == {  # each video's own state, which the counts above are the sums of
        "a.mp4": "done", "b.mp4": "no_audio", "c.mp4": "failed", "d.mp4": "pending", "e.mp4": "done",
        "f.mp4": "pending",
    }  # fmt: skip
