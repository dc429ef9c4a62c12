"""Real video files of a shape that moves, with captions, for the train-to-search tests.

Clips are 8 frames at 1 fps (8 s), rendered by the synthetic world (``engine.train.synthetic.render``) and written
as Motion JPEG: each frame is coded on its own, so a clip and its time-reversal decode to exactly the same set of
frames, and mean pooling ties them exactly. The captions name the direction with its own word ("moving right"),
so the text side separates directions from the first epoch and the test measures the video side: whether
indexing pools frames in time order.
"""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np

from engine.media.synthetic import write_frames
from engine.train.synthetic import Scene, render

DIRECTIONS = {
    ("left", "right"): "moving right",
    ("right", "left"): "moving left",
    ("top", "bottom"): "moving down",
    ("bottom", "top"): "moving up",
}
RIGHT = "a red circle moving right"


def caption_of(verb: tuple[str, str]) -> str:
    return f"a red circle {DIRECTIONS[verb]}"


def _frames(verb: tuple[str, str], rng: np.random.Generator) -> list[np.ndarray]:
    return list(render(Scene("circle", "red", verb), rng, size=64, n_frames=8))


def write_training_set(folder: Path, per_direction: int = 12, seed: int = 0) -> Path:
    """``per_direction`` clips per direction and ``clips.csv`` (video,caption) beside them; returns the CSV."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    rows = []
    for verb in DIRECTIONS:
        for i in range(per_direction):
            path = write_frames(folder / f"{verb[0]}-{verb[1]}-{i:02d}.avi", _frames(verb, rng))
            rows.append((path.name, caption_of(verb)))
    data = folder / "clips.csv"
    with open(data, "w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(["video", "caption"])
        writer.writerows(rows)
    return data


def write_twin_library(folder: Path, pairs: int = 3, seed: int = 99) -> list[tuple[Path, Path]]:
    """``pairs`` new left-to-right clips, each beside its time-reversed twin, plus as many top-to-bottom ones;
    returns the (clip, reversed twin) pairs."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    twins = []
    for i in range(pairs):
        frames = _frames(("left", "right"), rng)
        clip = write_frames(folder / f"right-{i}.avi", frames)
        twins.append((clip, write_frames(folder / f"right-{i}-reversed.avi", frames[::-1])))
        write_frames(folder / f"down-{i}.avi", _frames(("top", "bottom"), rng))
    return twins
