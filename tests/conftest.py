"""Shared fixtures: every test gets its own library home; Qt runs offscreen."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
# Vectors compared across encoders must not depend on whether the test machine's CPU has AMX (where the image
# tower runs in bfloat16 by default, ``engine.models.device.cpu_image_precision``); the bfloat16 path has its own
# test. Set here, not per test, so subprocesses the tests start inherit it.
os.environ["SCENEFIND_CPU_PRECISION"] = "float32"

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Tests that need what this machine may lack skip with the reason in the summary (never deselected
    silently): ``network`` ones unless SCENEFIND_NETWORK_TESTS=1, ``gpu`` ones where torch sees no CUDA."""
    network = os.environ.get("SCENEFIND_NETWORK_TESTS") == "1"
    gpu_items = [item for item in items if "gpu" in item.keywords]
    cuda = False
    if gpu_items:
        import torch

        cuda = torch.cuda.is_available()
    for item in items:
        if "network" in item.keywords and not network:
            item.add_marker(
                pytest.mark.skip(
                    reason="needs a model host to download pretrained weights; set SCENEFIND_NETWORK_TESTS=1 to run"
                )
            )
        if "gpu" in item.keywords and not cuda:
            item.add_marker(pytest.mark.skip(reason="needs a CUDA device (torch.cuda.is_available() is False here)"))


@pytest.fixture(autouse=True)
def _isolated_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Point SCENEFIND_HOME (and the weights cache) at a fresh folder so no test sees another's library."""
    home = tmp_path / "home"
    monkeypatch.setenv("SCENEFIND_HOME", str(home))
    monkeypatch.setenv("SCENEFIND_CACHE", str(tmp_path / "cache"))
    for variable in ("SCENEFIND_MODEL", "SCENEFIND_POOLING", "SCENEFIND_HEAD_WINDOWS"):
        # `--pooling` sets these for the process. Set first so that the undo removes them again: a bare delenv of
        # an absent variable records nothing, and a value a test's `main(["--pooling", ...])` set then leaked into
        # the next module-scoped fixture, which runs before this one.
        monkeypatch.setenv(variable, "")
        monkeypatch.delenv(variable)
    return home


@pytest.fixture
def shared_data() -> Path:
    """The real annotation files and clips beside the repository; skips, saying why, when absent."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"real data folder {SHARED_DATA} is absent (it sits beside the repository in CI)")
    return SHARED_DATA
