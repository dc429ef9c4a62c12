"""Scanner: what counts as a video, symlinks, hidden files, and new/changed/moved/removed detection."""

from __future__ import annotations

import os
from pathlib import Path

from engine.library.catalog import Catalog
from engine.library.scanner import fingerprint, is_video_path, scan_library, walk_videos


def _write(path: Path, content: bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(content)
    return path


MP4_HEAD = b"\x00\x00\x00\x18ftypisom" + b"\x00" * 2000


def test_recognises_videos_by_extension_and_by_content(tmp_path: Path) -> None:
    by_ext = _write(tmp_path / "a.MKV", b"x" * 10)
    sniffed = _write(tmp_path / "clip.bin", MP4_HEAD)
    mkv_sniffed = _write(tmp_path / "noext", b"\x1a\x45\xdf\xa3" + b"\x00" * 2000)
    text = _write(tmp_path / "notes.bin", b"hello world " * 200)
    photo = _write(tmp_path / "photo.jpg", MP4_HEAD)  # a known non-video extension is never sniffed
    assert is_video_path(by_ext, 10)
    assert is_video_path(sniffed, sniffed.stat().st_size)
    assert is_video_path(mkv_sniffed, mkv_sniffed.stat().st_size)
    assert not is_video_path(text, text.stat().st_size)
    assert not is_video_path(photo, photo.stat().st_size)


def test_walk_skips_hidden_and_system_and_survives_symlink_loops(tmp_path: Path) -> None:
    root = tmp_path / "lib"
    _write(root / "a.mp4", b"1")
    _write(root / "sub" / "b.mov", b"2")
    _write(root / ".hidden" / "c.mp4", b"3")
    _write(root / ".d.mp4", b"4")
    _write(root / "$RECYCLE.BIN" / "e.mp4", b"5")
    (root / "sub" / "loop").symlink_to(root, target_is_directory=True)
    (root / "broken.mp4").symlink_to(tmp_path / "nowhere.mp4")
    outside = _write(tmp_path / "elsewhere" / "f.mkv", b"6")
    (root / "linked").symlink_to(outside.parent, target_is_directory=True)
    found = sorted(p.path.relative_to(root).as_posix() for p in walk_videos(root))
    assert found == ["a.mp4", "linked/f.mkv", "sub/b.mov"]


def test_fingerprint_is_content_based_and_cheap(tmp_path: Path) -> None:
    a = _write(tmp_path / "a.mp4", os.urandom(1_000_000))
    b = _write(tmp_path / "b.mp4", a.read_bytes())
    assert fingerprint(a) == fingerprint(b)
    data = bytearray(a.read_bytes())
    data[-1] ^= 0xFF
    c = _write(tmp_path / "c.mp4", bytes(data))
    assert fingerprint(c) != fingerprint(a)


def test_scan_reports_new_changed_moved_removed_unchanged(tmp_path: Path) -> None:
    root = tmp_path / "lib"
    keep = _write(root / "keep.mp4", os.urandom(5000))
    change = _write(root / "change.mp4", os.urandom(5000))
    move = _write(root / "move.mp4", os.urandom(5000))
    gone = _write(root / "gone.mp4", os.urandom(5000))
    other_root = tmp_path / "other"
    other_root.mkdir()
    with Catalog(tmp_path / "c.sqlite") as cat:
        folder, _ = cat.add_folder(root)
        other, _ = cat.add_folder(other_root)
        first = scan_library(cat)
        assert len(first.new) == 4 and not first.changed and not first.removed
        for item in first.new:
            cat.add_video(item.folder_id, item.stat.path, item.stat.size, item.stat.mtime_ns, item.fingerprint)
        second = scan_library(cat)
        assert second.unchanged == 4 and not (second.new or second.changed or second.moved or second.removed)

        change.write_bytes(os.urandom(6000))
        move.rename(other_root / "moved-here.mp4")  # across folders: still the same video
        gone.unlink()
        _write(root / "fresh.mp4", os.urandom(5000))
        third = scan_library(cat)
        assert [r["path"] for r, _ in third.changed] == [str(change)]
        assert [(r["path"], n.stat.path.name, n.folder_id) for r, n in third.moved] == [
            (str(move), "moved-here.mp4", other["id"])
        ]
        assert [r["path"] for r in third.removed] == [str(gone)]
        assert [n.stat.path.name for n in third.new] == ["fresh.mp4"]
        assert third.unchanged == 1 and keep.exists()
        assert folder["id"] != other["id"]


def test_missing_folder_keeps_its_videos(tmp_path: Path) -> None:
    root = tmp_path / "usb"
    _write(root / "a.mp4", os.urandom(3000))
    with Catalog(tmp_path / "c.sqlite") as cat:
        cat.add_folder(root)
        for item in scan_library(cat).new:
            cat.add_video(item.folder_id, item.stat.path, item.stat.size, item.stat.mtime_ns, item.fingerprint)
        (root / "a.mp4").unlink()
        root.rmdir()  # an unplugged drive looks like this
        result = scan_library(cat)
        assert result.removed == []
        assert result.unreadable and "missing or not mounted" in result.unreadable[0][1]
