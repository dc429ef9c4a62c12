"""``scenefind bench search``: its arguments and handler, kept out of ``engine/cli.py`` so the CLI stays small.

``register`` adds the sub-command to the ``bench`` sub-parsers and returns the handler by name; nothing heavy
is imported until the command runs, so ``scenefind --help`` stays fast.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from typing import Any

EXIT_OK, EXIT_ERROR, EXIT_CANCELLED = 0, 2, 130  # as engine.cli
_SUFFIXES = {"k": 1_000, "m": 1_000_000}


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


def register(bench_subparsers: Any) -> dict[str, Callable[[argparse.Namespace], int]]:
    """Add ``search`` to the ``bench`` sub-parsers (an ``add_subparsers`` result); return ``{"search": handler}``."""
    from engine.bench.search_bench import CANDIDATES, KINDS

    p = bench_subparsers.add_parser(
        "search",
        help="text-query latency and ANN recall at 10k, 100k and 1M frame vectors",
        description="Text encoding latency (the --model encoder, default random:ViT-B-32) and frame-index "
        "ANN + float16 re-scoring latency and recall@10 against exact search, on synthetic vectors. Built "
        "indexes are cached in the user cache (bench/search), so a second run is quick.",
    )
    p.add_argument("--sizes", type=parse_sizes, default=(10_000, 100_000, 1_000_000), help="default 10k,100k,1M")
    p.add_argument("--dim", type=int, default=512, help="vector width (default 512)")
    p.add_argument("--queries", type=int, default=200, help="ANN queries per index (default 200)")
    p.add_argument(
        "--kinds",
        type=lambda text: tuple(part.strip() for part in text.split(",")),
        default=KINDS,
        help=f"synthetic vector kinds (default {','.join(KINDS)})",
    )
    p.add_argument(
        "--candidates", type=int, default=CANDIDATES, help=f"ANN candidates re-scored (default {CANDIDATES})"
    )
    p.add_argument("--text-queries", type=int, default=50, help="text queries encoded one at a time (0 skips)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--json", action="store_true", help="print the figures as JSON")
    return {"search": cmd_bench_search}


def cmd_bench_search(args: argparse.Namespace) -> int:
    """Run the search benchmark with a progress bar (unless ``--no-progress``); print a table or JSON."""
    from engine.bench.search_bench import run_search_bench
    from engine.cli_support import cancel_on_sigint, progress_bar
    from engine.jobs import JobCancelled

    show_bar = not getattr(args, "no_progress", False)

    def log(message: str) -> None:
        if show_bar:
            from tqdm import tqdm

            tqdm.write(message, file=sys.stdout)  # above the bar, which stays at the bottom
        else:
            print(message, flush=True)

    stopping = "Stopping after the current step… (built indexes stay cached; Ctrl-C again to abort)"
    with cancel_on_sigint(message=stopping) as token, progress_bar(show_bar) as bar:
        try:
            figures = run_search_bench(
                getattr(args, "model", None),
                sizes=args.sizes,
                dim=args.dim,
                queries=args.queries,
                kinds=args.kinds,
                candidates=args.candidates,
                text_queries=args.text_queries,
                seed=args.seed,
                log=None if args.json else log,
                progress=bar,
                cancel=token,
            )
        except JobCancelled:
            print("Cancelled. Indexes built so far are cached; run the same command to go on.", file=sys.stderr)
            return EXIT_CANCELLED
        except ValueError as exc:
            print(f"scenefind: error: {exc}", file=sys.stderr)
            return EXIT_ERROR
    if args.json:
        print(json.dumps(figures, indent=2))
    return EXIT_OK
