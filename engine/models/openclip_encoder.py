"""The open_clip encoder (after labelme's ``_osam_session.py`` and rclip's ``model.py``).

Constructing one is cheap: the id, width and input size come from open_clip's architecture config, and
nothing heavy happens until the first ``encode_*`` call (or an explicit ``load(progress)``) runs
``_get_or_load_model()``. Weights come from a loader: a pretrained tag fetched into the Scenefind cache, a
local checkpoint, or none (random weights under a fixed seed, for tests and benchmarks).

Pretrained weights are looked up in the cache first, so an offline machine with cached weights never touches
the network. Otherwise a quick connection probe runs before the download: without it Hugging Face's client
retries for about 46 s per model before giving up when there is no route to the hub.

Frames are preprocessed in batched torch on the model's device: the decoder already resized the short side
to ``image_size``, so this only centre-crops and normalises (and resizes, bicubic with antialias, frames
that arrive at another size). On CUDA the model runs under float16 autocast; the batch size halves on
out-of-memory and stays halved (``engine.models.batching``).
"""

from __future__ import annotations

import contextlib
import hashlib
import inspect
import logging
import os
import socket
import threading
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import numpy as np
import open_clip
import torch
import torch.nn.functional as F

from engine.jobs import JobCancelled, ProgressCallback, report
from engine.models.base import EncoderIdentity, ModelUnavailable, WeightsUnavailable, check_frames, l2_normalise
from engine.models.batching import Batcher
from engine.models.cpu_tower import Embedder, bfloat16_tower, int8_tower
from engine.models.device import cpu_image_precision, pick_device, uses_half

WeightsLoader = Callable[[ProgressCallback | None], dict[str, torch.Tensor]]
_PROBE_TIMEOUT_S = 5.0


def offline_message(label: str, cache_dir: Path, arch: str, reason: str = "no connection?") -> str:
    """What to do without the weights: where they are cached, how to name a local file, and the demo model that
    needs none (the app offers the same three)."""
    return (
        f"Could not download the weights for {label} ({reason}). Download them on a machine with "
        f"internet (they are cached under {cache_dir}), or supply a local checkpoint: "
        f"--model {arch}@/path/to/model.safetensors or a folder with config.json + model.safetensors; "
        "or try the colour demo, which needs no download: --model fake:color"
    )


def _hub_files(arch: str, tag: str) -> tuple[str, list[str]]:
    """Hugging Face repo and candidate file names (safetensors first, as open_clip prefers)."""
    repo_id, filename = os.path.split(open_clip.get_pretrained_cfg(arch, tag).get("hf_hub", ""))
    filename = filename or "open_clip_pytorch_model.bin"
    safe = "open_clip_model.safetensors" if filename == "open_clip_pytorch_model.bin" else None
    if safe is None and filename.endswith((".bin", ".pth")):
        safe = filename[:-4] + ".safetensors"
    return repo_id, [name for name in (safe, filename) if name]


def cached_pretrained(arch: str, tag: str, cache_dir: Path) -> Path | None:
    """The cached weights file of a pretrained pair, or None; looks at the disk only."""
    from huggingface_hub import try_to_load_from_cache

    repo_id, names = _hub_files(arch, tag)
    if not repo_id:
        url = open_clip.get_pretrained_cfg(arch, tag).get("url", "")
        target = cache_dir / os.path.basename(url)
        return target if url and target.is_file() else None
    for name in names:
        found = try_to_load_from_cache(repo_id, name, cache_dir=str(cache_dir))
        if isinstance(found, str):
            return Path(found)
    return None


def require_network(label: str, cache_dir: Path, arch: str) -> None:
    """Fail in milliseconds, not minutes, when the hub cannot be reached (or offline mode is on)."""
    from huggingface_hub import constants

    flag = os.environ.get("HF_HUB_OFFLINE", "").strip().upper()
    if constants.HF_HUB_OFFLINE or flag in {"1", "ON", "YES", "TRUE"}:
        raise WeightsUnavailable(
            offline_message(label, cache_dir, arch, "HF_HUB_OFFLINE is set"), model=label, reason="HF_HUB_OFFLINE"
        )
    url = urlparse(constants.ENDPOINT)
    if url.scheme != "https":  # HF_ENDPOINT pointing at plain HTTP: weights could be swapped on the way
        raise ModelUnavailable(f"refusing to download {label} from {constants.ENDPOINT}: only HTTPS is allowed")
    if any(os.environ.get(v) for v in ("HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy")):
        return  # a proxy may reach what a direct connection cannot; let the client try
    host, port = url.hostname or "huggingface.co", url.port or 443
    try:
        socket.create_connection((host, port), timeout=_PROBE_TIMEOUT_S).close()
    except OSError as exc:
        reason = f"{host}: {exc}"
        raise WeightsUnavailable(offline_message(label, cache_dir, arch, reason), model=label, reason=reason) from exc


def _progress_tqdm(progress: ProgressCallback, label: str) -> type:
    """A silent tqdm class that forwards download progress to a ProgressCallback."""
    from tqdm import tqdm

    class _Bridge(tqdm):  # type: ignore[misc, type-arg]
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            kwargs.pop("name", None)
            self._seen = int(kwargs.get("initial") or 0)
            self._expected = int(kwargs.get("total") or 0)
            super().__init__(*args, **{**kwargs, "disable": True})

        def update(self, n: float | None = 1) -> bool | None:
            self._seen += int(n or 0)
            if self._expected:
                mb = f"{self._seen / 1e6:.0f} of {self._expected / 1e6:.0f} MB"
                report(progress, self._seen / self._expected, f"Downloading {label}: {mb}")
            return None

    return _Bridge


def verify_hub_download(path: Path) -> Path:
    """Check a freshly downloaded Hugging Face file against the SHA-256 it is stored under.

    The hub cache keeps large (LFS) files as ``blobs/<sha256 of the content>``; huggingface_hub checks only
    their size. A mismatch (a corrupted or tampered download) deletes the file and raises ``ModelUnavailable``.
    Files stored under a git hash (small, non-LFS ones) carry no SHA-256 and pass unchecked.
    """
    blob = path.resolve()
    if blob.parent.name != "blobs" or len(blob.name) != 64 or not all(c in "0123456789abcdef" for c in blob.name):
        return path
    digest = hashlib.sha256()
    with open(blob, "rb") as fh:
        while chunk := fh.read(1 << 20):
            digest.update(chunk)
    if digest.hexdigest() != blob.name:
        blob.unlink(missing_ok=True)
        path.unlink(missing_ok=True)
        raise ModelUnavailable(
            f"{path}: the downloaded weights do not match their SHA-256 ({digest.hexdigest()}, expected "
            f"{blob.name}); they were deleted, try again"
        )
    return path


def fetch_pretrained(arch: str, tag: str, cache_dir: Path, progress: ProgressCallback | None = None) -> Path:
    """Path of the weights of ``arch/tag``: from the cache, else downloaded into it (with progress)."""
    from huggingface_hub import errors, hf_hub_download

    label = f"{arch}/{tag}"
    cached = cached_pretrained(arch, tag, cache_dir)
    if cached is not None:
        return cached
    require_network(label, cache_dir, arch)
    repo_id, names = _hub_files(arch, tag)
    try:
        if not repo_id:  # URL-only entry (none in open_clip 3.x, kept for older tables); open_clip checks the
            url = open_clip.get_pretrained_cfg(arch, tag)["url"]  # SHA-256 that such URLs carry
            if urlparse(url).scheme != "https":
                raise ModelUnavailable(f"refusing to download {label} from {url}: only HTTPS is allowed")
            return Path(open_clip.download_pretrained_from_url(url, cache_dir=str(cache_dir)))
        extra = {}
        if progress is not None and "tqdm_class" in inspect.signature(hf_hub_download).parameters:
            extra["tqdm_class"] = _progress_tqdm(progress, label)
        for name in names:
            try:
                return verify_hub_download(Path(hf_hub_download(repo_id, name, cache_dir=str(cache_dir), **extra)))
            except errors.EntryNotFoundError as exc:
                if isinstance(exc, errors.LocalEntryNotFoundError) or name == names[-1]:
                    raise  # the hub is unreachable, or not even the last candidate exists
    except (ModelUnavailable, JobCancelled):  # cancelled: a progress callback raised it between chunks
        raise
    except Exception as exc:  # connection, HTTP and disk errors all mean "no weights"
        raise WeightsUnavailable(
            offline_message(label, cache_dir, arch, str(exc)), model=label, reason=str(exc)
        ) from exc
    raise WeightsUnavailable(offline_message(label, cache_dir, arch), model=label)  # unreachable; for type checkers


def _fit_state_dict(model: torch.nn.Module, state: dict[str, torch.Tensor], source: str, arch: str) -> None:
    """Load a state dict the way open_clip's ``load_checkpoint`` massages it, but with our error message."""
    from open_clip.convert import convert_state_dict
    from open_clip.model import convert_to_custom_text_state_dict, resize_pos_embed, resize_text_pos_embed

    try:
        state = convert_state_dict(model, state)
        if "positional_embedding" in state and not hasattr(model, "positional_embedding"):
            state = convert_to_custom_text_state_dict(state)
        for key in ("logit_scale", "logit_bias"):
            param = getattr(model, key, None)
            if key in state and param is not None and param.ndim != state[key].ndim:
                state[key] = state[key].reshape(param.shape)
        if "logit_bias" not in state and getattr(model, "logit_bias", None) is not None and "logit_scale" in state:
            state["logit_bias"] = torch.zeros_like(state["logit_scale"])
        resize_pos_embed(state, model)
        resize_text_pos_embed(state, model)
        model.load_state_dict(state, strict=True)
    except (RuntimeError, AssertionError, KeyError, ValueError) as exc:  # open_clip asserts on wrong widths
        detail = str(exc).replace("\n", " ") or type(exc).__name__
        raise ModelUnavailable(f"{source}: the weights do not fit architecture {arch}: {detail[:400]}") from exc


class _HideRandomInit(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return "initialized randomly" not in record.getMessage()


@contextlib.contextmanager
def quiet_random_init() -> Iterator[None]:
    """Hide open_clip's "initialized randomly" warning: weights are loaded right after, or random on purpose."""
    root, quiet = logging.getLogger(), _HideRandomInit()
    root.addFilter(quiet)
    try:
        yield
    finally:
        root.removeFilter(quiet)


class OpenClipEncoder(EncoderIdentity):
    """An open_clip CLIP model behind the ``Encoder`` protocol, loaded on first use."""

    def __init__(
        self,
        arch: str,
        model_id: str,
        *,
        weights: WeightsLoader | None = None,
        source: str = "",
        device: str = "auto",
        batch_size: int = 32,
        mean: Sequence[float] | None = None,
        std: Sequence[float] | None = None,
        quick_gelu: bool = False,
        seed: int = 0,
    ) -> None:
        config = open_clip.get_model_config(arch)
        if config is None:
            raise ModelUnavailable(f"{source or model_id}: unknown open_clip architecture {arch!r}")
        size = config["vision_cfg"].get("image_size", 224)
        self._image_size = int(size if isinstance(size, int) else max(size))
        self._dim = int(config["embed_dim"])
        self._arch, self._model_id, self._source = arch, model_id, source or model_id
        self._weights, self._seed, self._quick_gelu = weights, seed, quick_gelu
        self._device = pick_device(device)
        self._batcher = Batcher(model_id, self._device, batch_size, half=uses_half(self._device))
        self._cpu_precision = cpu_image_precision(self._device)  # "float32" on a GPU: the batcher's float16 rules
        self._fast_visual: Embedder | None = None  # a bfloat16 or int8 copy of the image tower (cpu_tower)
        self._mean = tuple(mean or open_clip.OPENAI_DATASET_MEAN)
        self._std = tuple(std or open_clip.OPENAI_DATASET_STD)
        self._model: torch.nn.Module | None = None
        self._text: torch.nn.Module | None = None  # the text tower alone, while the full model is not needed
        self._tokenizer: Callable[..., torch.Tensor] | None = None
        self._norm: tuple[torch.Tensor, torch.Tensor] | None = None
        self._lock = threading.Lock()

    @property
    def arch(self) -> str:
        return self._arch

    @property
    def image_precision(self) -> str:
        """What images are embedded in now: "float16" on CUDA; on a CPU "bfloat16" (AMX) or "int8" (asked for)
        until :meth:`torch_model` hands the model out, else "float32"; benchmarks print it beside their figures."""
        if self._batcher.half:
            return "float16"
        return self._cpu_precision

    @property
    def loaded(self) -> bool:
        """Whether the weights are in memory (construction never loads them)."""
        return self._model is not None

    def __repr__(self) -> str:
        return f"OpenClipEncoder({self._model_id!r}, device={self._device!r}, loaded={self.loaded})"

    def load(self, progress: ProgressCallback | None = None) -> None:
        """Load now (downloading with progress if needed) instead of on the first encode call."""
        self._get_or_load_model(progress)

    def torch_model(self) -> torch.nn.Module:
        """The underlying open_clip model, loaded if needed (for the trainer and ``save_checkpoint``).

        Whoever asks may change its weights, so from here on images are embedded by it alone, in float32: a
        bfloat16 copy taken earlier could be stale."""
        model = self._get_or_load_model()
        with self._lock:
            self._cpu_precision, self._fast_visual = "float32", None
        return model

    def _get_or_load_model(self, progress: ProgressCallback | None = None) -> torch.nn.Module:
        with self._lock:
            if self._model is None:
                state = self._weights(progress) if self._weights is not None else None
                report(progress, 1.0, f"Loading {self._model_id}")
                with torch.random.fork_rng(devices=[]), quiet_random_init():
                    torch.manual_seed(self._seed)  # random weights are the same in every process
                    model = open_clip.create_model(self._arch, force_quick_gelu=self._quick_gelu, device="cpu")
                if state is not None:
                    _fit_state_dict(model, state, self._source, self._arch)
                preprocess = {**open_clip.get_model_preprocess_cfg(model), "mean": self._mean, "std": self._std}
                open_clip.set_model_preprocess_cfg(model, preprocess)  # so save_checkpoint records the truth
                self._load_tokenizer()
                mean = torch.tensor(self._mean, device=self._device).view(1, 3, 1, 1)
                std = torch.tensor(self._std, device=self._device).view(1, 3, 1, 1)
                self._norm = (mean, std)
                self._model = model.eval().to(self._device)
                self._text = None
            return self._model

    def _load_tokenizer(self) -> None:
        if self._tokenizer is None:
            try:
                self._tokenizer = open_clip.get_tokenizer(self._arch)
            except Exception as exc:  # Hugging Face tokenizers are downloaded too
                raise ModelUnavailable(f"{self._source}: could not load the tokenizer ({exc})") from exc

    def _text_forward(self) -> Callable[[torch.Tensor], torch.Tensor]:
        """What turns tokens into text features: the full model's ``encode_text`` once it is loaded; before that,
        for weights read from a file, the text tower alone (``engine.models.text_tower``), so a search builds
        and loads no image tower. Random-weight models build whole: their seeded weights are the full model's."""
        with self._lock:
            if self._model is None and self._text is None and self._weights is not None:
                from engine.models.text_tower import build_text_tower

                state = self._weights(None)
                self._text = build_text_tower(self._arch, state, quick_gelu=self._quick_gelu)
                if self._text is not None:
                    self._text = self._text.to(self._device)
                    self._load_tokenizer()
            if self._model is None and self._text is not None:
                return self._text
        return self._get_or_load_model().encode_text

    def _preprocess(self, frames: np.ndarray) -> torch.Tensor:
        """uint8 (N, H, W, 3) -> normalised float (N, 3, S, S) on the device: resize if needed, centre-crop."""
        assert self._norm is not None
        side = self._image_size
        x = torch.from_numpy(np.ascontiguousarray(frames)).to(self._device).permute(0, 3, 1, 2).float() / 255.0
        height, width = x.shape[-2:]
        if min(height, width) != side:
            scale = side / min(height, width)
            size = (max(side, round(height * scale)), max(side, round(width * scale)))
            x = F.interpolate(x, size=size, mode="bicubic", antialias=True, align_corners=False).clamp_(0, 1)
            height, width = size
        top, left = round((height - side) / 2), round((width - side) / 2)
        x = x[:, :, top : top + side, left : left + side]
        return (x - self._norm[0]) / self._norm[1]

    @property
    def batch_size(self) -> int:
        """Items per forward pass now: the settings' value, halved for good after an out-of-memory."""
        return self._batcher.batch_size

    def _batched(self, count: int, run: Callable[[slice], torch.Tensor]) -> np.ndarray:
        """Run ``run`` over slices of at most ``batch_size``; L2-normalised float32 out."""
        return l2_normalise(self._batcher.run(count, run, self._dim))

    def encode_images(self, frames: np.ndarray) -> np.ndarray:
        frames = check_frames(frames)
        embed = self._image_embedder()
        return self._batched(len(frames), lambda part: embed(self._preprocess(frames[part])))

    def _image_embedder(self) -> Callable[[torch.Tensor], torch.Tensor]:
        """What embeds preprocessed images: the model's ``encode_image`` in float32, or on a CPU a bfloat16 or
        int8 copy of its image tower (``cpu_image_precision``; ``engine.models.cpu_tower``), made on first use."""
        model = self._get_or_load_model()
        with self._lock:
            if self._cpu_precision == "float32":
                return model.encode_image
            if self._fast_visual is None:
                if self._cpu_precision == "bfloat16":
                    self._fast_visual = bfloat16_tower(model.visual)
                else:
                    self._fast_visual = int8_tower(model.visual)
                    if self._fast_visual is None:  # this torch cannot: say float32, which is what runs
                        self._cpu_precision = "float32"
                        return model.encode_image
            return self._fast_visual

    def encode_texts(self, texts: Sequence[str]) -> np.ndarray:
        texts = list(texts)
        encode = self._text_forward()
        assert self._tokenizer is not None
        tokenizer = self._tokenizer
        return self._batched(len(texts), lambda part: encode(tokenizer(texts[part]).to(self._device)))
