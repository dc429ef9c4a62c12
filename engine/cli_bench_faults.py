"""``scenefind bench faults``: its arguments and handler, kept out of ``engine/cli.py`` so the CLI stays small.

``register_bench`` adds the sub-command to the ``bench`` sub-parsers and returns the handler by name; nothing
heavy is imported until the command runs, so ``scenefind --help`` stays fast.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

EXIT_OK, EXIT_FAILED, EXIT_ERROR, EXIT_CANCELLED = 0, 1, 2, 130


def register(bench_subparsers: Any) -> dict[str, Callable[[argparse.Namespace], int]]:
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
    from engine.cli_support import cancel_on_sigint, progress_bar
    from engine.jobs import JobCancelled

    if args.kills < 1:
        print("scenefind: error: --kills must be at least 1", file=sys.stderr)
        return EXIT_ERROR
    show_bar = not (getattr(args, "no_progress", False) or args.json)

    def log(message: str) -> None:
        if show_bar:
            from tqdm import tqdm

            tqdm.write(message, file=sys.stdout)  # above the bar, which stays at the bottom
        else:
            print(message, flush=True)

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
