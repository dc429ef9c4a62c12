"""The training objectives' names and loss settings, without torch.

Why apart from ``engine.train.objective``: the settings are read by the CONFIG parser, the CLI and the Training
tab's form, which must not wait for torch to load (seconds on a cold start) just to show the defaults.
"""

from __future__ import annotations

from dataclasses import dataclass

OBJECTIVES = ("infonce", "component", "component_ie", "ceclip", "s3ma", "emcl")


@dataclass(frozen=True)
class ObjectiveSettings:
    """Loss weights and switches (losses.md defaults)."""

    name: str = "infonce"
    lam_ie: float = 0.1
    lam_cmr: float = 0.2
    lam_imc: float = 0.3
    imc: str = "label0"
    cmr_upper: float = 10.0
    s3ma_alpha: float = 0.5
    s3ma_beta: float = 0.5
    s3ma_k: int = 16
    emcl_temp: float = 3.0
    relation: bool = True  # the relation swap joins §1's component negatives
    time_reversal: float = 0.0  # λ_rev of engine.train.time_reversal (ours, beyond losses.md); 0 = off

    def __post_init__(self) -> None:
        if self.name not in OBJECTIVES:
            raise ValueError(f"unknown objective {self.name!r}; expected one of {OBJECTIVES}")
        if self.time_reversal < 0:
            raise ValueError(f"time_reversal must be at least 0, got {self.time_reversal}")


__all__ = ["OBJECTIVES", "ObjectiveSettings"]
