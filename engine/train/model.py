"""The trainable video-text model: a backbone (open_clip or the synthetic tiny one), a temporal head, optional heads.

Why a wrapper rather than open_clip's CLIP alone: a video is a sequence of frames, and findings.md #1 showed that
a temporal transformer fed frame embeddings alone collapses to order-blind mean pooling ("moves left" = "moves
right"). :class:`TemporalHead` therefore feeds each token ``[f_t ; f_t − f_{t−1}]`` (frame plus motion). The
optional heads are those the objectives need: the S3MA concept bank, the importance estimator of the component
loss, the EMCL state (whose maintained ``M`` must survive into the checkpoint) and CE-CLIP's threshold vector.

Checkpoint layout (a folder): ``model.safetensors`` holds the backbone's own state dict (for open_clip, exactly
open_clip's keys, so ``engine.models.registry.create_encoder(folder)`` loads the towers for indexing) and
``config.json`` names the open_clip ``arch``; ``heads.safetensors`` holds everything else, described by the
``scenefind_model`` entry of ``config.json``. :func:`load_model` restores the whole model.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any, NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from engine.atomic import atomic_path
from engine.models.emcl import EMCLState, emcl_net_eval_scores
from engine.train.backbone import BACKBONES, Backbone, OpenClipBackbone, open_clip_backbone
from engine.train.heads import ConceptBank, ImportanceEstimator
from engine.train.losses import fine_grained_similarity
from engine.train.s3ma import multi_grained_similarity

HEADS_NAME = "heads.safetensors"
SCORE_MODES = ("cosine", "fine", "s3ma", "emcl")
CECLIP_TYPES = 4  # θ slots, in CE-CLIP's order: relation, attribute, entity, action (objective.CECLIP_TYPES)


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


class TemporalHead(nn.Module):
    """Frame embeddings (B, F, D) -> per-frame features (B, F, D) and a pooled video vector (B, D).

    Each token is ``[LN(f_t) ; LN(f_t − f_{t−1})]`` (``f_{−1} = f_0``; each half layer-normalised on its own, so a
    small frame-to-frame change weighs as much as the frame's content), projected to ``width``, plus a position
    embedding, through a small transformer, projected back to ``D`` and mean-pooled over valid frames. There is
    deliberately no residual ``f_t + ...`` (EMCL-Net's seqTransf has one): with it the pooled vector starts as, and
    in findings.md #1 stayed, the order-blind mean of the frames. The difference half carries motion, so a clip
    and its time-reversal differ (reversal flips the sign of every difference); ``motion=False`` is the
    order-blind baseline for comparison.
    """

    def __init__(
        self,
        dim: int,
        *,
        width: int | None = None,
        layers: int = 2,
        heads: int = 4,
        max_frames: int = 32,
        motion: bool = True,
    ) -> None:
        super().__init__()
        width = width or dim
        self.dim, self.width, self.layers, self.heads, self.max_frames, self.motion = (
            dim,
            width,
            layers,
            heads,
            max_frames,
            motion,
        )
        self.frame_norm = nn.LayerNorm(dim)
        self.motion_norm = nn.LayerNorm(dim) if motion else None
        self.inp = nn.Linear(2 * dim if motion else dim, width)
        self.pos = nn.Parameter(torch.randn(max_frames, width) * 0.02)
        block = nn.TransformerEncoderLayer(
            width, heads, dim_feedforward=4 * width, dropout=0.0, activation="gelu", batch_first=True, norm_first=True
        )
        self.encoder = nn.TransformerEncoder(block, layers, enable_nested_tensor=False)
        self.norm = nn.LayerNorm(width)
        self.out = nn.Linear(width, dim)

    def config(self) -> dict[str, Any]:
        return {
            "dim": self.dim,
            "width": self.width,
            "layers": self.layers,
            "heads": self.heads,
            "max_frames": self.max_frames,
            "motion": self.motion,
        }

    def forward(self, frames: Tensor, frame_mask: Tensor | None = None) -> tuple[Tensor, Tensor]:
        """(per-frame features (B, F, D), pooled (B, D)); padded frames are ignored by attention and pooling."""
        b, n, _ = frames.shape
        if n > self.max_frames:
            raise ValueError(f"{n} frames per clip, but the temporal head was built for at most {self.max_frames}")
        mask = torch.ones(b, n, dtype=torch.bool, device=frames.device) if frame_mask is None else frame_mask.bool()
        x = self.frame_norm(frames)
        if self.motion_norm is not None:
            prev = torch.cat([frames[:, :1], frames[:, :-1]], dim=1)
            diff = (frames - prev) * (mask & torch.cat([mask[:, :1], mask[:, :-1]], dim=1)).unsqueeze(-1)
            x = torch.cat([x, self.motion_norm(diff)], dim=-1)
        h = self.inp(x) + self.pos[:n]
        h = self.encoder(h, src_key_padding_mask=~mask)
        out = self.out(self.norm(h))
        weights = mask.to(out.dtype).unsqueeze(-1)
        pooled = (out * weights).sum(dim=1) / weights.sum(dim=1).clamp_min(1.0)
        return out, pooled


class VideoTextModel(nn.Module):
    """Backbone + temporal head (+ concept bank, importance estimator, EMCL state, CE-CLIP thresholds).

    ``score_mode`` says how a text and a video are compared at evaluation and search time: ``cosine`` (pooled
    vectors), ``fine`` (losses.md §1.4: ½(pooled cosine + two-stage word-frame similarity), the component
    objectives' training similarity), ``s3ma`` (the four-way dense+sparse similarity, needs the concept bank) or
    ``emcl`` (EMCL-Net's text-conditioned pooling and EM map, in blocks of 32, needs the EMCL state).
    """

    ceclip_theta: Tensor

    def __init__(
        self,
        backbone: Backbone,
        head: TemporalHead,
        *,
        concepts: ConceptBank | None = None,
        importance: ImportanceEstimator | None = None,
        emcl: EMCLState | None = None,
        score_mode: str = "cosine",
        n_frames: int = 8,
    ) -> None:
        super().__init__()
        if score_mode not in SCORE_MODES:
            raise ValueError(f"unknown score mode {score_mode!r}; expected one of {SCORE_MODES}")
        if score_mode == "s3ma" and concepts is None:
            raise ValueError("score mode 's3ma' needs a concept bank")
        if score_mode == "emcl" and emcl is None:
            raise ValueError("score mode 'emcl' needs an EMCL state")
        self.backbone, self.head = backbone, head
        self.concepts, self.importance, self.emcl = concepts, importance, emcl
        self.score_mode, self.n_frames = score_mode, n_frames
        shared = backbone.logit_scale_parameter()
        self.logit_scale = shared if shared is not None else nn.Parameter(torch.tensor(math.log(1 / 0.07)))
        self.register_buffer("ceclip_theta", torch.zeros(CECLIP_TYPES), persistent=True)

    @property
    def device(self) -> torch.device:
        return self.logit_scale.device

    def encode_video(self, frames: Tensor, frame_mask: Tensor | None = None) -> VideoOutput:
        """uint8 (B, F, H, W, 3) clips -> :class:`VideoOutput`."""
        b, n = frames.shape[:2]
        frames = frames.to(self.device)
        per_frame = self.backbone.encode_frames(self.backbone.preprocess(frames.reshape(b * n, *frames.shape[2:])))
        per_frame = per_frame.reshape(b, n, -1)
        mask = torch.ones(b, n, dtype=torch.bool, device=self.device) if frame_mask is None else frame_mask
        mask = mask.to(self.device).bool()
        out, pooled = self.head(per_frame, mask)
        return VideoOutput(pooled, out, mask)

    def encode_text(self, texts: Sequence[str]) -> TextOutput:
        ids, mask = self.backbone.tokenize(texts)
        ids, mask = ids.to(self.device), mask.to(self.device)
        pooled, tokens = self.backbone.encode_tokens(ids)
        length = tokens.shape[1]
        return TextOutput(pooled, tokens, mask[:, :length], ids[:, :length])

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
        frozen: list[nn.Parameter] = []
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
        heads = max(1, min(8, backbone.dim // 32))
        head = TemporalHead(
            backbone.dim, layers=temporal_layers, heads=heads, max_frames=max(32, n_frames), motion=motion
        )
        bank = None
        if concept_head:
            table, proj = backbone.token_table()
            bank = ConceptBank.from_token_embeddings(table, min(n_concepts, table.shape[0]), projection=proj, seed=seed)
        estimator = ImportanceEstimator(backbone.dim) if importance else None
        emcl = EMCLState(emcl_k, seed=seed) if emcl_k else None
    return VideoTextModel(
        backbone, head, concepts=bank, importance=estimator, emcl=emcl, score_mode=score_mode, n_frames=n_frames
    )


def is_model_folder(path: str | Path) -> bool:
    """A folder written by :meth:`VideoTextModel.save_checkpoint` (it has ``heads.safetensors``)."""
    p = Path(path).expanduser()
    return p.is_dir() and (p / HEADS_NAME).is_file()


def load_model(folder: str | Path) -> VideoTextModel:
    """Rebuild a whole :class:`VideoTextModel` (backbone, heads, EMCL ``M``, CE-CLIP θ) from a checkpoint folder."""
    from safetensors.torch import load_file

    from engine.models.checkpoint import find_weights, load_state_dict, read_config

    folder = Path(folder).expanduser()
    config = read_config(folder)
    spec = config.get("scenefind_model")
    if not isinstance(spec, dict) or not (folder / HEADS_NAME).is_file():
        raise ValueError(f"{folder}: not a Scenefind training checkpoint (no scenefind_model config or {HEADS_NAME})")
    kind = spec["backbone"].get("kind")
    if kind not in BACKBONES:
        raise ValueError(f"{folder / 'config.json'}: unknown backbone kind {kind!r}; expected one of {list(BACKBONES)}")
    backbone = BACKBONES[kind](spec["backbone"], load_state_dict(find_weights(folder)))
    h = spec["head"]
    head = TemporalHead(
        h["dim"], width=h["width"], layers=h["layers"], heads=h["heads"], max_frames=h["max_frames"], motion=h["motion"]
    )
    bank = None
    if spec.get("concepts"):
        c = spec["concepts"]
        bank = ConceptBank(torch.zeros(c["n_concepts"], backbone.dim), torch.zeros(c["vocab"], dtype=torch.long))
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
    heads = load_file(str(folder / HEADS_NAME), device="cpu")
    missing, unexpected = model.load_state_dict(heads, strict=False)
    missing = [k for k in missing if not k.startswith("backbone.")]
    if missing or unexpected:
        raise ValueError(
            f"{folder / HEADS_NAME}: does not fit the config (missing {missing[:5]}, unexpected {unexpected[:5]})"
        )
    return model


__all__ = [
    "BACKBONES",
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
