"""A local GGUF language model (llama.cpp through ``llama-cpp-python``) that writes caption negatives.

The user picks a GGUF file, or the default (Qwen2.5-1.5B-Instruct, Q4_K_M, 1.1 GB) is downloaded once over
HTTPS into ``engine.paths.weights_dir()/llm`` with progress, resumable, its size and SHA-256 checked against
the published ones. Before a file reaches llama.cpp its header is read here: llama.cpp answers a wrong or
truncated file with a crash or a line on stderr, while this module raises ``LLMError`` naming the file and
what is wrong with it (not a GGUF, an incomplete download, a GGUF that is not a language model). Layers go to
the GPU when the llama.cpp build supports offload. ``llama_cpp`` is imported only when the model is loaded.
"""

from __future__ import annotations

import contextlib
import mmap
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from engine.download import DownloadError, download_file
from engine.jobs import CancelToken, ProgressCallback
from engine.paths import weights_dir

GGUF_MAGIC = b"GGUF"


@dataclass(frozen=True)
class RemoteModel:
    """A downloadable GGUF: where it is, and the size and SHA-256 it must have (``None`` when unknown)."""

    url: str
    filename: str
    size: int | None
    sha256: str | None


# Pinned to a revision of Qwen's own repository, so the checksum below stays the file's checksum.
DEFAULT_MODEL = RemoteModel(
    url="https://huggingface.co/Qwen/Qwen2.5-1.5B-Instruct-GGUF/resolve/91cad51170dc346986eccefdc2dd33a9da36ead9/"
    "qwen2.5-1.5b-instruct-q4_k_m.gguf",
    filename="qwen2.5-1.5b-instruct-q4_k_m.gguf",
    size=1_117_320_736,
    sha256="6a1a2eb6d15622bf3c96857206351ba97e1af16c30d7a74ee38970e434e9407e",
)

# ggml tensor types: (elements per block, bytes per block), to compute the data size a header promises.
_GGML_BLOCKS: dict[int, tuple[int, int]] = {
    0: (1, 4), 1: (1, 2), 2: (32, 18), 3: (32, 20), 6: (32, 22), 7: (32, 24), 8: (32, 34), 9: (32, 36),
    10: (256, 84), 11: (256, 110), 12: (256, 144), 13: (256, 176), 14: (256, 210), 15: (256, 292),
    16: (256, 66), 17: (256, 74), 18: (256, 98), 19: (256, 50), 20: (32, 18), 21: (256, 110), 22: (256, 82),
    23: (256, 136), 24: (1, 1), 25: (1, 2), 26: (1, 4), 27: (1, 8), 28: (1, 8), 29: (256, 56), 30: (1, 2),
    34: (256, 54), 35: (256, 66), 39: (32, 17),
}  # fmt: skip
# GGUF metadata value types -> struct format of a scalar (8: string, 9: array are handled apart).
_SCALARS = {0: "<B", 1: "<b", 2: "<H", 3: "<h", 4: "<I", 5: "<i", 6: "<f", 7: "<?", 10: "<Q", 11: "<q", 12: "<d"}


class LLMError(RuntimeError):
    """A model file is unusable or cannot be fetched; ``str()`` names the file and the reason."""


class LLMDownloadError(LLMError):
    """The model file could not be downloaded (no connection, the host refused): the message is the command
    line's; ``url`` and ``reason`` let the desktop app say it in its own words."""

    def __init__(self, message: str, url: str = "", reason: str = "") -> None:
        super().__init__(message)
        self.url = url
        self.reason = reason


@dataclass(frozen=True)
class GgufInfo:
    path: Path
    version: int
    architecture: str
    name: str
    tensors: int
    expected_size: int | None  # bytes the header promises; None when a tensor type is unknown here


def inspect_gguf(path: Path | str) -> GgufInfo:
    """Read a GGUF header and check the file is a complete language model; raises ``LLMError`` if not."""
    p = Path(path)
    try:
        size = p.stat().st_size
        fh = open(p, "rb")  # noqa: SIM115 - closed below, after mmap
    except OSError as exc:
        raise LLMError(f"{p}: cannot open the model file ({exc.strerror})") from None
    with fh:
        head = fh.read(9)
        if head[:4] != GGUF_MAGIC:
            raise LLMError(f"{p}: not a GGUF model file ({_what_is(head)}); llama.cpp needs a .gguf file")
        if size < 24:
            raise LLMError(f"{p}: truncated GGUF file ({size} bytes; incomplete download?)")
        with mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ) as mm:
            return _Header(p, mm).read()


class _Header:
    """Walks a GGUF header in a memory map; any read past the end means the file was cut short."""

    def __init__(self, path: Path, mm: mmap.mmap) -> None:
        self.path, self.mm, self.pos = path, mm, 4

    def take(self, fmt: str) -> Any:
        n = struct.calcsize(fmt)
        if self.pos + n > len(self.mm):
            raise LLMError(f"{self.path}: truncated GGUF file ({len(self.mm)} bytes; incomplete download?)")
        value = struct.unpack_from(fmt, self.mm, self.pos)[0]
        self.pos += n
        return value

    def string(self) -> str:
        n = self.take("<Q")
        if self.pos + n > len(self.mm):
            raise LLMError(f"{self.path}: truncated GGUF file ({len(self.mm)} bytes; incomplete download?)")
        text = bytes(self.mm[self.pos : self.pos + n]).decode("utf-8", errors="replace")
        self.pos += n
        return text

    def value(self, vtype: int) -> Any:
        if vtype == 8:
            return self.string()
        if vtype == 9:
            item_type, count = self.take("<I"), self.take("<Q")
            if item_type in _SCALARS:  # skip a scalar array in one step
                self.pos += struct.calcsize(_SCALARS[item_type]) * count
            elif item_type == 8:  # a vocabulary: step over the strings without decoding them
                for _ in range(count):
                    length = self.take("<Q")  # read before adding: take() moves pos
                    self.pos += length
            else:
                for _ in range(count):
                    self.value(item_type)
            if self.pos > len(self.mm):
                raise LLMError(f"{self.path}: truncated GGUF file ({len(self.mm)} bytes; incomplete download?)")
            return None
        if vtype not in _SCALARS:
            raise LLMError(f"{self.path}: corrupt GGUF header (unknown metadata type {vtype} at byte {self.pos})")
        return self.take(_SCALARS[vtype])

    def read(self) -> GgufInfo:
        version = self.take("<I")
        if version not in (2, 3):
            raise LLMError(f"{self.path}: unsupported GGUF version {version} (llama.cpp reads versions 2 and 3)")
        n_tensors, n_kv = self.take("<Q"), self.take("<Q")
        if n_tensors > 1_000_000 or n_kv > 1_000_000:
            raise LLMError(f"{self.path}: corrupt GGUF header ({n_tensors} tensors, {n_kv} metadata keys)")
        meta: dict[str, Any] = {}
        for _ in range(n_kv):
            key, vtype = self.string(), self.take("<I")
            meta[key] = self.value(vtype)
        end: int | None = 0
        for _ in range(n_tensors):
            self.string()
            dims = [self.take("<Q") for _ in range(self.take("<I"))]
            ttype, offset = self.take("<I"), self.take("<Q")
            block = _GGML_BLOCKS.get(ttype)
            if block is None or end is None:
                end = None
                continue
            elements = 1
            for d in dims:
                elements *= d
            end = max(end, offset + elements // block[0] * block[1])
        alignment = int(meta.get("general.alignment") or 32)
        data_start = -(-self.pos // alignment) * alignment
        expected = None if end is None else data_start + end
        info = GgufInfo(
            self.path,
            version,
            str(meta.get("general.architecture", "")),
            str(meta.get("general.name", "")),
            n_tensors,
            expected,
        )
        if expected is not None and len(self.mm) < expected:
            raise LLMError(
                f"{self.path}: truncated GGUF file ({len(self.mm):,} bytes, its header describes {expected:,}; "
                "incomplete download? delete it and fetch it again)"
            )
        if n_tensors == 0 or "tokenizer.ggml.model" not in meta or info.architecture in ("clip", "mmproj", ""):
            kind = info.architecture or "no architecture"
            raise LLMError(
                f"{self.path}: a GGUF file but not a text-generation model ({kind}, {n_tensors} tensors, "
                f"{'a' if 'tokenizer.ggml.model' in meta else 'no'} tokenizer); choose an instruct LLM GGUF"
            )
        return info


def _what_is(head: bytes) -> str:
    if not head:
        return "the file is empty"
    if head.lstrip()[:1] == b"<":
        return "it is an HTML/XML page, e.g. a failed download's error page"
    if head[:2] == b"PK":
        return "it is a zip archive"
    if head[8:9] == b"{":
        return "it is a safetensors file"
    if head.lstrip()[:1] in (b"{", b"["):
        return "it is a JSON file"
    return f"it starts with {head[:4]!r}, not b'GGUF'"


def gpu_layers() -> int:
    """-1 (every layer on the GPU) when this llama.cpp build can offload to a GPU, else 0."""
    try:
        import llama_cpp

        return -1 if bool(llama_cpp.llama_supports_gpu_offload()) else 0
    except Exception:  # an old binding without the query, or no library at all: stay on the CPU
        return 0


class LocalLLM:
    """One GGUF model, loaded on first use; ``complete`` runs a plain (few-shot) text completion."""

    def __init__(
        self,
        path: Path | str,
        *,
        n_ctx: int = 1024,
        n_threads: int | None = None,
        n_gpu_layers: int | None = None,
    ) -> None:
        self.path = Path(path).expanduser()
        self.info = inspect_gguf(self.path)
        self.n_ctx, self.n_threads, self.n_gpu_layers = n_ctx, n_threads, n_gpu_layers
        self._llama: Any | None = None

    @property
    def model_id(self) -> str:
        """Name and size of the file: what the negatives cache is keyed by."""
        return f"{self.path.name}#{self.path.stat().st_size}"

    @classmethod
    def default(
        cls, *, progress: ProgressCallback | None = None, cancel: CancelToken | None = None, **kwargs: Any
    ) -> LocalLLM:
        """The default model, downloaded into the weights cache on first use."""
        return cls(ensure_model(DEFAULT_MODEL, progress=progress, cancel=cancel), **kwargs)

    def _get_or_load(self) -> Any:
        if self._llama is None:
            try:
                from llama_cpp import Llama
            except ImportError as exc:
                raise LLMError(
                    "llama-cpp-python is not installed: CMAKE_ARGS='-DGGML_NATIVE=OFF' pip install llama-cpp-python"
                ) from exc
            layers = gpu_layers() if self.n_gpu_layers is None else self.n_gpu_layers
            try:
                self._llama = Llama(
                    model_path=str(self.path),
                    n_ctx=self.n_ctx,
                    n_threads=self.n_threads,
                    n_gpu_layers=layers,
                    verbose=False,
                )
            except (ValueError, RuntimeError) as exc:
                raise LLMError(f"{self.path}: llama.cpp could not load the model ({exc})") from exc
        return self._llama

    def complete(
        self,
        prompt: str,
        *,
        max_tokens: int = 32,
        temperature: float = 0.7,
        seed: int = 0,
        stop: tuple[str, ...] = ("\n",),
    ) -> str:
        """Continue ``prompt``; deterministic for a given seed on one machine."""
        llama = self._get_or_load()
        out = llama.create_completion(
            prompt,
            max_tokens=max_tokens,
            temperature=temperature,
            top_p=0.95,
            repeat_penalty=1.2,  # lists: small models otherwise answer "child, child, child, ..."
            seed=seed,
            stop=list(stop),
        )
        return str(out["choices"][0]["text"])

    def close(self) -> None:
        if self._llama is not None:
            with contextlib.suppress(Exception):
                self._llama.close()
            self._llama = None

    def __enter__(self) -> LocalLLM:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def default_model_cached() -> bool:
    """Whether the default model is already in the weights cache (no download needed)."""
    target = weights_dir() / "llm" / DEFAULT_MODEL.filename
    return target.is_file() and target.stat().st_size == DEFAULT_MODEL.size


def ensure_model(
    model: RemoteModel,
    folder: Path | None = None,
    *,
    progress: ProgressCallback | None = None,
    cancel: CancelToken | None = None,
) -> Path:
    """The model's local path: from ``folder`` (default ``weights_dir()/llm``) if complete, else downloaded."""
    target = (folder or weights_dir() / "llm") / model.filename
    if target.is_file() and (model.size is None or target.stat().st_size == model.size):
        return target
    return download(model, target, progress=progress, cancel=cancel)


def download(
    model: RemoteModel,
    target: Path,
    *,
    progress: ProgressCallback | None = None,
    cancel: CancelToken | None = None,
    timeout_s: float = 30.0,
) -> Path:
    """Fetch ``model.url`` to ``target`` through ``target.part`` (resumed if present), then verify it.

    Only HTTPS is accepted (a model file must not travel in the clear), except from this machine's own loopback
    address, where there is no network to intercept (a local mirror, or a test server); see ``engine.download``."""
    try:
        download_file(
            model.url,
            target,
            size=model.size,
            sha256=model.sha256,
            label=model.filename,
            progress=progress,
            cancel=cancel,
            timeout_s=timeout_s,
        )
    except DownloadError as exc:
        if "could not download" in str(exc):  # no connection, or the host refused: the app says it in its words
            reason = str(exc.__cause__ or exc)
            raise LLMDownloadError(f"{exc}; pass a local GGUF file instead (--llm FILE)", model.url, reason) from exc
        raise LLMError(str(exc)) from exc
    inspect_gguf(target)
    return target
