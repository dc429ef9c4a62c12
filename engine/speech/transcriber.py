"""faster-whisper (CTranslate2) transcription of a video's sound track, with VAD and word timestamps.

The sound is streamed in chunks of about ten minutes (``engine.media.audio``), so a three-hour recording is
transcribed in bounded memory; voice-activity detection (Silero, inside faster-whisper) skips the silence, so
a mostly silent recording costs little more than decoding it. The language is detected once, on the first
chunk with speech, and then held, unless the ``speech_language`` setting names it. CTranslate2 runs on the
GPU when the settings' device allows one and CTranslate2 sees CUDA (float16), else on every CPU core (int8).
faster-whisper is imported on first use and never pulls in torch, so this module stays light to import.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

from engine.jobs import CancelToken, ProgressCallback, check_cancel, report
from engine.media.audio import iter_audio
from engine.speech.models import (
    SpeechModelError,
    SpeechModelRef,
    check_folder,
    ensure_local,
    forget,
    resolve,
)
from engine.speech.transcript import Segment, Transcript, Word

log = logging.getLogger(__name__)

_CHUNK_S = 600.0


class SpeechError(RuntimeError):
    """Transcription cannot run as configured (an unknown language for this model); says how to fix it."""


def ctranslate2_device(device: str) -> tuple[str, int]:
    """``(device, index)`` for CTranslate2 from the engine's device setting (auto, cpu, cuda, cuda:N, mps)."""
    if device == "cpu" or device == "mps":  # CTranslate2 has no Metal backend
        return "cpu", 0
    try:
        import ctranslate2

        gpus = ctranslate2.get_cuda_device_count()
    except Exception:  # a broken CUDA install must not stop CPU transcription
        gpus = 0
    if device.startswith("cuda") and gpus == 0:
        log.warning("device %s asked for, but CTranslate2 sees no CUDA device: transcribing on the CPU", device)
    if gpus == 0:
        return "cpu", 0
    index = int(device.split(":", 1)[1]) if device.startswith("cuda:") else 0
    return "cuda", min(index, gpus - 1)


class Transcriber:
    """Transcribes videos with one speech model; the model loads (and downloads) on the first video."""

    def __init__(self, model: str, *, device: str = "auto", language: str = "auto", beam_size: int = 5) -> None:
        self.ref: SpeechModelRef = resolve(model)
        self.device = device
        self.language = language
        self.beam_size = beam_size
        self._model: Any = None

    @property
    def model_id(self) -> str:
        """What the catalog records: the size name, or the folder's path."""
        return self.ref.size or str(self.ref.folder)

    def load(self, *, progress: ProgressCallback | None = None, cancel: CancelToken | None = None) -> Any:
        """The loaded model (downloading a size name on first use); ``SpeechModelError`` says what to fix."""
        if self._model is not None:
            return self._model
        folder = ensure_local(self.ref, progress=progress, cancel=cancel)
        check_folder(folder)
        from faster_whisper import WhisperModel

        device, index = ctranslate2_device(self.device)
        compute = "float16" if device == "cuda" else "int8"
        try:
            self._model = WhisperModel(
                str(folder), device=device, device_index=index, compute_type=compute, cpu_threads=os.cpu_count() or 0
            )
        except (RuntimeError, ValueError, OSError) as exc:
            if self.ref.size is not None:
                forget(self.ref)  # a damaged download: fetch it again next time
            fix = "it will download again on the next run" if self.ref.size else "replace the folder or pick a size"
            raise SpeechModelError(f"{folder}: the speech model cannot be loaded ({exc}); fix: {fix}") from exc
        self._check_language()
        return self._model

    def _check_language(self) -> None:
        if self.language == "auto":
            return
        known = list(getattr(self._model, "supported_languages", []) or [])
        if known and self.language not in known:
            raise SpeechError(
                f"speech_language {self.language!r} is not a language the speech model {self.model_id} knows; "
                f"fix: set it to auto or one of {', '.join(known[:20])}{', ...' if len(known) > 20 else ''}"
            )

    def transcribe(
        self, path: Path | str, *, progress: ProgressCallback | None = None, cancel: CancelToken | None = None
    ) -> Transcript:
        """Every word said in the file, with times in the video's clock. Raises ``NoAudioStream`` for a file
        without sound and ``AudioError`` for sound that cannot be decoded (from ``engine.media.audio``)."""
        model = self.load(cancel=cancel)
        english_only = not getattr(model.model, "is_multilingual", True)
        fixed = "en" if english_only else (None if self.language == "auto" else self.language)
        language, probability = fixed, 1.0 if fixed else 0.0
        heard: tuple[str, float] | None = None  # the detection of the first chunk with speech
        segments: list[Segment] = []
        audio_s = speech_s = 0.0
        total = _duration_hint(path)
        for chunk in iter_audio(path, chunk_s=_CHUNK_S, cancel=cancel):
            check_cancel(cancel)
            pieces, info = model.transcribe(
                chunk.samples,
                language=heard[0] if heard else fixed,
                beam_size=self.beam_size,
                vad_filter=True,
                word_timestamps=True,
                condition_on_previous_text=False,  # one misheard sentence must not derail the next ones
            )
            before = len(segments)
            for piece in pieces:  # a generator: decoding happens as it is consumed
                check_cancel(cancel)
                words = [
                    Word(
                        chunk.start_s + float(w.start),
                        chunk.start_s + float(w.end),
                        w.word.strip(),
                        float(w.probability),
                    )
                    for w in piece.words or ()
                ]
                if any(w.text for w in words):
                    segments.append(Segment.from_words(words))
                done = audio_s + min(piece.end, chunk.duration_s)
                report(progress, done / total if total else 0.0, f"{done / 60:.0f} of {total / 60:.0f} min")
            if fixed is None and heard is None:
                language, probability = info.language, float(info.language_probability)
                if len(segments) > before:  # hold the language once speech was heard in it
                    heard = (language, probability)
            audio_s += chunk.duration_s
            speech_s += float(info.duration_after_vad)
        return Transcript(tuple(segments), language or "", probability, audio_s, speech_s)


def _duration_hint(path: Path | str) -> float:
    """The sound track's announced length, for progress only (0 when unknown)."""
    from engine.media.audio import AudioError, probe_audio

    try:
        return probe_audio(path).duration_s or 0.0
    except AudioError:
        return 0.0
