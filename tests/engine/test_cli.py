"""The ``scenefind`` command as a user runs it: add, index, status, search --json, remove, exit codes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from engine.cli import main
from tests.engine.processes import signal_once_committed
from tests.engine.videos import color_library

REPO = Path(__file__).resolve().parents[2]


def _run(capsys: pytest.CaptureFixture[str], home: Path, *args: str, model: str = "fake:color") -> tuple[int, str, str]:
    code = main(["--home", str(home), "--model", model, "--no-progress", *args])
    out, err = capsys.readouterr()
    return code, out, err


def test_add_index_search_json_status_remove(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    videos = color_library(tmp_path / "videos")
    home = tmp_path / "lib"
    assert _run(capsys, home, "add", str(tmp_path / "videos"))[0] == 0
    code, out, _ = _run(capsys, home, "index")
    assert code == 0 and "3 indexed" in out
    code, out, _ = _run(capsys, home, "search", "blue", "-k", "2", "--json")
    assert code == 0 and len(json.loads(out)) == 1  # the relevance cutoff hides the green and yellow videos
    code, out, _ = _run(capsys, home, "search", "blue", "-k", "2", "--json", "--all")
    hits = json.loads(out)
    assert code == 0 and len(hits) == 2
    assert {"video", "score", "best_time"} <= set(hits[0])
    assert hits[0]["video"] == str(videos["red_then_blue"]) and Path(hits[0]["video"]).is_absolute()
    assert 5.0 <= hits[0]["best_time"] <= 9.0
    code, out, _ = _run(capsys, home, "search", "green")
    assert code == 0 and "green.mp4" in out.splitlines()[0]
    code, out, _ = _run(capsys, home, "status", "--json")
    status = json.loads(out)
    assert status["folders"][0]["indexed"] == 3 and status["models"][0]["model_id"] == "fake:color"
    code, out, _ = _run(capsys, home, "remove", str(tmp_path / "videos"))
    assert code == 0 and "Removed" in out
    code, out, _ = _run(capsys, home, "status", "--json")
    assert json.loads(out)["folders"] == []
    code, _, err = _run(capsys, home, "search", "blue")
    assert code == 2 and "nothing is indexed" in err


def test_failed_files_give_exit_code_1_in_their_run_only(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A file that failed exits 1 in the run where it failed; later runs count it, say how to retry, and exit 0
    (so the README's ``add && index && search`` chain goes on); ``--retry-failed`` tries it again (exit 1)."""
    color_library(tmp_path / "videos")
    bad = tmp_path / "videos" / "notes.mkv"
    bad.write_text("this is a text file, not a video\n" * 100)
    home = tmp_path / "lib"
    _run(capsys, home, "add", str(tmp_path / "videos"))
    code, out, err = _run(capsys, home, "index")
    assert code == 1 and "3 indexed in this run" in out and "1 failed" in out and str(bad) in err
    code, out, err = _run(capsys, home, "index")  # still failed on a re-run, but not re-tried
    assert code == 0 and "nothing new to index; 3 already indexed, 1 failed in earlier runs (of 4)" in out
    assert "1 file failed in earlier runs" in err and "--retry-failed" in err and str(bad) not in err
    code, out, err = _run(capsys, home, "index", "--retry-failed")
    assert code == 1 and "0 indexed in this run" in out and "1 failed (of 4)" in out and str(bad) in err
    code, out, _ = _run(capsys, home, "status")
    assert code == 0 and "3 of 4 videos indexed, 0 pending, 1 failed" in out and str(bad) in out


def test_usage_and_fatal_errors_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["frobnicate"])
    assert exc.value.code == 2
    code, _, err = _run(capsys, tmp_path / "lib", "add", str(tmp_path / "missing"))
    assert code == 2 and "missing" in err and "not a folder" in err
    (tmp_path / "v").mkdir()
    code, _, err = _run(capsys, tmp_path / "lib", "add", str(tmp_path / "v"), model="no-such-model")
    assert code == 0  # adding a folder loads no model
    code, _, err = _run(capsys, tmp_path / "lib", "index", model="no-such-model")
    assert code == 2 and "unknown model" in err


def test_bad_settings_file_is_named(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    home = tmp_path / "lib"
    home.mkdir()
    (home / "settings.toml").write_text("sample_every_s = -3\n")
    code, _, err = _run(capsys, home, "status")
    assert code == 2 and "settings.toml" in err and "sample_every_s" in err
    (home / "settings.toml").write_text("colour = 'blue'\n")
    code, _, err = _run(capsys, home, "status")
    assert code == 2 and "unknown setting" in err and "colour" in err


def test_models_lists_default_and_test_models(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["models", "--json"]) == 0
    names = [m["name"] for m in json.loads(capsys.readouterr().out)]
    assert "ViT-B-32/laion2b_s34b_b79k" in names and "test-tiny" in names


def test_documented_offline_flow_with_test_tiny(tmp_path: Path) -> None:
    """The README's no-download flow, run as a user would, through the installed console script module."""
    color_library(tmp_path / "videos")
    base = [sys.executable, "-m", "engine.cli", "--home", str(tmp_path / "lib"), "--model", "test-tiny"]
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    for args in (["add", str(tmp_path / "videos")], ["index"]):
        subprocess.run(base + args, check=True, env=env, capture_output=True)
    out = subprocess.run([*base, "search", "x", "--json"], check=True, env=env, capture_output=True, text=True)
    hits = json.loads(out.stdout)
    assert len(hits) == 3 and all(isinstance(h["best_time"], float) for h in hits)


def test_ctrl_c_stops_cleanly_with_130_and_a_rerun_resumes(tmp_path: Path) -> None:
    import signal

    for i in range(4):
        color_library(tmp_path / "videos" / f"set{i}")
    home = tmp_path / "lib"
    base = [sys.executable, "-m", "engine.cli", "--home", str(home), "--model", "test-tiny", "--no-progress"]
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    subprocess.run([*base, "add", str(tmp_path / "videos")], check=True, env=env, capture_output=True)
    proc = subprocess.Popen([*base, "index"], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    signal_once_committed(proc, home, 1, signal.SIGINT, timeout_s=120)
    _, err = proc.communicate(timeout=120)
    if proc.returncode == 0:
        pytest.skip("the run finished before Ctrl-C could land (machine too fast for this timing)")
    assert proc.returncode == 130, err
    assert "run `scenefind index` again to resume" in err
    rerun = subprocess.run([*base, "index"], env=env, capture_output=True, text=True)
    assert rerun.returncode == 0
    status = json.loads(subprocess.run([*base, "status", "--json"], env=env, capture_output=True, text=True).stdout)
    index_jobs = [j for j in status["last_jobs"] if j["kind"] == "index"]  # the speech and text stages have theirs
    assert status["folders"][0]["indexed"] == 12 and index_jobs[1]["status"] == "cancelled"


def test_hostile_file_names_cannot_drive_the_terminal(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    folder = tmp_path / "videos"
    folder.mkdir()
    (folder / "evil\x1b]0;pwned\x07.mp4").write_bytes(b"junk" * 100)
    home = tmp_path / "lib"
    _run(capsys, home, "add", str(folder))
    code, out, err = _run(capsys, home, "index")
    assert code == 1 and "\x1b" not in out + err and "\\x1b]0;pwned\\x07" in err
    code, out, _ = _run(capsys, home, "status")
    assert "\x1b" not in out and "\\x1b" in out
