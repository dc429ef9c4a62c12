"""A trained model's folder told apart without torch: its file names and ``run_folder_of``.

``engine.models.run_checkpoint`` checks and loads such folders (and imports torch); these few lines are apart so
the registry's scheme test and ``engine.models.identity`` can tell a trained run from a plain open_clip
checkpoint folder without importing torch.
"""

from __future__ import annotations

import json
from pathlib import Path

from engine.models.checkpoint_files import CONFIG_NAME

HEADS_NAME = "heads.safetensors"
WEIGHTS_NAME = "model.safetensors"
SPEC_KEY = "scenefind_model"
RUN_PREFIX = "run:"
CALIBRATION_KEY = "calibration_captions"  # in config.json: the captions search judges the model's relevance against


def run_folder_of(path: str | Path) -> Path | None:
    """The checkpoint folder ``path`` names, when it names a trained model: itself (``RUN/best``,
    ``RUN/checkpoints/epoch-3``) or, for a run folder ``RUN``, its ``best``. None for anything else (a plain
    open_clip checkpoint folder, a file, a missing path)."""
    folder = Path(path).expanduser()
    if not folder.is_dir():
        return None
    if _is_model_folder(folder):
        return folder
    best = folder / "best"
    if (folder / "checkpoints").is_dir() or (best.is_dir() and _is_model_folder(best)):
        return best  # a run folder (read_run_checkpoint says so when it has no best checkpoint yet)
    return None


def _is_model_folder(folder: Path) -> bool:
    """Written by training: a heads file, or a config that describes one (then the heads file is missing)."""
    if (folder / HEADS_NAME).exists():
        return True
    try:
        config = json.loads((folder / CONFIG_NAME).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return isinstance(config, dict) and SPEC_KEY in config
