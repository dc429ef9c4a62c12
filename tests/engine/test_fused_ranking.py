"""One ranking over picture, speech and on-screen text, with the real tiny.en and RapidOCR models.

The picture side is ``fake:color`` (a weightless encoder that sees colours and reads colour words), so what
each video "looks like" is exact; the speech is espeak-ng's, so when each sentence is said is exact. One
library is indexed once for the module:

* ``says.mp4``: a grey picture over which a voice says "The secret word is purple balloon.";
* ``looks.mp4``: a purple picture and no sound (it only looks like "purple");
* ``slide.mp4``: a purple picture with the caption "QUARTERLY BUDGET" on screen, no sound.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from engine.bench.speech_media import Caption, Utterance, write_spoken_video
from engine.cli import main
from engine.library.library import Library
from engine.search.query import Query
from engine.search.searcher import Searcher, SearchError
from tests.engine.speech_fixtures import iou, library, tiny_en

pytestmark = pytest.mark.slow

GREY, PURPLE = (128, 128, 128), (120, 50, 170)
SENTENCE = Utterance("The secret word is purple balloon.", 1.0)


@pytest.fixture(scope="module")
def indexed(tmp_path_factory: pytest.TempPathFactory) -> tuple[Library, dict[str, object], Path]:
    tiny_en()
    root = tmp_path_factory.mktemp("fused")
    folder = root / "videos"
    says = write_spoken_video(folder / "says.mp4", 6, [SENTENCE], colour=GREY)
    write_spoken_video(folder / "looks.mp4", 6, colour=PURPLE, audio=False)
    write_spoken_video(folder / "slide.mp4", 6, captions=[Caption("QUARTERLY BUDGET", 0.5, 5.5, 32)], colour=PURPLE,
                       audio=False)  # fmt: skip
    lib = library(root / "home", folder)
    lib.index()
    return lib, {"says": says}, root


def _search(lib: Library, text: str, **kw: object) -> list:
    searcher = Searcher(lib, lib.encoder())
    try:
        results = searcher.search(Query(text=text, min_relevance=0.0, **kw))  # type: ignore[arg-type]
    finally:
        searcher.close()
    return results.moments if kw.get("mode") == "moments" else results.videos


def _names(hits: list) -> list[str]:
    return [Path(h.video).name for h in hits]


def _shown(hits: list) -> list[tuple[str, str, float]]:
    return [(Path(h.video).name, h.channel, round(h.relevance, 1)) for h in hits]


def test_a_video_that_says_the_query_ranks_above_one_that_only_looks_like_it(indexed) -> None:
    lib, _, _ = indexed
    hits = _search(lib, "the secret word is purple balloon")
    names = _names(hits)
    assert names.index("says.mp4") < names.index("looks.mp4"), _shown(hits)
    top = hits[0]
    assert top.channel == "speech" and "purple balloon" in (top.quote or "").lower()
    assert top.relevance >= 80
    looks = hits[names.index("looks.mp4")]
    assert looks.channel == "picture" and looks.quote is None and looks.quote_start is None


def test_a_visual_query_ranks_what_looks_like_it_above_what_only_mentions_it(indexed) -> None:
    lib, _, _ = indexed
    hits = _search(lib, "a purple room")
    names = _names(hits)
    assert names.index("looks.mp4") < names.index("says.mp4"), _shown(hits)
    assert hits[0].channel == "picture"
    assert [h.relevance for h in hits] == sorted((h.relevance for h in hits), reverse=True)


def test_a_spoken_moment_is_found_at_its_time_and_quoted(indexed) -> None:
    lib, media, _ = indexed
    said = media["says"].utterances[0]  # type: ignore[attr-defined]
    top = _search(lib, "secret word purple balloon", mode="moments")[0]
    assert Path(top.video).name == "says.mp4" and top.channel == "speech"
    assert iou((top.start, top.end), (said.start, said.end)) >= 0.5
    assert top.quote_start == pytest.approx(top.start, abs=0.5) and top.quote_end >= top.quote_start


def test_said_and_shows_restrict_to_one_channel(indexed) -> None:
    lib, _, _ = indexed
    said = _search(lib, "purple balloon", channel="speech")
    assert _names(said) == ["says.mp4"] and said[0].channel == "speech"
    shown = _search(lib, "quarterly budget", channel="text")
    assert _names(shown) == ["slide.mp4"] and shown[0].channel == "text"
    assert "budget" in (shown[0].quote or "").lower()
    assert _search(lib, "quarterly budget", channel="speech") == []
    assert _search(lib, "purple", channel="text") == []  # purple is seen, never written
    fused = _search(lib, "quarterly budget")
    assert _names(fused)[0] == "slide.mp4" and fused[0].channel == "text"


def test_exclusion_works_in_each_channel(indexed) -> None:
    lib, media, _ = indexed
    assert {"says.mp4", "looks.mp4", "slide.mp4"} <= set(_names(_search(lib, "purple")))
    # said in says.mp4 / shown in slide.mp4 / seen in says.mp4 (grey):
    assert set(_names(_search(lib, "purple", exclude=("balloon",)))) == {"looks.mp4", "slide.mp4"}
    assert set(_names(_search(lib, "purple", exclude=("budget",)))) == {"looks.mp4", "says.mp4"}
    assert "says.mp4" not in _names(_search(lib, "purple", exclude=("grey",)))
    # moments: only where the excluded word is said goes (the rest of says.mp4 may still be a weak picture find)
    said = media["says"].utterances[0]  # type: ignore[attr-defined]
    moments = _search(lib, "purple", exclude=("balloon",), mode="moments")
    assert moments and all(h.channel != "speech" for h in moments)
    assert not [h for h in moments if Path(h.video).name == "says.mp4" and h.start < said.end and h.end > said.start]
    assert any(h.channel == "speech" for h in _search(lib, "purple", mode="moments"))
    # restricted to speech, an excluded word is judged in speech only: budget is never said
    assert _names(_search(lib, "purple", channel="speech", exclude=("budget",))) == ["says.mp4"]


def test_search_json_carries_channel_and_quote(indexed, capsys) -> None:
    _, _, root = indexed
    home = ["--home", str(root / "home")]
    assert main([*home, "search", "--said", "purple balloon", "--moments", "--json"]) == 0
    hits = json.loads(capsys.readouterr().out)
    assert hits and {"channel", "quote", "quote_start", "quote_end"} <= hits[0].keys()
    assert hits[0]["channel"] == "speech" and "balloon" in hits[0]["quote"].lower()
    assert main([*home, "search", "a purple room", "--json"]) == 0
    top = json.loads(capsys.readouterr().out)[0]
    assert top["channel"] == "picture" and top["quote"] is None and top["quote_end"] is None
    assert main([*home, "search", "--shows", "budget"]) == 0
    out = capsys.readouterr().out
    assert "slide.mp4" in out and "shown" in out and "QUARTERLY BUDGET" in out.upper()
    assert main([*home, "search", "--said", "!!!"]) != 0
    assert "nothing to search for" in capsys.readouterr().err


def test_batch_lines_accept_said_and_shows(indexed, capsys, tmp_path) -> None:
    _, _, root = indexed
    batch = tmp_path / "q.jsonl"
    batch.write_text('{"said": "purple balloon", "id": 1}\n{"shows": "budget", "moments": true}\n')
    assert main(["--home", str(root / "home"), "search", "--batch", str(batch)]) == 0
    said, shows = (json.loads(line) for line in capsys.readouterr().out.splitlines())
    assert said["hits"][0]["channel"] == "speech" and Path(said["hits"][0]["video"]).name == "says.mp4"
    assert shows["hits"][0]["channel"] == "text" and Path(shows["hits"][0]["video"]).name == "slide.mp4"


def test_a_channel_needs_words(indexed) -> None:
    lib, _, root = indexed
    searcher = Searcher(lib, lib.encoder())
    with pytest.raises(SearchError, match="only words"):
        searcher.search(Query(image=root / "x.png", channel="speech"))


def test_said_needs_no_picture_model_and_the_app_engine_takes_a_channel(indexed) -> None:
    from desktop.engine_api import RealEngine

    lib, _, root = indexed
    code = (
        "import sys\n"
        "from engine.cli import main\n"
        f"assert main(['--home', {str(root / 'home')!r}, 'search', '--said', 'purple balloon', '--json']) == 0\n"
        "print('LOADED', ','.join(m for m in ('torch', 'open_clip') if m in sys.modules))\n"
    )
    repo = Path(__file__).resolve().parents[2]
    out = subprocess.run([sys.executable, "-c", code], cwd=repo, capture_output=True, text=True, check=True)
    assert "says.mp4" in out.stdout and out.stdout.strip().endswith("LOADED")
    engine = RealEngine(lib)
    shown = engine.search(Query(text="quarterly budget", min_relevance=0.0), channel="text")
    assert [Path(h.video).name for h in shown.videos] == ["slide.mp4"] and shown.videos[0].channel == "text"
    said = engine.search(Query(text="quarterly budget", min_relevance=0.0), channel="speech")
    assert said.videos == []
    with pytest.raises(SearchError, match="nothing to search for"):
        engine.search(Query(text="!!", min_relevance=0.0), channel="speech")


def test_said_in_a_library_with_no_transcript_yet_says_so(tmp_path, capsys) -> None:
    assert main(["--home", str(tmp_path / "home"), "search", "--said", "hello"]) == 0
    assert "no video is transcribed yet" in capsys.readouterr().out
