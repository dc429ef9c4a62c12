"""Generated test videos with known content (shared by the engine tests)."""

from __future__ import annotations

from pathlib import Path

from engine.media.synthetic import write_color_video

RED, GREEN, BLUE, YELLOW = (220, 20, 20), (20, 200, 20), (20, 20, 220), (230, 220, 30)


def color_library(folder: Path) -> dict[str, Path]:
    """A few small videos: one with a blue event between 5 s and 9 s, others of a single colour."""
    folder.mkdir(parents=True, exist_ok=True)
    return {
        "red_then_blue": write_color_video(folder / "red_then_blue.mp4", [(5, RED), (4, BLUE), (3, RED)], fps=10),
        "green": write_color_video(folder / "nature" / "green.mp4", [(6, GREEN)], fps=10, moving_box=True),
        "yellow": write_color_video(folder / "yellow clip.avi", [(4, YELLOW)], fps=8),
    }
