"""MSVD text-to-video retrieval: the test tsv (670 videos, every caption of a video on one line).

Each line is the video's captions, each followed by ``", "``, then a tab and the YouTube clip id
(``eyhzdC936uk_15_27``). MSVD captions are lower-cased and carry no commas, so splitting on ``", "`` gives
the 27,763 test captions the literature evaluates on, each a separate query (several per video).
"""

from __future__ import annotations

from pathlib import Path

from engine.datasets.common import AnnotationError, CaptionPair, read_lines


def load_msvd(path: Path) -> list[CaptionPair]:
    """One pair per caption, grouped by video in file order."""
    path = Path(path)
    pairs: list[CaptionPair] = []
    for number, line in read_lines(path):
        captions, sep, video_id = line.rpartition("\t")
        video_id = video_id.strip()
        texts = [c.strip() for c in captions.split(", ") if c.strip()]
        if not sep or not video_id or not texts:
            raise AnnotationError(path, number, "expected captions, a tab, then the video id")
        pairs.extend(CaptionPair(video_id, text) for text in texts)
    return pairs
