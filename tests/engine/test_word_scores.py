"""The word-frame score at search time (losses.md §1.4, ``engine.search.word_scores``): the same arithmetic as
training's ``fine_grained_similarity``, read through the model's head over the windows the index pooled."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from engine.models.base import words_of
from engine.models.video_model import VideoModelEncoder, scratch_model
from engine.search.word_scores import WordRows, video_word_similarity
from engine.train.losses import fine_grained_similarity


def _unit(x: np.ndarray) -> np.ndarray:
    return (x / np.linalg.norm(x, axis=-1, keepdims=True)).astype(np.float32)


def test_the_word_score_equals_training_fine_score_with_padded_words_and_frames() -> None:
    """One window of seven frames, two of them padding, against texts of 5, 2 and 1 words: training's s_fine."""
    from engine.search.word_scores import HeadWindows, windows_similarity

    rng = np.random.default_rng(0)
    tokens, frames = _unit(rng.normal(size=(3, 5, 16))), _unit(rng.normal(size=(7, 16)))
    mask = np.array([[1, 1, 1, 1, 1], [1, 1, 0, 0, 0], [1, 0, 0, 0, 0]], dtype=bool)
    valid = np.array([1, 1, 1, 1, 1, 0, 0], dtype=bool)
    got = windows_similarity(WordRows(tokens, mask, np.arange(3)), HeadWindows(frames[None], valid[None]))
    want = fine_grained_similarity(
        torch.from_numpy(tokens),
        torch.from_numpy(mask),
        torch.from_numpy(frames)[None],
        torch.from_numpy(valid.astype(np.float32))[None],
    )
    np.testing.assert_allclose(got, want.double().numpy(), atol=1e-6)


def test_word_rows_pad_texts_of_different_lengths() -> None:
    rows = WordRows.of([np.ones((2, 4), np.float32), np.ones((5, 4), np.float32)], [0, 3], 4)
    assert rows.tokens.shape == (2, 5, 4) and rows.mask.sum(axis=1).tolist() == [2, 5]
    assert rows.rows.tolist() == [0, 3] and not rows.tokens[0, 2:].any()


def _encoder(score_mode: str, pooling: str = "auto") -> VideoModelEncoder:
    return VideoModelEncoder(
        "test-word-scores",
        lambda: scratch_model("scratch:tiny"),
        dim=scratch_model("scratch:tiny").head.dim,
        image_size=32,
        n_frames=8,
        source="scratch:tiny",
        device="cpu",
        pooling=pooling,
        score_mode=score_mode,
    )


def test_only_a_run_trained_with_the_fine_score_and_pooled_through_its_head_scores_words() -> None:
    assert words_of(_encoder("fine")) is not None
    assert words_of(_encoder("cosine")) is None
    assert words_of(_encoder("fine", pooling="mean")) is None  # its head, whose outputs the score saw, is dropped


def test_the_word_scorer_is_found_through_the_cli_searchs_text_cache(tmp_path) -> None:
    """``scenefind search`` wraps the encoder in ``CachedTexts``, which forwards attributes: the word scorer is read
    as one (never by a protocol check on the wrapper, which Python 3.12 makes without ``__getattr__``)."""
    from engine.search.text_cache import CachedTexts, TextVectorCache

    inner = _encoder("fine")
    cache = TextVectorCache(tmp_path / "texts.sqlite")
    try:
        assert words_of(CachedTexts(inner, cache)) is inner  # type: ignore[arg-type]
        assert words_of(CachedTexts(_encoder("cosine"), cache)) is None  # type: ignore[arg-type]
    finally:
        cache.close()


def test_a_clip_of_the_heads_length_scores_what_training_scored() -> None:
    """Eight frames at the slots' centres: the whole-video window feeds them to the head once each, in order, and
    the score is training's s_fine of the head's per-frame outputs (the stored vectors are unit rows; the head
    normalises its inputs, so a common scale does not matter)."""
    encoder = _encoder("fine")
    model = encoder.torch_model()
    rng = np.random.default_rng(1)
    frames = _unit(rng.normal(size=(8, encoder.dim)))
    times = np.arange(8) + 0.5
    captions = ["a red circle moves from left to right", "a blue square"]
    words = WordRows.of(encoder.encode_words(captions), [0, 1], encoder.dim)
    got = video_word_similarity(encoder, words, frames, times, [], 8.0)
    with torch.no_grad():
        text = model.encode_text(captions)
        video = model.pool_frames(torch.from_numpy(3.0 * frames)[None])
        want = fine_grained_similarity(text.tokens, text.mask, video.frames, video.frame_mask)
    # 1e-4, not float precision: LayerNorm's ε (1e-5 against a unit vector's per-component variance of 1/D) makes
    # the head almost, not exactly, blind to a common scale of its inputs.
    np.testing.assert_allclose(got, want.double().numpy(), atol=1e-4)


def test_a_long_video_counts_its_best_window() -> None:
    """The score of a video is the best of its windows: never below any one segment's score alone."""
    encoder = _encoder("fine")
    rng = np.random.default_rng(2)
    frames, times = _unit(rng.normal(size=(20, encoder.dim))), np.arange(20) + 0.5
    words = WordRows.of(encoder.encode_words(["a green triangle"]), [0], encoder.dim)
    spans = [(0.0, 8.0), (8.0, 16.0), (16.0, 20.0)]
    whole = video_word_similarity(encoder, words, frames, times, spans, 20.0)
    for span in spans:
        inside = (times >= span[0]) & (times <= span[1])
        alone = video_word_similarity(encoder, words, frames[inside], times[inside] - span[0], [], span[1] - span[0])
        assert whole[0] >= alone[0] - 1e-6
    assert video_word_similarity(encoder, words, frames[:0], times[:0], [], 0.0).tolist() == [0.0]


@pytest.mark.parametrize("n", [1, 3])
def test_a_video_shorter_than_the_clip_length_is_resampled_like_indexing(n: int) -> None:
    encoder = _encoder("fine")
    rng = np.random.default_rng(3)
    frames = _unit(rng.normal(size=(n, encoder.dim)))
    words = WordRows.of(encoder.encode_words(["a circle"]), [0], encoder.dim)
    score = video_word_similarity(encoder, words, frames, np.arange(n) + 0.5, [], float(n))
    assert score.shape == (1,) and -1.0 <= float(score[0]) <= 1.0


def test_the_window_cache_reads_each_video_through_the_head_once_and_drops_the_least_recent() -> None:
    from engine.search.word_scores import HeadWindows, WindowCache

    def windows() -> HeadWindows:
        made.append(1)
        return HeadWindows(np.zeros((2, 8, 16), np.float32), np.ones((2, 8), bool))

    made: list[int] = []
    size = windows().nbytes
    made.clear()
    cache = WindowCache(max_bytes=2 * size)
    first = cache.get(1, windows)
    assert cache.get(1, windows) is first and len(made) == 1  # a second query reuses the first read
    cache.get(2, windows)
    cache.get(1, windows)  # 1 is now the most recent
    cache.get(3, windows)  # over the limit: 2, the least recent, goes
    assert len(cache) == 2 and len(made) == 3
    cache.get(1, windows)
    assert len(made) == 3
    cache.get(2, windows)
    assert len(made) == 4


def test_windows_read_for_several_videos_at_once_equal_each_read_alone() -> None:
    """The searcher reads every candidate's windows in one head run; each video's windows are what it gets alone,
    and a video with no frames has none."""
    from engine.search.word_scores import VideoFrames, head_windows, head_windows_of

    encoder, rng = _encoder("fine"), np.random.default_rng(3)
    videos = []
    for n_frames, spans in ((5, [(0.0, 2.0)]), (0, []), (23, [(0.0, 4.0), (2.0, 6.0), (4.0, 11.5)])):
        times = np.arange(n_frames) * 0.5
        videos.append(VideoFrames(_unit(rng.normal(size=(n_frames, encoder.dim))), times, spans, n_frames * 0.5))
    together = head_windows_of(encoder, videos)
    assert together[1] is None
    for video, got in zip(videos, together, strict=True):
        alone = head_windows(encoder, video.frames, video.times, video.spans, video.duration)
        if alone is None:
            assert got is None
            continue
        assert got is not None and got.outputs.shape == (len(video.spans) + 1, encoder.n_frames, encoder.dim)
        np.testing.assert_array_equal(got.valid, alone.valid)
        np.testing.assert_allclose(got.outputs, alone.outputs, atol=1e-5)


class _RecordingHead:
    """A temporal head that records which frames each window fed it (features are one-hot frame indices)."""

    def __init__(self, windows: str) -> None:
        self.n_frames, self.windows, self.dim, self.fed = 8, windows, 32, []

    def pool(self, features: np.ndarray, mask: np.ndarray) -> np.ndarray:
        self.fed += [np.where(m, f.argmax(axis=1), -1).tolist() for f, m in zip(features, mask, strict=True)]
        return _unit(np.ones((len(features), self.dim)))


@pytest.mark.parametrize("windows", ["resample", "pad"])
def test_the_word_score_reads_the_very_frames_indexing_pooled_in_each_window(windows: str) -> None:
    """Frames one second apart land on segment ends (a 4 s window at 0-4 s holds 0..3 s, not the frame at 4 s):
    the word score's windows are the slots indexing fed the head, segment by segment and for the whole video."""
    from engine.indexing.head_pooling import head_pool
    from engine.search.word_scores import _slots

    head = _RecordingHead(windows)
    times = np.arange(11, dtype=np.float64)
    pooled = head_pool(times, np.eye(11, head.dim, dtype=np.float32), 10.5, 4.0, 2.0, head)  # type: ignore[arg-type]
    indexed = head.fed[: len(pooled.spans) + 1]  # the segments, then the whole video (the context windows follow)
    assert _slots(head, times, pooled.spans, 10.5).tolist() == indexed  # type: ignore[arg-type]
