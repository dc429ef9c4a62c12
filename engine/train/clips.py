"""Training and evaluation clips behind one small interface, and the per-epoch batches drawn from them.

Why an interface: the trainer serves two sources that look nothing alike, captioned video files (decoded through
``engine.train.data.FrameCache``) and the synthetic benchmark's clips rendered in memory. Both give, per item, its
frames, its caption, its hard negatives by type and its paraphrase positives; the trainer and the evaluation see
nothing else.

Batches follow findings.md: a *fresh* negative per type is sampled each epoch from the several available
(#2: negatives fixed once per clip are memorised), and a negative that equals, after normalising, any positive
caption of its batch is flagged so CE-CLIP's cross-sample terms can drop it (#3: false negatives). The types are
the four components plus the relation swap; each objective picks the columns its paper uses
(``engine.train.objective``).
"""

from __future__ import annotations

import random
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np
import torch
from torch import Tensor

COMPONENTS = ("subject", "verb", "object", "attribute")  # = engine.train.negatives.COMPONENTS
RELATION = "relation"  # = engine.train.negatives.RELATION: two noun chunks swapped (CE-CLIP's swap negative)
NEGATIVE_TYPES = (*COMPONENTS, RELATION)  # the columns of Batch.negatives, in this order


class ClipSet(Protocol):
    """Indexed clips: frames (F, H, W, 3) uint8, a caption, negatives by type and paraphrase positives."""

    def __len__(self) -> int: ...

    def caption(self, i: int) -> str: ...

    def frames(self, i: int) -> np.ndarray: ...

    def negatives(self, i: int) -> dict[str, list[str]]: ...

    def positives(self, i: int) -> list[str]: ...


@dataclass
class MemoryClips:
    """Clips already in memory (the synthetic benchmark): ``frames`` is (N, F, H, W, 3) uint8."""

    clip_frames: np.ndarray
    captions: list[str]
    negative_sets: list[dict[str, list[str]]]
    positive_sets: list[list[str]] | None = None

    def __len__(self) -> int:
        return len(self.captions)

    def caption(self, i: int) -> str:
        return self.captions[i]

    def frames(self, i: int) -> np.ndarray:
        return self.clip_frames[i]

    def negatives(self, i: int) -> dict[str, list[str]]:
        return self.negative_sets[i]

    def positives(self, i: int) -> list[str]:
        return self.positive_sets[i] if self.positive_sets is not None else []

    def subset(self, indices: Sequence[int]) -> MemoryClips:
        idx = list(indices)
        return MemoryClips(
            self.clip_frames[idx],
            [self.captions[i] for i in idx],
            [self.negative_sets[i] for i in idx],
            None if self.positive_sets is None else [self.positive_sets[i] for i in idx],
        )


class FileClips:
    """Captioned video files (``engine.train.data.TrainItem``) with negatives keyed by caption.

    Frames come from a ``FrameCache`` (anything with ``frames(item, n_frames=, size=)``), so decoding happens
    once per clip across epochs.
    """

    def __init__(
        self, items: Sequence[Any], negatives: dict[str, Any], cache: Any, *, n_frames: int, size: int
    ) -> None:
        self.items, self._negatives, self.cache = list(items), negatives, cache
        self.n_frames, self.size = n_frames, size

    def __len__(self) -> int:
        return len(self.items)

    def caption(self, i: int) -> str:
        return str(self.items[i].caption)

    def frames(self, i: int) -> np.ndarray:
        return np.asarray(self.cache.frames(self.items[i], n_frames=self.n_frames, size=self.size))

    def negatives(self, i: int) -> dict[str, list[str]]:
        entry = self._negatives.get(self.caption(i))
        return {k: list(v) for k, v in entry.negatives.items()} if entry is not None else {}

    def positives(self, i: int) -> list[str]:
        entry = self._negatives.get(self.caption(i))
        return list(entry.positives) if entry is not None else []


_SPACE = re.compile(r"\s+")
_PUNCT = re.compile(r"[^\w\s]")


def normalise_caption(text: str) -> str:
    """Case-, punctuation- and whitespace-insensitive form used to spot duplicate captions."""
    return _SPACE.sub(" ", _PUNCT.sub(" ", text.lower())).strip()


@dataclass
class Batch:
    """One training batch: frames (B, F, H, W, 3) uint8, captions, one negative per type (``""`` = none).

    Columns follow :data:`NEGATIVE_TYPES`. ``neg_mask`` (B, C) marks real negatives (μ); ``drop`` (B, C) marks
    negatives equal to a positive caption of the batch (CE-CLIP's ITC/IMC drop them); ``positive``/``pos_mask``
    are an optional paraphrase per clip. ``entity_object`` (B,) says, per clip, whether CE-CLIP's single
    "entity" negative is this epoch's object negative rather than the subject one (drawn with the negatives).
    """

    frames: Tensor
    captions: list[str]
    negatives: list[list[str]]
    neg_mask: Tensor
    drop: Tensor
    positive: list[str]
    pos_mask: Tensor
    entity_object: Tensor
    # what this step encoded, (raw frame features (B, F, D), pooled video (B, D), pooled captions (B, D)), kept by
    # the objective so a term that replays the frames backwards (engine.train.time_reversal) encodes nothing twice
    encoded: tuple[Tensor, Tensor, Tensor] | None = None

    @property
    def size(self) -> int:
        return len(self.captions)

    def columns(self, types: Sequence[str]) -> tuple[list[list[str]], Tensor, Tensor]:
        """(negatives, mask, drop) restricted to ``types`` in that order; ``"entity"`` is CE-CLIP's noun column:
        the subject or the object negative per :attr:`entity_object`, falling back to whichever exists."""
        index = {t: k for k, t in enumerate(NEGATIVE_TYPES)}
        subject, obj = index["subject"], index["object"]
        mask, entity_object = self.neg_mask.tolist(), self.entity_object.tolist()  # one conversion, not per cell

        def entity(row: int) -> int:
            first, second = (obj, subject) if entity_object[row] else (subject, obj)
            return first if mask[row][first] or not mask[row][second] else second

        picks = [[entity(row) if t == "entity" else index[t] for t in types] for row in range(self.size)]
        take = torch.tensor(picks, dtype=torch.long).reshape(self.size, len(types))
        negs = [[self.negatives[row][k] for k in cols] for row, cols in enumerate(picks)]
        return negs, self.neg_mask.gather(1, take), self.drop.gather(1, take)


def epoch_order(n: int, seed: int, epoch: int) -> list[int]:
    """The shuffled item order of an epoch, a pure function of (seed, epoch) so a resumed run replays it."""
    order = list(range(n))
    random.Random(f"order:{seed}:{epoch}").shuffle(order)
    return order


def make_batch(
    clips: ClipSet, indices: Sequence[int], *, seed: int, epoch: int, context: Sequence[int] | None = None
) -> Batch:
    """Collate ``indices`` with a fresh negative per type for this epoch (deterministic per seed/epoch).

    ``context``: the clips whose captions count as the batch's positives when flagging ``drop`` (default
    ``indices``); under DDP a rank collates its share but flags against the whole global batch."""
    frames = torch.from_numpy(np.stack([clips.frames(i) for i in indices]))
    captions = [clips.caption(i) for i in indices]
    own = {normalise_caption(clips.caption(i)) for i in context} if context is not None else set()
    own |= {normalise_caption(c) for c in captions}
    negs, mask, drop, positive, pos_mask, entity_object = [], [], [], [], [], []
    for i, caption in zip(indices, captions, strict=True):
        rng = random.Random(f"neg:{seed}:{epoch}:{i}")
        available = clips.negatives(i)
        row, row_mask, row_drop = [], [], []
        for comp in NEGATIVE_TYPES:
            options = [n for n in available.get(comp, []) if normalise_caption(n) != normalise_caption(caption)]
            pick = rng.choice(options) if options else ""
            row.append(pick)
            row_mask.append(bool(options))
            row_drop.append(bool(options) and normalise_caption(pick) in own)
        negs.append(row)
        mask.append(row_mask)
        drop.append(row_drop)
        paraphrases = clips.positives(i)
        positive.append(rng.choice(paraphrases) if paraphrases else "")
        pos_mask.append(bool(paraphrases))
        entity_object.append(rng.random() < 0.5)
    return Batch(
        frames,
        captions,
        negs,
        torch.tensor(mask, dtype=torch.bool),
        torch.tensor(drop, dtype=torch.bool),
        positive,
        torch.tensor(pos_mask, dtype=torch.bool),
        torch.tensor(entity_object, dtype=torch.bool),
    )


__all__ = [
    "COMPONENTS",
    "NEGATIVE_TYPES",
    "RELATION",
    "Batch",
    "ClipSet",
    "FileClips",
    "MemoryClips",
    "epoch_order",
    "make_batch",
    "normalise_caption",
]
