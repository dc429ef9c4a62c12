"""``scenefind bench index``: decode-only, embed-only and end-to-end indexing throughput, in one run.

The two stages compete for the same cores on a CPU-only machine, so the figure that matters is how the
end-to-end time compares with the sum of the stages' own times (no overhead beyond the work) and, where a GPU
embeds, with the slower stage alone (they overlap). "x real time" is seconds of video per second of work.
"""

from __future__ import annotations

import platform
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from engine.indexing.producer import centre_crop
from engine.library.library import Library
from engine.media.decode import VIDEO_EXTENSIONS, probe, sample_frames
from engine.media.synthetic import write_h264_video
from engine.models.base import Encoder
from engine.paths import cache_home
from engine.settings import EngineSettings

BENCH_MODEL = "random:ViT-B-32"  # real ViT-B-32 compute without needing downloaded weights


def generated_videos(count: int, seconds: float) -> list[Path]:
    """720p30 H.264 clips with moving content, cached between runs."""
    folder = cache_home() / "bench" / f"h264-720p-{seconds:g}s"
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i in range(count):
        path = folder / f"bench-{i:02d}.mp4"
        if not path.exists():
            write_h264_video(path, seconds, size=(1280, 720), fps=30, seed=i)
        paths.append(path)
    return paths


def _decode(paths: list[Path], settings: EngineSettings, side: int) -> tuple[list[np.ndarray], float]:
    frames: list[np.ndarray] = []
    start = time.perf_counter()
    for path in paths:
        for frame in sample_frames(path, settings.sample_every_s, cuts=settings.detect_cuts, short_side=side):
            frames.append(centre_crop(frame.image, side))
    return frames, time.perf_counter() - start


def _embed(encoder: Encoder, frames: list[np.ndarray], batch: int) -> float:
    start = time.perf_counter()
    for i in range(0, len(frames), batch):
        encoder.encode_images(np.stack(frames[i : i + batch]))
    return time.perf_counter() - start


def _end_to_end(paths: list[Path], encoder: Encoder, settings: EngineSettings) -> tuple[float, int, float]:
    """Index ``paths`` into a fresh library; then index again, which must skip every unchanged file."""
    with tempfile.TemporaryDirectory(prefix="scenefind-bench-") as tmp:
        folder = Path(tmp) / "videos"
        folder.mkdir()
        for i, path in enumerate(paths):
            (folder / f"{i:03d}{path.suffix}").symlink_to(path)
        with Library(Path(tmp) / "home", settings=settings) as lib:
            lib.add_folder(folder)
            start = time.perf_counter()
            result = lib.index(encoder)
            elapsed = time.perf_counter() - start
            start = time.perf_counter()
            again = lib.index(encoder)
            rescan = time.perf_counter() - start
            if again.indexed or again.unchanged != len(paths):
                raise RuntimeError(f"re-index touched unchanged files: {again}")
            return elapsed, result.frames, rescan


def measure(paths: list[Path], encoder: Encoder, settings: EngineSettings) -> dict[str, Any]:
    """Run the three measurements on ``paths`` and return the figures."""
    video_s = sum(probe(p).duration_s for p in paths)
    encoder.encode_images(np.zeros((2, encoder.image_size, encoder.image_size, 3), np.uint8))  # load + warm up
    frames, t_decode = _decode(paths, settings, encoder.image_size)
    t_embed = _embed(encoder, frames, settings.batch_size)
    t_e2e, e2e_frames, t_rescan = _end_to_end(paths, encoder, settings)
    return {
        "videos": len(paths),
        "video_seconds": round(video_s, 2),
        "frames": len(frames),
        "decode_s": round(t_decode, 3),
        "embed_s": round(t_embed, 3),
        "end_to_end_s": round(t_e2e, 3),
        "end_to_end_frames": e2e_frames,
        "decode_frames_per_s": round(len(frames) / t_decode, 1),
        "embed_frames_per_s": round(len(frames) / t_embed, 1),
        "end_to_end_frames_per_s": round(e2e_frames / t_e2e, 1),
        "x_real_time": round(video_s / t_e2e, 2),
        "e2e_over_sum_of_stages": round(t_e2e / (t_decode + t_embed), 3),
        "slower_stage_over_e2e": round(max(t_decode, t_embed) / t_e2e, 3),
        "rescan_unchanged_ms": round(t_rescan * 1000, 1),
    }


def run_index_bench(
    model: str | None,
    *,
    videos: int = 3,
    seconds: float = 30.0,
    folder: Path | None = None,
    log: Callable[[str], object] | None = print,
) -> dict[str, Any]:
    """Measure on generated 720p H.264 videos (and on ``folder``'s videos when given)."""
    from engine.models.registry import create_encoder

    settings = EngineSettings()
    encoder = create_encoder(model or BENCH_MODEL, device=settings.device, batch_size=settings.batch_size)
    settings = settings.replace(model=model or BENCH_MODEL)
    say = log or (lambda _msg: None)
    say(
        f"model {encoder.model_id} on {encoder.device}; sampling every {settings.sample_every_s:g} s, "
        f"cut detection {'on' if settings.detect_cuts else 'off'}; {platform.processor() or platform.machine()}"
    )
    figures: dict[str, Any] = {
        "model": encoder.model_id,
        "device": encoder.device,
        "sample_every_s": settings.sample_every_s,
    }
    say(f"generating {videos} x {seconds:g} s 720p H.264 videos (cached)…")
    figures["generated_720p_h264"] = measure(generated_videos(videos, seconds), encoder, settings)
    if folder is not None:
        paths = sorted(p for p in Path(folder).rglob("*") if p.suffix.lower() in VIDEO_EXTENSIONS)
        if paths:
            figures["folder"] = {"path": str(folder), **measure(paths, encoder, settings)}
    for name in ("generated_720p_h264", "folder"):
        if name in figures:
            f = figures[name]
            say(
                f"{name}: {f['videos']} videos, {f['video_seconds']:.0f} s of video, {f['frames']} frames\n"
                f"  decode only   {f['decode_s']:8.2f} s  {f['decode_frames_per_s']:8.1f} frames/s\n"
                f"  embed only    {f['embed_s']:8.2f} s  {f['embed_frames_per_s']:8.1f} frames/s\n"
                f"  end to end    {f['end_to_end_s']:8.2f} s  {f['end_to_end_frames_per_s']:8.1f} frames/s"
                f"  = {f['x_real_time']:.1f}x real time\n"
                f"  end-to-end / (decode + embed) = {f['e2e_over_sum_of_stages']:.3f}   "
                f"slower stage / end-to-end = {f['slower_stage_over_e2e']:.3f}\n"
                f"  re-index with nothing changed: {f['rescan_unchanged_ms']:.1f} ms for {f['videos']} videos"
            )
    return figures
