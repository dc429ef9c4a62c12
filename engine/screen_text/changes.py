"""Which frames deserve an OCR read: those that may hold text, and whose text regions changed since the last.

OCR costs about a second a frame on a laptop CPU, a thousand times what this test costs, so the text stage
asks two cheap questions of every sampled frame, on a 320 px wide grey copy:

* *Can there be text?* Text is letters standing in rows: small high-contrast stroke blobs of similar height
  side by side on a line (``text_map``). A flat or blurred picture has none and is never read.
* *Did the text change?* The letter map is compared with the one of the last frame read: where the letters
  neither moved nor changed their pixels, the lines read then are still on screen and only their end time
  moves. A slide that stays up for a minute is read once.

Moving pictures without text change on every frame, so a read that finds nothing doubles the wait before the
next one (up to ``MAX_BACKOFF_S``); a shot cut or a read that finds text resets it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

WIDTH = 320  # the grey copy's width; a 24 px line of 720p text is still 10 px high here
MIN_LETTERS = 3  # letters with a letter on each side (or word-shaped blobs, counted twice) worth a read
CONTRAST = 25  # grey levels a letter stands out from its neighbourhood
CHANGED = 0.05  # fraction of word pixels that must differ for the text to count as changed
MAX_BACKOFF_S = 8.0


@dataclass(frozen=True)
class TextMap:
    """Where a frame's letters are (a small binary mask), how many there were, and the grey copy."""

    mask: np.ndarray  # (h, WIDTH) bool
    letters: int
    grey: np.ndarray  # (h, WIDTH) uint8

    @property
    def has_text(self) -> bool:
        return self.letters >= MIN_LETTERS


def text_map(rgb: np.ndarray) -> TextMap:
    """The frame's letters that stand in rows (about a millisecond for a 720p frame).

    Letters are blobs brighter (or darker) than their surroundings by a clear margin (an adaptive threshold,
    both polarities), 2 px to a quarter of the picture high; a frame may hold text when some of them have a
    letter of similar height on both sides on the same line (the middle of a word), or are word-shaped
    (letters that touch). A box drawn around
    a caption or a table's rules are thin long blobs of the other polarity's background, so they never swallow
    the letters they surround."""
    import cv2

    h, w = rgb.shape[:2]
    height = max(8, round(h * WIDTH / w))
    grey = cv2.cvtColor(cv2.resize(rgb, (WIDTH, height), interpolation=cv2.INTER_AREA), cv2.COLOR_RGB2GRAY)
    mask = np.zeros((height, WIDTH), bool)
    letters = 0
    for polarity in (cv2.THRESH_BINARY, cv2.THRESH_BINARY_INV):
        blobs = cv2.adaptiveThreshold(grey, 1, cv2.ADAPTIVE_THRESH_MEAN_C, polarity, 15, -CONTRAST
                                      if polarity == cv2.THRESH_BINARY else CONTRAST)  # fmt: skip
        found, where = _letters_in_rows(blobs, height)
        letters += found
        mask |= where
    if letters < MIN_LETTERS:
        return TextMap(np.zeros((height, WIDTH), bool), 0, grey)
    mask = cv2.dilate(mask.astype(np.uint8), cv2.getStructuringElement(cv2.MORPH_RECT, (5, 3))) > 0
    return TextMap(mask, letters, grey)


def _letters_in_rows(blobs: np.ndarray, height: int) -> tuple[int, np.ndarray]:
    """(letters, mask) of the blobs of one polarity that stand in rows or are word-shaped."""
    import cv2

    count, labels, stats, centres = cv2.connectedComponentsWithStats(blobs, connectivity=8)
    x, _, bw, bh, area = (stats[1:, i].astype(np.float32) for i in range(5))
    fill = area / np.maximum(1.0, bw * bh)
    ok = (bh >= 2) & (bh <= 0.25 * height) & (bw <= 12 * bh) & (area >= 3) & (fill > 0.12) & (fill < 0.95)
    idx = np.flatnonzero(ok)
    if len(idx) == 0:
        return 0, np.zeros(blobs.shape, bool)
    cy, hh = centres[1:, 1][idx], bh[idx]
    left, right = x[idx], x[idx] + bw[idx]
    tall = np.maximum(hh[:, None], hh[None, :])
    same_line = np.abs(cy[:, None] - cy[None, :]) < 0.5 * tall
    similar = (hh[:, None] <= 2 * hh[None, :]) & (hh[None, :] <= 2 * hh[:, None])
    near = np.maximum(left[None, :] - right[:, None], left[:, None] - right[None, :]) < 1.5 * tall
    np.fill_diagonal(near, False)
    neighbours = (same_line & similar & near).sum(axis=1)
    word = (bw[idx] >= 2.5 * hh) & (fill[idx] < 0.7)
    chosen = idx[(neighbours >= 1) | word]
    keep = np.zeros(count, bool)
    keep[chosen + 1] = True
    # inside a word a letter has a neighbour on each side; a box's inner and outer edge have only each other
    found = int((neighbours >= 2).sum() + 2 * word.sum())
    return found, keep[labels]


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
