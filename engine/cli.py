"""The ``scenefind`` command: everything the desktop app does, from a terminal.

Exit codes: 0 success; 1 some files failed (the rest were indexed); 2 usage or fatal error; 130 cancelled
with Ctrl-C (what was done is kept; run the same command again to resume).
"""

from __future__ import annotations

import argparse
import importlib
import json
import logging
import os
import signal
import sys
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from engine.cli_support import cancel_on_sigint, progress_bar, safe

EXIT_OK, EXIT_FAILED_FILES, EXIT_ERROR, EXIT_CANCELLED = 0, 1, 2, 130
EXTENSIONS = ("engine.cli_eval", "engine.cli_export", "engine.cli_train", "engine.cli_train_data")
BENCH_EXTENSIONS = (
    ("engine.cli_bench_search", "register"),
    ("engine.cli_bench_faults", "register"),
    ("engine.cli_train", "register_bench"),
)


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="scenefind", description="Search your videos in plain language.")
    p.add_argument("--home", type=Path, help="library folder (default: $SCENEFIND_HOME or the user data dir)")
    p.add_argument("--model", help="encoder (default: $SCENEFIND_MODEL or the settings); see `scenefind models`")
    p.add_argument("-v", "--verbose", action="store_true", help="log what happens")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    a = sub.add_parser("add", help="add a folder of videos to the library")
    a.add_argument("folders", nargs="+", type=Path, metavar="FOLDER")
    r = sub.add_parser("remove", help="remove a folder (its files are not touched)")
    r.add_argument("folders", nargs="+", type=Path, metavar="FOLDER")
    i = sub.add_parser("index", help="index new and changed videos (resumes an interrupted run)")
    i.add_argument("--watch", action="store_true", help="keep running and index changes as they happen")
    i.add_argument("--retry-failed", action="store_true", help="try files that failed before again")
    i.add_argument("--debounce", type=float, default=2.0, help="seconds of quiet before re-indexing (--watch)")
    _add_ray_arguments(i)
    i.add_argument("--no-ray", action="store_true", help="index on this machine even if the settings name a cluster")
    st = sub.add_parser("status", help="folders, counts, failed files, models")
    st.add_argument("--json", action="store_true")
    from engine.cli_search import add_parser as add_search

    add_search(sub)
    m = sub.add_parser("models", help="list the encoders you can use")
    m.add_argument("--json", action="store_true")
    b = sub.add_parser("bench", help="measure speed")
    bsub = b.add_subparsers(dest="bench", required=True, metavar="WHAT")
    bi = bsub.add_parser("index", help="decode, embed and end-to-end indexing throughput")
    bi.add_argument("folder", nargs="?", type=Path, help="also measure on the videos of this folder")
    bi.add_argument("--videos", type=int, default=3, help="generated 720p H.264 videos (default 3)")
    bi.add_argument("--seconds", type=float, default=30.0, help="length of each generated video (default 30)")
    bi.add_argument("--json", action="store_true")
    bi.add_argument(
        "--ray",
        metavar="ADDRESS",
        help="also index through Ray workers at ADDRESS (or `local`: a throwaway cluster on this machine)",
    )
    bi.add_argument(
        "--ray-workers", type=_count, default=2, metavar="N", help="measure 1 and N Ray workers (default 2)"
    )
    for module, function in BENCH_EXTENSIONS:
        BENCHES.update(getattr(importlib.import_module(module), function)(bsub))
    g = sub.add_parser("gui", help="open the desktop app (options after `gui` go to the app, e.g. --screenshot)")
    g.add_argument("gui_args", nargs=argparse.REMAINDER, help=argparse.SUPPRESS)
    for module in EXTENSIONS:  # commands that live in their own modules register themselves
        COMMANDS.update(importlib.import_module(module).register(sub))
    return p


def _count(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, not {value}")
    return value


def _share(text: str) -> float:
    value = float(text)
    if not 0 <= value <= 64:
        raise argparse.ArgumentTypeError(f"must be between 0 and 64, not {value:g}")
    return value


def _cpus(text: str) -> float:
    value = float(text)
    if not 0 < value <= 1024:
        raise argparse.ArgumentTypeError(f"must be above 0, not {value:g}")
    return value


def _ray_address(text: str) -> str:
    from engine.settings import EngineSettings, SettingsError

    try:
        return EngineSettings(ray_address=text.strip()).validate("--ray").ray_address
    except SettingsError as exc:
        raise argparse.ArgumentTypeError(str(exc).removeprefix("--ray: ray_address = ")) from exc


def _add_ray_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--ray",
        type=_ray_address,
        metavar="ADDRESS",
        help="decode and embed on the Ray cluster at ADDRESS (auto, HOST:PORT or ray://HOST:PORT); videos are "
        "read by path, so every node must see the folders at the same paths (default: the settings' ray_address)",
    )
    p.add_argument(
        "--ray-workers", type=_count, metavar="N", help="Ray workers to start (default: as many as the cluster fits)"
    )
    p.add_argument(
        "--ray-gpus-per-worker",
        type=_share,
        metavar="GPUS",
        help="GPUs per Ray worker, fractions allowed (default: the cluster's GPUs shared out; 0: CPU workers)",
    )
    p.add_argument("--ray-cpus-per-worker", type=_cpus, default=1.0, metavar="CPUS", help="(default 1)")


def _ray_options(lib: Any, args: argparse.Namespace) -> Any:
    """The run's ``RayOptions`` from the flags and the settings; None for a local run."""
    if args.no_ray:
        return None
    return lib.ray_options(
        args.ray,
        workers=args.ray_workers or 0,
        gpus_per_worker=args.ray_gpus_per_worker,
        cpus_per_worker=args.ray_cpus_per_worker,
    )


def _open(args: argparse.Namespace) -> Any:
    from engine.library.library import Library

    library = Library(args.home)
    if args.model:
        library.settings = library.settings.replace(model=args.model)
    return library


def cmd_add(args: argparse.Namespace) -> int:
    with _open(args) as lib:
        for folder in args.folders:
            row = lib.add_folder(folder)
            print(f"Added {safe(row['path'])}. Run `scenefind index` to index it.")
    return EXIT_OK


def cmd_remove(args: argparse.Namespace) -> int:
    with _open(args) as lib:
        for folder in args.folders:
            dropped = lib.remove_folder(folder)
            print(f"Removed {safe(Path(folder).expanduser().resolve())} ({dropped} vectors dropped; files untouched).")
    return EXIT_OK


def _index_once(lib: Any, args: argparse.Namespace) -> int:
    from engine.jobs import JobCancelled

    encoder = lib.encoder()
    ray = _ray_options(lib, args)
    with cancel_on_sigint() as token, progress_bar(not args.no_progress) as bar:
        try:
            result = lib.index(encoder, ray=ray, progress=bar, cancel=token)
        except JobCancelled:
            print("Cancelled. What was indexed is kept; run `scenefind index` again to resume.", file=sys.stderr)
            return EXIT_CANCELLED
    print(
        f"{result.indexed} indexed ({result.frames} frames, {result.seconds_of_video:.0f} s of video) in "
        f"{result.elapsed_s:.1f} s; {result.unchanged} unchanged, {result.new} new, {result.changed} changed, "
        f"{result.moved} moved, {result.removed} removed, {len(result.failed)} failed."
    )
    sys.stdout.flush()  # keep the summary above the per-file lines when both streams share a terminal
    for path, why in result.unreadable:
        print(f"  unreadable: {safe(path)}: {safe(why)}", file=sys.stderr)
    failed = lib.catalog.videos(status="failed")
    for video in failed:
        print(f"  failed: {safe(video['path'])}: {safe(video['error'])}", file=sys.stderr)
    if failed and not result.failed:
        print("  (failed before; fix them and run `scenefind index --retry-failed`)", file=sys.stderr)
    return EXIT_FAILED_FILES if failed else EXIT_OK


def cmd_index(args: argparse.Namespace) -> int:
    with _open(args) as lib:
        if args.retry_failed:
            lib.retry_failed()
        code = _index_once(lib, args)
        if not args.watch or code == EXIT_CANCELLED:
            return code
        from engine.indexing.watch import watch_folders

        print("Watching for changes (Ctrl-C to stop)…", file=sys.stderr)
        stop = threading.Event()
        for sig in (signal.SIGINT, signal.SIGTERM):  # explicit, so it works even where SIGINT was ignored
            signal.signal(sig, lambda signum, frame: stop.set())
        watch_folders(
            [Path(f["path"]) for f in lib.catalog.folders()],
            args.debounce,
            lambda: _index_once(lib, args),
            stop=stop,
        )
        return EXIT_OK


def _status(lib: Any) -> dict[str, Any]:
    return {
        "home": str(lib.paths.root),
        "model": lib.settings.model,
        "folders": lib.catalog.folder_counts(),
        "failed": [{"video": v["path"], "error": v["error"]} for v in lib.catalog.videos(status="failed")],
        "models": lib.catalog.models(),
        "last_jobs": [dict(j) for j in lib.catalog.jobs(limit=3)],
    }


def _duration(seconds: float) -> str:
    minutes, secs = divmod(round(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


def cmd_status(args: argparse.Namespace) -> int:
    with _open(args) as lib:
        info = _status(lib)
    if args.json:
        print(json.dumps(info, indent=2))
        return EXIT_OK
    print(f"Library: {info['home']}\nModel:   {info['model']}")
    if not info["folders"]:
        print("No folders yet. Add one with `scenefind add FOLDER`.")
    for f in info["folders"]:
        print(
            f"  {safe(f['path'])}: {f['videos']} videos, {f['indexed']} indexed, {f['pending']} pending, "
            f"{f['failed']} failed, {_duration(f['seconds'])} of video"
        )
    for m in info["models"]:
        print(f"  index {m['model_id']}: {m['videos']} videos")
    for f in info["failed"]:
        print(f"  failed: {safe(f['video'])}: {safe(f['error'])}")
    for j in info["last_jobs"][:1]:
        print(f"  last run: {j['status']} ({j['done']}/{j['total']}) {j['message'] or ''}")
    return EXIT_OK


def cmd_search(args: argparse.Namespace) -> int:
    from engine.cli_search import cmd_search as run_search

    return run_search(args, _open)


def cmd_models(args: argparse.Namespace) -> int:
    from engine.models.registry import list_models

    models = list_models()
    if args.json:
        print(json.dumps([m.__dict__ for m in models], indent=2, default=str))
        return EXIT_OK
    for m in models:
        cached = {True: " (downloaded)", False: "", None: ""}[m.cached]
        print(f"{m.name:48s} {m.description}{cached}")
    return EXIT_OK


def cmd_bench(args: argparse.Namespace) -> int:
    return BENCHES[args.bench](args)


def cmd_bench_index(args: argparse.Namespace) -> int:
    from engine.bench.index_bench import run_index_bench

    figures = run_index_bench(
        args.model,
        videos=args.videos,
        seconds=args.seconds,
        folder=args.folder,
        ray=args.ray,
        ray_workers=args.ray_workers,
        log=None if args.json else print,
    )
    if args.json:
        print(json.dumps(figures, indent=2))
    return EXIT_OK


def cmd_gui(args: argparse.Namespace) -> int:
    """Start the desktop app through its ``scenefind-gui`` entry point: the engine never imports ``desktop``."""
    from importlib.metadata import entry_points

    found = entry_points(group="gui_scripts", name="scenefind-gui")
    try:
        launch = next(iter(found)).load()
    except (StopIteration, ImportError) as exc:
        print(
            f"scenefind: error: the desktop app is not installed ({exc or 'no scenefind-gui entry point'})",
            file=sys.stderr,
        )
        return EXIT_ERROR
    if args.model:
        os.environ["SCENEFIND_MODEL"] = args.model  # the app reads the library's settings and this override
    return int(launch(args.gui_args) or 0)


BENCHES: dict[str, Callable[[argparse.Namespace], int]] = {"index": cmd_bench_index}
COMMANDS: dict[str, Callable[[argparse.Namespace], int]] = {
    "add": cmd_add,
    "remove": cmd_remove,
    "index": cmd_index,
    "status": cmd_status,
    "search": cmd_search,
    "models": cmd_models,
    "bench": cmd_bench,
    "gui": cmd_gui,
}


def _known_errors() -> tuple[type[BaseException], ...]:
    from engine.index.errors import IndexCorrupt, IndexModelMismatch
    from engine.library.catalog import CatalogError
    from engine.library.library import LibraryBusy
    from engine.media.decode import MediaError
    from engine.models.base import ModelUnavailable
    from engine.search.searcher import SearchError
    from engine.settings import SettingsError

    return (
        CatalogError,
        LibraryBusy,
        SettingsError,
        ModelUnavailable,
        SearchError,
        IndexModelMismatch,
        IndexCorrupt,
        MediaError,
        OSError,
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    args, extra = parser.parse_known_args(argv)
    if extra and args.command != "gui":
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    if args.command == "gui":  # everything after `gui` belongs to the app (argparse cannot route it itself)
        args.gui_args = [*extra, *args.gui_args]
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING, format="%(levelname)s %(name)s: %(message)s"
    )
    if args.home:
        os.environ["SCENEFIND_HOME"] = str(args.home.expanduser().resolve())
    started = time.perf_counter()
    try:
        return COMMANDS[args.command](args)
    except _known_errors() as exc:
        print(f"scenefind: error: {safe(exc)}", file=sys.stderr)
        return EXIT_ERROR
    finally:
        logging.getLogger(__name__).info("%s took %.2f s", args.command, time.perf_counter() - started)


if __name__ == "__main__":
    sys.exit(main())
