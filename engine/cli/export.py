"""``scenefind export-clip``, ``export-markers`` and ``transcript``: the desktop app's exports, from a terminal.

``register(subparsers)`` adds both subcommands to the ``scenefind`` parser and returns their handlers, so
``engine.cli`` wires them like its own commands. Markers come from a JSON list of moments (what
``scenefind search --json`` prints, or a file; ``-`` reads standard input) and/or ``--moment`` arguments.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from engine.cli import EXIT_CANCELLED, EXIT_ERROR, EXIT_OK, Handler


def register(subparsers: Any) -> dict[str, Handler]:
    """Add ``export-clip`` and ``export-markers`` to ``subparsers``; returns ``{command: handler}``."""
    c = subparsers.add_parser("export-clip", help="write a moment of a video as its own .mp4 clip")
    c.add_argument("video", type=Path, metavar="VIDEO")
    c.add_argument("--start", type=float, required=True, help="start, in seconds")
    c.add_argument("--end", type=float, required=True, help="end, in seconds")
    c.add_argument("--out", type=Path, required=True, help="output .mp4 file, or a folder for a generated name")
    c.add_argument("--no-ffmpeg", action="store_true", help="re-encode with OpenCV (no sound) even if ffmpeg exists")
    m = subparsers.add_parser("export-markers", help="write moments as an EDL or FCPXML marker file for editors")
    m.add_argument(
        "moments", nargs="?", help="JSON list of moments ({video, start, end, ...}) as a file, or - for stdin"
    )
    m.add_argument(
        "--moment",
        action="append",
        default=[],
        metavar="VIDEO:START:END",
        help="a moment to mark (repeatable)",
    )
    m.add_argument("--out", type=Path, required=True, help="output file (.edl or .fcpxml)")
    m.add_argument("--format", choices=("edl", "fcpxml"), help="default: from the --out suffix")
    m.add_argument("--fps", type=int, default=25, help="timeline frame rate (default 25)")
    m.add_argument("--title", default="Scenefind moments")
    t = subparsers.add_parser("transcript", help="write what is said in a video as subtitles or text")
    t.add_argument("video", type=Path, metavar="VIDEO")
    kind = t.add_mutually_exclusive_group()
    for fmt, what in (("srt", "SubRip subtitles"), ("vtt", "WebVTT subtitles"), ("txt", "plain text with times")):
        kind.add_argument(f"--{fmt}", dest="format", action="store_const", const=fmt, help=what)
    t.add_argument("--out", type=Path, help="write to this file (default: standard output)")
    return {"export-clip": cmd_export_clip, "export-markers": cmd_export_markers, "transcript": cmd_transcript}


def cmd_transcript(args: argparse.Namespace) -> int:
    """``scenefind transcript VIDEO --srt|--vtt|--txt [--out FILE]`` (the format follows ``--out``'s suffix
    when no flag is given, else SRT)."""
    from engine.cli.support import open_library
    from engine.speech.stored import TranscriptUnavailable, export_transcript

    fmt = args.format or (args.out.suffix.lower().lstrip(".") if args.out else "srt")
    if fmt not in ("srt", "vtt", "txt"):
        print(f"scenefind: error: {args.out}: say --srt, --vtt or --txt for this file name", file=sys.stderr)
        return EXIT_ERROR
    with open_library(args) as lib:
        try:
            text = export_transcript(lib.catalog, args.video, fmt, args.out)
        except TranscriptUnavailable as exc:
            print(f"scenefind: error: {exc}", file=sys.stderr)
            return EXIT_ERROR
    if args.out is None:
        sys.stdout.write(text)
    else:
        print(args.out)
    return EXIT_OK


def cmd_export_clip(args: argparse.Namespace) -> int:
    from engine.jobs import CancelToken, JobCancelled
    from engine.media.decode import MediaError
    from engine.media.export import ExportError, export_clip

    cancel = CancelToken()
    try:
        out = export_clip(args.video, args.start, args.end, args.out, use_ffmpeg=False if args.no_ffmpeg else None,
                          cancel=cancel)  # fmt: skip
    except (ExportError, MediaError, OSError) as exc:
        print(f"scenefind: error: {exc}", file=sys.stderr)
        return EXIT_ERROR
    except (JobCancelled, KeyboardInterrupt):
        print("scenefind: cancelled; no clip was written", file=sys.stderr)
        return EXIT_CANCELLED
    print(out)
    return EXIT_OK


def cmd_export_markers(args: argparse.Namespace) -> int:
    from engine.export.markers import MarkerError, markers_from, write_markers

    try:
        items: list[Any] = []
        if args.moments:
            text = sys.stdin.read() if args.moments == "-" else Path(args.moments).read_text(encoding="utf-8")
            data = json.loads(text)
            items.extend(data.get("moments", data.get("videos", [])) if isinstance(data, dict) else data)
        items.extend(_parse_moment(spec) for spec in args.moment)
        out = write_markers(markers_from(items), args.out, args.format, title=args.title, fps=args.fps)
    except json.JSONDecodeError as exc:
        print(f"scenefind: error: {args.moments}: not a JSON list of moments ({exc})", file=sys.stderr)
        return EXIT_ERROR
    except (MarkerError, OSError) as exc:
        print(f"scenefind: error: {exc}", file=sys.stderr)
        return EXIT_ERROR
    print(out)
    return EXIT_OK


def _parse_moment(spec: str) -> dict[str, Any]:
    """``VIDEO:START:END`` (the video may itself contain colons: the last two fields are the times)."""
    from engine.export.markers import MarkerError

    video, _, rest = spec.rpartition(":")
    video, _, start = video.rpartition(":")
    try:
        return {"video": str(Path(video).expanduser().absolute()), "start": float(start), "end": float(rest)}
    except ValueError as exc:
        raise MarkerError(f"--moment {spec!r}: write VIDEO:START:END with times in seconds") from exc
