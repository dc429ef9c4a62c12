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
COLOURS = [RED, GREEN, BLUE, GREY, BROWN]


@pytest.fixture(scope="module")
def videos(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("videos")


@pytest.fixture(scope="module")
def ten_s(videos: Path) -> Path:
    """10 s at 10 fps: one colour per 2 s, so a frame's colour says which second it came from."""
    segments = [(2.0, c) for c in COLOURS]
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
def test_exact_samples_count_and_timestamps(ten_s: Path, every_s: float, expected_t: range) -> None:
    frames = _frames(ten_s, every_s, cuts=False, mode="exact")
    assert [f.t for f in frames] == pytest.approx([float(t) for t in expected_t])
    assert [f.index for f in frames] == [round(t * 10) for t in expected_t]
    assert not any(f.is_cut for f in frames)
    for f in frames:  # RGB order and the right moment: the colour of second t is COLOURS[t // 2]
        assert f.image.dtype == np.uint8 and f.image.flags.c_contiguous and f.image.shape == (120, 160, 3)
        assert _close(_dominant(f.image), COLOURS[int(f.t) // 2]), (f.t, _dominant(f.image))


def test_keyframes_stand_in_for_nearby_sample_times_with_their_own_times(ten_s: Path) -> None:
    """MPEG-4 puts a keyframe every 1.2 s and at each colour change: those serve the samples near them, and a
    sample with no keyframe near enough is decoded exactly; every reported time is the frame's own."""
    stats = DecodeStats()
    frames = _frames(ten_s, 1.0, cuts=False, stats=stats)
    assert stats.strategy in ("keyframes", "keyframes+gops")
    assert len(frames) == 10
    for k, f in enumerate(frames):
        assert abs(f.t - k) <= 0.55 + 1e-9 and f.index == round(f.t * 10)
        assert _close(_dominant(f.image), COLOURS[int(f.t + 1e-9) // 2]), (f.t, _dominant(f.image))
    assert stats.sent < 40 and stats.converted == len(frames)  # far from decoding all 100 frames


@pytest.mark.parametrize("mode", ["auto", "exact", "sequential"])
def test_sub_frame_interval_yields_every_frame_once(ten_s: Path, mode: str) -> None:
    frames = _frames(ten_s, 0.01, cuts=False, mode=mode)
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
    times = np.array([f.t for f in frames])
    assert all(np.abs(times - k).min() <= 0.55 for k in range(12))  # the 1 s samples are all still there


def test_no_false_cuts_on_noisy_moving_box(videos: Path) -> None:
    path = write_color_video(videos / "still.mp4", [(8.0, GREY)], fps=15, noise=12, moving_box=True, seed=2)
    stats = DecodeStats()
    frames = _frames(path, 1.0, cuts=True, stats=stats)
    assert not [f.t for f in frames if f.is_cut]
    assert len(frames) == 8
    assert stats.converted == len(frames) and stats.probes < stats.decoded / 2  # never every frame


def test_cuts_off_yields_only_periodic_samples(cuts_video: Path) -> None:
    stats = DecodeStats()
    frames = _frames(cuts_video, 1.0, cuts=False, stats=stats, mode="exact")
    assert [f.index for f in frames] == [12 * k for k in range(12)]
    assert stats.converted == len(frames) and stats.probes == 0  # nothing converted that is not returned


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


def test_exact_and_sequential_agree_on_long_gop_h264(long_gop_h264: Path) -> None:
    every, exact = DecodeStats(), DecodeStats()
    by_all = _frames(long_gop_h264, 2.5, cuts=False, mode="sequential", stats=every)
    by_gop = _frames(long_gop_h264, 2.5, cuts=False, mode="exact", stats=exact)
    assert every.sent == 300 and exact.sent < every.sent  # the tail after the last sample is never decoded
    assert [f.index for f in by_all] == [0, 62, 125, 187, 250]  # nearest to k * 62.5; ties go earlier
    _assert_same_frames(by_all, by_gop)
    auto = DecodeStats()
    _assert_same_frames(by_all, _frames(long_gop_h264, 2.5, cuts=False, stats=auto))  # one keyframe: auto is exact
    assert auto.decoded < 0.75 * auto.sent  # B-frames nothing references are dropped undecoded (NONREF)


def test_sparse_samples_decode_only_from_their_keyframe(tmp_path: Path) -> None:
    """A 1 s GOP sampled every 3 s: each sample's GOP is decoded from its keyframe up to the sample only."""
    if h264_writer_available() is None:
        pytest.skip("writing H.264 needs the ffmpeg program or PyAV; neither is installed")
    path = write_h264_video(tmp_path / "gop25.mp4", 12.0, size=(320, 180), fps=25, gop=25, seed=4)
    stats = DecodeStats()
    frames = _frames(path, 2.5, cuts=False, mode="exact", stats=stats)
    _assert_same_frames(_frames(path, 2.5, cuts=False, mode="sequential"), frames)
    assert stats.strategy == "keyframes+gops" and stats.sent <= 3 * 13 + 1 and stats.drains >= 2


def test_exact_and_sequential_agree_on_mpeg4(cuts_video: Path) -> None:
    by_all = _frames(cuts_video, 2.0, cuts=False, mode="sequential")
    by_gop = _frames(cuts_video, 2.0, cuts=False, mode="exact")
    assert len(by_all) == 6
    _assert_same_frames(by_all, by_gop)


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
    _assert_same_frames(_frames(vfr, 2.0, cuts=False, mode="sequential"), _frames(vfr, 2.0, cuts=False, mode="exact"))


@pytest.mark.parametrize("suffix", [".ts", ".mkv", ".h264"])
def test_other_containers_match_mp4(long_gop_h264: Path, tmp_path: Path, suffix: str) -> None:
    """MPEG-TS seeks inexactly and raw H.264 has no frame count: both must still give the mp4's frames."""
    other = tmp_path / f"copy{suffix}"
    _ffmpeg("-i", str(long_gop_h264), "-c", "copy", str(other))
    info = probe(other)
    assert info.frame_count == 300 and info.fps == pytest.approx(25.0)
    reference = _frames(long_gop_h264, 2.0, cuts=False, mode="sequential")
    for mode in ("auto", "exact", "sequential"):
        _assert_same_frames(reference, _frames(other, 2.0, cuts=False, mode=mode))


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
    caplog.set_level(logging.INFO, logger="engine.media.decode")
    stats = DecodeStats()
    try:
        frames = _frames(cut, 1.0, stats=stats)
    except MediaError as exc:
        assert exc.path == cut
        return
    assert 0 < len(frames) < 6
    assert all(f.t < 6.0 for f in frames)
    assert "truncated" in stats.stopped and stats.stopped in caplog.text


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
