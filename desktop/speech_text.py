"""What the app shows of a library's speech and on-screen text: one video's words (the transcript panel, the
subtitles) and each stage's progress over the library (the Library tab).

Why here and not in the engine: these are the engine's catalog facts put in the app's words and states. A
transcript panel must say *why* it is empty (speech is off, the video waits for its turn, it has no sound,
transcription failed, or nobody spoke) rather than show a blank list that looks like silence, and the
Library must say how far each stage has got. The functions take the catalog and settings, so ``RealEngine``
calls them on a worker and the fake engine builds the same dataclasses for the GUI tests.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:
    from engine.library.catalog import Catalog
    from engine.settings import EngineSettings

State = Literal["ok", "empty", "off", "pending", "no_audio", "failed", "unknown"]
STAGE_NAMES = {"speech": "Speech", "text": "Screen text"}


@dataclass(frozen=True)
class ShownLine:
    """One line of text seen on screen, and while it is seen."""

    start: float
    end: float
    text: str


@dataclass(frozen=True)
class VideoWords:
    """What was said (segments with word times) and shown in one video, and the state of each.

    ``said_state`` / ``shown_state``: ``ok`` (words to show), ``empty`` (the stage ran and found none),
    ``off`` (the stage is switched off for this library), ``pending`` (not done yet), ``no_audio`` (no
    sound track), ``failed`` (``said_error`` / ``shown_error`` say why), ``unknown`` (not in the library)."""

    said: list[Any] = field(default_factory=list)  # engine.speech.transcript.Segment
    shown: list[ShownLine] = field(default_factory=list)
    said_state: State = "ok"
    shown_state: State = "ok"
    said_error: str = ""
    shown_error: str = ""
    language: str | None = None


@dataclass(frozen=True)
class StageStatus:
    """One stage over the library, for the current speech model (or OCR release): switched on or off, and
    the videos by outcome (``done + no_audio + failed + pending`` is every video with a file)."""

    stage: str  # "speech" or "text"
    enabled: bool
    done: int = 0
    pending: int = 0
    no_audio: int = 0
    failed: int = 0
    pending_files: tuple[str, ...] = ()
    failed_files: tuple[tuple[str, str], ...] = ()
    # per folder (by path): the same counts, ``{done, no_audio, failed, pending}``, for the folder rows
    folders: Mapping[str, Mapping[str, int]] = field(default_factory=dict)
    # per folder (by path), its videos by path: ``done``, ``no_audio``, ``failed`` or ``pending``; a video is absent
    # where the stage does not apply (``Catalog.stage_folder_states``, which the counts above are summed from)
    videos: Mapping[str, Mapping[str, str]] = field(default_factory=dict)

    @property
    def name(self) -> str:
        return STAGE_NAMES.get(self.stage, self.stage)


def _state(result: Any, fingerprint: str, rows: int, enabled: bool) -> State:
    if result is None or result["fingerprint"] != fingerprint:
        return "off" if not enabled else "pending"
    if result["status"] in ("no_audio", "failed"):
        return result["status"]
    return "ok" if rows else "empty"


def read_video_words(catalog: Catalog, settings: EngineSettings, video: str | Path) -> VideoWords:
    """``video``'s stored transcript and screen text with their states (a transcript stored before speech was
    switched off still shows)."""
    from engine.speech.transcript import Segment

    path = Path(video).expanduser()
    row = catalog.video_by_path(str(path.resolve())) or catalog.video_by_path(str(path.absolute()))
    if row is None:
        return VideoWords(said_state="unknown", shown_state="unknown")
    said_result = catalog.stage_result(row["id"], "speech")
    shown_result = catalog.stage_result(row["id"], "text")
    current = said_result is not None and said_result["fingerprint"] == row["fingerprint"]
    said = [
        Segment(float(r["start"]), float(r["end"]), r["text"], Segment.parse_words(r["words"]))
        for r in (catalog.speech_segments_of(row["id"]) if current else [])
    ]
    shown_current = shown_result is not None and shown_result["fingerprint"] == row["fingerprint"]
    shown = [
        ShownLine(float(r["start"]), float(r["end"]), str(r["text"]))
        for r in (catalog.text_lines_of(row["id"]) if shown_current else [])
    ]
    return VideoWords(
        said=said,
        shown=shown,
        said_state=_state(said_result, row["fingerprint"], len(said), settings.speech),
        shown_state=_state(shown_result, row["fingerprint"], len(shown), settings.screen_text),
        said_error=str(said_result["error"] or "") if said_result is not None else "",
        shown_error=str(shown_result["error"] or "") if shown_result is not None else "",
        language=said_result["language"] if current else None,
    )


def read_stage_status(catalog: Catalog, settings: EngineSettings) -> list[StageStatus]:
    """Speech, then screen text: counts for the model each would use now, pending and failed files by path."""
    from engine.library.transcripts import count_states
    from engine.screen_text.reader import reader_id
    from engine.speech.models import model_id_for

    out = []
    for stage, on, model in (
        ("speech", settings.speech, model_id_for(settings.speech_model)),
        ("text", settings.screen_text, reader_id()),
    ):
        videos = catalog.stage_folder_states(stage, model)  # type: ignore[arg-type]  # read once: all below
        folders = {folder: count_states(states) for folder, states in videos.items()}
        counts = {key: sum(c[key] for c in folders.values()) for key in ("done", "no_audio", "failed")}
        pending = tuple(sorted(p for states in videos.values() for p, status in states.items() if status == "pending"))
        failed = tuple(catalog.stage_failures(stage))  # type: ignore[arg-type]
        numbers = (counts["done"], len(pending), counts["no_audio"], counts["failed"])
        out.append(StageStatus(stage, on, *numbers, pending, failed, folders, videos))
    return out


def said_note(words: VideoWords) -> str:
    """Why the transcript has no lines, in the app's words ("" when it has some)."""
    return {
        "ok": "",
        "empty": "No speech was heard in this video.",
        "off": "Speech is off for this library. Turn on “Transcribe what is said” in Settings, then index.",
        "pending": "Not transcribed yet. Indexing transcribes each video after its pictures; search works "
        "on the pictures meanwhile.",
        "no_audio": "This video has no sound, so there is nothing to transcribe.",
        "failed": f"Transcription failed: {words.said_error or 'unknown error'}. “Try failed files again” in the "
        "Library retries it.",
        "unknown": "This video is not in the library.",
    }[words.said_state]


def shown_note(words: VideoWords) -> str:
    """Why there are no on-screen text lines ("" when there are some)."""
    return {
        "ok": "",
        "empty": "No text was seen on screen.",
        "off": "Reading on-screen text is off for this library (Settings).",
        "pending": "On-screen text not read yet (indexing reads it after speech).",
        "no_audio": "",
        "failed": f"Reading on-screen text failed: {words.shown_error or 'unknown error'}.",
        "unknown": "",
    }[words.shown_state]
