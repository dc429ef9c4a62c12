"""Run an encoder's torch work in batches on its device, halving the batch on out-of-memory.

Shared by the open_clip encoder and the trained-run encoder (``engine.models.video_model``): both embed frames
and texts in slices of at most ``batch_size`` under inference mode (float16 autocast on CUDA), and both must
survive a GPU that is shorter on memory than the settings assumed. The batch halves on out-of-memory and stays
halved; one item at a time that still does not fit is a ``ModelUnavailable`` saying what to do.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable

import numpy as np
import torch

from engine.models.base import ModelUnavailable


def is_oom(exc: BaseException) -> bool:
    return isinstance(exc, torch.cuda.OutOfMemoryError) or "out of memory" in str(exc).lower()


class Batcher:
    """Slices work for one model on one device; ``batch_size`` is the current (possibly halved) slice size."""

    def __init__(self, label: str, device: str, batch_size: int, *, half: bool) -> None:
        self.label, self.device, self.half = label, device, half
        self.batch_size = max(1, int(batch_size))

    def run(self, count: int, work: Callable[[slice], torch.Tensor], dim: int) -> np.ndarray:
        """``work`` over slices of ``range(count)``, concatenated as float32 (count, dim) on the CPU."""
        out: list[np.ndarray] = []
        start = 0
        autocast = torch.autocast("cuda", dtype=torch.float16) if self.half else contextlib.nullcontext()
        while start < count:
            stop = min(count, start + self.batch_size)
            try:
                with torch.inference_mode(), autocast:
                    features = work(slice(start, stop))
                out.append(features.float().cpu().numpy())
                start = stop
            except RuntimeError as exc:
                if not is_oom(exc):
                    raise
                if self.batch_size == 1:
                    raise ModelUnavailable(
                        f"{self.label}: out of memory on {self.device} even one item at a time; "
                        "choose device cpu or a smaller model"
                    ) from exc
                self.batch_size = max(1, self.batch_size // 2)
                if self.device.startswith("cuda"):
                    torch.cuda.empty_cache()
        return np.concatenate(out) if out else np.zeros((0, dim), np.float32)


__all__ = ["Batcher", "is_oom"]
