"""Local checkpoints: read and write weights without ever running code from a file.

A checkpoint is either a folder (``config.json`` naming the open_clip architecture, plus ``model.safetensors``
or one of open_clip's own file names) or a single weights file given with its architecture
(``ViT-B-32@/path/model.safetensors``). Safetensors files are read with ``safetensors``; anything else goes
through ``torch.load(weights_only=True)``, which refuses pickles that would construct arbitrary objects.
The file's kind is sniffed from its first bytes, not trusted from its extension.

``checkpoint_fingerprint`` gives a short content hash that goes into the model id, so an index built with
one version of a fine-tuned checkpoint is never mixed with vectors from the next; it and the folder layout live
in ``engine.models.checkpoint_files``, which needs no torch.
"""

from __future__ import annotations

import json
import pickle
import struct
import zipfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

from engine.atomic import atomic_path, atomic_write_bytes
from engine.models.base import ModelUnavailable
from engine.models.checkpoint_files import (
    CONFIG_NAME,
    WEIGHTS_NAMES,
    checkpoint_fingerprint,
    find_weights,
    read_config,
)

__all__ = [
    "CONFIG_NAME",
    "WEIGHTS_NAMES",
    "check_weights_file",
    "checkpoint_fingerprint",
    "find_weights",
    "load_state_dict",
    "read_config",
    "save_checkpoint",
]

_MAX_HEADER = 100_000_000  # safetensors' own limit on the JSON header


def _sniff(path: Path) -> str:
    """``safetensors``, ``torch`` or ``unknown``, from the first bytes and the size."""
    size = path.stat().st_size
    with open(path, "rb") as fh:
        head = fh.read(9)
    if len(head) == 9 and head[8:9] == b"{" and 0 < struct.unpack("<Q", head[:8])[0] < _MAX_HEADER:
        return "safetensors"  # 8-byte little-endian header length, then the JSON header (checked first:
        # the length's low byte may well be 0x80, like a pickle's first byte)
    if head.startswith(b"PK\x03\x04") or (head.startswith(b"\x80") and size > 2):
        return "torch"  # a zip archive (torch >= 1.6) or a bare pickle (older torch.save)
    return "unknown"


def _load_safetensors(path: Path) -> dict[str, torch.Tensor]:
    from safetensors.torch import load_file

    try:
        return load_file(str(path), device="cpu")
    except Exception as exc:  # SafetensorError, OSError: truncated header or data, bad offsets
        raise ModelUnavailable(
            f"{path}: not a readable safetensors file ({exc}); it may be truncated by an interrupted copy"
        ) from exc


def _load_torch(path: Path) -> Any:
    try:
        return torch.load(str(path), map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        raise ModelUnavailable(
            f"{path}: refused to load: the file holds Python objects other than tensors, and unpickling it "
            "could run code. Save a plain state dict (or, better, a .safetensors file) instead"
        ) from exc
    except (RuntimeError, EOFError, OSError, zipfile.BadZipFile, ValueError) as exc:
        raise ModelUnavailable(f"{path}: not a readable torch weights file ({exc}); it may be truncated") from exc


def _as_state_dict(obj: Any, path: Path) -> dict[str, torch.Tensor]:
    """Unwrap ``{"state_dict": ...}`` training checkpoints and DataParallel ``module.`` prefixes."""
    if isinstance(obj, Mapping) and isinstance(obj.get("state_dict"), Mapping):
        obj = obj["state_dict"]
    if not isinstance(obj, Mapping) or not obj:
        raise ModelUnavailable(f"{path}: does not contain a state dict (found {type(obj).__name__})")
    not_tensors = [str(k) for k, v in obj.items() if not isinstance(v, torch.Tensor)]
    if not_tensors:
        raise ModelUnavailable(
            f"{path}: expected a state dict of tensors, but {len(not_tensors)} entries are not tensors "
            f"(e.g. {', '.join(not_tensors[:3])})"
        )
    return {(k[len("module.") :] if k.startswith("module.") else k): v for k, v in obj.items()}


def check_weights_file(path: str | Path) -> str:
    """Cheap early check, reading no tensors: the file exists, is of a known kind and is not visibly truncated.

    Returns ``safetensors`` or ``torch``. Lets ``create_encoder`` reject a bad checkpoint when it is chosen
    rather than at the first encode call, minutes into an indexing job.
    """
    path = Path(path).expanduser()
    if not path.is_file():
        raise ModelUnavailable(f"{path}: no such checkpoint file")
    kind = _sniff(path)
    size = path.stat().st_size
    if kind == "safetensors":
        with open(path, "rb") as fh:
            (header_len,) = struct.unpack("<Q", fh.read(8))
            raw = fh.read(header_len) if header_len <= size - 8 else b""
        try:
            header = json.loads(raw)
            ends = [int(v["data_offsets"][1]) for k, v in header.items() if k != "__metadata__"]
        except (ValueError, TypeError, KeyError, IndexError, AttributeError) as exc:
            raise ModelUnavailable(
                f"{path}: safetensors header is unreadable; the file is truncated or corrupt"
            ) from exc
        expected = 8 + header_len + max(ends, default=0)
        if size < expected:
            raise ModelUnavailable(
                f"{path}: truncated safetensors file ({size} bytes, its header promises {expected}); copy it again"
            )
    elif kind == "torch" and not zipfile.is_zipfile(path) and _sniff_zip_magic(path):
        raise ModelUnavailable(f"{path}: truncated or corrupt torch weights file (a broken zip archive)")
    elif kind == "unknown":
        raise ModelUnavailable(
            f"{path}: neither a safetensors file nor a torch weights file (it is empty, truncated or of another kind)"
        )
    return kind


def _sniff_zip_magic(path: Path) -> bool:
    with open(path, "rb") as fh:
        return fh.read(4) == b"PK\x03\x04"


def load_state_dict(path: str | Path) -> dict[str, torch.Tensor]:
    """Read a weights file into a CPU state dict, refusing anything that is not plain tensors."""
    path = Path(path).expanduser()
    if check_weights_file(path) == "safetensors":
        return _as_state_dict(_load_safetensors(path), path)
    return _as_state_dict(_load_torch(path), path)


def _inferred_config(model: torch.nn.Module) -> dict[str, Any]:
    """What loading needs besides the weights: normalisation and QuickGELU (OpenAI-trained models use it)."""
    visual = getattr(model, "visual", model)
    preprocess = getattr(visual, "preprocess_cfg", None) or {}
    config: dict[str, Any] = {k: [float(x) for x in preprocess[k]] for k in ("mean", "std") if k in preprocess}
    if any(type(module).__name__ == "QuickGELU" for module in model.modules()):
        config["quick_gelu"] = True
    return config


def save_checkpoint(
    folder: str | Path, model: torch.nn.Module, arch: str, extra_config: Mapping[str, Any] | None = None
) -> Path:
    """Write ``model.safetensors`` and ``config.json`` into ``folder`` (each atomically); return the folder.

    ``config.json`` holds ``arch``, the normalisation and QuickGELU flag read off the model, then
    ``extra_config`` (e.g. ``model_id``, the base model, training facts), which wins on conflicts.

    The weights go first, so a folder whose ``config.json`` is new never points at half-written weights.
    Tensors that share storage (tied weights) are cloned, since safetensors refuses aliases.
    """
    from safetensors.torch import save_file

    folder = Path(folder).expanduser()
    folder.mkdir(parents=True, exist_ok=True)
    tensors: dict[str, torch.Tensor] = {}
    seen: set[int] = set()
    for key, value in model.state_dict().items():
        tensor = value.detach().to("cpu").contiguous()
        if tensor.data_ptr() in seen:
            tensor = tensor.clone()
        seen.add(tensor.data_ptr())
        tensors[key] = tensor
    with atomic_path(folder / WEIGHTS_NAMES[0]) as tmp:
        save_file(tensors, str(tmp), metadata={"format": "pt", "arch": arch})
    config = {"arch": arch, **_inferred_config(model), **dict(extra_config or {})}
    atomic_write_bytes(folder / CONFIG_NAME, json.dumps(config, indent=2, sort_keys=True).encode("utf-8"))
    return folder
