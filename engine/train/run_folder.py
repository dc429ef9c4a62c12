"""A training run's folder: epoch checkpoints written atomically, ``latest.json``, ``best/``, ``log.csv``.

Why its own module: the trainer writes it, and the Training tab and ``scenefind train`` read it back (resume after
a restart, "a run can be resumed (epoch N of M)") without training anything. Layout::

    out/checkpoints/<name>/   model weights + heads + config.json (training settings) + trainer_state.pt
    out/checkpoints/latest.json   {"checkpoint": <name>}, swapped in atomically after the folder is renamed in
    out/best/                 a copy of the best checkpoint without the trainer state
    out/log.csv, out/tensorboard/

A checkpoint folder is written aside (``.tmp-<name>``) and renamed in before ``latest.json`` points at it, so a
crash at any moment leaves the previous checkpoint usable.
"""

from __future__ import annotations

import csv
import json
import logging
import random
import shutil
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from engine.atomic import atomic_path, atomic_write_bytes
from engine.models.run_files import CALIBRATION_KEY

log = logging.getLogger(__name__)
STATE_NAME = "trainer_state.pt"
LATEST_NAME = "latest.json"


@dataclass(frozen=True)
class RunSnapshot:
    """What a run folder's latest checkpoint says, read without the weights or the optimiser's tensors."""

    checkpoint: Path
    training: dict[str, Any]  # the TrainConfig fields it was written with
    state: dict[str, Any]  # epoch, step, best, bad_epochs, history (one dict per finished epoch)


CALIBRATION_SIZE = 256


def calibration_captions(captions: Sequence[str], size: int = CALIBRATION_SIZE) -> list[str]:
    """A fixed sample of the distinct training captions, for ``config.json``. Search judges a query's score
    against unrelated captions (``engine.search.calibration``); the everyday captions it uses for a pretrained
    model are far from what a model trained on its own world has seen, so every caption of that world looked
    certain (a scratch:tiny run showed 90 % on its top 40 hits). Its own captions give it a scale of its own."""
    distinct = sorted({c.strip() for c in captions if c and c.strip()})
    return random.Random(0).sample(distinct, min(size, len(distinct)))


def write_checkpoint(
    model: Any,
    out: Path,
    name: str,
    state: dict[str, Any],
    trainer: dict[str, Any],
    training: dict[str, Any],
    calibration: Sequence[str] = (),
) -> Path:
    """Write ``out/checkpoints/name`` aside and rename it in, then point ``latest.json`` at it; ``calibration``
    (from :func:`calibration_captions`) goes into its ``config.json``."""
    root = out / "checkpoints"
    final, tmp = root / name, root / f".tmp-{name}"
    shutil.rmtree(tmp, ignore_errors=True)
    extra = {"training": training, "epoch": state["epoch"], "step": state["step"]}
    model.save_checkpoint(tmp, {**extra, CALIBRATION_KEY: list(calibration)} if calibration else extra)
    with atomic_path(tmp / STATE_NAME) as path:
        torch.save({**trainer, "state": state}, path)
    if final.exists():
        shutil.rmtree(final)
    tmp.rename(final)
    atomic_write_bytes(root / LATEST_NAME, json.dumps({"checkpoint": name}).encode("utf-8"))
    return final


def copy_best(source: Path, out: Path) -> Path:
    """Make ``out/best`` a copy of ``source`` (without the trainer state), replacing the old one last."""
    best, tmp = out / "best", out / ".tmp-best"
    shutil.rmtree(tmp, ignore_errors=True)
    shutil.copytree(source, tmp, ignore=shutil.ignore_patterns(STATE_NAME))
    old = out / ".old-best"
    shutil.rmtree(old, ignore_errors=True)
    if best.exists():
        best.rename(old)
    tmp.rename(best)
    shutil.rmtree(old, ignore_errors=True)
    return best


def prune(out: Path, keep: int, current: str) -> None:
    """Keep the last ``keep`` epoch checkpoints (and ``current``); mid-epoch ``step-*`` ones are superseded."""
    root = out / "checkpoints"
    epochs = sorted(p for p in root.glob("epoch-*") if p.is_dir())
    for old in epochs[: max(0, len(epochs) - max(1, keep))]:
        if old.name != current:
            shutil.rmtree(old, ignore_errors=True)
    for stale in root.glob("step-*"):
        if stale.name != current:
            shutil.rmtree(stale, ignore_errors=True)


def latest_checkpoint(out: str | Path) -> Path | None:
    """The checkpoint folder a resumed run would start from, or None."""
    pointer = Path(out) / "checkpoints" / LATEST_NAME
    if not pointer.is_file():
        return None
    folder = pointer.parent / json.loads(pointer.read_text(encoding="utf-8"))["checkpoint"]
    return folder if folder.is_dir() else None


def restore(model: Any, folder: Path) -> dict[str, Any]:
    """Load a checkpoint's weights and heads into ``model``; returns the saved trainer state (optimiser etc.)."""
    from safetensors.torch import load_file

    from engine.models.checkpoint import find_weights, load_state_dict
    from engine.train.model import HEADS_NAME

    model.backbone.weights_module().load_state_dict(load_state_dict(find_weights(folder)), strict=True)
    model.load_state_dict(load_file(str(folder / HEADS_NAME), device="cpu"), strict=False)
    return torch.load(folder / STATE_NAME, map_location="cpu", weights_only=True)


def read_run(out: str | Path) -> RunSnapshot | None:
    """The latest checkpoint's settings and progress, or None when the folder has no checkpoint yet.

    The trainer state is memory-mapped, so the optimiser's tensors are not read. Raises ``ValueError`` naming the
    file when the checkpoint has no training settings (not a run folder of ours)."""
    from engine.models.checkpoint import read_config

    checkpoint = latest_checkpoint(out)
    if checkpoint is None:
        return None
    meta = read_config(checkpoint)
    training = meta.get("training")
    if not isinstance(training, dict):
        raise ValueError(f"{checkpoint / 'config.json'}: no training settings (not a training checkpoint)")
    state: dict[str, Any] = {"epoch": int(meta.get("epoch", 0))}
    if (checkpoint / STATE_NAME).is_file():
        saved = torch.load(checkpoint / STATE_NAME, map_location="cpu", weights_only=True, mmap=True)
        state = dict(saved.get("state", state))
    return RunSnapshot(checkpoint, training, state)


def append_csv(path: Path, row: dict[str, Any]) -> None:
    """Append ``row`` to ``log.csv``, keeping the header of the file's first row (a resumed run continues it)."""
    fields = list(row)
    if path.is_file():
        with open(path, newline="", encoding="utf-8") as fh:
            header = next(csv.reader(fh), None)
        fields = header or fields
    new = not path.is_file()
    with open(path, "a", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=fields, extrasaction="ignore")
        if new:
            writer.writeheader()
        writer.writerow(row)


def tensorboard_writer(out: Path, enabled: bool) -> Any:
    """A TensorBoard ``SummaryWriter`` under ``out/tensorboard``, or None when disabled or not installed."""
    if not enabled:
        return None
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:
        log.debug("tensorboard is not installed; logging to log.csv only")
        return None
    return SummaryWriter(str(out / "tensorboard"))


__all__ = [
    "CALIBRATION_KEY",
    "LATEST_NAME",
    "STATE_NAME",
    "RunSnapshot",
    "append_csv",
    "calibration_captions",
    "copy_best",
    "latest_checkpoint",
    "prune",
    "read_run",
    "restore",
    "tensorboard_writer",
    "write_checkpoint",
]
