"""The trainer: config files, a one-epoch smoke run, resume, cancel, early stopping, every objective, files."""

from __future__ import annotations

import csv
import json
import math
import sys
import types
from pathlib import Path

import numpy as np
import pytest
import torch

from engine.jobs import CancelToken, JobCancelled
from engine.train.clips import NEGATIVE_TYPES, make_batch
from engine.train.model import load_model
from engine.train.objective import OBJECTIVES, ObjectiveSettings, model_for_objective, objective_loss
from engine.train.run_folder import read_run
from engine.train.synthetic import SyntheticSpec, make_splits, synthetic_backbone
from engine.train.trainer import TrainConfig, fit, latest_checkpoint, train

SPEC = SyntheticSpec(n_train=16, n_test=8)


@pytest.fixture(scope="module")
def clips():
    return make_splits(0, SPEC)


def _model(objective: str = "infonce", seed: int = 0):
    torch.manual_seed(seed)
    return model_for_objective(synthetic_backbone(), objective, n_concepts=8, emcl_k=4, seed=seed)


def _config(out: Path, **kw) -> TrainConfig:
    base = dict(
        out=str(out),
        model="synthetic",
        objective="infonce",
        epochs=1,
        batch_size=4,
        lr=1e-3,
        head_lr=1e-3,
        device="cpu",
        tensorboard=False,
        patience=0,
    )
    return TrainConfig(**{**base, **kw})


def _weights(model) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def test_config_file_toml_json_and_unknown_keys(tmp_path) -> None:
    toml = tmp_path / "run.toml"
    toml.write_text('[train]\ndata = "caps.jsonl"\nepochs = 3\nlr = 1\nobjective = "ceclip"\n', encoding="utf-8")
    config = TrainConfig.from_file(toml, batch_size=8)
    assert config.data == str(tmp_path / "caps.jsonl") and config.epochs == 3 and config.lr == 1.0
    assert config.batch_size == 8 and config.objective == "ceclip"
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"epochs": 2, "learning_rate": 0.1}), encoding="utf-8")
    with pytest.raises(ValueError, match=r"bad\.json: unknown setting 'learning_rate'"):
        TrainConfig.from_file(bad)
    wrong = tmp_path / "wrong.toml"
    wrong.write_text('epochs = "many"\n', encoding="utf-8")
    with pytest.raises(ValueError, match=r"wrong\.toml: setting 'epochs' must be int"):
        TrainConfig.from_file(wrong)
    with pytest.raises(ValueError, match="unknown objective"):
        TrainConfig(objective="magic")


def test_one_epoch_smoke_run_writes_checkpoint_best_and_logs(tmp_path, clips) -> None:
    train_clips, val_clips = clips
    model = _model()
    before = _weights(model)
    seen, ticks = [], []
    result = fit(
        model,
        train_clips,
        val_clips,
        _config(tmp_path / "run"),
        on_epoch=seen.append,
        progress=lambda f, m: ticks.append(f),
    )
    assert len(seen) == 1 and "t2v_R1" in seen[0].metrics and "comp_verb" in seen[0].metrics
    assert math.isfinite(seen[0].train_loss) and seen[0].best
    assert ticks == sorted(ticks) and ticks[-1] == 1.0
    assert result.checkpoint == tmp_path / "run" / "checkpoints" / "epoch-0001"
    assert result.best_checkpoint == tmp_path / "run" / "best"
    assert latest_checkpoint(tmp_path / "run") == result.checkpoint
    with open(tmp_path / "run" / "log.csv", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == 1 and rows[0]["epoch"] == "1" and "t2v_R5" in rows[0]
    changed = [k for k, v in _weights(model).items() if not torch.equal(v, before[k])]
    assert changed
    reloaded = load_model(result.best_checkpoint)
    assert all(torch.equal(v, reloaded.state_dict()[k]) for k, v in model.state_dict().items())


def test_logit_scale_is_clamped_after_each_step(tmp_path, clips) -> None:
    model = _model()
    with torch.no_grad():
        model.logit_scale.fill_(6.0)
    fit(model, clips[0], None, _config(tmp_path / "run"))
    assert float(model.logit_scale.detach()) <= math.log(100) + 1e-6


def test_cancel_saves_a_checkpoint_that_resumes_to_the_same_weights(tmp_path, clips) -> None:
    train_clips = clips[0]
    torch.manual_seed(0)
    straight = _model()
    fit(straight, train_clips, None, _config(tmp_path / "straight", epochs=2, grad_accum=2))

    token, steps = CancelToken(), []

    def progress(fraction: float, message: str) -> None:
        steps.append(message)
        if len(steps) == 3:  # mid-way through an accumulation group of the first epoch
            token.cancel()

    interrupted = _model()
    with pytest.raises(JobCancelled, match="resume from"):
        fit(
            interrupted,
            train_clips,
            None,
            _config(tmp_path / "cut", epochs=2, grad_accum=2),
            progress=progress,
            cancel=token,
        )
    saved = latest_checkpoint(tmp_path / "cut")
    assert saved is not None and saved.name == "step-0001-000002"  # replays the half-accumulated step
    resumed = _model(seed=5)  # different initial weights: everything must come from the checkpoint
    result = fit(resumed, train_clips, None, _config(tmp_path / "cut", epochs=2, grad_accum=2))
    assert [h.epoch for h in result.history] == [1, 2]
    for key, value in straight.state_dict().items():
        assert torch.allclose(value, resumed.state_dict()[key], atol=1e-5), key
    assert not list((tmp_path / "cut" / "checkpoints").glob("step-*"))


def test_resume_continues_where_the_last_run_stopped(tmp_path, clips) -> None:
    fit(_model(), clips[0], None, _config(tmp_path / "run", epochs=1))
    result = fit(_model(), clips[0], None, _config(tmp_path / "run", epochs=3, keep_last=2))
    assert [h.epoch for h in result.history] == [1, 2, 3]
    kept = sorted(p.name for p in (tmp_path / "run" / "checkpoints").glob("epoch-*"))
    assert kept == ["epoch-0002", "epoch-0003"]
    snapshot = read_run(tmp_path / "run")  # what the Training tab shows after a restart, without training
    assert snapshot is not None and snapshot.checkpoint.name == "epoch-0003"
    assert snapshot.training["epochs"] == 3 and snapshot.state["epoch"] == 3
    assert [h["epoch"] for h in snapshot.state["history"]] == [1, 2, 3]
    assert read_run(tmp_path / "nothing-here") is None
    fresh = fit(_model(), clips[0], None, _config(tmp_path / "run", epochs=1, resume=False))
    assert [h.epoch for h in fresh.history] == [1]


def test_early_stopping_on_validation_r1(tmp_path, clips) -> None:
    config = _config(tmp_path / "run", epochs=6, patience=2, lr=0.0, head_lr=0.0, warmup=0.0)
    result = fit(_model(), clips[0], clips[1], config)
    assert result.stopped_early and len(result.history) == 3  # epoch 1 sets the best; 2 and 3 do not beat it
    assert result.best_checkpoint.name == "best"


@pytest.mark.parametrize("objective", OBJECTIVES)
def test_every_objective_gives_a_finite_loss_and_gradients(objective, clips) -> None:
    model = _model(objective)
    batch = make_batch(clips[0], list(range(6)), seed=0, epoch=0)
    out = objective_loss(model, batch, ObjectiveSettings(name=objective))
    assert torch.isfinite(out["total"])
    out["total"].backward()
    assert model.head.inp.weight.grad is not None and torch.isfinite(model.head.inp.weight.grad).all()
    if objective == "ceclip":
        assert model.ceclip_theta.abs().sum() > 0  # the thresholds moved for the next step


def test_batches_draw_fresh_negatives_each_epoch_and_flag_duplicates(clips) -> None:
    train_clips = clips[0]
    a = make_batch(train_clips, list(range(16)), seed=0, epoch=0)
    b = make_batch(train_clips, list(range(16)), seed=0, epoch=1)
    again = make_batch(train_clips, list(range(16)), seed=0, epoch=0)
    assert a.negatives == again.negatives and a.negatives != b.negatives
    assert (~a.neg_mask[:, 2]).sum() == sum("next to" not in c for c in a.captions)  # no object, no object negative
    # a relation swap wherever the clip has one: at least its path ("from left to right"), unless the swap would
    # name a held-out combination (the synthetic split keeps those out of training)
    assert a.neg_mask[:, 4].tolist() == [bool(train_clips.negatives(i)["relation"]) for i in range(16)]
    assert a.neg_mask[:, 4].sum() >= 12

    class Dup:
        def __len__(self):
            return 2

        def caption(self, i):
            return ["a red circle", "a blue circle"][i]

        def frames(self, i):
            return np.zeros((8, 32, 32, 3), np.uint8)

        def negatives(self, i):
            return {"attribute": ["A blue  circle."]} if i == 0 else {}

        def positives(self, i):
            return []

    dup = make_batch(Dup(), [0, 1], seed=0, epoch=0)
    assert dup.drop.tolist() == [[False, False, False, True, False], [False] * 5]


def test_batch_columns_give_each_objective_its_papers_negatives(clips) -> None:
    """§1 takes the components (+ relation), CE-CLIP [relation, attribute, entity, action] with entity drawn per
    epoch from subject/object, falling back to whichever exists."""
    n = len(clips[0])
    batch = make_batch(clips[0], list(range(n)), seed=0, epoch=0)
    negs, mask, drop = batch.columns(("relation", "attribute", "entity", "verb"))
    assert mask.shape == drop.shape == (n, 4)
    for row in range(n):
        full = dict(zip(NEGATIVE_TYPES, batch.negatives[row], strict=True))
        assert negs[row][0] == full["relation"] and negs[row][1] == full["attribute"] and negs[row][3] == full["verb"]
        if not full["object"]:
            assert negs[row][2] == full["subject"]
        else:
            assert negs[row][2] == (full["object"] if bool(batch.entity_object[row]) else full["subject"])
    assert 0 < int(batch.entity_object.sum()) < n  # both kinds of entity negative are used


def test_train_from_files_with_an_open_clip_model(tmp_path, monkeypatch) -> None:
    """``train(config)`` reads captions and negatives through engine.train.data/negatives (stand-ins here)."""

    class Item(types.SimpleNamespace):
        pass

    class FrameCache:
        def frames(self, item, n_frames=8, size=224):
            rng = np.random.default_rng(len(item.caption))
            return rng.integers(0, 255, (n_frames, size, size, 3), dtype=np.uint8)

    captions = ["a dog runs", "a cat sleeps", "a car drives", "a bird sings", "two people talk", "rain falls"]
    data = types.ModuleType("engine.train.data")
    data.load_training_data = lambda path: [
        Item(video=Path(f"{i}.mp4"), caption=c, start=None, end=None) for i, c in enumerate(captions)
    ]
    data.split_items = lambda items, val_fraction=0.1, seed=0: (items[:4], items[4:])
    data.FrameCache = FrameCache
    negs = types.ModuleType("engine.train.negatives")
    entry = types.SimpleNamespace(negatives={"subject": ["a cat runs"], "verb": ["a dog sleeps"]}, positives=[])
    val_entry = types.SimpleNamespace(negatives={"subject": ["snow falls"]}, positives=["it rains"])
    negs.read_negatives = lambda path: {"a dog runs": entry, "rain falls": val_entry}
    monkeypatch.setitem(sys.modules, "engine.train.data", data)
    monkeypatch.setitem(sys.modules, "engine.train.negatives", negs)
    config = TrainConfig(
        data="caps.jsonl",
        negatives="negs.jsonl",
        out=str(tmp_path / "run"),
        model="test-tiny",
        objective="component",
        epochs=1,
        batch_size=2,
        n_frames=4,
        device="cpu",
        tensorboard=False,
    )
    result = train(config)
    assert len(result.history) == 1 and "comp_subject" in result.history[0].metrics
    from engine.models.registry import create_encoder

    encoder = create_encoder(str(result.best_checkpoint), device="cpu")
    assert encoder.encode_texts(["a dog"]).shape == (1, 32)


def test_train_cli_parses_config_and_flags(tmp_path, monkeypatch) -> None:
    from engine.cli import train as cli_train
    from tests.engine.parsers import train_cli

    parser, handlers = train_cli()
    cfg = tmp_path / "run.toml"
    cfg.write_text('data = "caps.jsonl"\nepochs = 4\n', encoding="utf-8")
    args = parser.parse_args(["train", str(cfg), "--epochs", "2", "--freeze", "vision", "--no-resume"])
    config = cli_train._config(args)
    assert config.epochs == 2 and config.freeze_vision and not config.freeze_text and config.resume is False
    assert config.data == str(tmp_path / "caps.jsonl")
    bad = parser.parse_args(["--no-progress", "train", "--epochs", "0"])
    assert handlers["train"](bad) == 2


def _scripted_validation(monkeypatch, figures: list[dict[str, float]]) -> None:
    """Validation that returns ``figures[epoch]`` (each epoch's R@1, R@5, R@10, mean rank), whatever the model."""
    import engine.train.evaluate as evaluate_module

    calls = iter(figures)
    monkeypatch.setattr(evaluate_module, "evaluate", lambda *a, **k: dict(next(calls)))


def _figures(r1: float, r5: float = 50.0, r10: float = 80.0, mnr: float = 5.0) -> dict[str, float]:
    return {"t2v_R1": r1, "t2v_R5": r5, "t2v_R10": r10, "t2v_MnR": mnr}


def _best_epoch(out: Path) -> int:
    return int(json.loads((out / "best" / "config.json").read_text(encoding="utf-8"))["epoch"])


def test_best_breaks_r1_ties_by_the_other_figures_then_by_the_later_epoch(tmp_path, clips, monkeypatch) -> None:
    # R@1 ties at every epoch, as duplicate captions in validation make it do: the mean rank decides
    _scripted_validation(monkeypatch, [_figures(10, mnr=9), _figures(10, mnr=4), _figures(10, mnr=6)])
    result = fit(_model(), clips[0], clips[1], _config(tmp_path / "a", epochs=3))
    assert [h.best for h in result.history] == [True, True, False]
    assert _best_epoch(tmp_path / "a") == 2 and result.best_metric == 10
    # every figure ties: the later epoch is best (it trained longer), but patience sees no improvement and stops
    _scripted_validation(monkeypatch, [_figures(10)] * 6)
    result = fit(_model(), clips[0], clips[1], _config(tmp_path / "b", epochs=6, patience=2))
    assert result.stopped_early and [h.best for h in result.history] == [True, True, True]
    assert _best_epoch(tmp_path / "b") == 3
    # a higher R@1 wins over any mean rank; a worse later epoch never replaces it
    _scripted_validation(monkeypatch, [_figures(10, mnr=2), _figures(12, mnr=9), _figures(11, mnr=1)])
    result = fit(_model(), clips[0], clips[1], _config(tmp_path / "c", epochs=3))
    assert _best_epoch(tmp_path / "c") == 2 and result.best_metric == 12
