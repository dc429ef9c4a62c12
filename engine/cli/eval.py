"""``scenefind eval`` and ``scenefind eval-moments``: benchmark numbers from a terminal.

``eval`` indexes a folder of a dataset's videos and scores every query of its official annotation file
(``engine.evaluation.run``). ``eval-moments`` scores a QVHighlights submission file against ground truth
exactly as the official ``standalone_eval/eval.py`` does and prints its brief metrics, so numbers from any
model (ours or a published one's predictions) can be compared on one scale.

Both follow ``engine.cli``'s exit codes: 0 success, 2 unreadable input or fatal error, 130 cancelled.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from engine.cli import EXIT_CANCELLED, EXIT_OK, Handler
from engine.cli.support import cancel_on_sigint, fail, jsonable, progress_bar

DATASETS = ("msrvtt", "msvd", "didemo", "qvhighlights", "charades_sta", "activitynet")


def register(subparsers: Any) -> dict[str, Handler]:
    """Add ``eval`` and ``eval-moments`` to the ``scenefind`` sub-command parsers; returns their handlers."""
    e = subparsers.add_parser(
        "eval",
        help="index a benchmark's videos and report its official metrics",
        description="Index the videos of a benchmark (in a temporary library unless --home is given) with "
        "--model, run every query of the annotation file through search, and print the metrics.",
    )
    e.add_argument("--annotations", type=Path, required=True, metavar="FILE", help="official annotation file")
    e.add_argument("--videos", type=Path, required=True, metavar="DIR", help="folder holding the dataset's videos")
    e.add_argument(
        "--emcl",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="EMCL re-ranking on (--emcl) or off (--no-emcl); default: the library's setting",
    )
    e.add_argument(
        "--dataset", choices=DATASETS, help="dataset of the annotation file (default: guessed from its name)"
    )
    e.add_argument("--limit", type=int, metavar="N", help="evaluate only the first N queries whose video is present")
    e.add_argument("--moments-k", type=int, default=100, metavar="K", help="moments asked per query (default 100)")
    e.add_argument("--json", action="store_true", help="print the report as JSON")

    m = subparsers.add_parser(
        "eval-moments",
        help="score a QVHighlights prediction file with the official metrics",
        description="Score a QVHighlights submission (qid, query, vid, pred_relevant_windows, "
        "pred_saliency_scores) against ground truth exactly as moment_detr's standalone_eval does.",
    )
    m.add_argument("--pred", type=Path, required=True, metavar="PRED.jsonl", help="submission file")
    m.add_argument("--gt", type=Path, required=True, metavar="GT.jsonl", help="ground-truth annotation file")
    m.add_argument("--json", action="store_true", help="print the brief metrics as one JSON object")
    m.add_argument("--full", action="store_true", help="print every metric (all IoU thresholds and length buckets)")
    m.add_argument(
        "--partial", action="store_true", help="score only the qids both files share (default: they must match)"
    )
    return {"eval": cmd_eval, "eval-moments": cmd_eval_moments}


def cmd_eval_moments(args: argparse.Namespace) -> int:
    from engine.datasets import AnnotationError, load_predictions, load_qvhighlights
    from engine.evaluation.moments import eval_submission

    try:
        predictions = load_predictions(args.pred)
        ground_truth = load_qvhighlights(args.gt)
        results = eval_submission(predictions, ground_truth, match_number=not args.partial)
    except (AnnotationError, ValueError, OSError) as exc:
        return fail(exc)
    shown = results if args.full else results["brief"]
    if args.json:
        print(json.dumps(jsonable(shown), indent=None if not args.full else 2))
        return EXIT_OK
    for key, value in results["brief"].items():
        print(f"{key:<24}{value:>8.2f}")
    if args.full:
        print(json.dumps(jsonable({k: v for k, v in results.items() if k != "brief"}), indent=2))
    return EXIT_OK


def cmd_eval(args: argparse.Namespace) -> int:
    from engine.datasets import AnnotationError, guess_dataset
    from engine.evaluation.run import evaluate
    from engine.jobs import JobCancelled

    dataset = args.dataset or guess_dataset(args.annotations)
    if dataset is None:
        return fail(f"{args.annotations}: cannot tell the dataset from the file name; pass --dataset")
    try:
        with (
            progress_bar(not getattr(args, "no_progress", False)) as bar,
            cancel_on_sigint(message="Stopping… (Ctrl-C again to abort)") as token,
        ):
            result = evaluate(
                dataset,
                args.annotations,
                args.videos,
                model=getattr(args, "model", None),
                home=getattr(args, "home", None),
                limit=args.limit,
                moments_k=args.moments_k,
                emcl=args.emcl,
                progress=bar,
                cancel=token,
            )
    except (AnnotationError, ValueError) as exc:
        return fail(exc)
    except (JobCancelled, KeyboardInterrupt):
        print("Cancelled. What was indexed into --home is kept; run again to resume.", file=sys.stderr)
        return EXIT_CANCELLED
    if args.json:
        print(json.dumps(jsonable(result.to_json()), indent=2))
    else:
        print(result.table())
    return EXIT_OK
