"""Scenefind engine: catalog, decoding, encoders, vector indexes and the indexing pipeline.

The engine knows nothing of Qt; the desktop app and the ``scenefind`` CLI both sit on top of it.
"""

import os

# Indexing runs the decoder's threads beside torch's. OpenMP threads that spin while they wait for work (the
# default) take the cores the decoder needs: sleeping at once cut the CPU time of indexing a 4K HEVC file with
# ViT-B-32 from 2.2 to 1.7 s per 8 s of video on two cores (bench decode). libgomp reads this when torch first
# loads it, hence here; a value set by the user wins.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

__version__ = "0.1.0"
