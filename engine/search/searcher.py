"""Answer a ``Query``: candidates from the video and segment graphs, exact multi-grained re-scoring, moments.

1. Candidates: the union of the nearest videos and segments (an approximate search each,
   ``engine.search.candidates``), so a video whose one relevant moment is drowned in its average is still found
   through that moment's segments. With restrictive filters the allowed videos are scored exactly instead.
2. Re-scoring from the stored float16 vectors: fusion of coarse, segment and fine similarity
   (``engine.search.scoring``); with a concept head, the same three on the sparse embeddings of the codes
   stored at index time, half and half (losses.md §2's four-way S); optionally EMCL re-ranking of the coarse part.
3. A smoothed similarity curve per video, moment proposals from it (``engine.search.moments``). The curve and the
   fine similarity follow each frame's context vector where the model has a temporal head (its head over the
   window around the frame), so they tell "moves left" from "moves right" as the model does; else the frame.
4. Relevance 0-100 against one null for the whole search (``engine.search.calibration``): unrelated captions on
   a fixed sample of the library for a text query, the query's own scores on that sample for a visual one. So
   relevance rises with the score and the list follows the model's order. Then exclusions and the cutoff.
5. For a text query, what is said and shown joins the picture (``engine.search.lexical`` finds the words,
   ``engine.search.channels`` fuses the three channels' relevance into one): the videos that say or show the
   words are scored by the picture too, and the picture is judged over each spoken or shown span. A query
   restricted to one words channel (``Query.channel``) needs no picture model at all. ``--exclude`` is judged
   in every channel searched: seen in the picture, said, or shown.
"""

from __future__ import annotations

import contextlib
import random
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from engine.index.layout import layout_for
from engine.index.stores import CONTEXT, ModelStores, legacy_files
from engine.library.library import Library, LibraryBusy
from engine.media.decode import MediaError
from engine.models.base import ConceptBank, Encoder, concepts_of, words_of
from engine.models.sparse import dense_codes, top_codes
from engine.search import calibration
from engine.search.candidates import PER_GRAIN, candidate_videos
from engine.search.channels import DEFAULT_FUSION, Fusion, fuse_moments, fuse_videos
from engine.search.filters import allowed_videos
from engine.search.lexical import LexicalQueryError
from engine.search.moments import propose
from engine.search.query import Query
from engine.search.query_vectors import QueryError, clean_text, exclude_terms, exclude_vectors, query_vector
from engine.search.ranking import arrange
from engine.search.results import Curve, MomentHit, SearchResults, VideoHit, Why
from engine.search.scoring import (
    FusionWeights,
    fine_similarity,
    fuse,
    smooth_curve,
    sparse_codes,
    sparse_embed,
    sparse_embed_top,
)
from engine.search.word_scores import (
    VideoFrames,
    WindowCache,
    WordRows,
    head_windows,
    head_windows_of,
    windows_similarity,
)
from engine.search.words import WordsEvidence, search_words, video_info, words_evidence

WINDOW_BATCH = 2048  # windows read through the head per call for the word score (bounds one call's memory)
EXACT_LIMIT = 2000  # with filters allowing at most this many videos, score them all exactly
NULL_SAMPLE = 32  # videos of the library every null is computed on
EXCLUDE_RELEVANCE = 50.0  # a hit on which an excluded term reaches this relevance is dropped
CURVE_SIGMA_S = 1.0  # the heatmap: smooth enough to read at a glance
MOMENT_SIGMA_S = 0.5  # proposals: light smoothing, so a moment's edges stay where the content changes


class SearchError(RuntimeError):
    """The query cannot be answered (nothing indexed with this model, bad query); says what to do."""


class NotIndexed(SearchError):
    """Nothing is indexed with ``model_id`` yet: the command line's advice as the message, the model for a GUI
    that says it in its own words."""

    def __init__(self, message: str, model_id: str = "") -> None:
        super().__init__(message)
        self.model_id = model_id


Code = tuple[np.ndarray, np.ndarray]  # a stored sparse code: concept ids (N, k), weights (N, k)


@dataclass
class _Video:
    """One candidate's stored data."""

    row: dict[str, object]
    times: np.ndarray
    cuts: np.ndarray
    frames: np.ndarray  # (F, D)
    segments: np.ndarray  # (S, D)
    vector: np.ndarray  # (D,)
    context: np.ndarray | None = None  # (F, D) the head's view around each frame (head models)
    spans: list[tuple[float, float]] | None = None  # each segment's (start, end), as indexed
    embedding: int = -1  # the catalog's embedding row these vectors are (a re-index makes a new one)
    codes: dict[str, Code] | None = None  # stored sparse codes by store ("video", "segment", "frame", "context")
    _sparse: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None

    @property
    def duration(self) -> float:
        d = self.row.get("duration")
        return float(d) if d else float(self.times[-1]) if len(self.times) else 0.0

    @property
    def per_frame(self) -> np.ndarray:
        """What the curve and the fine similarity follow: context vectors where stored, else the frames."""
        return self.context if self.context is not None else self.frames

    def code(self, name: str, vectors: np.ndarray, bank: ConceptBank) -> Code:
        """The stored codes of ``vectors`` (store ``name``); rows stored without one are coded now."""
        stored = (self.codes or {}).get(name)
        if stored is None or stored[0].shape != (len(vectors), bank.k):
            return top_codes(vectors, bank)
        ids, weights = stored[0].copy(), stored[1].copy()
        missing = weights.sum(axis=1) < 0.5
        if missing.any():
            ids[missing], weights[missing] = top_codes(vectors[missing], bank)
        return ids, weights

    def sparse(self, bank: ConceptBank) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Sparse embeddings x^s of the video (D,), its segments (S, D) and per-frame vectors (F, D)."""
        if self._sparse is None:
            frames = CONTEXT if self.context is not None else "frame"
            parts = [("video", self.vector[None]), ("segment", self.segments), (frames, self.per_frame)]
            embedded = [sparse_embed_top(*self.code(name, x, bank), bank) for name, x in parts]
            self._sparse = (embedded[0][0], embedded[1], embedded[2])
        return self._sparse


def _fused(
    queries: np.ndarray, v: _Video, weights: FusionWeights, bank: ConceptBank | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Fused scores of several query vectors (Q, D) on one video, and their per-frame sims (Q, F).

    With a concept head, the score is ½(dense + sparse): the same fusion of coarse, segment and fine similarity
    on the dense vectors and on the sparse embeddings of their stored codes. With the segment weight at 0 this is
    losses.md §2's ``S = ¼(s_c + s_f + s_c^s + s_f^s)``; the segment grain joins both halves alike."""
    frame_sims = queries @ v.per_frame.T
    segment = (queries @ v.segments.T).max(axis=1) if len(v.segments) else frame_sims.max(axis=1)
    dense = fuse(queries @ v.vector, segment, fine_similarity(frame_sims), weights)
    if bank is None:
        return dense, frame_sims
    qs = sparse_embed(sparse_codes(queries, bank), bank)
    vs, ss, fs = v.sparse(bank)
    sparse_frames = qs @ fs.T
    sparse_segment = (qs @ ss.T).max(axis=1) if len(ss) else sparse_frames.max(axis=1)
    sparse = fuse(qs @ vs, sparse_segment, fine_similarity(sparse_frames), weights)
    return 0.5 * (dense + sparse), frame_sims


def shared_concepts(
    query: np.ndarray, frame: np.ndarray, bank: ConceptBank, limit: int = 3, frame_code: Code | None = None
) -> tuple[str, ...]:
    """Words of the concepts active in both the query and the best frame, strongest first (the "why").

    ``frame_code`` is the frame's stored code ((1, k) ids and weights), when the index has one."""
    code = frame_code if frame_code is not None else top_codes(frame[None], bank)
    both = sparse_codes(query[None], bank)[0] * dense_codes(code[0], code[1], bank.n_concepts)[0]
    order = [int(i) for i in np.argsort(-both) if both[i] > 1e-3]
    return tuple(bank.words[i] for i in order[:limit])


def _frame_why(q: np.ndarray, v: _Video, index: int, bank: ConceptBank) -> tuple[str, ...]:
    """The "why" at one frame: the concepts the query shares with that frame's per-frame vector (stored code)."""
    name = CONTEXT if v.context is not None else "frame"
    ids, weights = v.code(name, v.per_frame, bank)
    return shared_concepts(q, v.per_frame[index], bank, frame_code=(ids[index : index + 1], weights[index : index + 1]))


class Searcher:
    """Answers queries against one library with one encoder; keeps the indexes open between queries."""

    def __init__(
        self,
        library: Library,
        encoder: Encoder,
        *,
        weights: FusionWeights | None = None,
        fusion: Fusion = DEFAULT_FUSION,
    ) -> None:
        self.library = library
        self.encoder = encoder
        self.weights = weights or FusionWeights()
        self.fusion = fusion  # how the channels' relevance combines (engine.search.channels)
        self._stores: ModelStores | None = None
        self._curves: dict[int, Curve] = {}
        self._text_null: tuple[tuple[int, ...], calibration.Null] | None = None  # (sample's keys, its null)
        # What one search's exclusions and spans left, per channel (reset by each search):
        self._picture_excluded: set[int] = set()  # videos an excluded term is seen in (videos mode)
        self._picture_excluded_spans: set[tuple[int, float, float]] = set()  # words spans it is seen in (moments)
        self._span_relevance: dict[tuple[int, float, float], float] = {}  # the picture's relevance over words spans
        self.background = calibration.Background(encoder, library.paths.index_dir(encoder.model_id))
        # A model trained with the word-frame score scores text with it too (the ``word_scores`` setting).
        self.words = words_of(encoder) if library.settings.word_scores else None
        self._background_words: WordRows | None = None
        self._windows = WindowCache()  # each video's windows through the head, for the word score

    def stores(self) -> ModelStores:
        if self._stores is None:
            catalog, model_id = self.library.catalog, self.encoder.model_id
            if not len(catalog.live_keys(model_id, "video")):
                raise NotIndexed(
                    f"nothing is indexed with model {model_id} yet; run `scenefind index` (or pick the model "
                    "the library was indexed with)",
                    model_id,
                )
            folder = self.library.paths.index_dir(model_id)
            settings, layout = self.library.settings, layout_for(self.encoder)
            if legacy_files(folder):  # an index of an earlier release: upgrade it on disk once, when no one writes
                with contextlib.suppress(LibraryBusy), self.library.writing():
                    ModelStores.open(folder, catalog, model_id, self.encoder.dim, settings, layout=layout).close()
            self._stores = ModelStores.open(
                folder, catalog, model_id, self.encoder.dim, settings, readonly=True, layout=layout
            )
        return self._stores

    def close(self) -> None:
        if self._stores is not None:
            self._stores.close()
            self._stores = None

    # -- public API -------------------------------------------------------------------------------------

    def search(self, query: Query) -> SearchResults:
        started = time.perf_counter()
        if query.k < 1:
            raise SearchError("k must be at least 1")
        try:
            kind = query.kind()
        except ValueError as exc:
            raise SearchError(str(exc)) from exc
        self._picture_excluded, self._picture_excluded_spans, self._span_relevance = set(), set(), {}
        self._curves = {}
        if query.channel is not None:  # words only: no picture model, no picture index needed
            try:
                return search_words(self.library.catalog, query)
            except LexicalQueryError as exc:
                raise SearchError(str(exc)) from exc
        try:
            stores = self.stores()
            q = query_vector(query, self.encoder, self.library.catalog, stores, self.library.settings.sample_every_s)
            excluded = exclude_vectors(query, self.encoder)
            # moments follow the per-frame curve alone, which the word score leaves as it is
            words = self._query_words(query, text=kind == "text") if query.mode != "moments" else None
        except (QueryError, MediaError, ValueError) as exc:
            raise SearchError(str(exc)) from exc
        catalog = self.library.catalog
        allowed = allowed_videos(catalog, query.filters)
        moments = query.mode == "moments"
        evidence = words_evidence(catalog, query, ("speech", "text"), allowed, strict=False) if kind == "text" else None
        said = evidence.moments if evidence is not None else []
        ids = set(self._candidates(q, query, allowed)) | {m.video_id for m in said}
        videos = [v for vid in sorted(ids) if (v := self._load(vid)) is not None]
        if query.moment is not None:  # "more like this" should not return the moment itself first
            videos = [v for v in videos if moments or v.row["id"] != query.moment.video_id]
        spans: dict[int, list[tuple[float, float]]] = {}
        for m in said if moments else ():
            spans.setdefault(m.video_id, []).append((m.start, m.end))
        scored = self._score(q, excluded, videos, text=kind == "text", moments=moments, spans=spans, words=words)
        if self.library.settings.emcl_rerank and not moments and kind == "text":
            scored = self._emcl_rerank(q, videos, scored)
        video_hits = [h for h in scored if isinstance(h, VideoHit)]
        moment_hits = [h for h in scored if isinstance(h, MomentHit)]
        if evidence is not None:
            video_hits, moment_hits = self._fuse(evidence, video_hits, moment_hits, moments_mode=moments)
        cutoff = (
            calibration.default_cutoff(self.encoder.model_id) if query.min_relevance is None else query.min_relevance
        )
        results = arrange(query, video_hits, moment_hits, cutoff)
        keep = {h.video_id for h in results.videos} | {h.video_id for h in results.moments}
        results.curves = {vid: c for vid, c in self._curves.items() if vid in keep}
        results.elapsed_ms = (time.perf_counter() - started) * 1000
        return results

    def _fuse(
        self, words: WordsEvidence, videos: list[VideoHit], moments: list[MomentHit], *, moments_mode: bool = False
    ) -> tuple[list[VideoHit], list[MomentHit]]:
        """The picture's hits and the words' candidates in one ranking (``engine.search.channels``), each side
        less what the other side's exclusions rule out."""
        catalog = self.library.catalog
        if not moments_mode:
            said = [m for m in words.moments if m.video_id not in self._picture_excluded]
            videos = [h for h in videos if words.keeps(h.video_id)]
            return fuse_videos(videos, said, video_info(catalog, {m.video_id for m in said}), self.fusion), []
        moments = [h for h in moments if words.keeps(h.video_id, h.start, h.end)]
        said = [m for m in words.moments if (m.video_id, m.start, m.end) not in self._picture_excluded_spans]

        def seen(vid: int, start: float, end: float) -> float | None:
            return self._span_relevance.get((vid, start, end))

        return [], fuse_moments(moments, said, video_info(catalog, {m.video_id for m in said}), seen, self.fusion)

    def search_text(self, text: str, k: int = 10, *, min_relevance: float | None = 0.0) -> list[VideoHit]:
        """Convenience for scripts and tests: text to videos."""
        return self.search(Query(text=text, k=k, min_relevance=min_relevance)).videos

    # -- steps ------------------------------------------------------------------------------------------

    def _candidates(self, q: np.ndarray, query: Query, allowed: set[int] | None) -> list[int]:
        if allowed is not None and len(allowed) <= EXACT_LIMIT:
            return sorted(allowed)
        stores, catalog, model_id = self.stores(), self.library.catalog, self.encoder.model_id
        graphs = {grain: stores.grains[grain].index for grain in PER_GRAIN}  # type: ignore[index]

        def videos_of(grain: str, keys: list[int]) -> Iterable[int]:
            return catalog.videos_for_keys(model_id, grain, keys).values()  # type: ignore[arg-type]

        return candidate_videos(q, graphs, videos_of, query.k, allowed)  # type: ignore[arg-type]

    def _load(self, video_id: int) -> _Video | None:
        catalog, stores = self.library.catalog, self.stores()
        row = catalog.video(video_id)
        embedding = catalog.embedding_for(video_id, self.encoder.model_id)
        if row is None or embedding is None:
            return None
        frames = catalog.frames_of(embedding)
        if not frames:
            return None
        segments = catalog.segments_of(embedding)
        frame_keys = np.array([f["id"] for f in frames])
        segment_keys = np.array([s["id"] for s in segments], dtype=np.int64)
        keys = {"video": np.array([embedding]), "segment": segment_keys, "frame": frame_keys, CONTEXT: frame_keys}
        codes = {name: store.read(keys[name]) for name, store in stores.codes.items() if len(keys[name])}
        return _Video(
            row=dict(row),
            times=np.array([f["t"] for f in frames], dtype=np.float64),
            cuts=np.array([bool(f["is_cut"]) for f in frames]),
            frames=stores.grains["frame"].vectors.read(frame_keys),
            segments=stores.grains["segment"].vectors.read(segment_keys)
            if segments
            else np.zeros((0, self.encoder.dim), np.float32),
            vector=stores.grains["video"].vectors.read(keys["video"])[0],
            context=stores.context.read(frame_keys) if stores.context is not None else None,
            codes=codes,
            spans=[(float(s["start"]), float(s["end"])) for s in segments],
            embedding=int(embedding),
        )

    def _sample_keys(self) -> tuple[int, ...]:
        """The video keys every null is computed on: up to ``NULL_SAMPLE`` of the library, drawn with a fixed
        seed, so the same library state gives the same relevance whatever the query or ``k``."""
        keys = self.library.catalog.live_keys(self.encoder.model_id, "video").tolist()
        return tuple(sorted(random.Random(0).sample(keys, min(NULL_SAMPLE, len(keys)))))

    def _sample(self, keys: Sequence[int]) -> list[_Video]:
        by_key = self.library.catalog.videos_for_keys(self.encoder.model_id, "video", keys)
        return [v for key in keys if key in by_key and (v := self._load(by_key[key])) is not None]

    def _visual_null(self, q: np.ndarray) -> calibration.Null:
        """A visual query's null: its own fused scores and frame similarities on the library's sample."""
        fused: list[float] = []
        frame_sims: list[np.ndarray] = []
        for v in self._sample(self._sample_keys()):
            s, fs = _fused(q[None], v, self.weights, concepts_of(self.encoder))
            fused.append(float(s[0]))
            frame_sims.append(fs[0])
        frames = np.concatenate(frame_sims) if frame_sims else np.zeros(1)
        return calibration.sample_null(np.array(fused or [0.0]), frames)

    def text_null(self) -> calibration.Null:
        """The null of text queries and excluded terms: the background captions on the library's sample. It does not
        depend on the query, so it is computed once per library state and kept."""
        keys = self._sample_keys()
        if self._text_null is None or self._text_null[0] != keys:
            bg, bank = self.background.vectors(), concepts_of(self.encoder)
            fused, curves = [], []
            sample, words = self._sample(keys), self._words_of_background()
            self._read_windows(sample)
            for v in sample:
                s, fs = self._scores(bg, v, bank, words)
                fused.append(s)
                curves.append(smooth_curve(v.times, fs, CURVE_SIGMA_S))
            self._text_null = (keys, calibration.background_null(fused, curves))
        return self._text_null[1]

    def _score(
        self,
        q: np.ndarray,
        excluded: np.ndarray,
        videos: list[_Video],
        *,
        text: bool,
        moments: bool,
        spans: Mapping[int, list[tuple[float, float]]] | None = None,
        words: WordRows | None = None,
    ) -> list[VideoHit | MomentHit]:
        """Hits for every candidate; fills ``self._curves``. Text queries (and excluded terms, always text)
        are judged against :meth:`text_null`; visual queries against their own scores on the library's sample.

        ``spans`` (video id -> spans of spoken or shown words) are judged like moments: the picture's relevance
        over each goes to ``self._span_relevance``, or the span to ``self._picture_excluded_spans`` when an
        excluded term is seen there; a video an excluded term is seen in goes to ``self._picture_excluded``.
        ``words`` are the text rows' words where the model scores words (:meth:`_scores`)."""
        self._curves = {}
        spans = spans or {}
        n_ex = len(excluded)
        if text:
            null = words_null = self.text_null()
        else:
            null, words_null = self._visual_null(q), self.text_null() if n_ex else None
        queries = np.vstack([q[None], excluded]).astype(np.float32)
        hits: list[VideoHit | MomentHit] = []
        bank = concepts_of(self.encoder)
        if words is not None:
            self._read_windows(videos)
        for v in videos:
            vid = int(v.row["id"])  # type: ignore[call-overload]
            fused, frame_sims = self._scores(queries, v, bank, words)
            curves = smooth_curve(v.times, frame_sims, CURVE_SIGMA_S)  # (1 + n_ex, F)
            rel_ex = words_null.video(fused[1:]) if words_null is not None and n_ex else []
            self._curves[vid] = Curve(
                v.times.copy(), curves[0].astype(np.float32), null.frames(curves[0]).astype(np.float32)
            )
            path = str(v.row["path"])
            if not moments:
                if any(r >= EXCLUDE_RELEVANCE for r in rel_ex):
                    self._picture_excluded.add(vid)
                    continue
                best_i = int(np.argmax(frame_sims[0]))
                best = float(v.times[best_i])
                why = Why(best, _frame_why(q, v, best_i, bank) if bank else ())
                rel = float(null.video(fused[0]))
                hits.append(VideoHit(path, vid, float(fused[0]), rel, best, v.duration, why))
                continue
            for p in propose(v.times, smooth_curve(v.times, frame_sims[0], MOMENT_SIGMA_S), v.cuts, v.duration):
                rel = _judged(v.times, curves, null, words_null, p.start, p.end, nearest=False)
                if rel is None:
                    continue
                why = self._moment_why(q, v, p.peak_time, bank)
                hits.append(MomentHit(path, vid, p.start, p.end, p.score, rel, p.peak_time, v.duration, why))
            for start, end in spans.get(vid, ()):
                seen = _judged(v.times, curves, null, words_null, start, end, nearest=True)
                if seen is None:
                    self._picture_excluded_spans.add((vid, start, end))
                else:
                    self._span_relevance[(vid, start, end)] = seen
        return hits

    def _scores(
        self, queries: np.ndarray, v: _Video, bank: ConceptBank | None, words: WordRows | None
    ) -> tuple[np.ndarray, np.ndarray]:
        """:func:`_fused` scores (Q,) and per-frame sims (Q, F); where the model was trained with the word-frame
        score, each text row (``words.rows``) scores ``½(fused + s_fine)``, the training score's mix of the global
        and the word-level term (losses.md §1.4, ``engine.search.word_scores``). The per-frame sims, and so the
        curve and the moments, stay those of the context vectors."""
        fused, frame_sims = _fused(queries, v, self.weights, bank)
        if words is None or self.words is None or not len(words.rows):
            return fused, frame_sims
        head = self.words
        windows = self._windows.get(
            v.embedding, lambda: head_windows(head, v.frames, v.times, v.spans or [], v.duration)
        )
        fine = windows_similarity(words, windows)
        fused = np.asarray(fused, dtype=np.float64).copy()
        fused[words.rows] = 0.5 * (fused[words.rows] + fine)
        return fused, frame_sims

    def _read_windows(self, videos: Sequence[_Video]) -> None:
        """Read the windows of every video the cache lacks through the head, batched across videos."""
        if self.words is None:
            return
        by_key = {v.embedding: v for v in videos}
        missing = [by_key[k] for k in self._windows.missing(list(by_key))]
        part: list[_Video] = []
        n_windows = 0
        for i, v in enumerate(missing):
            part.append(v)
            n_windows += len(v.spans or []) + 1
            if n_windows < WINDOW_BATCH and i + 1 < len(missing):
                continue
            items = [VideoFrames(p.frames, p.times, p.spans or [], p.duration) for p in part]
            for p, windows in zip(part, head_windows_of(self.words, items), strict=True):
                self._windows.put(p.embedding, windows)
            part, n_windows = [], 0

    def _query_words(self, query: Query, *, text: bool) -> WordRows | None:
        """The words of a query's text rows (the text itself if it is one, then each excluded term), for a model
        that scores words; None for any other model."""
        if self.words is None:
            return None
        terms = exclude_terms(query)
        texts = [clean_text(query.text or ""), *terms] if text else terms
        rows = list(range(len(texts))) if text else list(range(1, len(terms) + 1))
        return WordRows.of(self.words.encode_words(texts), rows, self.encoder.dim) if texts else None

    def _words_of_background(self) -> WordRows | None:
        """The background captions' words (computed once), so the null is judged by the same score as queries."""
        if self.words is None:
            return None
        if self._background_words is None:
            captions = self.background.captions()
            self._background_words = WordRows.of(
                self.words.encode_words(captions), range(len(captions)), self.encoder.dim
            )
        return self._background_words

    @staticmethod
    def _moment_why(q: np.ndarray, v: _Video, peak_time: float, bank: ConceptBank | None) -> Why:
        if bank is None:
            return Why(peak_time)
        return Why(peak_time, _frame_why(q, v, int(np.argmin(np.abs(v.times - peak_time))), bank))

    def _emcl_rerank(
        self, q: np.ndarray, videos: list[_Video], hits: list[VideoHit | MomentHit]
    ) -> list[VideoHit | MomentHit]:
        """Replace each candidate's coarse term by its EMCL-refined similarity (plug-in defaults K=7, T=10,
        σ=0.1, β=4), computed over the query and the whole candidate set. The background captions are refined
        the same way (each in its own EM call with the same candidates), and each video's refined score is judged
        against its own refined background: EMCL moves every text's score on a video by a video-dependent amount
        (by 0.3 to 3.7 on the colour test library), and only the part of the move that is the query's is evidence.
        The list still follows the number it shows. Text queries only: the plug-in refines text against videos,
        and a visual query's background is other videos, not captions."""
        import dataclasses

        if len(videos) < 2:
            return hits
        by_id = {int(v.row["id"]): i for i, v in enumerate(videos)}  # type: ignore[call-overload]
        matrix = np.stack([v.vector for v in videos]).astype(np.float32)
        shift_q = _emcl_shift(q[None], matrix)[0]
        shift_bg = _emcl_shift(self.background.vectors(), matrix)  # (B, N)
        weight = self.weights.normalised()[0]
        bg, bank = self.background.vectors(), concepts_of(self.encoder)
        out: list[VideoHit | MomentHit] = []
        for hit in hits:
            i = by_id.get(hit.video_id)
            if isinstance(hit, VideoHit) and i is not None:
                score = hit.score + weight * float(shift_q[i])
                refined_bg = self._scores(bg, videos[i], bank, self._words_of_background())[0] + weight * shift_bg[:, i]
                rel = float(calibration.background_null([refined_bg], []).video(score))
                hit = dataclasses.replace(hit, score=score, relevance=rel)
            out.append(hit)
        return out


def _judged(
    times: np.ndarray,
    curves: np.ndarray,
    null: calibration.Null,
    words_null: calibration.Null | None,
    start: float,
    end: float,
    *,
    nearest: bool,
) -> float | None:
    """The picture's relevance over ``start..end`` of one video, judged like a moment: the query's mean curve
    inside (row 0 of ``curves``) against the search's ``null``. None when an excluded term (rows ``1:``, judged
    against ``words_null``) is seen there, or when no frame lies in the span and ``nearest`` is off (with it,
    the frame nearest the span's middle stands for it)."""
    inside = (times >= start) & (times <= end)
    if not inside.any():
        if not nearest:
            return None
        gap = np.abs(times - (start + end) / 2)
        inside = gap == gap.min()
    means = curves[:, inside].mean(axis=1)
    if words_null is not None and len(means) > 1 and (words_null.frames(means[1:]) >= EXCLUDE_RELEVANCE).any():
        return None
    return float(null.frames(means[0]))


def _emcl_shift(texts: np.ndarray, videos: np.ndarray) -> np.ndarray:
    """(Q, N): how much EMCL refinement moves each text's coarse similarity to each video, every text in its
    own EM call with the same videos (the result of a call depends on what shares it)."""
    import torch

    from engine.models.emcl import emcl_rerank_scores

    v = torch.from_numpy(videos)
    coarse = texts.astype(np.float64) @ videos.astype(np.float64).T
    refined = np.stack(
        [emcl_rerank_scores(torch.from_numpy(t.astype(np.float32)), v)[0].double().numpy() for t in texts]
    )
    return refined - coarse
