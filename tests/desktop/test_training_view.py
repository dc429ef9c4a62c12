"""Training tab: data → negatives review → train with live plots → cancel → resume → use the model; the
hyperparameter form's defaults and per-loss fields; one real run on a tiny model (skipped when too slow)."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest

from desktop.main_window import MainWindow
from desktop.views.training_view import LOSS_SERIES, METRIC_SERIES, TrainingView

pytestmark = pytest.mark.gui


def _data_file(tmp_path: Path, videos: dict[str, Path], rows: int = 4) -> Path:
    paths = list(videos.values())
    lines = ["video,caption"] + [f"{paths[i % len(paths)]},a person number {i} walks a dog" for i in range(rows)]
    path = tmp_path / "captions.csv"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def _ready_view(qtbot, engine, data: Path) -> TrainingView:
    view = TrainingView(engine)
    qtbot.addWidget(view)
    view.load_defaults()
    qtbot.waitUntil(view.form.has_defaults, timeout=30000)
    view.data_picker.set_path(data)
    qtbot.waitUntil(lambda: bool(view._items), timeout=5000)
    return view


def test_the_form_shows_trainconfig_defaults_and_only_the_chosen_losss_fields(qtbot, fake_engine) -> None:
    from engine.train.trainer import TrainConfig

    view = TrainingView(fake_engine)
    qtbot.addWidget(view)
    assert not view.form.isEnabled() and not view.start_button.isEnabled()
    view.load_defaults()
    qtbot.waitUntil(view.form.has_defaults, timeout=30000)
    defaults = TrainConfig()
    values = view.form.values()
    for name in ("lam_ie", "lam_cmr", "lam_imc", "imc", "s3ma_alpha", "s3ma_beta", "emcl_k", "lr", "batch_size"):
        assert values[name] == getattr(defaults, name), name
    assert values["imc"] == "label0" and values["objective"] == defaults.objective
    view.form.set_values({"objective": "ceclip"})
    visible = set(view.form.visible_fields())
    assert {"lam_cmr", "lam_imc", "imc"} <= visible and not {"lam_ie", "s3ma_alpha", "emcl_k"} & visible
    view.form.set_values({"objective": "s3ma", "s3ma_alpha": 0.7})
    config = view.form.config(out="x")
    assert config.objective == "s3ma" and config.s3ma_alpha == pytest.approx(0.7) and config.out == "x"
    view.form.reset()
    assert view.form.values()["s3ma_alpha"] == defaults.s3ma_alpha


def test_bad_data_file_names_the_problem(qtbot, fake_engine, tmp_path) -> None:
    bad = tmp_path / "bad.csv"
    bad.write_text("clip,text\nx.mp4,hello\n", encoding="utf-8")
    view = TrainingView(fake_engine)
    qtbot.addWidget(view)
    view.data_picker.set_path(bad)
    qtbot.waitUntil(lambda: "missing column" in view.data_picker.summary.text(), timeout=5000)
    assert "bad.csv" in view.data_picker.summary.text() and not view.generate_button.isEnabled()


def test_full_flow_with_the_fake_engine(qtbot, fake_engine, tmp_path, videos) -> None:
    window = MainWindow(fake_engine)
    qtbot.addWidget(window)
    view = window.training_view
    assert isinstance(view, TrainingView)
    data = _data_file(tmp_path, videos)
    view.load_defaults()
    qtbot.waitUntil(view.form.has_defaults, timeout=30000)
    view.data_picker.set_path(data)
    qtbot.waitUntil(lambda: view.generate_button.isEnabled(), timeout=5000)
    assert view.data_picker.summary.text().startswith("4 clips")

    # generate, then review: reject one row, edit another
    view.generate()
    qtbot.waitUntil(lambda: view.negatives.row_count() == 8, timeout=5000)
    assert view.negatives.counts() == (8, 8)
    view.negatives.set_accepted(1, False)
    view.negatives.edit_negative(2, "a cat walks a dog")
    view.negatives.table.selectRow(3)
    view.negatives.set_selected(False)
    assert view.negatives.counts() == (6, 8)
    assert "6 of 8" in view.negatives.count_label.text()

    # start: the accepted set is written and the config carries it
    fake_engine.train_gate = threading.Event()  # epoch 2 waits, so the test can cancel mid-run
    view.form.set_values({"objective": "ceclip", "epochs": 3})
    view.start()
    qtbot.waitUntil(lambda: len(view.loss_plot.points(LOSS_SERIES)) == 1, timeout=5000)
    config = fake_engine.train_calls[-1]
    assert config.objective == "ceclip" and config.epochs == 3 and not config.resume
    _, path = fake_engine.written_negatives[-1]
    assert Path(config.negatives) == path and path.is_file()
    from engine.train.negatives import read_negatives

    on_disk = read_negatives(path)
    assert sum(len(v) for item in on_disk.values() for v in item.negatives.values()) == 6
    assert any("a cat walks a dog" in v for item in on_disk.values() for v in item.negatives.values())
    edited_kind = view.negatives.table.item(2, 2).text()
    assert any(s == "edited" for item in on_disk.values() for s in item.sources.get(edited_kind, []))
    assert view.metric_plot.points(METRIC_SERIES["t2v_R1"]) == [(1.0, 20.0)]
    assert view.cancel_button.isEnabled() and not view.start_button.isEnabled() and not view.form.isEnabled()

    # cancel mid-run → resume continues the same folder with resume=True and grows the same plots
    view.cancel()
    qtbot.waitUntil(lambda: not view.train_runner.running, timeout=5000)
    assert "Cancelled" in view.run_status.text() and view.resume_button.isEnabled()
    assert not view.use_button.isEnabled()
    fake_engine.train_gate = None
    view.resume_button.click()
    qtbot.waitUntil(lambda: view.use_button.isEnabled(), timeout=5000)
    resumed = fake_engine.train_calls[-1]
    assert resumed.resume and resumed.out == config.out
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


def test_training_without_negatives_ignores_a_superseded_runs_reports(qtbot, fake_engine, tmp_path, videos) -> None:
    view = _ready_view(qtbot, fake_engine, _data_file(tmp_path, videos))
    fake_engine.train_gate = threading.Event()
    view.start()
    qtbot.waitUntil(lambda: len(view.loss_plot.points(LOSS_SERIES)) == 1, timeout=5000)
    stale = view._run
    view.cancel()
    qtbot.waitUntil(lambda: not view.train_runner.running, timeout=5000)
    view._relay.epoch.emit(stale - 1, None)  # an older run's late report is dropped before it is read
    assert len(view.loss_plot.points(LOSS_SERIES)) == 1
    assert fake_engine.train_calls[-1].negatives is None  # no negatives generated: trains without them


def test_the_window_opens_without_loading_the_trainer(qtbot, fake_engine) -> None:
    """The defaults load when the tab is first shown, on a worker: opening the window never waits for torch."""
    window = MainWindow(fake_engine)
    qtbot.addWidget(window)
    started = time.perf_counter()
    window.tabs.setCurrentWidget(window.training_view)
    window.show()
    assert time.perf_counter() - started < 2.0
    qtbot.waitUntil(window.training_view.form.has_defaults, timeout=30000)


@pytest.mark.slow
def test_real_engine_trains_a_tiny_model(qtbot, tmp_path, videos) -> None:
    """16 captioned clips, 1 epoch of the ``test-tiny`` model through ``RealEngine``; skipped past ~30 s."""
    from desktop.engine_api import RealEngine
    from engine.models.registry import create_encoder

    engine = RealEngine.open(tmp_path / "library")
    try:
        view = _ready_view(qtbot, engine, _data_file(tmp_path, videos, rows=16))
        view.form.set_values(
            {"objective": "infonce", "epochs": 1, "batch_size": 8, "n_frames": 2, "val_fraction": 0.25}
        )
        config = _cpu_config(view)
        started = time.perf_counter()
        view._launch(config)
        deadline = started + 30
        while view.train_runner.running and time.perf_counter() < deadline:
            qtbot.wait(100)
        if view.train_runner.running:
            view.cancel()
            qtbot.waitUntil(lambda: not view.train_runner.running, timeout=30000)
            pytest.skip("a 16-clip, 1-epoch run of test-tiny took over 30 s on this machine")
        assert view.use_button.isEnabled(), view.run_status.text()
        assert len(view.loss_plot.points(LOSS_SERIES)) == 1
        encoder = create_encoder(str(view._result.best_checkpoint), device="cpu")
        assert encoder.encode_texts(["a dog"]).shape[0] == 1
    finally:
        engine.close()


def _cpu_config(view: TrainingView):
    """The form's config for a CPU run into the engine's training folder, without TensorBoard."""
    out = view.engine.training_folder() / "run-test"
    return view.form.config(
        data=str(view._data), out=str(out), resume=False, device="cpu", tensorboard=False, model="test-tiny"
    )
