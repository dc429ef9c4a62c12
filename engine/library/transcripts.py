"""The catalog's speech and on-screen text: stage results, transcript segments, text lines and their FTS5 indexes.

A stage (speech, text) finds its work here (``stage_pending``), commits each video in one transaction
(``commit_speech`` / ``commit_text``: the old rows go, the new rows and the result row come in together), and
records videos it could not do (``record_stage``). A SIGKILL therefore loses at most the video in flight: its
rows are either all there, with a result row saying so, or absent and still pending. The full-text queries
(``fts_rows``) are plain SQL over the FTS5 tables; ranking and moments are ``engine.search.lexical``'s.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

from engine.library.connection import CatalogConnection
from engine.library.rows import VideoRow, json_ids, video_row

Stage = Literal["speech", "text"]
STAGES: tuple[Stage, ...] = ("speech", "text")
Channel = Literal["speech", "text"]
_TABLES: dict[Channel, tuple[str, str]] = {
    "speech": ("speech_segments", "speech_fts"),
    "text": ("text_lines", "text_fts"),
}


@dataclass(frozen=True)
class SpeechRow:
    """One transcript segment to store: times from its words, text = the words joined by spaces."""

    start: float
    end: float
    text: str
    words_json: str  # [[start, end, word, probability], ...]


@dataclass(frozen=True)
class TextRow:
    """One line of on-screen text and the span it stays visible; ``box`` is ``[x0, y0, x1, y1]`` in pixels."""

    start: float
    end: float
    text: str
    confidence: float
    box: tuple[float, float, float, float]
    frame_width: int
    frame_height: int


@dataclass(frozen=True)
class StageOutcome:
    """How a stage ended for one video (what ``scenefind status`` and the Library show)."""

    status: Literal["done", "no_audio", "failed"]
    error: str | None = None
    language: str | None = None
    language_probability: float | None = None
    items: int = 0  # segments or lines stored
    media_s: float = 0.0  # seconds of sound (speech) or of video (text) the stage went through
    elapsed_s: float = 0.0


STAGE_STATES = ("done", "no_audio", "failed", "pending")  # a video's state in a stage (``stage_folder_states``)


def count_states(states: Mapping[str, str]) -> dict[str, int]:
    """``{done, no_audio, failed, pending}``: how many of ``states`` (video path -> status) are in each."""
    counts = dict.fromkeys(STAGE_STATES, 0)
    for status in states.values():
        counts[status] = counts.get(status, 0) + 1
    return counts


class TranscriptTables(CatalogConnection):
    """Queries of ``stage_results``, ``speech_segments``, ``text_lines`` and their FTS5 tables."""

    # -- work --------------------------------------------------------------------------------------------

    def stage_pending(self, stage: Stage, model: str) -> list[VideoRow]:
        """Videos this stage has not done for their current file with this model, in path order.

        A ``no_audio`` result holds whatever the model (the file has no sound); a failed one is retried when
        the file or the model changes, or after ``retry_failed_stages``. The text stage reads pictures, so it
        skips sound files (status 'no_video') and files whose pictures failed: it would only fail again on them,
        for the reason the picture stage already gives."""
        pictures = " AND v.status NOT IN ('no_video', 'failed')" if stage == "text" else ""
        sql = (
            f"SELECT v.* FROM videos v WHERE v.fingerprint != ''{pictures} AND NOT EXISTS ("
            " SELECT 1 FROM stage_results r"
            " WHERE r.video_id = v.id AND r.stage = ? AND r.fingerprint = v.fingerprint"
            " AND (r.model = ? OR r.status = 'no_audio')) ORDER BY v.path"
        )
        return [video_row(r) for r in self._query(sql, (stage, model))]

    def record_stage(self, video_id: int, stage: Stage, fingerprint: str, model: str, outcome: StageOutcome) -> None:
        """Record a video's outcome without rows (no audio, failed): its old rows of this stage go."""
        with self.transaction() as db:
            table = _TABLES[stage][0]
            db.execute(f"DELETE FROM {table} WHERE video_id = ?", (video_id,))
            _upsert_result(db, video_id, stage, fingerprint, model, outcome)

    def commit_speech(
        self, video_id: int, fingerprint: str, model: str, rows: Sequence[SpeechRow], outcome: StageOutcome
    ) -> None:
        """Replace a video's transcript and record the result, in one transaction."""
        with self.transaction() as db:
            db.execute("DELETE FROM speech_segments WHERE video_id = ?", (video_id,))
            db.executemany(
                "INSERT INTO speech_segments (video_id, idx, start, end, text, words) VALUES (?, ?, ?, ?, ?, ?)",
                [(video_id, i, r.start, r.end, r.text, r.words_json) for i, r in enumerate(rows)],
            )
            _upsert_result(db, video_id, "speech", fingerprint, model, outcome)

    def commit_text(
        self, video_id: int, fingerprint: str, model: str, rows: Sequence[TextRow], outcome: StageOutcome
    ) -> None:
        """Replace a video's text lines and record the result, in one transaction."""
        import json

        with self.transaction() as db:
            db.execute("DELETE FROM text_lines WHERE video_id = ?", (video_id,))
            db.executemany(
                "INSERT INTO text_lines (video_id, start, end, text, confidence, box, frame_width, frame_height)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                [
                    (video_id, r.start, r.end, r.text, r.confidence, json.dumps([round(v, 1) for v in r.box]),
                     r.frame_width, r.frame_height)
                    for r in rows
                ],
            )  # fmt: skip
            _upsert_result(db, video_id, "text", fingerprint, model, outcome)

    def forget_stages(self, db: sqlite3.Connection, video_id: int) -> None:
        """Inside the caller's transaction: drop a video's transcript, text and results (its file changed)."""
        for table in ("speech_segments", "text_lines", "stage_results"):
            db.execute(f"DELETE FROM {table} WHERE video_id = ?", (video_id,))

    def retry_failed_stages(self) -> int:
        """Make videos a stage failed on pending for it again."""
        with self.transaction() as db:
            return db.execute("DELETE FROM stage_results WHERE status = 'failed'").rowcount

    # -- reading -----------------------------------------------------------------------------------------

    def stage_result(self, video_id: int, stage: Stage) -> sqlite3.Row | None:
        rows = self._query("SELECT * FROM stage_results WHERE video_id = ? AND stage = ?", (video_id, stage))
        return rows[0] if rows else None

    def stage_counts(self, stage: Stage, model: str) -> dict[str, int]:
        """``{done, no_audio, failed, pending}`` over the library's videos, for this stage and model."""
        totals = dict.fromkeys(STAGE_STATES, 0)
        for counts in self.stage_folder_counts(stage, model).values():
            for key, n in counts.items():
                totals[key] += n
        return totals

    def stage_folder_states(self, stage: Stage, model: str) -> dict[str, dict[str, str]]:
        """Per folder (by its path; every folder, ``{}`` when it has none): ``{video path: status}`` of the videos
        this stage has a state for with this model, status ``done``, ``no_audio`` or ``failed`` (its result for
        the current file) or ``pending``. Videos the stage does not apply to (the text stage on sound files and
        picture failures) are absent. The counts are these states summed (``count_states``), so a folder's
        counts and its videos' states cannot disagree."""
        folders = {int(r[0]): str(r[1]) for r in self._query("SELECT id, path FROM folders")}
        out: dict[str, dict[str, str]] = {path: {} for path in folders.values()}
        sql = (
            "SELECT v.folder_id, v.path, r.status FROM stage_results r JOIN videos v ON v.id = r.video_id"
            " WHERE r.stage = ? AND r.fingerprint = v.fingerprint AND (r.model = ? OR r.status = 'no_audio')"
        )
        for folder_id, path, status in self._query(sql, (stage, model)):
            out[folders[int(folder_id)]][str(path)] = str(status)  # a video's folder is a row (the key cascades)
        for video in self.stage_pending(stage, model):  # no result for the current file: never both
            out[folders[int(video["folder_id"])]][str(video["path"])] = "pending"
        return out

    def stage_folder_counts(self, stage: Stage, model: str) -> dict[str, dict[str, int]]:
        """``stage_counts`` per folder, by its path (every folder, with zeros): the Library's folder rows say
        how far speech and screen text have got in each, as they say it for the pictures."""
        return {folder: count_states(videos) for folder, videos in self.stage_folder_states(stage, model).items()}

    def stage_done(self, stage: Stage) -> int:
        """How many videos this stage has done, whatever the model (0: nothing to search in its channel yet)."""
        return int(
            self._query("SELECT COUNT(*) FROM stage_results WHERE stage = ? AND status = 'done'", (stage,))[0][0]
        )

    def stage_failures(self, stage: Stage) -> list[tuple[str, str]]:
        """(path, reason) of the videos this stage failed on."""
        sql = (
            "SELECT v.path, r.error FROM stage_results r JOIN videos v ON v.id = r.video_id"
            " WHERE r.stage = ? AND r.status = 'failed' ORDER BY v.path"
        )
        return [(r[0], r[1] or "") for r in self._query(sql, (stage,))]

    def speech_segments_of(self, video_id: int) -> list[sqlite3.Row]:
        return self._query(
            "SELECT id, idx, start, end, text, words FROM speech_segments WHERE video_id = ? ORDER BY start, idx",
            (video_id,),
        )

    def text_lines_of(self, video_id: int) -> list[sqlite3.Row]:
        return self._query(
            "SELECT id, start, end, text, confidence, box, frame_width, frame_height FROM text_lines"
            " WHERE video_id = ? ORDER BY start, id",
            (video_id,),
        )

    def fts_rows(
        self, channel: Channel, match: str, *, limit: int, video_ids: Sequence[int] | None = None, cap: int = 200
    ) -> list[sqlite3.Row]:
        """Rows matching an FTS5 expression, best BM25 first: ``id, video_id, start, end, text, bm25``, plus
        ``words`` for speech and ``confidence, box, frame_height`` for text.

        BM25 costs FTS5 far more per row than finding the row (it reads every phrase's positions), so an
        expression matching more than ``cap`` rows (common words in a 10,000-hour library) is not ranked by
        it: its newest ``3 * limit`` rows come back with a BM25 of 0, in the doclist's own (rowid) order, for
        the caller to rank by its own relevance. With ``video_ids`` every match in those videos is ranked."""
        table, fts = _TABLES[channel]
        extra = ", t.words" if channel == "speech" else ", t.confidence, t.box, t.frame_height"
        inner = f"SELECT rowid AS rid, bm25({fts}) AS score FROM {fts} WHERE {fts} MATCH ?"
        params: list[object] = [match]
        where = ""
        if video_ids is not None:
            where = " WHERE t.video_id IN (SELECT value FROM json_each(?))"
            params.append(json_ids(video_ids))
        elif self.fts_count(channel, match, cap=cap) > cap:
            inner = f"SELECT rowid AS rid, 0.0 AS score FROM {fts} WHERE {fts} MATCH ? ORDER BY rowid DESC LIMIT ?"
            params.append(3 * limit)
        sql = (
            f"SELECT t.id, t.video_id, t.start, t.end, t.text, m.score AS bm25{extra} FROM ({inner}) m"
            f" JOIN {table} t ON t.id = m.rid{where} ORDER BY m.score, t.id DESC LIMIT ?"
        )
        return self._query(sql, [*params, limit if video_ids is not None or "bm25" in inner else 3 * limit])

    def fts_videos(self, channel: Channel, match: str) -> set[int]:
        """Every video with a row matching the expression (no ranking, no cap: exclusion must be complete)."""
        table, fts = _TABLES[channel]
        sql = f"SELECT DISTINCT t.video_id FROM {fts} JOIN {table} t ON t.id = {fts}.rowid WHERE {fts} MATCH ?"
        return {int(r[0]) for r in self._query(sql, (match,))}

    def fts_spans(self, channel: Channel, match: str) -> list[tuple[int, float, float]]:
        """``(video id, start, end)`` of every row matching the expression (no cap: exclusion must be complete)."""
        table, fts = _TABLES[channel]
        sql = f"SELECT t.video_id, t.start, t.end FROM {fts} JOIN {table} t ON t.id = {fts}.rowid WHERE {fts} MATCH ?"
        return [(int(r[0]), float(r[1]), float(r[2])) for r in self._query(sql, (match,))]

    def fts_count(self, channel: Channel, match: str, *, cap: int | None = None) -> int:
        """How many rows match, counting no further than ``cap + 1`` when given (bounded work)."""
        fts = _TABLES[channel][1]
        limit = "" if cap is None else f" LIMIT {int(cap) + 1}"
        sql = f"SELECT COUNT(*) FROM (SELECT rowid FROM {fts} WHERE {fts} MATCH ?{limit})"
        return int(self._query(sql, (match,))[0][0])

    def fts_size(self, channel: Channel) -> int:
        """Rows in a channel's index."""
        table = _TABLES[channel][0]
        return int(self._query(f"SELECT COUNT(*) FROM {table}")[0][0])


def _upsert_result(
    db: sqlite3.Connection, video_id: int, stage: Stage, fingerprint: str, model: str, o: StageOutcome
) -> None:
    db.execute(
        "INSERT OR REPLACE INTO stage_results (video_id, stage, fingerprint, model, status, error, language,"
        " language_probability, items, media_s, elapsed_s, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (
            video_id, stage, fingerprint, model, o.status, o.error, o.language, o.language_probability, o.items,
            o.media_s, o.elapsed_s, time.time(),
        ),
    )  # fmt: skip
