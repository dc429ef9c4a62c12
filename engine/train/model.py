"""The trainable video-text model: ``engine.models``' video model plus what only training needs.

Why a subclass rather than open_clip's CLIP alone: a video is a sequence of frames, and findings.md #1 showed that
a temporal transformer fed frame embeddings alone collapses to order-blind mean pooling ("moves left" = "moves
right"). The temporal head (``engine.models.heads.TemporalHead``) therefore feeds each token ``[f_t ; f_t − f_{t−1}]``
(frame plus motion). Towers, temporal head, concept head and logit scale are ``engine.models.video_net.VideoModel``,
which indexing and search run too; this module adds the training-only parts the objectives need: the importance
estimator of the component loss, the EMCL state (whose maintained ``M`` must survive into the checkpoint),
CE-CLIP's threshold vector, and the score modes evaluation compares pairs with.

Checkpoint layout (a folder): ``model.safetensors`` holds the backbone's own state dict (for open_clip, exactly
open_clip's keys) and ``config.json`` names the open_clip ``arch``; ``heads.safetensors`` holds everything else,
described by the ``scenefind_model`` entry of ``config.json``. ``engine.models.registry.create_encoder(folder)``
makes it a searchable model with every part (``engine.models.video_model``); :func:`load_model` restores the
whole training model.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

from engine.atomic import atomic_path
from engine.models.backbone import BACKBONES, Backbone, OpenClipBackbone, open_clip_backbone
from engine.models.emcl import EMCLState, emcl_net_eval_scores
from engine.models.heads import ConceptHead, TemporalHead, new_temporal_head
from engine.models.run_checkpoint import HEADS_NAME
from engine.models.video_net import TextOutput, VideoModel, VideoOutput
from engine.train.heads import ImportanceEstimator
from engine.train.losses import fine_grained_similarity
from engine.train.s3ma import multi_grained_similarity

SCORE_MODES = ("cosine", "fine", "s3ma", "emcl")
CECLIP_TYPES = 4  # θ slots, in CE-CLIP's order: relation, attribute, entity, action (objective.CECLIP_TYPES)


class VideoTextModel(VideoModel):
    """Backbone + temporal head (+ concept head, importance estimator, EMCL state, CE-CLIP thresholds).

    ``score_mode`` says how a text and a video are compared at evaluation and search time: ``cosine`` (pooled
    vectors), ``fine`` (losses.md §1.4: ½(pooled cosine + two-stage word-frame similarity), the component
    objectives' training similarity), ``s3ma`` (the four-way dense+sparse similarity, needs the concept bank) or
    ``emcl`` (EMCL-Net's text-conditioned pooling and EM map, in blocks of 32, needs the EMCL state).
    """

    ceclip_theta: Tensor
    importance: ImportanceEstimator | None
    emcl: EMCLState | None

    def __init__(
        self,
        backbone: Backbone,
        head: TemporalHead,
        *,
        concepts: ConceptHead | None = None,
        importance: ImportanceEstimator | None = None,
        emcl: EMCLState | None = None,
        score_mode: str = "cosine",
        n_frames: int = 8,
    ) -> None:
        if score_mode not in SCORE_MODES:
            raise ValueError(f"unknown score mode {score_mode!r}; expected one of {SCORE_MODES}")
        if score_mode == "s3ma" and concepts is None:
            raise ValueError("score mode 's3ma' needs a concept bank")
        if score_mode == "emcl" and emcl is None:
            raise ValueError("score mode 'emcl' needs an EMCL state")
        super().__init__(
            backbone, head, concepts=concepts, n_frames=n_frames, extras={"importance": importance, "emcl": emcl}
        )
        self.score_mode = score_mode
        self.register_buffer("ceclip_theta", torch.zeros(CECLIP_TYPES), persistent=True)

    def similarity(self, text: TextOutput, video: VideoOutput) -> Tensor:
        """(Bt, Bv) unscaled similarities under this model's ``score_mode``."""
        if self.score_mode == "s3ma":
            assert self.concepts is not None
            return multi_grained_similarity(
                text.pooled, video.pooled, video.frames, video.frame_mask, self.concepts.concepts
            )
        if self.score_mode == "emcl":
            assert self.emcl is not None
            e = self.emcl
            return emcl_net_eval_scores(
                text.pooled, video.frames, video.frame_mask, e.m, iters=e.iters, sigma=e.sigma, beta=e.beta
            )
        cosine = F.normalize(text.pooled, dim=-1) @ F.normalize(video.pooled, dim=-1).t()
        if self.score_mode == "fine":
            fine = fine_grained_similarity(
                text.tokens[:, None], text.mask[:, None], video.frames[None], video.frame_mask[None]
            )
            return 0.5 * (cosine + fine)
        return cosine

    def configure_trainable(
        self, *, freeze_vision: bool = False, freeze_text: bool = False, heads_only: bool = False
    ) -> None:
        """Freeze towers (``heads_only`` freezes both and the logit scale): only heads and unfrozen towers learn."""
        for p in self.parameters():
            p.requires_grad_(True)
        frozen: list[torch.nn.Parameter] = []
        if freeze_vision or heads_only:
            frozen += self.backbone.vision_parameters()
        if freeze_text or heads_only:
            frozen += self.backbone.text_parameters()
        if heads_only:
            frozen.append(self.logit_scale)
        for p in frozen:
            p.requires_grad_(False)

    def head_parameter_ids(self) -> set[int]:
        """Ids of parameters outside the backbone towers (they get the heads' learning rate)."""
        tower = {id(p) for p in self.backbone.parameters()}
        return {id(p) for p in self.parameters() if id(p) not in tower}

    def config(self) -> dict[str, Any]:
        cfg: dict[str, Any] = {
            "backbone": self.backbone.config(),
            "head": self.head.config(),
            "score_mode": self.score_mode,
            "n_frames": self.n_frames,
            "concepts": None,
            "importance": self.importance is not None,
            "emcl": None,
        }
        if self.concepts is not None:
            cfg["concepts"] = {"n_concepts": self.concepts.n_concepts, "vocab": int(self.concepts.kappa.shape[0])}
        if self.emcl is not None:
            e = self.emcl
            cfg["emcl"] = {
                "k": int(e.m.shape[0]),
                "iters": e.iters,
                "sigma": e.sigma,
                "beta": e.beta,
                "momentum": e.momentum,
            }
        return cfg

    def save_checkpoint(self, folder: str | Path, extra_config: dict[str, Any] | None = None) -> Path:
        """Write ``heads.safetensors``, ``model.safetensors`` and ``config.json`` (each atomically) into ``folder``.

        The heads go first and ``config.json`` last, so a folder whose config is new never points at stale
        weights. ``extra_config`` (training facts) is merged into ``config.json``.
        """
        from safetensors.torch import save_file

        from engine.models.checkpoint import save_checkpoint

        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        heads = {
            k: v.detach().cpu().contiguous().clone()
            for k, v in self.state_dict().items()
            if not k.startswith("backbone.")
        }
        with atomic_path(folder / HEADS_NAME) as tmp:
            save_file(heads, str(tmp), metadata={"format": "pt"})
        extra = {"scenefind_model": self.config(), **dict(extra_config or {})}
        return save_checkpoint(folder, self.backbone.weights_module(), self.backbone.arch, extra)


def build_model(
    backbone: Backbone,
    *,
    n_frames: int = 8,
    temporal_layers: int = 2,
    motion: bool = True,
    concept_head: bool = False,
    n_concepts: int = 512,
    importance: bool = False,
    emcl_k: int | None = None,
    score_mode: str = "cosine",
    seed: int = 0,
) -> VideoTextModel:
    """A fresh model around ``backbone`` with the heads asked for; the concept bank is k-means-initialised."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        head = new_temporal_head(backbone.dim, n_frames=n_frames, layers=temporal_layers, motion=motion)
        bank = None
        if concept_head:
            table, proj = backbone.token_table()
            bank = ConceptHead.from_token_embeddings(table, min(n_concepts, table.shape[0]), projection=proj, seed=seed)
        estimator = ImportanceEstimator(backbone.dim) if importance else None
        emcl = EMCLState(emcl_k, seed=seed) if emcl_k else None
    return VideoTextModel(
        backbone, head, concepts=bank, importance=estimator, emcl=emcl, score_mode=score_mode, n_frames=n_frames
    )


def is_model_folder(path: str | Path) -> bool:
    """A folder written by :meth:`VideoTextModel.save_checkpoint` (or a run folder whose ``best`` is one)."""
    from engine.models.run_checkpoint import run_folder_of

    return run_folder_of(path) is not None


def load_model(folder: str | Path) -> VideoTextModel:
    """Rebuild a whole :class:`VideoTextModel` (backbone, heads, EMCL ``M``, CE-CLIP θ) from a checkpoint folder.

    The folder is checked as search checks it (``engine.models.run_checkpoint``): ``ModelUnavailable`` names the
    missing, foreign or tampered file."""
    from engine.models.base import ModelUnavailable
    from engine.models.run_checkpoint import (
        build_backbone,
        build_concepts,
        build_head,
        load_heads,
        read_run_checkpoint,
        run_folder_of,
    )

    found = run_folder_of(folder)
    if found is None:
        raise ModelUnavailable(
            f"{folder}: not a Scenefind training checkpoint (no scenefind_model config or {HEADS_NAME})"
        )
    run = read_run_checkpoint(found)
    spec = run.spec
    backbone = build_backbone(run)
    with torch.random.fork_rng(devices=[]):  # fresh modules, overwritten by the saved tensors below
        head, bank = build_head(spec), build_concepts(spec)
        estimator = ImportanceEstimator(backbone.dim) if spec.get("importance") else None
        emcl = None
        if spec.get("emcl"):
            e = spec["emcl"]
            emcl = EMCLState(e["k"], iters=e["iters"], sigma=e["sigma"], beta=e["beta"], momentum=e["momentum"])
    model = VideoTextModel(
        backbone,
        head,
        concepts=bank,
        importance=estimator,
        emcl=emcl,
        score_mode=spec["score_mode"],
        n_frames=spec["n_frames"],
    )
    load_heads(model, run)
    return model


__all__ = [
    "BACKBONES",
    "HEADS_NAME",
    "Backbone",
    "OpenClipBackbone",
    "TemporalHead",
    "TextOutput",
    "VideoOutput",
    "VideoTextModel",
    "build_model",
    "is_model_folder",
    "load_model",
    "open_clip_backbone",
]
