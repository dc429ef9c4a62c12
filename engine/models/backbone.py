"""The towers of a video model: open_clip's CLIP, or the tiny from-scratch ones (``engine.models.scratch``).

Why an interface: the trainer, the objectives, the checkpoint format and the trained-run encoder
(``engine.models.video_model``) must not care which towers they hold.
A backbone encodes frames and tokenised captions (keeping per-token features for the losses that need them),
names its trainable parameter groups, and describes itself in a small config so :data:`BACKBONES` can rebuild
it from a checkpoint (``kind`` picks the factory).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn


class Backbone(nn.Module):
    """What the video-text model needs from the two towers; subclasses wrap open_clip or the synthetic model.

    ``kind`` and ``config()`` let :data:`BACKBONES` rebuild the backbone from a checkpoint's ``config.json``.
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

    def token_text(self, token_id: int) -> str:
        """The readable text of one vocabulary entry (labels a concept of the concept head)."""
        return str(token_id)

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

    def token_text(self, token_id: int) -> str:
        decode = getattr(self._tokenizer, "decode", None)
        return decode([int(token_id)]).strip() if callable(decode) else str(token_id)

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


BackboneFactory = Callable[[dict[str, Any], dict[str, Tensor] | None], Backbone]


def _open_clip_backbone(cfg: dict[str, Any], state: dict[str, Tensor] | None) -> Backbone:
    import open_clip

    from engine.models.registry import list_architectures

    if cfg["arch"] not in list_architectures():
        raise ValueError(f"unknown open_clip architecture {cfg['arch']!r} in the checkpoint config")
    model = open_clip.create_model(
        cfg["arch"], pretrained=None, device="cpu", force_quick_gelu=bool(cfg.get("quick_gelu", False))
    )
    if state is not None:
        model.load_state_dict(state, strict=True)
    return OpenClipBackbone(model, cfg["arch"], cfg["mean"], cfg["std"])


def _synthetic_backbone(cfg: dict[str, Any], state: dict[str, Tensor] | None) -> Backbone:
    from engine.models.scratch import SyntheticBackbone

    backbone = SyntheticBackbone(**{k: v for k, v in cfg.items() if k not in ("kind", "arch")})
    if state is not None:
        backbone.load_state_dict(state, strict=True)
    return backbone


BACKBONES: dict[str, BackboneFactory] = {"open_clip": _open_clip_backbone, "synthetic": _synthetic_backbone}


__all__ = ["BACKBONES", "Backbone", "BackboneFactory", "OpenClipBackbone", "open_clip_backbone"]
