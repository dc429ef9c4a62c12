"""Which frames deserve an OCR read: those that may hold text, and whose text regions changed since the last.

OCR costs about a second a frame on a laptop CPU, a thousand times what this test costs, so the text stage
asks two cheap questions of every sampled frame, on a 320 px wide grey copy:

* *Can there be text?* Text is rows of short, high-contrast strokes: threshold the morphological gradient,
  close it horizontally so the letters of a word merge, and count the blobs shaped like words (wider than
  tall, 4-80 px high, mostly filled). A flat or blurred picture has none and is never read.
* *Did the text change?* The same blob map is compared with the one of the last frame read: where fewer
  than a few percent of the word pixels differ, the lines read then are still on screen, and only their end
  time moves. A slide that stays up for a minute is read once.

Moving pictures without text change on every frame, so a read that finds nothing doubles the wait before the
next one (up to ``MAX_BACKOFF_S``); a shot cut or a read that finds text resets it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

WIDTH = 320  # the grey copy's width; a 24 px line of 720p text is still 10 px high here
MIN_WORDS = 1  # word-shaped blobs that make a frame worth reading
CHANGED = 0.05  # fraction of word pixels that must differ for the text to count as changed
MAX_BACKOFF_S = 8.0


@dataclass(frozen=True)
class TextMap:
    """The word-shaped blobs of a frame as a small binary mask, how many there were, and the grey copy."""

    mask: np.ndarray  # (h, WIDTH) bool
    words: int
    grey: np.ndarray  # (h, WIDTH) uint8

    @property
    def has_text(self) -> bool:
        return self.words >= MIN_WORDS


def text_map(rgb: np.ndarray) -> TextMap:
    """The frame's word-shaped blobs (a few milliseconds for a 720p frame).

    Long straight edges (a box around a caption, a table's rules, a horizon) are removed before letters are
    merged into words, so a frame around two lines of text does not join them into one shapeless blob."""
    import cv2

    h, w = rgb.shape[:2]
    height = max(8, round(h * WIDTH / w))
    grey = cv2.cvtColor(cv2.resize(rgb, (WIDTH, height), interpolation=cv2.INTER_AREA), cv2.COLOR_RGB2GRAY)
    gradient = cv2.morphologyEx(grey, cv2.MORPH_GRADIENT, np.ones((3, 3), np.uint8))
    if float(gradient.max()) < 40:  # no contrast anywhere: Otsu would split noise
        return TextMap(np.zeros((height, WIDTH), bool), 0, grey)
    _, strokes = cv2.threshold(gradient, 0, 255, cv2.THRESH_BINARY | cv2.THRESH_OTSU)
    for kernel in ((25, 1), (1, 25)):  # straight runs longer than any letter's stroke
        lines = cv2.morphologyEx(strokes, cv2.MORPH_OPEN, cv2.getStructuringElement(cv2.MORPH_RECT, kernel))
        strokes = cv2.subtract(strokes, cv2.dilate(lines, np.ones((3, 3), np.uint8)))
    words = cv2.morphologyEx(strokes, cv2.MORPH_CLOSE, cv2.getStructuringElement(cv2.MORPH_RECT, (7, 1)))
    count, labels, stats, _ = cv2.connectedComponentsWithStats(words, connectivity=8)
    keep = np.zeros(count, bool)
    for i in range(1, count):
        bw, bh, area = stats[i][2:5]
        fill = area / (bw * bh)
        keep[i] = 3 <= bh <= 0.25 * height and bw >= 1.2 * bh and bw >= 6 and fill >= 0.35
    return TextMap(keep[labels], int(keep.sum()), grey)


def changed(before: TextMap | None, after: TextMap) -> bool:
    """Whether ``after`` shows other text than ``before`` (the last frame read): the word blobs moved, or the
    pixels inside them changed (new words in the same place, "Slide 1" becoming "Slide 2")."""
    if before is None or before.mask.shape != after.mask.shape:
        return True
    union = before.mask | after.mask
    area = int(union.sum())
    if area == 0:
        return False
    if int((before.mask ^ after.mask).sum()) / area > CHANGED:
        return True
    diff = np.abs(before.grey[union].astype(np.int16) - after.grey[union].astype(np.int16))
    return float((diff > 40).mean()) > CHANGED


@dataclass
class ReadPolicy:
    """Decides, frame by frame, whether to read: new text regions, no sooner than the back-off allows."""

    every_s: float
    last_map: TextMap | None = None
    last_read_t: float = -1e9
    wait_s: float = 0.0

    def should_read(self, t: float, current: TextMap, is_cut: bool) -> bool:
        if not current.has_text or not changed(self.last_map, current):
            return False
        if is_cut:
            self.wait_s = 0.0
        return t - self.last_read_t >= self.wait_s - 1e-6

    def was_read(self, t: float, current: TextMap, found: int) -> None:
        """Record a read at ``t`` that found ``found`` lines."""
        self.last_map, self.last_read_t = current, t
        self.wait_s = 0.0 if found else min(MAX_BACKOFF_S, max(2 * self.every_s, 2 * self.wait_s))
