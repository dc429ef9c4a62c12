"""The speech stage: transcribe a video's sound and commit its segments and words in one transaction.

A video without a sound track is recorded ``no_audio`` (a fact about the file, kept whatever the model); a
sound track that cannot be decoded is recorded ``failed`` with the reason; neither fails the video's picture.
The model loads on the first video that has sound, so a library of silent clips never loads it. A model that
cannot be had raises ``StageUnavailable`` (the runner stops the stage and keeps its videos pending).
"""

from __future__ import annotations

import logging
import time

from engine.indexing.stages import StageUnavailable
from engine.jobs import CancelToken, ProgressCallback
from engine.library.catalog import Catalog, VideoRow
from engine.library.transcripts import SpeechRow, StageOutcome
from engine.media.audio import AudioError, NoAudioStream, probe_audio
from engine.settings import EngineSettings
from engine.speech.models import SpeechModelError, model_id_for
from engine.speech.transcriber import SpeechError, Transcriber

log = logging.getLogger(__name__)


class SpeechStage:
    """``StageWorker`` for speech (see ``engine.indexing.stages``)."""

    stage = "speech"
    label = "Speech"

    def __init__(self, settings: EngineSettings, transcriber: Transcriber | None = None) -> None:
        self.transcriber: Transcriber | None = transcriber
        self._error: str | None = None  # a model setting that names nothing: said when there is work
        if transcriber is None:
            try:
                self.transcriber = Transcriber(
                    settings.speech_model, device=settings.device, language=settings.speech_language
                )
            except SpeechModelError as exc:
                self._error = str(exc)
        self.model_id = self.transcriber.model_id if self.transcriber else model_id_for(settings.speech_model)

    def run_video(
        self, catalog: Catalog, video: VideoRow, *, progress: ProgressCallback | None, cancel: CancelToken | None
    ) -> StageOutcome:
        started = time.perf_counter()
        try:
            probe_audio(video["path"])  # no sound: recorded before any model is loaded
            if self.transcriber is None:
                raise StageUnavailable(self._error or "no speech model")
            self.transcriber.load(progress=progress, cancel=cancel)
            transcript = self.transcriber.transcribe(video["path"], progress=progress, cancel=cancel)
        except NoAudioStream:
            outcome = StageOutcome("no_audio", elapsed_s=time.perf_counter() - started)
            catalog.record_stage(video["id"], "speech", video["fingerprint"], self.model_id, outcome)
            return outcome
        except (SpeechModelError, SpeechError) as exc:
            raise StageUnavailable(str(exc)) from exc
        except AudioError as exc:
            outcome = StageOutcome("failed", error=exc.reason, elapsed_s=time.perf_counter() - started)
            catalog.record_stage(video["id"], "speech", video["fingerprint"], self.model_id, outcome)
            return outcome
        rows = [SpeechRow(s.start, s.end, s.text, s.words_json()) for s in transcript.segments]
        outcome = StageOutcome(
            "done",
            language=transcript.language or None,
            language_probability=transcript.language_probability,
            items=len(rows),
            media_s=transcript.audio_s,
            elapsed_s=time.perf_counter() - started,
        )
        catalog.commit_speech(video["id"], video["fingerprint"], self.model_id, rows, outcome)
        return outcome
