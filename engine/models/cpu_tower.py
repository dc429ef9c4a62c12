"""The CPU copy of an image tower that embeds frames faster than the float32 original (``cpu_image_precision``).

Why a copy, not the model itself: the model stays float32 for the text tower, for training and for
``save_checkpoint``; only frames go through the copy, which is made once, on first use. Two kinds:

* ``bfloat16``: the tower cast whole (where AMX multiplies bfloat16 in hardware; 1.5x there);
* ``int8``: the tower's ``nn.Linear`` layers (the MLP of every block, two thirds of a ViT's multiply-adds)
  quantised dynamically, weights per output channel, with torch's x86 int8 kernels. Attention keeps float32:
  ``nn.MultiheadAttention``'s projections are not plain ``Linear`` layers. Measured on a 2-core AVX2 EPYC
  (random ViT-B-32, batch 16): 1.3-1.7x faster than float32 with the vectors at a cosine of at least 0.9997.

Where torch's dynamic quantisation is missing (it is deprecated in favour of torchao and may go), the tower stays
float32 and the caller is told, so a benchmark never prints a precision that did not run.
"""

from __future__ import annotations

import copy
import logging
import warnings
from collections.abc import Callable

import torch
from torch import nn

log = logging.getLogger(__name__)

Embedder = Callable[[torch.Tensor], torch.Tensor]


def bfloat16_tower(visual: nn.Module) -> Embedder:
    """A bfloat16 copy of ``visual``: pixels in float32, vectors out in bfloat16 (the caller normalises)."""
    tower = copy.deepcopy(visual).to(torch.bfloat16).eval()
    return lambda pixels: tower(pixels.to(torch.bfloat16))


def _int8_engine() -> str | None:
    """The engine torch's quantised linear layers run on here ("x86", "fbgemm", "qnnpack"…), None without one."""
    engine = str(torch.backends.quantized.engine)
    return None if engine == "none" or not torch.backends.quantized.supported_engines else engine


def int8_tower(visual: nn.Module) -> Embedder | None:
    """A copy of ``visual`` with its linear layers quantised to int8 (dynamic, per channel); None where this torch
    cannot quantise (no dynamic quantisation, or no int8 engine for this CPU)."""
    try:
        with warnings.catch_warnings():  # torch.ao.quantization warns that it is deprecated, on every call,
            warnings.simplefilter("ignore")  # and that its quantised tensors are (a UserWarning)
            from torch.ao.quantization import per_channel_dynamic_qconfig, quantize_dynamic

            if _int8_engine() is None:
                raise RuntimeError("this torch build has no int8 engine")
            tower = quantize_dynamic(
                copy.deepcopy(visual).float().eval(), {nn.Linear: per_channel_dynamic_qconfig}, dtype=torch.qint8
            )
    except (ImportError, AttributeError, RuntimeError) as exc:
        log.warning("int8 image tower unavailable (%s); embedding images in float32", exc)
        return None
    return tower


__all__ = ["Embedder", "bfloat16_tower", "int8_tower"]
