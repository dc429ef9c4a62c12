"""Training data: the user's captioned clips, official benchmark annotations, a split, and cached frames.

A user describes clips in a CSV (header ``video,caption[,start,end]``) or JSON lines with those keys; video
paths may be relative to the data file. Benchmarks come in through the official-format loaders of
``engine.datasets`` plus a folder holding their videos. The split is by video, so no video is on both sides
(captions of one video are near duplicates, and a model that saw the video would be graded on memory), and
each video's side is decided by a hash of its path and the seed: the same for any order of the items, and
adding videos moves few old ones. Frames are decoded once per (file, window, count, size) and kept as ``.npy``
under the cache, because decoding, not the model, is the slow part of an epoch on a CPU.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

import numpy as np

from engine.atomic import atomic_path
from engine.datasets.common import AnnotationError, CaptionPair, MomentQuery
from engine.jobs import CancelToken, ProgressCallback, check_cancel, report
from engine.paths import cache_home

log = logging.getLogger(__name__)

FRAME_CACHE_VERSION = 1
_COLUMNS = {  # accepted header names (lower-cased) -> field
    "video": "video",
    "video_path": "video",
    "path": "video",
    "caption": "caption",
    "text": "caption",
    "sentence": "caption",
    "start": "start",
    "end": "end",
}


class TrainingDataError(AnnotationError):
    """A training data file cannot be used; ``str()`` is ``"FILE:LINE: problem"``."""


@dataclass(frozen=True)
class TrainItem:
    """One captioned clip: a video (absolute path), its caption, and optionally a window in seconds."""

    video: Path
    caption: str
    start: float | None = None
    end: float | None = None


def load_training_data(path: Path, *, check_files: bool = False) -> list[TrainItem]:
    """Items of a ``.csv``/``.tsv`` (header row) or ``.jsonl`` file, in file order.

    Relative video paths resolve against the file's folder. A missing column, a bad number, ``start >= end``,
    a negative time or an empty caption raises ``TrainingDataError`` naming the file and line; with
    ``check_files`` so does a video that does not exist.
    """
    path = Path(path).expanduser().resolve()
    try:
        text = path.read_text(encoding="utf-8-sig")
    except OSError as exc:
        raise TrainingDataError(path, None, f"cannot read ({exc.strerror})") from None
    except UnicodeDecodeError as exc:
        raise TrainingDataError(path, None, f"not UTF-8 text ({exc.reason})") from None
    suffix = path.suffix.lower()
    rows = _jsonl_rows(path, text) if suffix in (".jsonl", ".ndjson", ".json") else _csv_rows(path, text, suffix)
    items = [_item(path, number, row) for number, row in rows]
    if check_files:
        for (number, _), item in zip(rows, items, strict=True):
            if not item.video.is_file():
                raise TrainingDataError(path, number, f"video {item.video} does not exist")
    if not items:
        raise TrainingDataError(path, None, "no items (an empty file, or only a header)")
    return items


def _csv_rows(path: Path, text: str, suffix: str) -> list[tuple[int, dict[str, Any]]]:
    reader = csv.reader(io.StringIO(text, newline=""), delimiter="\t" if suffix == ".tsv" else ",")
    try:
        header = next(reader)
    except StopIteration:
        raise TrainingDataError(path, None, "empty file") from None
    except csv.Error as exc:
        raise TrainingDataError(path, 1, f"unreadable header ({exc})") from None
    fields = [_COLUMNS.get(h.strip().lower(), "") for h in header]
    for required in ("video", "caption"):
        if required not in fields:
            got = ",".join(h.strip() for h in header)
            raise TrainingDataError(
                path, 1, f"missing column {required!r} (header is {got!r}; expected video,caption[,start,end])"
            )
    rows: list[tuple[int, dict[str, Any]]] = []
    line = reader.line_num + 1
    try:
        for record in reader:
            if any(cell.strip() for cell in record):
                if len(record) > len(header):
                    raise TrainingDataError(path, line, f"{len(record)} fields but the header has {len(header)}")
                rows.append((line, {f: cell for f, cell in zip(fields, record, strict=False) if f}))
            line = reader.line_num + 1
    except csv.Error as exc:
        raise TrainingDataError(path, line, f"malformed CSV ({exc})") from None
    return rows


def _jsonl_rows(path: Path, text: str) -> list[tuple[int, dict[str, Any]]]:
    if text.lstrip().startswith("["):
        raise TrainingDataError(path, 1, "a JSON array; expected JSON lines (one object per line)")
    rows: list[tuple[int, dict[str, Any]]] = []
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as exc:
            raise TrainingDataError(path, number, f"not JSON ({exc.msg}, column {exc.colno})") from None
        if not isinstance(row, dict):
            raise TrainingDataError(path, number, "expected a JSON object with 'video' and 'caption'")
        rows.append((number, {_COLUMNS[k.lower()]: v for k, v in row.items() if k.lower() in _COLUMNS}))
    return rows


def _item(path: Path, number: int, row: dict[str, Any]) -> TrainItem:
    for name in ("video", "caption"):
        if row.get(name) is None:
            raise TrainingDataError(path, number, f"missing {name!r}")
        if not isinstance(row[name], str):
            raise TrainingDataError(path, number, f"{name!r} must be text, got {row[name]!r}")
    video, caption = str(row["video"]), str(row["caption"])
    if not video.strip():
        raise TrainingDataError(path, number, "empty video path")
    caption = " ".join(caption.split())
    if not caption:
        raise TrainingDataError(path, number, "empty caption")
    start, end = _seconds(path, number, row, "start"), _seconds(path, number, row, "end")
    if start is not None and end is not None and start >= end:
        raise TrainingDataError(path, number, f"start {start:g} s is not before end {end:g} s")
    video_path = Path(video.strip()).expanduser()
    if not video_path.is_absolute():
        video_path = path.parent / video_path
    return TrainItem(video_path.resolve(), caption, start, end)


def _seconds(path: Path, number: int, row: dict[str, Any], key: str) -> float | None:
    value = row.get(key)
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise TrainingDataError(path, number, f"{key} {value!r} is not a number of seconds")
    try:
        seconds = float(value)
    except ValueError:
        raise TrainingDataError(path, number, f"{key} {value!r} is not a number of seconds") from None
    if not math.isfinite(seconds) or seconds < 0:
        raise TrainingDataError(path, number, f"{key} {value!r} must be a finite, non-negative number of seconds")
    return seconds


def load_official(dataset: str | None, annotations: Path, videos_folder: Path) -> list[TrainItem]:
    """Items from an official annotation file (``engine.datasets.LOADERS``) whose videos are in the folder.

    Retrieval sets (MSR-VTT, MSVD, DiDeMo) give whole-video items; moment sets (QVHighlights, Charades-STA,
    ActivityNet Captions) give one item per annotated window. Videos are matched by file stem anywhere under
    ``videos_folder`` (ActivityNet's ``v_`` prefix optional); queries whose video is absent are skipped with
    a log line, and none present at all is an error.
    """
    from engine.datasets import LOADERS, guess_dataset

    name = dataset or guess_dataset(Path(annotations))
    if name not in LOADERS:
        raise ValueError(f"{annotations}: unknown dataset {name!r}; choose one of {', '.join(LOADERS)}")
    folder = Path(videos_folder).expanduser().resolve()
    if not folder.is_dir():
        raise TrainingDataError(folder, None, "the videos folder does not exist")
    from engine.media.decode import VIDEO_EXTENSIONS

    files = _videos_by_stem(folder)
    records: Sequence[CaptionPair | MomentQuery] = LOADERS[name](Path(annotations))
    items: list[TrainItem] = []
    missing: set[str] = set()
    for record in records:
        vid = record.video_id if isinstance(record, CaptionPair) else record.vid
        if PurePosixPath(vid).suffix.lower() in VIDEO_EXTENSIONS:  # an id given as a file name
            vid = PurePosixPath(vid).stem
        video = files.get(vid) or (files.get(vid[2:]) if vid.startswith("v_") else None)
        if video is None:
            missing.add(vid)
            continue
        if isinstance(record, CaptionPair):
            items.append(TrainItem(video, record.caption))
        else:
            items.extend(TrainItem(video, record.query, max(0.0, s), e) for s, e in record.windows if e > max(0.0, s))
    if missing:
        log.warning(
            "%s: %d videos of the annotations are not in %s; their captions are skipped",
            annotations,
            len(missing),
            folder,
        )
    if not items:
        raise TrainingDataError(annotations, None, f"none of its videos is in {folder}")
    return items


def _videos_by_stem(folder: Path) -> dict[str, Path]:
    from engine.media.decode import VIDEO_EXTENSIONS

    found: dict[str, Path] = {}
    for path in sorted(folder.rglob("*")):
        if path.suffix.lower() in VIDEO_EXTENSIONS and path.is_file():
            found.setdefault(path.stem, path)
    return found


def split_items(
    items: Sequence[TrainItem], val_fraction: float = 0.1, seed: int = 0
) -> tuple[list[TrainItem], list[TrainItem]]:
    """(train, validation), split by video: ``round(val_fraction * videos)`` videos (at least one when the
    fraction is positive and there are two or more videos) go to validation, chosen by a seeded hash of their
    path. Items keep their order within each side."""
    if not 0.0 <= val_fraction < 1.0:
        raise ValueError(f"val_fraction must be in [0, 1), got {val_fraction}")
    videos = sorted({str(item.video) for item in items})
    n_val = round(val_fraction * len(videos))
    if val_fraction > 0 and len(videos) >= 2:
        n_val = min(max(1, n_val), len(videos) - 1)
    ranked = sorted(videos, key=lambda v: hashlib.sha256(f"{seed}\0{v}".encode()).hexdigest())
    held_out = set(ranked[:n_val])
    train = [item for item in items if str(item.video) not in held_out]
    val = [item for item in items if str(item.video) in held_out]
    return train, val


class FrameCache:
    """Frames of training items, decoded once and kept as ``.npy`` under ``cache_home()/train-frames``."""

    def __init__(self, cache_dir: Path | None = None) -> None:
        self.cache_dir = Path(cache_dir) if cache_dir is not None else cache_home() / "train-frames"

    def path_for(self, item: TrainItem, n_frames: int = 8, size: int = 224) -> Path:
        """Cache file of an item; the key has the file's size and mtime, so an edited video is decoded anew."""
        st = item.video.stat()
        key = json.dumps(
            [FRAME_CACHE_VERSION, str(item.video), st.st_size, st.st_mtime_ns, item.start, item.end, n_frames, size]
        )
        digest = hashlib.sha256(key.encode("utf-8")).hexdigest()
        return self.cache_dir / digest[:2] / f"{digest}.npy"

    def frames(self, item: TrainItem, n_frames: int = 8, size: int = 224) -> np.ndarray:
        """(n_frames, size, size, 3) uint8 RGB, evenly spread over the item's window (the whole video when it
        has none), each the centre square of the frame scaled to ``size`` on its short side."""
        if n_frames < 1 or size < 1:
            raise ValueError(f"n_frames and size must be positive (got {n_frames}, {size})")
        try:
            target = self.path_for(item, n_frames, size)
        except OSError as exc:
            from engine.media.decode import MediaError

            raise MediaError(item.video, f"cannot read the video ({exc.strerror})") from None
        if target.is_file():
            try:
                cached = np.load(target, allow_pickle=False)
                if cached.shape == (n_frames, size, size, 3) and cached.dtype == np.uint8:
                    return cached
            except (OSError, ValueError):
                pass  # a damaged cache file is decoded again
        frames = _decode(item, n_frames, size)
        with atomic_path(target) as tmp, open(tmp, "wb") as fh:
            np.save(fh, frames, allow_pickle=False)
        return frames

    def prepare(
        self,
        items: Sequence[TrainItem],
        n_frames: int = 8,
        size: int = 224,
        *,
        progress: ProgressCallback | None = None,
        cancel: CancelToken | None = None,
    ) -> list[tuple[TrainItem, str]]:
        """Decode every item not cached yet (before training, so epochs only read); returns the failures."""
        from engine.media.decode import MediaError

        failures: list[tuple[TrainItem, str]] = []
        unique = list(dict.fromkeys(items))
        for i, item in enumerate(unique):
            check_cancel(cancel)
            try:
                self.frames(item, n_frames, size)
            except MediaError as exc:
                failures.append((item, exc.reason))
            report(progress, (i + 1) / len(unique), f"frames {i + 1}/{len(unique)}: {item.video.name}")
        return failures


def _decode(item: TrainItem, n_frames: int, size: int) -> np.ndarray:
    """Sample densely enough that a frame lies within a quarter of a slot of each slot's centre, keep the
    frames inside the window, pick the nearest to each centre, and crop them square."""
    from engine.media.decode import MediaError, probe, sample_frames

    start = item.start or 0.0
    end = item.end
    if end is None:
        end = probe(item.video).duration_s
    length = max(end - start, 1e-3)
    centres = [start + (i + 0.5) * length / n_frames for i in range(n_frames)]
    step = length / n_frames / 2
    kept: list[tuple[float, np.ndarray]] = []
    last_t = -math.inf  # time of the last frame decoded before the window
    frames = sample_frames(item.video, every_s=step, cuts=False, short_side=size)
    try:
        for frame in frames:
            if frame.t > end + step:
                break
            if frame.t >= start - step:
                kept.append((frame.t, frame.image))
            else:
                last_t = frame.t
    finally:
        frames.close()
    if not kept:
        duration = probe(item.video).duration_s if last_t > -math.inf else 0.0
        raise MediaError(item.video, f"the window {start:g}-{end:g} s starts after the video ends ({duration:.1f} s)")
    times = np.array([t for t, _ in kept])
    picks = [int(np.argmin(np.abs(times - c))) for c in centres]
    return np.stack([_centre_square(kept[i][1], size) for i in picks])


def _centre_square(image: np.ndarray, size: int) -> np.ndarray:
    h, w = image.shape[:2]
    top, left = max(0, (h - size) // 2), max(0, (w - size) // 2)
    crop = image[top : top + size, left : left + size]
    if crop.shape[:2] != (size, size):  # a rounding pixel short: pad by repeating the edge
        crop = np.pad(crop, ((0, size - crop.shape[0]), (0, size - crop.shape[1]), (0, 0)), mode="edge")
    return np.ascontiguousarray(crop)
