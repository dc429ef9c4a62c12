"""The training-only head: importance estimation of the component loss (losses.md §1.1).

A module, not a function, because it owns parameters. It is used by the ``component_ie`` objective alone and
never at search time, so it stays in ``engine.train``; the heads indexing and search use (temporal, concept) live
in ``engine.models.heads``. The loss arithmetic stays in the pure functions of ``engine.train.losses``; EMCL's
maintained state is ``engine.models.emcl.EMCLState``.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn


class ImportanceEstimator(nn.Module):
    """Single-head cross-attention from anchor tokens to each component negative's tokens → importance logits.

    §1.1: ``H = softmax(W Wq (N Wk)ᵀ/√d + mask)·N Wv``, a masked mean over anchor tokens gives ``h``, and
    ``a = uᵀh + b``; missing components get ``−inf`` so ``softmax_c`` (``losses.importance_weights``) is ω.
    Permuting the components permutes the logits. A negative with no valid token attends over its padding
    (finite garbage) instead of producing NaN; its logit is −inf anyway because its component is masked.
    """

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.w_q = nn.Linear(dim, dim, bias=False)
        self.w_k = nn.Linear(dim, dim, bias=False)
        self.w_v = nn.Linear(dim, dim, bias=False)
        self.score = nn.Linear(dim, 1)
        self.dim = dim

    def forward(
        self,
        anchor_tokens: Tensor,
        anchor_mask: Tensor,
        neg_tokens: Tensor,
        neg_mask: Tensor,
        comp_mask: Tensor,
    ) -> Tensor:
        """Importance logits (B, C) from anchor tokens (B, L, D) and negative tokens (B, C, Ln, D) with masks."""
        if neg_tokens.dim() != 4 or anchor_tokens.dim() != 3:
            raise ValueError(
                f"expected anchor tokens (B, L, D) and negative tokens (B, C, Ln, D); got "
                f"{tuple(anchor_tokens.shape)}, {tuple(neg_tokens.shape)}"
            )
        q = self.w_q(anchor_tokens)  # (B, L, D)
        k = self.w_k(neg_tokens)  # (B, C, Ln, D)
        v = self.w_v(neg_tokens)
        att = torch.einsum("bld,bcnd->bcln", q, k) / math.sqrt(self.dim)
        keys = neg_mask.to(torch.bool)
        keys = keys | ~keys.any(dim=-1, keepdim=True)  # an all-padded negative attends over everything
        att = torch.softmax(att.masked_fill(~keys.unsqueeze(2), float("-inf")), dim=-1)
        attended = torch.einsum("bcln,bcnd->bcld", att, v)
        amask = anchor_mask.to(attended.dtype)[:, None, :, None]
        pooled = (attended * amask).sum(dim=2) / amask.sum(dim=2).clamp_min(1.0)  # (B, C, D)
        logits = self.score(pooled).squeeze(-1)
        return logits.masked_fill(~comp_mask.to(torch.bool), float("-inf"))


__all__ = ["ImportanceEstimator"]
