"""FTS query latency over a large synthetic transcript: ``hours`` of speech as real catalog rows.

The rows go into a real catalog (``Catalog``: the same schema, FTS5 table and triggers as a library), one
video per hour, one segment per 8 s of speech (20 words with word times, as the speech stage stores them).
Words follow a Zipf law over 30,000 pronounceable pseudo-words plus English function words, and 1% of
segments are the benchmark's own sentences, so its queries have real matches among millions of rows. The
catalog is built once per size and kept in the user cache (``bench/speech-fts``); later runs reuse it.
Queries: the benchmark's phrases, rare words and paraphrases, and random one- to three-word queries drawn
by word frequency; each runs through ``search_lexical`` (candidates, moments, relevance), timed end to end.
"""

from __future__ import annotations

import itertools
import random
import shutil
import statistics
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from engine.bench.speech_corpus import SENTENCES
from engine.jobs import CancelToken, ProgressCallback, check_cancel, report
from engine.library.catalog import Catalog
from engine.paths import cache_home
from engine.search.lexical import search_lexical

SEGMENT_S = 8.0
WORDS_PER_SEGMENT = 20
_VERSION = 1
_FUNCTION = (
    "the", "a", "and", "to", "of", "in", "is", "it", "that", "you", "was", "for", "on", "are", "with", "as", "i",
    "his", "they", "be", "at", "one", "have", "this",
)  # fmt: skip


def _vocabulary(rng: random.Random, size: int = 30_000) -> list[str]:
    consonants, vowels = "bcdfghjklmnprstvwz", "aeiou"
    syllables = [c + v for c in consonants for v in vowels] + [c + v + "n" for c in consonants for v in vowels]
    words: set[str] = set()
    while len(words) < size:
        words.add("".join(rng.choice(syllables) for _ in range(rng.choice((2, 2, 3, 3, 4)))))
    return sorted(words)


def _rows(hours: float, seed: int) -> Iterator[tuple[int, int, float, float, str, str]]:
    rng = random.Random(seed)
    vocab = _vocabulary(rng)
    cumulative = list(itertools.accumulate(1.0 / (rank + 1) for rank in range(len(vocab))))
    real = [s.text.rstrip(".").split() for s in SENTENCES]
    per_video = int(3600 / SEGMENT_S)
    step = SEGMENT_S / WORDS_PER_SEGMENT
    for video in range(1, int(hours) + 1):
        for idx in range(per_video):
            if rng.random() < 0.01:
                words = rng.choice(real)
            else:
                content = rng.choices(vocab, cum_weights=cumulative, k=WORDS_PER_SEGMENT)
                words = [w if rng.random() > 0.4 else rng.choice(_FUNCTION) for w in content]
            start = idx * SEGMENT_S
            json_words = ",".join(
                f'[{start + i * step:.2f},{start + i * step + 0.3:.2f},"{w}",0.9]' for i, w in enumerate(words)
            )
            yield video, idx, start, start + len(words) * step, " ".join(words), f"[{json_words}]"


def build(path: Path, hours: float, *, seed: int = 0, progress: ProgressCallback | None = None,
          cancel: CancelToken | None = None) -> Path:  # fmt: skip
    """Write the synthetic catalog to ``path`` (through a temporary name, so a cancelled build is not reused)."""
    part = path.with_name(path.name + ".part")
    shutil.rmtree(part, ignore_errors=True)
    part.mkdir(parents=True)
    with Catalog(part / "catalog.sqlite") as catalog:
        with catalog.transaction() as db:
            db.execute("INSERT INTO folders (path, added_at) VALUES ('/synthetic', 0)")
            db.executemany(
                "INSERT INTO videos (id, folder_id, path, size, mtime_ns, fingerprint, added_at, updated_at)"
                " VALUES (?, 1, ?, 0, 0, 'x', 0, 0)",
                [(v, f"/synthetic/{v:05d}.mp4") for v in range(1, int(hours) + 1)],
            )
        batch: list[tuple[Any, ...]] = []
        total = int(hours) * int(3600 / SEGMENT_S)
        done = 0
        for row in _rows(hours, seed):
            batch.append(row)
            if len(batch) >= 50_000:
                check_cancel(cancel)
                _insert(catalog, batch)
                done += len(batch)
                batch = []
                report(progress, 0.9 * done / total, f"Synthetic transcript: {done:,} of {total:,} segments")
        _insert(catalog, batch)
        with catalog.transaction() as db:
            db.execute("INSERT INTO speech_fts(speech_fts) VALUES ('optimize')")  # one b-tree, as a settled library
    shutil.rmtree(path, ignore_errors=True)
    part.rename(path)
    return path


def _insert(catalog: Catalog, rows: list[tuple[Any, ...]]) -> None:
    with catalog.transaction() as db:
        db.executemany(
            "INSERT INTO speech_segments (video_id, idx, start, end, text, words) VALUES (?, ?, ?, ?, ?, ?)", rows
        )


def queries(seed: int = 1, random_count: int = 100) -> list[str]:
    """The benchmark's own queries plus random one- to three-word queries drawn by word frequency."""
    rng = random.Random(seed)
    vocab = _vocabulary(random.Random(0))
    cumulative = list(itertools.accumulate(1.0 / (rank + 1) for rank in range(len(vocab))))
    out = [q for s in SENTENCES for q in (f'"{s.phrase}"', s.rare, s.paraphrase)]
    for _ in range(random_count):
        out.append(" ".join(rng.choices(vocab, cum_weights=cumulative, k=rng.choice((1, 2, 3)))))
    return out


def fts_latency(
    hours: float, *, seed: int = 0, progress: ProgressCallback | None = None, cancel: CancelToken | None = None
) -> dict[str, Any]:
    """p50/p95/max latency of ``search_lexical`` (k=20) over ``hours`` of synthetic transcript."""
    folder = cache_home() / "bench" / "speech-fts" / f"v{_VERSION}-{hours:g}h-seed{seed}"
    built = "cached"
    if not (folder / "catalog.sqlite").is_file():
        t0 = time.perf_counter()
        build(folder, hours, seed=seed, progress=progress, cancel=cancel)
        built = f"built in {time.perf_counter() - t0:.0f} s"
    times = []
    with Catalog(folder / "catalog.sqlite", readonly=True) as catalog:
        rows = catalog.fts_size("speech")
        todo = queries()
        for q in todo[:5]:
            search_lexical(catalog, "speech", q)  # warm the page cache as a running app would be
        for n, q in enumerate(todo):
            check_cancel(cancel)
            t0 = time.perf_counter()
            search_lexical(catalog, "speech", q, k=20)
            times.append(1000 * (time.perf_counter() - t0))
            report(progress, 0.9 + 0.1 * (n + 1) / len(todo), f"FTS queries {n + 1}/{len(todo)}")
    times.sort()
    return {
        "hours": hours,
        "rows": rows,
        "queries": len(times),
        "p50_ms": statistics.median(times),
        "p95_ms": times[int(0.95 * (len(times) - 1))],
        "max_ms": times[-1],
        "build": built,
        "catalog_mb": round((folder / "catalog.sqlite").stat().st_size / 1e6),
    }
