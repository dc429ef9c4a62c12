"""Walk library folders and tell what changed since the catalog last looked: new, changed, moved, removed.

Unchanged files are decided by (size, mtime_ns) alone, so a re-scan of a large, unchanged library costs one
``stat`` per file. New files get a fast content fingerprint (size plus three 64 KiB samples), which is how a
moved or renamed video is recognised and keeps its vectors.

Symlinks are followed, but each real directory is visited once (by device and inode), so a link loop ends.
Hidden files and folders and well-known system folders are skipped. A file is a video when its extension
says so, or, for unknown extensions, when its first bytes carry a video container's signature. Sound files
(``AUDIO_EXTENSIONS``) are listed too: indexing records them as "no video stream", for the speech stage,
rather than leaving them out without a word.
"""

from __future__ import annotations

import hashlib
import logging
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from engine.jobs import CancelToken, check_cancel
from engine.library.catalog import Catalog, VideoRow
from engine.media.media_types import AUDIO_EXTENSIONS, VIDEO_EXTENSIONS

log = logging.getLogger(__name__)

SYSTEM_NAMES = frozenset(
    {
        "$recycle.bin",
        "system volume information",
        "lost+found",
        "@eadir",
        "thumbs.db",
        "desktop.ini",
        "__macosx",
    }
)
NOT_VIDEO_EXTENSIONS = frozenset(
    {
        ".jpg",
        ".jpeg",
        ".png",
        ".gif",
        ".bmp",
        ".tif",
        ".tiff",
        ".heic",
        ".webp",
        ".txt",
        ".md",
        ".pdf",
        ".doc",
        ".docx",
        ".xls",
        ".xlsx",
        ".csv",
        ".json",
        ".xml",
        ".html",
        ".srt",
        ".vtt",
        ".ass",
        ".sub",
        ".nfo",
        ".zip",
        ".gz",
        ".tar",
        ".7z",
        ".rar",
        ".py",
        ".db",
        ".sqlite",
        ".ini",
        ".log",
        ".lnk",
        ".url",
        ".part",
        ".crdownload",
        ".tmp",
    }
)
_SAMPLE = 64 * 1024
_MIN_SNIFF_SIZE = 1024


@dataclass(frozen=True)
class FileStat:
    path: Path
    size: int
    mtime_ns: int


def fingerprint(path: Path, size: int | None = None) -> str:
    """Fast content fingerprint: size + first, middle and last 64 KiB (sha1). Reads at most 192 KiB."""
    size = path.stat().st_size if size is None else size
    digest = hashlib.sha1(str(size).encode())
    with open(path, "rb") as fh:
        for offset in sorted({0, max(0, size // 2 - _SAMPLE // 2), max(0, size - _SAMPLE)}):
            fh.seek(offset)
            digest.update(fh.read(_SAMPLE))
    return digest.hexdigest()


def _sniff_video(path: Path) -> bool:
    """True when the file starts like a video container (MP4/MOV, Matroska/WebM, AVI, MPEG-PS/TS, FLV, ASF, Ogg)."""
    try:
        with open(path, "rb") as fh:
            head = fh.read(4096)
    except OSError:
        return False
    if len(head) < 12:
        return False
    return (
        head[4:8] in (b"ftyp", b"moov", b"mdat", b"wide", b"free")
        or head[:4] == b"\x1a\x45\xdf\xa3"
        or (head[:4] == b"RIFF" and head[8:12] in (b"AVI ", b"AVIX"))
        or head[:4] == b"\x00\x00\x01\xba"
        or (head[0] == 0x47 and len(head) > 376 and head[188] == 0x47 and head[376] == 0x47)
        or head[:3] == b"FLV"
        or head[:16] == bytes.fromhex("3026b2758e66cf11a6d900aa0062ce6c")
        or (head[:4] == b"OggS" and b"theora" in head[:512])
    )


def is_video_path(path: Path, size: int) -> bool:
    suffix = path.suffix.lower()
    if suffix in VIDEO_EXTENSIONS or suffix in AUDIO_EXTENSIONS:
        return True
    if suffix in NOT_VIDEO_EXTENSIONS or size < _MIN_SNIFF_SIZE:
        return False
    return _sniff_video(path)


def _storable(path: str) -> bool:
    """Whether a path can be stored as SQLite text (file names that are not UTF-8 decode to surrogates)."""
    try:
        path.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _skip(name: str) -> bool:
    return name.startswith(".") or name.lower() in SYSTEM_NAMES


def walk_videos(
    root: Path, *, cancel: CancelToken | None = None, unreadable: list[tuple[Path, str]] | None = None
) -> Iterator[FileStat]:
    """Yield every video file under ``root`` (following symlinks once per real directory)."""
    seen: set[tuple[int, int]] = set()
    stack = [Path(root)]
    count = 0
    while stack:
        folder = stack.pop()
        try:
            st = folder.stat()
        except OSError as exc:
            if unreadable is not None:
                unreadable.append((folder, exc.strerror or str(exc)))
            continue
        if (st.st_dev, st.st_ino) in seen:
            continue
        seen.add((st.st_dev, st.st_ino))
        try:
            entries = sorted(os.scandir(folder), key=lambda e: e.name)
        except OSError as exc:
            if unreadable is not None:
                unreadable.append((folder, exc.strerror or str(exc)))
            continue
        subfolders = []
        for entry in entries:
            count += 1
            if count % 256 == 0:
                check_cancel(cancel)
            if _skip(entry.name):
                continue
            try:
                if entry.is_dir(follow_symlinks=True):
                    subfolders.append(Path(entry.path))
                    continue
                if not entry.is_file(follow_symlinks=True):
                    continue
                est = entry.stat(follow_symlinks=True)
            except OSError:
                continue  # broken symlink or a file vanishing mid-scan: not a video we can index
            path = Path(entry.path)
            if is_video_path(path, est.st_size):
                yield FileStat(path, est.st_size, est.st_mtime_ns)
        stack.extend(reversed(subfolders))


@dataclass(frozen=True)
class NewFile:
    """A file the catalog does not know at this path, with its fingerprint (and the folder it belongs to)."""

    stat: FileStat
    fingerprint: str
    folder_id: int


@dataclass
class LibraryScan:
    """What a scan of every folder found, relative to the catalog, moves matched across folders."""

    new: list[NewFile] = field(default_factory=list)
    changed: list[tuple[VideoRow, FileStat]] = field(default_factory=list)
    moved: list[tuple[VideoRow, NewFile]] = field(default_factory=list)
    removed: list[VideoRow] = field(default_factory=list)
    unchanged: int = 0
    unreadable: list[tuple[Path, str]] = field(default_factory=list)  # folders that could not be listed
    # Videos by name that cannot be used (no read permission; a name that is not UTF-8), with the reason:
    # recorded as failed (fingerprint "") so the catalog, CLI and app say why; the next scan looks again.
    rejected: list[tuple[NewFile, str]] = field(default_factory=list)

    @property
    def total(self) -> int:
        return len(self.new) + len(self.changed) + len(self.moved) + self.unchanged


def scan_library(catalog: Catalog, *, cancel: CancelToken | None = None) -> LibraryScan:
    """Compare every folder's files with the catalog.

    A file whose path is unknown but whose fingerprint (and size) matches a row whose file is gone, in any
    folder, is a move: the row keeps its id and so its vectors. Fingerprints are computed only for files
    the catalog does not know at that path."""
    result = LibraryScan()
    known = {v["path"]: v for v in catalog.videos()}
    present: set[str] = set()
    for folder in catalog.folders():
        root = Path(folder["path"])
        if not root.is_dir():
            # A missing or unmounted folder is not evidence that its videos were deleted: keep them.
            result.unreadable.append((root, "folder is missing or not mounted; its videos are kept"))
            present.update(v["path"] for v in known.values() if v["folder_id"] == folder["id"])
            continue
        for stat in walk_videos(root, cancel=cancel, unreadable=result.unreadable):
            key = str(stat.path)
            if not _storable(key):  # SQLite text is UTF-8: record it under an escaped name, as failed
                shown = key.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
                present.add(shown)
                why = "its name is not valid UTF-8, so it cannot be indexed; rename it"
                result.rejected.append(
                    (NewFile(FileStat(Path(shown), stat.size, stat.mtime_ns), "", folder["id"]), why)
                )
                continue
            if key in present:
                continue
            present.add(key)
            row = known.get(key)
            if row is None:
                try:
                    fp = fingerprint(stat.path, stat.size)
                except OSError as exc:
                    why = f"cannot read it: {exc.strerror or exc}"
                    result.rejected.append((NewFile(stat, "", folder["id"]), why))
                    continue
                result.new.append(NewFile(stat, fp, folder["id"]))
            elif row["size"] != stat.size or row["mtime_ns"] != stat.mtime_ns or not row["fingerprint"]:
                # no fingerprint: it could not be read last time (permissions change no mtime): try again
                result.changed.append((row, stat))
            else:
                result.unchanged += 1
    gone = {row["fingerprint"]: row for path, row in known.items() if path not in present}
    moved_ids: set[int] = set()
    still_new: list[NewFile] = []
    for item in result.new:
        row = gone.get(item.fingerprint)
        if row is not None and row["id"] not in moved_ids and row["size"] == item.stat.size:
            moved_ids.add(row["id"])
            result.moved.append((row, item))
        else:
            still_new.append(item)
    result.new = still_new
    result.removed = [row for path, row in known.items() if path not in present and row["id"] not in moved_ids]
    return result
