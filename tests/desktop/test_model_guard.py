"""The first run with no network, as a user meets it: the window says the model could not be downloaded, in
its own words, offers the ways out (a model file, try again, a demo model), and the library rows say that
indexing waits for the model; never a modal with ``--model`` advice, never a row "Waiting" for nothing."""

from __future__ import annotations

from pathlib import Path

import pytest
from PySide6.QtWidgets import QMessageBox

from desktop.main_window import MainWindow
from desktop.model_guard import checkpoint_name
from desktop.problems import explain, offline_reason
from engine.models.base import ModelUnavailable, WeightsUnavailable
from engine.search.searcher import NotIndexed
from engine.settings import DEFAULT_MODEL
from engine.train.llm import LLMDownloadError

pytestmark = pytest.mark.gui
OFFLINE = WeightsUnavailable(
    "Could not download the weights for ViT-B-32/laion2b_s34b_b79k (no connection?). ... or supply a local "
    "checkpoint: --model ViT-B-32@/path/to/model.safetensors (huggingface.co: [Errno -2] Name or service not known)",
    model="ViT-B-32/laion2b_s34b_b79k",
    reason="huggingface.co: [Errno -2] Name or service not known",
)


@pytest.fixture
def offline(fake_engine, monkeypatch):
    """The default model, its weights not here, the hub unreachable; a modal would fail the test."""
    fake_engine.save_settings(fake_engine.settings().replace(model=DEFAULT_MODEL))
    fake_engine.broken_models[DEFAULT_MODEL] = ("ViT-B-32/laion2b_s34b_b79k", OFFLINE)
    for name in ("warning", "critical", "information"):
        monkeypatch.setattr(QMessageBox, name, lambda *a, **k: pytest.fail(f"a modal opened: {a[1:3]}"))
    return fake_engine


def _window(qtbot, engine) -> MainWindow:
    window = MainWindow(engine)
    qtbot.addWidget(window)
    window.show()
    window.check_model()
    qtbot.waitUntil(lambda: not window.model_guard.busy(), timeout=5000)
    return window


def _statuses(window: MainWindow) -> list[str]:
    table = window.library_view.table
    return [table.topLevelItem(i).text(table.columnCount() - 1) for i in range(table.topLevelItemCount())]


def test_offline_first_start_says_so_in_the_windows_words_with_the_ways_out(qtbot, offline) -> None:
    window = _window(qtbot, offline)
    banner = window.banner
    assert banner.isVisible() and banner.kind() == "warning"
    assert banner.title.text() == "The search model could not be downloaded"
    text = banner.text.text()
    assert "ViT-B-32" in text and "seems to be offline (huggingface.co could not be reached)" in text
    assert "--model" not in text and "Errno" not in text and "safetensors" not in text
    assert banner.button_texts() == ["Choose a model file…", "Try again", "Try a demo model"]


def test_a_folder_added_offline_waits_for_the_model_and_says_so(qtbot, offline, tmp_path: Path) -> None:
    window = _window(qtbot, offline)
    window.library_view.add_folders([tmp_path / "videos"])
    qtbot.waitUntil(lambda: window.library_view.table.topLevelItemCount() == 1, timeout=5000)
    qtbot.waitUntil(lambda: window.library_view.waiting_for_model, timeout=5000)
    assert offline.index_calls == []  # nothing started that could only fail
    assert _statuses(window) == ["Waiting for the search model"]
    window.tabs.setCurrentWidget(window.search_view)
    message = window.search_view.message
    assert (
        message.title.text() == "Search is waiting for its model" and "could not be downloaded" in message.body.text()
    )
    assert message.button_texts() == ["Choose a model file…", "Try again", "Try the colour demo"]


def test_indexing_that_meets_the_missing_model_leaves_rows_that_say_what_happened(qtbot, offline, tmp_path) -> None:
    """The check has not answered yet (or the weights vanished since): indexing fails on the model."""
    offline.broken_models.clear()
    window = _window(qtbot, offline)
    offline.index_error = OFFLINE
    offline.folder_paths.append(str(tmp_path / "videos"))
    window.library_view.start_index()
    qtbot.waitUntil(lambda: window.banner.isVisible(), timeout=5000)
    assert _statuses(window) == ["Waiting for the search model"]
    assert window.banner.title.text() == "The search model could not be downloaded"


def test_try_again_when_the_network_is_back_indexes_what_waited(qtbot, offline, tmp_path: Path) -> None:
    window = _window(qtbot, offline)
    offline.folder_paths.append(str(tmp_path / "videos"))
    window.library_view.start_index()
    assert window.library_view.waiting_for_model and offline.index_calls == []
    del offline.broken_models[DEFAULT_MODEL]  # the hub answers again
    window.banner.button("Try again").click()
    qtbot.waitUntil(lambda: offline.index_calls == [None], timeout=5000)
    qtbot.waitUntil(lambda: _statuses(window) == ["Indexed"], timeout=5000)
    assert not window.banner.isVisible()


def test_the_colour_demo_is_one_click_away_and_says_what_it_can_do(qtbot, offline, tmp_path: Path) -> None:
    window = _window(qtbot, offline)
    offline.folder_paths.append(str(tmp_path / "videos"))
    menu = window.banner.button("Try a demo model").menu()
    labels = [a.text() for a in menu.actions()]
    assert labels[0].startswith("Colour demo: finds scenes by the colours you name")
    assert "results are random" in labels[1]
    menu.actions()[0].trigger()
    qtbot.waitUntil(lambda: offline.settings().model == "fake:color", timeout=5000)
    qtbot.waitUntil(lambda: _statuses(window) == ["Indexed"], timeout=5000)
    qtbot.waitUntil(lambda: "colour demo" in window.banner.title.text(), timeout=5000)
    assert window.banner.kind() == "info" and "colours you name" in window.banner.text.text()


def test_a_chosen_model_file_is_checked_before_it_replaces_the_settings_model(qtbot, offline, tmp_path) -> None:
    window = _window(qtbot, offline)
    weights = tmp_path / "open_clip_model.safetensors"
    weights.write_bytes(b"not weights")
    name = f"ViT-B-32@{weights}"
    offline.broken_models[name] = (None, ModelUnavailable(f"{weights}: not a readable safetensors file"))
    window.model_guard.ask_for_checkpoint = lambda parent: weights
    window.banner.button("Choose a model file…").click()
    qtbot.waitUntil(lambda: window.banner.kind() == "error", timeout=5000)
    assert "cannot be used" in window.banner.title.text() and "not a readable" in window.banner.text.text()
    assert offline.settings().model == DEFAULT_MODEL  # the unusable file never became the model
    del offline.broken_models[name]
    window.banner.button("Choose a model file…").click()
    qtbot.waitUntil(lambda: offline.settings().model == name, timeout=5000)


def test_checkpoint_names_follow_what_the_user_picked(tmp_path: Path) -> None:
    folder = tmp_path / "run" / "best"
    folder.mkdir(parents=True)
    (folder / "config.json").write_text("{}")
    (folder / "model.safetensors").write_bytes(b"")
    assert checkpoint_name(folder / "config.json", DEFAULT_MODEL) == str(folder)
    assert checkpoint_name(folder / "model.safetensors", DEFAULT_MODEL) == str(folder)
    loose = tmp_path / "open_clip_model.safetensors"
    assert checkpoint_name(loose, "ViT-L-14/openai") == f"ViT-L-14@{loose}"
    assert checkpoint_name(loose, "fake:color") == f"ViT-B-32@{loose}"


def test_engine_failures_are_said_without_command_line_advice() -> None:
    assert offline_reason("huggingface.co: [Errno -2] Name or service not known") == (
        "this computer seems to be offline (huggingface.co could not be reached)"
    )
    assert offline_reason("HF_HUB_OFFLINE") == "offline mode is on (HF_HUB_OFFLINE is set)"
    not_indexed = explain(NotIndexed("nothing is indexed ...; run `scenefind index`", "open_clip:ViT-B-32/openai"))
    assert "scenefind" not in not_indexed.text and "ViT-B-32 (openai)" in not_indexed.text
    llm = explain(LLMDownloadError("x: could not download ... (--llm FILE)", "https://huggingface.co/a.gguf", "boom"))
    assert "--llm" not in llm.text and "Choose a GGUF file" in llm.text
    assert explain(ValueError("clip.mp4: cannot decode")).text == "clip.mp4: cannot decode"


def test_the_real_engine_tells_an_offline_default_model_from_a_ready_one(tmp_path, monkeypatch) -> None:
    from desktop.engine_api import RealEngine
    from engine.library.library import Library
    from engine.models import openclip_encoder

    def unreachable(*args: object, **kwargs: object) -> None:
        raise OSError("[Errno -2] Name or service not known")

    monkeypatch.setattr(openclip_encoder.socket, "create_connection", unreachable)
    engine = RealEngine(Library(tmp_path / "lib"))
    try:
        state = engine.model_state()
        assert state.name == DEFAULT_MODEL and state.download == "ViT-B-32/laion2b_s34b_b79k"
        assert isinstance(state.problem, WeightsUnavailable) and not state.ready
        assert engine.model_state("fake:color").ready
        broken = engine.model_state(str(tmp_path / "no-such-run"))
        assert isinstance(broken.problem, ModelUnavailable) and "no such checkpoint folder" in str(broken.problem)
    finally:
        engine.close()
