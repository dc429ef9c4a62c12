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
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from engine.atomic import atomic_path
from engine.models.emcl import EMCLState, emcl_net_eval_scores
from engine.train.heads import ConceptBank, ImportanceEstimator
from engine.train.losses import fine_grained_similarity
from engine.train.s3ma import multi_grained_similarity

HEADS_NAME = "heads.safetensors"
SCORE_MODES = ("cosine", "fine", "s3ma", "emcl")
CECLIP_TYPES = 4  # relation/attribute/entity/action slots, here the four sentence components


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


class Backbone(nn.Module):
    """What the video-text model needs from the two towers; subclasses wrap open_clip or the synthetic model.

    ``kind`` and ``config()`` let :func:`load_model` rebuild the backbone from a checkpoint's ``config.json``.
    """

    kind = "abstract"
    dim: int
    image_size: int

    def preprocess(self, frames: Tensor) -> Tensor:
        """uint8 (N, H, W, 3) on the device -> normalised float (N, 3, S, S)."""
        raise NotImplementedError

    def encode_frames(self, pixels: Tensor) -> Tensor:
        """(N, 3, S, S) -> (N, D) raw frame embeddings."""
        raise NotImplementedError

    def tokenize(self, texts: Sequence[str]) -> tuple[Tensor, Tensor]:
        """Token ids (B, L) and the mask of content tokens (B, L) (no padding, no start/end tokens)."""
        raise NotImplementedError

    def encode_tokens(self, ids: Tensor) -> tuple[Tensor, Tensor]:
        """Pooled text embedding (B, D) and per-token embeddings (B, L, D), both raw."""
        raise NotImplementedError

    def token_table(self) -> tuple[Tensor, Tensor | None]:
        """The token-embedding table (V, W) and the projection (W, D) that maps it to the joint space."""
        raise NotImplementedError

    def vision_parameters(self) -> list[nn.Parameter]:
        raise NotImplementedError

    def text_parameters(self) -> list[nn.Parameter]:
        raise NotImplementedError

    def logit_scale_parameter(self) -> nn.Parameter | None:
        """The tower's own learned logit scale, shared with the model so a checkpoint keeps it; None if absent."""
        return None

    def config(self) -> dict[str, Any]:
        raise NotImplementedError

    def weights_module(self) -> nn.Module:
        """The module whose state dict goes into ``model.safetensors``."""
        return self

    @property
    def arch(self) -> str:
        raise NotImplementedError


class OpenClipBackbone(Backbone):
    """An open_clip CLIP model: frames through the image tower, captions through the text tower (tokens kept)."""

    kind = "open_clip"

    def __init__(self, model: nn.Module, arch: str, mean: Sequence[float], std: Sequence[float]) -> None:
        super().__init__()
        import open_clip

        self.model = model
        self._arch = arch
        self.mean, self.std = tuple(float(x) for x in mean), tuple(float(x) for x in std)
        self.register_buffer("_mean", torch.tensor(self.mean).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("_std", torch.tensor(self.std).view(1, 3, 1, 1), persistent=False)
        cfg = open_clip.get_model_config(arch) or {}
        size = cfg.get("vision_cfg", {}).get("image_size", 224)
        self.image_size = int(size if isinstance(size, int) else max(size))
        self.dim = int(cfg.get("embed_dim", 512))
        self._tokenizer = open_clip.get_tokenizer(arch)
        tok = self._tokenizer
        self._sot = int(getattr(tok, "sot_token_id", 49406))
        self._eot = int(getattr(tok, "eot_token_id", 49407))

    @property
    def arch(self) -> str:
        return self._arch

    def preprocess(self, frames: Tensor) -> Tensor:
        x = frames.permute(0, 3, 1, 2).float() / 255.0
        side = self.image_size
        if tuple(x.shape[-2:]) != (side, side):
            x = F.interpolate(x, size=(side, side), mode="bilinear", antialias=True, align_corners=False)
        return (x - self._mean) / self._std

    def encode_frames(self, pixels: Tensor) -> Tensor:
        return self.model.encode_image(pixels)

    def tokenize(self, texts: Sequence[str]) -> tuple[Tensor, Tensor]:
        ids = self._tokenizer(list(texts))
        mask = (ids != 0) & (ids != self._sot) & (ids != self._eot)
        return ids, mask

    def encode_tokens(self, ids: Tensor) -> tuple[Tensor, Tensor]:
        m = self.model
        if not hasattr(m, "token_embedding"):  # CustomTextCLIP (e.g. SigLIP): pooled only, one "token"
            pooled = m.encode_text(ids)
            return pooled, pooled.unsqueeze(1).expand(-1, ids.shape[1], -1)
        length = int(ids.ne(0).sum(dim=1).max().item()) if ids.numel() else 1
        ids = ids[:, : max(1, length)]  # causal attention: trailing padding never changes earlier tokens
        cast = m.transformer.get_cast_dtype()
        x = m.token_embedding(ids).to(cast) + m.positional_embedding[: ids.shape[1]].to(cast)
        mask = m.attn_mask[: ids.shape[1], : ids.shape[1]] if m.attn_mask is not None else None
        x = m.ln_final(m.transformer(x, attn_mask=mask))
        proj = m.text_projection
        tokens = proj(x) if isinstance(proj, nn.Linear) else (x @ proj if proj is not None else x)
        pooled = tokens[torch.arange(ids.shape[0], device=ids.device), ids.argmax(dim=-1)]  # EOT = largest id
        return pooled, tokens

    def token_table(self) -> tuple[Tensor, Tensor | None]:
        proj = self.model.text_projection
        weight = proj.weight.t() if isinstance(proj, nn.Linear) else proj
        return self.model.token_embedding.weight, weight

    def vision_parameters(self) -> list[nn.Parameter]:
        return list(self.model.visual.parameters())

    def text_parameters(self) -> list[nn.Parameter]:
        vision = {id(p) for p in self.vision_parameters()}
        scale = {id(p) for p in (self.logit_scale_parameter(),) if p is not None}
        return [p for p in self.model.parameters() if id(p) not in vision and id(p) not in scale]

    def logit_scale_parameter(self) -> nn.Parameter | None:
        return getattr(self.model, "logit_scale", None)

    def config(self) -> dict[str, Any]:
        return {"kind": self.kind, "arch": self._arch, "mean": list(self.mean), "std": list(self.std)}

    def weights_module(self) -> nn.Module:
        return self.model


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


BackboneFactory = Callable[[dict[str, Any], dict[str, Tensor] | None], Backbone]


def _open_clip_backbone(cfg: dict[str, Any], state: dict[str, Tensor] | None) -> Backbone:
    import open_clip

    from engine.models.registry import list_architectures

    if cfg["arch"] not in list_architectures():
        raise ValueError(f"unknown open_clip architecture {cfg['arch']!r} in the checkpoint config")
    model = open_clip.create_model(cfg["arch"], pretrained=None, device="cpu")
    if state is not None:
        model.load_state_dict(state, strict=True)
    return OpenClipBackbone(model, cfg["arch"], cfg["mean"], cfg["std"])


def _synthetic_backbone(cfg: dict[str, Any], state: dict[str, Tensor] | None) -> Backbone:
    from engine.train.synthetic import SyntheticBackbone

    backbone = SyntheticBackbone(**{k: v for k, v in cfg.items() if k not in ("kind", "arch")})
    if state is not None:
        backbone.load_state_dict(state, strict=True)
    return backbone


BACKBONES: dict[str, BackboneFactory] = {"open_clip": _open_clip_backbone, "synthetic": _synthetic_backbone}


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


def open_clip_backbone(name: str) -> Backbone:
    """An open_clip backbone from a registry name (pretrained pair, ``test-tiny``, ``random:ARCH``, checkpoint)."""
    import open_clip

    from engine.models.registry import create_encoder

    encoder = create_encoder(name, device="cpu")
    torch_model = getattr(encoder, "torch_model", None)
    if torch_model is None:
        raise ValueError(f"{name!r} is not an open_clip model and cannot be fine-tuned")
    model = torch_model()
    arch = encoder.arch  # type: ignore[attr-defined]
    cfg = open_clip.get_model_preprocess_cfg(model)
    return OpenClipBackbone(
        model, arch, cfg.get("mean", open_clip.OPENAI_DATASET_MEAN), cfg.get("std", open_clip.OPENAI_DATASET_STD)
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
