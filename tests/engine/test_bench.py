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
