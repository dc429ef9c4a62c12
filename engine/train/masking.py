"""Masked softmax helpers shared by the losses: softmax over valid entries that never produces NaN.

Padding masks are everywhere in the objectives (frames, tokens, missing components); a plain ``-inf`` fill makes an
all-padded slice NaN in the forward *and* poisons the backward pass, so these helpers compute such slices on zeros
and mask the result.
"""

from __future__ import annotations

import torch
from torch import Tensor


def _filled(logits: Tensor, valid: Tensor, dim: int) -> tuple[Tensor, Tensor]:
    valid = valid.to(torch.bool)
    any_valid = valid.any(dim=dim, keepdim=True)
    return logits.masked_fill(~valid, float("-inf")).masked_fill(~any_valid, 0.0), valid


def masked_softmax(logits: Tensor, valid: Tensor, dim: int = -1) -> Tensor:
    """Softmax over the valid entries along ``dim``; invalid entries and all-invalid slices get 0."""
    filled, valid = _filled(logits, valid, dim)
    return torch.softmax(filled, dim=dim) * valid.to(logits.dtype)


def masked_log_softmax(logits: Tensor, valid: Tensor, dim: int = -1) -> Tensor:
    """Log-softmax over the valid entries; invalid entries (and all-invalid slices) are returned as 0."""
    filled, valid = _filled(logits, valid, dim)
    return torch.where(valid, torch.log_softmax(filled, dim=dim), torch.zeros_like(logits))
