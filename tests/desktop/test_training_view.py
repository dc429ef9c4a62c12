"""Training tab: data (own captions or an official dataset) → LLM choice → negatives review → train with live
plots → cancel → resume (also after a restart) → use the model; the form's loading state, defaults and
per-loss fields; plots that follow the theme; one real run on a tiny model (skipped when too slow)."""

from __future__ import annotations

import struct
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import pytest

from desktop.engine_api import LlmModel, RealEngine, TrainingRun, size_text
from desktop.main_window import MainWindow
from desktop.views import training_run
from desktop.views.training_view import LOSS_SERIES, METRIC_SERIES, TrainingView
from engine.jobs import CancelToken, ProgressCallback, check_cancel
from tests.desktop.fakes import FakeEngine

pytestmark = pytest.mark.gui
DEFAULT_LLM = "qwen2.5-1.5b-instruct-q4_k_m.gguf"


class TrainingFakeEngine(FakeEngine):
    """``FakeEngine`` plus the Training tab's LLM, official-data and run-folder calls (real file checks)."""

    def __init__(self, root: Path, videos: Sequence[Path]) -> None:
        super().__init__(root, videos)
        self.llm_cached = False
        self.download_error: Exception | None = None
        self.download_gate: threading.Event | None = None
        self.generate_llms: list[Path | None] = []
        self.histories: dict[str, list[Any]] = {}
        self.defaults_error: Exception | None = None

    def train_defaults(self) -> Any:
        if self.defaults_error is not None:
            raise self.defaults_error
        return super().train_defaults()

    def load_official_data(self, dataset: str | None, annotations: Path, videos: Path) -> list[Any]:
        from engine.train.data import load_official

        return load_official(dataset, annotations, videos)

    write_training_data = RealEngine.write_training_data  # pure file writing: the real one
    check_llm = RealEngine.check_llm  # the engine's GGUF header check
    read_negatives = RealEngine.read_negatives

    def default_llm(self) -> LlmModel:
        return LlmModel(DEFAULT_LLM, 1_117_320_736, self.root / "llm" / DEFAULT_LLM, self.llm_cached)

    def download_llm(self, *, progress: ProgressCallback | None = None, cancel: CancelToken | None = None) -> Path:
        if progress:
            progress(0.5, f"Downloading {DEFAULT_LLM}: 559 of 1117 MB")
        while self.download_gate is not None and not self.download_gate.wait(0.01):
            check_cancel(cancel)
        if self.download_error is not None:
            raise self.download_error
        self.llm_cached = True
        return self.default_llm().path

    def generate_negatives(self, captions: Sequence[str], *, llm: Path | None = None, **kwargs: Any) -> Any:
        self.generate_llms.append(llm)
        return super().generate_negatives(captions, **kwargs)

    def train(self, config: Any, *, on_epoch: Callable[[Any], None] | None = None, **kwargs: Any) -> Any:
        history = self.histories.setdefault(str(config.out), [])
        if not config.resume:
            history.clear()

        def record(report: Any) -> None:
            history.append(report)
            if on_epoch is not None:
                on_epoch(report)

        return super().train(config, on_epoch=record, **kwargs)

    def training_run(self, folder: Path) -> TrainingRun | None:
        done = self._trained_epochs.get(str(folder), 0)
        configs = [c for c in self.train_calls if str(c.out) == str(folder)]
        if not done or not configs:
            return None
        best = Path(folder) / "best"
        checkpoint = Path(folder) / "checkpoints" / f"epoch-{done:04d}"
        history = list(self.histories.get(str(folder), []))
        return TrainingRun(Path(folder), configs[-1], done, checkpoint, history, best if best.is_dir() else None)

    def last_training_run(self) -> TrainingRun | None:
        return self.training_run(Path(self.train_calls[-1].out)) if self.train_calls else None


@pytest.fixture
def fake_engine(tmp_path: Path, videos: dict[str, Path]) -> TrainingFakeEngine:
    return TrainingFakeEngine(tmp_path, list(videos.values()))


def _data_file(tmp_path: Path, videos: dict[str, Path], rows: int = 4) -> Path:
    paths = list(videos.values())
    lines = ["video,caption"] + [f"{paths[i % len(paths)]},a person number {i} walks a dog" for i in range(rows)]
    path = tmp_path / "captions.csv"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def _tiny_gguf(path: Path) -> Path:
    """A minimal valid GGUF v3 language model header: architecture, tokenizer and one 32-float tensor."""

    def string(s: str) -> bytes:
        return struct.pack("<Q", len(s)) + s.encode()

    kv = [("general.architecture", "llama"), ("tokenizer.ggml.model", "gpt2"), ("general.name", "Tiny Test")]
    head = b"GGUF" + struct.pack("<IQQ", 3, 1, len(kv))
    for key, value in kv:
        head += string(key) + struct.pack("<I", 8) + string(value)
    head += string("w") + struct.pack("<I", 1) + struct.pack("<Q", 32) + struct.pack("<IQ", 0, 0)
    head += b"\0" * (-len(head) % 32)
    path.write_bytes(head + b"\1" * 128)
    return path


def _view(qtbot, engine) -> TrainingView:
    view = TrainingView(engine)
    qtbot.addWidget(view)
    view.show()  # the first show loads the defaults, the LLM state and the last run
    qtbot.waitUntil(view.form.has_defaults, timeout=30000)
    return view


def _ready_view(qtbot, engine, data: Path) -> TrainingView:
    view = _view(qtbot, engine)
    view.data_picker.set_path(data)
    qtbot.waitUntil(lambda: bool(view._items), timeout=5000)
    return view


# --- the form ---------------------------------------------------------------------------------------------------


def test_the_form_says_it_is_loading_then_shows_the_defaults_and_the_chosen_losss_fields(qtbot, fake_engine) -> None:
    from engine.train.trainer import TrainConfig

    view = TrainingView(fake_engine)
    qtbot.addWidget(view)
    assert view.form.is_loading() and not view.form.body.isVisibleTo(view.form)
    assert not view.start_button.isEnabled() and "loading" in view.start_button.toolTip()
    view.show()
    assert "Loading the training settings" in view.form.loading_label.text() and view.loading()
    qtbot.waitUntil(lambda: not view.loading(), timeout=30000)
    assert view.form.has_defaults()
    assert view.form.body.isVisibleTo(view.form) and not view.form.loading.isVisibleTo(view.form)
    defaults = TrainConfig()
    values = view.form.values()
    for name in ("lam_ie", "lam_cmr", "lam_imc", "imc", "s3ma_alpha", "s3ma_beta", "emcl_k", "lr", "batch_size"):
        assert values[name] == getattr(defaults, name), name
    assert values["imc"] == "label0" and values["objective"] == defaults.objective
    tip = view.form.editor("lam_cmr").toolTip()
    assert "ranking loss" in tip and "Default: 0.2" in tip
    view.form.set_values({"objective": "ceclip"})
    visible = set(view.form.visible_fields())
    assert {"lam_cmr", "lam_imc", "imc"} <= visible and not {"lam_ie", "s3ma_alpha", "emcl_k"} & visible
    assert "CE-CLIP" in view.form.objective.currentText() and "CE-CLIP paper" in view.form.objective_text.text()
    for name in view.form._editors:  # every text is for a user of the app: none cites our design notes
        assert "losses.md" not in view.form.editor(name).toolTip() and "§" not in view.form.editor(name).toolTip()
    for index in range(view.form.objective.count()):
        view.form.objective.setCurrentIndex(index)
        assert "losses.md" not in view.form.objective_text.text() and "§" not in view.form.objective_text.text()
    assert "seed" not in visible  # advanced settings stay folded away until asked for
    view.form.advanced_button.setChecked(True)
    assert {"seed", "grad_accum", "warmup"} <= set(view.form.visible_fields())
    view.form.set_values({"objective": "s3ma", "s3ma_alpha": 0.7})
    config = view.form.config(out="x")
    assert config.objective == "s3ma" and config.s3ma_alpha == pytest.approx(0.7) and config.out == "x"
    view.form.reset()
    assert view.form.values()["s3ma_alpha"] == defaults.s3ma_alpha


def test_the_settings_fit_a_laptop_window_no_clipped_row_nothing_said_before_a_start(qtbot, fake_engine) -> None:
    """At 1280x800 the settings column (steps 1-3, advanced folded) shows every row in full: no scrolling
    that cuts the Epochs row, no label cut short; and no outcome is announced before anything was started."""
    window = MainWindow(fake_engine)
    qtbot.addWidget(window)
    window.resize(1280, 800)
    view = window.training_view
    window.tabs.setCurrentWidget(view)
    window.show()
    qtbot.waitUntil(lambda: view.form.has_defaults() and not view.loading(), timeout=30000)
    qtbot.wait(100)
    scroll = view._scroll
    assert scroll.verticalScrollBar().maximum() == 0, "the settings column needs scrolling at 1280x800"
    epochs = view.form.editor("epochs")
    top_left = epochs.mapTo(scroll.viewport(), epochs.rect().topLeft())
    assert scroll.viewport().rect().contains(top_left) and top_left.y() + epochs.height() <= scroll.viewport().height()
    for name in view.form.visible_fields():
        label = view.form.form.labelForField(view.form.editor(name))
        assert label.width() >= label.sizeHint().width(), f"the label of {name} is cut short"
    said = " ".join(w.text() for w in (view.negatives_status, view.run_status, view.llm_picker.state))
    assert "Not generated" not in said and "failed" not in said.lower()


def test_defaults_that_fail_to_load_say_why_and_retry(qtbot, fake_engine) -> None:
    fake_engine.defaults_error = RuntimeError("torch is not installed")
    view = TrainingView(fake_engine)
    qtbot.addWidget(view)
    view.show()
    qtbot.waitUntil(lambda: view.form.retry_button.isVisibleTo(view.form), timeout=5000)
    assert "torch is not installed" in view.form.loading_label.text()
    fake_engine.defaults_error = None
    view.form.retry_button.click()
    qtbot.waitUntil(view.form.has_defaults, timeout=30000)


# --- data -------------------------------------------------------------------------------------------------------


def test_bad_data_file_names_the_problem(qtbot, fake_engine, tmp_path) -> None:
    bad = tmp_path / "bad.csv"
    bad.write_text("clip,text\nx.mp4,hello\n", encoding="utf-8")
    view = TrainingView(fake_engine)
    qtbot.addWidget(view)
    view.data_picker.set_path(bad)
    qtbot.waitUntil(lambda: "missing column" in view.data_picker.summary.text(), timeout=5000)
    assert "bad.csv" in view.data_picker.summary.text() and not view.generate_button.isEnabled()
    assert view.data_picker.summary.objectName() == "errorText"


def test_an_official_dataset_trains_through_a_data_file_in_the_run_folder(qtbot, fake_engine, shared_data) -> None:
    from engine.train.data import load_training_data

    annotations = shared_data / "annotations" / "msrvtt" / "MSRVTT_JSFUSION_test.csv"
    view = _view(qtbot, fake_engine)
    assert view.data_picker.format.count() == 7 and not view.data_picker.videos_edit.isVisibleTo(view)
    # read as a captions file it fails; its name says MSR-VTT, so the format switches and asks for the videos
    view.data_picker.set_path(annotations)
    qtbot.waitUntil(lambda: view.data_picker.dataset() == "msrvtt", timeout=5000)
    assert "MSR-VTT" in view.data_picker.summary.text() and view.data_picker.videos_edit.isVisibleTo(view)
    view.data_picker.set_videos(shared_data / "videos" / "antmmf")
    qtbot.waitUntil(lambda: bool(view._items), timeout=5000)
    assert view.data_picker.summary.text().startswith("2 clips · 2 videos")
    view.start()
    qtbot.waitUntil(lambda: view.use_button.isEnabled(), timeout=5000)
    config = fake_engine.train_calls[-1]
    assert Path(config.data) == Path(config.out) / "data.jsonl" and config.negatives is None
    items = load_training_data(Path(config.data))
    assert {i.caption for i in items} == {"a person is connecting something to system", "a little girl does gymnastics"}


# --- the LLM and negatives --------------------------------------------------------------------------------------


def test_a_bad_gguf_file_is_named_and_rule_based_is_offered(qtbot, fake_engine, tmp_path, videos) -> None:
    view = _ready_view(qtbot, fake_engine, _data_file(tmp_path, videos))
    bad = tmp_path / "model.gguf"
    bad.write_text("<!DOCTYPE html><html>403 Forbidden</html>", encoding="utf-8")
    view.llm_picker.set_file(bad)
    qtbot.waitUntil(view.llm_picker.is_error, timeout=5000)
    text = view.llm_picker.state.text()
    assert str(bad) in text and "not a GGUF model file" in text and "HTML" in text
    assert not view.generate_button.isEnabled() and view.llm_picker.rules_button.isVisibleTo(view)
    view.llm_picker.rules_button.click()
    assert view.llm_picker.choice() == "rules" and "No LLM" in view.llm_picker.state.text()
    assert view.generate_button.isEnabled()
    view.generate()
    qtbot.waitUntil(lambda: view.negatives.row_count() == 8, timeout=5000)
    assert fake_engine.generate_llms == [None] and "rule-based swaps" in view.negatives_status.text()


def test_a_good_gguf_file_writes_the_negatives(qtbot, fake_engine, tmp_path, videos) -> None:
    view = _ready_view(qtbot, fake_engine, _data_file(tmp_path, videos))
    good = _tiny_gguf(tmp_path / "tiny.gguf")
    view.llm_picker.set_file(good)
    qtbot.waitUntil(lambda: view.llm_picker.state.text().startswith("✓"), timeout=5000)
    assert "Tiny Test" in view.llm_picker.state.text() and not view.llm_picker.is_error()
    view.generate()
    qtbot.waitUntil(lambda: view.negatives.row_count() == 8, timeout=5000)
    assert fake_engine.generate_llms == [good]


def test_the_llm_choice_is_remembered_across_restarts(qtbot, fake_engine, tmp_path) -> None:
    first = _view(qtbot, fake_engine)
    good = _tiny_gguf(tmp_path / "tiny.gguf")
    first.llm_picker.set_file(good)
    qtbot.waitUntil(lambda: first.llm_picker.state.text().startswith("✓"), timeout=5000)
    second = _view(qtbot, fake_engine)  # a new session
    assert second.llm_picker.choice() == "file" and second.llm_picker.file() == good
    qtbot.waitUntil(lambda: second.llm_picker.state.text().startswith("✓"), timeout=5000)  # checked again
    assert second.llm_picker.llm_path() == good
    second.llm_picker.set_kind("rules")
    third = _view(qtbot, fake_engine)
    assert third.llm_picker.choice() == "rules" and third.llm_picker.llm_path() is None
    good.unlink()  # the remembered file has gone since: choosing it again names the problem
    third.llm_picker.set_kind("file")
    qtbot.waitUntil(third.llm_picker.is_error, timeout=5000)
    assert str(good) in third.llm_picker.state.text() and not third.generate_button.isEnabled()


def test_the_default_llm_downloads_first_and_a_failed_download_says_why(qtbot, fake_engine, tmp_path, videos) -> None:
    from engine.train.llm import LLMDownloadError, LLMError

    view = _ready_view(qtbot, fake_engine, _data_file(tmp_path, videos))
    qtbot.waitUntil(lambda: "not on this computer" in view.llm_picker.state.text(), timeout=5000)
    assert view.llm_picker.download_button.isVisibleTo(view) and "1.1 GB" in view.llm_picker.state.text()
    assert "Downloads the default model first" in view.generate_button.toolTip()
    # a download in progress shows its progress and can be cancelled
    fake_engine.download_gate = threading.Event()
    view.generate()
    qtbot.waitUntil(lambda: "559 of 1117 MB" in view.negatives_status.text(), timeout=5000)
    assert view.generator.progress.isVisibleTo(view) and view.generator.cancel_button.isEnabled()
    assert not view.generate_button.isEnabled() and not view.start_button.isEnabled()
    view.generator.cancel_button.click()
    qtbot.waitUntil(lambda: "Download cancelled" in view.negatives_status.text(), timeout=5000)
    assert fake_engine.generate_llms == [] and view.generate_button.isEnabled()
    # no network: the engine's error is shown, and the other choices are offered
    fake_engine.download_gate = None
    fake_engine.download_error = LLMDownloadError(
        f"/x/llm/{DEFAULT_LLM}: could not download https://huggingface.co/... (<urlopen error [Errno -3] "
        "Temporary failure in name resolution>); pass a local GGUF file instead (--llm FILE)",
        "https://huggingface.co/x/resolve/main/model.gguf",
        "<urlopen error [Errno -3] Temporary failure in name resolution>",
    )
    view.generate()
    qtbot.waitUntil(view.llm_picker.is_error, timeout=5000)
    text = view.llm_picker.state.text()
    assert "could not be downloaded" in text and "seems to be offline (huggingface.co could not be reached)" in text
    assert "--llm" not in text and "urlopen" not in text and "Errno" not in text  # the window's words
    assert view.llm_picker.rules_button.isVisibleTo(view) and view.llm_picker.download_button.text() == "Try again"
    assert view.llm_picker.choose_button.isVisibleTo(view)  # a file the user has is the third way out
    assert "No negatives written" in view.negatives_status.text() and fake_engine.generate_llms == []
    # "Download now" (nothing asked to be generated) fails without saying "not generated"
    view.llm_picker.download_button.click()
    qtbot.waitUntil(lambda: not view.generator.busy(), timeout=5000)
    assert "negatives" not in view.negatives_status.text().lower() and view.llm_picker.is_error()
    # another download error (a bad checksum) keeps its own words, which name the file
    fake_engine.download_error = LLMError(f"/x/llm/{DEFAULT_LLM}: checksum mismatch (sha256 ab, expected cd); deleted")
    view.llm_picker.download_button.click()
    qtbot.waitUntil(lambda: "checksum mismatch" in view.llm_picker.state.text(), timeout=5000)
    assert view.llm_picker.state.text().startswith("Could not download the default model: /x/llm/")
    # it works once the network is back: download, then generate with the downloaded file
    fake_engine.download_error = None
    view.generate()
    qtbot.waitUntil(lambda: view.negatives.row_count() == 8, timeout=5000)
    assert fake_engine.generate_llms == [fake_engine.default_llm().path]
    assert "on this computer" in view.llm_picker.state.text()


# --- training ---------------------------------------------------------------------------------------------------


def test_full_flow_with_the_fake_engine(qtbot, fake_engine, tmp_path, videos, monkeypatch) -> None:
    window = MainWindow(fake_engine)
    qtbot.addWidget(window)
    view = window.training_view
    assert isinstance(view, TrainingView)
    data = _data_file(tmp_path, videos)
    window.tabs.setCurrentWidget(view)
    window.show()
    qtbot.waitUntil(view.form.has_defaults, timeout=30000)
    assert view.negatives.pages.currentWidget() is view.negatives.empty
    assert view.loss_plot.empty_text() and not view.resume_button.isEnabled()
    view.data_picker.set_path(data)
    qtbot.waitUntil(lambda: bool(view._items), timeout=5000)
    assert view.data_picker.summary.text().startswith("4 clips")
    view.llm_picker.set_kind("rules")

    # generate, then review: reject one row, edit another
    view.generate()
    qtbot.waitUntil(lambda: view.negatives.row_count() == 8, timeout=5000)
    assert view.negatives.pages.currentWidget() is view.negatives.table
    assert view.negatives.counts() == (8, 8)
    view.negatives.set_accepted(1, False)
    view.negatives.edit_negative(2, "a cat walks a dog")
    view.negatives.table.selectRow(3)
    view.negatives.set_selected(False)
    assert view.negatives.counts() == (6, 8)
    assert "6 of 8" in view.negatives.count_label.text()

    # start: the accepted set is written (on the worker) and the config carries it
    fake_engine.train_gate = threading.Event()  # epoch 2 waits, so the test can cancel mid-run
    view.form.set_values({"objective": "ceclip", "epochs": 3})
    view.start_button.click()
    qtbot.waitUntil(lambda: len(view.loss_plot.points(LOSS_SERIES)) == 1, timeout=5000)
    assert view.loss_plot.empty_text() == ""
    config = fake_engine.train_calls[-1]
    assert config.objective == "ceclip" and config.epochs == 3 and not config.resume
    _, path = fake_engine.written_negatives[-1]
    assert Path(config.negatives) == path and path.is_file() and path.parent == Path(config.out)
    from engine.train.negatives import read_negatives

    on_disk = read_negatives(path)
    assert sum(len(v) for item in on_disk.values() for v in item.negatives.values()) == 6
    assert any("a cat walks a dog" in v for item in on_disk.values() for v in item.negatives.values())
    edited_kind = view.negatives.table.item(2, 2).text()
    assert any(s == "edited" for item in on_disk.values() for s in item.sources.get(edited_kind, []))
    assert view.metric_plot.points(METRIC_SERIES["t2v_R1"]) == [(1.0, 20.0)]
    assert view.cancel_button.isEnabled() and not view.start_button.isEnabled() and not view.form.isEnabled()
    assert not view.generate_button.isEnabled()  # no generation while training runs
    assert view.run.folder_label.text() == f"Run folder: {Path(config.out).name}"
    opened: list[Path] = []
    monkeypatch.setattr(training_run, "open_path", lambda p: opened.append(p) or True)
    view.run.open_button.click()
    assert opened == [Path(config.out)]

    # cancel mid-run → resume continues the same folder with resume=True and grows the same plots
    view.cancel_button.click()
    qtbot.waitUntil(lambda: view.resume_button.isEnabled(), timeout=5000)
    assert "A run can be resumed (epoch 1 of 3 done)" in view.run_status.text()
    assert view.resume_button.text() == "Resume (epoch 1 of 3)" and not view.use_button.isEnabled()
    fake_engine.train_gate = None
    view.resume_button.click()
    qtbot.waitUntil(lambda: view.use_button.isEnabled(), timeout=5000)
    resumed = fake_engine.train_calls[-1]
    assert resumed.resume and resumed.out == config.out and resumed.objective == "ceclip"
    assert [x for x, _ in view.loss_plot.points(LOSS_SERIES)] == [1.0, 2.0, 3.0]
    assert [y for _, y in view.metric_plot.points(METRIC_SERIES["comp_all"])] == [50.0, 55.0, 60.0]
    assert "Finished" in view.run_status.text() and not view.resume_button.isEnabled()

    # use this model → settings keep the old model while the library re-indexes with the new one
    old_model = fake_engine.settings().model
    view.use_button.click()
    qtbot.waitUntil(lambda: fake_engine.settings().model != old_model, timeout=5000)
    best = str(Path(config.out) / "best")
    assert fake_engine.index_calls == [best]
    assert window.tabs.currentWidget() is window.library_view
    assert fake_engine.settings().model == best


def test_a_run_stopped_before_a_restart_can_be_resumed_with_its_settings(qtbot, fake_engine, tmp_path, videos) -> None:
    first = _ready_view(qtbot, fake_engine, _data_file(tmp_path, videos))
    first.llm_picker.set_kind("rules")
    first.generate()
    qtbot.waitUntil(lambda: first.negatives.row_count() == 8, timeout=5000)
    first.negatives.set_accepted(0, False)
    first.form.set_values({"objective": "s3ma", "epochs": 3, "s3ma_alpha": 0.7})
    fake_engine.train_gate = threading.Event()
    first.start()
    qtbot.waitUntil(lambda: len(first.loss_plot.points(LOSS_SERIES)) == 1, timeout=5000)
    first.cancel()
    qtbot.waitUntil(lambda: not first.train_runner.running, timeout=5000)
    first.shutdown()
    first.close()
    fake_engine.train_gate = None

    # "restart": a new tab over the same library finds the run, its settings, its curve, and resumes it
    view = _view(qtbot, fake_engine)
    qtbot.waitUntil(lambda: view.resume_button.isEnabled(), timeout=5000)
    assert "A run can be resumed (epoch 1 of 3 done)" in view.run_status.text()
    assert view.form.values()["objective"] == "s3ma" and view.form.values()["s3ma_alpha"] == pytest.approx(0.7)
    assert len(view.loss_plot.points(LOSS_SERIES)) == 1 and view.run.open_button.isVisibleTo(view)
    qtbot.waitUntil(lambda: bool(view._items), timeout=5000)  # the run's data is loaded again
    qtbot.waitUntil(lambda: view.negatives.row_count() == 7, timeout=5000)  # and its reviewed negatives
    assert "reviewed negatives: 7" in view.negatives_status.text()
    stopped = fake_engine.train_calls[-1]
    view.resume_button.click()
    qtbot.waitUntil(lambda: view.use_button.isEnabled(), timeout=5000)
    resumed = fake_engine.train_calls[-1]
    assert resumed.resume and resumed.out == stopped.out and resumed.objective == "s3ma"
    assert [x for x, _ in view.loss_plot.points(LOSS_SERIES)] == [1.0, 2.0, 3.0]


def test_training_without_negatives_ignores_a_superseded_runs_reports(qtbot, fake_engine, tmp_path, videos) -> None:
    view = _ready_view(qtbot, fake_engine, _data_file(tmp_path, videos))
    view.form.set_values({"objective": "component"})
    assert "trains like the standard one" in view.objective_hint.text()
    fake_engine.train_gate = threading.Event()
    view.start()
    qtbot.waitUntil(lambda: len(view.loss_plot.points(LOSS_SERIES)) == 1, timeout=5000)
    stale = view.run._run
    view.cancel()
    qtbot.waitUntil(lambda: not view.train_runner.running, timeout=5000)
    view.run._relay.epoch.emit(stale - 1, None)  # an older run's late report is dropped before it is read
    assert len(view.loss_plot.points(LOSS_SERIES)) == 1
    assert fake_engine.train_calls[-1].negatives is None  # no negatives generated: trains without them


def test_plots_follow_a_theme_switch(qtbot, fake_engine) -> None:
    from desktop import theme

    window = MainWindow(fake_engine)
    qtbot.addWidget(window)
    plot = window.training_view.loss_plot
    try:
        window.set_theme("light")
        assert plot.background_color().name() == theme.colors().base
        window.set_theme("dark")
        dark = theme.colors()
        qtbot.waitUntil(lambda: plot.background_color().name() == dark.base, timeout=2000)
        assert plot.chart().titleBrush().color().name() == dark.text
    finally:
        window.set_theme("light")
    assert plot.background_color().name() == theme.colors().base


def test_the_window_opens_without_loading_the_trainer(qtbot, fake_engine) -> None:
    """The defaults load when the tab is first shown, on a worker: opening the window never waits for torch."""
    window = MainWindow(fake_engine)
    qtbot.addWidget(window)
    started = time.perf_counter()
    window.tabs.setCurrentWidget(window.training_view)
    window.show()
    assert time.perf_counter() - started < 2.0
    qtbot.waitUntil(window.training_view.form.has_defaults, timeout=30000)


# --- the real engine --------------------------------------------------------------------------------------------


@pytest.mark.slow
def test_real_engine_resumes_a_stopped_run_after_a_restart(qtbot, tmp_path, videos) -> None:
    """8 captioned clips, test-tiny, 2 epochs stopped after the first; a new tab finds it and finishes it."""
    from engine.jobs import JobCancelled
    from engine.models.registry import create_encoder
    from engine.train.trainer import TrainConfig

    engine = RealEngine.open(tmp_path / "library")
    try:
        data = _data_file(tmp_path, videos, rows=8)
        out = engine.training_folder() / "run-test"
        config = TrainConfig(
            data=str(data), out=str(out), model="test-tiny", objective="infonce", epochs=2, batch_size=8,
            n_frames=2, val_fraction=0.34, device="cpu", tensorboard=False,
        )  # fmt: skip
        token = CancelToken()
        started = time.perf_counter()
        with pytest.raises(JobCancelled):
            engine.train(config, on_epoch=lambda _: token.cancel(), cancel=token)  # stops in epoch 2
        if time.perf_counter() - started > 30:
            pytest.skip("one epoch of test-tiny on 8 clips took over 30 s on this machine")
        info = engine.training_run(out)
        assert info is not None and info.resumable and info.epochs_done == 1 and info.config.epochs == 2
        assert engine.last_training_run() == info

        view = _view(qtbot, engine)
        qtbot.waitUntil(lambda: view.resume_button.isEnabled(), timeout=30000)
        assert "A run can be resumed (epoch 1 of 2 done" in view.run_status.text()
        assert len(view.loss_plot.points(LOSS_SERIES)) == 1
        view.resume_button.click()
        qtbot.waitUntil(lambda: view.use_button.isEnabled(), timeout=60000)
        assert [x for x, _ in view.loss_plot.points(LOSS_SERIES)] == [1.0, 2.0], view.run_status.text()
        assert view.run.best() is not None and view.run.best().is_dir()
        encoder = create_encoder(str(view.run.best()), device="cpu")
        assert encoder.encode_texts(["a dog"]).shape[0] == 1
        finished = engine.training_run(out)
        assert finished is not None and finished.finished and not finished.resumable
    finally:
        engine.close()


def test_real_engine_checks_gguf_files_and_knows_the_default_llm(tmp_path) -> None:
    from engine.train.llm import LLMError

    engine = RealEngine.open(tmp_path / "library")
    try:
        assert engine.check_llm(_tiny_gguf(tmp_path / "tiny.gguf")) == "Tiny Test (llama, 1 kB)"
        empty = tmp_path / "empty.gguf"
        empty.write_bytes(b"")
        with pytest.raises(LLMError, match=r"empty\.gguf: not a GGUF model file \(the file is empty\)"):
            engine.check_llm(empty)
        default = engine.default_llm()
        assert default.name.endswith(".gguf") and default.size and not default.cached
        assert default.path.name == default.name
    finally:
        engine.close()


def test_sizes_read_as_download_pages_state_them() -> None:
    assert [size_text(n) for n in (300, 430_000, 98_304_512, 1_117_320_736)] == ["1 kB", "430 kB", "98 MB", "1.1 GB"]
