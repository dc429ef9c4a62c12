"""CE-CLIP losses: ITC with hard negatives, the cross-modal rank loss (CMR) and the intra-modal loss (IMC).

CE-CLIP (CVPR 2024, code ``lezhang7/Enhance-FineGrained``) adds four hard-negative captions per image (order
relation, attribute, entity, action) and two terms on top of CLIP's contrastive loss. ``losses.md`` §4 restates the
code exactly, including its quirks; this module reproduces them by default and fixes only what breaks training:

* the adaptive CMR threshold is a 4-vector (not a (B, 4) broadcast), so a changing batch size is fine, and a type
  with no valid negative in the batch keeps its previous threshold instead of turning into NaN (``missing="nan"``
  restores the reference behaviour, for comparisons);
* the IMC term changed four times upstream; ``imc`` selects the released form (``"head"``), the 2024-01-31 form
  (``"label0"``, the recommended training default) or the 2023-06-26 form (``"label1"``);
* ``drop`` optionally removes hard negatives that duplicate a positive caption of the batch from the ITC and IMC
  denominators (findings.md #3); the reference has no such mask.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

IMC_VARIANTS = ("head", "label0", "label1")
THRESHOLD_UPDATES = ("mean", "max", "fixed")


def cmr_threshold_update(
    g: Tensor,
    n: Tensor,
    mask: Tensor,
    theta: Tensor,
    *,
    upper: float = 10.0,
    update: str = "mean",
    missing: str = "keep",
) -> Tensor:
    """The next CMR thresholds θ (K,) from positive logits ``g`` (B,) and masked negative logits ``n`` (B, K).

    ``"mean"``: ``θ_k = clip(mean_i g_i − mean_{i: n_ik≠0} n_ik, 0, upper)`` (the code tests ``n≠0``, not the
    mask). ``"max"``: ``θ_k = clip(max_i(g_i·m_ik − n_ik)/5, 0, upper)``. ``"fixed"``: θ unchanged. A type with no
    non-zero entry keeps its previous θ (``missing="keep"``) or becomes NaN as in the reference (``"nan"``).
    """
    if update not in THRESHOLD_UPDATES:
        raise ValueError(f"unknown threshold update {update!r}; expected one of {THRESHOLD_UPDATES}")
    if missing not in ("keep", "nan"):
        raise ValueError(f"missing must be 'keep' or 'nan', got {missing!r}")
    with torch.no_grad():
        g, n, theta = g.detach(), n.detach(), theta.detach()
        if update == "fixed":
            return theta.clone()
        if update == "max":
            new = ((g.unsqueeze(1) * mask - n).max(dim=0).values / 5.0).clamp(0.0, upper)
            return new
        nonzero = (n != 0).to(n.dtype)
        count = nonzero.sum(dim=0)
        new = g.mean() - (n * nonzero).sum(dim=0) / count  # 0/0 = NaN where a type is missing
        if missing == "keep":
            new = torch.where(count > 0, new, theta)
        return new.clamp(0.0, upper)


def ceclip_losses(
    v: Tensor,
    t: Tensor,
    h: Tensor,
    mask: Tensor,
    scale: Tensor | float,
    theta: Tensor | float,
    *,
    lam_cmr: float = 0.2,
    lam_imc: float = 0.3,
    upper: float = 10.0,
    imc: str = "head",
    update: str = "mean",
    missing: str = "keep",
    drop: Tensor | None = None,
) -> dict[str, Tensor]:
    """CE-CLIP's total loss ``L_itc + λ_cmr·L_cmr + λ_imc·L_imc`` and the next threshold (§4.2).

    ``v`` images (B, D), ``t`` captions (B, D), ``h`` hard negatives (B, K, D), all unit-norm as open_clip gives
    them; ``mask`` (B, K) 1 = valid negative; ``scale`` = ``exp(logit_scale)``; ``theta`` the current thresholds
    (K,) or a scalar (0 after the per-epoch reset). Returns ``total, itc, i2t, t2i, cmr, imc, theta_new``; the
    loss uses the *current* θ and ``theta_new`` (no gradient) is for the next step. Code-exact details: masked
    negatives still sit in the ITC and IMC denominators and count in CMR's 1/(B·K) mean; IMC uses all B·K
    negatives of the batch; the losses are in logit units. ``drop`` (B, K) bool removes negatives from the ITC
    and IMC denominators (not from CMR, where ``mask`` rules); it may not remove the IMC target ``h[0,0]`` for
    ``imc="head"`` / ``"label1"``.
    """
    if imc not in IMC_VARIANTS:
        raise ValueError(f"unknown IMC variant {imc!r}; expected one of {IMC_VARIANTS}")
    if h.dim() != 3 or h.shape[0] != v.shape[0] or mask.shape != h.shape[:2] or t.shape != v.shape:
        raise ValueError(
            f"expected v, t (B, D), h (B, K, D), mask (B, K); got {tuple(v.shape)}, {tuple(t.shape)}, "
            f"{tuple(h.shape)}, {tuple(mask.shape)}"
        )
    b, k, d = h.shape
    mask = mask.to(v.dtype)
    theta_vec = torch.as_tensor(theta, dtype=v.dtype, device=v.device).detach()
    if theta_vec.dim() > 1 or theta_vec.numel() not in (1, k):
        raise ValueError(f"theta must be a scalar or a {k}-vector, got shape {tuple(theta_vec.shape)}")
    theta_vec = theta_vec.expand(k)
    flat_h = h.reshape(b * k, d)  # sample-major, as the loss reshapes the collated negatives
    target = torch.arange(b, device=v.device)
    neg_bias = v.new_zeros(b * k)
    if drop is not None:
        flat_drop = drop.reshape(b * k).to(torch.bool)
        if imc != "label0" and bool(flat_drop[0]):
            raise ValueError(f"drop removes h[0,0], the target of the {imc!r} IMC variant")
        neg_bias = neg_bias.masked_fill(flat_drop, float("-inf"))

    # ITC with hard negatives: images against captions plus all B·K negatives; captions against images.
    i2t_logits = scale * (v @ torch.cat([t, flat_h], dim=0).t())
    i2t_logits = i2t_logits + torch.cat([v.new_zeros(b), neg_bias]).unsqueeze(0)
    i2t = F.cross_entropy(i2t_logits, target)
    t2i = F.cross_entropy(scale * (t @ v.t()), target)
    itc = 0.5 * (i2t + t2i)

    # CMR: hinge between the positive logit and each valid negative logit, per-type margin θ.
    g = scale * (v * t).sum(dim=-1)
    n = scale * torch.einsum("bd,bkd->bk", v, h) * mask
    cmr = (mask * torch.clamp(theta_vec.unsqueeze(0) + n - g.unsqueeze(1), min=0.0)).mean()

    # IMC, by variant (see losses.md §4.2 item 4).
    t_neg = scale * (t @ flat_h.t()) + neg_bias.unsqueeze(0)
    if imc == "head":
        imc_loss = F.cross_entropy(t_neg, torch.zeros_like(target))
    else:
        logits = torch.cat([g.unsqueeze(1), t_neg], dim=1)
        label = torch.zeros_like(target) if imc == "label0" else torch.ones_like(target)
        imc_loss = F.cross_entropy(logits, label)

    theta_new = cmr_threshold_update(g, n, mask, theta_vec, upper=upper, update=update, missing=missing)
    total = itc + lam_cmr * cmr + lam_imc * imc_loss
    return {"total": total, "itc": itc, "i2t": i2t, "t2i": t2i, "cmr": cmr, "imc": imc_loss, "theta_new": theta_new}
