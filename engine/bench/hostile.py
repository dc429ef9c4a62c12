"""Hostile and odd files, generated on demand, with what indexing must make of each.

A personal library holds whatever a phone, a download or a half-finished copy left behind. These generators
write one of each kind the reliability issue lists (empty, truncated, random bytes, a text file in disguise,
one frame, 8K, variable frame rate, audio only, unicode/emoji/very long names, quotes, symlink loops, no read
permission) into a folder, so the tests and ``scenefind bench faults`` index the very same set. Each case says
what the run must record: ``indexed`` (a real video, however odd), ``failed`` (a catalog row with a reason),
``no_video`` (a sound file: a catalog row saying so, not a failure) or ``skipped`` (not a video at all:
nothing to record). Three more files are deleted or replaced by a hook while
the indexer decodes (``run_hostile``), and a list of bad queries (``QUERIES``) is tried on the result.
"""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import subprocess
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np

from engine.bench.harness import MODEL, prepare_library, run_child, silence_output
from engine.media.synthetic import write_color_video

Expect = Literal["indexed", "failed", "no_video", "skipped", "gone"]
_LONG_COMPONENT = 200  # bytes per folder name in the very long path (file systems allow 255)
_LONG_PATH = 1500  # total length of the very long path (Linux allows 4096)


@dataclass(frozen=True)
class HostileCase:
    """One generated file: its kind, where it is, and what indexing must make of it."""

    kind: str
    path: Path
    expect: Expect
    needs: str = ""  # "ffmpeg" or "non-root" when the case could only be generated partly; "" otherwise


def _ffmpeg(*args: str) -> None:
    """Run the ffmpeg program on an argument list (never a shell); raises when it fails."""
    exe = shutil.which("ffmpeg")
    if exe is None:
        raise FileNotFoundError("the ffmpeg program is not on the PATH")
    subprocess.run([exe, "-hide_banner", "-loglevel", "error", "-nostdin", "-y", *args], check=True, timeout=120)


def _zero_byte(folder: Path) -> HostileCase:
    path = folder / "zero bytes.mp4"
    path.write_bytes(b"")
    return HostileCase("zero-byte", path, "failed")


def _truncated(folder: Path) -> HostileCase:
    """An mp4 cut to a third of its length: the index (moov) written last by OpenCV is gone."""
    path = write_color_video(folder / "truncated.mp4", [(3, (200, 40, 40))], fps=10, noise=8)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 3])
    return HostileCase("truncated mp4", path, "failed")


def _truncated_midway(folder: Path) -> HostileCase:
    """An mp4 with its index at the front (``+faststart``) cut in half: the first half still decodes."""
    path = folder / "truncated midway.mp4"
    if shutil.which("ffmpeg") is None:
        write_color_video(path, [(3, (200, 40, 40))], fps=10)
        return HostileCase("truncated mp4, index first", path, "indexed", needs="ffmpeg")
    _ffmpeg("-f", "lavfi", "-i", "testsrc2=size=160x120:rate=10:duration=6", "-c:v", "mpeg4", "-q:v", "5",
            "-movflags", "+faststart", str(path))  # fmt: skip
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    return HostileCase("truncated mp4, index first", path, "indexed")


def _random_bytes(folder: Path) -> HostileCase:
    path = folder / "random bytes.mp4"
    path.write_bytes(np.random.default_rng(7).integers(0, 256, 64 * 1024, dtype=np.uint8).tobytes())
    return HostileCase("random bytes named .mp4", path, "failed")


def _text_as_mkv(folder: Path) -> HostileCase:
    path = folder / "notes.mkv"
    path.write_text("Shopping list\n- milk\n- a tripod\n" * 100, encoding="utf-8")
    return HostileCase("text file named .mkv", path, "failed")


def _one_frame(folder: Path) -> HostileCase:
    path = write_color_video(folder / "one frame.mp4", [(0.1, (30, 200, 30))], fps=10)
    return HostileCase("one-frame video", path, "indexed")


def _eight_k(folder: Path) -> HostileCase:
    """7680x4320, three frames (Motion JPEG: MPEG-4 part 2 stops at 2048 px on a side)."""
    path = write_color_video(folder / "eight k.avi", [(0.3, (30, 60, 220))], fps=10, size=(7680, 4320))
    return HostileCase("8K video", path, "indexed")


def _vfr(folder: Path) -> HostileCase:
    """Variable frame rate: 10 fps for 2 s, then 30 fps for 2 s, in one H.264 (or MPEG-4) mp4."""
    path = folder / "variable rate.mp4"
    if shutil.which("ffmpeg") is None:  # a constant-rate stand-in keeps the set the same size
        write_color_video(path, [(4, (240, 225, 40))], fps=10)
        return HostileCase("variable frame rate", path, "indexed", needs="ffmpeg")
    _ffmpeg(
        "-f", "lavfi", "-i", "testsrc2=size=160x120:rate=30:duration=4",
        "-vf", "select='if(lt(t,2),not(mod(n,3)),1)'",
        "-fps_mode", "vfr", "-c:v", "mpeg4", "-q:v", "5", str(path),
    )  # fmt: skip
    return HostileCase("variable frame rate", path, "indexed")


def _audio_only(folder: Path) -> HostileCase:
    """An .mp4 holding only sound: a sound file in a video's name, recorded as "no video stream"."""
    path = folder / "audio only.mp4"
    if shutil.which("ffmpeg") is None:  # an mp4 header with no streams at all is a broken file instead
        path.write_bytes(b"\x00\x00\x00\x18ftypmp42\x00\x00\x00\x00mp42isom" + bytes(4096))
        return HostileCase("audio-only mp4", path, "failed", needs="ffmpeg")
    _ffmpeg("-f", "lavfi", "-i", "sine=frequency=440:duration=2", "-c:a", "aac", str(path))
    return HostileCase("audio-only mp4", path, "no_video")


def _audio_m4a(folder: Path) -> HostileCase:
    """The same sound as .m4a: listed and recorded as "no video stream" too, never left out without a word."""
    path = folder / "voice memo.m4a"
    if shutil.which("ffmpeg") is None:
        path.write_bytes(b"\x00\x00\x00\x18ftypM4A \x00\x00\x00\x00M4A isom" + bytes(4096))
        return HostileCase("audio-only m4a", path, "failed", needs="ffmpeg")
    _ffmpeg("-f", "lavfi", "-i", "sine=frequency=330:duration=2", "-c:a", "aac", str(path))
    return HostileCase("audio-only m4a", path, "no_video")


def _unicode(folder: Path) -> HostileCase:
    path = write_color_video(folder / "café – 東京 ✓ Ünïcödé.mp4", [(2, (220, 30, 30))], fps=10)
    return HostileCase("unicode name", path, "indexed")


def _emoji(folder: Path) -> HostileCase:
    path = write_color_video(folder / "🎬 party 🎉👨‍👩‍👧.mp4", [(2, (250, 165, 195))], fps=10)
    return HostileCase("emoji name", path, "indexed")


def _long_path(folder: Path) -> HostileCase:
    deep = folder / "long"
    while len(str(deep)) < _LONG_PATH - _LONG_COMPONENT:
        deep = deep / ("d" * (_LONG_COMPONENT - 1 - len(deep.parts) % 10) + "é")
    path = write_color_video(deep / ("v" * 150 + ".mp4"), [(2, (20, 128, 128))], fps=10)
    return HostileCase("very long path", path, "indexed")


def _quotes(folder: Path) -> HostileCase:
    name = 'it\'s a "quoted" name; $(touch pwned) `id` & | > .mp4'
    path = write_color_video(folder / name, [(2, (120, 50, 170))], fps=10)
    return HostileCase("spaces and quotes", path, "indexed")


def _control_characters(folder: Path) -> HostileCase:
    """Escape sequences and a newline in the name: indexed, and never interpreted by a terminal or a shell."""
    path = write_color_video(folder / "esc\x1b[2J\x1b]0;title\x07 new\nline.mp4", [(2, (245, 245, 245))], fps=10)
    return HostileCase("control characters in the name", path, "indexed")


def _not_utf8(folder: Path) -> HostileCase:
    """A Latin-1 name (old archives): not UTF-8, so the catalog records it, escaped, as failed."""
    raw = os.fsencode(folder) + b"/caf\xe9 latin-1.mp4"
    try:
        write_color_video(folder / "latin-1.tmp.mp4", [(2, (120, 70, 30))], fps=10)
        os.rename(os.fsencode(folder / "latin-1.tmp.mp4"), raw)
    except OSError:  # a file system that insists on UTF-8 names
        return HostileCase("name not valid UTF-8", folder / "latin-1.tmp.mp4", "indexed", needs="non-UTF-8 names")
    shown = raw.decode("utf-8", "backslashreplace")
    return HostileCase("name not valid UTF-8", Path(shown), "failed")


def _symlink_loop(folder: Path) -> HostileCase:
    """A folder link to its own parent, plus a file link loop (a -> b -> a) named like a video."""
    loop = folder / "loop"
    loop.mkdir(exist_ok=True)
    (loop / "back to parent").symlink_to("..", target_is_directory=True)
    (loop / "a.mp4").symlink_to("b.mp4")
    (loop / "b.mp4").symlink_to("a.mp4")
    return HostileCase("symlink loops", loop, "skipped")


def _unreadable(folder: Path) -> HostileCase:
    path = write_color_video(folder / "no permission.mp4", [(2, (245, 140, 20))], fps=10)
    path.chmod(0)
    return HostileCase("unreadable permissions", path, "failed", needs="non-root")


GENERATORS: tuple[Callable[[Path], HostileCase], ...] = (
    _zero_byte,
    _truncated,
    _truncated_midway,
    _random_bytes,
    _text_as_mkv,
    _one_frame,
    _eight_k,
    _vfr,
    _audio_only,
    _audio_m4a,
    _unicode,
    _emoji,
    _long_path,
    _quotes,
    _control_characters,
    _not_utf8,
    _symlink_loop,
    _unreadable,
)


def write_hostile_library(folder: Path) -> list[HostileCase]:
    """Write every hostile case into ``folder`` (created); returns them in a fixed order."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    return [generate(folder) for generate in GENERATORS]


def permission_denied_works(path: Path) -> bool:
    """Whether a ``chmod 0`` file is really unreadable here (not for root, nor on some file systems)."""
    try:
        with open(path, "rb"):
            return False
    except PermissionError:
        return True


def restore_permissions(cases: list[HostileCase]) -> None:
    """Make the unreadable case readable again, so the folder can be deleted by anyone."""
    for case in cases:
        if case.path.exists() and not case.path.is_symlink():
            os.chmod(case.path, 0o644 if case.path.is_file() else 0o755)


# -- running the indexer over them ----------------------------------------------------------------------

_MID = "mid"  # folder of the files the hook deletes or replaces while they are being indexed
_BLUE, _RED = (20, 20, 220), (220, 20, 20)


def drop_permission_override() -> bool:
    """As root, give up CAP_DAC_OVERRIDE and CAP_DAC_READ_SEARCH in this (single-threaded) process, so a
    ``chmod 0`` file is as unreadable as it is for any user; returns whether it did. Linux only."""
    if not hasattr(os, "geteuid") or os.geteuid() != 0:
        return False
    import ctypes

    class Header(ctypes.Structure):
        _fields_ = [("version", ctypes.c_uint32), ("pid", ctypes.c_int)]

    class Data(ctypes.Structure):
        _fields_ = [("effective", ctypes.c_uint32), ("permitted", ctypes.c_uint32), ("inheritable", ctypes.c_uint32)]

    try:
        libc = ctypes.CDLL(None, use_errno=True)
        header, data = Header(0x20080522, 0), (Data * 2)()  # _LINUX_CAPABILITY_VERSION_3
        if libc.capget(ctypes.byref(header), data) != 0:
            return False
        keep = ~((1 << 1) | (1 << 2)) & 0xFFFFFFFF  # CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH
        data[0].effective &= keep
        data[0].permitted &= keep
        data[0].inheritable &= keep
        return bool(libc.capset(ctypes.byref(header), data) == 0)
    except (OSError, AttributeError):
        return False


def _mid_index_plan(folder: Path) -> dict[str, list[tuple[str, str]]]:
    """Files changed by the hook, keyed by the file whose first decoded frame triggers the change."""
    mid = folder / _MID
    write_color_video(mid / "a deleted while indexing.mp4", [(3, _RED)], fps=10)
    write_color_video(mid / "b replaced while indexing.mp4", [(3, _RED)], fps=10)
    write_color_video(mid / "c vanished before decoding.mp4", [(3, _RED)], fps=10)
    write_color_video(mid / ".replacement.mp4", [(4, _BLUE)], fps=10)  # hidden: the scanner skips it
    return {
        "a deleted while indexing.mp4": [
            ("delete", "a deleted while indexing.mp4"),
            ("delete", "c vanished before decoding.mp4"),
        ],
        "b replaced while indexing.mp4": [("replace", "b replaced while indexing.mp4")],
    }


def _install_hooks(folder: Path, plan: dict[str, list[tuple[str, str]]]) -> None:
    """Wrap the producer's ``VideoFile.sample`` so that the first frame of a trigger file applies its changes."""
    import engine.indexing.producer as producer

    class HookedVideoFile(producer.VideoFile):
        def sample(self, *args: Any, **kwargs: Any) -> Iterator[Any]:
            actions = plan.get(self.path.name, [])
            for n, frame in enumerate(super().sample(*args, **kwargs)):
                yield frame
                for action, name in actions if n == 0 else ():
                    target = folder / _MID / name
                    if action == "delete":
                        target.unlink(missing_ok=True)
                    else:
                        os.replace(folder / _MID / ".replacement.mp4", target)

    producer.VideoFile = HookedVideoFile  # type: ignore[misc]


def hostile_child(home: str, folder: str, log_path: str, plan: str, status_path: str) -> None:
    """Child process body: drop root's permission override, install the hooks, run ``scenefind index``."""
    silence_output(log_path)
    dropped = drop_permission_override()
    unreadable = Path(folder) / "no permission.mp4"
    Path(status_path).write_text(
        json.dumps({"dropped": dropped, "permission_denied": permission_denied_works(unreadable)}), encoding="utf-8"
    )
    if plan:
        _install_hooks(Path(folder), json.loads(plan))
    from engine.cli import main

    os._exit(main(["--home", home, "--model", MODEL, "--no-progress", "index"]))


def _rows(home: Path) -> dict[str, tuple[str, str]]:
    db = sqlite3.connect(home / "catalog.sqlite")
    try:
        return {
            path: (status, error or "") for path, status, error in db.execute("SELECT path, status, error FROM videos")
        }
    finally:
        db.close()


def _outcome(case: HostileCase, rows: dict[str, tuple[str, str]]) -> tuple[str, str]:
    if case.expect == "skipped":  # nothing under it may be in the catalog
        inside = [p for p in rows if Path(p).is_relative_to(case.path)]
        return ("skipped", "") if not inside else ("recorded", f"{len(inside)} rows")
    status, error = rows.get(str(case.path), ("gone", ""))
    return status, error


def run_hostile(work: Path) -> dict[str, Any]:
    """Index the hostile set plus three normal videos twice, in child processes; report what became of each."""
    from engine.library.scanner import fingerprint

    folder, home = work / "videos", work / "home"
    cases = write_hostile_library(folder)
    normal = [write_color_video(folder / "normal" / f"{name}.mp4", [(3, rgb)], fps=10) for name, rgb in
              (("red", _RED), ("blue", _BLUE), ("green", (20, 200, 20)))]  # fmt: skip
    plan = _mid_index_plan(folder)
    prepare_library(home, folder, save_every_videos=20)
    log, status = work / "index-log.txt", work / "child-status.json"
    try:
        codes = [run_child(hostile_child, (str(home), str(folder), str(log), json.dumps(plan), str(status)))]
        first = _rows(home)
        codes.append(run_child(hostile_child, (str(home), str(folder), str(log), "", str(status))))
        second = _rows(home)
    finally:
        restore_permissions(cases)
    child = json.loads(status.read_text(encoding="utf-8"))
    cli_output = log.read_text(encoding="utf-8", errors="replace")
    mid = folder / _MID
    cases += [
        HostileCase("deleted while being indexed", mid / "a deleted while indexing.mp4", "gone"),
        HostileCase("replaced while being indexed", mid / "b replaced while indexing.mp4", "indexed"),
        HostileCase("deleted before being decoded", mid / "c vanished before decoding.mp4", "gone"),
    ]
    details = []
    for case in cases:
        outcome, reason = _outcome(case, second if case.expect == "gone" or "replaced" in case.kind else first)
        ok = outcome == case.expect
        if case.kind == "unreadable permissions" and not child["permission_denied"]:
            ok = outcome in ("indexed", "failed")  # root without a way to drop its override: cannot be tested
        if case.kind == "deleted before being decoded":
            ok = ok and "not found" in first.get(str(case.path), ("", ""))[1]
        if case.kind == "replaced while being indexed":  # re-indexed with the new content on the next run
            ok = ok and fingerprint(case.path) == _fingerprint_of(home, case.path)
        if outcome == "failed":
            ok = ok and bool(reason) and str(case.path) in cli_output and reason in cli_output
        details.append({"kind": case.kind, "path": str(case.path), "expect": case.expect, "outcome": outcome,
                        "reason": reason, "handled": ok})  # fmt: skip
    normal_ok = all(first.get(str(p), ("",))[0] == "indexed" for p in normal)
    return {
        "cases": len(details),
        "handled": sum(d["handled"] for d in details),
        "indexed": sum(d["outcome"] == "indexed" for d in details),
        "failed": sum(d["outcome"] == "failed" for d in details),
        "no_video": sum(d["outcome"] == "no_video" for d in details),
        "skipped": sum(d["outcome"] in ("skipped", "gone") for d in details),
        "crashed_runs": sum(code not in (0, 1) for code in codes),
        "exit_codes": codes,
        "normal_videos_indexed": normal_ok,
        "permission_denied_tested": bool(child["permission_denied"]),
        "details": details,
        "home": str(home),
    }


def _fingerprint_of(home: Path, path: Path) -> str:
    db = sqlite3.connect(home / "catalog.sqlite")
    try:
        row = db.execute("SELECT fingerprint FROM videos WHERE path = ?", (str(path),)).fetchone()
        return row[0] if row else ""
    finally:
        db.close()
