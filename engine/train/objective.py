"""One training step's loss for each objective of losses.md, from a batch and a :class:`VideoTextModel`.

Why a dispatch table: the trainer and the benchmark compare objectives under identical data, model and
schedule, so the only thing that changes between runs is the name looked up here. The arithmetic lives in
``engine.train.losses`` (tested against losses.md §5); this module only encodes texts and frames and feeds them in.

* ``infonce``: symmetric InfoNCE on pooled cosine logits.
* ``component``: §1 component negatives with uniform importance weights (no estimator), every pair scored with
  §1.4's training similarity ½(s_global + s_fine) (the model's ``fine`` score mode). The negative types are
  the four components plus, with ``relation`` on (default), the relation swap the negative writer also produces
  (issue 5 part 2, CE-CLIP's swap): §1's loss is written for any C and its checks hold for every C, so the swap
  enters as a fifth type with its own μ and ω. It is the only negative that keeps every word of the caption,
  so without it nothing in §1 teaches *who* has an attribute or a role.
* ``component_ie``: §1 with importance estimation (ω from the estimator, trained by ``L_ie``).
* ``ceclip``: §4 ITC with hard negatives in CE-CLIP's own order [relation, attribute, entity, action] (entity =
  this epoch's subject or object negative), CMR, IMC (``label0`` by default); negatives equal to a batch
  positive are dropped from ITC/IMC (findings.md #3); θ is the model's 4-vector buffer.
* ``s3ma``: §2 four-way similarity with the concept bank plus ``L_sim``/``L_align``.
* ``emcl``: §3.2 EMCL-Net loss over the temporal head's frame features; the EMCL state keeps ``M``.

Under DDP every loss sees the global batch: ``_global`` (``engine.train.distributed.global_batch``, the identity for
one process) all-gathers, with gradients, what crosses samples: pooled video and text, frame features and masks,
CE-CLIP's negatives (sample-major, so the gathered (B, K, D) is the single-process layout) and the batch masks.
Per-sample terms are computed on the local share and gathered afterwards (component negative logits, importance
logits, S3MA's anchor targets), so their global means (``L_ie``) are the single-process ones. CE-CLIP's θ and
EMCL's ``M`` are therefore updated from identical inputs on every rank.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import Tensor

from engine.models.backbone import Backbone
from engine.train.clips import COMPONENTS, NEGATIVE_TYPES, Batch
from engine.train.distributed import global_batch as _global
from engine.train.distributed import global_max
from engine.train.losses import (
    ceclip_losses,
    component_negative_loss,
    component_objective,
    cosine_logits,
    fine_grained_similarity,
    info_nce,
    s3ma_loss,
    text_anchor_targets,
)
from engine.train.model import TextOutput, VideoOutput, VideoTextModel, build_model
from engine.train.objective_settings import OBJECTIVES, ObjectiveSettings
from engine.train.time_reversal import path_mask, reverse_frames, time_reversal_loss

SCORE_MODE = {
    "infonce": "cosine",
    "component": "fine",
    "component_ie": "fine",
    "ceclip": "cosine",
    "s3ma": "s3ma",
    "emcl": "emcl",
}


def model_for_objective(
    backbone: Backbone,
    objective: str,
    *,
    n_frames: int = 8,
    temporal_layers: int = 2,
    motion: bool = True,
    concept_head: bool = False,
    n_concepts: int = 512,
    emcl_k: int = 32,
    seed: int = 0,
) -> VideoTextModel:
    """A fresh model around ``backbone`` with the heads and score mode ``objective`` needs (the concept bank for
    S3MA, the importance estimator for ``component_ie``, the EMCL state for EMCL); ``concept_head`` adds the bank
    for any objective."""
    if objective not in OBJECTIVES:
        raise ValueError(f"unknown objective {objective!r}; expected one of {OBJECTIVES}")
    mode = SCORE_MODE[objective]
    return build_model(
        backbone,
        n_frames=n_frames,
        temporal_layers=temporal_layers,
        motion=motion,
        concept_head=concept_head or mode == "s3ma",
        n_concepts=n_concepts,
        importance=objective == "component_ie",
        emcl_k=emcl_k if mode == "emcl" else None,
        score_mode=mode,
        seed=seed,
    )


CECLIP_TYPES = ("relation", "attribute", "entity", "verb")  # losses.md §4.1: [relation, attribute, entity, action]


def _encode(
    model: VideoTextModel, batch: Batch, negatives: list[list[str]] | None = None
) -> tuple[VideoOutput, TextOutput, TextOutput | None]:
    """Encode the batch's frames, captions and (sample-major) the given negative columns in one text pass; the
    raw frame features and pooled captions stay on ``batch.encoded`` for the time-reversal term."""
    per_frame = model.clip_features(batch.frames)
    video = model.pool_frames(per_frame)
    texts = list(batch.captions)
    if negatives is not None:
        texts += [n or "" for row in negatives for n in row]
    out = model.encode_text(texts)
    b = batch.size
    anchor = TextOutput(out.pooled[:b], out.tokens[:b], out.mask[:b], out.ids[:b])
    batch.encoded = (per_frame, video.pooled, anchor.pooled)
    if negatives is None:
        return video, anchor, None
    negs = TextOutput(out.pooled[b:], out.tokens[b:], out.mask[b:], out.ids[b:])
    return video, anchor, negs


def _scale(model: VideoTextModel) -> Tensor:
    return model.logit_scale.exp()


def _infonce(model: VideoTextModel, batch: Batch, cfg: ObjectiveSettings) -> dict[str, Tensor]:
    video, text, _ = _encode(model, batch)
    loss = info_nce(cosine_logits(*_global(text.pooled, video.pooled), _scale(model)))
    return {"total": loss}


def _component_inputs(
    model: VideoTextModel, batch: Batch, cfg: ObjectiveSettings
) -> tuple[Tensor, Tensor, Tensor, TextOutput, TextOutput]:
    negatives, neg_mask, _ = batch.columns(NEGATIVE_TYPES if cfg.relation else COMPONENTS)
    video, text, negs = _encode(model, batch, negatives)
    assert negs is not None
    b, c = neg_mask.shape
    s = _scale(model)
    if model.score_mode != "fine":
        logits = cosine_logits(*_global(text.pooled, video.pooled), s)
    else:  # §1.4: every pair scored ½(s_global + s_fine); token lengths padded alike so the gather lines up
        length = global_max(text.tokens.shape[1])
        padded = [text.pooled, *(_pad(x, length) for x in (text.tokens, text.mask, text.ids))]
        gathered = _global(*padded, *video)
        logits = s * model.similarity(TextOutput(*gathered[:4]), VideoOutput(*gathered[4:]))
    n_hat = F.normalize(negs.pooled, dim=-1).reshape(b, c, -1)
    neg_sim = torch.einsum("bd,bcd->bc", F.normalize(video.pooled, dim=-1), n_hat)
    if model.score_mode == "fine":
        length = negs.tokens.shape[1]
        fine = fine_grained_similarity(
            negs.tokens.reshape(b, c, length, -1),
            negs.mask.reshape(b, c, length),
            video.frames[:, None],
            video.frame_mask[:, None],
        )
        neg_sim = 0.5 * (neg_sim + fine)
    return logits, s * neg_sim, neg_mask.to(logits.device), text, negs  # per sample: this rank's share


def _pad(x: Tensor, length: int) -> Tensor:
    """Right-pad dim 1 with zeros (a zero mask entry is a padded token) to ``length``."""
    return F.pad(x, (0, 0, 0, length - x.shape[1]) if x.dim() == 3 else (0, length - x.shape[1]))


def _component(model: VideoTextModel, batch: Batch, cfg: ObjectiveSettings) -> dict[str, Tensor]:
    logits, neg_logits, mask, _, _ = _component_inputs(model, batch, cfg)
    neg_logits, mask = _global(neg_logits, mask)
    omega = torch.full_like(neg_logits, 1.0 / neg_logits.shape[1])
    out = component_negative_loss(logits, neg_logits, mask, omega)
    return {"total": out["total"], "cn": out["cn"], "t2v": out["t2v"]}


def _component_ie(model: VideoTextModel, batch: Batch, cfg: ObjectiveSettings) -> dict[str, Tensor]:
    if model.importance is None:
        raise ValueError(
            "objective 'component_ie' needs the model's importance estimator (build_model(importance=True))"
        )
    logits, neg_logits, mask, text, negs = _component_inputs(model, batch, cfg)
    b, c = mask.shape
    length = negs.tokens.shape[1]
    imp = model.importance(
        text.tokens, text.mask, negs.tokens.reshape(b, c, length, -1), negs.mask.reshape(b, c, length), mask
    )
    neg_logits, mask, imp = _global(neg_logits, mask, imp)
    out = component_objective(logits, neg_logits, mask, imp, lam_ie=cfg.lam_ie)
    return {"total": out["total"], "component": out["component"], "ie": out["ie"]}


def _ceclip(model: VideoTextModel, batch: Batch, cfg: ObjectiveSettings) -> dict[str, Tensor]:
    negatives, neg_mask, neg_drop = batch.columns(CECLIP_TYPES)
    video, text, negs = _encode(model, batch, negatives)
    assert negs is not None
    b, c = neg_mask.shape
    v, t = F.normalize(video.pooled, dim=-1), F.normalize(text.pooled, dim=-1)
    h = F.normalize(negs.pooled, dim=-1).reshape(b, c, -1)
    v, t, h, neg_mask, neg_drop = _global(v, t, h, neg_mask.to(v.device), neg_drop.to(v.device))
    drop = neg_drop | ~neg_mask  # missing negatives ("") are no captions at all
    if cfg.imc != "label0":
        drop[0, 0] = False  # the head/label1 IMC target must stay
    out = ceclip_losses(
        v,
        t,
        h,
        neg_mask,
        _scale(model),
        model.ceclip_theta,
        lam_cmr=cfg.lam_cmr,
        lam_imc=cfg.lam_imc,
        upper=cfg.cmr_upper,
        imc=cfg.imc,
        drop=drop,
    )
    if model.training:
        model.ceclip_theta.copy_(out["theta_new"])
    return {"total": out["total"], "itc": out["itc"], "cmr": out["cmr"], "imc": out["imc"]}


def _s3ma(model: VideoTextModel, batch: Batch, cfg: ObjectiveSettings) -> dict[str, Tensor]:
    if model.concepts is None:
        raise ValueError("objective 's3ma' needs the model's concept bank (build_model(concept_head=True))")
    video, text, _ = _encode(model, batch)
    bank = model.concepts
    anchors, has = text_anchor_targets(text.ids, text.mask, bank.kappa, bank.n_concepts)
    out = s3ma_loss(
        *_global(text.pooled, video.pooled, video.frames, video.frame_mask),
        bank.concepts,
        *_global(anchors, has),
        _scale(model),
        alpha=cfg.s3ma_alpha,
        beta=cfg.s3ma_beta,
        k_s=min(cfg.s3ma_k, bank.n_concepts),
    )
    return {"total": out["total"], "nce": out["nce"], "sim": out["sim"], "align": out["align"]}


def _emcl(model: VideoTextModel, batch: Batch, cfg: ObjectiveSettings) -> dict[str, Tensor]:
    if model.emcl is None:
        raise ValueError("objective 'emcl' needs the model's EMCL state (build_model(emcl_k=...))")
    video, text, _ = _encode(model, batch)
    model.emcl.train(model.training)
    t, frames, frame_mask = _global(text.pooled, video.frames, video.frame_mask)
    out = model.emcl.net_loss(t, frames, frame_mask, _scale(model), temp=cfg.emcl_temp)
    return {"total": out["total"]}


_LOSSES: dict[str, Callable[[VideoTextModel, Batch, ObjectiveSettings], dict[str, Tensor]]] = {
    "infonce": _infonce,
    "component": _component,
    "component_ie": _component_ie,
    "ceclip": _ceclip,
    "s3ma": _s3ma,
    "emcl": _emcl,
}


def objective_loss(model: VideoTextModel, batch: Batch, settings: ObjectiveSettings) -> dict[str, Tensor]:
    """``{"total": loss, ...parts}`` for ``settings.name`` on ``batch`` (under DDP: this rank's share, every rank
    calling it, the loss over the global batch); with ``time_reversal`` > 0, plus λ_rev times the time-reversal
    term (``engine.train.time_reversal``, a per-sample term on this rank's share)."""
    out = _LOSSES[settings.name](model, batch, settings)
    if settings.time_reversal <= 0:
        return out
    assert batch.encoded is not None, "every objective encodes through _encode"
    per_frame, video, text = batch.encoded
    mask = path_mask(batch.captions, per_frame.device)
    backwards = model.pool_frames(reverse_frames(per_frame)[0]).pooled
    term = time_reversal_loss(text, video, backwards, mask, _scale(model))
    return {**out, "total": out["total"] + settings.time_reversal * term, "reversal": term}


__all__ = ["CECLIP_TYPES", "OBJECTIVES", "SCORE_MODE", "ObjectiveSettings", "model_for_objective", "objective_loss"]
