"""The catalog's models and embeddings: which vectors exist, under which keys, for which videos.

Every vector-bearing row (an embedding for the video grain, its segments, its frames) has a key that is its
vector's label in the HNSW index and its row in the float16 vector file. Every change that adds or removes
vectors bumps the model's ``generation`` in the same transaction; an index saved at another generation is
reconciled against the catalog when it is opened (see ``engine.index.stores``).
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Sequence

import numpy as np

from engine.library.connection import CatalogConnection
from engine.library.rows import (
    CatalogError,
    EmbeddingKeys,
    Grain,
    NewEmbedding,
    RemovedKeys,
    VideoRow,
    json_ids,
    video_row,
)

# Whether video ``v`` has an embedding for a model (id, sample_every_s, window, stride: four parameters) that is
# current: made from the file as it is now, with these sampling settings. What "indexed with this model" means
# everywhere: the pending list, the counts of ``scenefind status``, the library view and the status bar.
UP_TO_DATE = (
    "EXISTS (SELECT 1 FROM embeddings e JOIN models m ON m.id = e.model WHERE e.video_id = v.id"
    " AND m.model_id = ? AND e.fingerprint = v.fingerprint AND abs(e.sample_every_s - ?) < 1e-9"
    " AND abs(e.segment_window_s - ?) < 1e-9 AND abs(e.segment_stride_s - ?) < 1e-9)"
)

_GRAIN_SQL: dict[Grain, str] = {
    "video": "SELECT e.id FROM embeddings e WHERE e.model = ?",
    "segment": "SELECT s.id FROM segments s JOIN embeddings e ON e.id = s.embedding_id WHERE e.model = ?",
    "frame": "SELECT f.id FROM frames f JOIN embeddings e ON e.id = f.embedding_id WHERE e.model = ?",
}


class EmbeddingTables(CatalogConnection):
    """Queries of the ``models``, ``embeddings``, ``segments`` and ``frames`` tables."""

    def ensure_model(self, model_id: str, dim: int) -> int:
        """Row id of a model, registering it on first use; a known id with another width is refused."""
        rows = self._query("SELECT id, dim FROM models WHERE model_id = ?", (model_id,))
        if rows:
            if rows[0]["dim"] != dim:
                raise CatalogError(f"model {model_id} was recorded with dim {rows[0]['dim']}, now reports {dim}")
            return int(rows[0]["id"])
        with self.transaction() as db:
            cur = db.execute(
                "INSERT INTO models (model_id, dim, created_at) VALUES (?, ?, ?)",
                (model_id, dim, time.time()),
            )
            return int(cur.lastrowid or 0)

    def models(self) -> list[dict[str, object]]:
        sql = (
            "SELECT m.model_id, m.dim, m.generation, COUNT(e.id) AS videos FROM models m"
            " LEFT JOIN embeddings e ON e.model = m.id GROUP BY m.id ORDER BY m.model_id"
        )
        return [dict(r) for r in self._query(sql)]

    def model_dim(self, model_id: str) -> int | None:
        rows = self._query("SELECT dim FROM models WHERE model_id = ?", (model_id,))
        return int(rows[0][0]) if rows else None

    def generation(self, model_id: str) -> int:
        rows = self._query("SELECT generation FROM models WHERE model_id = ?", (model_id,))
        return int(rows[0][0]) if rows else 0

    def pending_videos(self, model_id: str, sample_every_s: float, window_s: float, stride_s: float) -> list[VideoRow]:
        """Videos that need (re-)embedding with this model and these sampling settings.

        Failed videos and sound files are skipped until their file changes (which resets them to pending)."""
        sql = (
            f"SELECT v.* FROM videos v WHERE v.status NOT IN ('failed', 'no_video') AND NOT {UP_TO_DATE}"
            " ORDER BY v.path"
        )
        return [video_row(r) for r in self._query(sql, (model_id, sample_every_s, window_s, stride_s))]

    def insert_embedding(
        self, db: sqlite3.Connection, model_id: str, new: NewEmbedding
    ) -> tuple[EmbeddingKeys, RemovedKeys]:
        """Insert one video's rows inside the caller's transaction (``with catalog.transaction() as db``),
        replacing any older embedding of the same video and model. The caller writes the vectors under
        the returned keys and flushes them before the transaction commits."""
        model_row = db.execute("SELECT id FROM models WHERE model_id = ?", (model_id,)).fetchone()
        if model_row is None:
            raise CatalogError(f"model {model_id} is not registered (call ensure_model first)")
        model = int(model_row["id"])
        removed = self._delete_embeddings(db, "video_id = ? AND model = ?", (new.video_id, model))
        cur = db.execute(
            "INSERT INTO embeddings (video_id, model, fingerprint, sample_every_s, segment_window_s,"
            " segment_stride_s, n_frames, n_segments, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                new.video_id,
                model,
                new.fingerprint,
                new.sample_every_s,
                new.segment_window_s,
                new.segment_stride_s,
                len(new.frame_times),
                len(new.segments),
                time.time(),
            ),
        )
        emb = int(cur.lastrowid or 0)
        seg_keys = [
            int(
                db.execute(
                    "INSERT INTO segments (embedding_id, idx, start, end) VALUES (?, ?, ?, ?)", (emb, i, s, e)
                ).lastrowid
                or 0
            )
            for i, (s, e) in enumerate(new.segments)
        ]
        frame_keys = [
            int(
                db.execute(
                    "INSERT INTO frames (embedding_id, t, frame_index, is_cut) VALUES (?, ?, ?, ?)",
                    (emb, t, idx, int(cut)),
                ).lastrowid
                or 0
            )
            for t, idx, cut in zip(new.frame_times, new.frame_indices, new.frame_is_cut, strict=True)
        ]
        db.execute(
            "UPDATE videos SET status='indexed', error=NULL, updated_at=? WHERE id=?",
            (time.time(), new.video_id),
        )
        db.execute("UPDATE models SET generation = generation + 1 WHERE id = ?", (model,))
        return EmbeddingKeys(emb, seg_keys, frame_keys), removed

    def _delete_embeddings(self, db: sqlite3.Connection, where: str, params: Sequence[object]) -> RemovedKeys:
        """Delete embeddings matching ``where`` (with their segments and frames) and bump generations."""
        removed = RemovedKeys()
        rows = db.execute(
            f"SELECT e.id, e.model, m.model_id FROM embeddings e JOIN models m ON m.id = e.model WHERE {where}",
            params,
        ).fetchall()
        for row in rows:
            removed.add(row["model_id"], "video", [row["id"]])
            removed.add(
                row["model_id"],
                "segment",
                [r[0] for r in db.execute("SELECT id FROM segments WHERE embedding_id = ?", (row["id"],))],
            )
            removed.add(
                row["model_id"],
                "frame",
                [r[0] for r in db.execute("SELECT id FROM frames WHERE embedding_id = ?", (row["id"],))],
            )
            db.execute("DELETE FROM embeddings WHERE id = ?", (row["id"],))
        for model in {row["model"] for row in rows}:
            db.execute("UPDATE models SET generation = generation + 1 WHERE id = ?", (model,))
        return removed

    def live_keys(self, model_id: str, grain: Grain) -> np.ndarray:
        """Every key of this grain the catalog holds for the model (what the index must contain)."""
        model = self._query("SELECT id FROM models WHERE model_id = ?", (model_id,))
        if not model:
            return np.zeros(0, dtype=np.int64)
        rows = self._query(_GRAIN_SQL[grain], (model[0]["id"],))
        return np.array(sorted(r[0] for r in rows), dtype=np.int64)

    def embedding_for(self, video_id: int, model_id: str) -> int | None:
        rows = self._query(
            "SELECT e.id FROM embeddings e JOIN models m ON m.id = e.model WHERE e.video_id = ? AND m.model_id = ?",
            (video_id, model_id),
        )
        return int(rows[0][0]) if rows else None

    def frames_of(self, embedding_id: int) -> list[sqlite3.Row]:
        return self._query(
            "SELECT id, t, frame_index, is_cut FROM frames WHERE embedding_id = ? ORDER BY t", (embedding_id,)
        )

    def segments_of(self, embedding_id: int) -> list[sqlite3.Row]:
        return self._query(
            "SELECT id, idx, start, end FROM segments WHERE embedding_id = ? ORDER BY idx", (embedding_id,)
        )

    def videos_for_keys(self, model_id: str, grain: Grain, keys: Sequence[int]) -> dict[int, int]:
        """Map vector keys of a grain to video ids; keys no longer in the catalog are absent."""
        if not len(keys):
            return {}
        ids = json_ids(keys)
        sql = {
            "video": "SELECT e.id, e.video_id FROM embeddings e WHERE e.id IN (SELECT value FROM json_each(?))",
            "segment": "SELECT s.id, e.video_id FROM segments s JOIN embeddings e ON e.id = s.embedding_id"
            " WHERE s.id IN (SELECT value FROM json_each(?))",
            "frame": "SELECT f.id, e.video_id FROM frames f JOIN embeddings e ON e.id = f.embedding_id"
            " WHERE f.id IN (SELECT value FROM json_each(?))",
        }[grain]
        return {int(r[0]): int(r[1]) for r in self._query(sql, (ids,))}
