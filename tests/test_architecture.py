"""Architecture: the dependency direction (the engine never imports Qt or the desktop package) and the layout."""

from __future__ import annotations

import pkgutil
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import engine

REPO = Path(__file__).resolve().parents[1]


def test_importing_every_engine_module_loads_no_qt() -> None:
    modules = [m.name for m in pkgutil.walk_packages(engine.__path__, "engine.")]
    assert "engine.cli" in modules and "engine.indexing.pipeline" in modules
    code = (
        "import importlib, sys\n"
        f"for name in {modules!r}:\n"
        "    importlib.import_module(name)\n"
        "bad = sorted(m for m in sys.modules if m.split('.')[0] in ('PySide6', 'shiboken6', 'desktop'))\n"
        "print(','.join(bad))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""


def test_import_linter_contracts_hold() -> None:
    exe = shutil.which("lint-imports")
    if exe is None:
        pytest.skip("import-linter is not installed (it comes with the test extras: pip install -e '.[test]')")
    out = subprocess.run([exe], cwd=REPO, capture_output=True, text=True)
    assert out.returncode == 0, out.stdout + out.stderr


@pytest.mark.parametrize(
    "code",
    [
        "from engine import cli",  # `scenefind status` and `--help` must be instant
        "from engine.train.config import TrainConfig; TrainConfig().objective_settings()",  # the Training form
        "import engine.library.scanner, engine.indexing.pipeline, engine.media.decode",  # a scan decodes nothing
    ],
)
def test_light_entry_points_do_not_load_torch(code: str) -> None:
    """Heavy libraries load only when a model is needed, not to parse flags or show training defaults."""
    code += "\nimport sys; print(','.join(m for m in ('torch', 'open_clip', 'cv2', 'av') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""


def test_the_top_of_engine_shows_the_architecture() -> None:
    """Commands live in the ``engine/cli/`` package, one module per group, not as ``cli_*.py`` beside the
    packages at the top of ``engine/`` (where they hid the architecture)."""
    assert sorted(p.name for p in (REPO / "engine").glob("cli_*.py")) == []
    assert not (REPO / "engine" / "cli.py").exists() and (REPO / "engine" / "cli" / "__init__.py").is_file()


def test_no_engine_module_exceeds_the_hard_cap() -> None:
    """800 lines is the architecture's hard cap (aim for 400): a module that long holds more than one noun."""
    lines = {
        p.relative_to(REPO).as_posix(): len(p.read_text(encoding="utf-8").splitlines())
        for p in (REPO / "engine").rglob("*.py")
    }
    assert len(lines) > 50  # the walk found the engine
    assert {path: n for path, n in lines.items() if n > 800} == {}


def test_speech_and_screen_text_modules_do_not_load_torch() -> None:
    """Their models run on CTranslate2 and ONNX Runtime; importing them (the indexer does, for every run) must
    not pay for torch. import-linter forbids the imports; this checks what actually loads."""
    import engine.screen_text
    import engine.speech

    modules = [
        m.name
        for package in (engine.speech, engine.screen_text)
        for m in pkgutil.walk_packages(package.__path__, package.__name__ + ".")
    ]
    assert "engine.speech.transcriber" in modules and "engine.screen_text.reader" in modules
    code = (
        "import importlib, sys\n"
        f"for name in {modules!r}:\n"
        "    importlib.import_module(name)\n"
        "print(','.join(m for m in ('torch', 'open_clip', 'faster_whisper', 'rapidocr') if m in sys.modules))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""


@pytest.mark.parametrize(
    "order",
    [
        ("usearch.index", "onnxruntime", "ctranslate2", "av", "torch", "cv2"),
        ("torch", "av", "cv2", "ctranslate2", "onnxruntime", "usearch.index"),
    ],
)
def test_the_native_libraries_load_together_in_any_order(order: tuple[str, ...]) -> None:
    """One indexing process loads the ANN store (usearch), the OCR (onnxruntime), Whisper (CTranslate2), the
    decoder (PyAV), torch and OpenCV, in whatever order the stages reach them. Wheels that carry their own
    static C++ runtime can crash the process when another loads after them (usearch 2.26.2+ with onnxruntime:
    a segfault, or std::regex_error with Ray)."""
    code = "import importlib\n" + "".join(f"importlib.import_module({name!r})\n" for name in order) + "print('ok')"
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0 and out.stdout.strip() == "ok", (out.returncode, out.stderr[-800:])
