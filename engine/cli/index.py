"""``scenefind index``: index new and changed videos, once or watching the folders, here or on a Ray cluster.

The run resumes whatever an earlier one left; Ctrl-C stops after the current video and keeps what was done
(exit 130, also when it stops ``--watch``). Files that failed in this run are listed with their reason (exit
1); they, and those that failed in earlier runs (counted, exit 0), stay skipped until they change or
``--retry-failed`` asks for them again. Nothing imports torch or builds the model unless a video needs it.
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from pathlib import Path
from typing import Any

from engine.cli import EXIT_CANCELLED, EXIT_FAILED, EXIT_OK, Handler
from engine.cli.support import cancel_on_sigint, count, open_library, progress_bar, safe


def register(sub: Any) -> dict[str, Handler]:
    """Add ``index`` to the ``scenefind`` sub-parsers; return ``{"index": handler}``."""
    i = sub.add_parser("index", help="index new and changed videos (resumes an interrupted run)")
    i.add_argument("--watch", action="store_true", help="keep running and index changes as they happen")
    i.add_argument("--retry-failed", action="store_true", help="try files that failed before again")
    i.add_argument("--debounce", type=float, default=2.0, help="seconds of quiet before re-indexing (--watch)")
    i.add_argument("--no-speech", action="store_true", help="skip the speech stage this time (setting: speech)")
    i.add_argument(
        "--no-screen-text", action="store_true", help="skip the on-screen text stage this time (setting: screen_text)"
    )
    _add_ray_arguments(i)
    i.add_argument("--no-ray", action="store_true", help="index on this machine even if the settings name a cluster")
    return {"index": cmd_index}


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
    """``--ray ADDRESS`` and the per-worker shares of the cluster."""
    p.add_argument(
        "--ray",
        type=_ray_address,
        metavar="ADDRESS",
        help="decode and embed on the Ray cluster at ADDRESS (auto, HOST:PORT or ray://HOST:PORT); videos are "
        "read by path, so every node must see the folders at the same paths (default: the settings' ray_address)",
    )
    p.add_argument(
        "--ray-workers", type=count, metavar="N", help="Ray workers to start (default: as many as the cluster fits)"
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


def summary(result: Any, model: str) -> list[str]:
    """The run's summary: what the scan found on disk, then what happened to the library's videos with this
    model. Each count means one thing, and the second line's add up to the videos in the library."""
    scan = (
        f"Files: {result.new} new, {result.changed} changed, {result.moved} moved, {result.unchanged} unchanged, "
        f"{result.removed} removed."
    )
    total = result.indexed + result.already_indexed + len(result.failed) + result.failed_before
    if result.indexed or result.failed:
        done = (
            f"{result.indexed} indexed in this run ({result.frames} frames, {result.seconds_of_video:.0f} s of "
            f"video, {result.elapsed_s:.1f} s), {result.already_indexed} already indexed, "
            f"{len(result.failed)} failed"
        )
    else:
        done = f"nothing new to index; {result.already_indexed} already indexed"
    earlier = f", {result.failed_before} failed in earlier runs" if result.failed_before else ""
    return [scan, f"Videos with {model}: {done}{earlier} (of {total})."]


def _index_once(lib: Any, encoder: Any, args: argparse.Namespace) -> int:
    """One run: its summary on stdout, this run's failures (and a word on older ones) on stderr. Exit 1 only
    when a file failed in this run, so ``add && index && search`` goes on past a file that failed long ago."""
    from engine.jobs import JobCancelled

    ray = _ray_options(lib, args)
    with cancel_on_sigint() as token, progress_bar(not args.no_progress) as bar:
        try:
            result = lib.index(encoder, ray=ray, progress=bar, cancel=token)
        except JobCancelled:
            print("Cancelled. What was indexed is kept; run `scenefind index` again to resume.", file=sys.stderr)
            return EXIT_CANCELLED
    print("\n".join(summary(result, safe(lib.settings.model))))
    for stage in result.stages:
        print(stage_summary(stage))
    sys.stdout.flush()  # keep the summary above the per-file lines when both streams share a terminal
    for path in result.no_video:
        print(f"  no video stream (audio only, kept for speech indexing): {safe(path)}")
    for path, why in result.partial:
        print(f"  partly indexed: {safe(path)}: {safe(why)}", file=sys.stderr)
    for stage in result.stages:
        for path, why in stage.failed:
            print(f"  {stage.stage} failed: {safe(path)}: {safe(why)}", file=sys.stderr)
        if stage.unavailable:
            print(f"  {stage.stage} not run: {safe(stage.unavailable)}", file=sys.stderr)
    for path, why in result.unreadable:
        print(f"  unreadable: {safe(path)}: {safe(why)}", file=sys.stderr)
    for path, why in result.failed:
        print(f"  failed: {safe(path)}: {safe(why)}", file=sys.stderr)
    if result.failed_before:
        n = result.failed_before
        print(
            f"  {n} file{'s' * (n != 1)} failed in earlier runs and {'are' if n != 1 else 'is'} skipped until "
            "changed (`scenefind status` lists them; fix them and run `scenefind index --retry-failed`)",
            file=sys.stderr,
        )
    return EXIT_FAILED if result.failed else EXIT_OK


def stage_summary(stage: Any) -> str:
    """One line per stage: what it did, how fast, and what is left for the next run."""
    name = {"speech": "speech", "text": "screen text"}[stage.stage]
    if not stage.pending:
        return f"{name}: nothing new"
    silent = f", {stage.no_audio} without sound" if stage.stage == "speech" else ""
    speed = f" ({stage.media_s:.0f} s at {stage.speed:.1f}x real time)" if stage.media_s else ""
    left = stage.pending - stage.done - stage.no_audio - len(stage.failed)
    waiting = f", {left} waiting (not run: see below)" if stage.unavailable else ""
    return f"{name}: {stage.done} done{silent}, {len(stage.failed)} failed{waiting}{speed}"


def cmd_index(args: argparse.Namespace) -> int:
    with open_library(args) as lib:
        if args.retry_failed:
            lib.retry_failed()
        encoder = lib.encoder(lazy=True)  # built only if a video needs embedding; kept for --watch's runs
        code = _index_once(lib, encoder, args)
        if not args.watch or code == EXIT_CANCELLED:
            return code
        from engine.indexing.watch import watch_folders

        print("Watching for changes (Ctrl-C to stop)…", file=sys.stderr)
        stop = threading.Event()
        stopped_by: list[int] = []
        outcome: list[int] = []

        def on_signal(signum: int, frame: object) -> None:
            stopped_by.append(signum)
            stop.set()

        def on_change() -> None:
            if _index_once(lib, encoder, args) == EXIT_CANCELLED:  # Ctrl-C during a run stops watching too
                outcome.append(EXIT_CANCELLED)
                stop.set()

        for sig in (signal.SIGINT, signal.SIGTERM):  # explicit, so it works even where SIGINT was ignored
            signal.signal(sig, on_signal)
        watch_folders([Path(f["path"]) for f in lib.catalog.folders()], args.debounce, on_change, stop=stop)
        if outcome or stopped_by:  # stopped by a signal: 130 for Ctrl-C (as the README says), 143 for SIGTERM
            print("Stopped watching.", file=sys.stderr)
            return 128 + stopped_by[0] if stopped_by else EXIT_CANCELLED
        return EXIT_OK
