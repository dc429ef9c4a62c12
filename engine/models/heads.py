"""The heads a trained video model brings to indexing and search: the temporal head and the concept head.

Why here and not in ``engine.train``: indexing pools segment and video vectors through the temporal head, and
search codes queries and vectors with the concept head (losses.md §2), so both belong with the encoders. The
trainer imports them from here; nothing in ``engine.models`` imports ``engine.train``. Training-only heads (the
importance estimator of §1, CE-CLIP's thresholds) stay in ``engine.train``.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

_KMEANS_CHUNK = 8192  # rows scored against all centroids at once (8192 × 2048 float32 = 64 MiB at most)


class TemporalHead(nn.Module):
    """Frame embeddings (B, F, D) -> per-frame features (B, F, D) and a pooled video vector (B, D).

    Each token is ``[LN(f_t) ; LN(f_t − f_{t−1})]`` (``f_{−1} = f_0``; each half layer-normalised on its own, so a
    small frame-to-frame change weighs as much as the frame's content), projected to ``width``, plus a position
    embedding, through a small transformer, projected back to ``D`` and mean-pooled over valid frames. There is
    deliberately no residual ``f_t + ...`` (EMCL-Net's seqTransf has one): with it the pooled vector starts as, and
    in findings.md #1 stayed, the order-blind mean of the frames. The difference half carries motion, so a clip
    and its time-reversal differ (reversal flips the sign of every difference); ``motion=False`` is the
    order-blind baseline for comparison.
    """

    def __init__(
        self,
        dim: int,
        *,
        width: int | None = None,
        layers: int = 2,
        heads: int = 4,
        max_frames: int = 32,
        motion: bool = True,
    ) -> None:
        super().__init__()
        width = width or dim
        self.dim, self.width, self.layers, self.heads, self.max_frames, self.motion = (
            dim,
            width,
            layers,
            heads,
            max_frames,
            motion,
        )
        self.frame_norm = nn.LayerNorm(dim)
        self.motion_norm = nn.LayerNorm(dim) if motion else None
        self.inp = nn.Linear(2 * dim if motion else dim, width)
        self.pos = nn.Parameter(torch.randn(max_frames, width) * 0.02)
        block = nn.TransformerEncoderLayer(
            width, heads, dim_feedforward=4 * width, dropout=0.0, activation="gelu", batch_first=True, norm_first=True
        )
        self.encoder = nn.TransformerEncoder(block, layers, enable_nested_tensor=False)
        self.norm = nn.LayerNorm(width)
        self.out = nn.Linear(width, dim)

    def config(self) -> dict[str, Any]:
        return {
            "dim": self.dim,
            "width": self.width,
            "layers": self.layers,
            "heads": self.heads,
            "max_frames": self.max_frames,
            "motion": self.motion,
        }

    def forward(self, frames: Tensor, frame_mask: Tensor | None = None) -> tuple[Tensor, Tensor]:
        """(per-frame features (B, F, D), pooled (B, D)); padded frames are ignored by attention and pooling."""
        b, n, _ = frames.shape
        if n > self.max_frames:
            raise ValueError(f"{n} frames per clip, but the temporal head was built for at most {self.max_frames}")
        mask = torch.ones(b, n, dtype=torch.bool, device=frames.device) if frame_mask is None else frame_mask.bool()
        x = self.frame_norm(frames)
        if self.motion_norm is not None:
            prev = torch.cat([frames[:, :1], frames[:, :-1]], dim=1)
            diff = (frames - prev) * (mask & torch.cat([mask[:, :1], mask[:, :-1]], dim=1)).unsqueeze(-1)
            x = torch.cat([x, self.motion_norm(diff)], dim=-1)
        h = self.inp(x) + self.pos[:n]
        h = self.encoder(h, src_key_padding_mask=~mask)
        out = self.out(self.norm(h))
        weights = mask.to(out.dtype).unsqueeze(-1)
        pooled = (out * weights).sum(dim=1) / weights.sum(dim=1).clamp_min(1.0)
        return out, pooled


def new_temporal_head(dim: int, *, n_frames: int = 8, layers: int = 2, motion: bool = True) -> TemporalHead:
    """A fresh head for ``dim``-d towers (weights from the global RNG): one attention head per 32 dimensions (1 to
    8), room for at least 32 frames. Training and the untrained ``scratch:`` models build theirs here."""
    heads = max(1, min(8, dim // 32))
    return TemporalHead(dim, layers=layers, heads=heads, max_frames=max(32, n_frames), motion=motion)


def sparse_code(x: Tensor, concepts: Tensor, *, tau: float = 0.05, k: int = 16) -> tuple[Tensor, Tensor]:
    """Sparse code ``π(x)`` (..., n_c) and the full cosine logits ``z = <x̂, Ẑ_k>/τ`` it came from.

    Only the top ``min(k, n_c)`` logits are kept and soft-maxed; the others are 0. ``log_softmax(z)`` is the
    full code ``π̃`` used by the alignment losses.
    """
    logits = F.normalize(x, dim=-1) @ F.normalize(concepts, dim=-1).t() / tau
    top, idx = logits.topk(min(int(k), concepts.shape[0]), dim=-1)
    pi = torch.zeros_like(logits).scatter(-1, idx, torch.softmax(top, dim=-1))
    return pi, logits


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


class ConceptHead(nn.Module):
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
    ) -> ConceptHead:
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


__all__ = ["ConceptHead", "TemporalHead", "new_temporal_head", "sparse_code", "spherical_kmeans"]
