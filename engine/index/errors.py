"""Errors shared by the vector stores, so callers catch one family whatever the file kind.

Both are ``ValueError``s: the data on disk is the wrong value for this run (another model, a torn file).
Neither is retried automatically; the remedy is a re-index, which the messages say.
"""

from __future__ import annotations


class IndexStoreError(ValueError):
    """Base of the index-layer errors; the message names the file."""


class IndexModelMismatch(IndexStoreError):
    """The files were built by another model (or at another width); their vectors must be recomputed."""


class IndexCorrupt(IndexStoreError):
    """The files are missing, unreadable or inconsistent with each other."""
