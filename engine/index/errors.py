"""Errors shared by the vector stores, so callers catch one family whatever the file kind.

Both are ``ValueError``s: the data on disk is the wrong value for this run (another model, a torn file).
Neither is retried automatically; the remedy is a re-index, which the messages say.
"""

from __future__ import annotations

from pathlib import Path


class IndexStoreError(ValueError):
    """Base of the index-layer errors; the message names the file."""


class IndexModelMismatch(IndexStoreError):
    """The files were built by another model (or at another width); their vectors must be recomputed."""


class IndexCorrupt(IndexStoreError):
    """The files are missing, unreadable or inconsistent with each other."""


def refuse_foreign_index(path: Path, built_by: str, built_dim: int, model_id: str, dim: int | None) -> None:
    """``IndexModelMismatch`` unless the index at ``path`` (built by ``built_by`` at ``built_dim``) is the caller's
    model's, at its width when ``dim`` is given: mixing embedding spaces silently ruins every search."""
    if built_by != model_id:
        raise IndexModelMismatch(
            f"index {path} was built with model {built_by!r}, not {model_id!r}; "
            "its embeddings must be recomputed (re-index)"
        )
    if dim is not None and built_dim != dim:
        raise IndexModelMismatch(
            f"index {path} holds {built_dim}-d vectors but model {model_id!r} makes {dim}-d ones; "
            "its embeddings must be recomputed (re-index)"
        )
