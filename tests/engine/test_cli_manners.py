"""How the CLI behaves at its edges: Ctrl-C on ``--watch``, a reader that closes the pipe, blank queries,
unknown models, and a ``models`` list a person can read."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from engine.cli import EXIT_CANCELLED, EXIT_PIPE_CLOSED, main
from engine.cli.library import models_text
from engine.models.registry import ModelInfo
from tests.engine.videos import color_library

REPO = Path(__file__).resolve().parents[2]
ENV = {**os.environ, "PYTHONPATH": str(REPO)}


def _cli(home: Path, *args: str, model: str = "test-tiny") -> list[str]:
    return [sys.executable, "-m", "engine.cli", "--home", str(home), "--model", model, "--no-progress", *args]


def test_ctrl_c_on_watch_exits_130(tmp_path: Path) -> None:
    color_library(tmp_path / "videos")
    home = tmp_path / "lib"
    for args in (["add", str(tmp_path / "videos")], ["index"]):
        subprocess.run(_cli(home, *args), check=True, env=ENV, capture_output=True)
    proc = subprocess.Popen(
        _cli(home, "index", "--watch"), env=ENV, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    assert proc.stderr is not None
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:  # wait until it watches (after its first, no-op run)
        line = proc.stderr.readline()
        if "Watching for changes" in line or not line:
            break
    time.sleep(0.5)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == EXIT_CANCELLED, err
    assert "nothing new to index" in out and "Stopped watching" in err and "Traceback" not in err


@pytest.mark.parametrize("args", [["models"], ["status"], ["search", "x", "--all"]])
def test_a_closed_pipe_ends_quietly(tmp_path: Path, args: list[str]) -> None:
    """``scenefind status | head -3`` ended with a BrokenPipeError line; now it stops quietly with 141 (what a
    shell reports for a tool whose reader went away). The read end is closed before the command writes, so the
    test does not depend on timing."""
    home = tmp_path / "lib"
    color_library(tmp_path / "videos")
    for setup in (["add", str(tmp_path / "videos")], ["index"]):
        subprocess.run(_cli(home, *setup), check=True, env=ENV, capture_output=True)
    proc = subprocess.Popen(_cli(home, *args), env=ENV, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert proc.stdout is not None
    proc.stdout.close()
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == EXIT_PIPE_CLOSED, err
    assert b"Traceback" not in err and b"BrokenPipe" not in err and b"Exception ignored" not in err


def test_blank_queries_get_one_clear_message(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    messages = set()
    for text in ("", "   ", "\t \n"):
        assert main(["--home", str(tmp_path / "lib"), "search", text]) == 2
        messages.add(capsys.readouterr().err)
    assert messages == {"scenefind: error: the query is empty; type what you are looking for\n"}


def test_unknown_model_points_at_the_model_list(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "v").mkdir()
    home = str(tmp_path / "lib")
    assert main(["--home", home, "add", str(tmp_path / "v")]) == 0
    capsys.readouterr()
    for command in (["index"], ["search", "a dog"], ["status"]):
        assert main(["--home", home, "--model", "nonsense", *command]) == 2
        err = capsys.readouterr().err
        assert "unknown model 'nonsense'" in err and "`scenefind models` lists the models you can use" in err


def test_models_are_grouped_ready_first_with_a_count() -> None:
    infos = [
        ModelInfo("test-tiny", "tiny", "test", True),
        ModelInfo("ViT-B-32/openai", "open_clip", "open_clip", False),
        ModelInfo("ViT-B-32/laion2b_s34b_b79k", "open_clip (default)", "open_clip", True),
        ModelInfo("ViT-B-32/datacomp_xl_s13b_b90k", "open_clip", "open_clip", None),
        ModelInfo("RN50/openai", "open_clip", "open_clip", False),
    ]
    lines = models_text(infos)
    assert lines[0] == "5 models: 2 ready to use, 3 to download."
    ready, later = (
        lines.index("Ready to use, nothing to download (2):"),
        lines.index("Downloaded on first use (3), as ARCH/TAG, e.g. ViT-B-32/laion2b_s34b_b79k:"),
    )
    assert ready < later
    assert [line.split()[0] for line in lines[ready + 1 : later]] == ["test-tiny", "ViT-B-32/laion2b_s34b_b79k"]
    assert lines[later + 1 : later + 3] == ["  ViT-B-32: openai, datacomp_xl_s13b_b90k", "  RN50: openai"]


def test_models_command_output_is_short_and_grouped(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["models"]) == 0
    lines = capsys.readouterr().out.splitlines()
    count = int(lines[0].split()[0])
    assert count > 150 and len(lines) < count * 3 // 4  # one line per architecture, not one per model
    assert lines[1].startswith("Ready to use") and any(line.startswith("Downloaded on first use") for line in lines)
    assert all(len(line) <= 120 for line in lines)
