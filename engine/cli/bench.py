"""``scenefind bench index|search|faults|train|decode|cli|quality|speech``: every benchmark's arguments and
handler (``cli`` in ``engine.cli.bench_cli``, ``quality`` in ``engine.cli.bench_quality``, ``speech`` in
``engine.cli.bench_speech``).

Speed and reliability targets live in these benchmarks, not in timed unit tests. ``register`` adds ``bench``
and its sub-commands to the ``scenefind`` parser; nothing heavy is imported until a benchmark runs, so
``scenefind --help`` stays fast. Exit codes follow ``engine.cli`` (``bench faults`` exits 1 when anything was
lost, crashed or not handled).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from engine.cli import EXIT_CANCELLED, EXIT_FAILED, EXIT_OK, Handler
from engine.cli.support import cancel_on_sigint, count, fail, progress_bar

_SUFFIXES = {"k": 1_000, "m": 1_000_000}


def register(sub: Any) -> dict[str, Handler]:
    """Add ``bench`` and its sub-commands to the ``scenefind`` sub-parsers; return ``{"bench": handler}``."""
    b = sub.add_parser("bench", help="measure speed")
    bsub = b.add_subparsers(dest="bench", required=True, metavar="WHAT")
    benches: dict[str, Handler] = {}
    from engine.cli.bench_cli import register_cli
    from engine.cli.bench_quality import register_quality
    from engine.cli.bench_speech import register_speech

    for add in (
        register_index,
        register_search,
        register_faults,
        register_train,
        register_decode,
        register_cli,
        register_quality,
        register_speech,
    ):
        benches.update(add(bsub))
    return {"bench": lambda args: benches[args.bench](args)}


def _log(show_bar: bool) -> Callable[[str], None]:
    """Print a line of a benchmark's log; above the progress bar (which stays at the bottom) when one shows."""

    def log(message: str) -> None:
        if show_bar:
            from tqdm import tqdm

            tqdm.write(message, file=sys.stdout)
        else:
            print(message, flush=True)

    return log


# -- bench index ------------------------------------------------------------------------------------------


def register_index(bench_subparsers: Any) -> dict[str, Handler]:
    """Add ``index`` to the ``bench`` sub-parsers; return ``{"index": handler}``."""
    bi = bench_subparsers.add_parser("index", help="decode, embed and end-to-end indexing throughput")
    bi.add_argument("folder", nargs="?", type=Path, help="also measure on the videos of this folder")
    bi.add_argument("--videos", type=int, default=3, help="generated 720p H.264 videos (default 3)")
    bi.add_argument("--seconds", type=float, default=30.0, help="length of each generated video (default 30)")
    bi.add_argument("--json", action="store_true")
    bi.add_argument(
        "--ray",
        metavar="ADDRESS",
        help="also index through Ray workers at ADDRESS (or `local`: a throwaway cluster on this machine)",
    )
    bi.add_argument("--ray-workers", type=count, default=2, metavar="N", help="measure 1 and N Ray workers (default 2)")
    return {"index": cmd_bench_index}


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


# -- bench search -----------------------------------------------------------------------------------------


def parse_sizes(text: str) -> tuple[int, ...]:
    """``"10k,100k,1M"`` (or plain integers) -> ``(10000, 100000, 1000000)``."""
    sizes = []
    for part in text.split(","):
        part = part.strip().lower().replace("_", "")
        scale = _SUFFIXES.get(part[-1:], 1)
        digits = part[:-1] if scale > 1 else part
        if not digits.isdigit() or int(digits) * scale < 1:
            raise argparse.ArgumentTypeError(f"{text!r}: sizes are positive integers like 10000 or 10k,100k,1M")
        sizes.append(int(digits) * scale)
    return tuple(sizes)


def register_search(bench_subparsers: Any) -> dict[str, Handler]:
    """Add ``search`` to the ``bench`` sub-parsers (an ``add_subparsers`` result); return ``{"search": handler}``.

    Its defaults come from ``engine.bench.search_bench`` when it runs: importing it here would cost every
    ``scenefind`` command a fifth of a second."""
    p = bench_subparsers.add_parser(
        "search",
        help="text-query latency and ANN recall at 10k, 100k and 1M frame vectors",
        description="Text encoding latency (the --model encoder, default random:ViT-B-32) and frame-index "
        "ANN + float16 re-scoring latency and recall@10 against exact search, on synthetic vectors. Built "
        "indexes are cached in the user cache (bench/search), so a second run is quick.",
    )
    p.add_argument(
        "--sizes", type=parse_sizes, default=None, help="default 10k,100k,1M (frame vectors) or 100k (--library)"
    )
    p.add_argument(
        "--library",
        action="store_true",
        help="measure whole index layouts on a synthetic library instead: MB per hour of video by file, video "
        "and frame recall@10 and latency of the layout before (hnswlib graphs, frames too) and now (usearch int8 "
        "video and segment graphs, frames re-scored through them)",
    )
    p.add_argument(
        "--ef", type=parse_sizes, default=(128, 512), help="--library: ef values measured beside the default"
    )
    p.add_argument("--dim", type=int, default=512, help="vector width (default 512)")
    p.add_argument("--queries", type=int, default=200, help="ANN queries per index (default 200)")
    p.add_argument(
        "--kinds",
        type=lambda text: tuple(part.strip() for part in text.split(",")),
        help="synthetic vector kinds, comma-separated (default: all of them)",
    )
    p.add_argument(
        "--candidates", type=int, help="ANN candidates re-scored (default: as many as the searcher asks for at k=20)"
    )
    p.add_argument("--text-queries", type=int, default=50, help="text queries encoded one at a time (0 skips)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--json", action="store_true", help="print the figures as JSON")
    return {"search": cmd_bench_search}


def cmd_bench_search(args: argparse.Namespace) -> int:
    """Run the search benchmark (frame vectors, or whole layouts with ``--library``) with a progress bar (unless
    ``--no-progress``); print a table or JSON. Built indexes stay cached, so a cancelled run goes on next time."""
    show_bar = not getattr(args, "no_progress", False)
    log = _log(show_bar)
    common = {"dim": args.dim, "queries": args.queries, "seed": args.seed, "log": None if args.json else log}
    if args.library:
        from engine.bench.library_bench import run_library_bench

        def run(bar: Any, token: Any) -> Any:
            rows = run_library_bench(
                sizes=args.sizes or (100_000,), ef_sweep=args.ef, progress=bar, cancel=token, **common
            )
            return {"library": rows}

    else:
        from engine.bench.search_bench import CANDIDATES, KINDS, run_search_bench

        def run(bar: Any, token: Any) -> Any:
            return run_search_bench(
                getattr(args, "model", None),
                sizes=args.sizes or (10_000, 100_000, 1_000_000),
                kinds=args.kinds or KINDS,
                candidates=args.candidates or CANDIDATES,
                text_queries=args.text_queries,
                progress=bar,
                cancel=token,
                **common,
            )

    from engine.jobs import JobCancelled

    stopping = "Stopping after the current step… (built indexes stay cached; Ctrl-C again to abort)"
    with cancel_on_sigint(message=stopping) as token, progress_bar(show_bar) as bar:
        try:
            figures = run(bar, token)
        except JobCancelled:
            print("Cancelled. Indexes built so far are cached; run the same command to go on.", file=sys.stderr)
            return EXIT_CANCELLED
        except ValueError as exc:
            return fail(exc)
    if args.json:
        print(json.dumps(figures, indent=2))
    return EXIT_OK


# -- bench faults -----------------------------------------------------------------------------------------


def register_faults(bench_subparsers: Any) -> dict[str, Handler]:
    """Add ``faults`` to the ``bench`` sub-parsers (an ``add_subparsers`` result); return ``{"faults": handler}``."""
    p = bench_subparsers.add_parser(
        "faults",
        help="kill the indexer, index hostile files, try bad queries; count what was lost (must be 0)",
        description="SIGKILLs `scenefind index` at seeded random points (at least --kills times on one library), "
        "checks the catalog and indexes after each kill, resumes and compares rows, vectors and search results "
        "with an uninterrupted run; then indexes a folder of hostile files (empty, truncated, random bytes, 8K, "
        "variable frame rate, audio only, odd names, symlink loops, no permission, files deleted or replaced "
        "mid-run) and tries bad queries. Uses the weightless fake:color model on generated videos.",
    )
    p.add_argument("--kills", type=int, default=20, help="SIGKILLs of the indexer (default 20)")
    p.add_argument("--seed", type=int, default=0, help="seed of the random kill points (default 0)")
    p.add_argument("--keep", type=Path, metavar="DIR", help="work in DIR and keep it (default: a temp folder)")
    p.add_argument("--json", action="store_true", help="print the figures as JSON")
    return {"faults": cmd_bench_faults}


def cmd_bench_faults(args: argparse.Namespace) -> int:
    """Run the fault benchmark; exit 1 when anything was lost, crashed or not handled."""
    from engine.bench.faults import run_faults_bench
    from engine.jobs import JobCancelled

    if args.kills < 1:
        return fail("--kills must be at least 1")
    show_bar = not (getattr(args, "no_progress", False) or args.json)
    log = _log(show_bar)
    with cancel_on_sigint(message="Stopping… (Ctrl-C again to abort)") as token, progress_bar(show_bar) as bar:
        try:
            figures = run_faults_bench(
                kills=args.kills,
                seed=args.seed,
                work=args.keep,
                log=None if args.json else log,
                progress=bar,
                cancel=token,
            )
        except JobCancelled:
            print("Cancelled.", file=sys.stderr)
            return EXIT_CANCELLED
    if args.json:
        print(json.dumps(figures, indent=2, default=str))
    kills, hostile, queries = figures["kills"], figures["hostile"], figures["queries"]
    clean = kills["ok"] and hostile["handled"] == hostile["cases"] and not hostile["crashed_runs"]
    return EXIT_OK if clean and not queries["crashed"] else EXIT_FAILED


# -- bench train ------------------------------------------------------------------------------------------


def register_train(bench_subparsers: Any) -> dict[str, Handler]:
    """Add ``train`` to the ``bench`` sub-parsers; returns ``{"train": handler}`` (key it under ``bench``)."""
    p = bench_subparsers.add_parser(
        "train",
        help="synthetic compositional benchmark of the training objectives (CPU, minutes)",
        description="Train a tiny video-text model from scratch on synthetic clips of moving shapes with each "
        "objective and print R@1/5/10 and compositional accuracy per negative type, averaged over seeds.",
    )
    p.add_argument("--seeds", default="0,1", help="comma-separated seeds (default 0,1)")
    p.add_argument("--variants", default=None, help="objectives to run, comma-separated (default all six)")
    p.add_argument("--epochs", type=int, default=None, help="epochs per run (default: the benchmark's)")
    p.add_argument("--threads", type=int, default=1, help="torch CPU threads per run (default 1; 0 = torch's default)")
    p.add_argument(
        "--workers",
        type=int,
        default=None,
        help="runs trained at once in separate processes (default: CPU cores / threads, at most 12)",
    )
    p.add_argument("--out", type=Path, default=None, help="keep the runs' checkpoints here")
    p.add_argument("--json", action="store_true", help="print the figures as JSON")
    return {"train": cmd_bench_train}


def cmd_bench_train(args: argparse.Namespace) -> int:
    import torch

    from engine.bench.train_bench import run_train_bench
    from engine.jobs import JobCancelled

    try:
        seeds = tuple(int(s) for s in args.seeds.split(",") if s.strip())
    except ValueError:
        return fail(f"--seeds {args.seeds!r}: write integers separated by commas, e.g. 0,1")
    if args.threads < 0 or (args.workers is not None and args.workers < 1):
        return fail("--threads must be ≥ 0 and --workers ≥ 1")
    if args.threads:
        torch.set_num_threads(args.threads)
    workers = args.workers or max(1, min(12, (os.cpu_count() or 1) // max(1, args.threads or torch.get_num_threads())))
    variants = [v.strip() for v in args.variants.split(",")] if args.variants else None
    extra = {"epochs": args.epochs} if args.epochs else {}
    log = (lambda line: print(line, file=sys.stderr)) if args.json else print
    started = time.perf_counter()
    with cancel_on_sigint(message="Stopping after the current step… (Ctrl-C again to abort)") as cancel:
        try:
            figures = run_train_bench(
                seeds,
                log,
                variants=variants,
                out=args.out,
                workers=workers,
                threads=args.threads,
                cancel=cancel,
                **extra,
            )
        except JobCancelled:
            return EXIT_CANCELLED
        except ValueError as exc:
            return fail(exc)
    figures["wall_s"] = time.perf_counter() - started
    if args.json:
        print(json.dumps({k: v for k, v in figures.items() if k != "table"}, indent=2, default=str))
    return EXIT_OK


# -- bench decode -----------------------------------------------------------------------------------------


def register_decode(bench_subparsers: Any) -> dict[str, Handler]:
    """Add ``decode`` to the ``bench`` sub-parsers; return ``{"decode": handler}``."""
    from engine.bench.decode_bench import CORPUS

    p = bench_subparsers.add_parser(
        "decode",
        help="indexing speed on phone/camera-like files against ffmpeg's every-frame and keyframe-only limits",
        description="Generates (once, cached) a corpus with ffmpeg: "
        + "; ".join(c.label for c in CORPUS)
        + ". For each file, in one run: ffmpeg decoding every frame and keyframes only (-skip_frame nokey), "
        "Scenefind indexing it with fake:color and with random:ViT-B-32, as x real time, and the index's bytes per "
        "hour of video; then the issue's goals, and the peak memory of indexing the 4K 10-bit file.",
    )
    p.add_argument("--seconds", type=float, default=8.0, help="length of each generated file (default 8)")
    p.add_argument("--long-minutes", type=float, default=2.0, help="length of the long 720p file (default 2)")
    p.add_argument("--only", help="comma-separated corpus keys: " + ", ".join(c.key for c in CORPUS))
    p.add_argument("--repeat", type=count, default=2, help="runs of the fast measurements, best kept (default 2)")
    p.add_argument("--no-vit", action="store_true", help="skip the random:ViT-B-32 runs")
    p.add_argument("--no-rss", action="store_true", help="skip the peak-memory measurement")
    p.add_argument("--json", action="store_true", help="print the figures as JSON")
    return {"decode": cmd_bench_decode}


def cmd_bench_decode(args: argparse.Namespace) -> int:
    from engine.bench.decode_bench import run_decode_bench

    figures = run_decode_bench(
        seconds=args.seconds,
        long_minutes=args.long_minutes,
        only=[k.strip() for k in args.only.split(",")] if args.only else None,
        vit=not args.no_vit,
        repeat=args.repeat,
        rss=not args.no_rss,
        log=None if args.json else _log(False),
    )
    if args.json:
        print(json.dumps(figures, indent=2))
    return EXIT_OK
