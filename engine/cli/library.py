"""``scenefind add``, ``remove``, ``status`` and ``models``: the library's folders and what it holds.

These are the quick commands a user runs between the long ones, so they read the catalog and the model list
and nothing more: no encoder is built and torch is never imported.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
from pathlib import Path
from typing import Any

from engine.cli import EXIT_OK, Handler
from engine.cli.support import open_library, safe


def register(sub: Any) -> dict[str, Handler]:
    """Add ``add``, ``remove``, ``status`` and ``models`` to the ``scenefind`` sub-parsers; return their handlers."""
    a = sub.add_parser("add", help="add a folder of videos to the library")
    a.add_argument("folders", nargs="+", type=Path, metavar="FOLDER")
    r = sub.add_parser("remove", help="remove a folder (its files are not touched)")
    r.add_argument("folders", nargs="+", type=Path, metavar="FOLDER")
    st = sub.add_parser("status", help="folders, counts, failed files, models")
    st.add_argument("--json", action="store_true")
    m = sub.add_parser("models", help="list the encoders you can use")
    m.add_argument("--json", action="store_true")
    return {"add": cmd_add, "remove": cmd_remove, "status": cmd_status, "models": cmd_models}


def cmd_add(args: argparse.Namespace) -> int:
    with open_library(args) as lib:
        for folder in args.folders:
            row = lib.add_folder(folder)
            print(f"Added {safe(row['path'])}. Run `scenefind index` to index it.")
    return EXIT_OK


def cmd_remove(args: argparse.Namespace) -> int:
    with open_library(args) as lib:
        for folder in args.folders:
            dropped = lib.remove_folder(folder)
            print(f"Removed {safe(Path(folder).expanduser().resolve())} ({dropped} vectors dropped; files untouched).")
    return EXIT_OK


def _status(lib: Any) -> dict[str, Any]:
    """What ``status`` shows; every count is for the current model (``model_id``) and adds up per folder."""
    folders = [dataclasses.asdict(f) for f in lib.folder_counts()]
    totals = {key: sum(f[key] for f in folders) for key in ("videos", "indexed", "pending", "failed", "no_video")}
    return {
        "home": str(lib.paths.root),
        "model": lib.settings.model,
        "model_id": lib.model_id(),
        "totals": totals,
        "folders": folders,
        "failed": [{"video": v["path"], "error": v["error"]} for v in lib.catalog.videos(status="failed")],
        "no_video": [v["path"] for v in lib.catalog.videos(status="no_video")],
        "models": lib.catalog.models(),
        "stages": _stages(lib),
        "last_jobs": [dict(j) for j in lib.catalog.jobs(limit=6)],
    }


def _stages(lib: Any) -> dict[str, Any]:
    """Per stage: whether it is on, its model, counts by outcome (done, no_audio, failed, pending), failures."""
    from engine.screen_text.reader import reader_id
    from engine.speech.models import model_id_for

    s = lib.settings
    out = {}
    for stage, on, model in (("speech", s.speech, model_id_for(s.speech_model)), ("text", s.screen_text, reader_id())):
        out[stage] = {
            "enabled": on,
            "model": model,
            **lib.catalog.stage_counts(stage, model),
            "failed_videos": [{"video": p, "error": e} for p, e in lib.catalog.stage_failures(stage)],
        }
    return out


def _length(folder: dict) -> str:
    """A folder's length of video; "at least" while some of its videos are not read yet (before their first index)."""
    length = f"{_duration(folder['seconds'])} of video"
    return f"at least {length} ({folder['unread']} not read yet)" if folder["unread"] else length


def _duration(seconds: float) -> str:
    minutes, secs = divmod(round(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


def _counts(c: dict[str, Any]) -> str:
    return f"{c['indexed']} of {c['videos']} videos indexed, {c['pending']} pending, {c['failed']} failed"


def cmd_status(args: argparse.Namespace) -> int:
    with open_library(args) as lib:
        info = _status(lib)
    if args.json:
        print(json.dumps(info, indent=2))
        return EXIT_OK
    model = safe(info["model"])
    if info["model_id"] != info["model"]:  # the id the "also indexed with" lines name, so the two can be told apart
        model += f" (vectors: {safe(info['model_id'])})"
    print(f"Library: {safe(info['home'])}\nModel:   {model}")
    if not info["folders"]:
        print("No folders yet. Add one with `scenefind add FOLDER`.")
    else:
        print(f"With this model: {_counts(info['totals'])}")
    for f in info["folders"]:
        print(
            f"  {safe(f['path'])}: {_counts(f)}; {_length(f)}"
            + (f"; {f['no_video']} sound files without a video stream" if f["no_video"] else "")
        )
    others = [m for m in info["models"] if m["model_id"] != info["model_id"] and m["videos"]]
    for m in others:
        print(f"  also indexed with {safe(m['model_id'])}: {m['videos']} videos (`--model` picks a model)")
    for f in info["failed"]:
        print(f"  failed: {safe(f['video'])}: {safe(f['error'])}")
    for path in info["no_video"]:
        print(f"  no video stream (audio only): {safe(path)}")
    for stage, st in info["stages"].items():
        name = {"speech": "speech", "text": "screen text"}[stage]
        state = "" if st["enabled"] else " (off)"
        silent = f", {st['no_audio']} without sound" if stage == "speech" else ""
        print(
            f"  {name}{state} [{safe(st['model'])}]: {st['done']} done{silent}, {st['failed']} failed, "
            f"{st['pending']} pending"
        )
        for f in st["failed_videos"]:
            print(f"    {name} failed: {safe(f['video'])}: {safe(f['error'])}")
    latest: dict[str, dict[str, Any]] = {}
    for j in info["last_jobs"]:  # newest first: the last run of each kind (index, then its stages)
        latest.setdefault(j["kind"], j)
    for j in latest.values():
        model = f" with {safe(j['model_id'])}" if j.get("model_id") else ""
        print(f"  last {j['kind']} run{model}: {j['status']} ({j['done']}/{j['total']}) {safe(j['message'] or '')}")
    return EXIT_OK


def models_text(models: list[Any], width: int = 100) -> list[str]:
    """``scenefind models`` for people: a count line, what is ready to use (on this computer, nothing to
    download), then what downloads on first use, one line per architecture with its weights tags."""
    import textwrap

    from engine.settings import DEFAULT_MODEL

    ready = [m for m in models if m.cached]
    later = [m for m in models if not m.cached]
    lines = [
        f"{len(models)} models: {len(ready)} ready to use, {len(later)} to download.",
        f"Ready to use, nothing to download ({len(ready)}):",
    ]
    column = max((len(m.name) for m in ready), default=0) + 2
    for m in ready:  # long descriptions wrap under themselves, so the names stay a column
        lines += textwrap.wrap(
            m.description,
            max(40, width),
            initial_indent=f"  {m.name:{column}}",
            subsequent_indent=" " * (column + 2),
            break_on_hyphens=False,
        )
    by_arch: dict[str, list[str]] = {}
    for m in later:
        arch, _, tag = m.name.partition("/")
        by_arch.setdefault(arch, []).append(f"{tag} (default)" if m.name == DEFAULT_MODEL else tag)
    lines.append(f"Downloaded on first use ({len(later)}), as ARCH/TAG, e.g. {DEFAULT_MODEL}:")
    for arch, tags in by_arch.items():
        lines += textwrap.wrap(
            ", ".join(tags), width, initial_indent=f"  {arch}: ", subsequent_indent=" " * 6, break_on_hyphens=False
        )
    lines.append("A local checkpoint works too: --model /path/to/folder (config.json + model.safetensors).")
    return lines


def cmd_models(args: argparse.Namespace) -> int:
    import shutil

    from engine.models.registry import list_models

    models = list_models()
    if args.json:
        print(json.dumps([m.__dict__ for m in models], indent=2, default=str))
        return EXIT_OK
    print("\n".join(models_text(models, max(60, shutil.get_terminal_size((100, 24)).columns - 1))))
    return EXIT_OK
