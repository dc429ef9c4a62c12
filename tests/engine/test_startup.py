"""Fast commands: a no-op ``index`` and a repeated ``search`` import neither torch nor open_clip, nor a decoder
or a speech or text-reading model, and stay small (the whole command's peak memory); a text search
builds the text tower alone; the query vector cache survives damage and concurrent writers.

The speed itself is measured by ``scenefind bench cli`` (whole commands), not here: these tests check what
makes it fast, which a timing on a shared machine could not."""

from __future__ import annotations

import json
import multiprocessing
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from engine.models.identity import model_identity
from engine.models.registry import TEST_ARCH, create_encoder
from engine.search.text_cache import CachedTexts, TextVectorCache
from tests.engine.videos import color_library

REPO = Path(__file__).resolve().parents[2]
HEAVY = ("torch", "open_clip", "transformers", "torchvision")
# decoders and the later stages' models: a command with nothing to decode or read must not load them either
LOADED = (*HEAVY, "av", "cv2", "faster_whisper", "ctranslate2", "rapidocr", "onnxruntime")
_PROBE = (
    "import json, sys; from engine.cli import main; code = main(sys.argv[1:]); "
    f"loaded = sorted(m for m in {LOADED!r} if m in sys.modules); "
    "peak = next(int(x.split()[1]) for x in open('/proc/self/status') if x.startswith('VmHWM')); "
    "print(json.dumps([code, loaded, peak]))"
)
PEAK_KIB: dict[str, int] = {}  # the last probe's peak resident memory (VmHWM: a fresh process's own), by command


def _probe(*args: str, cache: Path) -> tuple[int, list[str], str]:
    """Run ``scenefind ARGS`` in a fresh process; its exit code, which heavy modules (torch and co., decoders,
    speech and OCR models) it imported, its stdout. Its peak memory goes to ``PEAK_KIB``."""
    env = {**os.environ, "PYTHONPATH": str(REPO), "SCENEFIND_CACHE": str(cache)}
    done = subprocess.run([sys.executable, "-c", _PROBE, *args], env=env, capture_output=True, text=True, check=False)
    *output, last = done.stdout.strip().splitlines() or [""]
    assert last.startswith("["), done.stderr
    code, heavy, PEAK_KIB[args[-1]] = json.loads(last)
    return code, heavy, "\n".join(output)


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from engine.models.checkpoint import save_checkpoint

    folder = tmp_path_factory.mktemp("ckpt") / "tiny"
    return save_checkpoint(folder, create_encoder("test-tiny").torch_model(), TEST_ARCH)  # type: ignore[attr-defined]


def test_model_ids_are_told_without_building(checkpoint: Path) -> None:
    weights = checkpoint / "model.safetensors"
    names = [
        "test-tiny",
        TEST_ARCH,
        "random:ViT-B-32",
        "random:RN50:seed3",
        "ViT-B-32/laion2b_s34b_b79k",
        "open_clip:ViT-B-32/LAION2B-S34B-B79K",
        str(checkpoint),
        f"{TEST_ARCH}@{weights}",
    ]
    for name in names:
        assert model_identity(name) == create_encoder(name).model_id, name
    for name in ("fake:color", "scratch:tiny", "nonsense", "", str(checkpoint / "missing")):
        assert model_identity(name) is None, name


def test_trained_runs_are_never_told_by_name(tmp_path: Path, checkpoint: Path) -> None:
    """A trained run has heads, which a stand-in cannot answer for: its id comes from building it."""
    import shutil

    trained = tmp_path / "run" / "best"
    shutil.copytree(checkpoint, trained)
    (trained / "heads.safetensors").write_bytes(b"")
    (tmp_path / "run" / "checkpoints").mkdir()
    assert model_identity(str(trained)) is None and model_identity(str(tmp_path / "run")) is None
    assert model_identity(str(checkpoint)) is not None


def test_noop_index_and_repeated_search_import_no_torch(tmp_path: Path) -> None:
    videos = color_library(tmp_path / "videos")
    home, cache = tmp_path / "lib", tmp_path / "cache"
    base = ["--home", str(home), "--model", "test-tiny", "--no-progress"]
    assert _probe(*base, "add", str(tmp_path / "videos"), cache=cache)[:2] == (0, [])
    code, heavy, _ = _probe(*base, "index", cache=cache)
    assert code == 0 and "torch" in heavy  # three videos to embed: the model is built

    code, heavy, out = _probe(*base, "index", cache=cache)
    assert (code, heavy) == (0, []) and "nothing new to index" in out  # it built the model to find nothing to do
    # the whole command: the release before peaked at 965 MB finding nothing to do (torch, a decoder)
    assert PEAK_KIB["index"] < 200 * 1024, PEAK_KIB
    videos["green"].unlink()  # a removal drops vectors from the index, still without the model
    code, heavy, out = _probe(*base, "index", cache=cache)
    assert (code, heavy) == (0, []) and "1 removed" in out

    code, heavy, cold = _probe(*base, "search", "a red screen", "--all", "--json", cache=cache)
    assert code == 0 and "torch" in heavy and "open_clip" in heavy  # a new text: the text tower runs
    code, heavy, again = _probe(*base, "search", "a red screen", "--all", "--json", cache=cache)
    assert (code, heavy) == (0, []) and json.loads(again) == json.loads(cold)
    assert str(videos["green"]) not in again and len(json.loads(again)) == 2
    code, heavy, _ = _probe(*base, "search", "a red screen", "--exclude", "blue", cache=cache)
    assert code == 0 and "torch" in heavy  # "blue" was never encoded


def test_demo_models_never_import_torch(tmp_path: Path) -> None:
    """The offline demo models are NumPy only: every command with them, a new search text included, must skip
    torch and open_clip (the registry imported open_clip for any name, so the demo paid 8 s a command)."""
    color_library(tmp_path / "videos")
    home, cache = tmp_path / "lib", tmp_path / "cache"
    base = ["--home", str(home), "--model", "fake:color", "--no-progress"]
    assert _probe(*base, "add", str(tmp_path / "videos"), cache=cache)[:2] == (0, [])
    code, loaded, _ = _probe(*base, "index", "--no-speech", "--no-screen-text", cache=cache)
    assert code == 0 and not set(HEAVY) & set(loaded), loaded  # decoders, yes: three videos to read
    for args in (["status"], ["index", "--no-speech", "--no-screen-text"], ["search", "a red screen", "--json"]):
        code, loaded, out = _probe(*base, *args, cache=cache)
        assert (code, loaded) == (0, []), (args, loaded, out)
    code, loaded, _ = _probe("--home", str(home), "--model", "fake:hash-0", "status", cache=cache)
    assert code == 2 and not set(HEAVY) & set(loaded)  # a bad name is refused (a usage error) as cheaply


def test_text_tower_alone_gives_the_full_models_vectors(checkpoint: Path) -> None:
    texts = ["a dog catching a frisbee", "the slide about Q3", "x"]
    alone = create_encoder(str(checkpoint), device="cpu")
    from_tower = alone.encode_texts(texts)
    assert not alone.loaded  # type: ignore[attr-defined]  # no image tower was built for a text query
    full = create_encoder(str(checkpoint), device="cpu")
    full.load()  # type: ignore[attr-defined]
    assert np.array_equal(from_tower, full.encode_texts(texts))
    alone.encode_images(np.zeros((1, 32, 32, 3), np.uint8))  # images need the full model: then texts use it
    assert alone.loaded and np.array_equal(alone.encode_texts(texts), from_tower)  # type: ignore[attr-defined]


class _Counting:
    model_id, dim = "m", 4

    def __init__(self) -> None:
        self.seen: list[str] = []

    def encode_texts(self, texts: list[str]) -> np.ndarray:
        self.seen.extend(texts)
        return np.stack([np.full(4, len(t), np.float32) for t in texts])


def test_cache_answers_repeats_and_survives_damage(tmp_path: Path) -> None:
    path = tmp_path / "vectors.sqlite"
    inner = _Counting()
    cached = CachedTexts(inner, TextVectorCache(path))  # type: ignore[arg-type]
    first = cached.encode_texts(["a", "bb", "a"])
    assert inner.seen == ["a", "bb"] and first.shape == (3, 4)
    again = CachedTexts(inner, TextVectorCache(path)).encode_texts(["bb", "a"])  # type: ignore[arg-type]
    assert inner.seen == ["a", "bb"] and np.array_equal(again, first[[1, 0]])
    assert "bb" not in path.read_bytes().decode("latin-1")  # texts are stored as hashes, not in clear

    db = sqlite3.connect(path)  # a torn row (wrong checksum) and a row of another width are misses
    db.execute("UPDATE vectors SET vector = zeroblob(16) WHERE key = (SELECT key FROM vectors LIMIT 1)")
    db.commit()
    db.close()
    inner.seen.clear()
    fixed = CachedTexts(inner, TextVectorCache(path)).encode_texts(["a", "bb"])  # type: ignore[arg-type]
    assert len(inner.seen) == 1 and np.array_equal(fixed, first[:2])
    assert TextVectorCache(path).get("m", 8, ["a", "bb"]) == {}

    path.write_bytes(b"this is not a database" * 100)  # a damaged file: searches go on, the cache starts afresh
    inner.seen.clear()
    assert np.array_equal(CachedTexts(inner, TextVectorCache(path)).encode_texts(["a"]), first[:1])  # type: ignore[arg-type]
    assert inner.seen == ["a"] and TextVectorCache(path).get("m", 4, ["a"])


def _writer(path: str, worker: int) -> None:
    cache = TextVectorCache(Path(path))
    for i in range(60):
        cache.put("m", [f"{worker}-{i}"], np.full((1, 4), worker + i / 100, np.float32))
        cache.get("m", 4, [f"{(worker + 1) % 4}-{i}"])


def test_cache_takes_concurrent_writers(tmp_path: Path) -> None:
    path = tmp_path / "vectors.sqlite"
    context = multiprocessing.get_context("spawn")
    workers = [context.Process(target=_writer, args=(str(path), w)) for w in range(4)]
    for w in workers:
        w.start()
    for w in workers:
        w.join(timeout=120)
    assert [w.exitcode for w in workers] == [0, 0, 0, 0]
    found = TextVectorCache(path).get("m", 4, [f"{w}-{i}" for w in range(4) for i in range(60)])
    assert len(found) >= 230  # a write may be skipped when the lock stays busy past the timeout, never torn
    assert all(np.allclose(v, int(t.split("-")[0]) + int(t.split("-")[1]) / 100) for t, v in found.items())


def test_a_busy_cache_is_a_miss_and_keeps_its_rows(tmp_path: Path) -> None:
    """Another process holding the file's lock is not damage: the cache must not start afresh over its rows."""
    path = tmp_path / "vectors.sqlite"
    first = TextVectorCache(path)
    first.put("m", ["kept"], np.ones((1, 4), np.float32))
    first.close()
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("PRAGMA locking_mode=EXCLUSIVE")  # in WAL mode this shuts every other connection out
    holder.execute("BEGIN EXCLUSIVE")
    holder.execute("DELETE FROM vectors WHERE 0")
    holder.execute("COMMIT")
    busy = TextVectorCache(path, timeout=0.1)
    assert busy.get("m", 4, ["kept"]) == {}  # a miss while locked, not an error
    busy.put("m", ["new"], np.ones((1, 4), np.float32))  # skipped quietly
    holder.close()
    assert set(busy.get("m", 4, ["kept", "new"])) == {"kept"}  # the same cache tries again once the lock is gone


def test_cache_keeps_at_most_max_rows(tmp_path: Path) -> None:
    cache = TextVectorCache(tmp_path / "v.sqlite", max_rows=10)
    for i in range(25):
        cache.put("m", [str(i)], np.ones((1, 4), np.float32))
    assert len(cache.get("m", 4, [str(i) for i in range(25)])) == 10


def test_lazy_encoder_builds_once_on_first_encode_and_refuses_another_model() -> None:
    from engine.models.base import ModelUnavailable
    from engine.models.lazy import LazyEncoder

    built: list[str] = []

    def build() -> object:
        built.append("x")
        return create_encoder("fake:hash-8")

    lazy = LazyEncoder("fake:hash-8", 8, build)  # type: ignore[arg-type]
    assert (lazy.model_id, lazy.dim, lazy.concepts, lazy.temporal, lazy.built) == ("fake:hash-8", 8, None, None, False)
    assert lazy.encode_texts(["a", "b"]).shape == (2, 8) and lazy.encode_texts(["c"]).shape == (1, 8)
    assert built == ["x"] and lazy.built
    wrong = LazyEncoder("fake:hash-16", 16, lambda: create_encoder("fake:hash-8"))
    with pytest.raises(ModelUnavailable, match="changed while in use"):
        wrong.encode_texts(["a"])


@pytest.mark.slow
def test_cli_bench_reports_every_figure(tmp_path: Path) -> None:
    """``scenefind bench cli`` on a tiny architecture: every figure is there, and the commands it times as fast
    are the ones that imported no torch (its default, ViT-B-32, is for the figures in a report)."""
    from engine.bench.cli_bench import run_cli_bench, table

    figures = run_cli_bench(videos=6, runs=1, arch=TEST_ARCH, work=tmp_path / "work", log=None)
    for key in ("python_start_s", "status_s", "noop_index_s", "scan_in_process_s", "search_first_s"):
        assert figures[key] > 0, key
    for key in ("search_cold_s", "search_repeated_s", "full_model_s", "text_tower_s", "gui_visible_s"):
        assert figures[key] > 0, key
    assert figures["noop_index_imports"] == [] and figures["search_repeated_imports"] == []
    assert min(figures["demo_status_s"], figures["demo_noop_index_s"], figures["demo_search_cold_s"]) > 0
    assert figures["demo_imports"] == []  # the demo model: a new text is encoded with NumPy alone
    lines = table(figures)
    assert any("index with nothing to do" in line and "no torch or open_clip" in line for line in lines)
    assert any("start to window shown" in line for line in lines)
