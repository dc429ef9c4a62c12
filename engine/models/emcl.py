"""EMCL: the expectation-maximisation map, its maintained state, the EMCL-Net loss and the search-time re-ranking.

EMCL (NeurIPS 2022, code ``jpthu17/EMCL``) refines a batch of stacked video and text rows by projecting them onto
K bases found by a few EM steps and adding the reconstruction back (``Y = X + β·sg(X̂)``). The bases live in
*sample space*: every feature dimension is a data point, so the result of one row depends on every other row in
the same call, and EMCL scores cannot be cached per item. Everything here follows ``losses.md`` §3, which is
code-exact; the tests reproduce its §5.1 vectors to 1e-6.

It lives in ``engine.models`` (torch only) rather than ``engine.train`` because the same map also runs at search
time as an inference-only re-ranking (:func:`emcl_rerank_scores`), and search never depends on training.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

EPS = 1e-6
_VARIANTS = ("net", "mmt")


def emcl_init_m(k: int, *, seed: int | None = 0, dtype: torch.dtype = torch.float32) -> Tensor:
    """The code's initial value of ``M`` (shape ``(k,)``): ``m ~ N(0, 2/k)`` divided by ``ε + |m|``, so ≈ ±1.

    ``seed`` uses a private generator whose draw equals the official code's global-RNG draw after
    ``torch.manual_seed(seed)``; ``seed=None`` draws from the global RNG as the code does.
    """
    if k < 1:
        raise ValueError(f"EMCL needs at least one basis, got k={k}")
    gen = None if seed is None else torch.Generator().manual_seed(int(seed))
    m = torch.empty(1, k).normal_(0.0, math.sqrt(2.0 / k), generator=gen)
    m = m / (EPS + m.norm(dim=0, keepdim=True))
    return m.reshape(k).to(dtype)


def emcl_em(
    x: Tensor,
    m: Tensor,
    *,
    iters: int,
    sigma: float,
    beta: float,
    momentum: float,
    training: bool,
    variant: str = "net",
) -> tuple[Tensor, Tensor]:
    """Apply the EM map of §3.1 to stacked rows ``x`` (N, D) with initial value ``m`` (K,): returns ``(y, m_new)``.

    Each of the D feature columns is a data point in R^N; the K bases ``Λ`` (N, K) start as ``1_N mᵀ`` and run
    ``iters`` E/M steps (E: softmax over K of ``XᵀΛ/σ``; column-normalise; M: ``Λ = X R̃`` then L2-normalise each
    basis). ``y = x + β·X̂`` with ``X̂ = Λ R̃ᵀ`` computed without gradient, so ``∂y/∂x`` is the identity.
    ``variant="net"`` is EMCL-Net and the CLIP2Video plug-in (σ divides); ``"mmt"`` is the joint-training
    variant (σ multiplies, output rows L2-normalised). When ``training`` is true the returned
    ``m_new = α·m + (1−α)·mean over rows of Λ``; otherwise ``m`` itself. ``m_new`` keeps ``m``'s dtype.
    """
    if variant not in _VARIANTS:
        raise ValueError(f"unknown EMCL variant {variant!r}; expected one of {_VARIANTS}")
    if x.dim() != 2:
        raise ValueError(f"EMCL input must be (N, D), got shape {tuple(x.shape)}")
    if m.dim() != 1:
        raise ValueError(f"EMCL initial value must be (K,), got shape {tuple(m.shape)}")
    if iters < 1:
        raise ValueError(f"EMCL needs at least one EM iteration, got iters={iters}")
    n = x.shape[0]
    with torch.no_grad():
        xd = x.detach()
        bases = m.to(device=x.device, dtype=x.dtype).unsqueeze(0).expand(n, -1)
        resp = xd.new_empty(0)
        for _ in range(iters):
            act = xd.t() @ bases  # (D, K)
            act = act * sigma if variant == "mmt" else act / sigma
            resp = torch.softmax(act, dim=1)
            resp = resp / (EPS + resp.sum(dim=0, keepdim=True))
            bases = xd @ resp  # (N, K)
            bases = bases / (EPS + bases.norm(dim=0, keepdim=True))
        recon = bases @ resp.t()  # (N, D)
    y = x + beta * recon
    if variant == "mmt":
        y = F.normalize(y, dim=-1)
    if training:
        with torch.no_grad():
            m_new = momentum * m.to(bases) + (1.0 - momentum) * bases.mean(dim=0)
        m_new = m_new.to(m.dtype)
    else:
        m_new = m
    return y, m_new


def text_conditioned_pool(text: Tensor, frames: Tensor, frame_mask: Tensor, *, temp: float = 3.0) -> Tensor:
    """EMCL-Net pooling (§3.2 step 1): ``P[a,b] = Σ_f softmax_f(<c_a,F_bf>/τ_p)·μ_bf·F_bf``, shape (Bt, Bv, D).

    Code-exact quirk: the softmax runs over all frame slots, padded ones included, and the masked weights are not
    renormalised, so padding shrinks the pooled vector.
    """
    weights = torch.softmax(torch.einsum("ad,bfd->abf", text, frames) / temp, dim=-1)
    weights = weights * frame_mask.to(weights.dtype).unsqueeze(0)
    return torch.einsum("abf,bfd->abd", weights, frames)


def emcl_net_logits(
    text: Tensor,
    frames: Tensor,
    frame_mask: Tensor,
    m: Tensor,
    *,
    temp: float = 3.0,
    iters: int = 9,
    sigma: float = 1.0,
    beta: float = 3.0,
    momentum: float = 0.9,
    training: bool = True,
) -> tuple[Tensor, Tensor]:
    """EMCL-Net similarities ``ℓ`` (Bt, Bv) and ``m_new`` (§3.2 steps 1-3), from raw text (Bt, D) and frames.

    The pooled pairs (text-major) and the texts are stacked into one ``X`` (Bt·Bv + Bt rows) for one EM call,
    then split and cosine-compared. Defaults are EMCL-Net's apart from K, which is ``m``'s length.
    """
    if frames.dim() != 3 or frame_mask.shape != frames.shape[:2]:
        raise ValueError(
            f"frames must be (Bv, F, D) with mask (Bv, F); got {tuple(frames.shape)}, {tuple(frame_mask.shape)}"
        )
    bt, bv, d = text.shape[0], frames.shape[0], frames.shape[2]
    pooled = text_conditioned_pool(text, frames, frame_mask, temp=temp)
    stacked = torch.cat([pooled.reshape(bt * bv, d), text], dim=0)
    y, m_new = emcl_em(
        stacked, m, iters=iters, sigma=sigma, beta=beta, momentum=momentum, training=training, variant="net"
    )
    pooled_y = F.normalize(y[: bt * bv].reshape(bt, bv, d), dim=-1)
    text_y = F.normalize(y[bt * bv :], dim=-1)
    return torch.einsum("ad,abd->ab", text_y, pooled_y), m_new


def emcl_net_loss(
    text: Tensor,
    frames: Tensor,
    frame_mask: Tensor,
    scale: Tensor | float,
    m: Tensor,
    *,
    temp: float = 3.0,
    iters: int = 9,
    sigma: float = 1.0,
    beta: float = 3.0,
    momentum: float = 0.9,
    training: bool = True,
) -> dict[str, Tensor]:
    """EMCL-Net training loss (§3.2 step 4): ``½[CE_rows(s·ℓ) + CE_rows(s·ℓᵀ)]`` with diagonal targets.

    Returns ``{"total", "logits" (ℓ, unscaled), "m_new"}``; the keywords are those of :func:`emcl_net_logits`.
    Store ``m_new`` back (``EMCLState`` does) so the maintained value survives into the checkpoint. The
    ``idx``-based multi-positive targets of the official code are computed there but unused, so none here.
    """
    logits, m_new = emcl_net_logits(
        text,
        frames,
        frame_mask,
        m,
        temp=temp,
        iters=iters,
        sigma=sigma,
        beta=beta,
        momentum=momentum,
        training=training,
    )
    scaled = scale * logits
    target = torch.arange(scaled.shape[0], device=scaled.device)
    total = 0.5 * (F.cross_entropy(scaled, target) + F.cross_entropy(scaled.t(), target))
    return {"total": total, "logits": logits, "m_new": m_new}


def emcl_net_eval_scores(
    text: Tensor,
    frames: Tensor,
    frame_mask: Tensor,
    m: Tensor,
    *,
    block: int = 32,
    temp: float = 3.0,
    iters: int = 9,
    sigma: float = 1.0,
    beta: float = 3.0,
) -> Tensor:
    """Evaluation similarities (Bt, Bv) in blocks of ``block`` texts × ``block`` videos with ``m`` frozen.

    This is the official evaluation (``mini_batch=32``): EM runs per block, so a pair's score depends on the
    other items of its block, and a faithful reproduction must use the same blocking.
    """
    out = text.new_empty(text.shape[0], frames.shape[0])
    with torch.no_grad():
        for a in range(0, text.shape[0], block):
            for b in range(0, frames.shape[0], block):
                out[a : a + block, b : b + block] = emcl_net_logits(
                    text[a : a + block],
                    frames[b : b + block],
                    frame_mask[b : b + block],
                    m,
                    temp=temp,
                    iters=iters,
                    sigma=sigma,
                    beta=beta,
                    training=False,
                )[0]
    return out


def emcl_rerank_scores(
    text: Tensor,
    videos: Tensor,
    *,
    k: int = 7,
    iters: int = 10,
    sigma: float = 0.1,
    beta: float = 4.0,
    m: Tensor | None = None,
    seed: int = 0,
) -> Tensor:
    """Inference-only EMCL re-ranking (the CLIP2Video plug-in path of §3.2): scores (Bt, Bv), higher is better.

    ``text`` (D,) or (Bt, D) and ``videos`` (Bv, D) are L2-normalised here (a no-op for unit vectors), stacked
    into one EM call with training off (``M`` frozen; the seeded ±1 :func:`emcl_init_m` ``(k, seed)`` when ``m``
    is None, which is what the plug-in uses since it never trains), and compared by plain dot products of the
    outputs, *not* renormalised. The plug-in's logits are ``s·`` these; ranking is the same. The result depends
    on which videos share the call (the EM block), so the caller fixes the candidate set; row order does not
    matter (the map is permutation-equivariant over rows).

    The EM runs in float64 and the scores come back in the inputs' dtype (at least float32). A ±1 initial value
    has tied bases (equal entries of M); in exact arithmetic they stay tied, but float32 rounding differs per
    column of a matrix product, and at σ = 0.1 the sharp softmax amplifies that difference each iteration, so
    float32 scores move by O(1) with the batch layout or hardware. float64 keeps the exact-arithmetic answer.
    """
    t = text.unsqueeze(0) if text.dim() == 1 else text
    if t.dim() != 2 or videos.dim() != 2 or t.shape[1] != videos.shape[1]:
        raise ValueError(f"text {tuple(text.shape)} and videos {tuple(videos.shape)} must be (…, D) with equal D")
    out_dtype = torch.promote_types(t.dtype, torch.float32)
    t = F.normalize(t.detach().to(torch.float64), dim=-1)
    v = F.normalize(videos.detach().to(torch.float64), dim=-1)
    init = emcl_init_m(k, seed=seed) if m is None else m
    with torch.no_grad():
        y, _ = emcl_em(
            torch.cat([v, t], dim=0), init, iters=iters, sigma=sigma, beta=beta, momentum=0.9, training=False
        )
    nv = v.shape[0]
    return (y[nv:] @ y[:nv].t()).to(out_dtype)


class EMCLState(nn.Module):
    """Holds the maintained initial value ``M`` as a persistent buffer, so it is saved in checkpoints.

    The official code keeps ``M`` on a plain object, outside ``state_dict``, so a reloaded checkpoint silently
    evaluates with a re-drawn M; here ``load_state_dict`` restores the trained one. ``M`` moves only on training
    forwards (``self.training``), by momentum, exactly as :func:`emcl_em` computes it.
    """

    m: Tensor

    def __init__(
        self,
        k: int = 32,
        *,
        iters: int = 9,
        sigma: float = 1.0,
        beta: float = 3.0,
        momentum: float = 0.9,
        variant: str = "net",
        seed: int | None = 0,
    ) -> None:
        super().__init__()
        if variant not in _VARIANTS:
            raise ValueError(f"unknown EMCL variant {variant!r}; expected one of {_VARIANTS}")
        self.iters, self.sigma, self.beta, self.momentum, self.variant = iters, sigma, beta, momentum, variant
        self.register_buffer("m", emcl_init_m(k, seed=seed), persistent=True)

    def forward(self, x: Tensor) -> Tensor:
        """The EM map of stacked rows ``x`` (N, D); updates ``M`` in place when training."""
        y, m_new = emcl_em(
            x,
            self.m,
            iters=self.iters,
            sigma=self.sigma,
            beta=self.beta,
            momentum=self.momentum,
            training=self.training,
            variant=self.variant,
        )
        self._store(m_new)
        return y

    def net_loss(
        self, text: Tensor, frames: Tensor, frame_mask: Tensor, scale: Tensor | float, *, temp: float = 3.0
    ) -> dict[str, Tensor]:
        """:func:`emcl_net_loss` with this state's settings; updates ``M`` when training (EMCL-Net only)."""
        if self.variant != "net":
            raise ValueError(f"the EMCL-Net loss needs variant 'net', this state is {self.variant!r}")
        out = emcl_net_loss(
            text,
            frames,
            frame_mask,
            scale,
            self.m,
            temp=temp,
            iters=self.iters,
            sigma=self.sigma,
            beta=self.beta,
            momentum=self.momentum,
            training=self.training,
        )
        self._store(out["m_new"])
        return out

    def _store(self, m_new: Tensor) -> None:
        if m_new is not self.m:
            with torch.no_grad():
                self.m.copy_(m_new)
