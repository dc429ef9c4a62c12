"""``scenefind add``, ``remove``, ``status`` and ``models``: the library's folders and what it holds.

These are the quick commands a user runs between the long ones, so they read the catalog and the model list
and nothing more: no encoder is built and torch is never imported.
"""

from __future__ import annotations

import argparse
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
    return {
        "home": str(lib.paths.root),
        "model": lib.settings.model,
        "folders": lib.catalog.folder_counts(),
        "failed": [{"video": v["path"], "error": v["error"]} for v in lib.catalog.videos(status="failed")],
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


def _duration(seconds: float) -> str:
    minutes, secs = divmod(round(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


def cmd_status(args: argparse.Namespace) -> int:
    with open_library(args) as lib:
        info = _status(lib)
    if args.json:
        print(json.dumps(info, indent=2))
        return EXIT_OK
    print(f"Library: {info['home']}\nModel:   {info['model']}")
    if not info["folders"]:
        print("No folders yet. Add one with `scenefind add FOLDER`.")
    for f in info["folders"]:
        print(
            f"  {safe(f['path'])}: {f['videos']} videos, {f['indexed']} indexed, {f['pending']} pending, "
            f"{f['failed']} failed, {_duration(f['seconds'])} of video"
        )
    for m in info["models"]:
        print(f"  index {m['model_id']}: {m['videos']} videos")
    for f in info["failed"]:
        print(f"  failed: {safe(f['video'])}: {safe(f['error'])}")
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
        print(f"  last {j['kind']} run: {j['status']} ({j['done']}/{j['total']}) {j['message'] or ''}")
    return EXIT_OK


def cmd_models(args: argparse.Namespace) -> int:
    from engine.models.registry import list_models

    models = list_models()
    if args.json:
        print(json.dumps([m.__dict__ for m in models], indent=2, default=str))
        return EXIT_OK
    for m in models:
        cached = {True: " (downloaded)", False: "", None: ""}[m.cached]
        print(f"{m.name:48s} {m.description}{cached}")
    return EXIT_OK
