"""Engine failures in the app's own words: a title, a sentence, and what kind of way out fits.

Why: the engine's messages are written for the command line ("supply a local checkpoint: --model
ViT-B-32@/path/...", "run `scenefind index`", "pass a local GGUF file instead (--llm FILE)", a raw
"<urlopen error [Errno -2] ...>"). A window has no command line: it says what happened and offers buttons.
The engine raises typed exceptions for the cases that need other words (``WeightsUnavailable``,
``NotIndexed``, ``LLMDownloadError``), so this module maps types, never message texts; anything else keeps
its own message, which names the file and the problem.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from engine.models.identity import looks_like_path

MODEL_DOWNLOAD, MODEL_INVALID, NOT_INDEXED, LLM_DOWNLOAD, OTHER = (
    "model_download",
    "model_invalid",
    "not_indexed",
    "llm_download",
    "other",
)
DEMO_MODELS: dict[str, tuple[str, str]] = {  # name -> (label, what it can do)
    "fake:color": (
        "Colour demo",
        "finds scenes by the colours you name (“red”, “a blue sky”); needs no download",
    ),
    "test-tiny": (
        "Tiny test model",
        "shows how indexing and search work, but its results are random; needs no download",
    ),
}
_OFFLINE_HINTS = (
    "name or service not known",
    "temporary failure in name resolution",
    "nodename nor servname",
    "getaddrinfo failed",
    "network is unreachable",
    "no route to host",
    "timed out",
    "connection refused",
    "errno -2",
    "errno -3",
    "errno 101",
)


@dataclass(frozen=True)
class Problem:
    """What to tell the user: ``title`` for a heading, ``text`` a sentence or two, ``kind`` which actions fit."""

    kind: str
    title: str
    text: str


def model_label(name: str) -> str:
    """A model as a user reads it: a demo by its label, a checkpoint by its folder or file, an open_clip pair
    as "ViT-B-32 (laion2b_s34b_b79k)"."""
    name = name.strip()
    if name in DEMO_MODELS:
        return f"the {DEMO_MODELS[name][0].lower()}"
    arch, at, path = name.partition("@")
    if at:
        return f"{arch} from {Path(path).name}"
    # a relative run folder ("runs/tiny", "runs/tiny/best", even one since moved) too: an open_clip pair has one
    # slash and names no folder here
    if looks_like_path(name) or "\\" in name or name.count("/") > 1:
        folder = Path(name).expanduser()
        return f"the trained model {folder.parent.name if folder.name == 'best' else folder.name}"
    arch, slash, tag = name.removeprefix("open_clip:").partition("/")
    return f"{arch} ({tag})" if slash else name


def is_demo(name: str) -> bool:
    return name.strip() in DEMO_MODELS


def offline_reason(reason: str) -> str:
    """What a failed download ran into, in words: "this computer seems to be offline" for the errors a
    missing connection gives, the reason itself otherwise."""
    low = reason.lower()
    if "hf_hub_offline" in low:
        return "offline mode is on (HF_HUB_OFFLINE is set)"
    if any(hint in low for hint in _OFFLINE_HINTS):
        host = reason.split(":", 1)[0].strip()
        where = f" ({host} could not be reached)" if "." in host and " " not in host and "/" not in host else ""
        return f"this computer seems to be offline{where}"
    return reason.strip() or "the download did not work"


def explain(exc: object) -> Problem:
    """The problem ``exc`` stands for, said for a window."""
    if _is(exc, "engine.models.base", "WeightsUnavailable"):
        model = model_label(exc.model) if exc.model else "the search model"
        return Problem(
            MODEL_DOWNLOAD,
            "The search model could not be downloaded",
            f"Scenefind needs {model} to index and search your videos, and it is not on this computer yet. "
            f"The download did not work: {offline_reason(exc.reason)}.",
        )
    if _is(exc, "engine.models.base", "ModelUnavailable"):
        return Problem(MODEL_INVALID, "The model cannot be used", str(exc).strip())
    if _is(exc, "engine.search.searcher", "NotIndexed"):
        return Problem(
            NOT_INDEXED,
            "Nothing is indexed with this model yet",
            f"Your videos have not been indexed with {model_label(exc.model_id.removeprefix('open_clip:'))} yet. "
            "Index them in the Library tab; you can search as soon as the first videos are done.",
        )
    if _is(exc, "engine.train.llm", "LLMDownloadError"):
        host = urlsplit(exc.url).hostname or ""
        why = offline_reason(f"{host}: {exc.reason}" if host else exc.reason)
        return Problem(
            LLM_DOWNLOAD,
            "The model that writes negatives could not be downloaded",
            f"The default model could not be downloaded: {why}. Choose a GGUF file you already have, try again, "
            "or use rule-based negatives (no download).",
        )
    text = str(exc).strip()
    return Problem(OTHER, "Something went wrong", text or type(exc).__name__)


def _is(exc: object, module: str, name: str) -> bool:
    """``isinstance(exc, module.name)`` without importing ``module`` on the GUI thread (the searcher pulls in
    the indexes): an exception of a class whose module was never imported cannot be one."""
    cls = getattr(sys.modules.get(module), name, None)
    return isinstance(cls, type) and isinstance(exc, cls)
