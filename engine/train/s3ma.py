"""S3MA / SUMA: a shared sparse space of learnable concepts, its alignment losses and the four-way similarity.

After arXiv 2302.09473 (no official code; ``losses.md`` §2 fixes every choice). Texts, videos and frames are coded
as sparse mixtures of ``n_c`` concept vectors (top-``k_s`` softmax of cosine logits). Words anchor the text code to
the concepts of their own clusters (``L_sim``) and the video and frame codes to the caption's concepts
(``L_align``); retrieval scores average dense and sparse, coarse and fine similarities. The sparse codes also
explain a hit: the concepts (and their words) shared by query and video. The concept bank with its k-means
initialisation is ``engine.models.heads.ConceptHead``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from engine.models.heads import sparse_code
from engine.train.masking import masked_softmax


def text_anchor_targets(token_ids: Tensor, token_mask: Tensor, kappa: Tensor, n_concepts: int) -> tuple[Tensor, Tensor]:
    """Anchor distribution ``y`` (B, n_c) = multi-hot of the caption's concept set ``A(t)`` / ``|A|``, and ``has``.

    ``token_mask`` (B, L) must be 1 only on the caption's content tokens: padding *and* special tokens (start,
    end) are 0. ``kappa`` (V,) maps a vocabulary id to its concept. ``has`` (B,) is false for an empty ``A(t)``;
    those samples are skipped by :func:`concept_losses`.
    """
    keep = token_mask.to(torch.bool)
    concept = torch.where(keep, kappa[token_ids.clamp(0, kappa.shape[0] - 1)], torch.full_like(token_ids, n_concepts))
    hot = torch.zeros(token_ids.shape[0], n_concepts + 1, device=token_ids.device)
    hot.scatter_(1, concept, 1.0)
    hot = hot[:, :n_concepts]
    size = hot.sum(dim=1, keepdim=True)
    return hot / size.clamp_min(1.0), size.squeeze(1) > 0


def concept_losses(
    text: Tensor,
    video: Tensor,
    frames: Tensor,
    frame_mask: Tensor,
    concepts: Tensor,
    anchors: Tensor,
    has_anchors: Tensor,
    *,
    tau: float = 0.05,
) -> dict[str, Tensor]:
    """``L_sim`` and ``L_align`` (§2) for the matched pairs (t_i, v_i, frames_i): ``{"sim", "align"}``.

    ``L_sim = −Σ_k y_k log π̃(t)_k``; ``L_align = −Σ_k y_k log π̃(v)_k − mean_j Σ_k y_k log π̃(f_j)_k`` over valid
    frames, with ``π̃`` the full softmax. Both are averaged over samples with a non-empty anchor set (0 if none).
    """
    zn = F.normalize(concepts, dim=-1)

    def log_code(x: Tensor) -> Tensor:
        return torch.log_softmax(F.normalize(x, dim=-1) @ zn.t() / tau, dim=-1)

    y = anchors.to(text.dtype)
    sim = -(y * log_code(text)).sum(-1)
    frame_ce = -(y.unsqueeze(1) * log_code(frames)).sum(-1)  # (B, F)
    fmask = frame_mask.to(text.dtype)
    frame_term = (frame_ce * fmask).sum(1) / fmask.sum(1).clamp_min(1.0)
    align = -(y * log_code(video)).sum(-1) + frame_term
    rows = has_anchors.to(torch.bool)
    if not bool(rows.any()):
        zero = (sim.sum() + align.sum()) * 0.0
        return {"sim": zero, "align": zero}
    return {"sim": sim[rows].mean(), "align": align[rows].mean()}


def coarse_fine(
    text: Tensor, video: Tensor, frames: Tensor, frame_mask: Tensor, *, tau_f: float = 0.1
) -> tuple[Tensor, Tensor]:
    """Coarse ``s_c = <t̂, v̂>`` and fine ``s_f = Σ_j softmax_j(<t̂,f̂_j>/τ_f)<t̂,f̂_j>``, each (Bt, Bv)."""
    tn = F.normalize(text, dim=-1)
    coarse = tn @ F.normalize(video, dim=-1).t()
    cos = torch.einsum("ad,bfd->abf", tn, F.normalize(frames, dim=-1))
    valid = frame_mask.to(torch.bool).unsqueeze(0).expand_as(cos)
    fine = (masked_softmax(cos / tau_f, valid) * cos).sum(-1)
    return coarse, fine


def multi_grained_similarity(
    text: Tensor,
    video: Tensor,
    frames: Tensor,
    frame_mask: Tensor,
    concepts: Tensor,
    *,
    tau_f: float = 0.1,
    tau_s: float = 0.05,
    k_s: int = 16,
) -> Tensor:
    """``S = ¼(s_c + s_f + s_c^s + s_f^s)`` (Bt, Bv): dense and sparse (``x^s = π(x)ᵀZ``), coarse and fine.

    ``text`` (Bt, D), ``video`` (Bv, D), ``frames`` (Bv, F, D) with ``frame_mask`` (Bv, F). The same ``S`` ranks
    candidates at search time.
    """
    sc, sf = coarse_fine(text, video, frames, frame_mask, tau_f=tau_f)

    def sparse(x: Tensor) -> Tensor:
        return sparse_code(x, concepts, tau=tau_s, k=k_s)[0] @ concepts

    ssc, ssf = coarse_fine(sparse(text), sparse(video), sparse(frames), frame_mask, tau_f=tau_f)
    return 0.25 * (sc + sf + ssc + ssf)


def s3ma_loss(
    text: Tensor,
    video: Tensor,
    frames: Tensor,
    frame_mask: Tensor,
    concepts: Tensor,
    anchors: Tensor,
    has_anchors: Tensor,
    scale: Tensor | float,
    *,
    alpha: float = 0.5,
    beta: float = 0.5,
    tau_f: float = 0.1,
    tau_s: float = 0.05,
    k_s: int = 16,
) -> dict[str, Tensor]:
    """§2 objective ``L_nce(s·S) + α·L_sim + β·L_align``: ``{"total", "nce", "sim", "align", "similarity"}``.

    Batch ``i`` pairs text ``i`` with video ``i``; ``anchors``/``has_anchors`` come from
    :func:`text_anchor_targets`. ``similarity`` is ``S`` (unscaled).
    """
    sim_matrix = multi_grained_similarity(text, video, frames, frame_mask, concepts, tau_f=tau_f, tau_s=tau_s, k_s=k_s)
    scaled = scale * sim_matrix
    target = torch.arange(scaled.shape[0], device=scaled.device)
    nce = 0.5 * (F.cross_entropy(scaled, target) + F.cross_entropy(scaled.t(), target))
    parts = concept_losses(text, video, frames, frame_mask, concepts, anchors, has_anchors, tau=tau_s)
    total = nce + alpha * parts["sim"] + beta * parts["align"]
    return {"total": total, "nce": nce, "sim": parts["sim"], "align": parts["align"], "similarity": sim_matrix}
