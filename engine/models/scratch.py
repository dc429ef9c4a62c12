"""The tiny from-scratch towers (``scratch:tiny``): a per-frame CNN and a small text transformer.

Why they exist: no pretrained CLIP weights can be had on the machines this project is measured on, and a random
open_clip model learns nothing in minutes on a CPU. These towers train from nothing in seconds to minutes on
clips of coloured shapes (``engine.train.synthetic``, ``scenefind bench train``), so the whole loop (train,
index through the heads, search, evaluate) runs and is measured on a CPU. They are not a model for real footage.

The CNN has no global pooling (the feature map is flattened), so where a shape is survives into the embedding,
which is what "moves left" versus "moves right" needs. Two tokenizers:

* ``tokenizer="bpe"`` (``scratch:tiny``): open_clip's bundled byte-pair vocabulary (49,408 tokens, shipped
  inside open_clip_torch, no download), so any caption a user writes is tokenised;
* ``tokenizer="words"``: a fixed word list, ``<unk>`` for anything else; the synthetic benchmark's original
  configuration, kept so ``bench train`` reproduces its figures.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import torch
from torch import Tensor, nn

from engine.models.backbone import Backbone

SPECIALS = ("<pad>", "<sot>", "<eot>", "<unk>")
TOKENIZERS = ("words", "bpe")


class SyntheticBackbone(Backbone):
    """Tiny towers: a 3-layer strided CNN per frame (flattened, so position is kept) and a text transformer."""

    kind = "synthetic"

    def __init__(
        self,
        dim: int = 64,
        image_size: int = 32,
        width: int = 64,
        text_layers: int = 2,
        max_len: int = 16,
        vocab: Sequence[str] | None = None,
        tokenizer: str | None = None,
        token_std: float | None = None,
    ) -> None:
        super().__init__()
        tokenizer = tokenizer or ("words" if vocab is not None else "bpe")
        if tokenizer not in TOKENIZERS:
            raise ValueError(f"unknown tokenizer {tokenizer!r}; expected one of {TOKENIZERS}")
        if tokenizer == "words" and not vocab:
            raise ValueError("the word tokenizer needs its word list (vocab)")
        if image_size % 8 or image_size < 8:
            raise ValueError(f"image_size must be a positive multiple of 8, got {image_size}")
        self.dim, self.image_size, self.width, self.text_layers, self.max_len = (
            dim,
            image_size,
            width,
            text_layers,
            max_len,
        )
        self.tokenizer = tokenizer
        self.token_std = token_std
        self.vocab = tuple(vocab) if tokenizer == "words" and vocab is not None else ()
        self._index = {w: i for i, w in enumerate(self.vocab)}
        self._bpe: Any = None
        if tokenizer == "bpe":
            from open_clip.tokenizer import SimpleTokenizer

            self._bpe = SimpleTokenizer(context_length=max_len)
        side = image_size // 8
        self.cnn = nn.Sequential(
            nn.Conv2d(3, 16, 3, stride=2, padding=1),
            nn.GELU(),
            nn.Conv2d(16, 32, 3, stride=2, padding=1),
            nn.GELU(),
            nn.Conv2d(32, 32, 3, stride=2, padding=1),
            nn.GELU(),
            nn.Flatten(),
            nn.Linear(32 * side * side, dim),
        )
        self.token_embedding = nn.Embedding(self.vocab_size, width)
        self.positional = nn.Parameter(torch.randn(max_len, width) * 0.02)
        block = nn.TransformerEncoderLayer(
            width, max(1, width // 32), dim_feedforward=2 * width, dropout=0.0, batch_first=True, norm_first=True
        )
        self.text = nn.TransformerEncoder(block, text_layers, enable_nested_tensor=False)
        self.ln_final = nn.LayerNorm(width)
        self.text_projection = nn.Linear(width, dim, bias=False)
        self.logit_scale = nn.Parameter(torch.tensor(math.log(1 / 0.07)))
        if token_std is not None:  # drawn last, so every other weight is the one the default draws for a seed
            nn.init.normal_(self.token_embedding.weight, std=token_std)

    @property
    def arch(self) -> str:
        return "scenefind-synthetic"

    @property
    def vocab_size(self) -> int:
        return len(self._bpe.encoder) if self._bpe is not None else len(self.vocab)

    def config(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "arch": self.arch,
            "dim": self.dim,
            "image_size": self.image_size,
            "width": self.width,
            "text_layers": self.text_layers,
            "max_len": self.max_len,
            "vocab": list(self.vocab) if self.tokenizer == "words" else None,
            "tokenizer": self.tokenizer,
            "token_std": self.token_std,
        }

    def preprocess(self, frames: Tensor) -> Tensor:
        return (frames.permute(0, 3, 1, 2).float() / 255.0 - 0.5) / 0.25

    def encode_frames(self, pixels: Tensor) -> Tensor:
        return self.cnn(pixels)

    def tokenize(self, texts: Sequence[str]) -> tuple[Tensor, Tensor]:
        if self._bpe is not None:
            ids = self._bpe(list(texts))
            sot, eot = self._bpe.sot_token_id, self._bpe.eot_token_id
            return ids, (ids != 0) & (ids != sot) & (ids != eot)
        unk, ids = self._index["<unk>"], torch.zeros(len(texts), self.max_len, dtype=torch.long)
        for row, text in enumerate(texts):
            words = [self._index.get(w, unk) for w in text.lower().split()][: self.max_len - 2]
            seq = [self._index["<sot>"], *words, self._index["<eot>"]]
            ids[row, : len(seq)] = torch.tensor(seq)
        return ids, ids >= len(SPECIALS)

    def token_text(self, token_id: int) -> str:
        """The readable text of one vocabulary entry (a concept's label): a word, or a BPE piece."""
        if self._bpe is not None:
            return self._bpe.decode([int(token_id)]).strip()
        return self.vocab[int(token_id)]

    def encode_tokens(self, ids: Tensor) -> tuple[Tensor, Tensor]:
        length = max(1, int(ids.ne(0).sum(dim=1).max().item())) if ids.numel() else 1
        ids = ids[:, :length]
        x = self.token_embedding(ids) + self.positional[:length]
        x = self.ln_final(self.text(x, src_key_padding_mask=ids == 0))
        tokens = self.text_projection(x)
        return tokens[:, 0], tokens  # pooled at the start token (bidirectional attention)

    def token_table(self) -> tuple[Tensor, Tensor | None]:
        return self.token_embedding.weight, self.text_projection.weight.t()

    def vision_parameters(self) -> list[nn.Parameter]:
        return list(self.cnn.parameters())

    def text_parameters(self) -> list[nn.Parameter]:
        vision = {id(p) for p in self.vision_parameters()}
        return [p for p in self.parameters() if id(p) not in vision and p is not self.logit_scale]

    def logit_scale_parameter(self) -> nn.Parameter | None:
        return self.logit_scale


# ``scratch:NAME`` -> the towers' settings. The tiny one is the benchmark's architecture with a subword tokenizer;
# 32 tokens hold a long caption (the benchmark's captions need 14 words).
# Token embeddings start at std 0.02, the scale of the positional ones (as open_clip's text tower starts): at
# PyTorch's N(0, 1) the position signal was 50x weaker and the tower began as a bag of words, blind to what tells a
# caption from its twins ("from left to right" / "from right to left"; which colour goes with which shape).
SCRATCH_MODELS: dict[str, dict[str, Any]] = {
    "tiny": {
        "dim": 64,
        "image_size": 32,
        "width": 64,
        "text_layers": 2,
        "max_len": 32,
        "tokenizer": "bpe",
        "token_std": 0.02,
    },
}
# Each time a model's settings change the weights its seed draws, its revision goes up: the untrained model's
# vectors carry it in their id (:func:`scratch_model_id`), so a library indexed with the earlier weights is never
# searched with the new ones. Trained runs are unaffected (their ids come from their own weights).
SCRATCH_REVISIONS: dict[str, int] = {"tiny": 2}  # 2: token embeddings drawn at std 0.02


def scratch_model_id(name: str) -> str:
    """The model id of the untrained ``scratch:NAME``'s vectors: the name, plus ``-rN`` from revision 2 on."""
    size = name.removeprefix("scratch:")
    revision = SCRATCH_REVISIONS.get(size, 1)
    return f"scratch:{size}" if revision == 1 else f"scratch:{size}-r{revision}"


def scratch_backbone(name: str, *, seed: int = 0) -> SyntheticBackbone:
    """Fresh towers for ``scratch:NAME`` with weights drawn from ``seed`` (the global RNG is left untouched)."""
    size = name.removeprefix("scratch:")
    if size not in SCRATCH_MODELS:
        known = ", ".join(f"scratch:{k}" for k in SCRATCH_MODELS)
        raise ValueError(f"unknown from-scratch model {name!r}; known: {known}")
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return SyntheticBackbone(**SCRATCH_MODELS[size])


__all__ = [
    "SCRATCH_MODELS",
    "SCRATCH_REVISIONS",
    "SPECIALS",
    "TOKENIZERS",
    "SyntheticBackbone",
    "scratch_backbone",
    "scratch_model_id",
]
