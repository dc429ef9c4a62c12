"""``scenefind train``: fine-tune a video-text model on captioned clips with hard negatives, resumably.

Why it looks like this: training runs for hours on a desktop that may be closed at any time, so every epoch ends
in an atomic checkpoint (a folder written aside and renamed in, then ``latest.json`` swapped), a cancel between
steps saves a checkpoint that resumes at the same step (the epoch's order and negatives are pure functions of
seed and epoch), and the whole state (weights, heads, EMCL ``M``, CE-CLIP θ, optimiser, schedule, history)
travels in that folder. Mixed precision runs on CUDA only; the logit scale is clamped to ≤ 100 after every step;
validation retrieval drives early stopping and the ``best`` copy (:func:`selection_key` says how). Logs:
``log.csv`` always, TensorBoard when installed.

Several processes (``torchrun --nproc_per_node=N -m engine.cli train CONFIG``, or ``scenefind train --nproc N``) train
one model with DDP: ``batch_size`` is then the global batch, each rank encodes its contiguous share and the losses
see the all-gathered global batch (``engine.train.distributed`` says how, and why the gradients equal a single
process's). Rank 0 evaluates and writes checkpoints, logs and TensorBoard while the others wait; every rank resumes
from the same checkpoint; a cancel on any rank stops all at the same step, and rank 0 saves the checkpoint.

:func:`train` reads files (``engine.train.data``, ``engine.train.negatives``); :func:`fit` is the loop itself and
takes any :class:`~engine.train.clips.ClipSet`, which is how the synthetic benchmark reuses it.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from engine.jobs import CancelToken, JobCancelled, ProgressCallback, report, wrap_progress
from engine.train import distributed
from engine.train.clips import ClipSet, epoch_order
from engine.train.config import TrainConfig
from engine.train.losses import clamp_logit_scale_
from engine.train.model import VideoTextModel
from engine.train.objective import SCORE_MODE, model_for_objective, objective_loss
from engine.train.run_folder import (
    LATEST_NAME,
    STATE_NAME,
    append_csv,
    calibration_captions,
    copy_best,
    latest_checkpoint,
    prune,
    restore,
    tensorboard_writer,
    write_checkpoint,
)

log = logging.getLogger(__name__)
VAL_METRIC = "t2v_R1"  # the figure shown as the best epoch's (the first of SELECTION's keys)
# The ``best`` epoch: validation R@1, then R@5, R@10 and the mean rank (lower is better) when they tie. R@1 alone
# ties easily: a small validation set has few possible values, and captions that occur twice cap it (of two clips
# with one caption only one can be first), so it stops moving while the model still improves.
SELECTION: tuple[tuple[str, float], ...] = (("t2v_R1", 1.0), ("t2v_R5", 1.0), ("t2v_R10", 1.0), ("t2v_MnR", -1.0))


@dataclass
class EpochReport:
    """What one finished epoch did; handed to ``on_epoch`` and written to ``log.csv``."""

    epoch: int
    step: int
    train_loss: float
    lr: float
    logit_scale: float
    seconds: float
    metrics: dict[str, float]
    checkpoint: str
    best: bool


@dataclass
class TrainResult:
    checkpoint: Path  # the last checkpoint folder
    best_checkpoint: Path  # out/best (the last one when there is no validation set)
    best_metric: float | None
    history: list[EpochReport] = field(default_factory=list)
    stopped_early: bool = False


@dataclass
class _State:
    epoch: int = 0
    micro: int = 0  # next micro-batch within the epoch
    step: int = 0  # optimiser steps so far
    best: float | None = None  # VAL_METRIC of the best epoch
    best_key: list[float] | None = None  # its selection_key (None in checkpoints written before there was one)
    bad_epochs: int = 0
    history: list[dict[str, Any]] = field(default_factory=list)


def selection_key(metrics: dict[str, float]) -> list[float] | None:
    """How epochs compare for ``best`` (larger is better, compared in order): SELECTION's figures, a lower-is-better
    one negated; None without validation figures. Missing or NaN figures count as the worst."""
    if metrics.get(VAL_METRIC) is None:
        return None
    values = [sign * float(metrics.get(name, math.nan)) for name, sign in SELECTION]
    return [-math.inf if math.isnan(v) else v for v in values]


def _judge(state: _State, key: list[float] | None, score: float | None) -> tuple[bool, bool]:
    """(this epoch becomes ``best``, this epoch improved): ``best`` goes to the later epoch on a full tie (it
    trained longer to the same figures), while patience counts only strict improvements, so a plateau still
    stops early."""
    if key is None:
        return False, False
    if state.best_key is None and state.best is not None:  # resumed from a checkpoint that kept R@1 alone
        state.best_key = [state.best, *(-math.inf for _ in SELECTION[1:])]
    better = state.best_key is None or key > state.best_key
    best = better or key == state.best_key
    if best:
        state.best, state.best_key = score, key
    return best, better


# --- model and optimiser ------------------------------------------------------------------------------------------


def model_for(config: TrainConfig) -> VideoTextModel:
    """The model ``config`` asks for: a training checkpoint folder (or run folder) is resumed whole,
    ``scratch:NAME`` gets fresh from-scratch towers drawn from the seed, anything else is an open_clip model."""
    from engine.models.scratch import scratch_backbone
    from engine.train.model import is_model_folder, load_model, open_clip_backbone

    if is_model_folder(config.model):
        return load_model(config.model)
    scratch = config.model.startswith("scratch:")
    backbone = scratch_backbone(config.model, seed=config.seed) if scratch else open_clip_backbone(config.model)
    return model_for_objective(
        backbone,
        config.objective,
        n_frames=config.n_frames,
        temporal_layers=config.temporal_layers,
        motion=config.motion,
        concept_head=config.concept_head,
        n_concepts=config.n_concepts,
        emcl_k=config.emcl_k,
        seed=config.seed,
    )


def _optimizer(model: VideoTextModel, config: TrainConfig) -> torch.optim.Optimizer:
    heads = model.head_parameter_ids()
    groups: dict[tuple[bool, bool], list[torch.nn.Parameter]] = {}
    for name, p in model.named_parameters():
        if p.requires_grad:
            no_decay = p.ndim < 2 or "logit_scale" in name or "pos" in name.split(".")[-1]
            groups.setdefault((id(p) in heads, no_decay), []).append(p)
    params = [
        {"params": ps, "lr": config.head_lr if head else config.lr, "weight_decay": 0.0 if nd else config.weight_decay}
        for (head, nd), ps in sorted(groups.items())
    ]
    if not params:
        raise ValueError("nothing to train: every parameter is frozen")
    return torch.optim.AdamW(params, betas=(0.9, 0.98), eps=1e-6)


def _schedule(optimizer: torch.optim.Optimizer, total: int, warmup: float) -> torch.optim.lr_scheduler.LambdaLR:
    warm = max(1, round(warmup * total)) if warmup > 0 else 0

    def factor(step: int) -> float:
        if step < warm:
            return (step + 1) / warm
        progress = (step - warm) / max(1, total - warm)
        return 0.5 * (1.0 + math.cos(math.pi * min(1.0, progress)))

    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)


# --- the loop -----------------------------------------------------------------------------------------------------


def _idle_parameters(model: VideoTextModel, objective: str) -> bool:
    """Whether a trainable parameter may get no gradient from ``objective`` (DDP must then look for such each step):
    a concept bank outside S3MA, an importance estimator outside ``component_ie``, SigLIP's ``logit_bias``."""
    idle = [p for n, p in model.backbone.named_parameters() if n.endswith("logit_bias")]
    if model.concepts is not None and SCORE_MODE[objective] != "s3ma":
        idle += list(model.concepts.parameters())
    if model.importance is not None and objective != "component_ie":
        idle += list(model.importance.parameters())
    return any(p.requires_grad for p in idle)


def fit(
    model: VideoTextModel,
    train_clips: ClipSet,
    val_clips: ClipSet | None,
    config: TrainConfig,
    *,
    progress: ProgressCallback | None = None,
    cancel: CancelToken | None = None,
    on_epoch: Callable[[EpochReport], None] | None = None,
) -> TrainResult:
    """Train ``model`` on ``train_clips`` per ``config`` into ``config.out``; resumes from its latest checkpoint.

    Raises ``JobCancelled`` after saving a resumable checkpoint when ``cancel`` fires between steps. In an
    initialised process group (:func:`engine.train.distributed.session`) every rank calls this with the same
    arguments; ``progress`` and ``on_epoch`` are then called on rank 0 only.
    """
    from engine.train.evaluate import evaluate

    if len(train_clips) == 0:
        raise ValueError("no training clips")
    topology = distributed.current()
    distributed.check_batch_size(config.batch_size, topology)
    main = topology.is_main
    if not main:
        progress, on_epoch = None, None
    out = Path(config.out).expanduser()
    out.mkdir(parents=True, exist_ok=True)
    device = distributed.device_for(config.device, topology)
    model.to(device)
    model.configure_trainable(
        freeze_vision=config.freeze_vision, freeze_text=config.freeze_text, heads_only=config.heads_only
    )
    settings = config.objective_settings()
    optimizer = _optimizer(model, config)
    micro_per_epoch = distributed.batches_per_epoch(len(train_clips), config.batch_size, topology.world_size)
    steps_per_epoch = math.ceil(micro_per_epoch / config.grad_accum)
    total = steps_per_epoch * config.epochs
    scheduler = _schedule(optimizer, total, config.warmup)
    amp = config.amp and device.startswith("cuda")
    scaler = torch.amp.GradScaler("cuda", enabled=amp)
    state = _State()
    calibration = calibration_captions([train_clips.caption(i) for i in range(len(train_clips))])
    previous = latest_checkpoint(out) if config.resume else None
    if previous is not None:
        saved = restore(model, previous)
        optimizer.load_state_dict(saved["optimizer"])
        scheduler.load_state_dict(saved["scheduler"])
        scaler.load_state_dict(saved["scaler"])
        state = _State(**saved["state"])
        model.to(device)
        log.info("resuming from %s (epoch %d, micro-batch %d)", previous, state.epoch, state.micro)
    runner = distributed.data_parallel(
        model,
        lambda m, batch: objective_loss(m, batch, settings),
        find_unused=_idle_parameters(model, config.objective),
    )
    writer = tensorboard_writer(out, config.tensorboard) if main else None
    last = previous or out
    model.train()

    def snapshot(name: str) -> Path:
        """Rank 0 writes the checkpoint; every rank returns its folder once it exists."""
        folder = out / "checkpoints" / name
        if main:
            trainer = {
                "optimizer": optimizer.state_dict(),
                "scheduler": scheduler.state_dict(),
                "scaler": scaler.state_dict(),
            }
            folder = write_checkpoint(
                model, out, name, dataclasses.asdict(state), trainer, dataclasses.asdict(config), calibration
            )
        distributed.barrier()
        return folder

    try:
        while state.epoch < config.epochs:
            epoch, started = state.epoch, time.perf_counter()
            if state.micro == 0:
                model.ceclip_theta.zero_()  # CE-CLIP resets its thresholds every epoch
            order = epoch_order(len(train_clips), config.seed, epoch)
            losses: list[float] = []
            optimizer.zero_grad(set_to_none=True)
            for micro in range(state.micro, micro_per_epoch):
                if distributed.any_rank(cancel is not None and cancel.cancelled):
                    state.micro = micro - (micro % config.grad_accum)  # replay a half-accumulated step
                    last = snapshot(f"step-{epoch + 1:04d}-{state.micro:06d}")
                    raise JobCancelled(f"training cancelled; resume from {last}")
                idx = order[micro * config.batch_size : (micro + 1) * config.batch_size]
                batch = distributed.local_batch(train_clips, idx, seed=config.seed, epoch=epoch, topology=topology)
                ends_step = (micro + 1) % config.grad_accum == 0 or micro + 1 == micro_per_epoch
                autocast = torch.autocast("cuda", dtype=torch.float16) if amp else contextlib.nullcontext()
                with distributed.accumulating(runner, sync=ends_step):
                    with autocast:
                        loss = runner(batch)["total"]
                    scaler.scale(loss / config.grad_accum).backward()
                losses.append(float(loss.detach()))
                if ends_step:
                    scaler.unscale_(optimizer)
                    if config.max_grad_norm > 0:
                        torch.nn.utils.clip_grad_norm_(model.parameters(), config.max_grad_norm)
                    scaler.step(optimizer)
                    scaler.update()
                    optimizer.zero_grad(set_to_none=True)
                    scheduler.step()
                    clamp_logit_scale_(model.logit_scale)
                    state.step += 1
                done = (epoch * micro_per_epoch + micro + 1) / (config.epochs * micro_per_epoch)
                report(
                    progress,
                    0.95 * done,
                    f"epoch {epoch + 1}/{config.epochs}, step {micro + 1}/{micro_per_epoch}, loss {losses[-1]:.3f}",
                )
            metrics: dict[str, float] = {}
            stopped: JobCancelled | None = None
            if main and val_clips is not None and len(val_clips):
                sub = wrap_progress(progress, 0.95 * (epoch + 1) / config.epochs, 0.95 * (epoch + 1) / config.epochs)
                try:
                    metrics = evaluate(model, val_clips, batch_size=config.eval_batch_size, progress=sub, cancel=cancel)
                except JobCancelled as exc:
                    stopped = exc
            metrics, cancelled = distributed.broadcast((metrics, stopped is not None))  # rank 0 decides for all
            if cancelled:
                raise stopped or JobCancelled(f"training cancelled during validation; resume from {last}")
            score = metrics.get(VAL_METRIC)
            best, improved = _judge(state, selection_key(metrics), score)
            state.bad_epochs = 0 if improved or score is None else state.bad_epochs + 1
            state.epoch, state.micro = epoch + 1, 0
            row = EpochReport(
                epoch + 1,
                state.step,
                sum(losses) / max(1, len(losses)),
                scheduler.get_last_lr()[0],
                float(model.logit_scale.detach().exp()),
                time.perf_counter() - started,
                metrics,
                "",
                best or score is None,
            )
            state.history.append(dataclasses.asdict(row))
            last = snapshot(f"epoch-{epoch + 1:04d}")
            row.checkpoint = str(last)
            state.history[-1]["checkpoint"] = str(last)
            if main:
                _log_epoch(out, last, row, metrics, config, writer)
            if on_epoch is not None:
                on_epoch(row)
            distributed.barrier()  # best/, log.csv and the pruning are done before any rank goes on
            if config.patience and state.bad_epochs >= config.patience:
                log.info(
                    "early stop after epoch %d: no better %s for %d epochs", row.epoch, VAL_METRIC, config.patience
                )
                return _result(out, last, state, stopped=True)
    finally:
        if writer is not None:
            writer.close()
    report(progress, 1.0, "Training finished")
    return _result(out, last, state, stopped=False)


def _log_epoch(
    out: Path, last: Path, row: EpochReport, metrics: dict[str, float], config: TrainConfig, writer: Any
) -> None:
    """Rank 0's bookkeeping after an epoch's checkpoint: the ``best`` copy, pruning, ``log.csv``, TensorBoard."""
    if row.best:
        copy_best(last, out)
    prune(out, config.keep_last, last.name)
    flat = {k: v for k, v in dataclasses.asdict(row).items() if k != "metrics"} | metrics
    append_csv(out / "log.csv", flat)
    if writer is not None:
        for key, value in flat.items():
            if isinstance(value, float):
                writer.add_scalar(key, value, row.epoch)


def _result(out: Path, last: Path, state: _State, *, stopped: bool) -> TrainResult:
    best = out / "best"
    history = [EpochReport(**h) for h in state.history]
    return TrainResult(last, best if best.is_dir() else last, state.best, history, stopped)


def train(
    config: TrainConfig,
    *,
    progress: ProgressCallback | None = None,
    cancel: CancelToken | None = None,
    on_epoch: Callable[[EpochReport], None] | None = None,
) -> TrainResult:
    """Train from the files ``config.data`` (and ``config.negatives``) into ``config.out``; see :func:`fit`.

    Started by torchrun (``WORLD_SIZE`` > 1), it joins the process group for the run and trains with DDP.
    """
    from engine.train.clips import FileClips
    from engine.train.data import FrameCache, load_training_data, split_items

    if not config.data:
        raise ValueError("no training data: set `data` in the CONFIG file or pass --data FILE")
    items = load_training_data(Path(config.data).expanduser())
    negatives: dict[str, Any] = {}
    if config.negatives:
        from engine.train.negatives import read_negatives

        negatives = read_negatives(Path(config.negatives).expanduser())
    train_items, val_items = split_items(items, val_fraction=config.val_fraction, seed=config.seed)
    with distributed.session(config.device):  # under torchrun: join the process group; otherwise nothing
        report(progress, 0.0, f"Loading {config.model}")
        model = model_for(config)
        cache, size = FrameCache(), model.backbone.image_size
        train_clips = FileClips(train_items, negatives, cache, n_frames=config.n_frames, size=size)
        val_clips = FileClips(val_items, negatives, cache, n_frames=config.n_frames, size=size) if val_items else None
        return fit(model, train_clips, val_clips, config, progress=progress, cancel=cancel, on_epoch=on_epoch)


__all__ = [
    "LATEST_NAME",
    "STATE_NAME",
    "EpochReport",
    "TrainConfig",
    "TrainResult",
    "fit",
    "latest_checkpoint",
    "model_for",
    "selection_key",
    "train",
]
