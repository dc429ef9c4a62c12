"""What the tests that open a real X window (under ``xvfb-run``) share: why one cannot open here, and the
environment of the app's process there (the repo importable, its own config and library, no offscreen)."""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def x_window_problem() -> str | None:
    """Why no X window can open here (the skip's reason), or None."""
    if shutil.which("xvfb-run") is None:
        return "xvfb-run is not installed (Debian package xvfb)"
    from desktop.display import display_problem

    return display_problem({"DISPLAY": ":0"}, sys.platform)


def x_env(tmp_path: Path, home: Path) -> dict[str, str]:
    """The environment of an app process in the X window: library ``home``, settings under ``tmp_path``."""
    env = dict(os.environ, SCENEFIND_HOME=str(home), XDG_CONFIG_HOME=str(tmp_path / "xdg"))
    env["PYTHONPATH"] = str(REPO) + os.pathsep + env.get("PYTHONPATH", "")
    env.pop("QT_QPA_PLATFORM", None)
    return env
