"""The index benchmark runs end to end (figures are reported, never asserted against a time)."""

from __future__ import annotations

import pytest

from engine.bench.index_bench import run_index_bench
from engine.media.synthetic import h264_writer_available


def test_index_bench_reports_every_figure() -> None:
    if h264_writer_available() is None:
        pytest.skip("writing H.264 needs the ffmpeg program or PyAV (Debian package ffmpeg)")
    lines: list[str] = []
    figures = run_index_bench("fake:hash-8", videos=2, seconds=3, log=lines.append)
    f = figures["generated_720p_h264"]
    assert f["videos"] == 2 and f["frames"] >= 6 and f["end_to_end_frames"] == f["frames"]
    assert f["video_seconds"] == pytest.approx(6, abs=0.2)
    for key in ("decode_s", "end_to_end_s", "x_real_time", "rescan_unchanged_ms"):
        assert f[key] > 0
    assert f["embed_s"] >= 0  # a weightless encoder can embed six frames in under a millisecond
    assert any("x real time" in line for line in lines)
    sizes = f["mb_per_hour"]
    assert {"frame.f16", "segment.f16", "video.f16", "segment.ann", "video.ann"} <= set(sizes), sizes
    assert not [name for name in sizes if name.endswith(".hnsw") or name == "frame.ann"]  # no frame graph
    assert 0 < f["index_mb_per_hour"] < sum(sizes.values())  # the catalog is reported, not counted
    assert any("MB per hour of video" in line for line in lines)


def test_decode_bench_measures_a_file_against_ffmpeg_and_checks_the_goals(tmp_path) -> None:
    import shutil

    if shutil.which("ffmpeg") is None:
        pytest.skip("bench decode needs the ffmpeg program (Debian package ffmpeg)")
    from engine.bench.decode_bench import CORPUS, FAKE, format_table, goals, measure_file
    from engine.media.clock_video import write_clock_video
    from engine.models.registry import create_encoder

    spec = next(c for c in CORPUS if c.key == "h264-1080p30-gop1")
    path = write_clock_video(tmp_path / "small.mp4", 3.0, size=(320, 180))
    row = measure_file(spec, path, {FAKE: create_encoder(FAKE)}, repeat=1)
    assert (
        row["strategy"] == "keyframes"
        and row["frames"] == 3
        and row["decoded_share"] == pytest.approx(3 / 90, abs=1e-3)
    )
    for key in ("ffmpeg_every_frame_x", "ffmpeg_keyframes_x", "decode_only_x", "fake_color_x"):
        assert row[key] > 0, key
    checks = goals([row], {spec.label: spec})
    assert [c["goal"] for c in checks] == ["fake:color >= 0.7 x keyframe limit", "fake:color >= every-frame limit"]
    table = format_table({"files": [row], "goals": checks})
    assert spec.label in table and "keyframes (3%)" in table


def test_decode_bench_prints_the_precision_the_encoder_ran_in(monkeypatch: pytest.MonkeyPatch) -> None:
    from engine.bench.decode_bench import _precision, format_table
    from engine.models.registry import create_encoder

    monkeypatch.setenv("SCENEFIND_CPU_PRECISION", "int8")
    encoder = create_encoder("test-tiny")
    assert _precision(encoder) == "int8"
    encoder.torch_model()  # stepped down to float32: the table must say so, not what the environment asked
    assert _precision(encoder) == "float32" and _precision(None) == "-"
    table = format_table({"files": [], "goals": [], "vit_precision": _precision(encoder)})
    assert "ViT-B-32 ran in float32" in table
