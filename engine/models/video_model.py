"""A trained video model as an ``Encoder``: towers, temporal head, concept head and logit scale, all of them.

Two kinds of names reach it through the registry:

* a trained model's folder (``RUN/best``, ``RUN/checkpoints/epoch-3``, or ``RUN`` meaning ``RUN/best``), checked
  and identified by ``engine.models.run_checkpoint`` (id ``run:ARCH:HASH``);
* ``scratch:tiny``, the from-scratch architecture with seeded random weights (id ``scratch:tiny``), for running
  the loop before anything is trained, as ``test-tiny`` does for open_clip.

Frames are embedded as training embedded them: a centre square at the towers' input size through the backbone's
own preprocessing, so an indexed frame and a training frame of the same picture give the same features.
``encode_images`` returns those features L2-normalised (frame vectors stay image-tower vectors); ``temporal`` (the
``TemporalPooling`` protocol of ``engine.models.base``) hands indexing the raw features and the head, unless mean
pooling was forced, in which case the encoder has no ``temporal`` and its id ends in ``+mean``. ``concepts`` is
the concept head as search's ``ConceptBank``, each concept labelled with its most typical vocabulary word.

Loading is lazy and thread-safe, like the open_clip encoder; the folder is checked when the encoder is made.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from engine.jobs import ProgressCallback, report
from engine.models.base import (
    ConceptBank,
    EncoderIdentity,
    ModelUnavailable,
    check_frames,
    l2_normalise,
    pooled_model_id,
)
from engine.models.batching import Batcher
from engine.models.device import pick_device, uses_half
from engine.models.video_net import VideoModel, VideoOutput

SCRATCH_PREFIX = "scratch:"
SCRATCH_SEED = 0  # the untrained scratch models' weights, the same in every process
_POOL_BATCH = 256  # windows per temporal-head pass (each is n_frames tokens)
_TOP_K = 16  # losses.md §2's k_s, unless the run was trained with another


class VideoModelEncoder(EncoderIdentity):
    """A :class:`VideoModel` behind the ``Encoder`` protocol, plus ``temporal``, ``concepts`` and ``logit_scale``."""

    def __init__(
        self,
        model_id: str,
        loader: Callable[[], VideoModel],
        *,
        dim: int,
        image_size: int,
        n_frames: int,
        source: str,
        device: str = "auto",
        batch_size: int = 32,
        pooling: str = "auto",
        windows: str = "resample",
        top_k: int = _TOP_K,
        calibration_captions: Sequence[str] = (),
        score_mode: str = "cosine",
    ) -> None:
        self._model_id = pooled_model_id(model_id, pooling, windows)
        # What search judges relevance against (the run's own training captions); empty: the everyday ones.
        self.calibration_captions = tuple(calibration_captions)
        self.base_model_id = model_id
        # How the run compared captions with clips in training (engine.train.model.SCORE_MODES): "fine" adds
        # the word-frame score, which search then uses too (engine.search.word_scores).
        self.score_mode = score_mode
        self._loader, self._source = loader, source
        self._dim, self._image_size, self._n_frames = dim, image_size, n_frames
        self._device = pick_device(device)
        self._pooling, self._windows, self._top_k = pooling, windows, top_k
        self._towers = Batcher(self._model_id, self._device, batch_size, half=uses_half(self._device))
        self._head = Batcher(self._model_id, self._device, _POOL_BATCH, half=False)  # a small net: float32
        self._model: VideoModel | None = None
        self._bank: ConceptBank | None = None
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"VideoModelEncoder({self._model_id!r}, device={self._device!r}, loaded={self.loaded})"

    @property
    def loaded(self) -> bool:
        return self._model is not None

    @property
    def source(self) -> str:
        """Where the weights come from (the checkpoint folder, or the scratch name)."""
        return self._source

    def load(self, progress: ProgressCallback | None = None) -> None:
        self._get_or_load_model(progress)

    def torch_model(self) -> VideoModel:
        return self._get_or_load_model()

    def _get_or_load_model(self, progress: ProgressCallback | None = None) -> VideoModel:
        with self._lock:
            if self._model is None:
                report(progress, 1.0, f"Loading {self._model_id}")
                self._model = self._loader().eval().to(self._device)
            return self._model

    # -- the Encoder protocol ---------------------------------------------------------------------------

    def encode_images(self, frames: np.ndarray) -> np.ndarray:
        return l2_normalise(self.frame_features(frames))

    def encode_texts(self, texts: Sequence[str]) -> np.ndarray:
        texts = list(texts)
        model = self._get_or_load_model()

        def run(part: slice) -> torch.Tensor:
            ids, _ = model.backbone.tokenize(texts[part])
            return model.backbone.encode_tokens(ids.to(self._device))[0]

        return l2_normalise(self._towers.run(len(texts), run, self._dim))

    @property
    def word_scorer(self) -> VideoModelEncoder | None:
        """Itself when the run was trained with the word-frame score (losses.md §1.4), which search then re-scores
        text queries with (``engine.models.base.words_of``); None otherwise."""
        return self if self.score_mode == "fine" else None

    def encode_words(self, texts: Sequence[str]) -> list[np.ndarray]:
        """Per text, its content tokens' unit vectors (L_i, dim), the ``text.tokens[text.mask]`` of training."""
        model = self._get_or_load_model()
        out: list[np.ndarray] = []
        with torch.no_grad():
            for start in range(0, len(texts), 64):
                ids, mask = model.backbone.tokenize(list(texts[start : start + 64]))
                tokens = model.backbone.encode_tokens(ids.to(self._device))[1].float().cpu()
                mask = mask[:, : tokens.shape[1]]
                out += [l2_normalise(tokens[i][mask[i]].numpy()) for i in range(len(tokens))]
        return out

    # -- the temporal head (engine.models.base.TemporalPooling) -----------------------------------------

    @property
    def temporal(self) -> VideoModelEncoder | None:
        """Itself when segments and videos are pooled through the head; None when mean pooling is forced."""
        return self if self._pooling != "mean" else None

    @property
    def n_frames(self) -> int:
        return self._n_frames

    @property
    def windows(self) -> str:
        return self._windows

    def frame_features(self, frames: np.ndarray) -> np.ndarray:
        frames = check_frames(frames)
        model = self._get_or_load_model()
        return self._towers.run(len(frames), lambda part: model.frame_features(self._prepare(frames[part])), self._dim)

    def pool(self, features: np.ndarray, mask: np.ndarray) -> np.ndarray:
        return l2_normalise(self._through_head(features, mask, lambda out: out.pooled))

    def head_outputs(self, frames: np.ndarray, mask: np.ndarray) -> np.ndarray:
        b, n = np.shape(mask)
        flat = self._through_head(frames, mask, lambda out: out.frames.reshape(-1, self._dim))  # (b·n, dim)
        return l2_normalise(flat.reshape(b, n, self._dim))

    def _through_head(
        self, features: np.ndarray, mask: np.ndarray, take: Callable[[VideoOutput], torch.Tensor]
    ) -> np.ndarray:
        """Raw features (B, F, dim) with a (B, F) mask through the head in batches; ``take`` picks what of its
        output (pooled vectors, per-frame outputs) to keep, rows in order."""
        features = np.asarray(features, dtype=np.float32)
        mask = np.asarray(mask, dtype=bool)
        if features.ndim != 3 or features.shape[2] != self._dim or mask.shape != features.shape[:2]:
            raise ValueError(
                f"expected features (B, F, {self._dim}) and a (B, F) mask, got {features.shape} and {mask.shape}"
            )
        model = self._get_or_load_model()

        def run(part: slice) -> torch.Tensor:
            x = torch.from_numpy(np.ascontiguousarray(features[part])).to(self._device)
            return take(model.pool_frames(x, torch.from_numpy(mask[part]).to(self._device)))

        return self._head.run(len(features), run, self._dim)

    def _prepare(self, frames: np.ndarray) -> torch.Tensor:
        """uint8 frames -> the centre square at the towers' input size, uint8 (N, S, S, 3) on the device."""
        side = self._image_size
        h, w = frames.shape[1:3]
        x = torch.from_numpy(np.ascontiguousarray(frames)).to(self._device)
        if min(h, w) != side:
            scale = side / min(h, w)
            size = (max(side, round(h * scale)), max(side, round(w * scale)))
            chw = F.interpolate(x.permute(0, 3, 1, 2).float(), size=size, mode="bilinear", antialias=True)
            x = chw.round().clamp(0, 255).to(torch.uint8).permute(0, 2, 3, 1)
            h, w = size
        top, left = (h - side) // 2, (w - side) // 2
        return x[:, top : top + side, left : left + side]

    # -- the concept head and the logit scale -----------------------------------------------------------

    @property
    def concepts(self) -> ConceptBank | None:
        """The concept head as search's ``ConceptBank`` (None for a model without one); loads the model."""
        model = self._get_or_load_model()
        if model.concepts is None:
            return None
        with self._lock:
            if self._bank is None:
                self._bank = _concept_bank(model, self._top_k)
            return self._bank

    @property
    def logit_scale(self) -> float:
        """``exp(logit_scale)`` as trained: the temperature calibration and ``s·S`` use."""
        return float(self._get_or_load_model().logit_scale.detach().exp())


@torch.no_grad()
def _concept_bank(model: VideoModel, top_k: int) -> ConceptBank:
    """Concepts with a label each: the vocabulary entry of the concept's own k-means cluster (``kappa``) whose
    projected token embedding is closest to the trained concept, preferring whole words to sub-word pieces."""
    assert model.concepts is not None
    z = model.concepts.concepts.detach().float().cpu()
    zn = F.normalize(z, dim=-1)
    table, proj = model.backbone.token_table()
    tokens = table.detach().float().cpu()
    if proj is not None:
        tokens = tokens @ proj.detach().float().cpu()
    kappa = model.concepts.kappa.detach().cpu()
    fit = (F.normalize(tokens[: len(kappa)], dim=-1) * zn[kappa]).sum(-1)
    words: list[str] = []
    for k in range(zn.shape[0]):
        members = torch.nonzero(kappa == k).flatten().tolist()
        ranked = sorted(members, key=lambda i: -float(fit[i]))
        texts = [model.backbone.token_text(i) for i in ranked[:32]]
        wordy = [t for t in texts if t.isalpha()]
        words.append((wordy or texts or [f"concept {k}"])[0])
    return ConceptBank(
        zn.numpy().astype(np.float32),
        tuple(words),
        tau=0.05,
        top_k=min(top_k, zn.shape[0]),
        basis=z.numpy().astype(np.float32),
    )


def create_run_encoder(name: str, *, device: str, batch_size: int, pooling: str, windows: str) -> VideoModelEncoder:
    """The encoder of a trained model's folder (checked now; ``ModelUnavailable`` names what is wrong)."""
    from engine.models.run_checkpoint import load_video_model, read_run_checkpoint, run_folder_of

    folder = run_folder_of(name)
    if folder is None:
        raise ModelUnavailable(f"{name}: not a trained model's folder (no {name}/best, no heads.safetensors)")
    run = read_run_checkpoint(folder)
    training = run.config.get("training") if isinstance(run.config.get("training"), dict) else {}
    return VideoModelEncoder(
        run.model_id(),
        lambda: load_video_model(run),
        dim=run.dim,
        image_size=_image_size(run.spec["backbone"]),
        n_frames=run.n_frames,
        source=str(folder),
        device=device,
        batch_size=batch_size,
        pooling=pooling,
        windows=windows,
        top_k=int(training.get("s3ma_k", _TOP_K)),
        calibration_captions=_calibration(run.config, folder),
        score_mode=str(run.spec.get("score_mode", "cosine")),
    )


def _calibration(config: dict[str, Any], folder: Path) -> tuple[str, ...]:
    """The run's calibration captions from its ``config.json`` (none in runs trained before they were written)."""
    from engine.models.run_files import CALIBRATION_KEY

    captions = config.get(CALIBRATION_KEY, [])
    if not isinstance(captions, list) or not all(isinstance(c, str) for c in captions):
        raise ModelUnavailable(f"{folder / 'config.json'}: {CALIBRATION_KEY} must be a list of captions")
    return tuple(captions)


def _image_size(backbone: dict[str, Any]) -> int:
    if backbone["kind"] == "synthetic":
        return int(backbone.get("image_size", 32))
    import open_clip

    size = (open_clip.get_model_config(backbone["arch"]) or {}).get("vision_cfg", {}).get("image_size", 224)
    return int(size if isinstance(size, int) else max(size))


def scratch_model(name: str, *, seed: int = SCRATCH_SEED, n_frames: int = 8) -> VideoModel:
    """A fresh ``scratch:NAME`` model: towers and temporal head drawn from ``seed``, global RNG untouched."""
    from engine.models.heads import new_temporal_head
    from engine.models.scratch import scratch_backbone

    backbone = scratch_backbone(name, seed=seed)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        head = new_temporal_head(backbone.dim, n_frames=n_frames)
    return VideoModel(backbone, head, n_frames=n_frames)


def create_scratch_encoder(name: str, *, device: str, batch_size: int, pooling: str, windows: str) -> VideoModelEncoder:
    """``scratch:tiny`` with seeded random weights (untrained: the loop runs, the vectors mean nothing yet)."""
    from engine.models.scratch import SCRATCH_MODELS, scratch_model_id

    size = name.removeprefix(SCRATCH_PREFIX)
    if size not in SCRATCH_MODELS:
        known = ", ".join(f"{SCRATCH_PREFIX}{k}" for k in SCRATCH_MODELS)
        raise ModelUnavailable(f"unknown from-scratch model {name!r}; known: {known}")
    cfg = SCRATCH_MODELS[size]
    return VideoModelEncoder(
        scratch_model_id(name),
        lambda: scratch_model(name),
        dim=int(cfg["dim"]),
        image_size=int(cfg["image_size"]),
        n_frames=8,
        source=name,
        device=device,
        batch_size=batch_size,
        pooling=pooling,
        windows=windows,
    )


__all__ = [
    "SCRATCH_PREFIX",
    "SCRATCH_SEED",
    "VideoModelEncoder",
    "create_run_encoder",
    "create_scratch_encoder",
    "scratch_model",
]
