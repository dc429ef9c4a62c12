"""DiDeMo paragraph-to-video retrieval: the test tsv (1,004 videos).

Each record is the video's moment descriptions joined by ``", "`` (with a trailing one), a tab, then the video
file name. Retrieval on DiDeMo follows ClipBERT and CLIP4Clip: the descriptions of a video are concatenated
into one paragraph query, so there is one pair per video. A few records are quoted because a description
contains a line break or a doubled quote; they are read with the csv module's quoting rules, and the line
break becomes a space. The video id is the file name without its extension (the releases differ in
container), so it matches ``video.mp4`` and ``video.mov`` alike.
"""

from __future__ import annotations

import csv
import io
import re
from pathlib import Path, PurePosixPath

from engine.datasets.common import AnnotationError, CaptionPair

_SPACE_BEFORE_COMMA = re.compile(r"\s+,")


def load_didemo(path: Path) -> list[CaptionPair]:
    """One (video, paragraph) pair per record, in file order."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as exc:
        raise AnnotationError(path, None, f"not UTF-8 text ({exc})") from exc
    reader = csv.reader(io.StringIO(text, newline=""), delimiter="\t", quotechar='"', strict=True)
    pairs: list[CaptionPair] = []
    try:
        for row in reader:
            if not any(field.strip() for field in row):
                continue
            if len(row) != 2 or not row[1].strip():
                raise AnnotationError(path, reader.line_num, "expected descriptions, a tab, then the video file")
            paragraph = _SPACE_BEFORE_COMMA.sub(",", " ".join(row[0].split())).rstrip(", ")
            if not paragraph:
                raise AnnotationError(path, reader.line_num, "the record has no description")
            pairs.append(CaptionPair(PurePosixPath(row[1].strip()).stem, paragraph))
    except csv.Error as exc:
        raise AnnotationError(path, reader.line_num, f"malformed record ({exc})") from None
    return pairs
