"""Validation during training: retrieval R@1/5/10 and compositional accuracy per negative type.

Retrieval uses ``engine.evaluation.metrics`` (CLIP4Clip conventions, pessimistic ties) on the model's own
similarity (cosine, S3MA's four-way score or EMCL's blocked score), so every objective is judged by the score it
would search with. Compositional accuracy asks, for each clip and each of its negatives of a type, whether the
clip scores its own caption above the negative (a tie counts one half); it is reported per type, as the mean over
the four sentence components (``comp_components``), over the binding types (``comp_binding``) and over all.
"""

from __future__ import annotations

from collections import defaultdict

import numpy as np
import torch
from torch import Tensor

from engine.evaluation.metrics import retrieval_metrics
from engine.jobs import CancelToken, ProgressCallback, check_cancel, report
from engine.train.clips import COMPONENTS, ClipSet
from engine.train.model import TextOutput, VideoOutput, VideoTextModel

BINDING_TYPES = ("swap_colors", "swap_roles", "reverse")
PAIR_BLOCK = 32  # EMCL evaluates in blocks of 32 (losses.md §3.2); aligned pairs are scored in the same blocks


def _cat_text(parts: list[TextOutput]) -> TextOutput:
    length = max(p.tokens.shape[1] for p in parts)

    def pad(x: Tensor) -> Tensor:
        extra = length - x.shape[1]
        return torch.nn.functional.pad(x, (0, 0, 0, extra) if x.dim() == 3 else (0, extra))

    return TextOutput(
        torch.cat([p.pooled for p in parts]),
        torch.cat([pad(p.tokens) for p in parts]),
        torch.cat([pad(p.mask) for p in parts]),
        torch.cat([pad(p.ids) for p in parts]),
    )


def _cat_video(parts: list[VideoOutput]) -> VideoOutput:
    return VideoOutput(*(torch.cat([getattr(p, f) for p in parts]) for f in VideoOutput._fields))


@torch.no_grad()
def encode_texts(model: VideoTextModel, texts: list[str], batch_size: int = 256) -> TextOutput:
    return _cat_text([model.encode_text(texts[i : i + batch_size]) for i in range(0, len(texts), batch_size)])


@torch.no_grad()
def encode_videos(
    model: VideoTextModel, clips: ClipSet, batch_size: int = 64, cancel: CancelToken | None = None
) -> VideoOutput:
    parts = []
    for start in range(0, len(clips), batch_size):
        check_cancel(cancel)
        idx = range(start, min(len(clips), start + batch_size))
        frames = torch.from_numpy(np.stack([clips.frames(i) for i in idx]))
        parts.append(model.encode_video(frames))
    return _cat_video(parts)


def _take_text(t: TextOutput, idx: list[int]) -> TextOutput:
    return TextOutput(*(x[idx] for x in t))


def _take_video(v: VideoOutput, idx: list[int]) -> VideoOutput:
    return VideoOutput(*(x[idx] for x in v))


@torch.no_grad()
def pair_scores(model: VideoTextModel, text: TextOutput, video: VideoOutput) -> Tensor:
    """Scores of aligned pairs (text i, video i), computed in blocks of 32 (as EMCL's evaluation does)."""
    out = []
    for start in range(0, text.pooled.shape[0], PAIR_BLOCK):
        idx = list(range(start, min(text.pooled.shape[0], start + PAIR_BLOCK)))
        out.append(model.similarity(_take_text(text, idx), _take_video(video, idx)).diagonal())
    return torch.cat(out)


@torch.no_grad()
def evaluate(
    model: VideoTextModel,
    clips: ClipSet,
    *,
    batch_size: int = 64,
    progress: ProgressCallback | None = None,
    cancel: CancelToken | None = None,
) -> dict[str, float]:
    """``t2v_R1 .. v2t_MnR`` plus ``comp_<type>``, ``comp_components``, ``comp_binding``, ``comp_all`` (percent).

    A type that no clip has is absent; the model is put in eval mode and restored afterwards.
    """
    was_training = model.training
    model.eval()
    try:
        report(progress, 0.0, "Evaluating: encoding clips")
        video = encode_videos(model, clips, batch_size, cancel)
        captions = [clips.caption(i) for i in range(len(clips))]
        text = encode_texts(model, captions)
        report(progress, 0.5, "Evaluating: retrieval")
        sim = model.similarity(text, video).float().cpu().numpy()
        metrics = retrieval_metrics(sim)
        positive = pair_scores(model, text, video).float().cpu()
        pairs: dict[str, tuple[list[int], list[str]]] = defaultdict(lambda: ([], []))
        for i in range(len(clips)):
            for kind, negs in clips.negatives(i).items():
                for neg in negs:
                    pairs[kind][0].append(i)
                    pairs[kind][1].append(neg)
        check_cancel(cancel)
        for kind, (idx, negs) in sorted(pairs.items()):
            neg_scores = pair_scores(model, encode_texts(model, negs), _take_video(video, idx)).float().cpu()
            pos = positive[idx]
            wins = (pos > neg_scores).float() + 0.5 * (pos == neg_scores).float()
            metrics[f"comp_{kind}"] = float(100.0 * wins.mean())
        for name, kinds in (("components", COMPONENTS), ("binding", BINDING_TYPES), ("all", tuple(pairs))):
            values = [metrics[f"comp_{k}"] for k in kinds if f"comp_{k}" in metrics]
            if values:
                metrics[f"comp_{name}"] = float(np.mean(values))
        report(progress, 1.0, "Evaluated")
        return metrics
    finally:
        model.train(was_training)


__all__ = ["BINDING_TYPES", "encode_texts", "encode_videos", "evaluate", "pair_scores"]
