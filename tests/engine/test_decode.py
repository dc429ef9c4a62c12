"""Decoder tests on generated videos whose content is known, plus the real clips in ../shared/data."""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from engine.jobs import CancelToken, JobCancelled
from engine.media.decode import (
    VIDEO_EXTENSIONS,
    DecodeStats,
    MediaError,
    SampledFrame,
    looks_like_video,
    probe,
    sample_frames,
)
from engine.media.synthetic import h264_writer_available, write_color_video, write_h264_video

RED, GREEN, BLUE, GREY, BROWN = (230, 20, 20), (20, 220, 30), (25, 30, 225), (128, 128, 128), (150, 100, 60)


@pytest.fixture(scope="module")
def videos(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("videos")


@pytest.fixture(scope="module")
def ten_s(videos: Path) -> Path:
    """10 s at 10 fps: one colour per 2 s, so a frame's colour says which second it came from."""
    segments = [(2.0, c) for c in (RED, GREEN, BLUE, GREY, BROWN)]
    return write_color_video(videos / "ten_s.mp4", segments, fps=10, size=(160, 120))


@pytest.fixture(scope="module")
def cuts_video(videos: Path) -> Path:
    """Noisy, with a moving box, colour changes at 2.0, 5.0, 7.5 and 9.5 s."""
    segments = [(2.0, RED), (3.0, GREEN), (2.5, BLUE), (2.0, GREY), (2.0, BROWN)]
    return write_color_video(videos / "cuts.mp4", segments, fps=12, noise=8, moving_box=True, seed=1)


@pytest.fixture(scope="module")
def long_gop_h264(videos: Path) -> Path:
    if h264_writer_available() is None:
        pytest.skip("writing H.264 needs the ffmpeg program or PyAV; neither is installed")
    return write_h264_video(videos / "gop.mp4", 12.0, size=(320, 180), fps=25, gop=250, seed=3)


def _frames(path: Path, every_s: float = 1.0, **kwargs: object) -> list[SampledFrame]:
    return list(sample_frames(path, every_s, **kwargs))  # type: ignore[arg-type]


def _dominant(image: np.ndarray) -> tuple[int, int, int]:
    med = np.median(image.reshape(-1, 3), axis=0)
    return (int(med[0]), int(med[1]), int(med[2]))


def _close(a: tuple[int, int, int], b: tuple[int, int, int], tol: int = 30) -> bool:
    return all(abs(x - y) <= tol for x, y in zip(a, b, strict=True))


def test_probe_reports_what_was_written(ten_s: Path) -> None:
    info = probe(ten_s)
    assert info.path == ten_s
    assert info.fps == pytest.approx(10.0)
    assert (info.width, info.height) == (160, 120)
    assert info.frame_count == 100
    assert info.duration_s == pytest.approx(10.0)
    assert info.codec  # mp4v is reported as its FourCC ("fmp4" or "mp4v")


@pytest.mark.parametrize(("every_s", "expected_t"), [(1.0, range(10)), (2.0, range(0, 10, 2))])
def test_periodic_samples_count_and_timestamps(ten_s: Path, every_s: float, expected_t: range) -> None:
    frames = _frames(ten_s, every_s, cuts=False)
    assert [f.t for f in frames] == pytest.approx([float(t) for t in expected_t])
    assert [f.index for f in frames] == [round(t * 10) for t in expected_t]
    assert not any(f.is_cut for f in frames)
    colours = [RED, GREEN, BLUE, GREY, BROWN]
    for f in frames:  # RGB order and the right moment: the colour of second t is colours[t // 2]
        assert f.image.dtype == np.uint8 and f.image.flags.c_contiguous and f.image.shape == (120, 160, 3)
        assert _close(_dominant(f.image), colours[int(f.t) // 2]), (f.t, _dominant(f.image))


def test_sub_frame_interval_yields_every_frame_once(ten_s: Path) -> None:
    frames = _frames(ten_s, 0.01, cuts=False)
    assert [f.index for f in frames] == list(range(100))


def test_cut_frames_at_each_colour_change(cuts_video: Path) -> None:
    fps, probe_interval = 12.0, 3 / 12.0  # round(12 / 4 probes per second) = 3 frames
    frames = _frames(cuts_video, 1.0, cuts=True)
    cut_frames = [f for f in frames if f.is_cut]
    changes = [2.0, 5.0, 7.5, 9.5]
    assert len(cut_frames) == len(changes), [(f.t, f.index) for f in cut_frames]
    for f, change, colour in zip(cut_frames, changes, [GREEN, BLUE, GREY, BROWN], strict=True):
        assert change - 1e-6 <= f.t <= change + probe_interval + 1 / fps, (f.t, change)
        assert _close(_dominant(f.image), colour, tol=40)  # the first frame of the new shot
    indices = [f.index for f in frames]
    assert indices == sorted(set(indices)), "frames must be in time order with no frame twice"
    periodic = [f for f in frames if round(f.t * fps) % 12 == 0]
    assert len(periodic) >= 11  # the 1 s samples are all still there


def test_no_false_cuts_on_noisy_moving_box(videos: Path) -> None:
    path = write_color_video(videos / "still.mp4", [(8.0, GREY)], fps=15, noise=12, moving_box=True, seed=2)
    stats = DecodeStats()
    frames = _frames(path, 1.0, cuts=True, stats=stats)
    assert not [f.t for f in frames if f.is_cut]
    assert len(frames) == 8
    assert stats.retrieved < stats.grabbed / 2  # probes and samples only, not every frame


def test_cuts_off_yields_only_periodic_samples(cuts_video: Path) -> None:
    stats = DecodeStats()
    frames = _frames(cuts_video, 1.0, cuts=False, stats=stats)
    assert [f.index for f in frames] == [12 * k for k in range(12)]
    assert stats.retrieved == len(frames)  # nothing converted that is not returned


@pytest.mark.parametrize(("short_side", "size"), [(60, (60, 80)), (224, (224, 299)), (120, (120, 160))])
def test_short_side_resize_keeps_aspect(ten_s: Path, short_side: int, size: tuple[int, int]) -> None:
    frames = _frames(ten_s, 5.0, cuts=False, short_side=short_side)
    assert len(frames) == 2
    for f in frames:
        assert f.image.shape == (*size, 3)
        assert f.image.flags.c_contiguous
    assert _close(_dominant(frames[0].image), RED)


def test_short_side_on_portrait_video(videos: Path) -> None:
    path = write_color_video(videos / "portrait.avi", [(1.0, BLUE)], fps=10, size=(120, 200))
    (frame,) = _frames(path, 1.0, cuts=False, short_side=60)
    assert frame.image.shape == (100, 60, 3)
    assert _close(_dominant(frame.image), BLUE)


def _assert_same_frames(a: list[SampledFrame], b: list[SampledFrame]) -> None:
    assert [f.index for f in a] == [f.index for f in b]
    assert [f.t for f in a] == pytest.approx([f.t for f in b])
    for x, y in zip(a, b, strict=True):
        assert np.array_equal(x.image, y.image), f"frame {x.index} differs between seek and grab"


def test_seek_and_grab_agree_on_long_gop_h264(long_gop_h264: Path) -> None:
    grabbed, sought = DecodeStats(), DecodeStats()
    by_grab = _frames(long_gop_h264, 2.5, cuts=False, seek="never", stats=grabbed)
    by_seek = _frames(long_gop_h264, 2.5, cuts=False, seek="always", stats=sought)
    assert grabbed.seeks == 0 and sought.seeks >= 3 and sought.seek_fallbacks == 0
    assert [f.index for f in by_grab] == [0, 62, 125, 187, 250]  # nearest to k * 62.5; ties go earlier
    _assert_same_frames(by_grab, by_seek)
    _assert_same_frames(by_grab, _frames(long_gop_h264, 2.5, cuts=False, seek="auto", seek_min_gap_s=1.0))


def test_seek_and_grab_agree_on_mpeg4(cuts_video: Path) -> None:
    by_grab = _frames(cuts_video, 2.0, cuts=False, seek="never")
    by_seek = _frames(cuts_video, 2.0, cuts=False, seek="always")
    assert len(by_grab) == 6
    _assert_same_frames(by_grab, by_seek)


def _ffmpeg(*args: str) -> None:
    if shutil.which("ffmpeg") is None:
        pytest.skip("the ffmpeg program is not installed (Debian package ffmpeg)")
    subprocess.run(["ffmpeg", "-hide_banner", "-loglevel", "error", "-y", *args], check=True, timeout=60)


def test_variable_frame_rate_samples_by_time(long_gop_h264: Path, tmp_path: Path) -> None:
    """Frames 100.. are shown 2 s late (a freeze): samples follow presentation time, not frame numbers."""
    vfr = tmp_path / "vfr.mp4"
    late = "setpts='if(lt(N,100),PTS,PTS+2/TB)'"
    _ffmpeg(
        "-i", str(long_gop_h264), "-vf", late, "-fps_mode", "vfr", "-c:v", "libx264", "-preset", "ultrafast", str(vfr)
    )
    frames = _frames(vfr, 1.0, cuts=False)
    assert [round(f.t, 3) for f in frames] == [0, 1, 2, 3, 6, 7, 8, 9, 10, 11, 12, 13]
    assert [f.index for f in frames] == [0, 25, 50, 75, 100, 125, 150, 175, 200, 225, 250, 275]
    by_seek = _frames(vfr, 2.0, cuts=False, seek="always")  # seeks that land wrong fall back to grabbing
    _assert_same_frames(_frames(vfr, 2.0, cuts=False, seek="never"), by_seek)


@pytest.mark.parametrize("suffix", [".ts", ".mkv", ".h264"])
def test_other_containers_match_mp4(long_gop_h264: Path, tmp_path: Path, suffix: str) -> None:
    """MPEG-TS seeks inexactly and raw H.264 has no frame count: both must still give the mp4's frames."""
    other = tmp_path / f"copy{suffix}"
    _ffmpeg("-i", str(long_gop_h264), "-c", "copy", str(other))
    info = probe(other)
    assert info.frame_count == 300 and info.fps == pytest.approx(25.0)
    reference = _frames(long_gop_h264, 2.0, cuts=False, seek="never")
    for mode in ("never", "always"):
        _assert_same_frames(reference, _frames(other, 2.0, cuts=False, seek=mode))


def test_every_s_must_be_positive(ten_s: Path) -> None:
    with pytest.raises(ValueError, match="every_s"):
        _frames(ten_s, 0.0)


@pytest.mark.parametrize(
    ("name", "content"),
    [("empty.mp4", b""), ("noise.mp4", os.urandom(4096)), ("notes.mkv", b"not a video at all\n" * 50)],
)
def test_bad_files_raise_media_error_naming_the_path(tmp_path: Path, name: str, content: bytes) -> None:
    path = tmp_path / name
    path.write_bytes(content)
    for call in (lambda: probe(path), lambda: _frames(path)):
        with pytest.raises(MediaError) as err:
            call()
        assert err.value.path == path
        assert str(path) in str(err.value)
        assert err.value.reason


def test_missing_file_raises_media_error(tmp_path: Path) -> None:
    path = tmp_path / "gone.mp4"
    with pytest.raises(MediaError, match="not found") as err:
        probe(path)
    assert err.value.path == path
    with pytest.raises(MediaError, match="not found"):
        _frames(path)


@pytest.mark.parametrize("kind", ["mpeg4", "h264"])
def test_truncated_file_yields_some_frames_or_raises(
    videos: Path, tmp_path: Path, kind: str, caplog: pytest.LogCaptureFixture
) -> None:
    if kind == "h264":
        if h264_writer_available() is None:
            pytest.skip("writing H.264 needs the ffmpeg program or PyAV; neither is installed")
        whole = write_h264_video(videos / "trunc_src.mp4", 6.0, size=(320, 180), fps=25, gop=25)
    else:
        whole = write_color_video(videos / "trunc_src.avi", [(3.0, RED), (3.0, GREEN)], fps=10)
    data = whole.read_bytes()
    cut = tmp_path / f"half{whole.suffix}"
    cut.write_bytes(data[: len(data) // 2])
    caplog.set_level(logging.WARNING, logger="engine.media.decode")
    try:
        frames = _frames(cut, 1.0)
    except MediaError as exc:
        assert exc.path == cut
        return
    assert 0 < len(frames) < 6
    assert all(f.t < 6.0 for f in frames)
    assert "truncated" in caplog.text


def test_cancel_stops_sampling(ten_s: Path) -> None:
    token = CancelToken()
    frames = sample_frames(ten_s, 1.0, cancel=token)
    first = next(frames)
    assert first.index == 0
    token.cancel()
    with pytest.raises(JobCancelled):
        next(frames)


def test_looks_like_video(ten_s: Path, tmp_path: Path) -> None:
    assert ".mp4" in VIDEO_EXTENSIONS and ".mkv" in VIDEO_EXTENSIONS and ".MP4" not in VIDEO_EXTENSIONS
    assert looks_like_video(tmp_path / "clip.MOV")  # by extension, without opening
    renamed = tmp_path / "clip.bin"
    renamed.write_bytes(ten_s.read_bytes())
    assert looks_like_video(renamed)  # unknown extension: a cheap probe decides
    junk = tmp_path / "junk.bin"
    junk.write_bytes(os.urandom(2048))
    assert not looks_like_video(junk)
    assert not looks_like_video(tmp_path / "missing.bin")
    notes = tmp_path / "notes.txt"
    notes.write_text("hello")
    assert not looks_like_video(notes)


def test_write_h264_video(videos: Path) -> None:
    if h264_writer_available() is None:
        pytest.skip("writing H.264 needs the ffmpeg program or PyAV; neither is installed")
    path = write_h264_video(videos / "h264.mp4", 2.0, size=(256, 144), fps=24, seed=5)
    info = probe(path)
    assert info.codec in {"h264", "avc1"}
    assert (info.width, info.height, info.frame_count) == (256, 144, 48)
    assert info.fps == pytest.approx(24.0)
    frames = _frames(path, 0.5, cuts=False)
    assert len(frames) == 4
    assert not np.array_equal(frames[0].image, frames[1].image)  # the pattern moves
    assert float(frames[0].image.std()) > 20  # textured, not flat


def test_real_clips_probe_and_sample(shared_data: Path) -> None:
    clips = sorted(p for p in (shared_data / "videos").rglob("*") if p.suffix.lower() in VIDEO_EXTENSIONS)
    if not clips:
        pytest.skip(f"no video files under {shared_data / 'videos'}")
    for clip in clips:
        info = probe(clip)
        assert info.fps > 0 and info.width > 0 and info.height > 0 and info.duration_s > 0, info
        frames = _frames(clip, 1.0, short_side=224)
        periodic = [f for f in frames if not f.is_cut]
        assert len(frames) >= int(info.duration_s), (clip, len(frames), info.duration_s)
        assert len(periodic) <= int(info.duration_s) + 1
        ts = [f.t for f in frames]
        assert ts == sorted(ts) and ts[0] == 0.0 and ts[-1] <= info.duration_s, clip
        for f in frames:
            assert abs(f.t - f.index / info.fps) < 0.05, (clip, f.t, f.index)
            assert min(f.image.shape[:2]) == 224 and f.image.shape[2] == 3
