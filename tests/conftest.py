"""Shared fixtures: every test gets its own library home; Qt runs offscreen."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"


@pytest.fixture(autouse=True)
def _isolated_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Point SCENEFIND_HOME (and the weights cache) at a fresh folder so no test sees another's library."""
    home = tmp_path / "home"
    monkeypatch.setenv("SCENEFIND_HOME", str(home))
    monkeypatch.setenv("SCENEFIND_CACHE", str(tmp_path / "cache"))
    for variable in ("SCENEFIND_MODEL", "SCENEFIND_POOLING", "SCENEFIND_HEAD_WINDOWS"):
        monkeypatch.delenv(variable, raising=False)  # `--pooling` sets these for the process
    return home


@pytest.fixture
def shared_data() -> Path:
    """The real annotation files and clips beside the repository; skips, saying why, when absent."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"real data folder {SHARED_DATA} is absent (it sits beside the repository in CI)")
    return SHARED_DATA
