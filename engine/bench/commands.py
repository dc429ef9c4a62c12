"""``scenefind`` commands run the way a user runs them, in dependency order, for the end-to-end benchmarks.

Why: ``bench quality`` must measure what a user gets, so it trains, indexes and searches through the commands
(``scenefind train``, ``index``, ``search --batch``), not through private shortcuts. A :class:`Command` is one
command line with the commands it waits for; :func:`run_commands` runs them

* as separate processes (``python -m engine.cli ...``, one torch thread each) when ``workers`` > 1, as many at
  once as there are workers, so two trainings keep two cores busy; each child gets its own session, so a Ctrl-C
  in the terminal reaches only the benchmark, which forwards one SIGINT (the child stops cleanly: a training
  saves a checkpoint) and waits; on Linux a child also dies with the benchmark if that is killed outright;
* in this process (``engine.cli.main``) with ``workers`` = 1, which saves the start-up of every command (the
  test suite's ``--quick`` run); cancelling then takes effect between commands, and a Ctrl-C reaches the
  running command's own handler.

Either way torch gets one thread per command: the benchmark's models are too small to split across threads, and
on a machine others share, two spinning threads made the temporal head 10-30 times slower than one (measured).

Standard output goes to a file per command (a batch search's answers), standard error to its log; a command
that fails raises :class:`CommandFailed` with the end of its log.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

from engine.jobs import CancelToken, JobCancelled, ProgressCallback, report

STOP_GRACE_S = 60.0  # how long a stopped command may take to save its work before it is killed


class CommandFailed(RuntimeError):
    """A benchmark's command exited with an error; the message names it and quotes the end of its log."""


@dataclass
class Command:
    """One ``scenefind`` command line (the arguments after ``scenefind``) and where its output goes."""

    name: str
    argv: list[str]
    log: Path  # standard error
    stdout: Path | None = None  # standard output (default: the log)
    after: tuple[str, ...] = ()  # names of the commands that must have finished first
    weight: float = 1.0  # its share of the progress bar
    epochs: int = 0  # a training: progress from its "epoch N:" lines
    seconds: float = field(default=0.0, init=False)

    def fraction(self) -> float:
        """How far a running command is, from its log (trainings only; 0 for the others)."""
        if not self.epochs or not self.log.is_file():
            return 0.0
        with contextlib.suppress(OSError):
            text = self.log.read_text(encoding="utf-8", errors="replace")
            return min(1.0, sum(line.startswith("epoch ") for line in text.splitlines()) / self.epochs)
        return 0.0


def _tail(path: Path, lines: int = 15) -> str:
    with contextlib.suppress(OSError):
        return "\n".join(path.read_text(encoding="utf-8", errors="replace").splitlines()[-lines:])
    return "(no log)"


def _failed(command: Command, code: int) -> CommandFailed:
    return CommandFailed(
        f"`scenefind {' '.join(command.argv)}` ({command.name}) exited with {code}; the end of {command.log}:\n"
        + _tail(command.log)
    )


def _child_env(threads: int) -> dict[str, str]:
    """The children import this very ``engine`` (first on their path) and use ``threads`` torch threads."""
    env = dict(os.environ)
    root = str(Path(__file__).resolve().parents[2])
    env["PYTHONPATH"] = os.pathsep.join([root, *([env["PYTHONPATH"]] if env.get("PYTHONPATH") else [])])
    env["OMP_NUM_THREADS"] = str(threads)
    return env


def _die_with_parent() -> None:  # pragma: no cover - runs in the child between fork and exec
    """Linux: have the kernel send SIGTERM to the child when the benchmark dies (even by SIGKILL)."""
    import ctypes

    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


def _prepare(command: Command) -> None:
    for path in (command.log, command.stdout):
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)


def _start(command: Command, threads: int) -> subprocess.Popen[bytes]:
    _prepare(command)
    with contextlib.ExitStack() as files:
        err = files.enter_context(open(command.log, "wb"))
        out = files.enter_context(open(command.stdout, "wb")) if command.stdout else err
        return subprocess.Popen(
            [sys.executable, "-m", "engine.cli", *command.argv],
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=err,
            env=_child_env(threads),
            start_new_session=True,
            preexec_fn=_die_with_parent if sys.platform.startswith("linux") else None,
        )


def _run_here(command: Command) -> int:
    """Run ``command`` through ``engine.cli.main`` in this process (one torch thread), its output in its files."""
    import torch

    from engine.cli import main

    _prepare(command)
    saved = dict(os.environ)  # main() sets SCENEFIND_HOME from --home
    root = logging.getLogger()
    handlers = list(root.handlers)  # main()'s logging.basicConfig would keep writing to the closed log
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    with contextlib.ExitStack() as stack:
        err: IO[str] = stack.enter_context(open(command.log, "w", encoding="utf-8"))
        out = stack.enter_context(open(command.stdout, "w", encoding="utf-8")) if command.stdout else err
        stack.enter_context(contextlib.redirect_stdout(out))
        stack.enter_context(contextlib.redirect_stderr(err))
        try:
            return main(command.argv)
        except SystemExit as exc:  # argparse errors
            return exc.code if isinstance(exc.code, int) else 2
        finally:
            torch.set_num_threads(threads)
            os.environ.clear()
            os.environ.update(saved)
            for handler in root.handlers[:]:
                if handler not in handlers:
                    root.removeHandler(handler)


def run_commands(
    commands: Sequence[Command],
    workers: int = 1,
    *,
    done: Callable[[Command], None] | None = None,
    progress: ProgressCallback | None = None,
    cancel: CancelToken | None = None,
) -> None:
    """Run every command once the commands it waits for have finished, ``workers`` at a time (see the module).

    ``done(command)`` is called as each finishes (with ``command.seconds`` set). Raises ``CommandFailed`` for a
    command that exits with an error (the others are stopped) and ``JobCancelled`` when cancelled or when a
    command reports it was (exit 130)."""
    names = {c.name for c in commands}
    for c in commands:
        missing = [a for a in c.after if a not in names]
        if missing:
            raise ValueError(f"{c.name} waits for unknown commands {missing}")
    total = sum(c.weight for c in commands) or 1.0
    finished: set[str] = set()
    pending = list(commands)
    running: dict[str, tuple[Command, subprocess.Popen[bytes], float]] = {}

    def tick() -> None:
        share = sum(c.weight for c in commands if c.name in finished)
        share += sum(c.weight * c.fraction() for c, _, _ in running.values())
        busy = ", ".join(running) or (pending[0].name if pending else "done")
        report(progress, share / total, f"{len(finished)}/{len(commands)} commands; {busy}")

    def finish(command: Command, code: int, started: float) -> None:
        command.seconds = time.perf_counter() - started
        if code == 130:
            raise JobCancelled(f"{command.name} was cancelled")
        if code != 0:
            raise _failed(command, code)
        finished.add(command.name)
        if done is not None:
            done(command)

    try:
        while pending or running:
            if cancel is not None and cancel.cancelled:
                raise JobCancelled("benchmark cancelled")
            ready = [c for c in pending if all(a in finished for a in c.after)]
            if not ready and not running:
                raise ValueError(f"commands wait for each other in a circle: {[c.name for c in pending]}")
            for command in ready[: max(0, workers - len(running))] if workers > 1 else ready[:1]:
                pending.remove(command)
                started = time.perf_counter()
                if workers > 1:
                    running[command.name] = (command, _start(command, threads=1), started)
                else:
                    tick()
                    finish(command, _run_here(command), started)
            for name, (command, proc, started) in list(running.items()):
                code = proc.poll()
                if code is not None:
                    del running[name]
                    finish(command, code, started)
            tick()
            if running:
                time.sleep(0.2)
    finally:
        _stop(running.values())


def _stop(running: Iterable[tuple[Command, subprocess.Popen[bytes], float]]) -> None:
    """Ask running children to stop (one SIGINT: they save their work), then kill those still there."""
    procs = [proc for _, proc, _ in running]
    for proc in procs:
        if proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                proc.send_signal(signal.SIGINT)
    deadline = time.monotonic() + STOP_GRACE_S
    for proc in procs:
        try:
            proc.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


__all__ = ["Command", "CommandFailed", "run_commands"]
