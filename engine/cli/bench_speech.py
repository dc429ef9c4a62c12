"""``scenefind bench speech``: espeak-ng videos and captions at known times through the speech and text stages
with the real models, scored against their ground truth (``engine.bench.speech_bench``)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from engine.cli import EXIT_CANCELLED, EXIT_FAILED, EXIT_OK, Handler
from engine.cli.bench import _log
from engine.cli.support import cancel_on_sigint, count, fail, progress_bar


def register_speech(bench_subparsers: Any) -> dict[str, Handler]:
    """Add ``speech`` to the ``bench`` sub-parsers; return ``{"speech": handler}``."""
    p = bench_subparsers.add_parser(
        "speech",
        help="speech and on-screen text: WER, moment recall, OCR recall, x real time, FTS latency, with goals",
        description="Writes videos with espeak-ng speech at known times (clean, white noise at 10 dB, music at "
        "0 dB) and captions at known sizes, runs the speech and text stages on them with the real models, and "
        "reports WER, moment R@1 and R1@0.5 (exact phrases, rare words, paraphrases), OCR line recall by text "
        "height, x real time per stage, FTS query latency over synthetic transcript rows (built once and "
        "cached in the user cache), and the fused ranking of picture and words, rule against rule, on mixed "
        "spoken and visual queries. Needs espeak-ng and ffmpeg. Exits 1 when a goal fails.",
    )
    p.add_argument("--videos", type=count, default=6, help="videos per condition, 30 s and 3 sentences each (6)")
    p.add_argument("--fts-hours", type=float, default=10_000, help="hours of synthetic transcript (10000)")
    p.add_argument("--real-clips", type=Path, default=None, help="also transcribe these real clips (a folder)")
    p.add_argument("--keep", type=Path, metavar="DIR", help="write the videos and libraries here and keep them")
    p.add_argument("--json", action="store_true", help="print the figures as JSON")
    return {"speech": cmd_bench_speech}


def cmd_bench_speech(args: argparse.Namespace) -> int:
    """Run the speech benchmark (default speech model: the bundled tiny.en of the test extras)."""
    from engine.bench.speech_bench import run_speech_bench
    from engine.bench.speech_media import tools_missing
    from engine.jobs import JobCancelled

    missing = tools_missing()
    if missing:
        return fail(f"bench speech needs {' and '.join(missing)} (Debian: apt-get install {' '.join(missing)})")
    if args.fts_hours < 1:
        return fail("--fts-hours must be at least 1")
    clips = args.real_clips
    if clips is None:
        shared = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "videos"
        clips = shared if shared.is_dir() else None
    show_bar = not (getattr(args, "no_progress", False) or args.json)
    log = _log(show_bar)
    with cancel_on_sigint(message="Stopping… (Ctrl-C again to abort)") as token, progress_bar(show_bar) as bar:
        try:
            figures = run_speech_bench(
                getattr(args, "speech_model", None),
                videos=args.videos,
                fts_hours=args.fts_hours,
                real_clips=clips,
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
    return EXIT_OK if all(g["pass"] for g in figures["goals"]) else EXIT_FAILED
