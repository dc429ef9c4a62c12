"""Small trainable modules the objectives need: the importance-estimation head (§1) and the S3MA concept bank (§2).

They are modules, not functions, because they own parameters (and, for the concept bank, the word→concept map
that must travel with a checkpoint). The loss arithmetic stays in the pure functions of ``engine.train.losses``;
EMCL's maintained state is ``engine.models.emcl.EMCLState``.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from engine.train.s3ma import sparse_code

_KMEANS_CHUNK = 8192  # rows scored against all centroids at once (8192 × 2048 float32 = 64 MiB at most)


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


def spherical_kmeans(x: Tensor, k: int, *, iters: int = 20, seed: int = 0) -> tuple[Tensor, Tensor]:
    """Cosine k-means: unit centroids (k, D) and each row's cluster (N,), deterministic for a seed.

    Starts from ``k`` distinct rows chosen by a seeded permutation; an emptied cluster is re-seeded with the row
    farthest from its own centroid. Cosine, not Euclidean, because the sparse code ranks concepts by cosine, so a
    word's cluster is then also its most similar concept.
    """
    if x.dim() != 2 or x.shape[0] < k or k < 1:
        raise ValueError(f"k-means needs a (N, D) table with N ≥ k ≥ 1; got shape {tuple(x.shape)} and k={k}")
    xn = F.normalize(x.detach().float(), dim=-1)
    gen = torch.Generator().manual_seed(int(seed))
    centroids = xn[torch.randperm(xn.shape[0], generator=gen)[:k].to(xn.device)].clone()
    assign = _nearest(xn, centroids)[0]
    for _ in range(iters):
        sums = torch.zeros_like(centroids).index_add_(0, assign, xn)
        counts = torch.bincount(assign, minlength=k)
        empties = torch.nonzero(counts == 0).flatten().tolist()
        if empties:
            sims = (xn * centroids[assign]).sum(dim=1)
            for empty in empties:
                far = int(sims.argmin())
                sums[empty] = xn[far]
                sims[far] = 2.0  # each emptied cluster takes a different row
        centroids = F.normalize(sums, dim=-1)
        assign = _nearest(xn, centroids)[0]
    return centroids, assign


def _nearest(xn: Tensor, centroids: Tensor) -> tuple[Tensor, Tensor]:
    """Index of and cosine to the nearest centroid per row, scored in chunks."""
    best, sims = [], []
    for start in range(0, xn.shape[0], _KMEANS_CHUNK):
        s, i = (xn[start : start + _KMEANS_CHUNK] @ centroids.t()).max(dim=1)
        best.append(i)
        sims.append(s)
    return torch.cat(best), torch.cat(sims)


class ConceptBank(nn.Module):
    """S3MA's learnable concepts ``Z`` (n_c, D) plus the vocabulary→concept map ``kappa`` (a saved buffer).

    Build it with :meth:`from_token_embeddings` (k-means over the text encoder's token-embedding table, mapped to
    ``D`` through the text projection when widths differ), or directly with random concepts for tests.
    """

    kappa: Tensor

    def __init__(self, concepts: Tensor, kappa: Tensor) -> None:
        super().__init__()
        self.concepts = nn.Parameter(concepts.detach().clone())
        self.register_buffer("kappa", kappa.detach().to(torch.long).clone(), persistent=True)

    @classmethod
    def from_token_embeddings(
        cls,
        table: Tensor,
        n_concepts: int = 512,
        *,
        projection: Tensor | None = None,
        seed: int = 0,
        iters: int = 20,
    ) -> ConceptBank:
        """k-means (``seed``, ``iters``) over ``table`` (V, W) [@ ``projection`` (W, D)]; ``kappa[w]`` = cluster."""
        x = table.detach().float()
        if projection is not None:
            if projection.shape[0] != x.shape[1]:
                raise ValueError(f"projection {tuple(projection.shape)} does not map width {x.shape[1]}")
            x = x @ projection.detach().float()
        centroids, assign = spherical_kmeans(x, n_concepts, iters=iters, seed=seed)
        return cls(centroids, assign)

    @property
    def n_concepts(self) -> int:
        return self.concepts.shape[0]

    def code(self, x: Tensor, *, tau: float = 0.05, k: int = 16) -> Tensor:
        """The sparse code ``π(x)`` (..., n_c) of embeddings ``x`` (..., D)."""
        return sparse_code(x, self.concepts, tau=tau, k=k)[0]

    def shared_concepts(self, a: Tensor, b: Tensor, *, top: int = 5, tau: float = 0.05, k: int = 16) -> Tensor:
        """Concept ids that explain a hit: the ``top`` largest ``π(a)_k·π(b)_k`` for one pair (1-D inputs)."""
        weight = self.code(a, tau=tau, k=k) * self.code(b, tau=tau, k=k)
        values, idx = weight.topk(min(top, weight.shape[-1]))
        return idx[values > 0]


__all__ = ["ConceptBank", "ImportanceEstimator", "spherical_kmeans"]
