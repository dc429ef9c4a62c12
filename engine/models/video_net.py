"""``VideoModel``: towers + temporal head (+ concept head) + logit scale, the part of a trained run search uses.

Why a module of its own: training wraps it (``engine.train.model.VideoTextModel`` adds the training-only heads,
score modes and checkpoint writing), and the trained-run encoder (``engine.models.video_model``) runs it at index
and search time. Both therefore compute a clip's vector with the same code: frames through the image tower,
*raw* (not re-normalised) frame features into the temporal head in time order, the head's masked mean out.
:meth:`VideoModel.frame_features` and :meth:`VideoModel.pool_frames` are the two halves of
:meth:`VideoModel.encode_video`, so an indexer that embeds frames once and pools many windows of them gets
exactly what training saw for a clip of those frames.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import NamedTuple

import torch
from torch import Tensor, nn

from engine.models.backbone import Backbone
from engine.models.heads import ConceptHead, TemporalHead


class TextOutput(NamedTuple):
    """Text features: pooled (B, D) raw, token features (B, L, D), content-token mask (B, L), token ids (B, L)."""

    pooled: Tensor
    tokens: Tensor
    mask: Tensor
    ids: Tensor


class VideoOutput(NamedTuple):
    """Video features: pooled (B, D) raw and per-frame features after the temporal head (B, F, D) with mask."""

    pooled: Tensor
    frames: Tensor
    frame_mask: Tensor


class VideoModel(nn.Module):
    """Backbone + temporal head (+ concept head); ``extras`` are further modules a subclass registers in order.

    ``extras`` exists so the training subclass keeps its parameters in the order checkpoints and optimisers have
    always seen (backbone, head, concepts, importance, EMCL, logit scale): the order of ``named_parameters``
    decides the order of floating-point sums in gradient clipping, and ``bench train`` must reproduce its figures.
    """

    def __init__(
        self,
        backbone: Backbone,
        head: TemporalHead,
        *,
        concepts: ConceptHead | None = None,
        n_frames: int = 8,
        extras: Mapping[str, nn.Module | None] | None = None,
    ) -> None:
        super().__init__()
        if head.dim != backbone.dim:
            raise ValueError(f"the temporal head is {head.dim}-d but the towers make {backbone.dim}-d vectors")
        self.backbone, self.head, self.concepts = backbone, head, concepts
        for name, module in (extras or {}).items():
            setattr(self, name, module)
        self.n_frames = n_frames
        shared = backbone.logit_scale_parameter()
        self.logit_scale = shared if shared is not None else nn.Parameter(torch.tensor(math.log(1 / 0.07)))

    @property
    def device(self) -> torch.device:
        return self.logit_scale.device

    def frame_features(self, frames: Tensor) -> Tensor:
        """uint8 (N, H, W, 3) frames (square, the towers' input size) -> raw image-tower features (N, D)."""
        return self.backbone.encode_frames(self.backbone.preprocess(frames.to(self.device)))

    def pool_frames(self, per_frame: Tensor, frame_mask: Tensor | None = None) -> VideoOutput:
        """Raw frame features (B, F, D) in time order -> :class:`VideoOutput` through the temporal head."""
        b, n = per_frame.shape[:2]
        mask = torch.ones(b, n, dtype=torch.bool, device=self.device) if frame_mask is None else frame_mask
        mask = mask.to(self.device).bool()
        out, pooled = self.head(per_frame.to(self.device), mask)
        return VideoOutput(pooled, out, mask)

    def clip_features(self, frames: Tensor) -> Tensor:
        """uint8 (B, F, H, W, 3) clips -> raw image-tower features (B, F, D), in time order."""
        b, n = frames.shape[:2]
        return self.frame_features(frames.reshape(b * n, *frames.shape[2:])).reshape(b, n, -1)

    def encode_video(self, frames: Tensor, frame_mask: Tensor | None = None) -> VideoOutput:
        """uint8 (B, F, H, W, 3) clips -> :class:`VideoOutput`."""
        return self.pool_frames(self.clip_features(frames), frame_mask)

    def encode_text(self, texts: Sequence[str]) -> TextOutput:
        ids, mask = self.backbone.tokenize(texts)
        ids, mask = ids.to(self.device), mask.to(self.device)
        pooled, tokens = self.backbone.encode_tokens(ids)
        length = tokens.shape[1]
        return TextOutput(pooled, tokens, mask[:, :length], ids[:, :length])


__all__ = ["TextOutput", "VideoModel", "VideoOutput"]
