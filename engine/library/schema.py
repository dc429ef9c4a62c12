"""Catalog schema and its step-by-step migrations (after rclip's ``db.py``).

``PRAGMA user_version`` holds the schema version. ``MIGRATIONS[n]`` upgrades version n to n+1 inside one
transaction, so an old library is brought forward one step at a time and a crash mid-upgrade rolls back.
A catalog written by a newer release is refused rather than guessed at.

Vector keys: every vector-bearing row (``embeddings`` for the video grain, ``segments``, ``frames``) has an
AUTOINCREMENT id that SQLite never reuses; that id is the vector's key in the HNSW index and the row number
in the float16 vector file, so catalog rows and vectors cannot drift apart silently.
"""

from __future__ import annotations

SCHEMA_VERSION = 4

_V1 = """
CREATE TABLE folders (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    path TEXT NOT NULL UNIQUE,
    added_at REAL NOT NULL
);
CREATE TABLE videos (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    folder_id INTEGER NOT NULL REFERENCES folders(id) ON DELETE CASCADE,
    path TEXT NOT NULL UNIQUE,
    size INTEGER NOT NULL,
    mtime_ns INTEGER NOT NULL,
    fingerprint TEXT NOT NULL,
    duration REAL,
    fps REAL,
    width INTEGER,
    height INTEGER,
    codec TEXT,
    status TEXT NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'indexed', 'failed')),
    error TEXT,
    added_at REAL NOT NULL,
    updated_at REAL NOT NULL
);
CREATE INDEX videos_fingerprint ON videos(fingerprint);
CREATE INDEX videos_folder ON videos(folder_id);
CREATE TABLE models (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    model_id TEXT NOT NULL UNIQUE,
    dim INTEGER NOT NULL,
    generation INTEGER NOT NULL DEFAULT 0,
    created_at REAL NOT NULL
);
CREATE TABLE embeddings (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    video_id INTEGER NOT NULL REFERENCES videos(id) ON DELETE CASCADE,
    model INTEGER NOT NULL REFERENCES models(id) ON DELETE CASCADE,
    fingerprint TEXT NOT NULL,
    sample_every_s REAL NOT NULL,
    n_frames INTEGER NOT NULL,
    n_segments INTEGER NOT NULL,
    created_at REAL NOT NULL,
    UNIQUE (video_id, model)
);
CREATE TABLE segments (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    embedding_id INTEGER NOT NULL REFERENCES embeddings(id) ON DELETE CASCADE,
    idx INTEGER NOT NULL,
    start REAL NOT NULL,
    end REAL NOT NULL
);
CREATE INDEX segments_embedding ON segments(embedding_id);
CREATE TABLE frames (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    embedding_id INTEGER NOT NULL REFERENCES embeddings(id) ON DELETE CASCADE,
    t REAL NOT NULL,
    frame_index INTEGER NOT NULL,
    is_cut INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX frames_embedding ON frames(embedding_id);
CREATE TABLE jobs (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    kind TEXT NOT NULL,
    model_id TEXT,
    status TEXT NOT NULL CHECK (status IN ('running', 'done', 'cancelled', 'failed', 'interrupted')),
    pid INTEGER,
    started_at REAL NOT NULL,
    finished_at REAL,
    total INTEGER NOT NULL DEFAULT 0,
    done INTEGER NOT NULL DEFAULT 0,
    failed INTEGER NOT NULL DEFAULT 0,
    message TEXT
);
"""

# v2: embeddings remember the segment window they were pooled with (so a settings change can be detected
# and re-pooled), and lookups by model get an index.
_V1_TO_V2 = """
ALTER TABLE embeddings ADD COLUMN segment_window_s REAL NOT NULL DEFAULT 4.0;
ALTER TABLE embeddings ADD COLUMN segment_stride_s REAL NOT NULL DEFAULT 2.0;
CREATE INDEX embeddings_model ON embeddings(model);
"""

# v3: a video's status may be 'no_video': a sound file (or a container holding only audio), recorded so the
# catalog, `scenefind status` and the app can say so and the speech stage can find it, never failed. SQLite
# cannot change a CHECK constraint in place, so the table is rebuilt (the runner turns foreign keys off for
# the rebuild, as SQLite's ALTER TABLE documentation prescribes, then checks them before committing).
_V2_TO_V3 = """
CREATE TABLE videos_v3 (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    folder_id INTEGER NOT NULL REFERENCES folders(id) ON DELETE CASCADE,
    path TEXT NOT NULL UNIQUE,
    size INTEGER NOT NULL,
    mtime_ns INTEGER NOT NULL,
    fingerprint TEXT NOT NULL,
    duration REAL,
    fps REAL,
    width INTEGER,
    height INTEGER,
    codec TEXT,
    status TEXT NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'indexed', 'failed', 'no_video')),
    error TEXT,
    added_at REAL NOT NULL,
    updated_at REAL NOT NULL
);
INSERT INTO videos_v3 SELECT id, folder_id, path, size, mtime_ns, fingerprint, duration, fps, width, height, codec,
    status, error, added_at, updated_at FROM videos;
DROP TABLE videos;
ALTER TABLE videos_v3 RENAME TO videos;
CREATE INDEX videos_fingerprint ON videos(fingerprint);
CREATE INDEX videos_folder ON videos(folder_id);
"""

# v4: what is said and what is written on screen. ``stage_results`` records, per video and stage (speech,
# text), which file (fingerprint) and model the stage ran with and how it ended: done, no_audio (a fact, not
# a failure) or failed with the reason. Speech segments keep their words with times as JSON; text lines their
# box, confidence and the span they stay on screen. Both are indexed with FTS5 (external content, kept in
# step by triggers, which also fire for the ON DELETE CASCADE of a removed video); the tokenizer folds case
# and accents and stems English (porter over unicode61 with diacritics removed).
FTS_TOKENIZER = "porter unicode61 remove_diacritics 2"
_V3_TO_V4 = f"""
CREATE TABLE stage_results (
    video_id INTEGER NOT NULL REFERENCES videos(id) ON DELETE CASCADE,
    stage TEXT NOT NULL CHECK (stage IN ('speech', 'text')),
    fingerprint TEXT NOT NULL,
    model TEXT NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('done', 'no_audio', 'failed')),
    error TEXT,
    language TEXT,
    language_probability REAL,
    items INTEGER NOT NULL DEFAULT 0,
    media_s REAL NOT NULL DEFAULT 0,
    elapsed_s REAL NOT NULL DEFAULT 0,
    created_at REAL NOT NULL,
    PRIMARY KEY (video_id, stage)
);
CREATE TABLE speech_segments (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    video_id INTEGER NOT NULL REFERENCES videos(id) ON DELETE CASCADE,
    idx INTEGER NOT NULL,
    start REAL NOT NULL,
    end REAL NOT NULL,
    text TEXT NOT NULL,
    words TEXT NOT NULL
);
CREATE INDEX speech_segments_video ON speech_segments(video_id, start);
CREATE VIRTUAL TABLE speech_fts USING fts5(text, content='speech_segments', content_rowid='id',
    tokenize='{FTS_TOKENIZER}');
CREATE TRIGGER speech_segments_ai AFTER INSERT ON speech_segments BEGIN
    INSERT INTO speech_fts(rowid, text) VALUES (new.id, new.text);
END;
CREATE TRIGGER speech_segments_ad AFTER DELETE ON speech_segments BEGIN
    INSERT INTO speech_fts(speech_fts, rowid, text) VALUES ('delete', old.id, old.text);
END;
CREATE TABLE text_lines (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    video_id INTEGER NOT NULL REFERENCES videos(id) ON DELETE CASCADE,
    start REAL NOT NULL,
    end REAL NOT NULL,
    text TEXT NOT NULL,
    confidence REAL NOT NULL,
    box TEXT NOT NULL,
    frame_width INTEGER NOT NULL,
    frame_height INTEGER NOT NULL
);
CREATE INDEX text_lines_video ON text_lines(video_id, start);
CREATE VIRTUAL TABLE text_fts USING fts5(text, content='text_lines', content_rowid='id',
    tokenize='{FTS_TOKENIZER}');
CREATE TRIGGER text_lines_ai AFTER INSERT ON text_lines BEGIN
    INSERT INTO text_fts(rowid, text) VALUES (new.id, new.text);
END;
CREATE TRIGGER text_lines_ad AFTER DELETE ON text_lines BEGIN
    INSERT INTO text_fts(text_fts, rowid, text) VALUES ('delete', old.id, old.text);
END;
"""

# MIGRATIONS[n]: the script that takes a version-n catalog to version n+1 (0 = empty file).
MIGRATIONS: dict[int, str] = {0: _V1, 1: _V1_TO_V2, 2: _V2_TO_V3, 3: _V3_TO_V4}


def statements(script: str) -> list[str]:
    """A migration script as single statements (a trigger's body holds semicolons of its own)."""
    import sqlite3

    out, pending = [], ""
    for piece in script.split(";"):
        pending += piece + ";"
        if pending.strip(" \n;") and sqlite3.complete_statement(pending):
            out.append(pending.strip())
            pending = ""
    return out
