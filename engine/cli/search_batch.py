"""``scenefind search --batch FILE``: many queries, one model load, one JSON line per query.

Why: an evaluation script or a power user with a thousand queries must not pay a thousand start-ups (Python,
torch, the model, the indexes). The library, the encoder and the indexes are opened once; each line of FILE
(``-`` for standard input, read as it arrives, so a process can keep the model warm) is one query:

* plain text: the query's words, with the command line's options (``--moments``, ``-k``, ``--exclude``, the
  filters, ``--min-relevance``/``--all``) as they would apply to ``scenefind search TEXT``;
* a JSON object (the line starts with ``{``): per-query options that override the command line's, named like
  the flags: ``text`` (or ``said``/``shows`` for only what is said or shown, ``image``, ``clip``, ``like``, with
  ``span``), ``moments``, ``k``, ``exclude``,
  ``folder``, ``after``, ``before``, ``min_duration``, ``max_duration``, ``min_height``, ``max_height``,
  ``min_relevance``, ``all``, and ``id`` (any JSON value, echoed back so answers can be matched to questions).

Each answer is one JSON line on standard output, in input order and flushed as it is written: ``{"line": N,
"query": {...}, "mode": "videos"|"moments", "hits": [...]}`` where ``hits`` is exactly what ``search --json``
prints for that query, or ``{"line": N, "query": ..., "error": "..."}`` for a line that cannot be answered; the
other lines still are. Blank lines are skipped. Exit code 0 when every query was answered, 1 when some lines
failed, 2 when nothing can be answered (unreadable FILE, nothing indexed), 130 on Ctrl-C.
"""

from __future__ import annotations

import argparse
import difflib
import json
import sys
import time
from collections.abc import Iterable, Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from engine.cli import EXIT_CANCELLED, EXIT_ERROR, EXIT_FAILED, EXIT_OK
from engine.cli.support import fail, open_library, safe

_EXAMPLE_KEYS = ("text", "said", "shows", "image", "clip", "like")  # what to look for: a line naming one replaces TEXT


class BatchLineError(ValueError):
    """One line of a batch cannot be asked; ``str()`` says why (the line number is added by the caller)."""


def _text(key: str, value: Any) -> str:
    if not isinstance(value, str) or not value.strip():
        raise BatchLineError(f"{key!r} must be non-empty text, got {json.dumps(value)}")
    return value


def _path(key: str, value: Any) -> Path:
    return Path(_text(key, value))


def _texts(key: str, value: Any) -> list[str]:
    items = [value] if isinstance(value, str) else value
    if not isinstance(items, list) or not all(isinstance(v, str) and v.strip() for v in items):
        raise BatchLineError(f"{key!r} must be text or a list of texts, got {json.dumps(value)}")
    return list(items)


def _paths(key: str, value: Any) -> list[Path]:
    return [Path(v) for v in _texts(key, value)]


def _flag(key: str, value: Any) -> bool:
    if not isinstance(value, bool):
        raise BatchLineError(f"{key!r} must be true or false, got {json.dumps(value)}")
    return value


def _number(key: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or value != value or abs(value) == float("inf"):
        raise BatchLineError(f"{key!r} must be a number, got {json.dumps(value)}")
    return float(value)


def _whole(key: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise BatchLineError(f"{key!r} must be a whole number, got {json.dumps(value)}")
    return value


def _positive(key: str, value: Any) -> int:
    number = _whole(key, value)
    if number < 1:
        raise BatchLineError(f"{key!r} must be at least 1, got {number}")
    return number


def _span(key: str, value: Any) -> tuple[float, float]:
    from engine.cli.search import _span as parse_span

    if isinstance(value, list) and len(value) == 2:
        start, end = _number(key, value[0]), _number(key, value[1])
        if 0 <= start < end:
            return start, end
    elif isinstance(value, str):
        try:
            return parse_span(value)
        except argparse.ArgumentTypeError as exc:
            raise BatchLineError(f"{key!r}: {exc}") from None
    raise BatchLineError(f'{key!r} must be [start, end] or "start-end" in seconds, got {json.dumps(value)}')


def _date(key: str, value: Any) -> float:
    from engine.cli.search import _date as parse_date

    try:
        return parse_date(_text(key, value))
    except argparse.ArgumentTypeError as exc:
        raise BatchLineError(f"{key!r}: {exc}") from None


# JSON key -> (argparse destination of ``scenefind search``, parser of the JSON value)
_KEYS: dict[str, tuple[str, Any]] = {
    "text": ("text", _text),
    "said": ("said", _text),
    "shows": ("shows", _text),
    "image": ("image", _path),
    "clip": ("clip", _path),
    "like": ("like", _path),
    "span": ("span", _span),
    "moments": ("moments", _flag),
    "k": ("k", _positive),
    "exclude": ("exclude", _texts),
    "folder": ("folder", _paths),
    "after": ("after", _date),
    "before": ("before", _date),
    "min_duration": ("min_duration", _number),
    "max_duration": ("max_duration", _number),
    "min_height": ("min_height", _whole),
    "max_height": ("max_height", _whole),
    "min_relevance": ("min_relevance", _number),
    "all": ("all", _flag),
}
BATCH_KEYS = (*_KEYS, "id")


@dataclass(frozen=True)
class BatchLine:
    """One query line: its number, what it asked (echoed in the answer), and the options to search with."""

    number: int
    echo: dict[str, Any]
    options: argparse.Namespace


def parse_line(number: int, line: str, defaults: argparse.Namespace) -> BatchLine:
    """A line as plain text or a JSON object of per-query options over ``defaults`` (the command line's).

    Raises ``BatchLineError`` for JSON that is not an object, an unknown key, or a value of the wrong type."""
    options = argparse.Namespace(**vars(defaults))
    if not line.lstrip().startswith("{"):
        options.text = line.strip()
        return BatchLine(number, {"text": options.text}, options)
    try:
        raw = json.loads(line)
    except json.JSONDecodeError as exc:
        raise BatchLineError(f"not a JSON object ({exc.msg} at column {exc.colno})") from None
    for key in raw:
        if key not in BATCH_KEYS:
            close = difflib.get_close_matches(key, BATCH_KEYS, n=1)
            hint = f"; did you mean {close[0]!r}?" if close else f"; known keys: {', '.join(BATCH_KEYS)}"
            raise BatchLineError(f"unknown key {key!r}{hint}")
    if any(key in raw for key in _EXAMPLE_KEYS):  # the line says what to look for: the command line's TEXT is off
        for key in _EXAMPLE_KEYS:
            setattr(options, key, None)
    for key, value in raw.items():
        if key != "id":
            dest, parse = _KEYS[key]
            setattr(options, dest, parse(key, value))
    return BatchLine(number, raw, options)


def read_lines(source: IO[bytes]) -> Iterator[tuple[int, str | None, str]]:
    """``(number, text or None, problem)`` per non-blank line, as the lines arrive; text is None when the line
    is not UTF-8, with the problem saying where."""
    for number, data in enumerate(source, 1):
        try:
            text = data.decode("utf-8-sig" if number == 1 else "utf-8")
        except UnicodeDecodeError as exc:
            yield number, None, f"not UTF-8 text (byte {exc.start + 1})"
            continue
        if text.strip():
            yield number, text.rstrip("\r\n"), ""


@dataclass
class BatchSummary:
    answered: int = 0
    failed: int = 0
    seconds: float = 0.0


def run_batch(
    lines: Iterable[tuple[int, str | None, str]],
    defaults: argparse.Namespace,
    library: Any,
    searcher: Any,
    out: IO[str],
) -> BatchSummary:
    """Answer each line with ``searcher`` and write one JSON line per query to ``out``; bad lines are answered
    with their error and the rest go on."""
    from engine.cli.search import build_query
    from engine.search.searcher import SearchError

    summary, started = BatchSummary(), time.perf_counter()
    for number, text, problem in lines:
        answer: dict[str, Any] = {"line": number}
        try:
            if text is None:
                raise BatchLineError(problem)
            answer["query"] = text
            parsed = parse_line(number, text, defaults)
            answer["query"] = parsed.echo
            try:
                query = build_query(parsed.options, library)
            except ValueError as exc:
                raise BatchLineError(str(exc)) from None
            results = searcher.search(query)
        except (BatchLineError, SearchError) as exc:
            answer["error"] = f"line {number}: {exc}"
            summary.failed += 1
        else:
            hits = results.moments if query.mode == "moments" else results.videos
            answer.update(
                mode=query.mode,
                hits=[h.to_json() for h in hits],
                hidden_below_cutoff=results.hidden_below_cutoff,
            )
            summary.answered += 1
        out.write(json.dumps(answer) + "\n")
        out.flush()
    summary.seconds = time.perf_counter() - started
    return summary


def cmd_search_batch(args: argparse.Namespace) -> int:
    """The ``--batch`` form of ``scenefind search`` (see the module docstring)."""
    from engine.search.searcher import Searcher

    flags = {"text": "TEXT", "said": "--said", "shows": "--shows", "image": "--image", "clip": "--clip"}
    flags["like"] = "--like"
    given = [flag for name, flag in flags.items() if getattr(args, name)]
    if given:
        return fail(f"--batch reads its queries from the file; leave out {' and '.join(given)}")
    source_name = "standard input" if args.batch == "-" else args.batch
    with ExitStack() as stack:
        try:
            source = sys.stdin.buffer if args.batch == "-" else stack.enter_context(open(args.batch, "rb"))
        except OSError as exc:
            return fail(f"{args.batch}: cannot read the batch file ({exc.strerror})")
        lib = stack.enter_context(open_library(args))
        searcher = Searcher(lib, lib.encoder())
        stack.callback(searcher.close)
        searcher.stores()  # nothing indexed with this model: one clear error, not one per line
        try:
            summary = run_batch(read_lines(source), args, lib, searcher, sys.stdout)
        except KeyboardInterrupt:
            print("Cancelled; the queries answered so far are written.", file=sys.stderr)
            return EXIT_CANCELLED
        except BrokenPipeError:  # the reader went away (`| head`): nothing more to say
            sys.stderr.close()
            return EXIT_ERROR
    total = summary.answered + summary.failed
    failed = f", {summary.failed} failed" if summary.failed else ""
    noun = "query" if total == 1 else "queries"
    print(f"{total} {noun} from {safe(source_name)}{failed} in {summary.seconds:.1f} s", file=sys.stderr)
    return EXIT_FAILED if summary.failed else EXIT_OK


__all__ = ["BATCH_KEYS", "BatchLine", "BatchLineError", "BatchSummary", "cmd_search_batch", "parse_line", "run_batch"]
