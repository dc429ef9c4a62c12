"""Bad queries for ``scenefind bench faults`` and the reliability tests: empty, blank, 10,000 characters,
non-English, emoji, control characters, lone surrogates, SQL and shell look-alikes.

Each is tried through the search API (videos and moments, also as an excluded term) and through the CLI (text
and JSON). It must be answered (results, maybe none) or refused with a message that says what to change;
a traceback, another exit code or a silent refusal counts as a crash.
"""

from __future__ import annotations

import contextlib
import io
from pathlib import Path
from typing import Any

from engine.bench.harness import MODEL

QUERIES: tuple[tuple[str, str], ...] = (
    ("empty", ""),
    ("whitespace only", " \t\n\r\u00a0\u3000 "),
    ("10,000 characters", "a red car on a sunny road " * 384 + "red" * 16),
    ("10,000 of one letter", "x" * 10_000),
    ("Russian", "красная машина на дороге"),
    ("Japanese", "赤い車が道路を走っている"),
    ("Arabic (right to left)", "سيارة حمراء على الطريق"),
    ("emoji", "🚗🔴🎉 👨‍👩‍👧"),
    ("control characters", "red\x00car\x07\x1b[31m\x08\x7f\u200b"),
    ("lone surrogate", "red \ud800 car"),
    ("bidi override", "\u202ered car\u202c"),
    ("SQL", "'; DROP TABLE videos; --"),
    ("format strings", "%s %n {0} ${HOME} $(id) `id`"),
    ("only punctuation", "?!.,;:-_"),
    ("newlines", "red\n\ncar\r\nblue"),
)


def run_queries(home: Path, model: str = MODEL) -> dict[str, Any]:
    """Try every query of ``QUERIES`` through the search API (videos and moments) and the CLI (text and
    JSON). A query is answered (results, maybe none) or refused with a message; anything else is a crash."""
    from engine.cli import main
    from engine.library.library import Library
    from engine.search.query import Query
    from engine.search.searcher import Searcher, SearchError

    details = []
    with Library(home) as lib:
        searcher = Searcher(lib, lib.encoder(model))
        try:
            for name, text in QUERIES:
                outcomes: list[str] = []
                message = ""
                for mode in ("videos", "moments"):
                    try:
                        searcher.search(Query(text=text, k=10, mode=mode, min_relevance=0, exclude=(text,)))
                        outcomes.append("answered")
                    except SearchError as exc:
                        outcomes.append("refused" if str(exc) else "crashed")
                        message = str(exc)
                    except Exception as exc:  # what this harness counts
                        outcomes.append("crashed")
                        message = f"{type(exc).__name__}: {exc}"
                for extra in ([], ["--json", "--moments"]):
                    out, err = io.StringIO(), io.StringIO()
                    try:
                        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
                            code = main(["--home", str(home), "--model", model, "search", text, *extra])
                        outcomes.append({0: "answered", 2: "refused"}.get(code, "crashed"))
                        if code == 2 and "error:" not in err.getvalue():
                            outcomes[-1] = "crashed"  # refused without saying why
                    except BaseException as exc:  # SystemExit from argparse included
                        outcomes.append("crashed")
                        message = f"{type(exc).__name__}: {exc}"
                overall = "crashed" if "crashed" in outcomes else "refused" if "refused" in outcomes else "answered"
                details.append({"query": name, "outcome": overall, "outcomes": outcomes, "message": message})
        finally:
            searcher.close()
    return {
        "tried": len(details),
        "answered": sum(d["outcome"] == "answered" for d in details),
        "refused": sum(d["outcome"] == "refused" for d in details),
        "crashed": sum(d["outcome"] == "crashed" for d in details),
        "details": details,
    }
