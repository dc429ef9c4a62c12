"""A trained model's folder: found, checked, identified and rebuilt as a :class:`VideoModel`.

A training run writes ``RUN/checkpoints/epoch-N/`` and ``RUN/best/``, each a folder with ``model.safetensors``
(the towers, in their own keys), ``heads.safetensors`` (temporal head, concept head, logit scale and the
training-only state) and ``config.json`` whose ``scenefind_model`` entry describes the architecture. ``RUN`` alone
means ``RUN/best``.

Why so much checking: a folder that is incomplete, from another architecture, with a head of another width, or
tampered with must be refused with the file named and what is wrong, before anything is indexed with it. It is
never loaded as towers alone (the old behaviour), which would silently search with another model. Everything here
reads JSON and safetensors headers only, plus a meta-device model for the shapes the towers must have, so a
multi-gigabyte checkpoint is checked in well under a second; the tensors are read when the encoder first runs.

The model id is a content hash (config, heads, towers), so it is the same in every process and after a restart,
and two runs (or two epochs) never share an index.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import struct
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from engine.models.base import ModelUnavailable
from engine.models.checkpoint import CONFIG_NAME, check_weights_file, checkpoint_fingerprint, load_state_dict
from engine.models.heads import ConceptHead, TemporalHead
from engine.models.run_files import HEADS_NAME, RUN_PREFIX, SPEC_KEY, WEIGHTS_NAME, run_folder_of
from engine.models.video_net import VideoModel

_SEARCH_PREFIXES = ("head.", "concepts.", "logit_scale")  # what search needs from heads.safetensors


@dataclass(frozen=True)
class RunCheckpoint:
    """A checked checkpoint folder: its config, the ``scenefind_model`` spec and the two weight files."""

    folder: Path
    config: dict[str, Any]
    spec: dict[str, Any]

    @property
    def weights(self) -> Path:
        return self.folder / WEIGHTS_NAME

    @property
    def heads(self) -> Path:
        return self.folder / HEADS_NAME

    @property
    def kind(self) -> str:
        return str(self.spec["backbone"]["kind"])

    @property
    def arch(self) -> str:
        return str(self.spec["backbone"].get("arch") or self.config.get("arch") or self.kind)

    @property
    def dim(self) -> int:
        return int(self.spec["head"]["dim"])

    @property
    def n_frames(self) -> int:
        return int(self.spec.get("n_frames", 8))

    def model_id(self) -> str:
        """``run:ARCH:HASH``; the hash covers the config, the whole heads file and the towers' fingerprint."""
        digest = hashlib.sha256(json.dumps(self.config, sort_keys=True, separators=(",", ":")).encode("utf-8"))
        digest.update(hashlib.sha256(self.heads.read_bytes()).digest())
        digest.update(checkpoint_fingerprint(self.weights).encode("ascii"))
        return f"{RUN_PREFIX}{self.arch}:{digest.hexdigest()[:12]}"


def read_run_checkpoint(folder: str | Path) -> RunCheckpoint:
    """Check a trained model's folder without loading tensors; ``ModelUnavailable`` names the file and the fault."""
    folder = Path(folder).expanduser()
    if not folder.is_dir():
        hint = " (the run has no best checkpoint yet)" if folder.name == "best" and folder.parent.is_dir() else ""
        raise ModelUnavailable(f"{folder}: no such trained-model folder{hint}")
    for name in (CONFIG_NAME, WEIGHTS_NAME, HEADS_NAME):
        if not (folder / name).is_file():
            raise ModelUnavailable(
                f"{folder / name}: missing; a trained model's folder needs {CONFIG_NAME}, {WEIGHTS_NAME} and "
                f"{HEADS_NAME} (the run may still be writing it, or was copied incompletely)"
            )
    config_path = folder / CONFIG_NAME
    try:
        config = json.loads(config_path.read_text(encoding="utf-8"))
    except (ValueError, OSError) as exc:
        raise ModelUnavailable(f"{config_path}: not valid JSON ({exc})") from exc
    if not isinstance(config, dict) or not isinstance(config.get(SPEC_KEY), dict):
        raise ModelUnavailable(f"{config_path}: has no {SPEC_KEY!r} entry describing the trained model")
    spec = config[SPEC_KEY]
    _check_spec(spec, config_path)
    run = RunCheckpoint(folder, config, spec)
    for path in (run.weights, run.heads):
        check_weights_file(path)  # truncated or not safetensors at all
    _check_shapes(run.heads, expected_head_shapes(spec), "the temporal and concept heads", partial=True)
    _check_shapes(run.weights, _tower_shapes(run), f"the {run.arch} towers", partial=False)
    return run


def _check_spec(spec: dict[str, Any], config_path: Path) -> None:
    from engine.models.backbone import BACKBONES

    backbone, head = spec.get("backbone"), spec.get("head")
    if not isinstance(backbone, dict) or not isinstance(head, dict):
        raise ModelUnavailable(f"{config_path}: {SPEC_KEY} must describe a 'backbone' and a temporal 'head'")
    kind = backbone.get("kind")
    if kind not in BACKBONES:
        raise ModelUnavailable(
            f"{config_path}: towers of another architecture ({kind!r}); this release knows {', '.join(BACKBONES)}"
        )
    keys = ("dim", "width", "layers", "heads", "max_frames", "motion")
    if any(k not in head for k in keys):
        raise ModelUnavailable(f"{config_path}: the temporal head's settings lack {[k for k in keys if k not in head]}")
    dim = _backbone_dim(backbone, config_path)
    if int(head["dim"]) != dim:
        raise ModelUnavailable(
            f"{config_path}: a temporal head of another dimension ({head['dim']}-d) than its towers ({dim}-d)"
        )
    n_frames = spec.get("n_frames", 8)
    if not isinstance(n_frames, int) or not 1 <= n_frames <= int(head["max_frames"]):
        raise ModelUnavailable(f"{config_path}: n_frames {n_frames!r} does not fit the head (1..{head['max_frames']})")


def _backbone_dim(backbone: dict[str, Any], where: Path) -> int:
    if backbone["kind"] == "synthetic":
        return int(backbone.get("dim", 64))
    import open_clip

    from engine.models.registry import list_architectures

    arch = backbone.get("arch")
    if arch not in list_architectures():
        raise ModelUnavailable(f"{where}: towers of another architecture ({arch!r} is no open_clip architecture)")
    return int((open_clip.get_model_config(arch) or {}).get("embed_dim", 0))


def build_head(spec: dict[str, Any]) -> TemporalHead:
    h = spec["head"]
    return TemporalHead(
        h["dim"], width=h["width"], layers=h["layers"], heads=h["heads"], max_frames=h["max_frames"], motion=h["motion"]
    )


def build_concepts(spec: dict[str, Any]) -> ConceptHead | None:
    c = spec.get("concepts")
    if not c:
        return None
    return ConceptHead(torch.zeros(c["n_concepts"], spec["head"]["dim"]), torch.zeros(c["vocab"], dtype=torch.long))


@contextlib.contextmanager
def _meta_quietly() -> Iterator[None]:
    """Build modules for their shapes only: on the meta device, without drawing from the global RNG (which would
    change what a seeded run draws next) and without open_clip's "initialized randomly" warning."""
    from engine.models.openclip_encoder import quiet_random_init

    with torch.random.fork_rng(devices=[]), quiet_random_init(), torch.device("meta"):
        yield


def expected_head_shapes(spec: dict[str, Any]) -> dict[str, tuple[int, ...]]:
    """Shapes ``heads.safetensors`` must hold for the search-side heads (temporal, concept, logit scale)."""
    with _meta_quietly():
        head, concepts = build_head(spec), build_concepts(spec)
    shapes = {f"head.{k}": tuple(v.shape) for k, v in head.state_dict().items()}
    if concepts is not None:
        shapes |= {f"concepts.{k}": tuple(v.shape) for k, v in concepts.state_dict().items()}
    return shapes | {"logit_scale": ()}


def _tower_shapes(run: RunCheckpoint) -> dict[str, tuple[int, ...]]:
    """The state dict shapes of the towers the spec describes, from a model built on the meta device."""
    from engine.models.backbone import BACKBONES

    with _meta_quietly():
        if run.kind == "open_clip":
            import open_clip

            module: nn.Module = open_clip.create_model(run.spec["backbone"]["arch"], pretrained=None, device="meta")
        else:
            module = BACKBONES[run.kind](run.spec["backbone"], None).weights_module()
    return {k: tuple(v.shape) for k, v in module.state_dict().items()}


def _safetensors_shapes(path: Path) -> dict[str, tuple[int, ...]]:
    with open(path, "rb") as fh:
        (length,) = struct.unpack("<Q", fh.read(8))
        header = json.loads(fh.read(length))
    return {k: tuple(v["shape"]) for k, v in header.items() if k != "__metadata__"}


def _check_shapes(path: Path, expected: dict[str, tuple[int, ...]], what: str, *, partial: bool) -> None:
    """``path``'s tensors must have ``expected``'s names and shapes (``partial``: other names may exist too)."""
    try:
        found = _safetensors_shapes(path)
    except (ValueError, KeyError, TypeError, struct.error) as exc:
        raise ModelUnavailable(f"{path}: unreadable safetensors header ({exc}); the file is corrupt") from exc
    missing = sorted(set(expected) - set(found))
    if missing:
        raise ModelUnavailable(
            f"{path}: does not hold {what} its config.json describes (missing {', '.join(missing[:4])}"
            f"{' …' if len(missing) > 4 else ''}): another architecture, or a file from another model"
        )
    wrong = [k for k, shape in expected.items() if found[k] != shape]
    if wrong:
        k = wrong[0]
        raise ModelUnavailable(
            f"{path}: tensor {k} has shape {list(found[k])}, but {what} of config.json need {list(expected[k])} "
            "(another architecture or head width, or a tampered file)"
        )
    extra = sorted(set(found) - set(expected))
    if extra and not partial:
        raise ModelUnavailable(
            f"{path}: holds tensors {what} do not have ({', '.join(extra[:4])}); towers of another architecture"
        )


def load_heads(model: nn.Module, run: RunCheckpoint, prefixes: tuple[str, ...] | None = None) -> None:
    """Load ``heads.safetensors`` into ``model`` (only the keys starting with ``prefixes``, when given): every
    non-tower parameter of ``model`` must come from the file and every loaded tensor must fit, or
    ``ModelUnavailable`` names the file."""
    heads = load_state_dict(run.heads)
    if prefixes is not None:
        heads = {k: v for k, v in heads.items() if k.startswith(prefixes)}
    try:
        missing, unexpected = model.load_state_dict(heads, strict=False)
    except RuntimeError as exc:
        raise ModelUnavailable(f"{run.heads}: its tensors do not fit the config ({str(exc)[:300]})") from exc
    missing = [k for k in missing if not k.startswith("backbone.")]
    if missing or unexpected:
        raise ModelUnavailable(
            f"{run.heads}: does not fit the config (missing {missing[:4]}, unexpected {unexpected[:4]})"
        )


def build_backbone(run: RunCheckpoint) -> Any:
    """The towers with their trained weights (``engine.models.backbone.BACKBONES`` by kind)."""
    from engine.models.backbone import BACKBONES

    state = load_state_dict(run.weights)
    cfg = dict(run.spec["backbone"])
    if run.kind == "open_clip":
        cfg.setdefault("quick_gelu", bool(run.config.get("quick_gelu", False)))  # OpenAI-trained towers use it
    try:
        with torch.random.fork_rng(devices=[]):  # the weights are loaded over the fresh ones
            return BACKBONES[run.kind](cfg, state)
    except (RuntimeError, ValueError) as exc:
        detail = str(exc).replace("\n", " ")[:300]
        raise ModelUnavailable(f"{run.weights}: the weights do not fit the {run.arch} towers ({detail})") from exc


def load_video_model(run: RunCheckpoint) -> VideoModel:
    """The search-side model of a checked folder: towers, temporal head, concept head, logit scale."""
    backbone = build_backbone(run)
    with torch.random.fork_rng(devices=[]):
        head, concepts = build_head(run.spec), build_concepts(run.spec)
    model = VideoModel(backbone, head, concepts=concepts, n_frames=run.n_frames)
    load_heads(model, run, _SEARCH_PREFIXES)  # the training-only heads stay on disk
    return model.eval()


__all__ = [
    "HEADS_NAME",
    "RUN_PREFIX",
    "SPEC_KEY",
    "WEIGHTS_NAME",
    "RunCheckpoint",
    "build_backbone",
    "build_concepts",
    "build_head",
    "expected_head_shapes",
    "load_heads",
    "load_video_model",
    "read_run_checkpoint",
    "run_folder_of",
]
