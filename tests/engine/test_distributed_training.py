"""DDP training: two gloo processes on the CPU train exactly like one process over the same global batch.

One ``torchrun --standalone --nproc_per_node=2`` run (this file is its worker, see ``_worker``) trains the tiny
synthetic model with several objectives and records, per step and per rank, the loss, CE-CLIP's θ and EMCL's M,
the gradients of one DDP step and the final weights; the tests redo the same in this process with one process
and compare. A contrastive loss over the global batch is the point: each rank encodes half the clips, yet every
loss must see all of them, and the gradients must come out as a single process's (which a test checks directly,
since AdamW would hide a gradient off by a constant factor).
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from engine.jobs import CancelToken, JobCancelled
from engine.train import distributed, trainer
from engine.train.clips import make_batch
from engine.train.distributed import Topology
from engine.train.objective import ObjectiveSettings, model_for_objective, objective_loss
from engine.train.synthetic import SyntheticSpec, make_splits, synthetic_backbone
from engine.train.trainer import TrainConfig, fit

SPEC = SyntheticSpec(n_train=17, n_test=8)  # batches of 6: 6, 6, 5 (the last split 3 + 2 across two ranks)
OBJECTIVES = ("infonce", "component", "ceclip", "emcl", "component_ie", "s3ma")
GRAD_BATCH = list(range(6))
TIMEOUT_S = 300


def _model(objective: str, seed: int = 0) -> Any:
    torch.manual_seed(seed)
    return model_for_objective(synthetic_backbone(), objective, n_concepts=8, emcl_k=4, seed=seed)


def _config(out: Path, objective: str, **kw: Any) -> TrainConfig:
    base: dict[str, Any] = dict(
        out=str(out),
        model="synthetic",
        objective=objective,
        epochs=2,
        batch_size=6,
        grad_accum=2 if objective == "component" else 1,  # accumulation: DDP's no_sync on the first micro-batch
        lr=1e-3,
        head_lr=1e-3,
        device="cpu",
        tensorboard=False,
        patience=1 if objective == "infonce" else 0,
        eval_batch_size=4,
    )
    return TrainConfig(**{**base, **kw})


@contextlib.contextmanager
def _recording(after: Callable[[int], None] | None = None) -> Iterator[list[dict[str, Any]]]:
    """Record every training forward of ``fit`` (loss, batch share, θ and M after the update)."""
    calls: list[dict[str, Any]] = []
    original = trainer.objective_loss

    def wrapper(model: Any, batch: Any, settings: ObjectiveSettings) -> dict[str, torch.Tensor]:
        out = original(model, batch, settings)
        calls.append(
            {
                "loss": float(out["total"].detach()),
                "rows": batch.size,
                "theta": model.ceclip_theta.detach().clone(),
                "m": None if model.emcl is None else model.emcl.m.detach().clone(),
            }
        )
        if after is not None:
            after(len(calls))
        return out

    trainer.objective_loss = wrapper
    try:
        yield calls
    finally:
        trainer.objective_loss = original


def _weights(model: Any) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def _grads(objective: str, clips: Any, topology: Topology) -> dict[str, torch.Tensor]:
    """The gradients of one training step on GRAD_BATCH, through the trainer's own DDP wrapper and sharding."""
    model = _model(objective)
    model.train()
    settings = ObjectiveSettings(name=objective)
    runner = distributed.data_parallel(model, lambda m, b: objective_loss(m, b, settings))
    batch = distributed.local_batch(clips, GRAD_BATCH, seed=0, epoch=0, topology=topology)
    runner(batch)["total"].backward()
    return {n: p.grad.detach().clone() for n, p in model.named_parameters() if p.grad is not None}


# --- the worker (run by torchrun) ---------------------------------------------------------------------------------


def _worker(out: Path) -> None:
    torch.set_num_threads(1)
    with distributed.session("cpu") as topology:
        assert torch.distributed.is_initialized() and topology.world_size == 2
        train_clips, val_clips = make_splits(0, SPEC)
        record: dict[str, Any] = {"rank": topology.rank, "grads": {}, "runs": {}}
        for objective in OBJECTIVES:
            record["grads"][objective] = _grads(objective, train_clips, topology)
        model = _model("emcl")  # buffers that drifted on one rank are rank 0's again after the next forward
        runner = distributed.data_parallel(model, lambda m, b: objective_loss(m, b, ObjectiveSettings(name="emcl")))
        if topology.rank == 1:
            model.emcl.m.fill_(7.0)
            model.ceclip_theta.fill_(3.0)
        runner(distributed.local_batch(train_clips, GRAD_BATCH, seed=0, epoch=0, topology=topology))["total"].backward()
        record["synced"] = (model.emcl.m.clone(), model.ceclip_theta.clone())
        for objective in OBJECTIVES:
            model = _model(objective)
            val = val_clips if objective == "infonce" else None
            with _recording() as calls:
                result = fit(model, train_clips, val, _config(out / objective, objective))
            history = [(h.epoch, h.train_loss, h.metrics, h.best) for h in result.history]
            record["runs"][objective] = {
                "calls": calls,
                "weights": _weights(model),
                "history": history,
                "stopped_early": result.stopped_early,
                "checkpoint": str(result.checkpoint),
            }
        token = CancelToken()  # Ctrl-C on rank 1 only, during the second forward
        cancel = token if topology.rank == 1 else None
        try:
            with _recording(lambda n: token.cancel() if n == 2 else None):
                fit(_model("ceclip"), train_clips, None, _config(out / "cut", "ceclip"), cancel=cancel)
            record["cancelled"] = None
        except JobCancelled as exc:
            record["cancelled"] = str(exc)
        resumed = _model("ceclip", seed=5)  # different weights: everything must come from the checkpoint
        fit(resumed, train_clips, None, _config(out / "cut", "ceclip"))
        record["resumed"] = _weights(resumed)
        try:
            fit(_model("infonce"), train_clips, None, _config(out / "odd", "infonce", batch_size=5))
        except ValueError as exc:
            record["odd_batch"] = str(exc)
        torch.save(record, out / f"rank{topology.rank}.pt")


# --- the tests ----------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def ranks(tmp_path_factory: pytest.TempPathFactory) -> list[dict[str, Any]]:
    """Run the worker under ``python -m torch.distributed.run --standalone --nproc_per_node=2``; both records."""
    out = tmp_path_factory.mktemp("ddp")
    env = {
        **os.environ,
        "OMP_NUM_THREADS": "1",
        "SCENEFIND_HOME": str(out / "home"),
        "SCENEFIND_CACHE": str(out / "cache"),
    }
    for name in ("WORLD_SIZE", "RANK", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT"):
        env.pop(name, None)
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2", __file__, str(out)]
    proc = subprocess.Popen(
        command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True
    )
    try:
        log, _ = proc.communicate(timeout=TIMEOUT_S)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        log, _ = proc.communicate()
        pytest.fail(f"the 2-process run took more than {TIMEOUT_S} s:\n{log[-4000:]}")
    assert proc.returncode == 0, f"the 2-process run failed ({proc.returncode}):\n{log[-6000:]}"
    return [torch.load(out / f"rank{r}.pt", weights_only=True) for r in (0, 1)]


@pytest.fixture(scope="module")
def clips() -> Any:
    torch.set_num_threads(1)
    return make_splits(0, SPEC)


def _close(a: torch.Tensor, b: torch.Tensor, atol: float = 1e-5) -> bool:
    return torch.allclose(a, b, atol=atol, rtol=1e-4)


@pytest.mark.slow
@pytest.mark.parametrize("objective", OBJECTIVES)
def test_ddp_gradients_equal_the_single_process_gradient(ranks, clips, objective) -> None:
    """all-gather with gradients + DDP's averaging = the gradient of the global-batch loss in one process."""
    model = _model(objective)
    model.train()
    objective_loss(model, make_batch(clips[0], GRAD_BATCH, seed=0, epoch=0), ObjectiveSettings(name=objective))[
        "total"
    ].backward()
    single = {n: p.grad for n, p in model.named_parameters() if p.grad is not None}
    for record in ranks:
        grads = record["grads"][objective]
        assert set(grads) == set(single)
        for name, grad in single.items():
            assert _close(grads[name], grad, atol=1e-6), (record["rank"], name, (grads[name] - grad).abs().max())
    assert any(g.abs().max() > 1e-4 for g in single.values())  # the comparison is not between zeros
    assert not torch.distributed.is_initialized()  # one process: nothing distributed was set up here


@pytest.mark.slow
@pytest.mark.parametrize("objective", OBJECTIVES)
def test_ddp_training_matches_one_process_step_by_step(ranks, clips, objective, tmp_path) -> None:
    """Per-step losses, θ, M and the final weights of 2 ranks equal one process over the same global batches."""
    model = _model(objective)
    val = clips[1] if objective == "infonce" else None
    with _recording() as single:
        result = fit(model, clips[0], val, _config(tmp_path / objective, objective))
    runs = [r["runs"][objective] for r in ranks]
    assert len(single) == 6 and all(len(run["calls"]) == len(single) for run in runs)
    for step, one in enumerate(single):
        rank0, rank1 = (run["calls"][step] for run in runs)
        assert rank0["rows"] + rank1["rows"] == one["rows"]  # the shares make up the global batch
        assert rank0["loss"] == rank1["loss"]  # every rank computes the same global loss
        assert abs(rank0["loss"] - one["loss"]) < 1e-5 * max(1.0, abs(one["loss"])), (step, rank0, one)
        assert torch.equal(rank0["theta"], rank1["theta"]) and _close(rank0["theta"], one["theta"])
        if one["m"] is not None:
            assert torch.equal(rank0["m"], rank1["m"]) and _close(rank0["m"], one["m"])
    assert [c["rows"] for c in runs[1]["calls"][:3]] == [3, 3, 2]  # the last batch of 5 splits 3 + 2
    if objective == "ceclip":
        assert single[1]["theta"].abs().sum() > 0  # θ really moved
    if objective == "emcl":
        assert not torch.equal(single[0]["m"], single[-1]["m"])  # M really moved
    for name, value in _weights(model).items():
        assert torch.equal(runs[0]["weights"][name], runs[1]["weights"][name]), name
        assert _close(runs[0]["weights"][name], value), (name, (runs[0]["weights"][name] - value).abs().max())
    ours = [(h.epoch, h.metrics, h.best) for h in result.history]
    for run in runs:
        assert [(e, m, b) for e, _, m, b in run["history"]] == ours  # rank 0's evaluation decides for all
        assert run["stopped_early"] == result.stopped_early
        assert Path(run["checkpoint"]).is_dir() and Path(run["checkpoint"]).name == result.checkpoint.name
    if objective == "infonce":
        assert "t2v_R1" in ours[0][1]


@pytest.mark.slow
def test_ddp_keeps_emcl_m_and_ceclip_theta_identical_across_ranks(ranks) -> None:
    (m0, theta0), (m1, theta1) = (r["synced"] for r in ranks)
    assert torch.equal(m0, m1) and torch.equal(theta0, theta1)  # rank 1's drifted M and θ were replaced
    assert not theta1.any() and m1.abs().max() < 2  # by rank 0's (θ = 0, M ≈ ±1), not the other way round


@pytest.mark.slow
def test_ddp_cancel_on_one_rank_stops_both_and_resumes_exactly(ranks) -> None:
    messages = [r["cancelled"] for r in ranks]
    assert messages[0] is not None and messages[0] == messages[1]  # both ranks stopped, at the same step
    assert messages[0].endswith("step-0001-000002")
    for record in ranks:
        straight = record["runs"]["ceclip"]["weights"]
        for name, value in record["resumed"].items():
            assert torch.allclose(value, straight[name], atol=1e-6), name
    folder = Path(messages[0].rpartition(" ")[2])
    assert not folder.exists()  # the resumed run finished and pruned its step checkpoint


@pytest.mark.slow
def test_ddp_batch_size_must_divide_among_processes(ranks) -> None:
    for record in ranks:
        assert (
            "batch_size 5 is the global batch and must be divisible by the 2 training processes"
            in (record["odd_batch"])
        )


def test_shares_make_up_the_global_batch_in_order() -> None:
    indices = [9, 4, 7, 1, 3]
    shares = [distributed.share(indices, Topology(rank, 2)) for rank in (0, 1)]
    assert shares == [[9, 4, 7], [1, 3]] and shares[0] + shares[1] == indices
    assert distributed.shard_sizes(8, 4) == [2, 2, 2, 2]
    assert distributed.share(indices, Topology()) == indices
    assert distributed.batches_per_epoch(17, 6, 1) == 3
    assert distributed.batches_per_epoch(17, 6, 2) == 3  # last batch 5 ≥ 2 processes
    assert distributed.batches_per_epoch(13, 6, 2) == 2  # a last batch of 1 cannot feed 2 processes
    with pytest.raises(ValueError, match="cannot feed 4 processes"):
        distributed.batches_per_epoch(3, 4, 4)
    distributed.check_batch_size(6, Topology(0, 3))
    with pytest.raises(
        ValueError, match=r"batch_size 7 .* divisible by the 2 training processes .*; use e\.g\. 6 or 8"
    ):
        distributed.check_batch_size(7, Topology(0, 2))


def test_duplicate_negatives_are_flagged_against_the_global_batch() -> None:
    """findings.md #3: a negative equal to *any* positive of the global batch, even one on another rank."""

    class Dup:
        captions = ("a red circle", "a green square", "a blue circle", "a cyan cross")

        def __len__(self) -> int:
            return 4

        def caption(self, i: int) -> str:
            return self.captions[i]

        def frames(self, i: int) -> np.ndarray:
            return np.zeros((2, 8, 8, 3), np.uint8)

        def negatives(self, i: int) -> dict[str, list[str]]:
            return {"attribute": ["A blue circle."]} if i == 0 else {}

        def positives(self, i: int) -> list[str]:
            return []

    single = make_batch(Dup(), [0, 1, 2, 3], seed=0, epoch=0)
    local = distributed.local_batch(Dup(), [0, 1, 2, 3], seed=0, epoch=0, topology=Topology(0, 2))
    assert local.size == 2 and bool(single.drop[0, 3])
    assert torch.equal(local.drop, single.drop[:2])  # "a blue circle" sits in rank 1's share
    assert not make_batch(Dup(), [0, 1], seed=0, epoch=0).drop.any()  # the share alone would miss it


def test_one_process_initialises_nothing(monkeypatch) -> None:
    for name in ("WORLD_SIZE", "RANK", "LOCAL_RANK"):
        monkeypatch.delenv(name, raising=False)
    with distributed.session("cpu") as topology:
        assert topology == Topology() and not torch.distributed.is_initialized()
        x = torch.ones(3, 2, requires_grad=True)
        assert distributed.global_batch(x)[0] is x
        assert distributed.any_rank(True) and not distributed.any_rank(False)
        assert distributed.broadcast({"a": 1}) == {"a": 1}
    monkeypatch.setenv("WORLD_SIZE", "1")
    with distributed.session("cpu") as topology:
        assert not topology.distributed and not torch.distributed.is_initialized()
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setenv("RANK", "two")
    with pytest.raises(ValueError, match="RANK='two' is not a non-negative integer"):
        distributed.launched_topology()


def test_train_cli_nproc_relaunches_the_same_command(tmp_path, monkeypatch) -> None:
    from engine.cli import train as cli_train
    from tests.engine.parsers import train_cli

    parser, handlers = train_cli()
    cfg = tmp_path / "run.toml"
    cfg.write_text('data = "caps.jsonl"\nbatch_size = 8\n', encoding="utf-8")
    argv = ["--model", "test-tiny", "train", str(cfg), "--epochs", "2", "--freeze", "text", "--nproc", "2", "--json"]
    args = parser.parse_args(argv)
    assert cli_train._worker_argv(args) == [
        "--model",
        "test-tiny",
        "train",
        str(cfg),
        "--epochs",
        "2",
        "--freeze",
        "text",
        "--json",
    ]
    launched: list[tuple[int, list[str]]] = []
    monkeypatch.setattr(distributed, "launch", lambda n, a: launched.append((n, a)) or [130, 130])
    assert handlers["train"](args) == cli_train.EXIT_CANCELLED and launched[0][0] == 2
    odd = parser.parse_args(["train", str(cfg), "--nproc", "3"])
    assert handlers["train"](odd) == cli_train.EXIT_ERROR and len(launched) == 1  # 8 does not split into 3


if __name__ == "__main__":  # the torchrun worker
    _worker(Path(sys.argv[1]))
