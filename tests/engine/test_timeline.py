"""The decode plan on made-up packet tables: what a file is decides what gets decoded."""

from __future__ import annotations

import numpy as np
import pytest

from engine.media.timeline import Timeline, plan_samples


def _timeline(n: int, fps: float, gop: int | None, *, bframes: bool = False, keys: list[int] | None = None) -> Timeline:
    """``n`` frames at ``fps``, a keyframe every ``gop`` frames (None: only the first; 1: all-intra) or at ``keys``;
    with ``bframes``, decode order differs from presentation order (I P B B P B B ...)."""
    pres = np.arange(n)
    if bframes:  # decode order: each P frame comes before the two B frames shown before it
        order = [0]
        i = 1
        while i < n:
            group = list(range(i, min(i + 3, n)))
            order += [group[-1], *group[:-1]]
            i += 3
        pres = np.array(order)
    key = np.zeros(n, dtype=bool)
    key_frames = keys if keys is not None else (range(0, n, gop) if gop else [0])
    key[np.isin(pres, list(key_frames))] = True
    times = pres / fps
    return Timeline(times.astype(float), key, np.full(n, 1000), 1.0 / fps, n / fps)


def test_a_one_second_gop_decodes_its_keyframes_only() -> None:
    tl = _timeline(300, 30, 30, bframes=True)
    plan = plan_samples(tl, 1.0)
    assert plan.strategy == "keyframes"
    assert plan.send.sum() == 10 and bool(np.all(tl.keys[plan.send]))
    assert list(plan.sample_times) == pytest.approx(list(range(10)))
    assert not plan.drain_before.any()  # keyframes one after another need no reset


def test_two_second_gops_decode_from_the_keyframe_to_the_sample_and_skip_the_rest() -> None:
    tl = _timeline(300, 30, 60)
    plan = plan_samples(tl, 1.0)
    assert plan.strategy == "keyframes+gops"
    assert list(plan.sample_times) == pytest.approx(list(range(10)))
    for g in range(5):  # keyframe at 2g, sample at 2g+1: frames 60g .. 60g+30 decoded, the rest skipped
        assert plan.send[60 * g : 60 * g + 31].all() and not plan.send[60 * g + 31 : 60 * g + 60].any()
    assert plan.drain_before[60::60].all()  # a GOP's run follows a gap: reset the decoder first


def test_exact_mode_never_takes_a_nearby_keyframe() -> None:
    tl = _timeline(300, 30, 32)  # keyframes every 1.067 s
    auto, exact = plan_samples(tl, 1.0), plan_samples(tl, 1.0, mode="exact")
    assert auto.send.sum() < exact.send.sum()
    assert list(exact.sample_times) == pytest.approx(list(range(10)))
    assert all(abs(t - k) <= 0.55 for k, t in enumerate(auto.sample_times))
    assert len(auto.sample_times) == 10  # one sample per second: a keyframe stands in for one time only


def test_intra_only_files_decode_only_the_sampled_frames() -> None:
    plan = plan_samples(_timeline(250, 25, 1), 1.0)
    assert plan.strategy == "intra" and plan.send.sum() == 10 and np.flatnonzero(plan.send).tolist()[:3] == [0, 25, 50]


def test_a_long_gop_is_decoded_up_to_its_last_sample() -> None:
    tl = _timeline(300, 30, None, bframes=True)
    plan = plan_samples(tl, 1.0)
    assert plan.strategy in ("gops", "sequential")
    last_target = int(np.flatnonzero(np.isclose(tl.times, 9.0))[0])
    assert plan.send[: last_target + 1].all() and not plan.send[last_target + 1 :].any()
    assert plan_samples(tl, 1.0, mode="sequential").send.all()


def test_a_leading_picture_of_an_open_gop_decodes_the_gop_before_it() -> None:
    """Keyframe at frame 32 (shown at 1.067 s) decoded before frames 30 and 31 that are shown earlier: the
    sample at 1.0 s is frame 30, which references the GOP before, so that GOP is decoded to its end."""
    n, fps = 96, 30
    times = np.arange(n) / fps
    decode = [*range(30), 32, 30, 31, *range(33, n)]  # frame 32 (the keyframe) comes first in decode order
    tl = Timeline(times[decode], np.isin(decode, [0, 32, 64]), np.full(n, 10), 1 / fps, n / fps)
    plan = plan_samples(tl, 1.0, mode="exact")
    assert plan.send[:33].all()


def test_streams_without_timestamps_are_read_sequentially() -> None:
    tl = Timeline(np.full(50, np.nan), np.isin(np.arange(50), [0, 25]), np.full(50, 10), 0.04, 2.0)
    plan = plan_samples(tl, 1.0)
    assert plan.strategy == "sequential" and plan.send.all()


def test_keyframes_sooner_than_the_usual_gop_are_decoded_as_cut_probes() -> None:
    tl = _timeline(300, 30, None, keys=[0, 30, 60, 75, 90, 120, 150, 180, 210, 240, 270])
    plan = plan_samples(tl, 1.0, cut_keys=True)
    assert 2.5 in plan.probe_keys and 7.0 not in plan.probe_keys and plan.send[75]
    assert not plan_samples(tl, 1.0).send[75]


def test_the_quick_cut_test_agrees_with_the_full_score() -> None:
    from engine.media.cuts import cut_score, is_cut, signature

    rng = np.random.default_rng(0)
    base = rng.integers(0, 256, (36, 64, 3), dtype=np.uint8)
    for _ in range(200):
        other = np.clip(
            base.astype(int) + rng.integers(-80, 80) + rng.normal(0, rng.uniform(0, 60), base.shape), 0, 255
        )
        a, b = signature(base), signature(other.astype(np.uint8))
        for threshold in (0.05, 0.3, 0.6):
            assert is_cut(a, b, threshold) == (cut_score(a, b) >= threshold)
