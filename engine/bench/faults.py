"""``scenefind bench faults``: kill the indexer, feed it hostile files and bad queries, and count the damage.

A personal library is irreplaceable, so "it survived" has to be measured, not assumed. The kill harness runs
``scenefind index`` in child processes forked from a pre-imported server (so a kill lands in the work, not in
``import torch``) and SIGKILLs each one after a seeded random delay, at least ``kills`` times on the same
library; after every kill the SQLite integrity check must pass and every saved index must load. Then one run
resumes, and the catalog rows, the stored vectors and the search results are compared with those of an
uninterrupted run of the same library: anything missing or different is a row or vector lost. The whole
benchmark then runs the hostile-file and bad-query checks (``engine.bench.hostile``, ``engine.bench.bad_queries``);
all three drive their child processes through ``engine.bench.harness``, so tests and the CLI share one harness.
"""

from __future__ import annotations

import os
import random
import signal
import sqlite3
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from engine.bench.harness import MODEL, prepare_library, run_child, silence_output, start_fork_server
from engine.jobs import CancelToken, ProgressCallback, check_cancel, report, wrap_progress

QUERIES = ("red", "a blue scene", "green", "yellow", "something pink and purple")
_COLOURS = ((220, 20, 20), (20, 200, 20), (20, 20, 220), (230, 220, 30), (250, 165, 195), (120, 50, 170))


@dataclass
class KillReport:
    """What ``kill_and_resume`` did and found; every ``*_lost``/failure count must be 0."""

    kills: int = 0  # SIGKILLs that hit a running indexer
    attempts: int = 0  # runs started (a run that finished before its kill is not a kill)
    kills_with_work_pending: int = 0  # kills that found videos still to index afterwards
    videos: int = 0
    integrity_failures: list[str] = field(default_factory=list)
    index_load_failures: list[str] = field(default_factory=list)
    stale_metas_seen: int = 0  # graph headers one save behind their graph: 0, as they share one file
    leftover_temp_files: int = 0  # temp files of interrupted atomic saves, counted after each kill
    temp_files_after_resume: int = 0  # what the resumed writer did not clean up (must be 0)
    resume_exit_code: int | None = None
    rows_lost: int = 0  # catalog rows (videos, frames, segments) of the reference missing after resuming
    rows_extra: int = 0  # rows the resumed library has and the reference does not
    vectors_lost: int = 0  # live keys whose stored vector is missing/different or absent from the index
    results_equal: bool = False
    reference_s: float = 0.0
    elapsed_s: float = 0.0

    @property
    def ok(self) -> bool:
        return (
            not self.integrity_failures
            and not self.index_load_failures
            and self.resume_exit_code == 0
            and self.rows_lost == self.rows_extra == self.vectors_lost == self.temp_files_after_resume == 0
            and self.results_equal
        )


# -- children ---------------------------------------------------------------------------------------------


def index_child(home: str, model: str, log_path: str | None = None) -> None:
    """Child process body: ``scenefind --home HOME --model MODEL index``; exits with the CLI's code."""
    silence_output(log_path)
    from engine.cli import main

    code = main(["--home", home, "--model", model, "--no-progress", "index"])
    os._exit(code)


def full_disk_child(home: str, model: str, log_path: str | None, limit_bytes: int) -> None:
    """``index_child`` where no file may grow past ``limit_bytes`` (RLIMIT_FSIZE): every write beyond it fails
    with EFBIG, as on a full disk, in SQLite, the vector files and the index saves alike."""
    import resource

    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # fail the write instead of killing the process
    resource.setrlimit(resource.RLIMIT_FSIZE, (limit_bytes, resource.getrlimit(resource.RLIMIT_FSIZE)[1]))
    index_child(home, model, log_path)


# -- the library and what to compare ----------------------------------------------------------------------


def write_kill_library(folder: Path, videos: int = 16) -> list[Path]:
    """Small colour videos (160x120, 10 fps, 3-6 s): quick to index, distinct enough to search."""
    from engine.media.synthetic import write_color_video

    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i in range(videos):
        a, b = _COLOURS[i % len(_COLOURS)], _COLOURS[(i * 5 + 2) % len(_COLOURS)]
        segments = [(2 + i % 3, a), (1 + i % 2, b)]
        suffix = ".avi" if i % 4 == 3 else ".mp4"
        sub = folder / f"set{i % 3}"
        paths.append(write_color_video(sub / f"clip {i:02d}{suffix}", segments, fps=10, moving_box=i % 2 == 0))
    return paths


def catalog_rows(home: Path) -> dict[str, set[tuple[Any, ...]]]:
    """The catalog content that must not depend on how the run went (no ids, no timestamps, no jobs): the
    picture's rows, and what the speech and text stages stored (their outcome per video, every transcript
    segment with its words, every text line)."""
    db = sqlite3.connect(home / "catalog.sqlite")
    try:
        join = "JOIN embeddings e ON e.id = x.embedding_id JOIN videos v ON v.id = e.video_id"
        by_video = "JOIN videos v ON v.id = x.video_id"
        return {
            "videos": set(db.execute("SELECT path, fingerprint, status, duration, width, height FROM videos")),
            "frames": set(db.execute(f"SELECT v.path, x.t, x.frame_index, x.is_cut FROM frames x {join}")),
            "segments": set(db.execute(f"SELECT v.path, x.idx, x.start, x.end FROM segments x {join}")),
            "stages": set(
                db.execute(f"SELECT v.path, x.stage, x.status, x.model, x.items FROM stage_results x {by_video}")
            ),
            "speech": set(
                db.execute(f"SELECT v.path, x.idx, x.start, x.end, x.text, x.words FROM speech_segments x {by_video}")
            ),
            "text": set(db.execute(f"SELECT v.path, x.start, x.end, x.text FROM text_lines x {by_video}")),
        }
    finally:
        db.close()


def _keyed_rows(db: sqlite3.Connection) -> Iterator[tuple[str, int, tuple[Any, ...]]]:
    """(grain, key, identity) of every vector the catalog names, identity independent of ids."""
    for key, path in db.execute("SELECT e.id, v.path FROM embeddings e JOIN videos v ON v.id = e.video_id"):
        yield "video", key, (path,)
    join = "JOIN embeddings e ON e.id = x.embedding_id JOIN videos v ON v.id = e.video_id"
    for key, path, t in db.execute(f"SELECT x.id, v.path, x.t FROM frames x {join}"):
        yield "frame", key, (path, t)
    for key, path, idx in db.execute(f"SELECT x.id, v.path, x.idx FROM segments x {join}"):
        yield "segment", key, (path, idx)


def stored_vectors(home: Path, model: str = MODEL) -> tuple[dict[tuple[Any, ...], np.ndarray], list[str]]:
    """Every vector the catalog names, read from the vector files, keyed by identity; plus the problems
    found: a key absent from its grain's saved-then-reconciled index, or a vector that is all zeros."""
    from engine.index.stores import ModelStores
    from engine.library.catalog import Catalog
    from engine.paths import LibraryPaths
    from engine.settings import load

    paths = LibraryPaths(home)
    problems: list[str] = []
    out: dict[tuple[Any, ...], np.ndarray] = {}
    with Catalog(paths.catalog) as catalog:
        dim = catalog.model_dim(model)
        if dim is None:
            return out, problems
        stores = ModelStores.open(paths.index_dir(model), catalog, model, dim, load(paths.settings), readonly=True)
        try:
            db = sqlite3.connect(paths.catalog)
            rows = list(_keyed_rows(db))
            db.close()
            for grain, key, ident in rows:
                g = stores.grains[grain]  # type: ignore[index]
                vec = g.vectors.read([key])[0]
                if g.index is not None and not g.index.contains(key):
                    problems.append(f"{grain} key {key} {ident}: not in the index")
                if not np.any(vec):
                    problems.append(f"{grain} key {key} {ident}: vector is all zeros")
                out[(grain, *ident)] = vec
        finally:
            stores.close()
    return out, problems


def search_results(home: Path, queries: tuple[str, ...] = QUERIES, model: str = MODEL) -> list[list[Any]]:
    """Ranked (video, score, best time) per query, rounded so float16 noise cannot differ."""
    from engine.library.library import Library
    from engine.search.searcher import Searcher

    with Library(home) as lib:
        searcher = Searcher(lib, lib.encoder(model))
        try:
            return [[(h.video, round(h.score, 4), h.best_time) for h in searcher.search_text(q, k=50)] for q in queries]
        finally:
            searcher.close()


def check_after_kill(home: Path, model: str = MODEL) -> tuple[list[str], list[str], int]:
    """``(integrity problems, index load problems, metas lagging their index)`` of a library whose writer
    was just killed. A graph is one file with its header (``engine.index.ann_store``), so no meta can lag it
    any more; the count stays for the report's sake and must read 0."""
    from engine.index.ann_store import AnnStore
    from engine.index.stores import ANN_GRAINS
    from engine.index.vectors import VectorStore
    from engine.library.catalog import GRAINS
    from engine.paths import LibraryPaths

    paths = LibraryPaths(home)
    db = sqlite3.connect(paths.catalog)
    try:
        integrity = [r[0] for r in db.execute("PRAGMA integrity_check")]
        fk = db.execute("PRAGMA foreign_key_check").fetchall()
        dim_row = db.execute("SELECT dim FROM models WHERE model_id = ?", (model,)).fetchone()
    finally:
        db.close()
    bad_db = [] if integrity == ["ok"] and not fk else [f"integrity_check {integrity}, foreign keys {fk[:3]}"]
    bad_index: list[str] = []
    stale = 0
    folder = paths.index_dir(model)
    for grain in GRAINS if dim_row else ():
        try:
            if grain in ANN_GRAINS and AnnStore.file(folder, grain).exists():
                stale += AnnStore.load(folder, grain, model_id=model, dim=dim_row[0]).meta_stale
            if (folder / f"{grain}.f16.json").exists():
                VectorStore.open(folder, grain, dim=dim_row[0], model_id=model, readonly=True).close()
        except Exception as exc:  # any failure to load is what this check counts
            bad_index.append(f"{grain}: {type(exc).__name__}: {exc}")
    return bad_db, bad_index, stale


def _pending(home: Path) -> int:
    """Videos some stage (picture, speech, text) has still to do."""
    db = sqlite3.connect(home / "catalog.sqlite")
    try:
        sql = (
            "SELECT COUNT(*) FROM videos v WHERE NOT EXISTS (SELECT 1 FROM embeddings e WHERE e.video_id = v.id)"
            " OR (SELECT COUNT(*) FROM stage_results r WHERE r.video_id = v.id) < 2"
        )
        return int(db.execute(sql).fetchone()[0])
    finally:
        db.close()


def compare(home: Path, reference: Path, report_: KillReport, model: str = MODEL) -> None:
    """Fill the lost/extra/equal figures of ``report_`` by comparing ``home`` with ``reference``."""
    got, want = catalog_rows(home), catalog_rows(reference)
    report_.rows_lost = sum(len(want[t] - got[t]) for t in want)
    report_.rows_extra = sum(len(got[t] - want[t]) for t in want)
    vectors, problems = stored_vectors(home, model)
    ref_vectors, _ = stored_vectors(reference, model)
    lost = len(problems) + sum(1 for k in ref_vectors if k not in vectors)
    lost += sum(1 for k, v in ref_vectors.items() if k in vectors and not np.array_equal(vectors[k], v))
    report_.vectors_lost = lost
    report_.results_equal = search_results(home, model=model) == search_results(reference, model=model)


def kill_and_resume(
    folder: Path,
    work: Path,
    *,
    kills: int = 20,
    seed: int = 0,
    model: str = MODEL,
    settings: dict[str, Any] | None = None,
    progress: ProgressCallback | None = None,
    cancel: CancelToken | None = None,
) -> KillReport:
    """Index ``folder`` once uninterrupted (the reference), then SIGKILL ``kills`` indexer runs on another
    library of the same folder at seeded random delays, check it after each kill, resume, and compare.
    ``settings`` go into both libraries (a real speech model, so the later stages do real work)."""
    started = time.perf_counter()
    result = KillReport(videos=sum(1 for p in folder.rglob("*") if p.is_file()))
    reference, home = work / "reference", work / "killed"
    for h in (reference, home):
        prepare_library(h, folder, **(settings or {}))
    report(progress, 0.0, "Indexing the reference library")
    start_fork_server()  # it imports the engine once, before anything is timed
    t0 = time.perf_counter()
    code = run_child(index_child, (str(reference), model))
    result.reference_s = time.perf_counter() - t0
    if code != 0:
        raise RuntimeError(f"the uninterrupted reference run failed with exit code {code}")
    t0 = time.perf_counter()
    run_child(index_child, (str(reference), model))  # nothing left to do: open, scan, save
    idle_s = time.perf_counter() - t0
    rng = random.Random(seed)
    # Delays cover a run's fixed start-up and save plus a few videos' worth of work, so kills land in every
    # phase (opening, scanning, decoding, committing, saving) while the library still takes ~kills runs.
    span = idle_s + 2.0 * max(0.0, result.reference_s - idle_s) / kills
    while result.kills < kills:
        check_cancel(cancel)
        if result.attempts >= 4 * kills:
            raise RuntimeError(f"only {result.kills} of {kills} runs could be killed in {result.attempts} tries")
        result.attempts += 1
        if run_child(index_child, (str(home), model), kill_after=rng.uniform(0.0, span)) is not None:
            continue  # finished before its kill
        result.kills += 1
        result.kills_with_work_pending += _pending(home) > 0
        bad_db, bad_index, stale = check_after_kill(home, model)
        result.stale_metas_seen += stale
        result.leftover_temp_files += sum(1 for _ in (home / "indexes").rglob(".*.tmp"))
        result.integrity_failures += [f"after kill {result.kills}: {p}" for p in bad_db]
        result.index_load_failures += [f"after kill {result.kills}: {p}" for p in bad_index]
        report(progress, 0.1 + 0.8 * result.kills / kills, f"Killed the indexer {result.kills}/{kills} times")
    report(progress, 0.9, "Resuming")
    result.resume_exit_code = run_child(index_child, (str(home), model))
    result.temp_files_after_resume = sum(1 for _ in (home / "indexes").rglob(".*.tmp"))
    compare(home, reference, result, model)
    result.elapsed_s = time.perf_counter() - started
    report(progress, 1.0, f"{result.kills} kills survived")
    return result


# -- the whole benchmark ----------------------------------------------------------------------------------


def run_faults_bench(
    *,
    kills: int = 20,
    seed: int = 0,
    work: Path | None = None,
    log: Callable[[str], object] | None = None,
    progress: ProgressCallback | None = None,
    cancel: CancelToken | None = None,
) -> dict[str, Any]:
    """Kills, hostile files and bad queries on generated data in ``work`` (a temp folder by default)."""
    from engine.bench.bad_queries import run_queries
    from engine.bench.hostile import run_hostile

    say = log or (lambda _message: None)
    with tempfile.TemporaryDirectory(prefix="scenefind-faults-") as tmp:
        root = Path(work) if work is not None else Path(tmp)
        report(progress, 0.0, "Writing the kill library")
        folder = root / "kill-videos"
        write_kill_library(folder)
        kill = kill_and_resume(
            folder, root / "kill", kills=kills, seed=seed, progress=wrap_progress(progress, 0.0, 0.7), cancel=cancel
        )
        say(
            f"kills: {kill.kills} SIGKILLs survived ({kill.attempts} runs started, {kill.kills_with_work_pending} "
            f"with work pending), integrity failures {len(kill.integrity_failures)}, index load failures "
            f"{len(kill.index_load_failures)}, resume exit {kill.resume_exit_code}"
        )
        say(
            f"  metas one save behind their index {kill.stale_metas_seen} (reconciled), temp files of "
            f"interrupted saves {kill.leftover_temp_files} ({kill.temp_files_after_resume} left after resuming)"
        )
        say(
            f"  rows lost {kill.rows_lost}, rows extra {kill.rows_extra}, vectors lost {kill.vectors_lost}, "
            f"search results equal: {kill.results_equal} ({kill.videos} videos, {kill.elapsed_s:.1f} s)"
        )
        check_cancel(cancel)
        report(progress, 0.7, "Indexing hostile files")
        hostile = run_hostile(root / "hostile")
        say(
            f"hostile files: {hostile['handled']} of {hostile['cases']} handled, {hostile['crashed_runs']} crashed "
            f"runs ({hostile['indexed']} indexed, {hostile['failed']} failed with a reason, "
            f"{hostile['no_video']} sound files without a video stream, {hostile['skipped']} skipped)"
        )
        for case in hostile["details"]:
            say(f"  {case['kind']:32s} {case['outcome']:9s} {case['reason'][:70]}")
        check_cancel(cancel)
        report(progress, 0.9, "Trying bad queries")
        queries = run_queries(root / "hostile" / "home")
        say(
            f"queries: {queries['tried']} tried, {queries['answered']} answered, {queries['refused']} refused "
            f"with a message, {queries['crashed']} crashed"
        )
        report(progress, 1.0, "Done")
        return {
            "kills": asdict(kill) | {"ok": kill.ok},
            "hostile": hostile,
            "queries": queries,
            "rows_lost": kill.rows_lost,
            "vectors_lost": kill.vectors_lost,
        }
