"""Official-format benchmark loaders: each file format becomes ``CaptionPair`` or ``MomentQuery`` records.

``LOADERS`` maps a dataset name to its loader and ``TASKS`` to what is measured on it, so the evaluation
harness and the CLI pick both from one name.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Literal

from engine.datasets.activitynet import load_activitynet
from engine.datasets.charades_sta import load_charades_sta
from engine.datasets.common import AnnotationError, CaptionPair, MomentPrediction, MomentQuery, video_order
from engine.datasets.didemo import load_didemo
from engine.datasets.msrvtt import load_msrvtt
from engine.datasets.msvd import load_msvd
from engine.datasets.qvhighlights import load_predictions, load_qvhighlights

Task = Literal["retrieval", "highlights", "grounding"]

LOADERS: dict[str, Callable[[Path], list[CaptionPair]] | Callable[[Path], list[MomentQuery]]] = {
    "msrvtt": load_msrvtt,
    "msvd": load_msvd,
    "didemo": load_didemo,
    "qvhighlights": load_qvhighlights,
    "charades_sta": load_charades_sta,
    "activitynet": load_activitynet,
}

TASKS: dict[str, Task] = {
    "msrvtt": "retrieval",
    "msvd": "retrieval",
    "didemo": "retrieval",
    "qvhighlights": "highlights",
    "charades_sta": "grounding",
    "activitynet": "grounding",
}

# How to recognise a dataset from its official file name (lower-cased), checked in order.
_NAME_HINTS = (
    ("msrvtt", "msrvtt"),
    ("msvd", "msvd"),
    ("didemo", "didemo"),
    ("highlight_", "qvhighlights"),
    ("qvh", "qvhighlights"),
    ("charades", "charades_sta"),
    ("activitynet", "activitynet"),
)


def guess_dataset(path: Path) -> str | None:
    """The dataset an annotation file belongs to, from its name or its folder's name; ``None`` if unclear."""
    for name in (Path(path).name.lower(), Path(path).parent.name.lower()):
        for hint, dataset in _NAME_HINTS:
            if hint in name:
                return dataset
    return None


__all__ = [
    "LOADERS",
    "TASKS",
    "AnnotationError",
    "CaptionPair",
    "MomentPrediction",
    "MomentQuery",
    "Task",
    "guess_dataset",
    "load_activitynet",
    "load_charades_sta",
    "load_didemo",
    "load_msrvtt",
    "load_msvd",
    "load_predictions",
    "load_qvhighlights",
    "video_order",
]
