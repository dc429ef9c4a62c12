"""Clip export (ffmpeg and OpenCV), marker files (EDL, FCPXML), thumbnails and the export CLI."""

from __future__ import annotations

import argparse
import json
import shutil
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from engine.cli.export import register
from engine.export.markers import Marker, MarkerError, markers_from, to_edl, to_fcpxml, write_markers
from engine.jobs import CancelToken, JobCancelled
from engine.media.decode import MediaError, probe
from engine.media.export import ExportError, clip_file_name, export_clip, safe_output_path
from engine.media.thumbnails import thumbnail
from tests.engine.videos import BLUE, RED


@pytest.fixture
def video(tmp_path: Path) -> Path:
    from engine.media.synthetic import write_color_video

    return write_color_video(tmp_path / "src" / "red then blue.mp4", [(3, RED), (3, BLUE)], fps=10)


@pytest.mark.parametrize("use_ffmpeg", [True, False])
def test_export_clip_has_the_moments_duration(video: Path, tmp_path: Path, use_ffmpeg: bool) -> None:
    if use_ffmpeg and shutil.which("ffmpeg") is None:
        pytest.skip("the ffmpeg program is not installed")
    progress: list[float] = []
    out = export_clip(video, 2.0, 4.5, tmp_path / "clip.mp4", use_ffmpeg=use_ffmpeg,
                      progress=lambda f, m: progress.append(f))  # fmt: skip
    info = probe(out)
    assert abs(info.duration_s - 2.5) <= 0.15
    assert progress[-1] == 1.0
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temp file left behind


@pytest.mark.parametrize("use_ffmpeg", [True, False])
def test_exported_files_get_the_umasks_permissions_not_a_temp_files(
    video: Path, tmp_path: Path, use_ffmpeg: bool
) -> None:
    """A clip or a marker file is the user's to share: 0o644 under umask 022 (mkstemp made it 0o600)."""
    import os
    import stat

    if use_ffmpeg and shutil.which("ffmpeg") is None:
        pytest.skip("ffmpeg is not installed")
    old = os.umask(0o022)
    try:
        clip = export_clip(video, 1.0, 3.0, tmp_path / "clip.mp4", use_ffmpeg=use_ffmpeg)
        markers = write_markers([Marker(str(video), 1.0, 3.0, "a moment")], tmp_path / "moments.edl")
        assert stat.S_IMODE(clip.stat().st_mode) == 0o644 and stat.S_IMODE(markers.stat().st_mode) == 0o644
        os.umask(0o077)
        private = write_markers([Marker(str(video), 1.0, 2.0, "x")], tmp_path / "private.edl")
        assert stat.S_IMODE(private.stat().st_mode) == 0o600
        markers.chmod(0o640)  # a file replaced keeps the permissions its owner gave it
        write_markers([Marker(str(video), 2.0, 4.0, "another")], markers)
        assert stat.S_IMODE(markers.stat().st_mode) == 0o640
    finally:
        os.umask(old)


def test_export_into_a_folder_generates_a_safe_name(video: Path, tmp_path: Path) -> None:
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    out = export_clip(video, 1.0, 2.0, out_dir, use_ffmpeg=False)
    assert out.parent == out_dir.resolve() and out.name == "red then blue 00m01s-00m02s.mp4"


def test_names_cannot_escape_the_folder(tmp_path: Path) -> None:
    assert "/" not in clip_file_name("../../etc/pass wd;rm -rf", 0, 1)
    assert safe_output_path(tmp_path, "../../evil.mp4").parent == tmp_path.resolve()
    assert safe_output_path(tmp_path, "..") == tmp_path.resolve() / "clip.mp4"
    (tmp_path / "link.mp4").symlink_to("/etc/hostname")
    with pytest.raises(ExportError):  # a symlink pointing out of the folder is refused
        safe_output_path(tmp_path, "link.mp4")


def test_export_rejects_bad_ranges_and_sources(video: Path, tmp_path: Path) -> None:
    with pytest.raises(ExportError, match="empty range"):
        export_clip(video, 5.0, 5.0, tmp_path / "x.mp4", use_ffmpeg=False)
    with pytest.raises(MediaError):
        export_clip(tmp_path / "missing.mp4", 0, 1, tmp_path / "x.mp4")
    with pytest.raises(ExportError, match="does not exist"):
        export_clip(video, 0, 1, tmp_path / "no" / "x.mp4", use_ffmpeg=False)


def test_export_cancel_leaves_nothing(video: Path, tmp_path: Path) -> None:
    token = CancelToken()
    token.cancel()
    with pytest.raises(JobCancelled):
        export_clip(video, 0, 5, tmp_path / "x.mp4", use_ffmpeg=False, cancel=token)
    assert list(tmp_path.glob("*x.mp4*")) == []


def test_edl_lists_each_moment_with_timecodes() -> None:
    marks = [Marker("/v/a.mp4", 5.0, 9.0, "dog", 87.4), Marker("/v/b.mp4", 61.0, 62.4)]
    edl = to_edl(marks, title="dogs", fps=25)
    lines = edl.splitlines()
    assert lines[0] == "TITLE: dogs" and lines[1] == "FCM: NON-DROP FRAME"
    assert "001  AX       V     C        00:00:05:00 00:00:09:00 00:00:00:00 00:00:04:00" in lines
    assert "002  AX       V     C        00:01:01:00 00:01:02:10 00:00:04:00 00:00:05:10" in lines
    assert "* COMMENT: dog (87%)" in lines and "* FROM CLIP NAME: b.mp4" in lines


def test_fcpxml_marks_moments_on_each_video() -> None:
    marks = [Marker("/v/a.mp4", 5.0, 9.0, "dog", duration=20.0), Marker("/v/a.mp4", 12, 13), Marker("/v/b&c.mp4", 1, 2)]
    root = ET.fromstring(to_fcpxml(marks, fps=25).split("\n", 2)[2])
    assert root.tag == "fcpxml" and root.get("version") == "1.9"
    clips = root.findall(".//spine/asset-clip")
    assert [c.get("name") for c in clips] == ["a.mp4", "b&c.mp4"]
    assert clips[0].get("duration") == "500/25s" and clips[1].get("offset") == "500/25s"
    assert [(m.get("start"), m.get("duration"), m.get("value")) for m in clips[0].findall("marker")] == [
        ("125/25s", "100/25s", "dog"),
        ("300/25s", "25/25s", "Moment 2"),
    ]
    assert root.find(".//asset/media-rep").get("src") == "file:///v/a.mp4"


def test_marker_errors_and_file_formats(tmp_path: Path) -> None:
    with pytest.raises(MarkerError, match="no moments"):
        to_edl([])
    with pytest.raises(MarkerError, match="bad range"):
        to_edl([Marker("a", 3, 2)])
    with pytest.raises(MarkerError, match="say the format"):
        write_markers([Marker("a", 0, 1)], tmp_path / "m.txt")
    assert write_markers([Marker("a", 0, 1)], tmp_path / "m.fcpxml").read_text().startswith("<?xml")
    assert markers_from([{"video": "v", "start": 1, "end": 2, "relevance": 50}])[0].relevance == 50.0


def test_thumbnail_is_cached(video: Path, tmp_path: Path) -> None:
    first = thumbnail(video, 4.0, size=(64, 36), cache_dir=tmp_path / "thumbs")
    assert first.is_file() and first.read_bytes()[:2] == b"\xff\xd8"
    mtime = first.stat().st_mtime_ns
    assert thumbnail(video, 4.02, size=(64, 36), cache_dir=tmp_path / "thumbs") == first
    assert first.stat().st_mtime_ns == mtime
    with pytest.raises(MediaError):
        thumbnail(tmp_path / "nope.mp4", 0, cache_dir=tmp_path / "thumbs")


def _cli(argv: list[str]) -> int:
    parser = argparse.ArgumentParser()
    handlers = register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    return handlers[args.command](args)


def test_cli_exports_a_clip_and_markers(video: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "c.mp4"
    assert _cli(["export-clip", str(video), "--start", "1", "--end", "3", "--out", str(out), "--no-ffmpeg"]) == 0
    assert abs(probe(out).duration_s - 2.0) <= 0.15
    moments = tmp_path / "moments.json"
    moments.write_text(json.dumps([{"video": str(video), "start": 3, "end": 6, "relevance": 90}]))
    edl = tmp_path / "m.edl"
    assert _cli(["export-markers", str(moments), "--moment", f"{video}:0:1", "--out", str(edl)]) == 0
    assert edl.read_text().count(" AX ") == 2
    assert _cli(["export-markers", "--moment", "v:x:1", "--out", str(edl)]) == 2
    assert "VIDEO:START:END" in capsys.readouterr().err
