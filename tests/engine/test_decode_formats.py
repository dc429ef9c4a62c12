"""Every kind of file people have, generated with ffmpeg, each picture showing its own time (a binary clock):
the sample at t shows the picture of t, upright, tone-mapped; durations, sizes and rotations match ffprobe;
variable frame rates keep a sample in every second; sound files are "no video stream"; a truncated 4K file
indexes what it can and says where it broke; cuts between keyframes are still found, to the frame."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from engine.media.clock_video import RateStep, read_clock, write_clock_video, write_sound_file
from engine.media.decode import (
    DecodeStats,
    NoVideoStream,
    SampledFrame,
    frame_at,
    looks_like_video,
    probe,
    sample_frames,
)
from engine.media.synthetic import run_ffmpeg

pytestmark = pytest.mark.skipif(shutil.which("ffmpeg") is None, reason="needs the ffmpeg program (Debian ffmpeg)")

VFR = (RateStep(4, 30), RateStep(8, 10), RateStep(12, 60))
KINDS: dict[str, dict[str, Any]] = {
    "h264 1 s GOP.mp4": {"duration_s": 6},
    "h264 long GOP 60 fps.mp4": {"duration_s": 5, "fps": 60, "gop_s": None},
    "hevc 8-bit.mp4": {"duration_s": 4, "codec": "hevc"},
    "hevc 10-bit.mov": {"duration_s": 4, "codec": "hevc", "ten_bit": True},
    "hdr pq.mp4": {"duration_s": 3, "codec": "hevc", "hdr": "pq"},
    "hdr hlg.mp4": {"duration_s": 3, "codec": "hevc", "hdr": "hlg"},
    "av1.mp4": {"duration_s": 4, "codec": "av1"},
    "vp9.webm": {"duration_s": 4, "codec": "vp9"},
    "mjpeg.avi": {"duration_s": 3, "codec": "mjpeg"},
    "subtitles and sound.mkv": {"duration_s": 3, "subtitles": True, "audio": True},
    "timecode data stream.mp4": {"duration_s": 3, "data_stream": True, "audio": True},
    "portrait 90.mp4": {"duration_s": 3, "rotation": 90},
    "portrait 270 hevc.mp4": {"duration_s": 3, "rotation": 270, "codec": "hevc"},
    "vfr 30-10-60 keys by time.mp4": {"duration_s": 12, "rates": VFR},
    "vfr 30-10-60 long GOP.mkv": {"duration_s": 12, "rates": VFR, "gop_s": None},
}


@pytest.fixture(scope="module")
def clips(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("formats")
    return {name: write_clock_video(folder / name, **kw) for name, kw in KINDS.items()}


def _ffprobe(path: Path) -> dict[str, Any]:
    out = subprocess.run(
        ["ffprobe", "-v", "error", "-show_streams", "-show_format", "-of", "json", str(path)],
        capture_output=True, text=True, check=True, timeout=60,
    )  # fmt: skip
    return json.loads(out.stdout)


def _video_stream(meta: dict[str, Any]) -> dict[str, Any]:
    return next(s for s in meta["streams"] if s["codec_type"] == "video")


def _rotation(stream: dict[str, Any]) -> int:
    for side in stream.get("side_data_list", []):
        if "rotation" in side:
            return int(side["rotation"]) % 360
    return 0


def _clock(frame: SampledFrame) -> float:
    shown = read_clock(frame.image)
    assert shown is not None, f"no upright clock in the sample at {frame.t:.3f} s"
    return shown


@pytest.mark.parametrize("name", list(KINDS))
def test_the_sample_at_t_shows_the_picture_of_t_upright(clips: dict[str, Path], name: str) -> None:
    path = clips[name]
    meta = _ffprobe(path)
    stream = _video_stream(meta)
    start = float(stream.get("start_time") or 0.0)  # a muxer may shift the video a little (audio priming)
    stats = DecodeStats()
    frames = list(sample_frames(path, 1.0, cuts=False, short_side=96, stats=stats))
    for f in frames:
        assert abs(_clock(f) - (f.t - start)) <= 0.011, (name, f.t, _clock(f))
        assert min(f.image.shape[:2]) == 96
    times = np.array([f.t for f in frames])
    assert all(np.abs(times - k).min() <= 0.55 for k in range(int(KINDS[name]["duration_s"]))), times
    assert list(times) == sorted(set(times))
    if "gop_s" not in KINDS[name] and "mjpeg" not in name:
        assert stats.strategy == "keyframes", stats  # 1 s GOPs: keyframes only
        assert stats.sent == len(frames)


@pytest.mark.parametrize("name", list(KINDS))
def test_duration_size_and_rotation_match_ffprobe(clips: dict[str, Path], name: str) -> None:
    path = clips[name]
    meta = _ffprobe(path)
    stream = _video_stream(meta)
    info = probe(path)
    end = float(stream.get("start_time") or 0.0) + float(stream.get("duration") or meta["format"]["duration"])
    if "duration" not in stream:  # Matroska stores no per-track length: the container's is the longest track's
        end = float(meta["format"]["duration"])
    assert info.duration_s == pytest.approx(end, abs=0.5 / info.fps + 1e-3), (name, info)
    rotation = _rotation(stream)
    shown = (stream["width"], stream["height"])[:: -1 if rotation % 180 else 1]
    assert ((info.width, info.height) == shown and info.rotation == (360 - rotation) % 360) or info.rotation == rotation
    assert (
        info.codec
        == {"h264": "h264", "hevc": "hevc", "av1": "av1", "vp9": "vp9", "mjpeg": "mjpeg"}[stream["codec_name"]]
    )
    assert info.hdr == {"smpte2084": "pq", "arib-std-b67": "hlg"}.get(stream.get("color_transfer", ""), "")


@pytest.mark.parametrize("name", ["vfr 30-10-60 keys by time.mp4", "vfr 30-10-60 long GOP.mkv"])
def test_variable_frame_rate_has_a_sample_in_every_second_at_its_true_time(clips: dict[str, Path], name: str) -> None:
    path = clips[name]
    info = probe(path)
    assert info.duration_s == pytest.approx(12.0, abs=0.02) and info.frame_count == 4 * 30 + 4 * 10 + 4 * 60
    for mode in ("auto", "exact"):
        frames = list(sample_frames(path, 1.0, cuts=False, short_side=96, mode=mode))
        assert [int(f.t) for f in frames] == list(range(12)), (mode, [f.t for f in frames])
        assert all(abs(_clock(f) - f.t) <= 0.011 for f in frames)
    exact = list(sample_frames(path, 1.0, cuts=False, short_side=96, mode="exact"))
    assert [f.t for f in exact] == pytest.approx(list(range(12)), abs=1e-3)


@pytest.mark.parametrize("name", ["hdr pq.mp4", "hdr hlg.mp4"])
def test_hdr_is_tone_mapped_to_the_sdr_picture(clips: dict[str, Path], name: str) -> None:
    """The clock was drawn in SDR and encoded as HDR at 203-nit reference white: tone-mapped, its red band
    is red again (shown as if it were SDR, PQ and BT.2020 code values look dull and desaturated)."""
    image = frame_at(clips[name], 2.0, short_side=96)  # 2.00 s: 200 = 0b11001000, three white cells
    assert read_clock(image) == pytest.approx(2.0)
    band = np.median(image[:10].reshape(-1, 3), axis=0)
    assert band[0] >= 170 and band[1] <= 60 and band[2] <= 60, band  # SDR (220, 30, 30)
    white = np.percentile(image.mean(axis=2), 99)
    assert 200 <= white <= 250, white  # SDR white (235) comes back near SDR white


def test_thumbnails_and_single_frames_of_any_format(clips: dict[str, Path]) -> None:
    for name in ("av1.mp4", "portrait 270 hevc.mp4", "hdr pq.mp4", "vfr 30-10-60 long GOP.mkv"):
        image = frame_at(clips[name], 2.5, short_side=96)
        shown = read_clock(image)
        assert shown is not None and 2.5 - 0.011 <= shown <= 2.7, (name, shown)
    assert read_clock(frame_at(clips["av1.mp4"], 99.0)) == pytest.approx(4.0 - 1 / 30, abs=0.011)  # past the end


def test_av1_indexes(clips: dict[str, Path], tmp_path: Path) -> None:
    from engine.library.library import Library
    from engine.settings import EngineSettings

    folder = tmp_path / "videos"
    folder.mkdir()
    (folder / "av1 clip.mp4").symlink_to(clips["av1.mp4"])
    renamed = tmp_path / "av1 clip.bin"  # an unknown extension: a decoder looks at it
    renamed.symlink_to(clips["av1.mp4"])
    assert looks_like_video(renamed)
    with Library(tmp_path / "home", settings=EngineSettings(model="fake:color")) as lib:
        lib.add_folder(folder)
        result = lib.index()
        assert result.failed == [] and result.indexed == 1 and result.frames == 4
        (row,) = lib.catalog.videos()
        assert (row["status"], row["codec"], row["width"], row["height"]) == ("indexed", "av1", 320, 180)


def test_sound_files_are_no_video_stream_in_the_catalog_status_and_index(tmp_path: Path, capsys) -> None:
    from engine.cli import main

    folder = tmp_path / "videos"
    sounds = [write_sound_file(folder / name) for name in ("memo.m4a", "song.mp3", "voice only.mp4")]
    write_clock_video(folder / "clip.mp4", 2.0)
    for path in sounds:
        with pytest.raises(NoVideoStream, match="no video stream"):
            probe(path)
    home = str(tmp_path / "home")
    assert main(["--home", home, "--model", "fake:color", "add", str(folder)]) == 0
    assert main(["--home", home, "--model", "fake:color", "--no-progress", "index"]) == 0  # not a failure
    out = capsys.readouterr().out
    assert "1 indexed" in out and "0 failed" in out
    assert all(f"no video stream (audio only, kept for speech indexing): {p}" in out for p in sounds)
    assert main(["--home", home, "--model", "fake:color", "status"]) == 0
    out = capsys.readouterr().out
    assert "1 of 1 videos indexed, 0 pending, 0 failed" in out and "3 sound files without a video stream" in out
    assert all(f"no video stream (audio only): {p}" in out for p in sounds)
    assert main(["--home", home, "--model", "fake:color", "--no-progress", "index"]) == 0  # nothing to redo
    assert "nothing new to index; 1 already indexed (of 1)" in capsys.readouterr().out


def test_a_truncated_4k_file_indexes_what_it_can_and_says_where_it_broke(tmp_path: Path, capsys) -> None:
    from engine.cli import main

    folder = tmp_path / "videos"
    whole = write_clock_video(tmp_path / "whole.mp4", 2.0, size=(3840, 2160))
    data = whole.read_bytes()
    folder.mkdir()
    cut = folder / "4k cut short.mp4"
    cut.write_bytes(data[: len(data) * 11 // 20])
    home = str(tmp_path / "home")
    main(["--home", home, "--model", "fake:color", "add", str(folder)])
    assert main(["--home", home, "--model", "fake:color", "--no-progress", "index"]) == 0
    captured = capsys.readouterr()
    assert "1 indexed" in captured.out
    assert f"partly indexed: {cut}: decoding stopped at " in captured.err and "of 2.0 s" in captured.err
    stopped_at = float(captured.err.split("decoding stopped at ")[1].split(" s")[0])
    frames = list(sample_frames(cut, 0.25, cuts=False, short_side=96))
    assert 0.5 < stopped_at < 1.9 and abs(stopped_at - frames[-1].t) < 0.3, (stopped_at, frames[-1].t)
    assert all(abs(_clock(f) - f.t) <= 0.011 for f in frames)


def _cut_video(path: Path, cuts_at: list[float], *, gop: int | None, fps: int = 25, seconds: float = 8.0) -> Path:
    """Noisy colour shots changing at ``cuts_at`` with a moving box; ``gop`` fixed (no scene-cut keyframes,
    as phones and many editors write) or None (x264's defaults: a keyframe at each cut)."""
    rng = np.random.default_rng(3)
    colours = [(200, 40, 40), (40, 170, 60), (40, 60, 200), (190, 190, 60), (120, 60, 160)]
    w, h = 256, 144

    def frames():
        for n in range(round(seconds * fps)):
            shot = sum(n / fps >= c for c in cuts_at)
            img = np.empty((h, w, 3), np.int16)
            img[:] = colours[shot % len(colours)]
            x = (n * 4) % (w - 40)
            img[50:90, x : x + 40] = 255 - img[0, 0]
            img += rng.normal(0, 6, img.shape).astype(np.int16)
            yield np.clip(img, 0, 255).astype(np.uint8)

    args = ["-f", "rawvideo", "-pix_fmt", "rgb24", "-s", f"{w}x{h}", "-r", str(fps), "-i", "-"]
    args += ["-c:v", "libx264", "-pix_fmt", "yuv420p"]  # the default preset keeps x264's scene-cut keyframes
    args += ["-preset", "ultrafast", "-g", str(gop), "-keyint_min", str(gop), "-sc_threshold", "0"] if gop else []
    run_ffmpeg([*args, str(path)], frames(), path)
    return path


@pytest.mark.parametrize("gop", [25, None], ids=["fixed 1 s GOP", "x264 defaults"])
def test_cuts_are_still_found_when_only_keyframes_are_decoded(tmp_path: Path, gop: int | None) -> None:
    """A fixed GOP (phones, many editors): the decoded keyframes differ, so the stretch between them is decoded
    again and the cut located to its first frame. x264's defaults put keyframes at some cuts (exact) and
    long GOPs elsewhere, decoded whole and probed four times a second (a cut is found within a probe)."""
    cuts_at = [2.4, 4.0, 5.72]
    path = _cut_video(tmp_path / "cuts.mp4", cuts_at, gop=gop)
    stats = DecodeStats()
    frames = list(sample_frames(path, 1.0, cuts=True, short_side=96, stats=stats))
    found = [f.t for f in frames if f.is_cut]
    assert len(found) == len(cuts_at), (found, stats)
    late = 0.0 if gop else 0.25 + 1 / 25  # at most one probe interval late where every frame is decoded
    for t, cut in zip(found, cuts_at, strict=True):
        assert cut - 0.021 <= t <= cut + late + 0.021, (found, stats)  # the first frame of the new shot
    if gop:  # keyframes only, plus one GOP decoded again per cut that falls between two of them
        assert stats.strategy == "keyframes" and stats.located_cuts == 2 and stats.decoded < 200 / 2
    periodic = np.array([f.t for f in sample_frames(path, 1.0, cuts=False)])
    assert all(np.abs(periodic - k).min() <= 0.55 for k in range(8))


@pytest.mark.parametrize("codec", ["h264", "hevc", "av1", "vp9"])
def test_two_second_gops_decode_half_and_give_the_same_pictures_as_decoding_everything(
    tmp_path: Path, codec: str
) -> None:
    """Samples between keyframes: each GOP is decoded from its keyframe up to the sample (x265's open GOPs
    too, whose leading pictures need the GOP before), and the pictures are those of a sequential decode."""
    path = write_clock_video(tmp_path / f"gop2.{'webm' if codec == 'vp9' else 'mp4'}", 6.0, codec=codec, gop_s=2.0)
    every, planned = DecodeStats(), DecodeStats()
    by_all = list(sample_frames(path, 1.0, cuts=False, short_side=90, mode="sequential", stats=every))
    by_plan = list(sample_frames(path, 1.0, cuts=False, short_side=90, stats=planned))
    assert [f.t for f in by_plan] == [f.t for f in by_all] == pytest.approx(list(range(6)), abs=1e-3)
    assert all(np.array_equal(a.image, b.image) for a, b in zip(by_all, by_plan, strict=True))
    assert all(abs(_clock(f) - f.t) <= 0.011 for f in by_plan)
    assert planned.strategy == "keyframes+gops" and planned.sent < 0.65 * every.sent and planned.decode_errors == 0


def test_a_moment_indexed_at_t_plays_the_picture_of_t(clips: dict[str, Path], tmp_path: Path) -> None:
    """Through the indexer and the catalog (what search answers and the player seeks to): every stored frame
    time is a time whose picture shows that time, a sample in every second of a variable-rate file too."""
    from engine.library.library import Library
    from engine.settings import EngineSettings

    folder = tmp_path / "videos"
    folder.mkdir()
    chosen = ["vfr 30-10-60 long GOP.mkv", "portrait 270 hevc.mp4", "hevc 10-bit.mov"]
    for name in chosen:
        (folder / name).symlink_to(clips[name])
    settings = EngineSettings(model="fake:color", speech=False, screen_text=False)  # the picture stage alone
    with Library(tmp_path / "home", settings=settings) as lib:
        lib.add_folder(folder)
        assert lib.index().indexed == len(chosen)
        for row in lib.catalog.videos():
            times = [f["t"] for f in lib.catalog.frames_of(lib.catalog.embedding_for(row["id"], "fake:color"))]
            name = Path(row["path"]).name
            assert {int(t) for t in times} == set(range(int(KINDS[name]["duration_s"]))), (name, times)
            for t in times:
                assert read_clock(frame_at(row["path"], t, short_side=96)) == pytest.approx(t, abs=0.011), (name, t)
