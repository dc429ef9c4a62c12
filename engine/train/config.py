"""Every training setting in one dataclass, read from a TOML/JSON CONFIG file and/or command-line flags.

Why its own module: the CLI, the Training tab's form and the run folder all need the settings, and none of them
needs the training loop. Defaults follow losses.md (λ_ie 0.1, λ_cmr 0.2, λ_imc 0.3, IMC ``label0``, S3MA α = β =
0.5); unknown keys and wrong types are refused with the file and a close match named.
"""

from __future__ import annotations

import dataclasses
import difflib
import json
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from engine.settings import DEFAULT_MODEL
from engine.train.objective_settings import OBJECTIVES, ObjectiveSettings

_LOSS = ObjectiveSettings()


@dataclass
class TrainConfig:
    """Every training setting; a CONFIG file (TOML or JSON) sets any subset by these names."""

    data: str | None = None  # captions file for engine.train.data.load_training_data
    negatives: str | None = None  # negatives file for engine.train.negatives.read_negatives
    out: str = "runs/train"  # run folder: checkpoints/, best/, log.csv
    model: str = DEFAULT_MODEL  # registry name (pretrained pair, test-tiny, random:ARCH, folder)
    objective: str = "component"
    epochs: int = 10
    batch_size: int = 32  # the global batch: with N processes each encodes batch_size / N clips
    grad_accum: int = 1
    lr: float = 1e-5  # towers
    head_lr: float = 1e-4  # temporal head, concept bank, importance estimator, logit scale
    weight_decay: float = 0.2
    warmup: float = 0.1  # fraction of all optimiser steps spent warming up
    max_grad_norm: float = 1.0  # 0 = no clipping
    n_frames: int = 8
    val_fraction: float = 0.1
    seed: int = 0
    patience: int = 3  # epochs without better validation retrieval (trainer.SELECTION) before stopping; 0 = never
    freeze_vision: bool = False
    freeze_text: bool = False
    heads_only: bool = False
    temporal_layers: int = 2
    motion: bool = True
    concept_head: bool = False  # also needed (and implied) by the s3ma objective
    n_concepts: int = 512
    emcl_k: int = 32
    device: str = "auto"
    amp: bool = True  # float16 autocast + GradScaler, CUDA only
    resume: bool = True
    keep_last: int = 2  # epoch checkpoints kept besides best/
    tensorboard: bool = True
    eval_batch_size: int = 64
    # the loss settings, defaults from ObjectiveSettings (losses.md), the one place they are written
    lam_ie: float = _LOSS.lam_ie
    relation_negatives: bool = _LOSS.relation  # the relation swap joins the component negatives (objective.py)
    time_reversal: float = _LOSS.time_reversal  # weight of the reversed-clip term (engine.train.time_reversal)
    lam_cmr: float = _LOSS.lam_cmr
    lam_imc: float = _LOSS.lam_imc
    imc: str = _LOSS.imc
    s3ma_alpha: float = _LOSS.s3ma_alpha
    s3ma_beta: float = _LOSS.s3ma_beta
    s3ma_k: int = _LOSS.s3ma_k

    def __post_init__(self) -> None:
        if self.objective not in OBJECTIVES:
            raise ValueError(f"unknown objective {self.objective!r}; expected one of {OBJECTIVES}")
        for name in ("epochs", "batch_size", "grad_accum", "n_frames"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1, got {getattr(self, name)}")

    @classmethod
    def from_file(cls, path: str | Path, **overrides: Any) -> TrainConfig:
        """Read a TOML or JSON CONFIG (flat keys, or under ``[train]``); relative paths are from its folder."""
        path = Path(path).expanduser()
        try:
            text = path.read_text(encoding="utf-8")
            raw = json.loads(text) if path.suffix.lower() == ".json" else tomllib.loads(text)
        except OSError as exc:
            raise ValueError(f"{path}: cannot read the training config ({exc})") from exc
        except (json.JSONDecodeError, tomllib.TOMLDecodeError) as exc:
            raise ValueError(
                f"{path}: not valid {'JSON' if path.suffix.lower() == '.json' else 'TOML'} ({exc})"
            ) from exc
        if isinstance(raw.get("train"), dict) and len(raw) == 1:
            raw = raw["train"]
        return cls.from_dict(raw, source=str(path), base=path.parent, **overrides)

    @classmethod
    def from_dict(
        cls, raw: dict[str, Any], *, source: str = "config", base: Path | None = None, **overrides: Any
    ) -> TrainConfig:
        fields = {f.name: f for f in dataclasses.fields(cls)}
        for key, value in raw.items():
            if key not in fields:
                close = difflib.get_close_matches(key, list(fields), n=3)
                hint = f"; did you mean {', '.join(close)}?" if close else f"; known settings: {', '.join(fields)}"
                raise ValueError(f"{source}: unknown setting {key!r}{hint}")
            default = fields[key].default
            kind = str if default is None else type(default)  # the optional settings are paths
            ok = value is None or isinstance(value, kind) or (kind is float and isinstance(value, int))
            if not ok or (isinstance(value, bool) and kind is not bool):
                raise ValueError(f"{source}: setting {key!r} must be {kind.__name__}, got {value!r}")
        values = {**raw, **{k: v for k, v in overrides.items() if v is not None}}
        if base is not None:
            for key in ("data", "negatives", "out"):
                if key in raw and raw[key] and not Path(raw[key]).expanduser().is_absolute():
                    values[key] = str(base / raw[key])
            if "model" in raw and str(raw["model"]).startswith("."):
                values["model"] = str(base / raw["model"])
        return cls(
            **{
                k: float(v) if isinstance(fields[k].default, float) and isinstance(v, int) else v
                for k, v in values.items()
            }
        )

    def objective_settings(self) -> ObjectiveSettings:
        return ObjectiveSettings(
            name=self.objective,
            lam_ie=self.lam_ie,
            lam_cmr=self.lam_cmr,
            lam_imc=self.lam_imc,
            imc=self.imc,
            s3ma_alpha=self.s3ma_alpha,
            s3ma_beta=self.s3ma_beta,
            s3ma_k=self.s3ma_k,
            relation=self.relation_negatives,
            time_reversal=self.time_reversal,
        )


__all__ = ["TrainConfig"]
