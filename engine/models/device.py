"""Where a model runs: CUDA, then Apple's MPS, then the CPU.

A user who asks for a device that is not there gets an error saying what is available, rather than a
silent fall-back to the CPU that would make indexing a hundred times slower without explanation.
"""

from __future__ import annotations

import functools
import os
from pathlib import Path

import torch

from engine.models.base import ModelUnavailable

CPU_PRECISION_ENV = "SCENEFIND_CPU_PRECISION"  # auto (default), float32, bfloat16 or int8
CPU_PRECISIONS = ("auto", "float32", "bfloat16", "int8")


def _mps_available() -> bool:
    backend = getattr(torch.backends, "mps", None)
    return bool(backend is not None and backend.is_available())


def available_devices() -> list[str]:
    """Every device torch can use here, best first (``cuda:0`` .. ``cuda:N``, ``mps``, ``cpu``)."""
    found = [f"cuda:{i}" for i in range(torch.cuda.device_count())] if torch.cuda.is_available() else []
    if _mps_available():
        found.append("mps")
    return [*found, "cpu"]


def pick_device(preference: str = "auto") -> str:
    """Resolve ``auto``/``cpu``/``cuda``/``cuda:N``/``mps`` to a device that exists, or raise saying why."""
    choice = preference.strip().lower()
    if choice == "auto":
        if torch.cuda.is_available():
            return "cuda"
        return "mps" if _mps_available() else "cpu"
    if choice == "cpu":
        return "cpu"
    available = ", ".join(available_devices())
    if choice == "mps":
        if not _mps_available():
            raise ModelUnavailable(f"device 'mps' was asked for but is not available here (available: {available})")
        return "mps"
    if choice == "cuda" or choice.startswith("cuda:"):
        index_text = choice.partition(":")[2] or "0"
        if not index_text.isdigit():
            raise ModelUnavailable(f"device {preference!r} is not a valid CUDA device; use cuda or cuda:N")
        if not torch.cuda.is_available():
            raise ModelUnavailable(
                f"device {preference!r} was asked for but this torch build sees no CUDA GPU "
                f"(torch {torch.__version__}, available: {available}); use device 'auto' or 'cpu', or install "
                "a CUDA build of torch"
            )
        if int(index_text) >= torch.cuda.device_count():
            raise ModelUnavailable(f"device {preference!r} does not exist (available: {available})")
        return choice
    raise ModelUnavailable(f"unknown device {preference!r}; use auto, cpu, cuda, cuda:N or mps")


def uses_half(device: str) -> bool:
    """Whether to run in float16: on CUDA only.

    Half precision halves memory and roughly doubles throughput on NVIDIA GPUs with no visible change in
    ranking. MPS float16 support still varies across macOS and torch releases, and CPUs gain nothing, so both
    stay in float32.
    """
    return device.startswith("cuda")


@functools.cache
def _cpu_has_amx_bf16() -> bool:
    """Whether this CPU multiplies bfloat16 matrices in hardware (Intel AMX), read from /proc/cpuinfo."""
    try:
        text = Path("/proc/cpuinfo").read_text(errors="replace")
    except OSError:
        return False
    return any(line.startswith("flags") and "amx_bf16" in line.split() for line in text.splitlines())


def cpu_image_precision(device: str) -> str:
    """What an image tower computes in on this CPU: "bfloat16" where the CPU has AMX, else "float32", unless
    ``SCENEFIND_CPU_PRECISION`` says otherwise ("float32" for any device that is not a CPU).

    Measured on a 2-core Xeon with AMX (random ViT-B-32, batch 16): the tower cast whole to bfloat16 embeds a
    frame in 43.8 ms against 66.7 ms in float32, and its vectors keep a cosine of at least 0.9999 to the float32
    ones. Elsewhere bfloat16 is slower: on an AMD EPYC with AVX-512 BF16 (no AMX) autocast took 3.3x as long, so
    ``auto`` turns it on only where AMX is. ``int8`` (``engine.models.cpu_tower``: the tower's linear layers
    quantised dynamically) is faster on any x86 CPU but is never chosen by ``auto``: CLIP's activations are
    uneven, and what int8 does to a pretrained model's rankings cannot be measured on a machine without its
    weights, so a user opts in.
    """
    if not device.startswith("cpu"):
        return "float32"
    choice = os.environ.get(CPU_PRECISION_ENV, "auto").strip().lower()
    choice = {"fp32": "float32", "bf16": "bfloat16", "qint8": "int8"}.get(choice, choice)
    if choice not in CPU_PRECISIONS:
        raise ModelUnavailable(f"{CPU_PRECISION_ENV}={choice!r} is not one of {', '.join(CPU_PRECISIONS)}")
    if choice != "auto":
        return choice
    return "bfloat16" if _cpu_has_amx_bf16() else "float32"
