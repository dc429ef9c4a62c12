"""Where Scenefind keeps things. The only module that knows locations.

Data (catalog and indexes) live in the platformdirs user data dir unless ``SCENEFIND_HOME`` (or the CLI's
``--home``) points elsewhere, so tests and portable libraries stay self-contained. Weights are cached per user
(``SCENEFIND_CACHE`` overrides) so that a second library does not download them again.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

import platformdirs

APP_NAME = "scenefind"


def data_home() -> Path:
    """Root folder of the library: ``$SCENEFIND_HOME`` or the platform's user data dir."""
    env = os.environ.get("SCENEFIND_HOME")
    if env:
        return Path(env).expanduser().resolve()
    return Path(platformdirs.user_data_dir(APP_NAME, appauthor=False))


def cache_home() -> Path:
    """Per-user cache (model weights, thumbnails): ``$SCENEFIND_CACHE`` or the platform cache dir."""
    env = os.environ.get("SCENEFIND_CACHE")
    if env:
        return Path(env).expanduser().resolve()
    return Path(platformdirs.user_cache_dir(APP_NAME, appauthor=False))


def config_home() -> Path:
    """Folder of ``settings.toml``; inside the data home when ``SCENEFIND_HOME`` is set."""
    if os.environ.get("SCENEFIND_HOME"):
        return data_home() / "config"
    return Path(platformdirs.user_config_dir(APP_NAME, appauthor=False))


def log_home() -> Path:
    """Folder of log files; inside the data home when ``SCENEFIND_HOME`` is set."""
    if os.environ.get("SCENEFIND_HOME"):
        return data_home() / "logs"
    return Path(platformdirs.user_log_dir(APP_NAME, appauthor=False))


def weights_dir() -> Path:
    """Downloaded model weights (open_clip / Hugging Face cache)."""
    return cache_home() / "weights"


def text_vectors_file() -> Path:
    """The disk cache of encoded query texts (``engine.search.text_cache``), shared by the user's libraries."""
    return cache_home() / "text-vectors.sqlite"


def model_slug(model_id: str) -> str:
    """A file-system safe, stable folder name for a model id (readable prefix plus a short hash)."""
    import hashlib

    readable = re.sub(r"[^A-Za-z0-9._-]+", "_", model_id).strip("_")[:48] or "model"
    digest = hashlib.sha1(model_id.encode("utf-8")).hexdigest()[:8]
    return f"{readable}-{digest}"


@dataclass(frozen=True)
class LibraryPaths:
    """File layout of one library (one data home)."""

    root: Path

    @classmethod
    def default(cls) -> LibraryPaths:
        return cls(data_home())

    @property
    def catalog(self) -> Path:
        return self.root / "catalog.sqlite"

    @property
    def lock(self) -> Path:
        return self.root / "writer.lock"

    @property
    def settings(self) -> Path:
        if os.environ.get("SCENEFIND_HOME") or self.root != data_home():
            return self.root / "settings.toml"
        return config_home() / "settings.toml"

    def index_dir(self, model_id: str) -> Path:
        """Folder holding the three grains' indexes and vectors for one model."""
        return self.root / "indexes" / model_slug(model_id)

    def ensure(self) -> LibraryPaths:
        self.root.mkdir(parents=True, exist_ok=True)
        return self
