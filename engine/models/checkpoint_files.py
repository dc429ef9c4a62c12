"""A checkpoint's files without torch: the folder layout, its ``config.json`` and the weights fingerprint.

Kept apart from ``engine.models.checkpoint`` (which reads and writes tensors, so imports torch) because a
model's id can be told from these alone: ``engine.models.identity`` names the model of a library without
importing torch, so commands with nothing to embed stay fast.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from engine.models.base import ModelUnavailable

CONFIG_NAME = "config.json"
WEIGHTS_NAMES = (
    "model.safetensors",
    "open_clip_model.safetensors",
    "open_clip_pytorch_model.safetensors",
    "open_clip_pytorch_model.bin",
    "pytorch_model.bin",
    "model.pt",
    "model.pth",
)
_FINGERPRINT_CHUNK = 1 << 20


def checkpoint_fingerprint(path: str | Path) -> str:
    """Short hash of a weights file's size, first MiB and last MiB: cheap on a GB file, changes with it."""
    path = Path(path)
    size = path.stat().st_size
    digest = hashlib.sha256(str(size).encode("ascii"))
    with open(path, "rb") as fh:
        digest.update(fh.read(_FINGERPRINT_CHUNK))
        if size > _FINGERPRINT_CHUNK:
            fh.seek(max(_FINGERPRINT_CHUNK, size - _FINGERPRINT_CHUNK))
            digest.update(fh.read(_FINGERPRINT_CHUNK))
    return digest.hexdigest()[:12]


def find_weights(folder: Path) -> Path:
    """The weights file of a checkpoint folder, by open_clip's and our own names, in preference order."""
    for name in WEIGHTS_NAMES:
        candidate = folder / name
        if candidate.is_file():
            return candidate
    raise ModelUnavailable(f"{folder}: checkpoint folder has no weights file (looked for {', '.join(WEIGHTS_NAMES)})")


def read_config(folder: Path) -> dict[str, Any]:
    """``config.json`` of a checkpoint folder; must name the open_clip architecture as ``arch``."""
    config_path = folder / CONFIG_NAME
    if not config_path.is_file():
        raise ModelUnavailable(
            f"{folder}: not a checkpoint folder: {CONFIG_NAME} is missing (it must hold "
            '{"arch": "<open_clip architecture, e.g. ViT-B-32>"})'
        )
    try:
        config = json.loads(config_path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ModelUnavailable(f"{config_path}: not valid JSON ({exc})") from exc
    if not isinstance(config, dict) or not isinstance(config.get("arch"), str) or not config["arch"]:
        raise ModelUnavailable(f'{config_path}: must be an object with "arch" naming an open_clip architecture')
    return config
