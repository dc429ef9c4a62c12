"""``scenefind gui`` where no window can open: a sentence and exit code 2, never Qt's xcb abort."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from desktop.display import HEADLESS_HELP, display_problem, package_for

REPO = Path(__file__).resolve().parents[2]
ICCCM = "libxcb-icccm.so.4: cannot open shared object file: No such file or directory"


def test_no_display_is_said_with_the_headless_ways() -> None:
    problem = display_problem({}, "linux")
    assert problem is not None and problem.startswith("no display was found")
    assert "--screenshot" in problem and "xvfb-run" in problem


def test_a_missing_xcb_library_is_named_with_its_package() -> None:
    problem = display_problem({"DISPLAY": ":0"}, "linux", plugin=lambda: Path("/qt/libqxcb.so"), load=lambda _: ICCCM)
    assert problem is not None and "libxcb-icccm.so.4" in problem and "apt-get install libxcb-icccm4" in problem
    assert "xcb-cursor0" not in problem  # Qt's own message blames that library whatever is missing


def test_what_needs_no_check() -> None:
    assert display_problem({"DISPLAY": ":0"}, "linux", plugin=lambda: Path("/x"), load=lambda _: None) is None
    assert display_problem({"QT_QPA_PLATFORM": "offscreen"}, "linux") is None  # the user's choice stands
    assert display_problem({"WAYLAND_DISPLAY": "wayland-0"}, "linux") is None
    assert display_problem({}, "darwin") is None and display_problem({}, "win32") is None


def test_package_names_follow_debian() -> None:
    assert package_for(ICCCM) == "libxcb-icccm4"
    assert package_for("libxkbcommon-x11.so.0: cannot open shared object file") == "libxkbcommon-x11-0"
    assert package_for("/qt/libqxcb.so: undefined symbol: foo") == ""


def _no_display_env(tmp_path: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "WAYLAND_DISPLAY", "QT_QPA_PLATFORM")}
    env.update(SCENEFIND_HOME=str(tmp_path / "home"), XDG_CONFIG_HOME=str(tmp_path / "xdg"))
    env["PYTHONPATH"] = str(REPO) + os.pathsep + env.get("PYTHONPATH", "")
    return env


def test_gui_without_a_display_says_so_and_exits_2(tmp_path: Path) -> None:
    out = subprocess.run(
        [sys.executable, "-m", "engine.cli", "gui"],
        cwd=REPO, env=_no_display_env(tmp_path), capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert out.returncode == 2, (out.returncode, out.stderr)
    assert "no display was found" in out.stderr and HEADLESS_HELP in out.stderr
    assert "xcb" not in out.stderr and "Aborted" not in out.stderr


def test_a_screenshot_without_a_display_renders_offscreen(tmp_path: Path) -> None:
    shot = tmp_path / "shot.png"
    out = subprocess.run(
        [sys.executable, "-m", "desktop.app", "--screenshot", str(shot), "--timeout", "1"],
        cwd=REPO, env=_no_display_env(tmp_path), capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    assert "rendering offscreen" in out.stderr and shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
