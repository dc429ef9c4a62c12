"""``scenefind bench cli``: the quick commands (``status``, a no-op ``index``, ``search`` cold and repeated)
timed as whole processes (``engine.bench.cli_bench``)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from engine.cli import EXIT_CANCELLED, EXIT_OK, Handler
from engine.cli.support import cancel_on_sigint, count, progress_bar


def register_cli(bench_subparsers: Any) -> dict[str, Handler]:
    """Add ``cli`` to the ``bench`` sub-parsers; return ``{"cli": handler}``."""
    p = bench_subparsers.add_parser(
        "cli",
        help="whole-command times: status, an index with nothing to do, search cold and repeated (ViT-B-32)",
        description="Times `python -m engine.cli ...` as fresh processes (median of --runs): status and a no-op "
        "index on a library of --videos small videos (beside the scan alone), and search with the ViT-B-32 "
        "architecture (random weights in a checkpoint folder written once into the cache), cold (a new text) "
        "and repeated (the same text: its vector comes from the query vector cache).",
    )
    p.add_argument("--videos", type=count, default=1000, help="videos in the library for status/index (default 1000)")
    p.add_argument("--runs", type=count, default=5, help="runs per command; the median is reported (default 5)")
    p.add_argument("--arch", default="ViT-B-32", help="open_clip architecture searched with (default ViT-B-32)")
    p.add_argument("--keep", type=Path, metavar="DIR", help="work in DIR and keep it (default: a temp folder)")
    p.add_argument("--json", action="store_true", help="print the figures as JSON")
    return {"cli": cmd_bench_cli}


def cmd_bench_cli(args: argparse.Namespace) -> int:
    from engine.bench.cli_bench import run_cli_bench
    from engine.jobs import JobCancelled

    show_bar = not (args.no_progress or args.json)
    with cancel_on_sigint(message="Stopping… (Ctrl-C again to abort)") as token, progress_bar(show_bar) as bar:
        try:
            figures = run_cli_bench(
                videos=args.videos,
                runs=args.runs,
                arch=args.arch,
                work=args.keep,
                log=None,
                progress=bar,
                cancel=token,
            )
        except JobCancelled:
            print("Cancelled.", file=sys.stderr)
            return EXIT_CANCELLED
    from engine.bench.cli_bench import table

    print(json.dumps(figures, indent=2) if args.json else "\n".join(table(figures)))
    return EXIT_OK
