"""Bad input for the speech and text stages: unknown language, missing or damaged model folders, the model
download, a three-hour recording, and a no-op index that must load no model."""

from __future__ import annotations

import http.server
import itertools
import json
import shutil
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from engine.bench.speech_media import Utterance, write_long_recording, write_spoken_video
from engine.export.subtitles import cues, render
from engine.library.schema import MIGRATIONS, SCHEMA_VERSION, statements
from engine.settings import EngineSettings, SettingsError, load, save
from engine.speech.models import SIZES, SpeechModelError, check_folder, ensure_local, resolve
from engine.speech.transcript import Segment, Word
from tests.engine.speech_fixtures import library, tiny_en

REPO = Path(__file__).resolve().parents[2]


def _said(tmp_path: Path, name: str = "one.mp4", **kw: object) -> Path:
    folder = tmp_path / "videos"
    write_spoken_video(folder / name, 8, [Utterance("The train leaves from platform nine.", 2.0, **kw)])  # type: ignore[arg-type]
    return folder


def test_a_missing_speech_model_folder_is_named_with_the_fix_and_videos_wait(tmp_path) -> None:
    folder = _said(tmp_path)
    lib = library(tmp_path / "home", folder)
    lib.settings = lib.settings.replace(speech_model=str(tmp_path / "no-such-model"), screen_text=False)
    speech = lib.index().stages[0]
    assert speech.unavailable and "no-such-model" in speech.unavailable and "fix:" in speech.unavailable
    assert lib.catalog.stage_counts("speech", str(tmp_path / "no-such-model"))["pending"] == 1
    assert lib.catalog.videos()[0]["status"] == "indexed"  # the picture is not held back


def test_a_damaged_speech_model_folder_is_named_with_the_fix(tmp_path) -> None:
    tiny = tiny_en()
    broken = tmp_path / "broken-model"
    shutil.copytree(tiny, broken)
    (broken / "model.bin").write_bytes(b"not a model" * 100)
    lib = library(tmp_path / "home", _said(tmp_path))
    lib.settings = lib.settings.replace(speech_model=str(broken), screen_text=False)
    speech = lib.index().stages[0]
    assert speech.unavailable and str(broken) in speech.unavailable and "cannot be loaded" in speech.unavailable
    (broken / "config.json").unlink()
    with pytest.raises(SpeechModelError, match=r"missing config.json.*fix:"):
        check_folder(broken)


def test_an_unknown_language_setting_is_refused_and_a_foreign_voice_still_indexes(tmp_path) -> None:
    with pytest.raises(SettingsError, match="speech_language"):
        EngineSettings(speech_language="Klingon").validate()
    folder = _said(tmp_path, voice="fi")  # Finnish speech through an English-only model
    lib = library(tmp_path / "home", folder, screen_text=False)
    speech = lib.index().stages[0]
    assert speech.unavailable is None and speech.done == 1  # transcribed as well as tiny.en can, no crash
    lib.settings = lib.settings.replace(speech_language="fi")
    with lib.catalog.transaction() as db:
        db.execute("DELETE FROM stage_results")
    speech = lib.index().stages[0]
    assert speech.unavailable and "not a language the speech model" in speech.unavailable
    assert "fix:" in speech.unavailable


@pytest.fixture
def model_server(tmp_path):
    """A loopback server laid out like the model hub, serving the real tiny.en files as ``tiny.en``."""
    root = tmp_path / "www"
    shutil.copytree(tiny_en(), root / SIZES["tiny.en"] / "resolve" / "main")

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def __init__(self, *args, **kwargs) -> None:
            super().__init__(*args, directory=str(root), **kwargs)

        def log_message(self, *args) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Quiet)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def test_a_size_name_downloads_once_with_progress_then_works_offline(model_server, monkeypatch) -> None:
    monkeypatch.setenv("SCENEFIND_SPEECH_MODEL_URL", model_server)
    ref = resolve("tiny.en")
    seen: list[tuple[float, str]] = []
    folder = ensure_local(ref, progress=lambda f, m: seen.append((f, m)))
    assert (folder / ".complete").is_file() and (folder / "model.bin").stat().st_size > 10_000_000
    assert seen[-1][0] == pytest.approx(1.0, abs=0.2) and any("model.bin" in m for _, m in seen)
    monkeypatch.setenv("SCENEFIND_SPEECH_MODEL_URL", "http://127.0.0.1:9")  # nothing listens: offline
    assert ensure_local(ref) == folder
    other = resolve("base")
    with pytest.raises(SpeechModelError, match=r"speech model base: .*could not download.*fix:"):
        ensure_local(other)


def test_speech_model_settings_come_from_the_file_env_and_flag(tmp_path, monkeypatch) -> None:
    save(EngineSettings(speech_model="small"), tmp_path / "settings.toml")
    assert load(tmp_path / "settings.toml").speech_model == "small"
    monkeypatch.setenv("SCENEFIND_SPEECH_MODEL", "tiny.en")
    assert load(tmp_path / "settings.toml").speech_model == "tiny.en"
    with pytest.raises(SpeechModelError, match="not a model size"):
        resolve("huge")


def test_no_op_index_loads_no_speech_or_ocr_model(tmp_path) -> None:
    folder = _said(tmp_path)
    library(tmp_path / "home", folder).index()
    code = (
        "import sys\n"
        "from engine.library.library import Library\n"
        f"lib = Library({str(tmp_path / 'home')!r})\n"
        "r = lib.index()\n"
        "assert [s.pending for s in r.stages] == [0, 0], r.stages\n"
        "print(','.join(m for m in ('faster_whisper', 'ctranslate2', 'rapidocr', 'onnxruntime') if m in sys.modules))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""


@pytest.mark.slow
def test_a_three_hour_recording_is_transcribed_in_bounded_memory(tmp_path) -> None:
    """VAD skips three hours of silence; sound is streamed in ten-minute chunks, so memory stays that of one
    chunk plus the model, and the one sentence near the end comes back at its time."""
    tiny = tiny_en()
    said = Utterance("My grandmother grew tomatoes in the garden every summer.", 3 * 3600 - 60)
    video = write_long_recording(tmp_path / "long.mp4", 3.0, said)
    code = (
        "import json, time\n"
        "from engine.speech.transcriber import Transcriber\n"
        f"t = Transcriber({str(tiny)!r})\n"
        "started = time.perf_counter()\n"
        f"x = t.transcribe({str(video.path)!r})\n"
        # the peak resident size of this process image (ru_maxrss would carry pytest's own across exec)
        "hwm = next(int(l.split()[1]) for l in open('/proc/self/status') if l.startswith('VmHWM'))\n"
        "print(json.dumps({'s': time.perf_counter() - started, 'audio': x.audio_s, 'rss_mb': hwm / 1024,"
        " 'words': [[w.start, w.text] for s in x.segments for w in s.words]}))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True)
    got = json.loads(out.stdout.strip().splitlines()[-1])
    assert got["audio"] == pytest.approx(3 * 3600, abs=5)
    assert got["rss_mb"] < 900, got["rss_mb"]  # 3 h as float32 alone would be 690 MB on top of the model (240)
    grandmother = [t for t, w in got["words"] if "grandmother" in w.lower()]
    assert grandmother and abs(grandmother[0] - said.start) < 2.0, got["words"]


def test_subtitle_cues_are_short_timed_by_words_and_never_overlap() -> None:
    words = [Word(i * 0.4, i * 0.4 + 0.3, f"word{i}" + ("." if i % 9 == 8 else "")) for i in range(40)]
    segment = Segment.from_words(words)
    items = cues([segment])
    assert all(len(line) <= 44 for c in items for line in c.text.split("\n"))
    assert all(c.end - c.start <= 7.0 + 0.4 for c in items)
    assert all(a.end <= b.start for a, b in itertools.pairwise(items))
    assert items[0].start == 0.0 and items[-1].end == pytest.approx(words[-1].end)
    srt = render([segment], "srt")
    assert srt.startswith("1\n00:00:00,000 --> ") and "\n\n2\n" in srt


def test_a_version_2_catalog_upgrades_to_fts_tables(tmp_path) -> None:
    import sqlite3

    from engine.library.catalog import Catalog

    path = tmp_path / "old.sqlite"
    db = sqlite3.connect(path)
    for version in (0, 1):
        for statement in statements(MIGRATIONS[version]):
            db.execute(statement)
    db.execute("PRAGMA user_version = 2")
    db.commit()
    db.close()
    with Catalog(path) as catalog:
        assert catalog.schema_version == SCHEMA_VERSION == 4  # 3 (sound files), then 4 (speech and text)
        assert catalog.fts_size("speech") == 0 and catalog.fts_size("text") == 0
