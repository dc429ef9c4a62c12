"""Which models exist and how to make one from its name (after open_clip's ``factory.py``).

A model name says where the weights come from; its scheme picks the factory from one table:

* ``ViT-B-32/laion2b_s34b_b79k`` (or ``open_clip:ViT-B-32/...``): an open_clip pretrained pair, downloaded
  on first use into ``engine.paths.weights_dir()``;
* ``RUN``, ``RUN/best`` or ``RUN/checkpoints/epoch-N``: a model trained by ``scenefind train``, with every part
  (towers, temporal head, concept head, logit scale; ``engine.models.video_model``);
* ``scratch:tiny``: the tiny from-scratch video model with seeded random weights (what ``scenefind train
  --model scratch:tiny`` starts from);
* ``/path/to/folder``: a plain open_clip checkpoint folder (``config.json`` with ``arch``, ``model.safetensors``);
* ``ViT-B-32@/path/to/model.safetensors`` (or ``.pt``/``.pth``/``.bin``, read with ``weights_only``);
* ``test-tiny``: a tiny random open_clip architecture with fixed weights, fast on a CPU, for tests;
* ``fake:color`` and ``fake:hash-N``: weightless deterministic encoders (``engine.models.fake``).

The tiny architectures live as JSON in ``resources/models`` and are registered with open_clip's own config
registry, so open_clip builds them like any other. Every encoder's ``model_id`` is stable across processes
and goes into the indexes; a checkpoint's id carries a content hash, so retraining changes the id. A model with a
temporal head has one id per pooling choice (``engine.models.base.pooled_model_id``).
"""

from __future__ import annotations

import difflib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

from engine.jobs import ProgressCallback
from engine.models.base import Encoder, ModelUnavailable, UnknownModel
from engine.models.checkpoint_files import find_weights
from engine.models.checkpoint_files import read_config as read_checkpoint_config
from engine.models.fake import create_fake_encoder
from engine.models.identity import (
    MODEL_CONFIG_DIR,
    OPEN_CLIP_PREFIX,
    TEST_ARCH,
    TEST_MODELS,
    checkpoint_model_id,
    looks_like_path,
    pretrained_model_id,
    random_model_id,
    tiny_model_id,
)
from engine.models.run_files import run_folder_of
from engine.paths import weights_dir
from engine.settings import DEFAULT_MODEL, HEAD_WINDOWS, POOLINGS

SCRATCH_PREFIX = "scratch:"  # = engine.models.video_model.SCRATCH_PREFIX (that module imports torch)

__all__ = [
    "DEFAULT_MODEL",
    "TEST_ARCH",
    "TEST_MODELS",
    "ModelInfo",
    "create_encoder",
    "create_random_openclip_encoder",
    "ensure_loaded",
    "list_architectures",
    "list_models",
    "pending_download",
    "probe_download",
]

TEST_SEED = 1234
_registered: list[str] = []


@dataclass(frozen=True)
class EncoderOptions:
    """What every factory gets besides the name; the pooling pair only matters to models with a temporal head."""

    device: str = "auto"
    batch_size: int = 32
    pooling: str = "auto"
    windows: str = "resample"

    def video(self) -> dict[str, Any]:
        return {"device": self.device, "batch_size": self.batch_size, "pooling": self.pooling, "windows": self.windows}


@dataclass(frozen=True)
class ModelInfo:
    """One choosable model; ``cached`` is None where it cannot be told cheaply."""

    name: str
    description: str
    kind: str  # "open_clip", "scratch", "test" or "fake"
    cached: bool | None


def _open_clip() -> ModuleType:
    """open_clip, imported on first need (it brings torch, torchvision and transformers: seconds), with
    ``resources/models/*.json`` added to its architecture registry once. Fake models and every command that only
    needs a model's id never pay for it (``engine.models.identity``)."""
    import open_clip

    if not _registered and MODEL_CONFIG_DIR.is_dir():
        open_clip.add_model_config(MODEL_CONFIG_DIR)
        _registered.extend(sorted(p.stem for p in MODEL_CONFIG_DIR.glob("*.json")))
    return open_clip


def _register_configs() -> list[str]:
    """The names of our tiny architectures, registered with open_clip (importing it)."""
    _open_clip()
    return list(_registered)


def list_architectures() -> list[str]:
    """Every open_clip architecture name, ours included (``_open_clip`` registers them)."""
    return list(_open_clip().list_models())


def _suggest(wanted: str, candidates: Sequence[str]) -> str:
    close = difflib.get_close_matches(wanted, list(candidates), n=5, cutoff=0.5)
    return f"; did you mean {', '.join(close)}?" if close else ""


def _known_names() -> list[str]:
    pairs = [f"{arch}/{tag}" for arch, tag in _open_clip().list_pretrained()]
    return [*TEST_MODELS, "scratch:tiny", "fake:color", "fake:hash-8", *pairs]


def _check_arch(arch: str, name: str) -> None:
    if arch not in list_architectures():
        raise UnknownModel(f"{name}: unknown open_clip architecture {arch!r}{_suggest(arch, list_architectures())}")


def _norm_for(arch: str) -> dict[str, Any]:
    """Mean and std for an architecture without a tag: those of its pretrained tags, when they agree."""
    cfgs = [_open_clip().get_pretrained_cfg(arch, tag) for tag in _open_clip().list_pretrained_tags_by_model(arch)]
    norms = {(tuple(c["mean"]), tuple(c["std"])) for c in cfgs if "mean" in c and "std" in c}
    return {"mean": next(iter(norms))[0], "std": next(iter(norms))[1]} if len(norms) == 1 else {}


# --- factories: (name, options) -> Encoder -------------------------------------------------------------


def _create_fake(name: str, opts: EncoderOptions) -> Encoder:
    return create_fake_encoder(name)


def _create_test(name: str, opts: EncoderOptions) -> Encoder:
    from engine.models.openclip_encoder import OpenClipEncoder

    arch = TEST_MODELS.get(name, name)
    return OpenClipEncoder(arch, tiny_model_id(arch), device=opts.device, batch_size=opts.batch_size, seed=TEST_SEED)


def _create_pretrained(name: str, opts: EncoderOptions) -> Encoder:
    arch, _, tag = name.removeprefix(OPEN_CLIP_PREFIX).partition("/")
    tag = tag.lower().replace("-", "_")  # open_clip's own tag normalisation, so ids stay canonical
    _check_arch(arch, name)
    if (arch, tag) not in _open_clip().list_pretrained():
        tags = _open_clip().list_pretrained_tags_by_model(arch)
        hint = _suggest(f"{arch}/{tag}", [f"{arch}/{t}" for t in tags]) or (
            f"; {arch} has {', '.join(tags[:8])}{' ...' if len(tags) > 8 else ''}" if tags else ""
        )
        raise UnknownModel(f"unknown pretrained weights {name!r}{hint or _suggest(name, _known_names())}")
    cfg = _open_clip().get_pretrained_cfg(arch, tag)

    def weights(progress: ProgressCallback | None) -> Any:
        from engine.models.checkpoint import load_state_dict
        from engine.models.openclip_encoder import fetch_pretrained

        return load_state_dict(fetch_pretrained(arch, tag, weights_dir(), progress))

    from engine.models.openclip_encoder import OpenClipEncoder

    return OpenClipEncoder(
        arch,
        pretrained_model_id(arch, tag),
        weights=weights,
        source=f"{arch}/{tag}",
        device=opts.device,
        batch_size=opts.batch_size,
        mean=cfg.get("mean"),
        std=cfg.get("std"),
        quick_gelu=bool(cfg.get("quick_gelu", False)),
    )


def _checkpoint_encoder(arch: str, weights_file: Path, config: dict[str, Any], device: str, batch: int) -> Encoder:
    from engine.models.checkpoint import check_weights_file, load_state_dict
    from engine.models.openclip_encoder import OpenClipEncoder

    check_weights_file(weights_file)
    label = str(config.get("model_id") or arch)
    return OpenClipEncoder(
        arch,
        checkpoint_model_id(label, weights_file),
        weights=lambda progress: load_state_dict(weights_file),
        source=str(weights_file),
        device=device,
        batch_size=batch,
        mean=config.get("mean") or _norm_for(arch).get("mean"),
        std=config.get("std") or _norm_for(arch).get("std"),
        quick_gelu=bool(config.get("quick_gelu", False)),
    )


def _create_from_file(name: str, opts: EncoderOptions) -> Encoder:
    arch, _, path_text = name.partition("@")
    _check_arch(arch, name)
    path = Path(path_text).expanduser()
    if path.is_dir():
        raise ModelUnavailable(f"{path}: is a folder; give the folder alone (with its config.json), without {arch}@")
    return _checkpoint_encoder(arch, path, {}, opts.device, opts.batch_size)


def _create_from_folder(name: str, opts: EncoderOptions) -> Encoder:
    folder = Path(name).expanduser()
    if folder.is_file():
        raise ModelUnavailable(f"{folder}: is a file; say which architecture it holds, e.g. ViT-B-32@{folder}")
    if not folder.is_dir():
        raise ModelUnavailable(f"{folder}: no such checkpoint folder")
    config = read_checkpoint_config(folder)
    _check_arch(config["arch"], str(folder / "config.json"))
    return _checkpoint_encoder(config["arch"], find_weights(folder), config, opts.device, opts.batch_size)


def _create_arch_only(name: str, opts: EncoderOptions) -> Encoder:
    if name in _register_configs():
        return _create_test(name, opts)
    tags = _open_clip().list_pretrained_tags_by_model(name)
    if tags:
        examples = ", ".join(f"{name}/{tag}" for tag in tags[:4])
        raise UnknownModel(f"{name!r} needs its pretrained weights named too, e.g. {examples}")
    raise UnknownModel(f"unknown model {name!r}{_suggest(name, _known_names() + list_architectures())}")


def _create_random(name: str, opts: EncoderOptions) -> Encoder:
    """``random:ARCH`` or ``random:ARCH:seedN``: real compute, meaningless vectors (benchmarks only)."""
    arch, _, seed = name.removeprefix("random:").partition(":seed")
    if seed and not seed.isdigit():
        raise UnknownModel(f"{name!r}: write random:ARCH or random:ARCH:seedN")
    return create_random_openclip_encoder(arch, device=opts.device, batch_size=opts.batch_size, seed=int(seed or 0))


def _create_scratch(name: str, opts: EncoderOptions) -> Encoder:
    from engine.models.video_model import create_scratch_encoder

    return create_scratch_encoder(name, **opts.video())


def _create_run(name: str, opts: EncoderOptions) -> Encoder:
    from engine.models.video_model import create_run_encoder

    return create_run_encoder(name, **opts.video())


def _is_run(name: str) -> bool:
    return looks_like_path(name) and run_folder_of(name) is not None


_SCHEMES: tuple[tuple[str, Callable[[str], bool]], ...] = (
    ("fake", lambda n: n.startswith("fake:")),
    ("random", lambda n: n.startswith("random:")),
    ("scratch", lambda n: n.startswith(SCRATCH_PREFIX)),
    ("test", lambda n: n in TEST_MODELS),
    ("file", lambda n: "@" in n and not Path(n).exists()),
    ("run", _is_run),
    ("folder", looks_like_path),
    ("open_clip", lambda n: "/" in n),
    ("arch", lambda n: True),
)
_FACTORIES: dict[str, Callable[[str, EncoderOptions], Encoder]] = {
    "fake": _create_fake,
    "random": _create_random,
    "scratch": _create_scratch,
    "test": _create_test,
    "file": _create_from_file,
    "run": _create_run,
    "folder": _create_from_folder,
    "open_clip": _create_pretrained,
    "arch": _create_arch_only,
}


def create_encoder(
    name: str,
    *,
    device: str = "auto",
    batch_size: int = 32,
    pooling: str = "auto",
    head_windows: str = "resample",
) -> Encoder:
    """Make the encoder ``name`` describes (see the module docstring); loads no weights yet.

    ``pooling`` and ``head_windows`` (``engine.settings.POOLINGS``, ``HEAD_WINDOWS``) matter only for models with
    a temporal head (trained runs, ``scratch:``): they decide how its segments and videos are pooled, and so its
    model id. Raises ``ModelUnavailable`` naming the problem (unknown name with close matches, missing, broken or
    foreign checkpoint, unavailable device). Download and load errors surface on first use or ``ensure_loaded``.
    """
    name = name.strip()
    if not name:
        raise UnknownModel("no model name given; try " + DEFAULT_MODEL)
    if pooling not in POOLINGS or head_windows not in HEAD_WINDOWS:
        raise ModelUnavailable(
            f"pooling {pooling!r} / head windows {head_windows!r}: choose pooling from {', '.join(POOLINGS)} "
            f"and head windows from {', '.join(HEAD_WINDOWS)}"
        )
    scheme = next(scheme for scheme, matches in _SCHEMES if matches(name))
    if scheme != "fake":
        _register_configs()  # every other scheme may name one of our tiny architectures
    return _FACTORIES[scheme](name, EncoderOptions(device, batch_size, pooling, head_windows))


def create_random_openclip_encoder(arch: str, *, device: str = "auto", batch_size: int = 32, seed: int = 0) -> Encoder:
    """Any open_clip architecture with random (seeded) weights: for benchmarks, never for indexing."""
    from engine.models.openclip_encoder import OpenClipEncoder

    _check_arch(arch, arch)
    return OpenClipEncoder(
        arch, random_model_id(arch, seed), device=device, batch_size=batch_size, seed=seed, **_norm_for(arch)
    )


def pending_download(name: str) -> str | None:
    """The ``arch/tag`` whose weights ``name`` needs and the cache lacks (so they download on first use), else
    None: a local checkpoint, a test or fake model, weights already here, or a name ``create_encoder``
    refuses. Looks at the disk only."""
    name = name.strip()
    if next(scheme for scheme, matches in _SCHEMES if matches(name)) != "open_clip":
        return None
    from engine.models.openclip_encoder import cached_pretrained

    arch, _, tag = name.removeprefix(OPEN_CLIP_PREFIX).partition("/")
    tag = tag.lower().replace("-", "_")
    if (arch, tag) not in _open_clip().list_pretrained():
        return None
    return None if cached_pretrained(arch, tag, weights_dir()) is not None else f"{arch}/{tag}"


def probe_download(name: str) -> None:
    """Raise ``WeightsUnavailable`` within seconds when ``name``'s weights must be downloaded and the hub cannot
    be reached (or offline mode is on): said when the app starts, not when indexing first needs them."""
    label = pending_download(name)
    if label is not None:
        from engine.models.openclip_encoder import require_network

        require_network(label, weights_dir(), label.partition("/")[0])


def ensure_loaded(encoder: Encoder, progress: ProgressCallback | None = None) -> None:
    """Load (and download) now, reporting progress; a no-op for encoders without weights."""
    load = getattr(encoder, "load", None)
    if callable(load):
        load(progress=progress)


def list_models() -> list[ModelInfo]:
    """Test and fake models, then every open_clip pretrained pair with whether its weights are cached."""
    infos = [
        ModelInfo(
            "scratch:tiny",
            "tiny from-scratch video model (CNN + small text transformer + temporal head, subword tokenizer): "
            "train it with `scenefind train --model scratch:tiny` to run and measure the whole loop on a CPU; "
            "untrained it has seeded random weights",
            "scratch",
            True,
        ),
        ModelInfo(
            "test-tiny",
            "tiny open_clip model with fixed random weights: shows how indexing works, its results are random "
            "(an offline demo in the app, and tests)",
            "test",
            True,
        ),
        ModelInfo(
            "fake:color",
            'colour demo: finds scenes by the colours you name ("red", "a blue sky"), weightless, no download '
            "(an offline demo in the app, and tests)",
            "fake",
            True,
        ),
        ModelInfo("fake:hash-8", "weightless hash encoder, any width N as fake:hash-N (tests only)", "fake", True),
    ]
    from engine.models.openclip_encoder import cached_pretrained

    cache = weights_dir()
    for arch, tag in _open_clip().list_pretrained():
        name = f"{arch}/{tag}"
        try:
            cached: bool | None = cached_pretrained(arch, tag, cache) is not None
        except Exception:  # an unreadable cache folder must not break the model list
            cached = None
        default = " (default)" if name == DEFAULT_MODEL else ""
        infos.append(ModelInfo(name, f"open_clip {arch} trained on {tag}{default}", "open_clip", cached))
    return infos
