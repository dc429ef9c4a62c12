"""``scenefind bench quality``: train ``scratch:tiny`` on a synthetic world, index a library of its held-out clips
and their twins, and search it as a user does (``engine.bench.quality_bench``)."""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

from engine.cli import EXIT_CANCELLED, EXIT_OK, Handler
from engine.cli.bench import _log
from engine.cli.support import cancel_on_sigint, count, fail, jsonable, progress_bar


def _seeds(text: str) -> tuple[int, ...]:
    try:
        seeds = tuple(int(s) for s in text.split(",") if s.strip())
    except ValueError:
        seeds = ()
    if not seeds:
        raise argparse.ArgumentTypeError(f"{text!r}: write integers separated by commas, e.g. 0,1")
    return seeds


def register_quality(bench_subparsers: Any) -> dict[str, Handler]:
    """Add ``quality`` to the ``bench`` sub-parsers; returns ``{"quality": handler}``."""
    from engine.bench.quality_bench import DEFAULT_MODEL, DEFAULT_WINDOWS, QUICK_WINDOWS, WINDOWS

    p = bench_subparsers.add_parser(
        "quality",
        help="end-to-end search quality of a trained model: train, index, search a synthetic library (CPU, minutes)",
        description="Write a synthetic world as video files, train scratch:tiny on it with `scenefind train` "
        "(InfoNCE and component negatives from `scenefind negatives --no-llm`), index a library of held-out clips, "
        "their time-reversed and colour-swapped twins and long videos with `scenefind index` (through the temporal "
        "head and with mean pooling), ask every query with `scenefind search --batch`, and print video R@1/R@5, "
        "twin-pair accuracy, moment R1@0.5/R1@0.7/mAP and the goals. --model picks another trainable model.",
    )
    p.add_argument("--seeds", type=_seeds, default=(0,), help="comma-separated seeds (default 0)")
    p.add_argument(
        "--windows",
        type=lambda text: tuple(w.strip() for w in text.split(",") if w.strip()),
        default=None,
        help=f"head window settings measured, the first being the goals' head row, from {','.join(WINDOWS)} "
        f"(default {','.join(DEFAULT_WINDOWS)}; {','.join(QUICK_WINDOWS)} with --quick)",
    )
    p.add_argument("--epochs", type=count, default=None, help="epochs per training (default 16, bench train's)")
    p.add_argument("--workers", type=count, default=None, help="commands run at once (default: CPU cores, at most 4)")
    p.add_argument(
        "--time-reversal",
        type=float,
        default=None,
        metavar="W",
        help="weight of the reversed-clip term in both trainings (default 0: losses.md alone, as `train` does)",
    )
    p.add_argument("--quick", action="store_true", help="a tiny world and one epoch: checks the plumbing, not quality")
    p.add_argument("--keep", type=Path, metavar="DIR", help="work in DIR and keep it (default: a temporary folder)")
    p.add_argument("--json", action="store_true", help="print the figures as JSON")
    p.set_defaults(default_model=DEFAULT_MODEL)
    return {"quality": cmd_bench_quality}


def cmd_bench_quality(args: argparse.Namespace) -> int:
    """Run the quality benchmark with a progress bar; print the table and goals (or JSON). Exit 0 whether or not
    the goals pass: they are findings, not errors."""
    from dataclasses import replace

    from engine.bench.commands import CommandFailed
    from engine.bench.quality_bench import QUICK_SPEC, QUICK_WINDOWS, QualitySetup, run_quality_bench
    from engine.jobs import JobCancelled

    setup = QualitySetup(model=getattr(args, "model", None) or args.default_model)
    if args.quick:
        setup = replace(setup, spec=QUICK_SPEC, epochs=1, batch_size=16, workers=1, windows=QUICK_WINDOWS)
    else:
        setup = replace(setup, workers=min(4, os.cpu_count() or 1))
    if args.windows is not None:
        setup = replace(setup, windows=args.windows)
    if args.epochs:
        setup = replace(setup, epochs=args.epochs)
    if args.workers:
        setup = replace(setup, workers=args.workers)
    if args.time_reversal is not None:
        if args.time_reversal < 0:
            return fail(ValueError(f"--time-reversal must be at least 0, got {args.time_reversal:g}"))
        setup = replace(setup, time_reversal=args.time_reversal)
    show_bar = not (getattr(args, "no_progress", False) or args.json)
    log = (lambda line: print(line, file=sys.stderr)) if args.json else _log(show_bar)
    started = time.perf_counter()
    stopping = "Stopping: the running commands save their work… (Ctrl-C again to abort)"
    with cancel_on_sigint(message=stopping) as token, progress_bar(show_bar) as bar:
        try:
            figures = run_quality_bench(args.seeds, log, setup=setup, work=args.keep, progress=bar, cancel=token)
        except (JobCancelled, KeyboardInterrupt):
            print("Cancelled." + (f" The work so far is in {args.keep}." if args.keep else ""), file=sys.stderr)
            return EXIT_CANCELLED
        except (CommandFailed, ValueError, RuntimeError) as exc:
            return fail(exc)
    figures["wall_s"] = time.perf_counter() - started
    if args.json:
        print(json.dumps(jsonable({k: v for k, v in figures.items() if k != "table"}), indent=2, default=str))
    return EXIT_OK
