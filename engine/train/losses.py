"""Training objectives (the contract is ``shared/design/losses.md``): shared pieces, §1 here, §2-§4 re-exported.

All losses are pure torch functions over logits or embeddings, so the trainer composes them and the tests check
them against the reference values of losses.md §5. Conventions (§0): a similarity matrix ``S`` has rows = texts and
columns = videos; ``s = exp(logit_scale)`` is applied by the caller (``*_logits`` arguments already carry it);
masks are 1 = valid. This module holds the symmetric InfoNCE and the sentence-component negatives with importance
estimation (arXiv 2312.06699, §1); S3MA lives in ``engine.train.s3ma``, EMCL in ``engine.models.emcl`` and CE-CLIP in
``engine.train.ceclip``; import them all from here. The small modules (importance head, concept bank) live in
``engine.train.heads``; ``EMCLState`` lives with EMCL.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from engine.models.emcl import (
    EMCLState,
    emcl_em,
    emcl_init_m,
    emcl_net_eval_scores,
    emcl_net_logits,
    emcl_net_loss,
    emcl_rerank_scores,
    text_conditioned_pool,
)
from engine.train.ceclip import ceclip_losses, cmr_threshold_update
from engine.train.masking import masked_log_softmax, masked_softmax
from engine.train.s3ma import (
    coarse_fine,
    concept_losses,
    multi_grained_similarity,
    s3ma_loss,
    sparse_code,
    text_anchor_targets,
)

__all__ = [
    "EMCLState",
    "ce_rows",
    "ceclip_losses",
    "clamp_logit_scale_",
    "cmr_threshold_update",
    "coarse_fine",
    "component_negative_loss",
    "component_objective",
    "concept_losses",
    "cosine_logits",
    "emcl_em",
    "emcl_init_m",
    "emcl_net_eval_scores",
    "emcl_net_logits",
    "emcl_net_loss",
    "emcl_rerank_scores",
    "fine_grained_similarity",
    "ie_targets",
    "importance_kl",
    "importance_weights",
    "info_nce",
    "masked_log_softmax",
    "masked_softmax",
    "multi_grained_similarity",
    "s3ma_loss",
    "sparse_code",
    "text_anchor_targets",
    "text_conditioned_pool",
]


# --- §0 shared pieces ---------------------------------------------------------------------------------------------


def ce_rows(logits: Tensor, targets: Tensor | None = None) -> Tensor:
    """``CE_rows(S)``: mean over rows of ``−log softmax(S[r])[y_r]``, ``y_r = r`` unless ``targets`` is given."""
    if targets is None:
        targets = torch.arange(logits.shape[0], device=logits.device)
    return F.cross_entropy(logits, targets)


def info_nce(logits: Tensor) -> Tensor:
    """Symmetric InfoNCE ``½[CE_rows(S) + CE_rows(Sᵀ)]`` of a square logit matrix (rows text, columns video)."""
    if logits.dim() != 2 or logits.shape[0] != logits.shape[1]:
        raise ValueError(f"InfoNCE needs a square logit matrix, got shape {tuple(logits.shape)}")
    return 0.5 * (ce_rows(logits) + ce_rows(logits.t()))


def cosine_logits(a: Tensor, b: Tensor, scale: Tensor | float = 1.0) -> Tensor:
    """``s·<â_i, b̂_j>`` for all pairs: (A, D) × (B, D) → (A, B)."""
    return scale * (F.normalize(a, dim=-1) @ F.normalize(b, dim=-1).t())


def clamp_logit_scale_(logit_scale: nn.Parameter | Tensor, max_scale: float = 100.0) -> None:
    """Clamp CLIP's ``logit_scale`` in place to ``[0, ln max_scale]`` (do it after every optimiser step)."""
    with torch.no_grad():
        logit_scale.clamp_(0.0, math.log(max_scale))


# --- §1 sentence-component negatives and importance estimation ----------------------------------------------------


def fine_grained_similarity(
    words: Tensor,
    word_mask: Tensor,
    frames: Tensor,
    frame_mask: Tensor,
    *,
    tau1: float = 0.1,
    tau2: float = 0.1,
) -> Tensor:
    """Two-stage word-frame similarity ``s_fine`` (§1.4) for broadcastable leading dimensions.

    ``words`` (..., L, D) and ``frames`` (..., F, D) with masks (..., L) and (..., F): per word, a softmax over
    frames (``τ1``) of the cosines weights those cosines; a softmax over words (``τ2``) weights the result.
    For the full text×video matrix pass ``words[:, None]`` and ``frames[None]`` (→ (Bt, Bv)); for aligned pairs
    (e.g. each video with its negatives) pass equal leading shapes. Padded words and frames are ignored; a side
    with nothing valid scores 0.
    """
    cos = F.normalize(words, dim=-1) @ F.normalize(frames, dim=-1).transpose(-1, -2)  # (..., L, F)
    fmask = frame_mask.to(torch.bool).unsqueeze(-2)
    per_word = (masked_softmax(cos / tau1, fmask.expand_as(cos)) * cos).sum(dim=-1)  # (..., L)
    wmask = word_mask.to(torch.bool).expand_as(per_word)
    return (masked_softmax(per_word / tau2, wmask) * per_word).sum(dim=-1)


def importance_weights(importance_logits: Tensor) -> Tensor:
    """ω = softmax over components of the importance logits (−inf = missing component); all-missing rows → 0."""
    return masked_softmax(importance_logits, torch.isfinite(importance_logits))


def ie_targets(neg_logits: Tensor, comp_mask: Tensor) -> Tensor:
    """Weak-supervision target ``q = sg(softmax_c(s·<v̂_i, n̂_ic>))`` over valid components (§1.2), (B, C)."""
    return masked_softmax(neg_logits.detach(), comp_mask)


def importance_kl(importance_logits: Tensor, target: Tensor, comp_mask: Tensor) -> Tensor:
    """``L_ie = mean_i KL(q_i ‖ ω_i)`` over samples with at least one valid component (0 when there is none)."""
    valid = comp_mask.to(torch.bool) & torch.isfinite(importance_logits)
    log_omega = masked_log_softmax(importance_logits, valid)
    kl = (torch.special.xlogy(target, target) - target * log_omega).sum(dim=-1)
    rows = valid.any(dim=-1)
    if not bool(rows.any()):
        return importance_logits.masked_fill(~valid, 0.0).sum() * 0.0
    return kl[rows].mean()


def component_negative_loss(
    logits: Tensor,
    neg_logits: Tensor,
    comp_mask: Tensor,
    omega: Tensor,
    *,
    pos_logits: Tensor | None = None,
    pos_mask: Tensor | None = None,
) -> dict[str, Tensor]:
    """``L_component`` of §1.3 from logits: ``{"total", "cn", "t2v"}``, ``total = ½(cn + t2v)``.

    ``logits`` (B, B) = ``s·sim(t_j, v_i)`` with rows text, columns video; ``neg_logits`` (B, C) =
    ``s·sim(v_i, n_ic)``; ``comp_mask`` (B, C) μ; ``omega`` (B, C) importance weights, used under stop-gradient
    and scaled by C (uniform ω makes every component weigh 1); ``pos_logits`` (B,) = ``s·sim(v_i, p_i)`` with
    ``pos_mask`` ρ (B,) for an optional paraphrase positive, which joins numerator and denominator. ``cn`` is the
    video→text term with the component negatives (a sample with every component masked gets no extra term),
    ``t2v`` the ordinary text→video CE.
    """
    b, c = neg_logits.shape
    if logits.shape != (b, b) or comp_mask.shape != (b, c) or omega.shape != (b, c):
        raise ValueError(
            f"expected logits (B, B), neg_logits/comp_mask/omega (B, C); got {tuple(logits.shape)}, "
            f"{tuple(neg_logits.shape)}, {tuple(comp_mask.shape)}, {tuple(omega.shape)}"
        )
    v2t = logits.t()  # rows video i, columns text j
    diag = v2t.diagonal().unsqueeze(1)
    weight = c * omega.detach() * comp_mask.to(omega.dtype)
    neg_terms = neg_logits + torch.log(weight)  # log 0 = −inf drops a term
    num_terms, den_terms = [diag], [v2t, neg_terms]
    if pos_logits is not None:
        rho = torch.ones_like(pos_logits) if pos_mask is None else pos_mask.to(pos_logits.dtype)
        pos_term = (pos_logits + torch.log(rho)).unsqueeze(1)
        num_terms.append(pos_term)
        den_terms.append(pos_term)
    cn = (torch.logsumexp(torch.cat(den_terms, dim=1), 1) - torch.logsumexp(torch.cat(num_terms, dim=1), 1)).mean()
    t2v = ce_rows(logits)
    return {"total": 0.5 * (cn + t2v), "cn": cn, "t2v": t2v}


def component_objective(
    logits: Tensor,
    neg_logits: Tensor,
    comp_mask: Tensor,
    importance_logits: Tensor,
    *,
    pos_logits: Tensor | None = None,
    pos_mask: Tensor | None = None,
    target_logits: Tensor | None = None,
    lam_ie: float = 0.1,
) -> dict[str, Tensor]:
    """§1.5 ``L = L_component + λ_ie·L_ie``: ``{"total", "component", "cn", "t2v", "ie", "omega", "target"}``.

    ``importance_logits`` (B, C) come from ``engine.train.heads.ImportanceEstimator`` (−inf = missing). ω enters
    the retrieval loss under stop-gradient and is trained only by ``L_ie`` toward the hardness target ``q``,
    computed from ``target_logits`` (default ``neg_logits``; §1.2 uses the global ``s·<v̂_i, n̂_ic>``).
    """
    omega = importance_weights(importance_logits)
    comp = component_negative_loss(logits, neg_logits, comp_mask, omega, pos_logits=pos_logits, pos_mask=pos_mask)
    target = ie_targets(neg_logits if target_logits is None else target_logits, comp_mask)
    ie = importance_kl(importance_logits, target, comp_mask)
    return {
        "total": comp["total"] + lam_ie * ie,
        "component": comp["total"],
        "cn": comp["cn"],
        "t2v": comp["t2v"],
        "ie": ie,
        "omega": omega.detach(),
        "target": target,
    }
