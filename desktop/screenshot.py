"""``scenefind gui --screenshot PATH``: render the app in a settled state to a PNG, then exit.

Why a module of its own: a screenshot is only worth looking at if it shows what a user would see once the
window has caught up. Two things made earlier screenshots lie. Offscreen, the grab came before Qt had laid
out a page that had just been switched to (a word-wrapped sentence clipped to one line). In a real X window,
the grab read the screen's pixels before the last repaint reached the X server, so every try saved the
"Searching…" page of a search that had already answered. So ``settle`` waits until the window reports
nothing in flight *and* a short quiet spell has passed, then lays out and repaints synchronously; and
``grab`` compares the screen's pixels with the widget tree's own rendering and grabs again while they
differ (outside the video surface, which only the screen can show).
"""

from __future__ import annotations

import time
from collections.abc import Callable

import numpy as np
from PySide6.QtCore import QEventLoop, QRect
from PySide6.QtGui import QImage
from PySide6.QtWidgets import QApplication, QWidget

QUIET_S = 0.3  # nothing in flight for this long: the window has settled
MIN_S = 0.5  # even an idle window gets this long to show and lay itself out
GRAB_TRIES = 5
# The screen and the widget tree render a settled window identically (measured: 0 of 1,024,000 pixels
# differ under Xvfb); a stale frame differs by far more (a "Searching…" page against its answer: 1.7%).
SAME_TOLERANCE = 2e-4


def pump(seconds: float) -> None:
    """Process events for ``seconds`` (``QEventLoop.processEvents``, unlike QApplication's, keeps Python's
    refcounts in PySide6 6.12)."""
    loop = QEventLoop()
    end = time.monotonic() + seconds
    while True:
        loop.processEvents()
        if time.monotonic() >= end:
            return
        time.sleep(0.02)


def settle(widget: QWidget, busy: Callable[[], bool], timeout: float) -> bool:
    """Process events until ``busy()`` has been false for ``QUIET_S`` (at least ``MIN_S`` in all), then lay
    out and repaint ``widget`` synchronously. False when ``timeout`` ran out first."""
    loop = QEventLoop()
    start = time.monotonic()
    deadline = start + timeout
    quiet_since: float | None = None
    settled = False
    while time.monotonic() < deadline:
        loop.processEvents()
        now = time.monotonic()
        if busy():
            quiet_since = None
        elif quiet_since is None:
            quiet_since = now
        elif now - quiet_since >= QUIET_S and now - start >= MIN_S:
            settled = True
            break
        time.sleep(0.02)
    QApplication.sendPostedEvents()  # pending layout requests: a page just switched to gets its real size
    widget.repaint()
    loop.processEvents()
    return settled


def on_screen() -> bool:
    """Whether the platform has screen pixels (an X or Wayland window), unlike offscreen or minimal."""
    return QApplication.platformName() not in ("offscreen", "minimal")


def grab(widget: QWidget, *, exclude: Callable[[], list[QRect]] = list) -> QImage:
    """The widget as the user sees it. On a real screen: its pixels (they include native video surfaces,
    which ``QWidget.grab`` cannot see), grabbed again until they agree with the widget tree's rendering
    outside the ``exclude`` rectangles (widget coordinates). Offscreen: the widget tree's rendering."""
    if not on_screen():
        return widget.grab().toImage()
    image = QImage()
    for _ in range(GRAB_TRIES):
        image = widget.screen().grabWindow(widget.winId()).toImage()
        if same_pixels(image, widget.grab().toImage(), exclude()):
            return image
        widget.repaint()
        pump(0.2)
    return image


def same_pixels(a: QImage, b: QImage, exclude: list[QRect], tolerance: float = SAME_TOLERANCE) -> bool:
    """Whether two renderings agree outside ``exclude``: at most ``tolerance`` of their pixels differ."""
    if a.isNull() or b.isNull() or abs(a.width() - b.width()) > 2 or abs(a.height() - b.height()) > 2:
        return False
    first, second = _pixels(a), _pixels(b)
    h, w = min(first.shape[0], second.shape[0]), min(first.shape[1], second.shape[1])
    differ = first[:h, :w] != second[:h, :w]
    keep = np.ones((h, w), dtype=bool)
    for r in exclude:
        keep[max(0, r.top()) : max(0, r.bottom() + 1), max(0, r.left()) : max(0, r.right() + 1)] = False
    return bool(keep.any()) and int((differ & keep).sum()) <= tolerance * int(keep.sum())


def _pixels(image: QImage) -> np.ndarray:
    """(H, W) uint32 ARGB values of ``image`` (alpha forced opaque: a window's pixels have none)."""
    image = image.convertToFormat(QImage.Format.Format_RGB32)
    raw = np.frombuffer(image.constBits(), dtype=np.uint32, count=image.bytesPerLine() // 4 * image.height())
    return raw.reshape(image.height(), image.bytesPerLine() // 4)[:, : image.width()] | np.uint32(0xFF000000)
