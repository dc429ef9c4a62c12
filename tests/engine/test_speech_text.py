"""Speech and on-screen text with the real models: tiny.en (faster-whisper) and RapidOCR, on generated videos.

One library is indexed once for the module (a spoken video, a slide video, silent clips, a broken sound
track, an empty file); each test then asks it one question. Speech is espeak-ng's, so its ground truth is
exact: each sentence's span is where its synthesised sound starts and ends.
"""

from __future__ import annotations

import sqlite3
import subprocess
from pathlib import Path

import numpy as np
import pytest

from engine.bench.speech_media import Caption, Utterance, write_spoken_video
from engine.cli import main
from engine.library.library import Library
from engine.media.synthetic import write_color_video
from engine.search.lexical import LexicalQueryError, excluded_videos, parse_query, search_lexical
from tests.engine.speech_fixtures import iou, library, tiny_en

pytestmark = pytest.mark.slow

TALK = [
    Utterance("My grandmother grew tomatoes in the garden every summer.", 2.0),
    Utterance("We watched the fireworks from the roof of the old library.", 11.0, voice="en-gb-x-rp", gap=3),
]
SLIDES = [Caption("Quarterly results 2024", 1.0, 6.0, 28), Caption("Revenue grew in Europe", 6.0, 11.0, 24, y=150)]


def corrupt_audio_copy(src: Path, dst: Path) -> Path:
    """An MPEG-TS copy of ``src`` whose audio packets are overwritten with noise: pictures decode, sound not."""
    subprocess.run(["ffmpeg", "-v", "error", "-y", "-i", str(src), "-c", "copy", "-f", "mpegts", str(dst)], check=True)
    data = bytearray(dst.read_bytes())
    rng = np.random.default_rng(0)
    audio_pid = 0x101  # ffmpeg's mpegts muxer: video 0x100, audio 0x101
    for off in range(0, len(data) - 188, 188):
        pid = ((data[off + 1] & 0x1F) << 8) | data[off + 2]
        if data[off] == 0x47 and pid == audio_pid:
            data[off + 4 : off + 188] = rng.integers(0, 256, 184, dtype=np.uint8).tobytes()  # PES headers too
    dst.write_bytes(bytes(data))
    return dst


@pytest.fixture(scope="module")
def indexed(tmp_path_factory: pytest.TempPathFactory) -> tuple[Library, dict[str, object], Path]:
    tiny_en()
    root = tmp_path_factory.mktemp("speech")
    folder = root / "videos"
    talk = write_spoken_video(folder / "talk.mp4", 20, TALK)
    slides = write_spoken_video(folder / "slides.mp4", 12, captions=SLIDES, audio=False)
    write_color_video(folder / "silent.avi", [(2, (200, 30, 30)), (2, (30, 30, 200))])
    corrupt_audio_copy(talk.path, folder / "broken sound.ts")
    (folder / "empty.mp4").write_bytes(b"")
    lib = library(root / "home", folder)
    result = lib.index()
    return lib, {"talk": talk, "slides": slides, "result": result}, root


def _id(lib: Library, name: str) -> int:
    return next(v["id"] for v in lib.catalog.videos() if Path(v["path"]).name == name)


def test_a_spoken_sentence_is_transcribed_and_found_by_a_phrase_at_its_time(indexed) -> None:
    lib, media, _ = indexed
    truth = media["talk"].utterances  # type: ignore[attr-defined]
    for query, said in (('"grew tomatoes in the garden"', truth[0]), ("fireworks from the roof", truth[1])):
        top = search_lexical(lib.catalog, "speech", query, k=5)[0]
        assert top.video_id == _id(lib, "talk.mp4")
        assert iou((top.start, top.end), (said.start, said.end)) >= 0.5, (query, top, said)
        assert top.relevance >= 80 and any(w.matched for w in top.words)
    segments = lib.catalog.speech_segments_of(_id(lib, "talk.mp4"))
    assert "grandmother" in " ".join(r["text"] for r in segments).lower()


def test_the_transcript_exports_as_srt_vtt_and_text(indexed, capsys, tmp_path) -> None:
    lib, media, root = indexed
    talk = str(media["talk"].path)  # type: ignore[attr-defined]
    assert main(["--home", str(lib.paths.root), "transcript", talk, "--srt"]) == 0
    srt = capsys.readouterr().out
    assert srt.startswith("1\n00:00:0") and " --> " in srt and "grandmother" in srt.lower()
    out = tmp_path / "talk.vtt"
    assert main(["--home", str(lib.paths.root), "transcript", talk, "--out", str(out)]) == 0
    assert capsys.readouterr().out.strip() == str(out)
    assert out.read_text(encoding="utf-8").startswith("WEBVTT\n\n00:00:0")
    assert main(["--home", str(lib.paths.root), "transcript", talk, "--txt"]) == 0
    assert capsys.readouterr().out.startswith("[00:00:0")
    slides = str(media["slides"].path)  # type: ignore[attr-defined]
    assert main(["--home", str(lib.paths.root), "transcript", slides, "--srt"]) == 2
    assert "has no sound track" in capsys.readouterr().err
    assert main(["--home", str(lib.paths.root), "transcript", str(root / "nowhere.mp4")]) == 2
    assert "not in the library" in capsys.readouterr().err


def test_a_slides_text_is_found_while_it_is_shown(indexed) -> None:
    lib, _, _ = indexed
    for query, caption in (("quarterly results", SLIDES[0]), ("Revenue Europe", SLIDES[1])):
        top = search_lexical(lib.catalog, "text", query, k=5)[0]
        assert top.video_id == _id(lib, "slides.mp4")
        assert iou((top.start, top.end), (caption.start, caption.end)) >= 0.5, (query, top)
    assert excluded_videos(lib.catalog, "text", "europe") == {_id(lib, "slides.mp4")}
    assert excluded_videos(lib.catalog, "speech", "europe") == set()


def test_videos_without_sound_or_with_broken_sound_still_index(indexed, capsys) -> None:
    lib, media, _ = indexed
    result = media["result"]
    speech = next(s for s in result.stages if s.stage == "speech")  # type: ignore[attr-defined]
    assert speech.unavailable is None and speech.done == 1 and speech.no_audio == 2
    failed = {Path(p).name: why for p, why in speech.failed}
    assert sorted(failed) == ["broken sound.ts", "empty.mp4"] and "0 bytes" in failed["empty.mp4"]
    assert "audio stream" in failed["broken sound.ts"]
    status = {Path(v["path"]).name: v["status"] for v in lib.catalog.videos()}
    assert status["silent.avi"] == status["slides.mp4"] == status["broken sound.ts"] == "indexed"
    assert status["empty.mp4"] == "failed"  # the picture stage's reason; no stage ran on it
    for name, expected in (("silent.avi", "no_audio"), ("slides.mp4", "no_audio"), ("broken sound.ts", "failed")):
        assert lib.catalog.stage_result(_id(lib, name), "speech")["status"] == expected
    assert main(["--home", str(lib.paths.root), "status"]) == 0
    out = capsys.readouterr().out
    assert (
        "1 done, 2 without sound, 2 failed, 0 pending" in out and "speech failed:" in out and "broken sound.ts" in out
    )


@pytest.mark.parametrize("query", ['"', "*", "NEAR", "-", "AND", "OR NOT", '"unbalanced', "a*b", "(", ":", "NEAR(a b)",
                                   "^x", "col:word", '""', "- - -", "…", "🙂"])  # fmt: skip
def test_punctuation_and_fts_syntax_queries_never_reach_fts_as_syntax(indexed, query) -> None:
    lib, _, _ = indexed
    for channel in ("speech", "text"):
        try:
            hits = search_lexical(lib.catalog, channel, query)
        except LexicalQueryError as exc:
            assert "nothing to search for" in str(exc) and "type words" in str(exc)
        except sqlite3.Error as exc:  # pragma: no cover - the failure this test exists for
            pytest.fail(f"{query!r} reached FTS5 as syntax: {exc}")
        else:
            assert isinstance(hits, list)
    assert parse_query("the part where he says NEAR").terms == ("near",)  # a word, not an operator


def test_accents_and_word_forms_match(indexed) -> None:
    lib, _, _ = indexed
    assert search_lexical(lib.catalog, "speech", "GRANDMÔTHER tomato")  # case, accents, plural
    assert search_lexical(lib.catalog, "text", "résults")


def test_a_video_whose_transcript_is_missing_is_transcribed_again(indexed) -> None:
    lib, _, _ = indexed
    video = lib.catalog.video(_id(lib, "talk.mp4"))
    with lib.catalog.transaction() as db:
        lib.catalog.forget_stages(db, video["id"])
    assert not search_lexical(lib.catalog, "speech", "grandmother")
    assert lib.catalog.stage_counts("speech", lib.settings.speech_model)["pending"] == 1
    lib.index()  # the stage finds it pending again and transcribes it
    assert search_lexical(lib.catalog, "speech", "grandmother")
