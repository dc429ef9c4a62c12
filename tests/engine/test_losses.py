"""Training objectives against losses.md: every §5 reference value (to 1e-6, float64) and the §1-§4 property checks."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from engine.models.heads import ConceptHead, spherical_kmeans
from engine.train.heads import ImportanceEstimator
from engine.train.losses import (
    EMCLState,
    ce_rows,
    ceclip_losses,
    clamp_logit_scale_,
    coarse_fine,
    component_negative_loss,
    component_objective,
    concept_losses,
    cosine_logits,
    emcl_em,
    emcl_init_m,
    emcl_net_eval_scores,
    emcl_net_logits,
    emcl_net_loss,
    emcl_rerank_scores,
    fine_grained_similarity,
    ie_targets,
    importance_kl,
    importance_weights,
    info_nce,
    multi_grained_similarity,
    s3ma_loss,
    sparse_code,
    text_anchor_targets,
)

D64 = torch.float64
TOL = 1e-6


def close(actual: torch.Tensor | float, expected: object, tol: float = TOL) -> None:
    a = torch.as_tensor(actual, dtype=D64).detach()
    e = torch.as_tensor(expected, dtype=D64)
    assert a.shape == e.shape, (a.shape, e.shape)
    assert torch.allclose(a, e, atol=tol, rtol=0), f"{a} != {e}"


def t64(*values: float) -> torch.Tensor:
    return torch.tensor(values, dtype=D64)


# ---------------------------------------------------------------- §5.1 EMCL


@pytest.fixture
def x_em() -> torch.Tensor:
    i = torch.arange(4, dtype=D64)[:, None]
    j = torch.arange(6, dtype=D64)[None]
    return torch.sin(0.7 * (i + 1) + 1.3 * (j + 1))


M3 = (1.0, -1.0, 0.5)


def em(x: torch.Tensor, m: tuple[float, ...] = M3, **kw: object) -> tuple[torch.Tensor, torch.Tensor]:
    args: dict[str, object] = {"iters": 9, "sigma": 1.0, "beta": 3.0, "momentum": 0.9, "training": True}
    args.update(kw)
    return emcl_em(x, t64(*m), **args)  # type: ignore[arg-type]


def test_tv_em_input(x_em):
    close(x_em[0], [0.909297, -0.157746, -0.993691, -0.373877, 0.793668, 0.798487])
    close(x_em[3], [-0.818277, -0.772764, 0.40485, 0.989358, 0.124454, -0.922775])


def test_tv_em_1(x_em):
    y, m_new = em(x_em, iters=3)
    close((y - x_em) / 3.0, [
        [0.236366, -0.061939, -0.071778, 0.182379, 0.2467, 0.201288],
        [0.159029, -0.183452, -0.172416, 0.237352, 0.266299, 0.110546],
        [0.006899, -0.218684, -0.191964, 0.180694, 0.160653, -0.032187],
        [-0.148476, -0.151066, -0.121229, 0.039053, -0.02055, -0.159783],
    ])  # fmt: skip
    close(y[0], [1.618395, -0.343561, -1.209025, 0.173261, 1.533768, 1.402351])
    close(m_new, [0.947746, -0.947777, 0.462374])


def test_tv_em_2(x_em):
    y, m_new = em(x_em)
    close(y, [
        [1.516729, -0.306588, -1.337603, -0.069394, 1.285709, 1.351552],
        [0.692337, -1.299555, -1.45088, 0.936144, 1.663717, 0.38919],
        [-0.457671, -1.681321, -0.881786, 1.501398, 1.259253, -0.756214],
        [-1.39243, -1.272335, 0.102026, 1.360521, 0.262542, -1.545959],
    ])  # fmt: skip
    close(m_new, [0.947365, -0.947460, 0.449464])


def test_tv_em_3_plugin(x_em):
    y, m_new = em(x_em, iters=10, sigma=0.1, beta=4.0)
    close(((y - x_em) / 4.0)[0], [0.325384, -0.242588, -0.242907, 0.088296, 0.088419, 0.325384])
    close(y[0], [2.210835, -1.128099, -1.965321, -0.020691, 1.147342, 2.100024])
    close(m_new, [0.946597, -0.946257, 0.449083])


def test_tv_em_mmt(x_em):
    y, m_new = em(x_em, iters=5, variant="mmt")
    close(y, [
        [0.55048, -0.117009, -0.465842, -0.007002, 0.47811, 0.487477],
        [0.261221, -0.454275, -0.496226, 0.331946, 0.587988, 0.152443],
        [-0.141482, -0.592753, -0.31007, 0.52547, 0.44115, -0.248497],
        [-0.498516, -0.456953, 0.033412, 0.47964, 0.0768, -0.552817],
    ])  # fmt: skip
    close(m_new, [0.947541, -0.947563, 0.452818])
    close(y.norm(dim=1), [1.0] * 4)


TV_EM_4_ROWS = (0.325563, 0.123964, -0.135937, -0.331905)


def test_tv_em_4_constant_m_gives_constant_rows(x_em):
    y, _ = em(x_em, m=(1.0, 1.0, 1.0))
    recon = (y - x_em) / 3.0
    close(recon, torch.tensor(TV_EM_4_ROWS, dtype=D64)[:, None].expand(4, 6))


def test_large_sigma_gives_uniform_responsibilities(x_em):
    """σ → ∞ makes the responsibilities uniform, which is the constant-M case of TV-EM-4 whatever M is."""
    y, _ = em(x_em, sigma=1e12)
    close((y - x_em) / 3.0, torch.tensor(TV_EM_4_ROWS, dtype=D64)[:, None].expand(4, 6))


def test_tv_em_5_pooled_infonce(x_em):
    y, _ = em(x_em)
    y = F.normalize(y, dim=1)
    s = 100.0 * y[2:] @ y[:2].t()
    close(s, [[18.805936, 77.989077], [-47.663806, 20.697205]])
    close(ce_rows(s), 29.591570)
    close(ce_rows(s.t()), 28.645936)
    close(info_nce(s), 29.118753)


@pytest.fixture
def net_inputs() -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    b = torch.arange(2, dtype=D64)[:, None, None]
    f = torch.arange(3, dtype=D64)[None, :, None]
    j = torch.arange(4, dtype=D64)[None, None]
    frames = torch.sin(0.5 * (b + 1) + 0.8 * (f + 1) + 1.1 * (j + 1))
    a = torch.arange(2, dtype=D64)[:, None]
    text = torch.cos(0.6 * (a + 1) + 0.9 * (j[0] + 1))
    mask = torch.tensor([[1, 1, 1], [1, 1, 0]], dtype=D64)
    return text, frames, mask


def test_tv_em_6_emcl_net(net_inputs):
    text, frames, mask = net_inputs
    out = emcl_net_loss(text, frames, mask, 100.0, t64(1.0, -1.0), temp=3.0, iters=9, sigma=1.0, beta=3.0)
    close(out["logits"], [[0.965643, 0.939489], [0.979494, 0.979273]])
    close(out["total"], 0.600448)
    close(out["m_new"], [0.861209, -0.938791])


def test_emcl_state_holds_and_saves_m(net_inputs):
    text, frames, mask = net_inputs
    state = EMCLState(k=2).double()
    with torch.no_grad():
        state.m.copy_(t64(1.0, -1.0))
    state.eval()
    state.net_loss(text, frames, mask, 100.0)
    close(state.m, [1.0, -1.0])  # frozen outside training
    state.train()
    out = state.net_loss(text, frames, mask, 100.0)
    close(out["total"], 0.600448)
    close(state.m, [0.861209, -0.938791])
    saved = state.state_dict()
    assert "m" in saved
    fresh = EMCLState(k=2).double()
    fresh.load_state_dict(saved)
    close(fresh.m, [0.861209, -0.938791])


def test_emcl_state_forward_updates_only_in_training(x_em):
    state = EMCLState(k=3, iters=9).double()
    with torch.no_grad():
        state.m.copy_(t64(*M3))
    y_eval = state.eval()(x_em)
    close(state.m, M3)
    y_train = state.train()(x_em)
    close(y_train, y_eval)
    close(state.m, [0.947365, -0.947460, 0.449464])


def test_tv_em_grad_is_identity():
    gen = torch.Generator().manual_seed(3)
    x = torch.randn(5, 7, dtype=D64, generator=gen, requires_grad=True)
    g = torch.randn(5, 7, dtype=D64, generator=gen)
    y, _ = emcl_em(x, t64(1, -1, 0.5, 0.2), iters=4, sigma=0.5, beta=3.0, momentum=0.9, training=True)
    (grad,) = torch.autograd.grad((g * y).sum(), x)
    close(grad, g, tol=1e-12)


def test_identical_pairs_after_emcl_give_log_b():
    b = 5
    x = torch.linspace(-1, 1, 8, dtype=D64).expand(2 * b, 8).clone()
    y, _ = em(x)
    y = F.normalize(y, dim=1)
    close(info_nce(100.0 * y[b:] @ y[:b].t()), math.log(b))


def test_emcl_edge_cases(x_em):
    y, m_new = em(x_em[:1])
    assert torch.isfinite(y).all() and torch.isfinite(m_new).all()
    y, _ = em(torch.zeros(3, 4, dtype=D64))
    close(y, torch.zeros(3, 4))
    m = t64(*M3)
    _, m_same = emcl_em(x_em, m, iters=2, sigma=1.0, beta=1.0, momentum=0.9, training=False)
    assert m_same is m
    with pytest.raises(ValueError, match="iteration"):
        emcl_em(x_em, m, iters=0, sigma=1.0, beta=1.0, momentum=0.9, training=False)
    with pytest.raises(ValueError, match="variant"):
        emcl_em(x_em, m, iters=1, sigma=1.0, beta=1.0, momentum=0.9, training=False, variant="paper")


def test_emcl_is_row_permutation_equivariant(x_em):
    perm = torch.tensor([2, 0, 3, 1])
    y, m_new = em(x_em)
    y_p, m_p = em(x_em[perm])
    close(y_p, y[perm], tol=1e-12)
    close(m_p, m_new, tol=1e-12)


def test_init_m_matches_the_global_rng_draw():
    torch.manual_seed(0)
    ref = torch.Tensor(1, 7).normal_(0, math.sqrt(2.0 / 7))
    ref = (ref / (1e-6 + ref.norm(dim=0, keepdim=True))).reshape(7)
    m = emcl_init_m(7, seed=0)
    assert torch.equal(m, ref)
    close(m.abs(), [1.0] * 7, tol=1e-5)
    assert not torch.equal(emcl_init_m(7, seed=1), m)


def test_rerank_scores_follow_the_plugin_path():
    gen = torch.Generator().manual_seed(0)
    text = torch.randn(2, 16, generator=gen)
    videos = torch.randn(5, 16, generator=gen)
    scores = emcl_rerank_scores(text, videos)
    assert scores.shape == (2, 5)
    tn, vn = F.normalize(text.double(), dim=1), F.normalize(videos.double(), dim=1)
    y, _ = emcl_em(
        torch.cat([vn, tn]), emcl_init_m(7, seed=0), iters=10, sigma=0.1, beta=4.0, momentum=0.9, training=False
    )
    close(scores, y[5:] @ y[:5].t(), tol=1e-5)
    assert not torch.allclose(y.norm(dim=1), torch.ones(7, dtype=D64))  # the output is not renormalised
    close(emcl_rerank_scores(text[0], videos), emcl_rerank_scores(text[:1], videos), tol=0)  # 1-D text = one row
    assert not torch.allclose(emcl_rerank_scores(text[:1], videos), scores[:1])  # the block (call) matters
    # scaling inputs changes nothing (they are normalised); an explicit m is used as given
    close(emcl_rerank_scores(3 * text, videos), scores, tol=1e-5)
    other = emcl_rerank_scores(text, videos, m=torch.ones(7))
    assert not torch.allclose(other, scores)
    assert scores.dtype == torch.float32
    assert emcl_rerank_scores(text.half(), videos.half()).dtype == torch.float32


def test_emcl_net_eval_blocks(net_inputs):
    text, frames, mask = net_inputs
    m = t64(1.0, -1.0)
    full, m_after = emcl_net_logits(text, frames, mask, m, training=False)
    assert m_after is m
    close(emcl_net_eval_scores(text, frames, mask, m, block=32), full, tol=1e-12)
    single = emcl_net_eval_scores(text, frames, mask, m, block=1)
    for a in range(2):
        for b in range(2):
            pair = emcl_net_logits(text[a : a + 1], frames[b : b + 1], mask[b : b + 1], m, training=False)[0]
            close(single[a, b], pair[0, 0], tol=1e-12)
    assert not torch.allclose(single, full)  # a pair's score depends on its block
    uneven = emcl_net_eval_scores(text[:1], frames, mask, m)
    assert uneven.shape == (1, 2)


# ---------------------------------------------------------------- §5.2 CE-CLIP


def unit(x: torch.Tensor) -> torch.Tensor:
    return x / x.norm(dim=-1, keepdim=True)


@pytest.fixture
def ce_inputs() -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    i = torch.arange(3, dtype=D64)[:, None]
    j = torch.arange(5, dtype=D64)[None]
    k = torch.arange(4, dtype=D64)[None, :, None]
    v = unit(torch.cos(0.9 * (i + 1) * (j + 1) + 0.3))
    t = unit(v + 0.3 * torch.sin(1.7 * (i + 1) + 0.5 * (j + 1)))
    h = unit(t[:, None] + 0.4 * torch.cos(0.4 * (i[:, :, None] + 1) + 1.1 * (k + 1) + 0.6 * (j[:, None] + 1)))
    mask = torch.ones(3, 4, dtype=D64)
    mask[1, 0] = mask[2, 0] = 0
    return v, t, h, mask


def test_ceclip_input_cosines(ce_inputs):
    v, t, h, _ = ce_inputs
    close((v * t).sum(-1), [0.939474, 0.896724, 0.944941])
    close(torch.einsum("bd,bkd->bk", v, h), [
        [0.964691, 0.959394, 0.900188, 0.554035],
        [0.655771, 0.769380, 0.937216, 0.928209],
        [0.814638, 0.782126, 0.750164, 0.843423],
    ])  # fmt: skip


CE_ROWS = [
    # s, θ, CE_i2t, CE_t2i, L_itc, L_cmr, IMC head, label0, label1, total head, total label0, θ_next
    (1.0, (0, 0, 0, 0), 2.036605, 0.477452, 1.257028, 0.009760, 2.491913, 1.968256, 2.642547, 2.006554, 1.849457,
     (0, 0.090080, 0.064524, 0.151824)),
    (1.0, (0.5, 1, 2, 3), 2.036605, 0.477452, 1.257028, 1.467161, 2.491913, 1.968256, 2.642547, 2.298035, 2.140937,
     (0, 0.090080, 0.064524, 0.151824)),
    (100.0, (0, 0, 0, 0), 2.479151, 0.0, 1.239576, 0.975952, 68.069167, 1.124810, 68.553922, 21.855516, 1.772209,
     (0, 9.007955, 6.452380, 10)),
    (100.0, (0.5, 1, 2, 3), 2.479151, 0.0, 1.239576, 1.517619, 68.069167, 1.124810, 68.553922, 21.963850, 1.880542,
     (0, 9.007955, 6.452380, 10)),
]  # fmt: skip


@pytest.mark.parametrize("row", CE_ROWS, ids=lambda r: f"s{r[0]:g}-theta{r[1]}")
def test_ceclip_reference_table(ce_inputs, row):
    s, theta, i2t, t2i, itc, cmr, head, label0, label1, total_head, total_label0, theta_next = row
    v, t, h, mask = ce_inputs
    outs = {imc: ceclip_losses(v, t, h, mask, s, t64(*theta), imc=imc) for imc in ("head", "label0", "label1")}
    out = outs["head"]
    close(out["i2t"], i2t)
    close(out["t2i"], t2i)
    close(out["itc"], itc)
    close(out["cmr"], cmr)
    close(out["imc"], head)
    close(outs["label0"]["imc"], label0)
    close(outs["label1"]["imc"], label1)
    close(out["total"], total_head)
    close(outs["label0"]["total"], total_label0)
    close(outs["label1"]["total"], itc + 0.2 * cmr + 0.3 * label1, tol=3e-6)
    for o in outs.values():
        close(o["theta_new"], theta_next)
        assert not o["theta_new"].requires_grad


def test_ceclip_identical_embeddings():
    x = unit(torch.ones(3, 5, dtype=D64))
    h = x[:, None].expand(3, 4, 5)
    out = ceclip_losses(x, x, h, torch.ones(3, 4, dtype=D64), 100.0, 0.0)
    close(out["i2t"], math.log(15))
    close(out["t2i"], math.log(3))
    close(out["cmr"], 0.0)
    close(out["imc"], math.log(12))


def test_ceclip_missing_type(ce_inputs):
    v, t, h, mask = ce_inputs
    mask = mask.clone()
    mask[:, 0] = 0
    prev = t64(0.7, 1, 2, 3)
    ref = ceclip_losses(v, t, h, mask, 100.0, prev, missing="nan")
    assert torch.isnan(ref["theta_new"][0]) and torch.isfinite(ref["theta_new"][1:]).all()
    assert torch.isnan(ceclip_losses(v, t, h, mask, 100.0, ref["theta_new"])["total"])  # the reference's failure
    robust = ceclip_losses(v, t, h, mask, 100.0, prev)
    close(robust["theta_new"][0], 0.7)
    close(robust["theta_new"][1:], ref["theta_new"][1:])
    assert torch.isfinite(ceclip_losses(v, t, h, mask, 100.0, robust["theta_new"])["total"])


def test_ceclip_cmr_properties(ce_inputs):
    v, t, h, mask = ce_inputs
    # all negatives less similar than the positives and θ = 0 → no hinge is active
    far = unit(h - 2.0 * t[:, None])
    close(ceclip_losses(v, t, far, mask, 100.0, 0.0)["cmr"], 0.0)
    # with every valid hinge active, raising θ_k by Δ adds Δ per valid entry of type k (mean over all 4B)
    base = t64(20, 20, 20, 20)
    for k in range(4):
        raised = base.clone()
        raised[k] += 0.5
        diff = ceclip_losses(v, t, h, mask, 1.0, raised)["cmr"] - ceclip_losses(v, t, h, mask, 1.0, base)["cmr"]
        close(diff, 0.5 * float(mask[:, k].sum()) / 12)
    # the threshold update ignores the logits of masked entries
    moved = h.clone()
    moved[1, 0] = unit(-v[1])
    moved[2, 0] = unit(v[2] + 0.1)
    close(ceclip_losses(v, t, moved, mask, 1.0, 0.0)["theta_new"], ceclip_losses(v, t, h, mask, 1.0, 0.0)["theta_new"])


def test_ceclip_threshold_shapes_and_modes(ce_inputs):
    v, t, h, mask = ce_inputs
    a = ceclip_losses(v, t, h, mask, 100.0, 0.0)
    b = ceclip_losses(v, t, h, mask, 100.0, torch.zeros(4, dtype=D64))
    close(a["total"], b["total"])
    # a smaller batch (last batch) reuses the 4-vector state
    small = ceclip_losses(v[:2], t[:2], h[:2], mask[:2], 100.0, a["theta_new"])
    assert small["theta_new"].shape == (4,)
    one = ceclip_losses(v[:1], t[:1], h[:1], mask[:1], 100.0, 0.0)
    close(one["t2i"], 0.0)
    fixed = ceclip_losses(v, t, h, mask, 100.0, t64(2, 2, 2, 2), update="fixed")
    close(fixed["theta_new"], [2, 2, 2, 2])
    mx = ceclip_losses(v, t, h, mask, 1.0, 0.0, update="max")
    g = (v * t).sum(-1)
    n = torch.einsum("bd,bkd->bk", v, h) * mask
    close(mx["theta_new"], ((g[:, None] * mask - n).max(0).values / 5).clamp(0, 10))
    with pytest.raises(ValueError, match="IMC"):
        ceclip_losses(v, t, h, mask, 1.0, 0.0, imc="paper")
    with pytest.raises(ValueError, match="theta"):
        ceclip_losses(v, t, h, mask, 1.0, torch.zeros(3, 4))


def test_ceclip_drop_removes_false_negatives(ce_inputs):
    v, t, h, mask = ce_inputs
    drop = torch.zeros(3, 4, dtype=torch.bool)
    drop[2, 3] = True
    out = ceclip_losses(v, t, h, mask, 100.0, 0.0, imc="label0", drop=drop)
    keep = torch.cat([t, h.reshape(12, 5)[:11]])
    close(out["i2t"], F.cross_entropy(100.0 * v @ keep.t(), torch.arange(3)))
    lg = torch.cat([100.0 * (v * t).sum(-1, keepdim=True), 100.0 * t @ h.reshape(12, 5)[:11].t()], 1)
    close(out["imc"], F.cross_entropy(lg, torch.zeros(3, dtype=torch.long)))
    close(out["cmr"], ceclip_losses(v, t, h, mask, 100.0, 0.0)["cmr"])
    drop[0, 0] = True
    with pytest.raises(ValueError, match="target"):
        ceclip_losses(v, t, h, mask, 100.0, 0.0, imc="head", drop=drop)


def test_ceclip_gradients_flow(ce_inputs):
    v, t, h, mask = (x.clone() for x in ce_inputs)
    scale = torch.tensor(math.log(50.0), dtype=D64, requires_grad=True)
    t.requires_grad_(True)
    out = ceclip_losses(v, t, h, mask, scale.exp(), 0.0, imc="label0")
    out["total"].backward()
    assert torch.isfinite(t.grad).all() and scale.grad is not None


def test_clamp_logit_scale():
    p = torch.nn.Parameter(torch.tensor(6.0))
    clamp_logit_scale_(p)
    close(p.exp(), 100.0, tol=1e-4)
    p.data.fill_(-1.0)
    clamp_logit_scale_(p)
    close(p, 0.0)


# ---------------------------------------------------------------- §1 component negatives


def test_infonce_identical_gives_log_b():
    close(info_nce(torch.full((4, 4), 7.0, dtype=D64)), math.log(4))
    with pytest.raises(ValueError, match="square"):
        info_nce(torch.zeros(2, 3))


def test_component_loss_identical_embeddings_give_log_1_plus_c():
    torch.manual_seed(0)
    d, c, length = 8, 4, 5
    tokens = torch.randn(1, length, d)
    head = ImportanceEstimator(d)
    neg_tokens = tokens[:, None].expand(1, c, length, d)
    logits_imp = head(tokens, torch.ones(1, length), neg_tokens, torch.ones(1, c, length), torch.ones(1, c))
    omega = importance_weights(logits_imp)
    close(omega, [[0.25] * 4], tol=1e-6)
    x = torch.randn(1, d, dtype=D64)
    s = 30.0
    out = component_negative_loss(
        cosine_logits(x, x, s), cosine_logits(x, x, s).expand(1, c), torch.ones(1, c), omega.double()
    )
    close(out["cn"], math.log(1 + c))
    close(out["t2v"], 0.0)
    close(out["total"], 0.5 * math.log(1 + c))


def _batch(b: int = 3, c: int = 4, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    logits = torch.randn(b, b, dtype=D64, generator=gen) * 3
    neg = torch.randn(b, c, dtype=D64, generator=gen) * 3
    mask = torch.ones(b, c, dtype=D64)
    return logits, neg, mask


def test_component_loss_one_hot_omega_is_infonce_with_one_weighted_negative():
    logits, neg, mask = _batch()
    c = neg.shape[1]
    omega = torch.zeros(3, c, dtype=D64)
    omega[:, 2] = 1.0
    out = component_negative_loss(logits, neg, mask, omega)
    v2t = logits.t()
    manual = -(v2t.diagonal() - torch.log(v2t.exp().sum(1) + c * neg[:, 2].exp())).mean()
    close(out["cn"], manual, tol=1e-12)
    close(out["t2v"], F.cross_entropy(logits, torch.arange(3)), tol=1e-12)


def test_component_loss_masks_and_positive():
    logits, neg, mask = _batch()
    omega = torch.full_like(neg, 0.25)
    mask[1] = 0  # every component of sample 1 missing → no extra term for it
    out = component_negative_loss(logits, neg, mask, omega)
    v2t = logits.t()
    rows = torch.log(v2t.exp().sum(1) + 4 * (0.25 * mask * neg.exp()).sum(1)) - v2t.diagonal()
    close(out["cn"], rows.mean(), tol=1e-12)
    plain = F.cross_entropy(v2t, torch.arange(3), reduction="none")
    close(rows[1], plain[1], tol=1e-12)
    pos = torch.tensor([1.0, -2.0, 0.5], dtype=D64)
    none = component_negative_loss(logits, neg, mask, omega, pos_logits=pos, pos_mask=torch.zeros(3))
    close(none["cn"], out["cn"], tol=1e-12)
    with_pos = component_negative_loss(logits, neg, mask, omega, pos_logits=pos, pos_mask=torch.ones(3))
    num = torch.log(v2t.diagonal().exp() + pos.exp())
    den = torch.log(v2t.exp().sum(1) + pos.exp() + 4 * (0.25 * mask * neg.exp()).sum(1))
    close(with_pos["cn"], (den - num).mean(), tol=1e-12)


def test_importance_permutation_equivariance_and_missing_components():
    torch.manual_seed(1)
    head = ImportanceEstimator(6)
    anchor = torch.randn(2, 5, 6)
    amask = torch.tensor([[1, 1, 1, 0, 0], [1, 1, 1, 1, 1]])
    negs = torch.randn(2, 4, 3, 6)
    nmask = torch.ones(2, 4, 3)
    nmask[0, 1, 2] = 0
    cmask = torch.ones(2, 4)
    omega = importance_weights(head(anchor, amask, negs, nmask, cmask))
    perm = torch.tensor([2, 0, 3, 1])
    omega_p = importance_weights(head(anchor, amask, negs[:, perm], nmask[:, perm], cmask[:, perm]))
    close(omega_p, omega[:, perm], tol=1e-6)
    close(omega.sum(1), [1.0, 1.0], tol=1e-6)
    # a missing component (all tokens padded) gets ω = 0 and no NaN reaches the gradients
    nmask[1, 3] = 0
    cmask[1, 3] = 0
    imp = head(anchor, amask, negs, nmask, cmask)
    assert imp[1, 3] == float("-inf")
    cmask_all = cmask.clone()
    cmask_all[0] = 0
    imp_all = head(anchor, amask, negs, nmask, cmask_all)
    close(importance_weights(imp_all)[0], [0.0] * 4)
    target = ie_targets(torch.randn(2, 4), cmask_all)
    importance_kl(imp_all, target, cmask_all).backward()
    assert all(torch.isfinite(p.grad).all() for p in head.parameters())


def test_importance_is_trained_only_by_its_weak_supervision():
    logits, neg, mask = _batch()
    mask[2, 1] = 0
    imp = torch.randn(3, 4, dtype=D64, requires_grad=True)
    imp_masked = imp.masked_fill(mask == 0, float("-inf"))
    logits.requires_grad_(True)
    out = component_objective(logits, neg, mask, imp_masked)
    (g_comp,) = torch.autograd.grad(out["component"], imp, retain_graph=True, allow_unused=True)
    assert g_comp is None or not g_comp.any()  # ω enters the retrieval loss under stop-gradient
    (g_ie,) = torch.autograd.grad(out["ie"], imp)
    assert g_ie.abs().sum() > 0 and g_ie[2, 1] == 0
    close(out["total"], out["component"] + 0.1 * out["ie"], tol=1e-12)
    assert out["ie"] >= 0
    # q is the softmax of the negative logits over valid components; ω = q gives KL 0
    close(out["target"][2, 1], 0.0)
    close(importance_kl(neg.masked_fill(mask == 0, float("-inf")), out["target"], mask), 0.0, tol=1e-12)
    close(out["target"].sum(1), [1.0, 1.0, 1.0])


def test_fine_grained_similarity():
    gen = torch.Generator().manual_seed(2)
    words = torch.randn(2, 4, 6, dtype=D64, generator=gen)
    frames = torch.randn(3, 5, 6, dtype=D64, generator=gen)
    wmask = torch.tensor([[1, 1, 1, 0], [1, 1, 1, 1]])
    fmask = torch.ones(3, 5)
    fmask[1, 2:] = 0
    mat = fine_grained_similarity(words[:, None], wmask[:, None], frames[None], fmask[None])
    assert mat.shape == (2, 3)
    for a in range(2):
        for b in range(3):
            wa = F.normalize(words[a][wmask[a] == 1], dim=-1)
            fb = F.normalize(frames[b][fmask[b] == 1], dim=-1)
            cos = wa @ fb.t()
            per_word = (torch.softmax(cos / 0.1, 1) * cos).sum(1)
            close(mat[a, b], (torch.softmax(per_word / 0.1, 0) * per_word).sum(), tol=1e-12)
    # one valid frame: each word's score is its cosine to that frame; one word too: the plain cosine
    one = torch.zeros(5)
    one[3] = 1
    single = fine_grained_similarity(words[0, :1], torch.ones(1), frames[0], one)
    close(single, F.cosine_similarity(words[0, 0], frames[0, 3], dim=0), tol=1e-12)


# ---------------------------------------------------------------- §2 S3MA


def test_sparse_code_keeps_top_k():
    gen = torch.Generator().manual_seed(0)
    z = torch.randn(40, 8, generator=gen)
    x = torch.randn(3, 8, generator=gen)
    pi, logits = sparse_code(x, z, k=16)
    assert ((pi > 0).sum(1) == 16).all()
    close(pi.sum(1), [1.0] * 3, tol=1e-6)
    top = logits.topk(16, dim=1).indices
    assert torch.equal(torch.sort(top, 1).values, torch.sort(pi.topk(16, dim=1).indices, 1).values)
    assert ((sparse_code(x, z[:5], k=16)[0] > 0).sum(1) == 5).all()


def _s3ma_batch(seed: int = 0):
    gen = torch.Generator().manual_seed(seed)
    text = torch.randn(3, 8, dtype=D64, generator=gen)
    video = torch.randn(3, 8, dtype=D64, generator=gen)
    frames = torch.randn(3, 4, 8, dtype=D64, generator=gen)
    fmask = torch.ones(3, 4, dtype=D64)
    fmask[2, 1:] = 0
    return text, video, frames, fmask


def test_s3ma_single_concept_ranks_like_dense():
    text, video, frames, fmask = _s3ma_batch()
    z = torch.randn(1, 8, dtype=D64)
    s = multi_grained_similarity(text, video, frames, fmask, z)
    sc, sf = coarse_fine(text, video, frames, fmask)
    close(s, 0.25 * (sc + sf + 2.0), tol=1e-12)  # both sparse similarities are the constant 1
    assert torch.equal(s.argsort(dim=1), (sc + sf).argsort(dim=1))


def test_s3ma_one_valid_frame_is_the_frame_cosine():
    text, video, frames, fmask = _s3ma_batch()
    _, sf = coarse_fine(text, video, frames, fmask)
    close(sf[:, 2], F.normalize(text, dim=1) @ F.normalize(frames[2, 0], dim=0), tol=1e-12)


def test_text_anchor_targets_and_concept_losses():
    kappa = torch.tensor([0, 1, 1, 2, 3, 3])
    ids = torch.tensor([[1, 2, 4, 0], [5, 0, 0, 0], [3, 3, 3, 3]])
    tmask = torch.tensor([[1, 1, 1, 0], [0, 0, 0, 0], [1, 1, 0, 0]])
    y, has = text_anchor_targets(ids, tmask, kappa, 4)
    close(y, [[0, 0.5, 0, 0.5], [0, 0, 0, 0], [0, 0, 1, 0]])
    assert has.tolist() == [True, False, True]
    text, video, frames, fmask = _s3ma_batch()
    z = torch.randn(4, 8, dtype=D64)
    out = concept_losses(text, video, frames, fmask, z, y, has)
    zn = F.normalize(z, dim=1)

    def lp(x):
        return torch.log_softmax(F.normalize(x, dim=-1) @ zn.t() / 0.05, -1)

    sim = -(y * lp(text)).sum(1)
    frame_term = torch.stack([-(y[i] * lp(frames[i][fmask[i] == 1])).sum(-1).mean() for i in range(3)])
    align = -(y * lp(video)).sum(1) + frame_term
    close(out["sim"], sim[[0, 2]].mean(), tol=1e-10)
    close(out["align"], align[[0, 2]].mean(), tol=1e-10)
    none = concept_losses(text, video, frames, fmask, z, y, torch.zeros(3, dtype=torch.bool))
    close(none["sim"], 0.0)


def test_s3ma_loss_trains_concepts():
    text, video, frames, fmask = _s3ma_batch()
    z = torch.randn(6, 8, dtype=D64, requires_grad=True)
    y, has = text_anchor_targets(torch.tensor([[0, 1], [2, 3], [4, 5]]), torch.ones(3, 2), torch.arange(6), 6)
    out = s3ma_loss(text, video, frames, fmask, z, y, has, 20.0, k_s=3)
    close(out["total"], out["nce"] + 0.5 * out["sim"] + 0.5 * out["align"], tol=1e-12)
    close(out["nce"], info_nce(20.0 * out["similarity"]), tol=1e-12)
    out["total"].backward()
    assert torch.isfinite(z.grad).all() and z.grad.abs().sum() > 0


def test_concept_bank_kmeans_init():
    gen = torch.Generator().manual_seed(0)
    centres = F.normalize(torch.randn(4, 8, generator=gen), dim=1) * 5
    table = (centres[:, None] + 0.3 * torch.randn(4, 25, 8, generator=gen)).reshape(100, 8)
    truth = torch.arange(4).repeat_interleave(25)
    bank = ConceptHead.from_token_embeddings(table, 4, seed=0)
    # each true cluster maps to one concept, and κ(w) is the word's most similar concept
    assert all(len(set(bank.kappa[truth == c].tolist())) == 1 for c in range(4))
    assert len(set(bank.kappa.tolist())) == 4
    nearest = (F.normalize(table, dim=1) @ F.normalize(bank.concepts.detach(), dim=1).t()).argmax(1)
    assert torch.equal(nearest, bank.kappa)
    again = ConceptHead.from_token_embeddings(table, 4, seed=0)
    assert torch.equal(again.concepts, bank.concepts)
    assert set(bank.state_dict()) == {"concepts", "kappa"}
    proj = torch.randn(8, 5, generator=gen)
    projected = ConceptHead.from_token_embeddings(table, 6, projection=proj, iters=3)
    assert projected.concepts.shape == (6, 5) and projected.kappa.shape == (100,)
    assert projected.code(torch.randn(2, 5)).shape == (2, 6)
    with pytest.raises(ValueError, match="N ≥ k"):
        spherical_kmeans(table[:3], 4)


def test_kmeans_reseeds_empty_clusters():
    table = torch.cat([torch.ones(10, 3), -torch.ones(1, 3), torch.tensor([[1.0, -1.0, 0.0]])])
    centroids, assign = spherical_kmeans(table, 3, iters=5, seed=0)
    assert set(assign.tolist()) == {0, 1, 2}
    close(centroids.norm(dim=1), [1.0] * 3, tol=1e-6)
