"""Engine settings: a typed, versioned ``settings.toml`` with step-by-step migrations.

Unknown keys and bad values raise ``SettingsError`` naming the file and the key (after labelme's config),
so a typo never silently falls back to a default. ``schema_version`` lets later releases migrate old files
one step at a time (after napari's ``_migrations.py``); a file newer than this release is refused.
"""

from __future__ import annotations

import dataclasses
import os
import re
import tomllib
from collections.abc import Callable
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

SCHEMA_VERSION = 1
DEFAULT_MODEL = "ViT-B-32/laion2b_s34b_b79k"
# How segment and video vectors are pooled: "auto" through the model's temporal head when it has one (mean of
# the frame vectors otherwise), "mean" always the mean (a head model's "+mean" index, for comparison).
POOLINGS = ("auto", "mean")
# How a head fits a window whose frame count differs from the n_frames it was trained on: "resample" n_frames
# evenly spread over the window (what training does with a clip), "pad" the window's own frames with a padding
# mask (resampled only when there are more), "slide" as resample, but the whole-video vector is the mean of the
# head's segment vectors (slide-and-pool) instead of n_frames spread over the whole video.
HEAD_WINDOWS = ("resample", "pad", "slide")
# Environment variables that override a setting for one process (the CLI's --pooling/--head-windows set them).
ENV_OVERRIDES = {
    "SCENEFIND_POOLING": "pooling",
    "SCENEFIND_HEAD_WINDOWS": "head_windows",
    "SCENEFIND_SPEECH_MODEL": "speech_model",
}
DEFAULT_SPEECH_MODEL = "base"  # why this size: engine.speech.models


class SettingsError(ValueError):
    """A settings file or value is invalid; the message names the file and the key."""


def _valid_ray_address(value: str) -> bool:
    """Empty (index locally), ``auto``, ``HOST:PORT`` or ``ray://HOST:PORT``; reachability is checked on use."""
    text = value.strip()
    if text in ("", "auto"):
        return True
    host, sep, port = text.removeprefix("ray://").rpartition(":")
    return bool(sep and host and port.isdigit() and 0 < int(port) < 65536) and " " not in text


@dataclass
class EngineSettings:
    """Everything the engine needs to know that a user may change."""

    schema_version: int = SCHEMA_VERSION
    model: str = DEFAULT_MODEL
    device: str = "auto"
    sample_every_s: float = 1.0
    detect_cuts: bool = True
    segment_window_s: float = 4.0
    segment_stride_s: float = 2.0
    decode_max_side: int = 0  # 0: decode straight to the encoder's input size
    batch_size: int = 32
    hnsw_m: int = 16
    hnsw_ef_construction: int = 200
    hnsw_ef_search: int = 2048  # measured: text-like queries need it for recall@10 >= 0.98 at 1M frames
    save_every_videos: int = 20
    emcl_rerank: bool = False  # EMCL (losses.md §3) re-ranks the candidate videos at search time
    word_scores: bool = True  # a run trained with the word-frame score (losses.md §1.4) scores text queries with it
    ray_address: str = ""  # index on this Ray cluster (auto, HOST:PORT or ray://HOST:PORT); empty: locally
    pooling: str = "auto"  # POOLINGS: through the model's temporal head when it has one, or "mean"
    head_windows: str = "resample"  # HEAD_WINDOWS: how the head fits windows of another frame count
    speech: bool = True  # transcribe what is said (the speech stage, after the picture)
    speech_model: str = DEFAULT_SPEECH_MODEL  # a Whisper size (downloaded on first use) or a model folder
    speech_language: str = "auto"  # detect per video, or a language code (en, de, fr, ...) to skip detection
    screen_text: bool = True  # read text shown on screen (the text stage, after speech)
    text_every_s: float = 1.0  # how often the text stage looks at a frame (it reads only frames with new text)

    def validate(self, source: str = "settings") -> EngineSettings:
        """Check ranges; raise ``SettingsError`` naming the first bad key."""
        checks: dict[str, tuple[Callable[[Any], bool], str]] = {
            "sample_every_s": (lambda v: 0.01 <= v <= 3600, "must be between 0.01 and 3600 seconds"),
            "segment_window_s": (lambda v: 0.5 <= v <= 600, "must be between 0.5 and 600 seconds"),
            "segment_stride_s": (lambda v: 0.25 <= v <= 600, "must be between 0.25 and 600 seconds"),
            "batch_size": (lambda v: 1 <= v <= 4096, "must be between 1 and 4096"),
            "hnsw_m": (lambda v: 2 <= v <= 128, "must be between 2 and 128"),
            "hnsw_ef_construction": (lambda v: 10 <= v <= 4096, "must be between 10 and 4096"),
            "hnsw_ef_search": (lambda v: 10 <= v <= 4096, "must be between 10 and 4096"),
            "save_every_videos": (lambda v: 1 <= v <= 100000, "must be at least 1"),
            "decode_max_side": (lambda v: v == 0 or 16 <= v <= 8192, "must be 0 or between 16 and 8192"),
            "device": (
                lambda v: v in {"auto", "cpu", "cuda", "mps"} or v.startswith("cuda:"),
                "must be auto, cpu, cuda, cuda:N or mps",
            ),
            "model": (lambda v: bool(v.strip()), "must not be empty"),
            "ray_address": (_valid_ray_address, "must be empty, auto, HOST:PORT or ray://HOST:PORT"),
            "pooling": (lambda v: v in POOLINGS, f"must be one of {', '.join(POOLINGS)}"),
            "head_windows": (lambda v: v in HEAD_WINDOWS, f"must be one of {', '.join(HEAD_WINDOWS)}"),
            "speech_model": (lambda v: bool(v.strip()), "must name a model size (base, small, ...) or a folder"),
            "speech_language": (
                lambda v: re.fullmatch(r"auto|[a-z]{2,3}", v) is not None,
                "must be auto or a language code such as en, de or haw",
            ),
            "text_every_s": (lambda v: 0.1 <= v <= 60, "must be between 0.1 and 60 seconds"),
        }
        for name, (ok, why) in checks.items():
            if not ok(getattr(self, name)):
                raise SettingsError(f"{source}: {name} = {getattr(self, name)!r} {why}")
        return self

    def replace(self, **changes: Any) -> EngineSettings:
        return dataclasses.replace(self, **changes).validate()


# Migrations: MIGRATIONS[n] turns a version-n mapping into a version-(n+1) mapping.
MIGRATIONS: dict[int, Callable[[dict[str, Any]], dict[str, Any]]] = {}


def _coerce(name: str, value: Any, expected: type, source: str) -> Any:
    if expected is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if expected is bool and not isinstance(value, bool):
        raise SettingsError(f"{source}: {name} must be true or false, not {value!r}")
    if not isinstance(value, expected) or (expected is int and isinstance(value, bool)):
        raise SettingsError(f"{source}: {name} must be a {expected.__name__}, not {value!r}")
    return value


def from_mapping(data: dict[str, Any], source: str = "settings") -> EngineSettings:
    """Build settings from a mapping, migrating old versions and rejecting unknown keys."""
    data = dict(data)
    version = data.get("schema_version", SCHEMA_VERSION)
    if not isinstance(version, int) or version < 1:
        raise SettingsError(f"{source}: schema_version must be a positive integer, not {version!r}")
    if version > SCHEMA_VERSION:
        raise SettingsError(
            f"{source}: written by a newer Scenefind (schema {version}, this release reads up to "
            f"{SCHEMA_VERSION}); upgrade Scenefind or remove the file"
        )
    while version < SCHEMA_VERSION:
        data = MIGRATIONS[version](data)
        version += 1
        data["schema_version"] = version
    types = {f.name: f.type for f in fields(EngineSettings)}
    kinds = {"int": int, "float": float, "bool": bool, "str": str}
    unknown = sorted(set(data) - set(types))
    if unknown:
        raise SettingsError(f"{source}: unknown setting(s) {', '.join(unknown)}")
    values = {k: _coerce(k, v, kinds[str(types[k])], source) for k, v in data.items()}
    return EngineSettings(**values).validate(source)


def load(path: Path) -> EngineSettings:
    """Read ``path`` (defaults when it does not exist); ``SCENEFIND_MODEL`` overrides the model,
    ``SCENEFIND_POOLING``, ``SCENEFIND_HEAD_WINDOWS`` and ``SCENEFIND_SPEECH_MODEL`` their settings
    (``ENV_OVERRIDES``)."""
    settings = EngineSettings()
    if path.exists():
        try:
            raw = tomllib.loads(path.read_text(encoding="utf-8"))
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
            raise SettingsError(f"{path}: not a valid TOML file ({exc})") from exc
        settings = from_mapping(raw, str(path))
    env_model = os.environ.get("SCENEFIND_MODEL")
    if env_model:
        settings = settings.replace(model=env_model)
    for variable, key in ENV_OVERRIDES.items():
        value = os.environ.get(variable, "").strip()
        if value:
            try:
                settings = dataclasses.replace(settings, **{key: value}).validate(variable)
            except SettingsError as exc:
                raise SettingsError(f"{exc} (from the environment)") from exc
    return settings


def save(settings: EngineSettings, path: Path) -> None:
    """Write atomically so a crash never leaves a half-written settings file."""
    import tomli_w

    from engine.atomic import atomic_write_bytes

    settings.validate(str(path))
    atomic_write_bytes(path, tomli_w.dumps(dataclasses.asdict(settings)).encode("utf-8"))
