"""``scenefind negatives DATA``: component negatives and positives for a training set's captions.

DATA is a training file (CSV or JSON lines with video and caption, ``engine.train.data``) or an official
annotation file (any of ``engine.datasets``; captions only, so no videos are needed). The LLM is ``--llm
FILE.gguf``, or the default model downloaded on first use, or none with ``--no-llm`` (rule-based swaps only).
It prints the share of LLM proposals that validated, per component, and writes one JSON line per caption.

Exit codes follow ``engine.cli``: 0 success, 2 unreadable input or fatal error, 130 cancelled.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from engine.cli_support import cancel_on_sigint, progress_bar

EXIT_OK, EXIT_ERROR, EXIT_CANCELLED = 0, 2, 130


def register(subparsers: Any) -> dict[str, Callable[[argparse.Namespace], int]]:
    """Add ``negatives`` to the ``scenefind`` sub-command parsers; returns its handler."""
    n = subparsers.add_parser(
        "negatives",
        help="write LLM-proposed, parse-validated component negatives for a training set's captions",
        description="For every caption of DATA, write negatives that change one component (subject, verb, "
        "object, attribute) or swap two nouns (relation), and paraphrase positives. Results are cached, so "
        "an interrupted run resumes.",
    )
    n.add_argument("data", type=Path, metavar="DATA", help="training CSV/JSONL, or an official annotation file")
    n.add_argument("--llm", type=Path, metavar="GGUF", help="local GGUF model (default: download Qwen2.5-1.5B once)")
    n.add_argument("--no-llm", action="store_true", help="rule-based swaps from the dataset's vocabulary only")
    n.add_argument("--per-component", type=int, default=4, metavar="N", help="negatives per component (default 4)")
    n.add_argument("--positives", type=int, default=1, metavar="N", help="paraphrases per caption (default 1)")
    n.add_argument("--out", type=Path, metavar="FILE", help="output JSONL (default: DATA.negatives.jsonl beside DATA)")
    n.add_argument("--dataset", help="read DATA with this official loader (default: guessed when not a training file)")
    n.add_argument("--limit", type=int, metavar="N", help="only the first N distinct captions")
    n.add_argument("--seed", type=int, default=0, help="seed of sampling and rule-based swaps (default 0)")
    n.add_argument("--json", action="store_true", help="print the summary as JSON")
    return {"negatives": cmd_negatives}


def _error(message: object) -> int:
    print(f"scenefind: error: {message}", file=sys.stderr)
    return EXIT_ERROR


def read_captions(path: Path, dataset: str | None = None) -> list[str]:
    """Distinct captions of a training file, or of an official annotation file, in file order."""
    from engine.datasets import LOADERS, CaptionPair, guess_dataset
    from engine.train.data import TrainingDataError, load_training_data

    if dataset is None:
        try:
            return list(dict.fromkeys(item.caption for item in load_training_data(path)))
        except TrainingDataError:
            dataset = guess_dataset(path)
            if dataset is None:
                raise
    if dataset not in LOADERS:
        raise ValueError(f"unknown dataset {dataset!r}; choose one of {', '.join(LOADERS)}")
    records = LOADERS[dataset](path)
    return list(dict.fromkeys(r.caption if isinstance(r, CaptionPair) else r.query for r in records))


def cmd_negatives(args: argparse.Namespace) -> int:
    from engine.datasets import AnnotationError
    from engine.jobs import JobCancelled
    from engine.train.components import SpacyModelMissing
    from engine.train.llm import LLMError, LocalLLM, default_model_cached
    from engine.train.negatives import generate_negatives, write_negatives

    if args.per_component < 1 or args.positives < 0:
        return _error("--per-component must be at least 1 and --positives at least 0")
    data = args.data.expanduser()
    out = args.out or data.with_name(f"{data.stem}.negatives.jsonl")
    try:
        captions = read_captions(data, args.dataset)
        if args.limit is not None:
            captions = captions[: max(0, args.limit)]
        show = not getattr(args, "no_progress", False)
        with cancel_on_sigint(message="Stopping… finished captions are cached (Ctrl-C again to abort)") as token:
            llm: LocalLLM | None = None
            if args.llm is not None:
                llm = LocalLLM(args.llm)
            elif not args.no_llm:
                with progress_bar(show and not default_model_cached()) as download_bar:
                    llm = LocalLLM.default(progress=download_bar, cancel=token)
            try:
                with progress_bar(show) as bar:
                    result = generate_negatives(
                        captions,
                        llm=llm,
                        per_component=args.per_component,
                        positives=args.positives,
                        seed=args.seed,
                        progress=bar,
                        cancel=token,
                    )
            finally:
                if llm is not None:
                    llm.close()
        write_negatives(result, out)
    except (JobCancelled, KeyboardInterrupt):
        print("Cancelled. Finished captions are cached; run again to resume.", file=sys.stderr)
        return EXIT_CANCELLED
    except (AnnotationError, LLMError, SpacyModelMissing, ValueError, OSError) as exc:
        return _error(exc)
    if args.json:
        print(json.dumps({**result.to_json(), "out": str(out)}, indent=2))
    else:
        print(result.table())
        print(f"wrote {out}")
    return EXIT_OK
