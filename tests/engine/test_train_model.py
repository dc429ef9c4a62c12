"""The trainable model: a temporal head that sees motion, open_clip token features, freezing, checkpoints."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from engine.train.model import TemporalHead, build_model, load_model, open_clip_backbone
from engine.train.synthetic import Scene, render, synthetic_backbone


def _clip(verb: tuple[str, str] = ("left", "right")) -> torch.Tensor:
    frames = render(Scene("circle", "red", verb, "square", "blue"), np.random.default_rng(0))
    return torch.from_numpy(frames).unsqueeze(0)


def test_temporal_head_tells_a_clip_from_its_time_reversal() -> None:
    """findings.md #1: with motion tokens, cos(v(x), v(reversed x)) is clearly below 1, even untrained."""
    torch.manual_seed(0)
    with_motion = build_model(synthetic_backbone(), motion=True, seed=0).eval()
    blind = build_model(synthetic_backbone(), motion=False, seed=0).eval()
    clip = _clip()
    reverse = clip.flip(1)
    with torch.no_grad():
        cos = F.cosine_similarity(with_motion.encode_video(clip).pooled, with_motion.encode_video(reverse).pooled)
        cos_blind = F.cosine_similarity(blind.encode_video(clip).pooled, blind.encode_video(reverse).pooled)
    assert float(cos) < 0.98
    assert float(cos) < float(cos_blind) - 0.03


def test_temporal_head_ignores_padded_frames() -> None:
    torch.manual_seed(0)
    head = TemporalHead(16, layers=1, heads=2).eval()
    frames = torch.randn(2, 6, 16)
    mask = torch.tensor([[1, 1, 1, 1, 0, 0], [1, 1, 1, 1, 1, 1]], dtype=torch.bool)
    changed = frames.clone()
    changed[0, 4:] = 100.0
    with torch.no_grad():
        _, a = head(frames, mask)
        _, b = head(changed, mask)
        _, short = head(frames[:1, :4])
    assert torch.allclose(a[0], b[0], atol=1e-5) and torch.allclose(a[0], short[0], atol=1e-5)
    with pytest.raises(ValueError, match="at most 32"):
        head(torch.randn(1, 40, 16))


def test_open_clip_backbone_tokens_match_encode_text() -> None:
    backbone = open_clip_backbone("test-tiny")
    ids, mask = backbone.tokenize(["a dog runs on the beach", "cat"])
    assert mask[1].sum() == 1 and not mask[:, 0].any()  # start token is not content
    with torch.no_grad():
        pooled, tokens = backbone.encode_tokens(ids)
        reference = backbone.model.encode_text(ids)
    assert torch.allclose(pooled, reference, atol=1e-5)
    assert tokens.shape[:2] == (2, int(ids.ne(0).sum(1).max()))


def test_checkpoint_loads_as_an_encoder_and_as_the_whole_model(tmp_path) -> None:
    from engine.models.registry import create_encoder

    model = build_model(
        open_clip_backbone("test-tiny"), concept_head=True, n_concepts=8, importance=True, emcl_k=4, score_mode="emcl"
    )
    with torch.no_grad():
        model.emcl.m.copy_(torch.tensor([0.5, -0.25, 1.0, 2.0]))
        model.ceclip_theta.copy_(torch.tensor([1.0, 2.0, 3.0, 4.0]))
        model.head.out.weight.add_(0.5)
    folder = model.save_checkpoint(tmp_path / "ckpt", {"note": "test"})
    assert {p.name for p in folder.iterdir()} == {"model.safetensors", "heads.safetensors", "config.json"}

    encoder = create_encoder(str(folder), device="cpu")  # the search side: towers only
    texts = ["a red car", "two people dancing"]
    with torch.no_grad():
        expected = F.normalize(model.encode_text(texts).pooled, dim=-1).numpy()
    assert np.allclose(encoder.encode_texts(texts), expected, atol=1e-5)

    again = load_model(folder).eval()
    model.eval()
    assert torch.equal(again.emcl.m, model.emcl.m) and torch.equal(again.ceclip_theta, model.ceclip_theta)
    assert torch.equal(again.concepts.kappa, model.concepts.kappa) and again.score_mode == "emcl"
    clips = torch.randint(0, 255, (2, 8, 32, 32, 3), dtype=torch.uint8)
    with torch.no_grad():
        a = model.similarity(model.encode_text(texts), model.encode_video(clips))
        b = again.similarity(again.encode_text(texts), again.encode_video(clips))
    assert torch.allclose(a, b, atol=1e-5)


def test_synthetic_checkpoint_round_trip(tmp_path) -> None:
    model = build_model(synthetic_backbone(), seed=1).eval()
    again = load_model(model.save_checkpoint(tmp_path / "syn")).eval()
    with torch.no_grad():
        assert torch.allclose(model.encode_video(_clip()).pooled, again.encode_video(_clip()).pooled, atol=1e-6)


def test_freezing_options() -> None:
    model = build_model(synthetic_backbone())
    model.configure_trainable(freeze_vision=True)
    assert not any(p.requires_grad for p in model.backbone.cnn.parameters())
    assert model.backbone.token_embedding.weight.requires_grad and model.logit_scale.requires_grad
    model.configure_trainable(heads_only=True)
    assert not any(p.requires_grad for p in model.backbone.parameters())
    assert all(p.requires_grad for p in model.head.parameters())
    model.configure_trainable()
    assert all(p.requires_grad for p in model.parameters())


def test_score_modes_need_their_heads() -> None:
    with pytest.raises(ValueError, match="concept bank"):
        build_model(synthetic_backbone(), score_mode="s3ma")
    with pytest.raises(ValueError, match="EMCL state"):
        build_model(synthetic_backbone(), score_mode="emcl")


def test_fine_score_mode_is_half_global_plus_word_frame_similarity() -> None:
    """losses.md §1.4: the component objectives score every pair ½(s_global + s_fine), and so does evaluation;
    the objective's negative logits are those same pair scores."""
    from engine.train.clips import make_batch
    from engine.train.losses import fine_grained_similarity
    from engine.train.objective import SCORE_MODE, ObjectiveSettings, _component_inputs
    from engine.train.synthetic import SyntheticSpec, make_splits

    assert SCORE_MODE["component"] == SCORE_MODE["component_ie"] == "fine"
    torch.manual_seed(0)
    model = build_model(synthetic_backbone(), score_mode="fine").eval()
    train, _ = make_splits(0, SyntheticSpec(n_train=6, n_test=2))
    batch = make_batch(train, list(range(6)), seed=0, epoch=0)
    with torch.no_grad():
        text, video = model.encode_text(batch.captions), model.encode_video(batch.frames)
        sim = model.similarity(text, video)
        cosine = F.normalize(text.pooled, dim=-1) @ F.normalize(video.pooled, dim=-1).t()
        fine = torch.stack(
            [
                torch.stack(
                    [
                        fine_grained_similarity(text.tokens[i], text.mask[i], video.frames[j], video.frame_mask[j])
                        for j in range(6)
                    ]
                )
                for i in range(6)
            ]
        )
        assert torch.allclose(sim, 0.5 * (cosine + fine), atol=1e-6) and not torch.allclose(sim, cosine)
        logits, neg_logits, mask, _, _ = _component_inputs(model, batch, ObjectiveSettings("component"))
        scale = model.logit_scale.exp()
        assert torch.allclose(logits, scale * sim, atol=1e-5)
        negs, _, _ = batch.columns(("subject", "verb", "object", "attribute", "relation"))
        for i in range(6):
            for c, neg in enumerate(negs[i]):
                if mask[i, c]:
                    one = model.similarity(model.encode_text([neg]), model.encode_video(batch.frames[i : i + 1]))
                    assert torch.allclose(neg_logits[i, c], scale * one[0, 0], atol=1e-5)
