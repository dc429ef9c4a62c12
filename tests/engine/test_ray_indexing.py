"""Indexing through a real Ray cluster (a head and a second node on loopback): same library as a local run,
a killed worker loses and duplicates nothing, a cancel leaves a library a later run completes, a bad address
is a clear error, and a local run never imports Ray."""

from __future__ import annotations

import importlib.util
import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from engine.indexing.ray_options import RayOptions
from engine.jobs import CancelToken, JobCancelled
from engine.library.library import Library
from engine.media.synthetic import write_color_video
from engine.search.searcher import Searcher
from engine.settings import EngineSettings, SettingsError
from tests.engine.videos import BLUE, GREEN, RED, YELLOW, color_library

REPO = Path(__file__).resolve().parents[2]
MODEL = "fake:color"
QUERIES = ["red", "a blue scene", "green", "yellow"]
HAS_RAY = importlib.util.find_spec("ray") is not None
needs_ray = pytest.mark.skipif(not HAS_RAY, reason="Ray is not installed (pip install -e '.[test]' installs it)")


def _lib(home: Path) -> Library:
    return Library(home, settings=EngineSettings(model=MODEL))


def _cli(home: Path, *args: str) -> list[str]:
    return [sys.executable, "-m", "engine.cli", "--home", str(home), "--model", MODEL, "--no-progress", *args]


def _env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(REPO)}


def _snapshot(home: Path) -> dict[str, list[tuple[object, ...]]]:
    """Everything a run decides, ids aside: videos with status and error, frames, segments, vector counts."""
    db = sqlite3.connect(home / "catalog.sqlite")
    try:
        per_video = "JOIN embeddings e ON e.id = x.embedding_id JOIN videos v ON v.id = e.video_id"
        return {
            "videos": db.execute(
                "SELECT path, fingerprint, status, error, duration, fps, width, height FROM videos ORDER BY path"
            ).fetchall(),
            "embeddings": db.execute(
                "SELECT v.path, COUNT(*) FROM embeddings e JOIN videos v ON v.id = e.video_id GROUP BY v.path"
                " ORDER BY v.path"
            ).fetchall(),
            "frames": db.execute(
                f"SELECT v.path, x.t, x.frame_index, x.is_cut FROM frames x {per_video} ORDER BY v.path, x.t"
            ).fetchall(),
            "segments": db.execute(
                f"SELECT v.path, x.start, x.end FROM segments x {per_video} ORDER BY v.path, x.start"
            ).fetchall(),
        }
    finally:
        db.close()


def _vector_counts(home: Path) -> dict[str, int]:
    with _lib(home) as lib:
        return {grain: len(lib.catalog.live_keys(MODEL, grain)) for grain in ("video", "segment", "frame")}


def _results(home: Path) -> list[list[tuple[str, float, float]]]:
    with _lib(home) as lib:
        searcher = Searcher(lib, lib.encoder())
        try:
            return [[(h.video, round(h.score, 4), h.best_time) for h in searcher.search_text(q, k=10)] for q in QUERIES]
        finally:
            searcher.close()


@pytest.fixture(scope="module")
def videos(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """Eight videos (long enough that a worker is busy when it is killed) and a broken file, plus a library
    that indexed them locally: the reference every Ray run must equal."""
    folder = tmp_path_factory.mktemp("ray-videos")
    color_library(folder / "set")
    colours = [RED, GREEN, BLUE, YELLOW]
    for i in range(5):
        segments = [(6, colours[i % 4]), (6, colours[(i + 1) % 4]), (6, colours[(i + 2) % 4])]
        write_color_video(folder / f"long{i}.mp4", segments, fps=15, moving_box=True, seed=i)
    (folder / "broken.mp4").write_bytes(os.urandom(4096))
    reference = tmp_path_factory.mktemp("ray-reference") / "home"
    with _lib(reference) as lib:
        lib.add_folder(folder)
        lib.index()
    return folder, reference


@pytest.fixture(scope="module")
def cluster() -> Iterator[str]:
    """A real two-node Ray cluster on loopback (one CPU each), joined by this process; always torn down."""
    if not HAS_RAY:
        pytest.skip("Ray is not installed (pip install -e '.[test]' installs it)")
    from engine.indexing.ray_cluster import LocalRayCluster, connect, disconnect

    local = LocalRayCluster(2, cpus_per_node=1, object_store_mb=100)
    local.start(timeout_s=120)
    try:
        owned = connect(local.address, timeout_s=10)
        try:
            yield local.address
        finally:
            disconnect(owned)
    finally:
        local.stop()


def _fresh(tmp_path: Path, folder: Path) -> Path:
    home = tmp_path / "home"
    with _lib(home) as lib:
        lib.add_folder(folder)
    return home


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_ray_cli_run_equals_a_local_run(cluster: str, videos: tuple[Path, Path], tmp_path: Path) -> None:
    folder, reference = videos
    home = _fresh(tmp_path, folder)
    run = subprocess.run(
        _cli(home, "index", "--ray", cluster, "--ray-workers", "2"),
        env=_env(),
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert run.returncode == 1, run.stderr  # 1: the broken file failed, as in the local run
    assert "8 indexed" in run.stdout and "broken.mp4" in run.stderr
    assert _snapshot(home) == _snapshot(reference)
    assert _vector_counts(home) == _vector_counts(reference)
    assert _results(home) == _results(reference)
    job = "SELECT status, done, failed, total, message FROM jobs ORDER BY id DESC"
    assert sqlite3.connect(home / "catalog.sqlite").execute(job).fetchone() == (
        sqlite3.connect(reference / "catalog.sqlite").execute(job).fetchone()
    )


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_killed_worker_is_replaced_and_nothing_is_lost_or_duplicated(
    cluster: str, videos: tuple[Path, Path], tmp_path: Path
) -> None:
    from engine.indexing.ray_indexer import RayIndexer

    folder, reference = videos
    home = _fresh(tmp_path, folder)
    killed: list[tuple[int, int]] = []  # (worker index, pid)
    with _lib(home) as lib:
        indexer = RayIndexer(lib.paths, lib.catalog, lib.encoder(), lib.settings, RayOptions(cluster, workers=2))

        def progress(fraction: float, message: str) -> None:
            if message.startswith("Indexed") and not killed:
                busy = [i for i, w in enumerate(indexer.workers) if w.in_flight]
                index = busy[0] if busy else 0
                pid = indexer.workers[index].pid
                os.kill(pid, signal.SIGKILL)  # the actor's process, as a crash or the OOM killer would
                killed.append((index, pid))

        with lib.writing():
            result = indexer.run(progress=progress)
    assert killed, "no video was committed, so no worker was killed"
    index, pid = killed[0]
    assert result.indexed == 8 and [Path(p).name for p, _ in result.failed] == ["broken.mp4"]
    assert indexer.duplicates == 0
    assert indexer.workers[index].restarts >= 1 and pid not in indexer.workers[index].pids[1:]
    assert _snapshot(home) == _snapshot(reference)  # every video once, the same frames and segments
    assert _vector_counts(home) == _vector_counts(reference)
    assert _results(home) == _results(reference)


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_cancel_leaves_a_consistent_library_that_a_later_run_completes(
    cluster: str, videos: tuple[Path, Path], tmp_path: Path
) -> None:
    folder, reference = videos
    home = _fresh(tmp_path, folder)
    token = CancelToken()
    messages: list[tuple[float, str]] = []

    def progress(fraction: float, message: str) -> None:
        messages.append((fraction, message))
        if message.startswith("Indexed 2/"):
            token.cancel()

    with _lib(home) as lib:
        started = time.monotonic()
        with pytest.raises(JobCancelled):
            lib.index(ray=RayOptions(cluster, workers=2), progress=progress, cancel=token)
        assert time.monotonic() - started < 120
        indexed = lib.catalog.videos(status="indexed")
        assert 1 <= len(indexed) < 8
        assert lib.catalog.jobs()[0]["status"] == "cancelled"
        fractions = [f for f, _ in messages]
        assert fractions == sorted(fractions) and any(m.startswith("Starting 2 Ray workers") for _, m in messages)
    embeddings = dict(_snapshot(home)["embeddings"])
    assert sorted(embeddings) == sorted(v["path"] for v in indexed) and set(embeddings.values()) == {1}
    with _lib(home) as lib:  # a local run takes over what is left: the library is as a local run leaves it
        result = lib.index()
        assert result.indexed == 8 - len(indexed)
    assert _snapshot(home) == _snapshot(reference)
    assert _vector_counts(home) == _vector_counts(reference)


@needs_ray
def test_unreachable_or_malformed_address_is_a_clear_error(tmp_path: Path) -> None:
    from engine.indexing.ray_cluster import RayUnavailable, check_reachable, free_port

    address = f"127.0.0.1:{free_port()}"  # nothing listens there
    with pytest.raises(RayUnavailable, match=f"cannot reach the Ray cluster at {address}"):
        check_reachable(address, timeout_s=2)
    with pytest.raises(RayUnavailable, match="'no-port' is not valid"):
        check_reachable("no-port", timeout_s=2)
    home = tmp_path / "home"
    color_library(tmp_path / "videos")
    subprocess.run(_cli(home, "add", str(tmp_path / "videos")), env=_env(), cwd=REPO, check=True, timeout=120)
    started = time.monotonic()
    run = subprocess.run(
        _cli(home, "index", "--ray", f"ray://{address}"), env=_env(), cwd=REPO, capture_output=True, text=True
    )
    assert run.returncode == 2 and f"ray://{address}" in run.stderr and "cannot reach" in run.stderr
    assert time.monotonic() - started < 60
    db = sqlite3.connect(home / "catalog.sqlite")  # refused before the scan: nothing changed
    assert db.execute("SELECT COUNT(*) FROM jobs").fetchone()[0] == 0
    assert db.execute("SELECT COUNT(*) FROM videos").fetchone()[0] == 0


def test_local_index_never_imports_ray(tmp_path: Path) -> None:
    home = tmp_path / "home"
    color_library(tmp_path / "videos")
    base = ["--home", str(home), "--model", MODEL, "--no-progress"]
    code = (
        "import sys\n"
        "from engine.cli import main\n"
        f"assert main({[*base, 'add', str(tmp_path / 'videos')]!r}) == 0\n"
        f"assert main({[*base, 'index']!r}) == 0\n"
        "print(sorted(m for m in sys.modules if m == 'ray' or m.startswith('ray.')))\n"
    )
    run = subprocess.run([sys.executable, "-c", code], env=_env(), cwd=REPO, capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    assert run.stdout.strip().splitlines()[-1] == "[]"


def test_workers_are_sized_to_the_cluster() -> None:
    from engine.indexing.ray_cluster import RayUnavailable
    from engine.indexing.ray_indexer import WorkerPlan, plan_workers

    cpus = {"CPU": 8.0}
    assert plan_workers(RayOptions("auto"), cpus, videos=100) == WorkerPlan(8, 1.0, 0.0)
    assert plan_workers(RayOptions("auto"), cpus, videos=3) == WorkerPlan(3, 1.0, 0.0)  # no idle workers
    assert plan_workers(RayOptions("auto", workers=20), cpus, videos=100).count == 8  # never more than fit
    gpus = {"CPU": 16.0, "GPU": 2.0}
    assert plan_workers(RayOptions("auto"), gpus, videos=100) == WorkerPlan(2, 1.0, 1.0)
    assert plan_workers(RayOptions("auto", workers=6), gpus, videos=100) == WorkerPlan(6, 1.0, 0.3333)
    assert plan_workers(RayOptions("auto", gpus_per_worker=0.25), gpus, videos=100) == WorkerPlan(8, 1.0, 0.25)
    assert plan_workers(RayOptions("auto", gpus_per_worker=0), gpus, videos=100) == WorkerPlan(16, 1.0, 0.0)
    with pytest.raises(RayUnavailable, match="no Ray worker fits"):
        plan_workers(RayOptions("auto", cpus_per_worker=4), {"CPU": 2.0}, videos=5)


def test_ray_address_setting_is_validated_and_optional() -> None:
    assert EngineSettings().ray_address == "" and RayOptions.for_address("") is None
    for ok in ("auto", "10.0.0.5:6379", "ray://head.lan:10001"):
        assert EngineSettings(ray_address=ok).validate().ray_address == ok
    for bad in ("head", "head:port", "ray://head", "10.0.0.5:99999"):
        with pytest.raises(SettingsError, match="ray_address"):
            EngineSettings(ray_address=bad).validate()
    with pytest.raises(ValueError, match="no Ray address"):
        RayOptions("  ")


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_bench_compares_ray_with_local_and_one_with_two_workers(cluster: str, tmp_path: Path) -> None:
    from engine.bench.index_bench import measure_ray
    from engine.models.registry import create_encoder

    paths = [write_color_video(tmp_path / f"{i}.mp4", [(4, RED), (4, BLUE)], seed=i) for i in range(2)]
    settings = EngineSettings(model="fake:hash-8")
    figures = measure_ray(paths, create_encoder("fake:hash-8"), settings, cluster, 2, local_s=1.0)
    assert set(figures["runs"]) == {"1", "2"} and figures["runs"]["2"]["workers"] == 2
    assert all(run["frames"] == figures["runs"]["1"]["frames"] > 0 for run in figures["runs"].values())
    assert figures["scaling_1_to_2"] > 0 and figures["best_over_local"] > 0
