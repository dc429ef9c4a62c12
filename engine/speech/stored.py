"""A video's stored transcript, read back from the catalog for export, the player and the transcript panel.

It refuses with a message that says why there is none (the video is not in the library, its speech stage has
not run yet, it has no sound track, transcription failed) rather than returning an empty transcript that
looks like silence. An empty list does mean silence: the stage ran and heard no speech.
"""

from __future__ import annotations

from pathlib import Path

from engine.atomic import atomic_write_bytes
from engine.export.subtitles import Format, render
from engine.library.catalog import Catalog
from engine.speech.transcript import Segment


class TranscriptUnavailable(LookupError):
    """There is no transcript to give; the message names the video and what to do."""


def stored_transcript(catalog: Catalog, video: Path | str) -> list[Segment]:
    """The segments (with words) of ``video``'s transcript, in time order."""
    path = Path(video).expanduser()
    row = catalog.video_by_path(str(path.resolve())) or catalog.video_by_path(str(path.absolute()))
    if row is None:
        raise TranscriptUnavailable(f"{path}: not in the library (add its folder, then run `scenefind index`)")
    result = catalog.stage_result(row["id"], "speech")
    if result is None or result["fingerprint"] != row["fingerprint"]:
        raise TranscriptUnavailable(f"{path}: not transcribed yet (run `scenefind index`; speech must be on)")
    if result["status"] == "no_audio":
        raise TranscriptUnavailable(f"{path}: has no sound track, so there is no transcript")
    if result["status"] == "failed":
        raise TranscriptUnavailable(f"{path}: transcription failed: {result['error']}")
    return [
        Segment(float(r["start"]), float(r["end"]), r["text"], Segment.parse_words(r["words"]))
        for r in catalog.speech_segments_of(row["id"])
    ]


def export_transcript(catalog: Catalog, video: Path | str, fmt: Format, out: Path | None = None) -> str:
    """The transcript rendered as ``fmt``; also written atomically to ``out`` when given."""
    text = render(stored_transcript(catalog, video), fmt)
    if out is not None:
        atomic_write_bytes(Path(out), text.encode("utf-8"))
    return text
