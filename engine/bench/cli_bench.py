"""``scenefind bench cli``: the quick commands as a user meets them, timed as whole processes.

A command's own timers miss what dominates a short command: starting Python and importing. So every figure
here is the wall time of ``python -m engine.cli ...`` in a fresh process (the median of ``runs``), beside
``python -c pass`` for scale:

* ``status`` and an ``index`` with nothing to do, on a library of ``videos`` small indexed videos, and the
  scan alone in this process (what a no-op ``index`` should cost about as much as); whether the no-op run
  imported torch or open_clip is read from ``python -X importtime``;
* ``search`` with the ViT-B-32 architecture (a checkpoint folder with random weights, written once into the
  bench cache, since no pretrained weights can be assumed): cold (a text never searched: the text tower is
  built and run) and repeated (the same text again: its vector comes from the query vector cache), after one
  first search that encodes the library's background captions once;
* the offline demo model (``fake:color``, what a first run without network can use): ``status``, a no-op
  ``index`` and a new search text, none of which may import torch or open_clip;
* in this process, building and running the full model versus the text tower alone;
* the app: seconds from starting Python to the main window shown (offscreen, on a library of the small
  videos), as the process itself reports it after its first event loop pass (timing the whole process would
  add the time to close Qt, which no user waits for).

Child processes get their own cache folder (so "cold" is cold) and may write bytecode caches, as an installed
package has them.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from engine.jobs import CancelToken, ProgressCallback, check_cancel, report
from engine.paths import cache_home

SEARCH_ARCH = "ViT-B-32"
DEMO_MODEL = "fake:color"  # what the app offers when no weights can be downloaded (desktop.problems.DEMO_MODELS)
HEAVY = ("torch", "open_clip", "transformers", "torchvision")


def _child_env(cache: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONDONTWRITEBYTECODE", "SCENEFIND_HOME")}
    env["SCENEFIND_CACHE"] = str(cache)
    cache.mkdir(parents=True, exist_ok=True)
    repo = str(Path(__file__).resolve().parents[2])  # a source checkout runs as installed
    env["PYTHONPATH"] = os.pathsep.join(p for p in (repo, env.get("PYTHONPATH", "")) if p)
    return env


def _timed(argv: Sequence[str], env: dict[str, str]) -> tuple[float, subprocess.CompletedProcess[str]]:
    start = time.perf_counter()  # cwd: a folder without an ``engine`` package that ``python -m`` could pick up
    done = subprocess.run(list(argv), env=env, capture_output=True, text=True, check=False, cwd=env["SCENEFIND_CACHE"])
    elapsed = time.perf_counter() - start
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(argv[2:])} exited {done.returncode}: {done.stderr.strip()[-500:]}")
    return elapsed, done


def _median(argvs: Sequence[Sequence[str]], env: dict[str, str]) -> float:
    return statistics.median(_timed(argv, env)[0] for argv in argvs)


def _imports_heavy(argv: Sequence[str], env: dict[str, str]) -> list[str]:
    """Which of torch, open_clip, ... a command imports (``-X importtime`` lists every module on stderr)."""
    _, done = _timed([argv[0], "-X", "importtime", *argv[1:]], env)
    names = {line.rsplit("|", 1)[-1].strip() for line in done.stderr.splitlines() if line.startswith("import time:")}
    return [name for name in HEAVY if name in names]


# Python to the main window shown, in a child process (tests/desktop/test_main_window.py runs it too)
WINDOW_UP = (
    "import time, sys; t0 = time.perf_counter()\n"
    "from PySide6.QtWidgets import QApplication\n"
    "app = QApplication([])\n"
    "from desktop.app import open_engine\n"
    "from desktop.main_window import MainWindow\n"
    "w = MainWindow(open_engine(None, None)); w.show(); app.processEvents()\n"
    "print(w.isVisible(), time.perf_counter() - t0)\n"
)


def _window_visible_s(home: Path, env: dict[str, str], runs: int) -> float:
    """Median seconds from ``python`` to the app's main window shown (offscreen), measured in the child."""
    gui_env = {**env, "QT_QPA_PLATFORM": "offscreen", "SCENEFIND_HOME": str(home)}
    times = []
    for _ in range(runs):
        _, done = _timed([sys.executable, "-c", WINDOW_UP], gui_env)
        visible, seconds = done.stdout.split()[:2]
        if visible != "True":
            raise RuntimeError(f"the main window did not show: {done.stdout.strip()}")
        times.append(float(seconds))
    return statistics.median(times)


def _write_library_videos(folder: Path, count: int) -> None:
    from engine.media.synthetic import write_color_video

    for i in range(count):
        path = folder / f"part{i // 500:02d}" / f"clip{i:05d}.avi"
        if not path.exists():
            colour = ((i * 37) % 256, (i * 91) % 256, (i * 53) % 256)
            write_color_video(path, [(1.0, colour)], fps=4, size=(32, 24), seed=i)


def search_checkpoint(arch: str = SEARCH_ARCH) -> Path:
    """A checkpoint folder of ``arch`` with random (seeded) weights, written once into the bench cache: the
    architecture users search with, loaded from a file the way pretrained weights are."""
    from engine.models.checkpoint import save_checkpoint
    from engine.models.registry import create_random_openclip_encoder

    folder = cache_home() / "bench" / f"{arch}-random-checkpoint"
    if not (folder / "config.json").is_file():
        encoder = create_random_openclip_encoder(arch, device="cpu")
        save_checkpoint(folder, encoder.torch_model(), arch, {"model_id": f"{arch}-random"})  # type: ignore[attr-defined]
    return folder


def _in_process_text(checkpoint: Path) -> dict[str, float]:
    """Seconds to build, load and encode one text: the full model versus the text tower alone."""
    from engine.models.registry import create_encoder

    create_encoder(str(checkpoint), device="cpu").encode_texts(["warm-up"])  # torch's first-call costs, apart
    full = create_encoder(str(checkpoint), device="cpu")
    start = time.perf_counter()
    full.load()  # type: ignore[attr-defined]
    full.encode_texts(["a dog catching a frisbee"])
    full_s = time.perf_counter() - start
    tower = create_encoder(str(checkpoint), device="cpu")
    start = time.perf_counter()
    tower.encode_texts(["a dog catching a frisbee"])
    return {"full_model_s": full_s, "text_tower_s": time.perf_counter() - start}


def _demo_figures(demo_cmd: list[str], root: Path, runs: int, env: dict[str, str]) -> dict[str, Any]:
    """The offline demo model's commands: what a first run without network is left with, so it must be as fast
    (it is NumPy only: no command with it may import torch or open_clip, a new search text included)."""
    for args in (["add", str(root / "small-videos")], ["index"]):
        _timed([*demo_cmd, *args], env)
    texts = [f"a red screen, take {i}" for i in range(runs)]
    return {
        "demo_status_s": _median([[*demo_cmd, "status"]] * runs, env),
        "demo_noop_index_s": _median([[*demo_cmd, "index"]] * runs, env),
        "demo_search_cold_s": _median([[*demo_cmd, "search", t, "--all"] for t in texts], env),
        "demo_imports": _imports_heavy([*demo_cmd, "search", "a blue screen, once", "--all"], env),
    }


def run_cli_bench(
    *,
    videos: int = 1000,
    runs: int = 5,
    arch: str = SEARCH_ARCH,
    work: Path | None = None,
    log: Callable[[str], None] | None = print,
    progress: ProgressCallback | None = None,
    cancel: CancelToken | None = None,
) -> dict[str, Any]:
    """Build the libraries, time the commands; returns the figures (seconds, medians of ``runs``)."""
    from engine.library.library import Library
    from engine.library.scanner import scan_library

    say = log or (lambda line: None)
    with tempfile.TemporaryDirectory(prefix="scenefind-bench-cli-") as tmp:
        root = Path(work) if work else Path(tmp)
        env = _child_env(root / "cache")
        cli = [sys.executable, "-m", "engine.cli", "--no-progress"]
        big, small = root / "big", root / "small"
        report(progress, 0.0, f"Writing {videos} videos")
        _write_library_videos(root / "videos", videos)
        report(progress, 0.1, "Indexing the big library")
        for args in (["add", str(root / "videos")], ["index"]):
            _timed([*cli, "--home", str(big), "--model", "test-tiny", *args], env)
        check_cancel(cancel)
        report(progress, 0.4, "Timing status and index")
        big_cmd = [*cli, "--home", str(big), "--model", "test-tiny"]
        figures: dict[str, Any] = {"videos": videos, "runs": runs, "arch": arch}
        figures["python_start_s"] = _median([[sys.executable, "-c", "pass"]] * runs, env)
        figures["status_s"] = _median([[*big_cmd, "status"]] * runs, env)
        figures["noop_index_s"] = _median([[*big_cmd, "index"]] * runs, env)
        figures["noop_index_imports"] = _imports_heavy([*big_cmd, "index"], env)
        with Library(big) as lib:
            scans = []
            for _ in range(runs):
                start = time.perf_counter()
                scan_library(lib.catalog)
                scans.append(time.perf_counter() - start)
        figures["scan_in_process_s"] = statistics.median(scans)
        check_cancel(cancel)

        report(progress, 0.55, f"Writing a {arch} checkpoint and indexing with it")
        checkpoint = search_checkpoint(arch)
        _write_library_videos(root / "small-videos", 3)
        small_cmd = [*cli, "--home", str(small), "--model", str(checkpoint)]
        for args in (["add", str(root / "small-videos")], ["index"]):
            _timed([*small_cmd, *args], env)
        first, _ = _timed([*small_cmd, "search", "the very first search", "--all"], env)
        figures["search_first_s"] = first  # also encodes the background captions, once per library and model
        report(progress, 0.7, "Timing search")
        texts = [f"a person walking a dog, take {i}" for i in range(runs)]
        figures["search_cold_s"] = _median([[*small_cmd, "search", t, "--all"] for t in texts], env)
        figures["search_repeated_s"] = _median([[*small_cmd, "search", texts[0], "--all"]] * runs, env)
        figures["search_repeated_imports"] = _imports_heavy([*small_cmd, "search", texts[0], "--all"], env)
        check_cancel(cancel)
        report(progress, 0.75, "Timing the offline demo model")
        figures.update(_demo_figures([*cli, "--home", str(root / "demo"), "--model", DEMO_MODEL], root, runs, env))
        check_cancel(cancel)
        report(progress, 0.8, "Timing the app's first window")
        figures["gui_visible_s"] = _window_visible_s(small, env, runs)
        report(progress, 0.9, "Full model versus text tower")
        figures.update(_in_process_text(checkpoint))
    report(progress, 1.0, "Done")
    for line in table(figures):
        say(line)
    return figures


def table(f: dict[str, Any]) -> list[str]:
    """The figures as a few lines: each command's median, and the ratios that say what the changes bought."""
    start = f["python_start_s"]

    def imports(names: list[str]) -> str:
        return "imports " + ", ".join(names) if names else "no torch or open_clip"

    return [
        f"Whole commands, median of {f['runs']} runs (python -c pass: {start:.2f} s):",
        f"  status, {f['videos']} videos                {f['status_s']:6.2f} s",
        f"  index with nothing to do           {f['noop_index_s']:6.2f} s  ({imports(f['noop_index_imports'])}; "
        f"the scan alone: {f['scan_in_process_s']:.2f} s in-process)",
        f"  search with {f['arch']}, first ever     {f['search_first_s']:6.2f} s  (encodes the background captions)",
        f"  search, a new text (cold)          {f['search_cold_s']:6.2f} s",
        f"  search, the same text (repeated)   {f['search_repeated_s']:6.2f} s  "
        f"({imports(f['search_repeated_imports'])}; cold / repeated = "
        f"{f['search_cold_s'] / f['search_repeated_s']:.1f})",
        f"  the demo model ({DEMO_MODEL}): status {f['demo_status_s']:.2f} s, index with nothing to do "
        f"{f['demo_noop_index_s']:.2f} s, a new search {f['demo_search_cold_s']:.2f} s ({imports(f['demo_imports'])})",
        f"  the app, start to window shown     {f['gui_visible_s']:6.2f} s  (offscreen; torch loads after it)",
        f"In this process, build + load + encode one text with {f['arch']}: full model {f['full_model_s']:.2f} s, "
        f"text tower alone {f['text_tower_s']:.2f} s ({f['full_model_s'] / f['text_tower_s']:.1f}x)",
    ]
