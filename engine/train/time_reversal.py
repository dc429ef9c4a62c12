"""Time-reversed clips as negatives of captions that name a path ("goes from left to right").

Why, beyond the four papers of losses.md: findings.md #1 and #7. A clip and its time-reversal hold the same frames,
so nothing in a contrastive batch of unrelated clips makes the video side tell them apart; the papers' negatives
are all captions (text side). Where a caption names a path, "from A to B", the same frames played backwards show
the path from B to A, which that caption does not describe: the reversed clip is a free, certain, video-side hard
negative. Nothing else needs it (no reversed caption is written, so no new caption enters training).

The term, for the captions ``i`` of a batch that name a path (``E``), with ``v_i`` the pooled video vector, ``r_i``
the pooled vector of the same frame features in reverse order (through the same temporal head), ``t_i`` the
caption and ``s`` the logit scale::

    L_rev = mean_{i∈E} −log( exp(s·cos(t_i, v_i)) / (exp(s·cos(t_i, v_i)) + exp(s·cos(t_i, r_i))) )

and the objective's total becomes ``total + λ_rev · L_rev`` (``time_reversal`` = λ_rev; 0, the default, leaves
every objective exactly as losses.md writes it). A batch with no such caption adds 0.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor

# "from the kitchen to the garden", "from left to right", "from small to big": a source, then a goal, in order
_PATH = re.compile(r"\bfrom\s+\S.*?\s+to\s+\S", re.IGNORECASE)


def names_a_path(caption: str) -> bool:
    """Whether ``caption`` says "from … to …": played backwards, its clip shows the opposite path."""
    return _PATH.search(caption) is not None


def path_mask(captions: Sequence[str], device: torch.device | str = "cpu") -> Tensor:
    """(B,) bool: which captions name a path."""
    return torch.tensor([names_a_path(c) for c in captions], dtype=torch.bool, device=device)


def time_reversal_loss(text: Tensor, video: Tensor, reversed_video: Tensor, mask: Tensor, scale: Tensor) -> Tensor:
    """``L_rev`` above from pooled text (B, D), video (B, D) and reversed-video (B, D) vectors; 0 without a path."""
    if not bool(mask.any()):
        return text.new_zeros(())
    t = F.normalize(text[mask], dim=-1)
    pos = (t * F.normalize(video[mask], dim=-1)).sum(-1)
    neg = (t * F.normalize(reversed_video[mask], dim=-1)).sum(-1)
    return F.softplus(scale * (neg - pos)).mean()  # = −log σ(s·(pos − neg)), the two-way softmax above


def reverse_frames(per_frame: Tensor, frame_mask: Tensor | None = None) -> tuple[Tensor, Tensor | None]:
    """Frame features (B, F, D) and mask played backwards (padding, if any, moves to the front and stays masked)."""
    return per_frame.flip(1), None if frame_mask is None else frame_mask.flip(1)


__all__ = ["names_a_path", "path_mask", "reverse_frames", "time_reversal_loss"]
