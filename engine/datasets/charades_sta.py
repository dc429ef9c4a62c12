"""Charades-STA moment grounding: ``VID start end##sentence`` lines (the 2D-TAN / VideoX release).

Each line is one query with one ground-truth window in seconds. The file gives no video durations; the
evaluation does not need them (R1@IoU and mIoU compare windows directly). ``qid`` is the 0-based position of
the query among the file's queries, since the format has no id of its own.
"""

from __future__ import annotations

from pathlib import Path

from engine.datasets.common import AnnotationError, MomentQuery, parse_float, read_lines


def load_charades_sta(path: Path) -> list[MomentQuery]:
    """One query per line, in file order."""
    path = Path(path)
    queries: list[MomentQuery] = []
    for number, line in read_lines(path):
        head, sep, sentence = line.partition("##")
        fields = head.split()
        if not sep or len(fields) != 3 or not sentence.strip():
            raise AnnotationError(path, number, "expected 'VIDEO START END##sentence'")
        start = parse_float(fields[1], path, number, "start")
        end = parse_float(fields[2], path, number, "end")
        if not 0 <= start <= end:
            raise AnnotationError(path, number, f"window [{start}, {end}] is not 0 <= start <= end")
        queries.append(MomentQuery(len(queries), sentence.strip(), fields[0], None, ((start, end),)))
    return queries
