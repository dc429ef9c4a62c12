"""The time-reversal term: which captions name a path, the loss arithmetic, and its place in every objective."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from engine.train.clips import make_batch
from engine.train.config import TrainConfig
from engine.train.objective import OBJECTIVES, ObjectiveSettings, model_for_objective, objective_loss
from engine.train.synthetic import SyntheticSpec, make_splits, synthetic_backbone
from engine.train.time_reversal import names_a_path, path_mask, reverse_frames, time_reversal_loss


@pytest.mark.parametrize(
    ("caption", "path"),
    [
        ("a red circle goes from left to right next to a blue square", True),
        ("a green star grows from small to big", True),
        ("She walks From the kitchen to the garden.", True),
        ("a man plays the guitar", False),
        ("a letter from grandma", False),  # a source without a goal is no path
        ("to be or not to be", False),
    ],
)
def test_which_captions_name_a_path(caption: str, path: bool) -> None:
    assert names_a_path(caption) is path


def test_the_term_is_the_two_way_softmax_of_clip_against_reversed_clip() -> None:
    g = torch.Generator().manual_seed(0)
    text, video, backwards = (torch.randn(4, 8, generator=g) for _ in range(3))
    mask = torch.tensor([True, False, True, True])
    scale = torch.tensor(10.0)
    expected = []
    for i in (0, 2, 3):
        pos = F.cosine_similarity(text[i], video[i], dim=0) * 10
        neg = F.cosine_similarity(text[i], backwards[i], dim=0) * 10
        expected.append(-math.log(math.exp(pos) / (math.exp(pos) + math.exp(neg))))
    got = time_reversal_loss(text, video, backwards, mask, scale)
    assert got.item() == pytest.approx(sum(expected) / 3, rel=1e-5)
    none = torch.zeros(4, dtype=torch.bool)
    assert time_reversal_loss(text, video, backwards, none, scale).item() == 0.0
    frames, mask2 = reverse_frames(torch.arange(6.0).reshape(1, 3, 2), torch.tensor([[True, True, False]]))
    assert frames[0, 0].tolist() == [4.0, 5.0] and mask2 is not None and mask2.tolist() == [[False, True, True]]


@pytest.fixture(scope="module")
def clips():
    return make_splits(0, SyntheticSpec(n_train=12, n_test=4, size=16))[0]


@pytest.mark.parametrize("objective", OBJECTIVES)
def test_every_objective_takes_the_term_and_stays_itself_without_it(objective: str, clips) -> None:
    torch.manual_seed(0)
    model = model_for_objective(synthetic_backbone(16), objective, n_frames=8, seed=0)
    model.eval()  # no dropout; CE-CLIP's θ still moves, so each call gets the same fresh state below
    theta = model.ceclip_theta.clone()
    batch = make_batch(clips, list(range(6)), seed=0, epoch=0)
    assert path_mask(batch.captions).all()  # every synthetic caption names a path (its verb: from A to B)
    plain = objective_loss(model, batch, ObjectiveSettings(name=objective))
    model.ceclip_theta.copy_(theta)
    with_term = objective_loss(model, batch, ObjectiveSettings(name=objective, time_reversal=0.5))
    assert "reversal" not in plain and with_term["reversal"].item() > 0
    added = plain["total"].item() + 0.5 * with_term["reversal"].item()
    assert with_term["total"].item() == pytest.approx(added, rel=1e-4)
    with_term["total"].backward()
    assert model.head.inp.weight.grad is not None and torch.isfinite(model.head.inp.weight.grad).all()


def test_the_setting_is_read_from_a_config_and_a_negative_weight_is_refused(tmp_path) -> None:
    config = TrainConfig.from_dict({"data": "x.csv", "out": str(tmp_path), "time_reversal": 1})
    assert config.objective_settings().time_reversal == 1.0
    assert TrainConfig.from_dict({"data": "x.csv", "out": str(tmp_path)}).objective_settings().time_reversal == 0.0
    with pytest.raises(ValueError, match="time_reversal must be at least 0"):
        TrainConfig.from_dict({"data": "x.csv", "out": str(tmp_path), "time_reversal": -1.0}).objective_settings()
