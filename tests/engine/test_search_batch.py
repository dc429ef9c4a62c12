"""``scenefind search --batch``: one model load, one JSON line per query, the same hits as single searches."""

from __future__ import annotations

import argparse
import io
import json
import sys
from pathlib import Path

import pytest

from engine.cli import main
from engine.cli.search_batch import BatchLineError, parse_line
from tests.engine.videos import color_library


def _cli(capsys: pytest.CaptureFixture[str], home: Path, model: str, *args: str) -> tuple[int, str, str]:
    code = main(["--home", str(home), "--model", model, "--no-progress", *args])
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture(params=["fake:color", "test-tiny"])
def indexed(request: pytest.FixtureRequest, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> tuple[Path, str]:
    """A library of the colour videos indexed with a weightless model and with a real (tiny) open_clip one."""
    color_library(tmp_path / "videos")
    home = tmp_path / "lib"
    assert _cli(capsys, home, request.param, "add", str(tmp_path / "videos"))[0] == 0
    assert _cli(capsys, home, request.param, "index")[0] == 0
    return home, request.param


def test_batch_equals_single_queries_hit_for_hit(
    indexed: tuple[Path, str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    home, model = indexed
    nature = str(tmp_path / "videos" / "nature")
    cases = [  # (batch line, the same query as a whole single-search command); the batch adds -k 2 --all
        ("blue", ["blue", "-k", "2", "--all"]),
        (json.dumps({"text": "red", "moments": True, "k": 3}), ["red", "--moments", "-k", "3", "--all"]),
        (
            json.dumps({"text": "a red frame", "exclude": ["blue"], "id": "q3"}),
            ["a red frame", "--exclude", "blue", "-k", "2", "--all"],
        ),
        (json.dumps({"text": "green", "folder": nature, "all": False}), ["green", "--folder", nature, "-k", "2"]),
        (
            json.dumps({"text": "yellow", "min_duration": 5, "moments": True}),
            ["yellow", "--min-duration", "5", "--moments", "-k", "2", "--all"],
        ),
    ]
    batch = tmp_path / "queries.txt"
    batch.write_text("".join(line + "\n" for line, _ in cases), encoding="utf-8")
    code, out, err = _cli(capsys, home, model, "search", "--batch", str(batch), "-k", "2", "--all")
    assert code == 0, err
    answers = [json.loads(line) for line in out.splitlines()]
    assert [a["line"] for a in answers] == [1, 2, 3, 4, 5]
    assert answers[2]["query"]["id"] == "q3"
    assert [a["mode"] for a in answers] == ["videos", "moments", "videos", "videos", "moments"]
    for answer, (line, single) in zip(answers, cases, strict=True):
        code, single_out, _ = _cli(capsys, home, model, "search", *single, "--json")
        assert code == 0
        assert answer["hits"] == json.loads(single_out), line  # same videos, scores, moments, relevance, order
    assert answers[0]["hits"] and answers[1]["hits"][0]["end"] > answers[1]["hits"][0]["start"]
    assert all(Path(h["video"]).parent == Path(nature) for h in answers[3]["hits"])
    assert answers[4]["hits"] and all(h["duration"] >= 5 for h in answers[4]["hits"])
    assert "5 queries" in err


def test_bad_lines_are_reported_by_number_and_the_others_still_answer(
    indexed: tuple[Path, str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    home, model = indexed
    batch = tmp_path / "queries.jsonl"
    batch.write_bytes(
        b"blue\n"
        b"\n"  # blank: skipped, but still counted in the line numbers
        b'{"text": "red", "k": 0}\n'
        b"{not json\n"
        b'{"txt": "green"}\n'
        b'{"image": "/no/such/image.png"}\n'
        b"\xff\xfe not utf-8\n"
        b'{"text": "green", "span": "9-3"}\n'
        b'{"text": "green"} and more\n'
        b'{"text": "green", "k": 1}\n'
    )
    code, out, err = _cli(capsys, home, model, "search", "--batch", str(batch), "--all")
    assert code == 1  # some lines failed, the rest were answered
    answers = {a["line"]: a for a in map(json.loads, out.splitlines())}
    assert sorted(answers) == [1, 3, 4, 5, 6, 7, 8, 9, 10]
    assert answers[1]["hits"] and answers[10]["hits"] and len(answers[10]["hits"]) == 1
    expected = {
        3: "'k' must be at least 1",
        4: "not a JSON object",
        5: "unknown key 'txt'; did you mean 'text'?",
        6: "/no/such/image.png",
        7: "not UTF-8",
        8: "'span'",
        9: "not a JSON object (Extra data",
    }
    for number, words in expected.items():
        assert "hits" not in answers[number]
        assert answers[number]["error"].startswith(f"line {number}: ") and words in answers[number]["error"]
    assert "9 queries" in err and "7 failed" in err


def test_batch_from_standard_input(
    indexed: tuple[Path, str], capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    home, model = indexed
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(b'green\n{"text": "blue", "moments": true}\n')))
    code, out, _ = _cli(capsys, home, model, "search", "--batch", "-", "-k", "1")
    answers = [json.loads(line) for line in out.splitlines()]
    assert code == 0 and [a["query"]["text"] for a in answers] == ["green", "blue"]
    assert answers[0]["mode"] == "videos" and answers[1]["mode"] == "moments"


def test_batch_usage_and_fatal_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    color_library(tmp_path / "videos")
    home = tmp_path / "lib"
    _cli(capsys, home, "fake:color", "add", str(tmp_path / "videos"))
    batch = tmp_path / "q.txt"
    batch.write_text("blue\n", encoding="utf-8")
    code, out, err = _cli(capsys, home, "fake:color", "search", "--batch", str(batch))
    assert code == 2 and "nothing is indexed" in err and out == ""  # one error, not one per line
    _cli(capsys, home, "fake:color", "index")
    code, _, err = _cli(capsys, home, "fake:color", "search", "blue", "--batch", str(batch))
    assert code == 2 and "leave out TEXT" in err
    code, _, err = _cli(capsys, home, "fake:color", "search", "--batch", str(tmp_path / "missing.txt"))
    assert code == 2 and "missing.txt" in err and "cannot read" in err


def _defaults(**changes: object) -> argparse.Namespace:
    values: dict[str, object] = {
        "text": None,
        "image": None,
        "clip": None,
        "like": None,
        "span": None,
        "moments": False,
        "k": 10,
        "exclude": [],
        "folder": [],
        "after": None,
        "before": None,
        "min_duration": None,
        "max_duration": None,
        "min_height": None,
        "max_height": None,
        "min_relevance": None,
        "all": False,
    }
    return argparse.Namespace(**(values | changes))


def test_parse_line_plain_text_and_json_over_the_command_line() -> None:
    plain = parse_line(1, "  a dog on a beach  ", _defaults(k=3, moments=True))
    assert plain.options.text == "a dog on a beach" and plain.options.k == 3 and plain.options.moments
    line = json.dumps({"image": "x.png", "k": 2, "exclude": "leash", "after": "2024-01-31", "span": [1, 4]})
    parsed = parse_line(2, line, _defaults(text="ignored", exclude=["cat"]))
    assert parsed.options.text is None and parsed.options.image == Path("x.png")  # the line says what to look for
    assert parsed.options.exclude == ["leash"] and parsed.options.k == 2 and parsed.options.span == (1.0, 4.0)
    assert isinstance(parsed.options.after, float) and parsed.echo["k"] == 2
    for bad, words in (
        ('{"k": true}', "whole number"),
        ('{"min_duration": "long"}', "number"),
        ('{"moments": "yes"}', "true or false"),
        ('{"exclude": [1]}', "list of texts"),
        ('{"after": "yesterday"}', "date"),
        ('{"span": [5, 2]}', "start-end"),
        ('{"text": ""}', "non-empty"),
    ):
        with pytest.raises(BatchLineError, match=words):
            parse_line(3, bad, _defaults())
