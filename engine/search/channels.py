"""Picture, speech and on-screen text in one ranking: each channel's calibrated relevance, fused into one score.

Every channel already says on its own 0-100 scale how sure it is: the picture as how far the query's
similarity stands above unrelated captions (``engine.search.calibration``), speech and screen text as how
completely and how surely the query's words were said or shown (``engine.search.lexical``). The fused
relevance of a hit is a weighted noisy-OR of them:

    relevance = 100 · (1 − Π_c (1 − w_c · r_c / 100))      w_picture = 0.9, w_speech = w_text = 1

Why this rule:

* **Noisy-OR** reads each channel's relevance as the chance that its evidence alone makes the hit a find, and
  the channels as independent witnesses: one channel alone keeps its figure (speech 95 and nothing else is 95),
  agreement raises it (a sentence said over a matching picture beats the same sentence over an unrelated one),
  it never exceeds 100, and it is monotone in every channel, so the list still follows the number it shows
  (``engine.search.ranking``). A channel with no evidence (no transcript yet, no text, no picture index for
  this model) contributes nothing instead of pulling the figure down, which an average would do.
* **The picture's weight is below 1** because the two calibrations are not the same kind of certainty. The
  words' relevance reaches 90-100 only when every content word of the query was recognised, in order, with
  sure recognition (the right hits of ``bench speech``'s spoken queries: median 95). The picture's 100 means
  "far above unrelated captions", which a picture that only *looks like* the query reaches too (a purple
  screen for "the secret word is purple balloon"). Measured on ``bench speech``'s mixed set (6 spoken and 6
  visual queries, ``engine.bench.speech_fusion``): with equal weights (or max) every spoken query lost to the
  picture that only looks like it (spoken R@1 0.00, visual 1.00); with the picture at 0.9 or 0.8, spoken
  0.83 and visual 1.00. The one spoken miss is a transcription error, not the rule: tiny.en heard "docket" for
  "jacket", so two words of three matched (relevance 53). A weight of 0.5 would win that one too, but every
  picture-only figure is shrunk by the weight, and most queries in most libraries have only the picture: at
  0.5 a fair picture match (59: z = 2.2 above the captions) would fall under the default
  cutoff of 30. 0.9 is the largest weight that keeps full words matches (>= 90) above any picture alone
  while costing picture-only hits a tenth of their figure; a partial words match (half the words: ~35) stays
  below a good picture match, so a visual query still finds what it looks like first.
* Max would be the rule if channels never agreed; it cannot tell a said-and-shown moment from a said one.

Moments: every candidate (a picture proposal, a spoken sentence, a shown line) is fused with what the other
channels say *at that time*: the picture's relevance over its span, and the best spoken and shown words that
overlap it; a picture proposal whose fused figure is led by words takes the span of those words (a moment is
where it was said). Two candidates of one video that cover the same stretch are one find (the better kept, as
everywhere: ``ranking.distinct_moments``). A hit's ``channel`` is the channel that contributes most to its
fused relevance, and ``quote`` the words of that channel at that time (None for the picture). ``score`` is the
raw score of that channel (the model's similarity for the picture, BM25 for words): ties only.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Literal

from engine.search.lexical import LexicalMoment
from engine.search.results import HitChannel, MomentHit, VideoHit, Why

PICTURE_WEIGHT = 0.9
WEIGHTS: Mapping[HitChannel, float] = {"picture": PICTURE_WEIGHT, "speech": 1.0, "text": 1.0}
_TIE_ORDER: Mapping[HitChannel, int] = {"speech": 0, "text": 1, "picture": 2}  # words quote, so they lead ties


@dataclass(frozen=True)
class Fusion:
    """A fusion rule: per-channel weights and how weighted relevances combine (``noisy-or``, the default, or
    ``max``, which ``bench speech`` measures against it)."""

    weights: Mapping[HitChannel, float] = field(default_factory=lambda: dict(WEIGHTS))
    rule: Literal["noisy-or", "max"] = "noisy-or"

    def relevance(self, parts: Mapping[HitChannel, float]) -> float:
        """The fused 0-100 relevance of per-channel relevances (a missing channel contributes nothing)."""
        weighted = [self.weights[c] * min(1.0, max(0.0, r / 100.0)) for c, r in parts.items()]
        if self.rule == "max":
            return 100.0 * max(weighted, default=0.0)
        miss = 1.0
        for w in weighted:
            miss *= 1.0 - w
        return 100.0 * (1.0 - miss)

    def leading(self, parts: Mapping[HitChannel, float]) -> HitChannel:
        """The channel contributing most to the fused relevance (words before the picture on a tie)."""
        return min(parts, key=lambda c: (-self.weights[c] * parts[c], _TIE_ORDER[c]))


DEFAULT_FUSION = Fusion()


def fused_relevance(parts: Mapping[HitChannel, float], fusion: Fusion = DEFAULT_FUSION) -> float:
    """The default rule's fused relevance (see the module docstring)."""
    return fusion.relevance(parts)


def quote_time(m: LexicalMoment) -> float:
    """When the quote's first matched word starts (where the player should show the find)."""
    return next((w.start for w in m.words if w.matched), m.start)


@dataclass(frozen=True)
class VideoInfo:
    """What a hit needs to know of its video."""

    path: str
    duration: float


def _overlaps(m: LexicalMoment, start: float, end: float) -> bool:
    return (m.start < end and m.end > start) or (m.start == m.end and start <= m.start <= end)


def words_only_videos(lexical: Iterable[LexicalMoment], info: Mapping[int, VideoInfo]) -> list[VideoHit]:
    """Video hits of a search restricted to one words channel: each video's best moment, its relevance as is."""
    best: dict[int, LexicalMoment] = {}
    for m in lexical:
        held = best.get(m.video_id)
        if m.video_id in info and (held is None or (m.relevance, m.bm25) > (held.relevance, held.bm25)):
            best[m.video_id] = m
    return [_words_video(m, m.relevance, m.bm25, info[m.video_id]) for m in best.values()]


def words_only_moments(lexical: Iterable[LexicalMoment], info: Mapping[int, VideoInfo]) -> list[MomentHit]:
    """Moment hits of a search restricted to one words channel."""
    return [
        _words_moment(m, m.start, m.end, m.relevance, m.bm25, info[m.video_id]) for m in lexical if m.video_id in info
    ]


def _words_video(m: LexicalMoment, relevance: float, score: float, v: VideoInfo) -> VideoHit:
    t = quote_time(m)
    return VideoHit(v.path, m.video_id, score, relevance, t, v.duration, Why(t), m.channel, m.quote, m.start, m.end)


def _words_moment(
    m: LexicalMoment, start: float, end: float, relevance: float, score: float, v: VideoInfo
) -> MomentHit:
    t = quote_time(m)
    return MomentHit(
        v.path, m.video_id, start, end, score, relevance, t, v.duration, Why(t), m.channel, m.quote, m.start, m.end
    )


def _best_by_channel(moments: Iterable[LexicalMoment]) -> dict[HitChannel, LexicalMoment]:
    best: dict[HitChannel, LexicalMoment] = {}
    for m in moments:
        if m.channel not in best or (m.relevance, m.bm25) > (best[m.channel].relevance, best[m.channel].bm25):
            best[m.channel] = m
    return best


def fuse_videos(
    picture: Sequence[VideoHit],
    lexical: Sequence[LexicalMoment],
    info: Mapping[int, VideoInfo],
    fusion: Fusion = DEFAULT_FUSION,
) -> list[VideoHit]:
    """One hit per video from its picture hit and its best spoken and shown moments (unordered)."""
    pictures = {h.video_id: h for h in picture}
    words: dict[int, list[LexicalMoment]] = {}
    for m in lexical:
        words.setdefault(m.video_id, []).append(m)
    out: list[VideoHit] = []
    for vid in pictures.keys() | (words.keys() & info.keys()):
        p = pictures.get(vid)
        best = _best_by_channel(words.get(vid, ()))
        parts: dict[HitChannel, float] = {c: m.relevance for c, m in best.items()}
        if p is not None:
            parts["picture"] = p.relevance
        relevance = fusion.relevance(parts)
        lead = fusion.leading(parts)
        if lead == "picture" and p is not None:
            out.append(replace(p, relevance=relevance))
        else:
            m = best[lead]
            out.append(_words_video(m, relevance, m.bm25, info[vid]))
    return out


PictureInSpan = Callable[[int, float, float], float | None]


def fuse_moments(
    picture: Sequence[MomentHit],
    lexical: Sequence[LexicalMoment],
    info: Mapping[int, VideoInfo],
    picture_in_span: PictureInSpan,
    fusion: Fusion = DEFAULT_FUSION,
) -> list[MomentHit]:
    """Every candidate moment fused with the other channels at its time (unordered, duplicates included).

    ``picture_in_span(video_id, start, end)`` is the picture's relevance over a span, None when the video has
    no picture evidence (not indexed with this model, or excluded by the picture)."""
    words: dict[int, list[LexicalMoment]] = {}
    for m in lexical:
        words.setdefault(m.video_id, []).append(m)
    out: list[MomentHit] = []
    for p in picture:
        near = _best_by_channel(m for m in words.get(p.video_id, ()) if _overlaps(m, p.start, p.end))
        parts: dict[HitChannel, float] = {"picture": p.relevance, **{c: m.relevance for c, m in near.items()}}
        relevance = fusion.relevance(parts)
        lead = fusion.leading(parts)
        if lead == "picture":
            out.append(replace(p, relevance=relevance))
        else:
            m = near[lead]
            t = quote_time(m)
            # The words lead: the find is where they were said or shown (the proposal only lent its picture).
            out.append(replace(p, start=m.start, end=m.end, relevance=relevance, best_time=t, why=Why(t),
                               channel=lead, quote=m.quote, quote_start=m.start, quote_end=m.end))  # fmt: skip
    for m in lexical:
        if m.video_id not in info:
            continue
        near = (o for o in words[m.video_id] if o.channel != m.channel and _overlaps(o, m.start, m.end))
        others = _best_by_channel(near)
        parts = {m.channel: m.relevance, **{c: o.relevance for c, o in others.items()}}
        seen = picture_in_span(m.video_id, m.start, m.end)
        if seen is not None:
            parts["picture"] = seen
        relevance = fusion.relevance(parts)
        lead = fusion.leading(parts)
        quoted = m if lead in ("picture", m.channel) else others[lead]
        hit = _words_moment(quoted, m.start, m.end, relevance, m.bm25, info[m.video_id])
        out.append(hit if lead != "picture" else replace(hit, channel="picture", quote=None, quote_start=None,
                                                         quote_end=None))  # fmt: skip
    return out


__all__ = [
    "DEFAULT_FUSION",
    "PICTURE_WEIGHT",
    "WEIGHTS",
    "Fusion",
    "PictureInSpan",
    "VideoInfo",
    "fuse_moments",
    "fuse_videos",
    "fused_relevance",
    "quote_time",
    "words_only_moments",
    "words_only_videos",
]
