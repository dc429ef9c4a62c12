"""What the fault benchmarks share: the model they index with, a library prepared for them, and child
processes that run the CLI and can be SIGKILLed mid-work.

``engine.bench.faults`` (kills), ``engine.bench.hostile`` (hostile files) and ``engine.bench.bad_queries`` all
build on this module and on nothing of each other's, so the imports run one way: faults -> hostile and
bad_queries -> harness. Children are forked from a server that imported the engine once, so a kill lands in
the work, not in ``import torch``.
"""

from __future__ import annotations

import multiprocessing
import os
import signal
from collections.abc import Callable
from multiprocessing.context import BaseContext
from pathlib import Path
from typing import Any

MODEL = "fake:color"  # weightless and deterministic: identical vectors in every run
_RUN_TIMEOUT_S = 300.0
_PRELOAD = ["engine.cli", "engine.library.library", "engine.models.registry", "engine.search.searcher"]


def child_context() -> BaseContext:
    """Forkserver children start with the engine already imported (the server imports it once)."""
    ctx = multiprocessing.get_context("forkserver")
    ctx.set_forkserver_preload(_PRELOAD)  # ignored when the server already runs: children then import lazily
    return ctx


def silence_output(log_path: str | None) -> None:
    """Send this process's stdout and stderr (file descriptors 1 and 2) to ``log_path``, or nowhere."""
    fd = os.open(log_path or os.devnull, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    os.dup2(fd, 1)
    os.dup2(fd, 2)
    os.close(fd)


def _noop() -> None:
    os._exit(0)


def run_child(target: Callable[..., None], args: tuple[Any, ...], *, kill_after: float | None = None) -> int | None:
    """Run ``target(*args)`` in a forkserver child; SIGKILL it after ``kill_after`` s. Returns its exit code,
    or None when it was killed while running. The parent kills only its own unreaped child."""
    proc = child_context().Process(target=target, args=args, daemon=True)
    proc.start()
    proc.join(_RUN_TIMEOUT_S if kill_after is None else kill_after)
    if proc.is_alive():
        proc.kill()
        proc.join()
        if kill_after is None:
            raise TimeoutError(f"{target.__name__}{args} did not finish in {_RUN_TIMEOUT_S:.0f} s")
    return None if proc.exitcode == -signal.SIGKILL else proc.exitcode  # it may have exited just before


def start_fork_server() -> None:
    """Start the fork server now (it imports the engine once), so the first timed or killed child is not
    the one that pays for the imports."""
    run_child(_noop, ())


def prepare_library(home: Path, folder: Path, *, save_every_videos: int = 1, **settings: Any) -> None:
    """A library at ``home`` over ``folder``; saving indexes after every video puts saves in the kill path.
    ``settings`` are further engine settings (the speech model of a run whose stages do real work)."""
    from engine.library.library import Library
    from engine.settings import EngineSettings, save

    home.mkdir(parents=True, exist_ok=True)
    save(EngineSettings(model=MODEL, save_every_videos=save_every_videos, **settings), home / "settings.toml")
    with Library(home) as lib:
        lib.add_folder(folder)
