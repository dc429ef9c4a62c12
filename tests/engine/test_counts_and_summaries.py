"""Numbers a user can trust: counts per model, summaries whose counts each mean one thing and add up, and
``index`` exit codes for this run's failures only."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from engine.cli import main
from engine.library.library import Library
from engine.settings import EngineSettings
from tests.engine.videos import color_library


def _run(capsys: pytest.CaptureFixture[str], home: Path, model: str, *args: str) -> tuple[int, str, str]:
    code = main(["--home", str(home), "--model", model, "--no-progress", *args])
    out, err = capsys.readouterr()
    return code, out, err


def test_counts_are_per_model(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A library indexed with another model is not indexed with this one: status, its JSON and the library's
    counts say 0 of 3 (it said "3 of 3" while search said nothing was indexed with the model)."""
    color_library(tmp_path / "videos")
    home = tmp_path / "lib"
    _run(capsys, home, "fake:hash-8", "add", str(tmp_path / "videos"))
    assert _run(capsys, home, "fake:hash-8", "index")[0] == 0
    code, out, _ = _run(capsys, home, "fake:color", "status", "--json")
    status = json.loads(out)
    assert code == 0 and status["model_id"] == "fake:color"
    assert status["totals"] == {"videos": 3, "indexed": 0, "pending": 3, "failed": 0, "no_video": 0}
    assert [(f["indexed"], f["pending"]) for f in status["folders"]] == [(0, 3)]
    code, out, _ = _run(capsys, home, "fake:color", "status")
    assert "With this model: 0 of 3 videos indexed, 3 pending, 0 failed" in out
    assert "also indexed with fake:hash-8: 3 videos" in out
    code, _, err = _run(capsys, home, "fake:color", "search", "red")
    assert code == 2 and "nothing is indexed with model fake:color" in err
    code, out, _ = _run(capsys, home, "fake:hash-8", "status")
    assert "With this model: 3 of 3 videos indexed, 0 pending, 0 failed" in out
    with Library(home, EngineSettings(model="fake:hash-8", sample_every_s=0.5)) as lib:
        (row,) = lib.folder_counts()  # new sampling settings: the next run re-embeds, so nothing is up to date
        assert (row.videos, row.indexed, row.pending, row.failed) == (3, 0, 3, 0)


def _second_line_counts(out: str) -> tuple[int, int, int, int, int]:
    """(indexed now, already indexed, failed now, failed before, of) from the summary's videos line."""
    line = next(line for line in out.splitlines() if line.startswith("Videos with "))
    now = re.search(r"(\d+) indexed in this run", line)
    failed = re.search(r"(\d+) failed(?! in earlier)", line)
    before = re.search(r"(\d+) failed in earlier runs", line)
    already = re.search(r"(\d+) already indexed", line)
    total = re.search(r"\(of (\d+)\)", line)
    assert already and total, line
    return (
        int(now.group(1)) if now else 0,
        int(already.group(1)),
        int(failed.group(1)) if failed else 0,
        int(before.group(1)) if before else 0,
        int(total.group(1)),
    )


def test_summaries_add_up_and_exit_codes_follow_this_run(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Each run's videos line adds up to the library (it once read "14 indexed … 17 unchanged, 0 new"); a file
    that failed in an earlier run is counted, not re-failed, and no longer makes the run exit 1."""
    videos = color_library(tmp_path / "videos")
    (tmp_path / "videos" / "broken.mkv").write_text("not a video\n" * 200)
    home = tmp_path / "lib"
    _run(capsys, home, "fake:color", "add", str(tmp_path / "videos"))

    code, out, err = _run(capsys, home, "fake:color", "index")
    assert code == 1 and out.startswith("Files: 4 new, 0 changed, 0 moved, 0 unchanged, 0 removed.")
    assert _second_line_counts(out) == (3, 0, 1, 0, 4) and "broken.mkv" in err

    code, out, err = _run(capsys, home, "fake:color", "index")
    assert code == 0 and "Files: 0 new, 0 changed, 0 moved, 4 unchanged, 0 removed." in out
    assert _second_line_counts(out) == (0, 3, 0, 1, 4) and "--retry-failed" in err

    code, out, err = _run(capsys, home, "fake:hash-8", "index")  # another model: the same files, new embeddings
    assert code == 0 and "4 unchanged" in out and _second_line_counts(out) == (3, 0, 0, 1, 4)

    videos["green"].unlink()
    code, out, _ = _run(capsys, home, "fake:color", "index")
    assert code == 0 and "3 unchanged, 1 removed" in out and _second_line_counts(out) == (0, 2, 0, 1, 3)

    (tmp_path / "videos" / "broken.mkv").write_text("still not a video, but changed\n" * 300)
    code, out, err = _run(capsys, home, "fake:color", "index")  # a changed file is tried again: a new failure
    assert code == 1 and "1 changed" in out and _second_line_counts(out) == (0, 2, 1, 0, 3)


def test_unusable_file_fails_once_not_every_run(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A file the scan cannot use (here a name that is not UTF-8) is recorded as failed in the run that finds it;
    unchanged, it is an earlier failure after that, not a failure of every run (which made every run exit 1)."""
    import os

    color_library(tmp_path / "videos")
    try:
        fd = os.open(os.fsencode(tmp_path / "videos") + b"/latin-\xe9.mp4", os.O_WRONLY | os.O_CREAT, 0o644)
    except (OSError, UnicodeError):
        pytest.skip("this file system refuses names that are not UTF-8")
    os.write(fd, b"\0" * 5000)
    os.close(fd)
    home = tmp_path / "lib"
    _run(capsys, home, "fake:color", "add", str(tmp_path / "videos"))
    code, out, err = _run(capsys, home, "fake:color", "index")
    assert code == 1 and "not valid UTF-8" in err and _second_line_counts(out) == (3, 0, 1, 0, 4)
    code, out, err = _run(capsys, home, "fake:color", "index")
    assert code == 0 and _second_line_counts(out) == (0, 3, 0, 1, 4) and "not valid UTF-8" not in err
