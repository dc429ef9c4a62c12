"""Scenefind engine: catalog, decoding, encoders, vector indexes and the indexing pipeline.

The engine knows nothing of Qt; the desktop app and the ``scenefind`` CLI both sit on top of it.
"""

__version__ = "0.1.0"
