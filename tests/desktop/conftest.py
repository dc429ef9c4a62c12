"""GUI test fixtures: QSettings in an ini file under tmp_path, a fake engine, generated videos."""

from __future__ import annotations

from pathlib import Path

import pytest
from PySide6.QtCore import QCoreApplication, QSettings

from tests.desktop.fakes import FakeEngine


@pytest.fixture(autouse=True)
def _qsettings_in_tmp(tmp_path: Path) -> Path:
    """Window state goes to an ini under tmp_path, never to the user's real settings."""
    folder = tmp_path / "qsettings"
    QCoreApplication.setOrganizationName("ScenefindTests")
    QCoreApplication.setApplicationName("ScenefindTests")
    QSettings.setDefaultFormat(QSettings.Format.IniFormat)
    QSettings.setPath(QSettings.Format.IniFormat, QSettings.Scope.UserScope, str(folder))
    QSettings().clear()
    return folder


@pytest.fixture
def videos(tmp_path: Path) -> dict[str, Path]:
    from tests.engine.videos import color_library

    return color_library(tmp_path / "videos")


@pytest.fixture
def fake_engine(tmp_path: Path, videos: dict[str, Path]) -> FakeEngine:
    return FakeEngine(tmp_path, list(videos.values()))
