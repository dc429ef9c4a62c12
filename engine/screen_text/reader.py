"""RapidOCR (ONNX Runtime, PP-OCR models shipped inside the ``rapidocr`` wheel): text lines in one frame.

``rapidocr`` 3.x is used rather than ``rapidocr-onnxruntime``: both run PP-OCR on ONNX Runtime with the models
in the wheel (no download), but the older package depends on the GUI build of OpenCV, whose bundled Qt
plugins fight PySide6's, while ``rapidocr`` depends on the headless build Scenefind already uses. Detection
is the cost (about 1.2 s for a 720p frame on 2 laptop cores at a 960 px long side, against milliseconds per
recognised line), so frames are shrunk to that side and the caller decides which frames deserve a read
(``engine.screen_text.changes``). The engine loads on the first read; importing this module loads nothing.
"""

from __future__ import annotations

import importlib.metadata
import logging
from dataclasses import dataclass
from typing import Any

import numpy as np

log = logging.getLogger(__name__)

DETECT_SIDE = 960  # detection's long side: small text at 720p still reads, and it costs a third of 1280
MIN_SCORE = 0.5  # recognition confidence below which a line is noise


class TextReaderError(RuntimeError):
    """The OCR engine cannot be loaded; the message says how to fix it."""


@dataclass(frozen=True)
class OcrLine:
    """A line of text in one frame: its box ``(x0, y0, x1, y1)`` in that frame's pixels and its confidence."""

    text: str
    box: tuple[float, float, float, float]
    confidence: float

    @property
    def height(self) -> float:
        return self.box[3] - self.box[1]


def reader_id() -> str:
    """What the catalog records as the text stage's model (a new release re-reads the library)."""
    try:
        version = importlib.metadata.version("rapidocr")
    except importlib.metadata.PackageNotFoundError:
        version = "absent"
    return f"rapidocr-{version}"


class TextReader:
    """One RapidOCR engine, loaded on first use, reading RGB frames."""

    def __init__(self, *, threads: int = 0) -> None:
        self.threads = threads
        self._engine: Any = None

    def _load(self) -> Any:
        if self._engine is None:
            try:
                from rapidocr import RapidOCR
            except ImportError as exc:
                raise TextReaderError(
                    f"the OCR engine is not installed ({exc}); fix: pip install rapidocr onnxruntime"
                ) from exc
            params = {
                "Global.use_cls": False,  # upright text only: the angle classifier costs a pass per line
                "Global.log_level": "error",  # not "The text detection result is empty" for every frame
                "Det.limit_type": "max",
                "Det.limit_side_len": DETECT_SIDE,
            }
            if self.threads:
                params["EngineConfig.onnxruntime.intra_op_num_threads"] = self.threads
            try:
                self._engine = RapidOCR(params=params)
                logging.getLogger("RapidOCR").setLevel(logging.ERROR)
            except Exception as exc:  # a damaged install raises whatever onnxruntime raises
                raise TextReaderError(f"the OCR engine cannot be loaded ({exc}); fix: reinstall rapidocr") from exc
        return self._engine

    def read(self, rgb: np.ndarray) -> list[OcrLine]:
        """Lines of text in an ``(H, W, 3)`` uint8 RGB frame, top to bottom; confident ones only."""
        result = self._load()(np.ascontiguousarray(rgb[..., ::-1]))  # the models were trained on BGR
        boxes, texts, scores = getattr(result, "boxes", None), getattr(result, "txts", None), result.scores
        if boxes is None or texts is None:
            return []
        lines = []
        for quad, text, score in zip(boxes, texts, scores, strict=False):
            clean = " ".join(str(text).split())
            if float(score) < MIN_SCORE or not any(c.isalnum() for c in clean):
                continue
            xs, ys = np.asarray(quad)[:, 0], np.asarray(quad)[:, 1]
            box = (float(xs.min()), float(ys.min()), float(xs.max()), float(ys.max()))
            lines.append(OcrLine(clean, box, float(score)))
        return sorted(lines, key=lambda line: (line.box[1], line.box[0]))
