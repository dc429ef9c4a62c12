"""A model's id from its name alone, without importing torch or open_clip.

Building an encoder imports open_clip (and with it torch, torchvision and transformers: seconds), yet many
commands only need to know *which* model a name means: ``scenefind status`` counts what is indexed with it, an
``index`` run with nothing new asks the catalog what is pending for it, and a search whose query vector is
cached needs the model's index, not the model. The id formulas of the open_clip schemes live here, and
``engine.models.registry`` builds its encoders' ids with these same functions, so the two cannot drift.

``model_identity`` answers for the schemes whose id is a pure function of the name (and, for checkpoints, of
the weights file's fingerprint); for anything else (fake encoders, models with heads: ``scratch:`` and trained
runs, names that are not valid) it returns None and the caller builds the encoder, which also validates the
name. An id told here is
not a promise that the model can be built: callers trust it only where the catalog already knows it.
"""

from __future__ import annotations

from pathlib import Path

from engine.models.base import ModelUnavailable
from engine.models.checkpoint_files import checkpoint_fingerprint, find_weights, read_config
from engine.models.run_files import run_folder_of

MODEL_CONFIG_DIR = Path(__file__).resolve().parents[2] / "resources" / "models"
OPEN_CLIP_PREFIX = "open_clip:"
TEST_ARCH = "scenefind-test-tiny"
TEST_MODELS = {"test-tiny": TEST_ARCH}  # name -> registered architecture, random weights, fixed seed


def pretrained_model_id(arch: str, tag: str) -> str:
    """``open_clip:ARCH/tag``, with open_clip's own tag normalisation, so ids stay canonical."""
    return f"{OPEN_CLIP_PREFIX}{arch}/{tag.lower().replace('-', '_')}"


def checkpoint_model_id(label: str, weights_file: Path) -> str:
    """A local checkpoint's id: its label (architecture or ``config.json``'s ``model_id``) and a content hash,
    so a retrained checkpoint gets a new id and never mixes its vectors with the old one's."""
    return f"checkpoint:{label}:{checkpoint_fingerprint(weights_file)}"


def random_model_id(arch: str, seed: int) -> str:
    return f"random:{arch}:seed{seed}"


def tiny_model_id(arch: str) -> str:
    """The id of a registered tiny architecture: its short name where it has one (``test-tiny``)."""
    return next((name for name, registered in TEST_MODELS.items() if registered == arch), arch)


def looks_like_path(name: str) -> bool:
    return (
        name.startswith(("/", "~", ".", "\\"))
        or (len(name) > 2 and name[1] == ":" and name[2] in "/\\")  # a Windows drive
        or Path(name).expanduser().exists()
    )


def _random(name: str) -> str | None:
    arch, _, seed = name.removeprefix("random:").partition(":seed")
    return random_model_id(arch, int(seed or 0)) if arch and (not seed or seed.isdigit()) else None


def _file(name: str) -> str | None:
    arch, _, path_text = name.partition("@")
    path = Path(path_text).expanduser()
    return checkpoint_model_id(arch, path) if arch and path.is_file() else None


def _folder(name: str) -> str | None:
    folder = Path(name).expanduser()
    if not folder.is_dir():
        return None
    config = read_config(folder)
    return checkpoint_model_id(str(config.get("model_id") or config["arch"]), find_weights(folder))


def _pretrained(name: str) -> str | None:
    arch, _, tag = name.removeprefix(OPEN_CLIP_PREFIX).partition("/")
    return pretrained_model_id(arch, tag) if arch and tag else None


def _arch_only(name: str) -> str | None:
    return tiny_model_id(name) if (MODEL_CONFIG_DIR / f"{name}.json").is_file() else None


def model_identity(name: str) -> str | None:
    """The id ``create_encoder(name)`` gives its encoder, told without building it; None where that needs the
    encoder (fake and scratch models, trained runs with heads, unknown names). Schemes are tried in the
    registry's order (``engine.models.registry._SCHEMES``)."""
    name = name.strip()
    if not name or name.startswith(("fake:", "scratch:")):
        return None
    try:
        if name.startswith("random:"):
            return _random(name)
        if name in TEST_MODELS:
            return tiny_model_id(TEST_MODELS[name])
        if "@" in name and not Path(name).exists():
            return _file(name)
        if looks_like_path(name):
            return None if run_folder_of(name) is not None else _folder(name)  # a trained run: it has heads
        if "/" in name:
            return _pretrained(name)
        return _arch_only(name)
    except (ModelUnavailable, OSError):  # a broken checkpoint: let building the encoder say what is wrong
        return None
