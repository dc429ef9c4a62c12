"""Moment lists as marker files video editors import: CMX3600 EDL and FCPXML.

Search finds moments; an editor wants them on a timeline. An EDL (the lowest common denominator: Premiere,
Resolve, Avid) lists each moment as an event cut from its source file with a comment naming it; an FCPXML
(Final Cut Pro, Resolve) puts each source video on a timeline once and marks every moment on it. Times are
rounded to whole frames of ``fps`` because both formats count frames.
"""

from __future__ import annotations

import math
import xml.etree.ElementTree as ET
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from engine.atomic import atomic_write_bytes

Format = Literal["edl", "fcpxml"]
FORMATS: tuple[Format, ...] = ("edl", "fcpxml")
DEFAULT_FPS = 25


class MarkerError(ValueError):
    """A marker file cannot be written (no moments, bad range, unknown format); says which."""


@dataclass(frozen=True)
class Marker:
    """One moment to mark: where (video, start, end seconds) and what to call it."""

    video: str
    start: float
    end: float
    label: str = ""
    relevance: float | None = None  # 0-100, written in the comment when known
    duration: float | None = None  # the whole video's length, when known (FCPXML needs one)


def markers_from(items: Iterable[Any]) -> list[Marker]:
    """Markers from ``MomentHit``-like objects or dicts (``video``, ``start``, ``end``, optional ``relevance``,
    ``duration``, ``label``), such as ``scenefind search --json`` prints."""
    out = []
    for n, item in enumerate(items, 1):
        get = item.get if isinstance(item, dict) else lambda key, default=None, obj=item: getattr(obj, key, default)
        try:
            start = float(get("start", get("best_time", 0.0)))
            end = float(get("end", start + 1.0))
            video = str(get("video"))
        except (TypeError, ValueError) as exc:
            raise MarkerError(f"moment {n}: needs video, start and end ({exc})") from exc
        rel, dur = get("relevance"), get("duration")
        out.append(
            Marker(
                video,
                start,
                end,
                str(get("label") or ""),
                None if rel is None else float(rel),
                None if dur is None else float(dur),
            )
        )
    return out


def to_edl(markers: Sequence[Marker], *, title: str = "Scenefind moments", fps: int = DEFAULT_FPS) -> str:
    """A CMX3600 EDL: one cut event per moment, laid end to end on the record side."""
    _check(markers, fps)
    lines = [f"TITLE: {_one_line(title)[:70]}", "FCM: NON-DROP FRAME", ""]
    record = 0
    for n, m in enumerate(markers, 1):
        first, last = _frames(m.start, fps), max(_frames(m.end, fps), _frames(m.start, fps) + 1)
        length = last - first
        src_in, src_out = _timecode(first, fps), _timecode(last, fps)
        rec_in, rec_out = _timecode(record, fps), _timecode(record + length, fps)
        lines.append(f"{n:03d}  AX       V     C        {src_in} {src_out} {rec_in} {rec_out}")
        lines.append(f"* FROM CLIP NAME: {_one_line(Path(m.video).name)}")
        lines.append(f"* SOURCE FILE: {_one_line(m.video)}")
        lines.append(f"* COMMENT: {_one_line(_label(m, n))}")
        lines.append("")
        record += length
    return "\n".join(lines)


def to_fcpxml(markers: Sequence[Marker], *, title: str = "Scenefind moments", fps: int = DEFAULT_FPS) -> str:
    """FCPXML 1.9: each video once on the spine (in first-seen order) with its moments as markers."""
    _check(markers, fps)
    videos: dict[str, list[tuple[int, Marker]]] = {}
    for n, m in enumerate(markers, 1):
        videos.setdefault(m.video, []).append((n, m))
    root = ET.Element("fcpxml", version="1.9")
    resources = ET.SubElement(root, "resources")
    ET.SubElement(resources, "format", id="r0", name=f"FFVideoFormat{fps}p", frameDuration=f"1/{fps}s")
    library = ET.SubElement(root, "library")
    event = ET.SubElement(library, "event", name="Scenefind")
    project = ET.SubElement(event, "project", name=_one_line(title))
    offsets, total = [], 0
    for i, (video, items) in enumerate(videos.items(), 1):
        known = [m.duration for _, m in items if m.duration]
        length = _frames(max([*known, *(m.end for _, m in items)]), fps)
        asset = ET.SubElement(
            resources,
            "asset",
            id=f"r{i}",
            name=Path(video).name,
            start="0s",
            duration=_rational(length, fps),
            hasVideo="1",
            format="r0",
        )
        ET.SubElement(asset, "media-rep", kind="original-media", src=Path(video).absolute().as_uri())
        offsets.append((f"r{i}", video, items, total, length))
        total += length
    sequence = ET.SubElement(
        project, "sequence", format="r0", duration=_rational(total, fps), tcStart="0s", tcFormat="NDF"
    )
    spine = ET.SubElement(sequence, "spine")
    for ref, video, items, offset, length in offsets:
        clip = ET.SubElement(
            spine,
            "asset-clip",
            ref=ref,
            offset=_rational(offset, fps),
            name=Path(video).name,
            start="0s",
            duration=_rational(length, fps),
        )
        for n, m in items:
            first = _frames(m.start, fps)
            dur = max(1, _frames(m.end, fps) - first)
            ET.SubElement(clip, "marker", start=_rational(first, fps), duration=_rational(dur, fps), value=_label(m, n))
    ET.indent(root)
    body = ET.tostring(root, encoding="unicode")
    return f'<?xml version="1.0" encoding="UTF-8"?>\n<!DOCTYPE fcpxml>\n{body}\n'


def write_markers(
    markers: Sequence[Marker],
    path: Path | str,
    fmt: Format | None = None,
    *,
    title: str = "Scenefind moments",
    fps: int = DEFAULT_FPS,
) -> Path:
    """Write an EDL or FCPXML (``fmt``, or guessed from the suffix ``.edl``/``.fcpxml``) atomically."""
    target = Path(path).expanduser()
    fmt = fmt or _format_of(target)
    text = to_edl(markers, title=title, fps=fps) if fmt == "edl" else to_fcpxml(markers, title=title, fps=fps)
    atomic_write_bytes(target, text.encode("utf-8"))
    return target


def _format_of(path: Path) -> Format:
    suffix = path.suffix.lower().lstrip(".")
    if suffix in ("edl", "fcpxml"):
        return suffix  # type: ignore[return-value]
    if suffix == "xml":
        return "fcpxml"
    raise MarkerError(f"{path}: say the format (edl or fcpxml), or name the file .edl or .fcpxml")


def _check(markers: Sequence[Marker], fps: int) -> None:
    if not markers:
        raise MarkerError("no moments to write")
    if not 1 <= fps <= 240:
        raise MarkerError(f"fps must be between 1 and 240, not {fps}")
    for n, m in enumerate(markers, 1):
        if not (math.isfinite(m.start) and math.isfinite(m.end)) or m.start < 0 or m.end <= m.start:
            raise MarkerError(f"moment {n} ({m.video}): bad range {m.start}-{m.end} s")


def _frames(seconds: float, fps: int) -> int:
    return max(0, round(seconds * fps))


def _timecode(frames: int, fps: int) -> str:
    s, f = divmod(frames, fps)
    return f"{s // 3600:02d}:{s // 60 % 60:02d}:{s % 60:02d}:{f:02d}"


def _rational(frames: int, fps: int) -> str:
    return "0s" if frames == 0 else f"{frames}/{fps}s"


def _label(m: Marker, n: int) -> str:
    base = m.label or f"Moment {n}"
    return f"{base} ({m.relevance:.0f}%)" if m.relevance is not None else base


def _one_line(text: str) -> str:
    return " ".join(str(text).split())
