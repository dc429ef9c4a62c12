"""The fusion part of ``scenefind bench speech``: one ranking over picture and words, measured on mixed queries.

Each pair of videos sets a spoken query against a visual one (the picture model is ``fake:color``, which sees
colours and reads colour words, so what a video looks like is exact; the speech is espeak-ng's, so when each
sentence is said is exact):

* ``said{i}.mp4``: a grey picture over which a voice says a sentence that names a colour ("The spare key is
  under the red flower pot.");
* ``seen{i}.mp4``: that colour on screen from 2 to 6 s, grey around it, no sound.

The spoken query quotes the sentence ("key under the red flower pot"): its answer is ``said{i}`` at the
sentence, while ``seen{i}`` only looks like it. The visual query names the colour and something not said ("a
red wall"): its answer is ``seen{i}`` from 2 to 6 s, while ``said{i}`` only mentions the colour. Every rule of
``engine.search.channels.Fusion`` compared here answers the same queries on the same index: video R@1 (the
right video first) and moment R1@0.5 (the right video's right span first, IoU >= 0.5), per query kind. The
words' relevance of the right spoken hits is reported too: the picture's weight must stay below it for a
spoken query to win over a picture that only looks like it.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from engine.bench.speech_media import Utterance, write_spoken_video
from engine.jobs import CancelToken, ProgressCallback, check_cancel, report, wrap_progress
from engine.library.library import Library
from engine.media.synthetic import write_color_video
from engine.search.channels import DEFAULT_FUSION, Fusion
from engine.search.moments import temporal_iou
from engine.search.query import Query
from engine.settings import EngineSettings, save

GREY = (128, 128, 128)
SECONDS = 8.0
SEEN_SPAN = (2.0, 6.0)


@dataclass(frozen=True)
class Pair:
    colour: str
    rgb: tuple[int, int, int]
    sentence: str
    spoken: str  # a query quoting the sentence
    visual: str  # the colour and something the sentence does not say


PAIRS: tuple[Pair, ...] = (
    Pair("red", (220, 30, 30), "The spare key is under the red flower pot.", "key under the red flower pot",
         "a red wall"),
    Pair("orange", (245, 140, 20), "Her new bicycle has an orange basket on the front.",
         "bicycle with an orange basket", "an orange sunset"),
    Pair("yellow", (240, 225, 40), "The yellow envelope holds the tickets for Friday.",
         "yellow envelope holds the tickets", "a yellow field"),
    Pair("green", (30, 150, 50), "We parked the car next to the green fence.", "parked next to the green fence",
         "green grass"),
    Pair("blue", (30, 70, 220), "Grandpa always wore a blue jacket to church.", "blue jacket to church",
         "a clear blue sky"),
    Pair("purple", (120, 50, 170), "The secret word is purple balloon.", "secret word purple balloon",
         "a purple room"),
)  # fmt: skip

RULES: dict[str, Fusion] = {
    "picture only": Fusion({"picture": 1.0, "speech": 0.0, "text": 0.0}),
    "words only": Fusion({"picture": 0.0, "speech": 1.0, "text": 1.0}),
    "max": Fusion({"picture": 1.0, "speech": 1.0, "text": 1.0}, rule="max"),
    "noisy-OR, equal weights": Fusion({"picture": 1.0, "speech": 1.0, "text": 1.0}),
    "noisy-OR, picture 0.5": Fusion({"picture": 0.5, "speech": 1.0, "text": 1.0}),
    "noisy-OR, picture 0.7": Fusion({"picture": 0.7, "speech": 1.0, "text": 1.0}),
    "noisy-OR, picture 0.9 (default)": DEFAULT_FUSION,
}


@dataclass(frozen=True)
class _Ask:
    kind: str  # "spoken" | "visual"
    text: str
    video: str  # file name of the right answer
    span: tuple[float, float]


def _write(folder: Path) -> list[_Ask]:
    asks = []
    for i, pair in enumerate(PAIRS):
        said = write_spoken_video(folder / f"said{i}.mp4", SECONDS, [Utterance(pair.sentence, 1.5)], colour=GREY,
                                  seed=i)  # fmt: skip
        a, b = SEEN_SPAN
        write_color_video(folder / f"seen{i}.mp4", [(a, GREY), (b - a, pair.rgb), (SECONDS - b, GREY)])
        u = said.utterances[0]
        asks.append(_Ask("spoken", pair.spoken, f"said{i}.mp4", (u.start, u.end)))
        asks.append(_Ask("visual", pair.visual, f"seen{i}.mp4", SEEN_SPAN))
    return asks


def run_fusion_bench(
    root: Path, speech_model: str, *, progress: ProgressCallback | None = None, cancel: CancelToken | None = None
) -> dict[str, Any]:
    """Write the pairs under ``root``, index them (fake:color pictures, speech, screen text) and score every
    rule of ``RULES`` on the mixed queries (see the module docstring)."""
    from engine.search.lexical import search_lexical
    from engine.search.searcher import Searcher

    report(progress, 0.0, "Writing the fusion videos")
    asks = _write(root / "videos")
    home = root / "home"
    home.mkdir(parents=True, exist_ok=True)
    save(EngineSettings(model="fake:color", speech_model=speech_model), home / "settings.toml")
    lib = Library(home)
    try:
        lib.add_folder(root / "videos")
        report(progress, 0.2, "Indexing the fusion videos")
        lib.index(progress=wrap_progress(progress, 0.2, 0.8), cancel=cancel)
        names = {int(v["id"]): Path(v["path"]).name for v in lib.catalog.videos()}
        rules: dict[str, Any] = {}
        for n, (name, fusion) in enumerate(RULES.items()):
            check_cancel(cancel)
            report(progress, 0.8 + 0.2 * n / len(RULES), f"Fusion: {name}")
            searcher = Searcher(lib, lib.encoder(), fusion=fusion)
            try:
                rules[name] = _score(searcher, asks, names)
            finally:
                searcher.close()
        words = [
            hits[0].relevance
            for ask in asks
            if ask.kind == "spoken"
            and (hits := search_lexical(lib.catalog, "speech", ask.text, k=1))
            and names.get(hits[0].video_id) == ask.video
        ]
    finally:
        lib.close()
    spoken = [a for a in asks if a.kind == "spoken"]
    return {
        "queries": {"spoken": len(spoken), "visual": len(asks) - len(spoken)},
        "rules": rules,
        "default": next(k for k, v in RULES.items() if v is DEFAULT_FUSION),
        "words_relevance_right_spoken": {
            "min": float(min(words, default=0.0)),
            "p10": float(np.percentile(words, 10)) if words else 0.0,
            "median": float(np.median(words)) if words else 0.0,
            "found": len(words),
        },
    }


def _score(searcher: Any, asks: list[_Ask], names: dict[int, str]) -> dict[str, dict[str, float]]:
    """Video R@1 and moment R1@0.5 per query kind and over all."""
    right: dict[str, list[tuple[bool, bool]]] = {"spoken": [], "visual": []}
    for ask in asks:
        videos = searcher.search(Query(text=ask.text, k=5, min_relevance=0.0)).videos
        moments = searcher.search(Query(text=ask.text, k=5, mode="moments", min_relevance=0.0)).moments
        top_video = bool(videos) and names.get(videos[0].video_id) == ask.video
        m = moments[0] if moments else None
        top_moment = m is not None and names.get(m.video_id) == ask.video and temporal_iou((m.start, m.end),
                                                                                          ask.span) >= 0.5  # fmt: skip
        right[ask.kind].append((top_video, top_moment))
    right["all"] = right["spoken"] + right["visual"]
    return {
        kind: {"video_r1": sum(v for v, _ in r) / len(r), "moment_r1_iou50": sum(m for _, m in r) / len(r)}
        for kind, r in right.items()
    }


def fusion_lines(f: dict[str, Any]) -> list[str]:
    """The fusion table, one line per rule."""
    q = f["queries"]
    out = [f"fusion ({q['spoken']} spoken + {q['visual']} visual queries; video R@1 / moment R1@0.5):"]
    for name, r in f["rules"].items():
        cells = "  ".join(
            f"{k} {r[k]['video_r1']:.2f}/{r[k]['moment_r1_iou50']:.2f}" for k in ("spoken", "visual", "all")
        )
        out.append(f"  {name:32s} {cells}")
    w = f["words_relevance_right_spoken"]
    out.append(f"  words relevance of the right spoken hits: min {w['min']:.1f}, p10 {w['p10']:.1f}, "
               f"median {w['median']:.1f} ({w['found']} found)")  # fmt: skip
    return out


__all__ = ["PAIRS", "RULES", "fusion_lines", "run_fusion_bench"]
