"""An open_clip model's text tower alone, built from a state dict without building (or initialising) the rest.

A text search needs the text tower only; building the whole CLIP model first initialises the image tower too
(ViT-B-32: 88 M of its 151 M parameters) and then overwrites every weight. The tower here is constructed on
PyTorch's ``meta`` device (no memory, no initialisation) and the checkpoint's tensors are assigned to it, so
what costs time is reading the weights the text side actually uses. Its vectors are the full model's
``encode_text`` to the last bit (``tests/engine/test_models.py`` checks), since it is the same module
(open_clip's ``TextTransformer``, which ``CLIP`` itself is assembled from) with the same weights.

Only plain open_clip text towers qualify (``CLIP`` and ``CustomTextCLIP`` layouts); Hugging Face text
encoders and anything whose weights do not fit exactly return None, and the caller builds the full model.
"""

from __future__ import annotations

import logging
from typing import Any

import torch

log = logging.getLogger(__name__)


def _text_state(state: dict[str, torch.Tensor], custom_text: bool) -> dict[str, torch.Tensor]:
    """The text tower's part of a CLIP state dict, under the tower's own names."""
    if custom_text:
        if "positional_embedding" in state:  # saved from a ``CLIP``: rename to the ``text.`` layout first
            from open_clip.model import convert_to_custom_text_state_dict

            state = convert_to_custom_text_state_dict(state)
        return {k.removeprefix("text."): v for k, v in state.items() if k.startswith("text.")}
    return state


def build_text_tower(arch: str, state: dict[str, torch.Tensor], *, quick_gelu: bool) -> torch.nn.Module | None:
    """The text tower of ``arch`` holding the text weights of ``state`` (float32, on the CPU, in eval mode), or
    None when that cannot be done exactly (then build the whole model)."""
    import open_clip
    from open_clip.model import _build_text_tower

    config: dict[str, Any] | None = open_clip.get_model_config(arch)
    if not config or config.get("text_cfg", {}).get("hf_model_name"):
        return None
    custom_text = bool(config.get("custom_text"))
    try:
        with torch.device("meta"):
            tower = _build_text_tower(
                config["embed_dim"], config["text_cfg"], quick_gelu or config.get("quick_gelu", False)
            )
        wanted = tower.state_dict()
        given = _text_state(state, custom_text)
        missing = [k for k in wanted if k not in given or tuple(given[k].shape) != tuple(wanted[k].shape)]
        if missing:
            log.info("%s: text weights do not fit the tower alone (%s); building the whole model", arch, missing[:3])
            return None
        tensors = {k: given[k].float() if given[k].is_floating_point() else given[k] for k in wanted}
        tower.load_state_dict(tensors, strict=True, assign=True)
        if getattr(tower, "attn_mask", None) is not None:  # a buffer not in the state dict: build it for real
            tower.attn_mask = tower.build_causal_mask()
    except (TypeError, ValueError, RuntimeError, KeyError, AttributeError) as exc:  # another open_clip layout
        log.info("%s: no text tower alone (%s); building the whole model", arch, exc)
        return None
    leftover = [name for name, t in [*tower.named_parameters(), *tower.named_buffers()] if t.is_meta]
    return None if leftover else tower.eval()
