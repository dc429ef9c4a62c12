"""MSR-VTT text-to-video retrieval: the JSFusion 1k-A test csv (and antmmf's jsonl caption files).

The 1k-A split is what CLIP4Clip, Frozen and most later work report on: 1,000 (video, caption) pairs, one
caption per video, ``key;vid_key;video_id;sentence`` with a header line. antmmf stores the same captions as
JSON lines with ``caption`` and ``clip_name`` (sometimes a path such as ``data/mp4/video9770``).
"""

from __future__ import annotations

import json
from pathlib import Path, PurePosixPath

from engine.datasets.common import AnnotationError, CaptionPair, read_lines

JSFUSION_HEADER = ("key", "vid_key", "video_id", "sentence")


def load_msrvtt(path: Path) -> list[CaptionPair]:
    """Caption pairs from a JSFusion ``.csv`` or an antmmf ``.jsonl`` file, in file order."""
    path = Path(path)
    if path.suffix.lower() == ".jsonl":
        return _load_jsonl(path)
    pairs: list[CaptionPair] = []
    header_seen = False
    for number, line in read_lines(path):
        fields = line.split(";", 3)
        if not header_seen:
            if tuple(f.strip() for f in fields) != JSFUSION_HEADER:
                raise AnnotationError(path, number, f"expected the header {';'.join(JSFUSION_HEADER)!r}")
            header_seen = True
            continue
        if len(fields) != 4 or not fields[2].strip() or not fields[3].strip():
            raise AnnotationError(path, number, "expected key;vid_key;video_id;sentence with a video id and text")
        pairs.append(CaptionPair(fields[2].strip(), fields[3].strip()))
    return pairs


def _load_jsonl(path: Path) -> list[CaptionPair]:
    pairs: list[CaptionPair] = []
    for number, line in read_lines(path):
        try:
            row = json.loads(line)
        except json.JSONDecodeError as exc:
            raise AnnotationError(path, number, f"not JSON ({exc.msg})") from None
        if not isinstance(row, dict) or not isinstance(row.get("caption"), str) or not row.get("clip_name"):
            raise AnnotationError(path, number, "expected an object with 'caption' and 'clip_name'")
        pairs.append(CaptionPair(PurePosixPath(str(row["clip_name"])).name, row["caption"].strip()))
    return pairs
