"""``scenefind search``: every query type and filter of the engine, from a terminal."""

from __future__ import annotations

import argparse
import json
from datetime import datetime
from pathlib import Path
from typing import Any

from engine.cli import Handler
from engine.cli.support import open_library, safe
from engine.search.query import MomentRef, Query, QueryChannel, SearchFilters


def _span(text: str) -> tuple[float, float]:
    """ "12-20" or "12.5:20" -> (12.0, 20.0) seconds."""
    for sep in ("-", ":"):
        if sep in text:
            a, _, b = text.partition(sep)
            try:
                start, end = float(a), float(b)
            except ValueError:
                break
            if 0 <= start < end:
                return start, end
    raise argparse.ArgumentTypeError(f"{text!r} is not a span like 12-20 (seconds, start before end)")


def _date(text: str) -> float:
    try:
        return datetime.fromisoformat(text).timestamp()
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"{text!r} is not a date like 2024-05-31") from exc


def register(sub: Any) -> dict[str, Handler]:
    """Add ``search`` to the ``scenefind`` sub-parsers; return ``{"search": handler}``."""
    s = sub.add_parser("search", help="find videos or moments matching a description, an image or a clip")
    s.add_argument("text", nargs="?", metavar="TEXT", help="what to look for, in words")
    words = s.add_argument_group("only what is said or shown (instead of TEXT, which searches all three)")
    words.add_argument("--said", metavar="TEXT", help="words said in the video (its transcript)")
    words.add_argument("--shows", metavar="TEXT", help="words shown on screen (slides, signs, titles)")
    what = s.add_argument_group("query by example (instead of TEXT)")
    what.add_argument("--image", type=Path, help="an image file")
    what.add_argument("--clip", type=Path, help="a video file (see --span)")
    what.add_argument("--span", type=_span, help="part of --clip or --like to use, e.g. 12-20 (seconds)")
    what.add_argument("--like", type=Path, metavar="VIDEO", help="an indexed video: find more like it (see --span)")
    s.add_argument("--moments", action="store_true", help="return moments (start, end) rather than videos")
    s.add_argument(
        "--exclude",
        action="append",
        default=[],
        metavar="TERM",
        help="drop hits where TERM is seen, said or shown (only said with --said, only shown with --shows)",
    )
    f = s.add_argument_group("filters")
    f.add_argument("--folder", action="append", default=[], type=Path, help="only videos under this folder")
    f.add_argument("--after", type=_date, help="files modified on or after this date (YYYY-MM-DD)")
    f.add_argument("--before", type=_date, help="files modified before this date")
    f.add_argument("--min-duration", type=float, metavar="S")
    f.add_argument("--max-duration", type=float, metavar="S")
    f.add_argument("--min-height", type=int, metavar="PX", help="e.g. 720 for HD and above")
    f.add_argument("--max-height", type=int, metavar="PX")
    s.add_argument("--min-relevance", type=float, metavar="N", help="hide hits below N (0-100)")
    s.add_argument("--all", action="store_true", help="show every hit, whatever its relevance")
    s.add_argument("-k", type=int, default=10, help="number of results (default 10)")
    s.add_argument("--json", action="store_true", help="print JSON")
    s.add_argument(
        "--word-scores",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="with a run trained with component negatives: score text also word by word against frames, as it was "
        "trained (--word-scores), or by the pooled vectors alone (--no-word-scores); default: the library's setting",
    )
    s.add_argument(
        "--batch",
        metavar="FILE",
        help="answer one query per line of FILE (- for stdin): plain text, or JSON objects with per-query options "
        "(text or said or shows, moments, k, exclude, filters, id); one JSON line out per query, the model loaded once",
    )
    return {"search": cmd_search}


def build_query(args: argparse.Namespace, library: Any) -> Query:
    """The ``Query`` the arguments describe; ``ValueError`` saying what to change. An empty or blank TEXT is
    refused here, with the same words whatever the blanks, before any model is loaded."""
    given = [n for n in ("text", "said", "shows", "image", "clip", "like") if getattr(args, n, None) is not None]
    if len(given) != 1:
        raise ValueError("give exactly one of TEXT, --said, --shows, --image, --clip or --like")
    said, shows = getattr(args, "said", None), getattr(args, "shows", None)
    text = args.text if args.text is not None else said if said is not None else shows
    channel: QueryChannel | None = "speech" if said is not None else "text" if shows is not None else None
    if text is not None:
        from engine.search.query_vectors import clean_text

        clean_text(text)
    moment = None
    if args.like:
        row = library.catalog.video_by_path(args.like.expanduser().resolve())
        if row is None:
            raise ValueError(f"{args.like}: not in the library (add and index its folder first)")
        start, end = args.span or (0.0, float(row["duration"] or 0.0) or 1e9)
        moment = MomentRef(int(row["id"]), start, end)
    filters = SearchFilters(
        folders=tuple(str(p.expanduser().resolve()) for p in args.folder),
        modified_after=args.after,
        modified_before=args.before,
        min_duration=args.min_duration,
        max_duration=args.max_duration,
        min_height=args.min_height,
        max_height=args.max_height,
    )
    return Query(
        text=text,
        channel=channel,
        image=args.image,
        clip=args.clip,
        clip_span=args.span if args.clip else None,
        moment=moment,
        exclude=tuple(args.exclude),
        filters=filters,
        k=args.k,
        mode="moments" if args.moments else "videos",
        min_relevance=0.0 if args.all else args.min_relevance,
    )


def _clock(seconds: float) -> str:
    minutes, secs = divmod(seconds, 60)
    return f"{int(minutes)}:{secs:04.1f}"


def cmd_search(args: argparse.Namespace) -> int:
    """One search. Start-up is most of a CLI search's time, so the model is built only if a text is not in the
    query vector cache (``engine.search.text_cache``), and then only its text tower for a text query."""
    if getattr(args, "batch", None) is not None:
        from engine.cli.search_batch import cmd_search_batch

        return cmd_search_batch(args)
    from engine.search.searcher import Searcher, SearchError
    from engine.search.text_cache import CachedTexts, TextVectorCache

    with open_library(args) as lib:
        try:
            query = build_query(args, lib)
        except ValueError as exc:
            raise SearchError(str(exc)) from exc
        if query.channel is not None:  # --said / --shows: the catalog alone answers, no model is built
            from engine.search.lexical import LexicalQueryError
            from engine.search.words import search_words

            try:
                results = search_words(lib.catalog, query)
            except LexicalQueryError as exc:
                raise SearchError(str(exc)) from exc
            if (
                not args.json
                and not results.videos
                and not results.moments
                and not lib.catalog.stage_done(query.channel)
            ):
                what = "is transcribed" if query.channel == "speech" else "has had its on-screen text read"
                print(f"No matches: no video {what} yet (`scenefind index` runs that stage; `scenefind status`).")
                return 0
            return _print(results, query, as_json=args.json)
        cache = TextVectorCache()
        searcher = Searcher(lib, CachedTexts(lib.encoder(lazy=True), cache))  # type: ignore[arg-type]
        try:
            results = searcher.search(query)
        finally:
            searcher.close()
            cache.close()
    return _print(results, query, as_json=args.json)


def _print(results: Any, query: Query, *, as_json: bool) -> int:
    """The hits as a table (a channel word and the quote under each hit that has one) or as JSON."""
    hits: list[Any] = results.moments if query.mode == "moments" else results.videos
    if as_json:
        print(json.dumps([h.to_json() for h in hits], indent=2))
        return 0
    if not hits:
        more = (
            f" ({results.hidden_below_cutoff} below the relevance cutoff; --all shows them)"
            if (results.hidden_below_cutoff)
            else ""
        )
        print(f"No matches{more}.")
    for rank, h in enumerate(hits, 1):
        where = f"{_clock(h.start)}-{_clock(h.end)}" if query.mode == "moments" else f"at {_clock(h.best_time)}"
        print(f"{rank:3d}. {h.relevance:5.1f}  {where:>15}  {_CHANNEL_WORD[h.channel]:5}  {safe(h.video)}")
        if h.quote is not None:
            print(f"{'':31}{_quoted(h.quote)}")
    return 0


_CHANNEL_WORD = {"picture": "seen", "speech": "said", "text": "shown"}
QUOTE_CHARS = 100


def _quoted(text: str) -> str:
    """A quote for one terminal line: in quotation marks, cut with an ellipsis past ``QUOTE_CHARS``."""
    text = safe(" ".join(text.split()))
    if len(text) > QUOTE_CHARS:
        text = text[: QUOTE_CHARS - 1].rstrip() + "…"
    return f"“{text}”"
