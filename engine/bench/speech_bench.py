"""``scenefind bench speech``: transcription, moment retrieval, OCR and FTS latency against known ground truth.

It writes real videos (``engine.bench.speech_media``): espeak-ng speaking the corpus' sentences at known times
in four voices and speeds over changing pictures, captions drawn at known sizes, and the same speech with
white noise or music mixed at 10 dB and 0 dB SNR. Each condition is its own library; the speech stage and
(on the clean set) the text stage run exactly as ``scenefind index`` runs them. The shared real clips that
have sound are transcribed too (speed only: they have no reference transcript). Reported per condition:
WER, moment R@1 (the right video first) and R1@0.5 (first, with IoU >= 0.5 against the sentence's span) for
exact phrases, rare words and paraphrases; OCR line recall by text height; x real time of each stage; FTS
query latency over ``fts_hours`` of synthetic transcript rows (built once, cached in the user cache); and the
fused ranking of picture and words on a mixed set of spoken and visual queries, rule against rule
(``engine.bench.speech_fusion``).
"""

from __future__ import annotations

import difflib
import os
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from engine.bench.speech_corpus import CAPTIONS, SENTENCES, VOICES, normalise, word_errors
from engine.bench.speech_fts import fts_latency
from engine.bench.speech_fusion import fusion_lines, run_fusion_bench
from engine.bench.speech_media import Caption, Noise, SpokenVideo, Utterance, write_spoken_video
from engine.indexing.pipeline import apply_scan
from engine.indexing.stages import run_stage
from engine.jobs import CancelToken, ProgressCallback, check_cancel, report, wrap_progress
from engine.library.library import Library
from engine.search.lexical import search_lexical
from engine.settings import EngineSettings, save

CONDITIONS: tuple[tuple[str, Noise | None, float | None], ...] = (
    ("clean", None, None),
    ("10 dB", "white", 10.0),
    ("0 dB", "music", 0.0),
)
GOALS = {
    "wer_clean": ("WER on clean speech (tiny.en)", "<=", 0.10),
    "phrase_r1_clean": ("exact-phrase moment R@1, clean", ">=", 0.95),
    "phrase_r1_iou_clean": ("exact-phrase moment R1@0.5, clean", ">=", 0.90),
    "ocr_recall_24px": ("OCR line recall, text >= 24 px", ">=", 0.90),
    "speech_speed": ("speech stage x real time (2 cores, VAD counts)", ">=", 10.0),
    "fts_p50_ms": ("FTS query p50 at the FTS size, ms", "<", 20.0),
    "fused_r1": ("fused video R@1, mixed spoken and visual queries (ours)", ">=", 0.9),
}
SECONDS = 30.0  # each video: three sentences at 3, 12 and 21 s


def _videos(folder: Path, count: int, noise: Noise | None, snr: float | None, seed: int) -> list[SpokenVideo]:
    out = []
    for v in range(count):
        said = []
        for k in range(3):
            voice, speed, gap = VOICES[(v + k) % len(VOICES)]
            said.append(Utterance(SENTENCES[(3 * v + k) % len(SENTENCES)].text, 3.0 + 9.0 * k, voice, speed, gap))
        shown = []
        for k in range(2):
            text, px = CAPTIONS[(2 * v + k) % len(CAPTIONS)]
            shown.append(Caption(text, 2.0 + 14.0 * k, 12.0 + 14.0 * k, px, y=60 + 90 * k))
        out.append(write_spoken_video(folder / f"talk{v:02d}.mp4", SECONDS, said, shown, noise=noise, snr_db=snr,
                                      seed=seed + v))  # fmt: skip
    return out


def _iou(a: tuple[float, float], b: tuple[float, float]) -> float:
    inter = max(0.0, min(a[1], b[1]) - max(a[0], b[0]))
    union = max(a[1], b[1]) - min(a[0], b[0])
    return inter / union if union > 0 else 0.0


def _retrieval(lib: Library, videos: list[SpokenVideo]) -> dict[str, dict[str, float]]:
    """R@1 and R1@0.5 per query kind over every sentence of ``videos``."""
    ids = {Path(v["path"]).name: v["id"] for v in lib.catalog.videos()}
    scores: dict[str, list[tuple[bool, bool]]] = {"phrase": [], "rare": [], "paraphrase": []}
    by_text = {s.text: s for s in SENTENCES}
    for video in videos:
        for said in video.utterances:
            sentence = by_text[said.text]
            for kind, query in (("phrase", f'"{sentence.phrase}"'), ("rare", sentence.rare),
                                ("paraphrase", sentence.paraphrase)):  # fmt: skip
                hits = search_lexical(lib.catalog, "speech", query, k=1)
                right = bool(hits) and hits[0].video_id == ids[video.path.name]
                tight = right and _iou((hits[0].start, hits[0].end), (said.start, said.end)) >= 0.5
                scores[kind].append((right, tight))
    return {
        kind: {"r1": sum(r for r, _ in s) / len(s), "r1_iou50": sum(t for _, t in s) / len(s), "queries": len(s)}
        for kind, s in scores.items()
        if s
    }


def _wer(lib: Library, videos: list[SpokenVideo]) -> float:
    errors = words = 0
    for video in videos:
        row = lib.catalog.video_by_path(str(video.path.resolve()))
        said = " ".join(r["text"] for r in lib.catalog.speech_segments_of(row["id"])) if row else ""
        reference = normalise(" ".join(u.text for u in video.utterances))
        errors += word_errors(reference, normalise(said))
        words += len(reference)
    return errors / max(1, words)


def _ocr(lib: Library, videos: list[SpokenVideo]) -> dict[str, Any]:
    """Recall of the drawn captions by text height: a caption counts when a stored line of its video reads the
    same (90% similar once case and spaces are folded) while it is on screen; plus text-query R@1."""
    by_px: dict[int, list[bool]] = {}
    queries: list[bool] = []
    for video in videos:
        row = lib.catalog.video_by_path(str(video.path.resolve()))
        lines = lib.catalog.text_lines_of(row["id"]) if row else []
        for cap in video.captions:
            want = " ".join(cap.text.lower().split())
            found = any(
                difflib.SequenceMatcher(None, want, " ".join(r["text"].lower().split())).ratio() >= 0.9
                and r["start"] < cap.end
                and r["end"] > cap.start
                for r in lines
            )
            by_px.setdefault(cap.px, []).append(found)
            hits = search_lexical(lib.catalog, "text", cap.text, k=1)
            queries.append(bool(hits) and row is not None and hits[0].video_id == row["id"])
    big = [f for px, found in by_px.items() if px >= 24 for f in found]
    return {
        "recall_by_px": {px: sum(f) / len(f) for px, f in sorted(by_px.items())},
        "recall_24px": sum(big) / len(big) if big else 0.0,
        "text_query_r1": sum(queries) / len(queries) if queries else 0.0,
    }


def _library(home: Path, folder: Path, speech_model: str) -> Library:
    home.mkdir(parents=True, exist_ok=True)
    save(EngineSettings(model="fake:color", speech_model=speech_model), home / "settings.toml")
    lib = Library(home)
    lib.add_folder(folder)
    apply_scan(lib.catalog)
    return lib


def run_speech_bench(
    speech_model: str | None = None,
    *,
    videos: int = 6,
    fts_hours: float = 10_000,
    real_clips: Path | None = None,
    work: Path | None = None,
    seed: int = 0,
    log: Callable[[str], object] | None = None,
    progress: ProgressCallback | None = None,
    cancel: CancelToken | None = None,
) -> dict[str, Any]:
    """Every figure of the benchmark (see the module docstring); ``goals`` says pass/fail with the values."""
    from engine.screen_text.stage import ScreenTextStage
    from engine.speech.models import bundled_tiny_en
    from engine.speech.stage import SpeechStage
    from engine.speech.transcriber import Transcriber

    say = log or (lambda _line: None)
    model = speech_model or str(bundled_tiny_en() or "tiny.en")
    started = time.perf_counter()
    figures: dict[str, Any] = {"speech_model": model, "videos_per_condition": videos, "seconds_each": SECONDS,
                               "cores": os.cpu_count(), "load_average": list(os.getloadavg())}  # fmt: skip
    transcriber = Transcriber(model)
    t0 = time.perf_counter()
    transcriber.load()
    figures["model_load_s"] = time.perf_counter() - t0
    settings = EngineSettings(speech_model=model)
    with tempfile.TemporaryDirectory(prefix="scenefind-speech-bench-") as tmp:
        root = Path(work) if work is not None else Path(tmp)
        conditions: dict[str, Any] = {}
        for n, (name, noise, snr) in enumerate(CONDITIONS):
            check_cancel(cancel)
            step = wrap_progress(progress, 0.7 * n / len(CONDITIONS), 0.7 * (n + 1) / len(CONDITIONS))
            report(step, 0.0, f"Writing the {name} videos")
            folder = root / name.replace(" ", "") / "videos"
            written = _videos(folder, videos, noise, snr, seed)
            lib = _library(root / name.replace(" ", "") / "home", folder, model)
            report(step, 0.2, f"Transcribing the {name} videos")
            speech = run_stage(lib.catalog, SpeechStage(settings, transcriber), progress=wrap_progress(step, 0.2, 0.7),
                               cancel=cancel)  # fmt: skip
            result: dict[str, Any] = {
                "wer": _wer(lib, written),
                "retrieval": _retrieval(lib, written),
                "speech_x_realtime": speech.speed,
                "speech_media_s": speech.media_s,
                "speech_elapsed_s": speech.elapsed_s,
            }
            if noise is None:
                report(step, 0.7, "Reading on-screen text")
                stage = ScreenTextStage(settings)
                text = run_stage(lib.catalog, stage, progress=wrap_progress(step, 0.7, 1.0), cancel=cancel)
                result["ocr"] = _ocr(lib, written) | {
                    "text_x_realtime": text.speed,
                    "frames_seen": stage.frames_seen,
                    "frames_read": stage.frames_read,
                }
            lib.close()
            conditions[name] = result
            say(_condition_line(name, result))
        figures["conditions"] = conditions
        check_cancel(cancel)
        fusion_step = wrap_progress(progress, 0.7, 0.8)
        figures["fusion"] = run_fusion_bench(root / "fusion", model, progress=fusion_step, cancel=cancel)
        for line in fusion_lines(figures["fusion"]):
            say(line)
        if real_clips is not None and real_clips.is_dir():
            report(progress, 0.8, "Transcribing the real clips")
            figures["real_clips"] = _real_clips(root / "real", real_clips, settings, transcriber, cancel)
            say(_real_line(figures["real_clips"]))
        report(progress, 0.85, f"FTS latency at {fts_hours:g} hours")
        figures["fts"] = fts_latency(fts_hours, progress=wrap_progress(progress, 0.85, 1.0), cancel=cancel)
        say(f"FTS over {fts_hours:g} h ({figures['fts']['rows']:,} rows): p50 {figures['fts']['p50_ms']:.1f} ms, "
            f"p95 {figures['fts']['p95_ms']:.1f} ms ({figures['fts']['build']})")  # fmt: skip
    figures["goals"] = _goals(figures)
    figures["wall_s"] = time.perf_counter() - started
    for goal in figures["goals"]:
        say(f"  {'PASS' if goal['pass'] else 'FAIL'}  {goal['goal']}: {goal['value']:.3g} (goal {goal['op']} "
            f"{goal['target']:g})")  # fmt: skip
    report(progress, 1.0, "Done")
    return figures


def _real_clips(home: Path, folder: Path, settings: EngineSettings, transcriber: Any, cancel: Any) -> dict[str, Any]:
    from engine.screen_text.stage import ScreenTextStage
    from engine.speech.stage import SpeechStage

    lib = _library(home, folder, settings.speech_model)
    try:
        speech = run_stage(lib.catalog, SpeechStage(settings, transcriber), cancel=cancel)
        stage = ScreenTextStage(settings)
        text = run_stage(lib.catalog, stage, cancel=cancel)
        segments = [r for v in lib.catalog.videos() for r in lib.catalog.speech_segments_of(v["id"])]
        words = sum(len(r["text"].split()) for r in segments)
        return {
            "videos": speech.pending,
            "with_sound": speech.done + len(speech.failed),
            "speech_x_realtime": speech.speed,
            "speech_media_s": speech.media_s,
            "words": words,
            "text_x_realtime": text.speed,
            "text_frames_read": stage.frames_read,
            "text_frames_seen": stage.frames_seen,
        }
    finally:
        lib.close()


def _condition_line(name: str, r: dict[str, Any]) -> str:
    parts = [f"{name:6s} WER {100 * r['wer']:5.1f}%"]
    for kind, s in r["retrieval"].items():
        parts.append(f"{kind} R@1 {s['r1']:.2f} R1@0.5 {s['r1_iou50']:.2f}")
    parts.append(f"speech {r['speech_x_realtime']:.1f}x real time")
    if "ocr" in r:
        o = r["ocr"]
        by_px = " ".join(f"{px}px {v:.2f}" for px, v in o["recall_by_px"].items())
        parts.append(f"OCR recall {by_px}; >=24px {o['recall_24px']:.2f}; text R@1 {o['text_query_r1']:.2f}")
        parts.append(f"text {o['text_x_realtime']:.1f}x real time ({o['frames_read']}/{o['frames_seen']} frames read)")
    return " | ".join(parts)


def _real_line(r: dict[str, Any]) -> str:
    return (
        f"real clips: {r['with_sound']} of {r['videos']} have sound, {r['words']} words heard, speech "
        f"{r['speech_x_realtime']:.1f}x real time; text {r['text_x_realtime']:.1f}x real time "
        f"({r['text_frames_read']}/{r['text_frames_seen']} frames read)"
    )


def _goals(f: dict[str, Any]) -> list[dict[str, Any]]:
    clean = f["conditions"].get("clean", {})
    speeds = [c["speech_media_s"] for c in f["conditions"].values()]
    elapsed = [c["speech_elapsed_s"] for c in f["conditions"].values()]
    values = {
        "wer_clean": clean.get("wer", 1.0),
        "phrase_r1_clean": clean.get("retrieval", {}).get("phrase", {}).get("r1", 0.0),
        "phrase_r1_iou_clean": clean.get("retrieval", {}).get("phrase", {}).get("r1_iou50", 0.0),
        "ocr_recall_24px": clean.get("ocr", {}).get("recall_24px", 0.0),
        "speech_speed": sum(speeds) / max(1e-9, sum(elapsed)),
        "fts_p50_ms": f["fts"]["p50_ms"],
        "fused_r1": f["fusion"]["rules"][f["fusion"]["default"]]["all"]["video_r1"],
    }
    out = []
    for key, (goal, op, target) in GOALS.items():
        value = values[key]
        ok = {"<=": value <= target, ">=": value >= target, "<": value < target}[op]
        out.append({"key": key, "goal": goal, "op": op, "target": target, "value": value, "pass": ok})
    return out
