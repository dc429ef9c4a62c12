"""``scenefind bench index``: decode-only, embed-only and end-to-end indexing throughput, in one run.

The two stages compete for the same cores on a CPU-only machine, so the figure that matters is how the
end-to-end time compares with the sum of the stages' own times (no overhead beyond the work) and, where a GPU
embeds, with the slower stage alone (they overlap). "x real time" is seconds of video per second of work.

With ``ray``, the same videos are also indexed through Ray workers (1, then up to ``ray_workers``), each run
into a fresh library, timed from the scan to the last commit; the workers' start (a process each, importing
torch) is reported apart, since a long job pays it once. ``local`` starts a throwaway cluster here (one node
per worker, one CPU each) and stops it after.
"""

from __future__ import annotations

import contextlib
import platform
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np

from engine.bench.host import disk_bytes
from engine.library.library import Library
from engine.media.decode import VIDEO_EXTENSIONS, probe, sample_frames
from engine.media.images import centre_crop
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


@contextlib.contextmanager
def _fresh_library(paths: list[Path], settings: EngineSettings, prefix: str) -> Iterator[Library]:
    """A throw-away library whose one folder links to ``paths`` (the files are not copied)."""
    with tempfile.TemporaryDirectory(prefix=prefix) as tmp:
        folder = Path(tmp) / "videos"
        folder.mkdir()
        for i, path in enumerate(paths):
            (folder / f"{i:03d}{path.suffix}").symlink_to(path)
        with Library(Path(tmp) / "home", settings=settings) as lib:
            lib.add_folder(folder)
            yield lib


def index_file_bytes(lib: Library, model_id: str) -> dict[str, int]:
    """Bytes on disk of each file of ``model_id``'s index folder (allocated blocks: vector files grow sparse),
    and of the catalog, which is not part of the index but grows with it."""
    folder = lib.paths.index_dir(model_id)
    files = sorted(p for p in folder.iterdir() if p.is_file()) if folder.exists() else []
    sizes = {p.name: disk_bytes(p) for p in files}
    return sizes | {"catalog.sqlite (not the index)": disk_bytes(lib.paths.catalog)}


def _end_to_end(
    paths: list[Path], encoder: Encoder, settings: EngineSettings
) -> tuple[float, int, float, dict[str, int]]:
    """Index ``paths`` into a fresh library; then index again, which must skip every unchanged file."""
    with _fresh_library(paths, settings, "scenefind-bench-") as lib:
        start = time.perf_counter()
        result = lib.index(encoder)
        elapsed = time.perf_counter() - start
        start = time.perf_counter()
        again = lib.index(encoder)
        rescan = time.perf_counter() - start
        sizes = index_file_bytes(lib, encoder.model_id)
    if again.indexed or again.unchanged != len(paths):
        raise RuntimeError(f"re-index touched unchanged files: {again}")
    return elapsed, result.frames, rescan, sizes


def _ray_run(
    paths: list[Path], encoder: Encoder, settings: EngineSettings, address: str, workers: int
) -> dict[str, Any]:
    """Index ``paths`` into a fresh library through ``workers`` Ray workers; its time, start-up apart."""
    from engine.indexing.ray_indexer import RayIndexer
    from engine.indexing.ray_options import RayOptions

    with _fresh_library(paths, settings, "scenefind-bench-ray-") as lib:
        indexer = RayIndexer(lib.paths, lib.catalog, encoder, settings, RayOptions(address, workers=workers))
        start = time.perf_counter()
        with lib.writing():
            result = indexer.run()
        elapsed = time.perf_counter() - start
    if result.failed or result.indexed != len(paths):
        raise RuntimeError(f"the Ray run did not index every video: {result}")
    startup = indexer.started_s
    return {
        "workers": len(indexer.workers),
        "seconds": round(elapsed, 3),
        "workers_start_s": round(startup, 3),
        "frames": result.frames,
        "frames_per_s": round(result.frames / elapsed, 1),
        "frames_per_s_after_start": round(result.frames / max(1e-9, elapsed - startup), 1),
        "x_real_time": round(result.seconds_of_video / elapsed, 2),
    }


@contextlib.contextmanager
def _cluster(address: str, nodes: int) -> Iterator[str]:
    """Connect once for all the runs (so each run's time excludes joining); ``local`` starts one first."""
    from engine.indexing.ray_cluster import LocalRayCluster, connect, disconnect

    with contextlib.ExitStack() as stack:
        if address == "local":
            address = stack.enter_context(LocalRayCluster(nodes, cpus_per_node=1)).address
        owned = connect(address)
        stack.callback(disconnect, owned)
        yield address


def measure_ray(
    paths: list[Path], encoder: Encoder, settings: EngineSettings, address: str, max_workers: int, local_s: float
) -> dict[str, Any]:
    """Ray throughput with 1 and ``max_workers`` workers, against the local pipeline's ``local_s``."""
    counts = sorted({1, max_workers})
    with _cluster(address, max_workers) as where:
        runs = {str(n): _ray_run(paths, encoder, settings, where, n) for n in counts}
    one, most = runs["1"], runs[str(counts[-1])]
    return {
        "address": address,
        "runs": runs,
        "local_end_to_end_s": round(local_s, 3),
        "best_over_local": round(local_s / min(r["seconds"] for r in runs.values()), 3),
        f"scaling_1_to_{counts[-1]}": round(one["seconds"] / most["seconds"], 3),
        f"scaling_1_to_{counts[-1]}_after_start": round(
            most["frames_per_s_after_start"] / max(1e-9, one["frames_per_s_after_start"]), 3
        ),
    }


def measure(paths: list[Path], encoder: Encoder, settings: EngineSettings) -> dict[str, Any]:
    """Run the three measurements on ``paths`` and return the figures."""
    video_s = sum(probe(p).duration_s for p in paths)
    encoder.encode_images(np.zeros((2, encoder.image_size, encoder.image_size, 3), np.uint8))  # load + warm up
    frames, t_decode = _decode(paths, settings, encoder.image_size)
    t_embed = _embed(encoder, frames, settings.batch_size)
    t_e2e, e2e_frames, t_rescan, sizes = _end_to_end(paths, encoder, settings)
    hours = video_s / 3600
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
        "mb_per_hour": {name: round(size / 1e6 / hours, 2) for name, size in sizes.items()},
        "index_mb_per_hour": round(sum(v for k, v in sizes.items() if "catalog" not in k) / 1e6 / hours, 2),
    }


def run_index_bench(
    model: str | None,
    *,
    videos: int = 3,
    seconds: float = 30.0,
    folder: Path | None = None,
    ray: str | None = None,
    ray_workers: int = 2,
    log: Callable[[str], object] | None = print,
) -> dict[str, Any]:
    """Measure on generated 720p H.264 videos (and on ``folder``'s videos when given); with ``ray``, also
    through Ray workers on the generated videos (see the module docstring)."""
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
    generated = generated_videos(videos, seconds)
    figures["generated_720p_h264"] = measure(generated, encoder, settings)
    if ray:
        say(f"indexing the same videos through Ray at {ray} with 1 and {ray_workers} workers…")
        local_s = figures["generated_720p_h264"]["end_to_end_s"]
        figures["ray"] = measure_ray(generated, encoder, settings, ray, ray_workers, local_s)
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
                f"  re-index with nothing changed: {f['rescan_unchanged_ms']:.1f} ms for {f['videos']} videos\n"
                f"  index: {f['index_mb_per_hour']:.2f} MB per hour of video ("
                + ", ".join(f"{name} {mb:.2f}" for name, mb in f["mb_per_hour"].items())
                + ")"
            )
    if "ray" in figures:
        r = figures["ray"]
        lines = [f"ray at {r['address']} (same generated videos; local end to end {r['local_end_to_end_s']:.2f} s)"]
        for n, run in r["runs"].items():
            lines.append(
                f"  {n} worker{'s' if n != '1' else ' '}  {run['seconds']:8.2f} s  {run['frames_per_s']:8.1f} frames/s"
                f"  = {run['x_real_time']:.1f}x real time  (workers start {run['workers_start_s']:.2f} s; "
                f"{run['frames_per_s_after_start']:.1f} frames/s after)"
            )
        scaling = [k for k in r if k.startswith("scaling_")]
        lines.append(
            f"  best Ray run / local = {r['best_over_local']:.3f}x   "
            + "   ".join(f"{k.removeprefix('scaling_').replace('_', ' ')}: {r[k]:.3f}x" for k in scaling)
        )
        say("\n".join(lines))
    return figures
