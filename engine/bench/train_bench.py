"""``scenefind bench train``: the synthetic compositional benchmark of the training objectives.

Why: it answers, at a scale a CPU trains in minutes, whether the objectives of losses.md improve compositional
understanding over plain InfoNCE, and at what cost in retrieval. Every variant trains the same tiny model
(``engine.train.synthetic``) from scratch with the same data, schedule and budget through the real trainer
(``engine.train.trainer.fit``); only the objective changes. The test set holds (colour, shape, verb) triples never
seen in training. The table reports R@1/5/10 and compositional accuracy per negative type, averaged over seeds,
exactly as it comes out: the data and budgets were fixed before any comparison and are not tuned per method.
"""

from __future__ import annotations

import contextlib
import functools
import math
import multiprocessing
import os
import queue
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import torch

from engine.jobs import CancelToken, ProgressCallback, check_cancel, report, wrap_progress

# (label, objective); the order is the issue's.
VARIANTS: tuple[tuple[str, str], ...] = (
    ("InfoNCE", "infonce"),
    ("+ component negatives", "component"),
    ("+ importance estimation", "component_ie"),
    ("CE-CLIP losses", "ceclip"),
    ("S3MA", "s3ma"),
    ("EMCL", "emcl"),
)
COLUMNS = (
    "t2v_R1",
    "t2v_R5",
    "t2v_R10",
    "comp_subject",
    "comp_verb",
    "comp_object",
    "comp_attribute",
    "comp_swap_colors",
    "comp_swap_roles",
    "comp_reverse",
    "comp_components",
    "comp_binding",
)
HEADERS = ("R@1", "R@5", "R@10", "subj", "verb", "obj", "attr", "swapC", "swapR", "rev", "comp4", "binding")


def bench_config(objective: str, seed: int, out: Path, *, epochs: int, batch_size: int) -> Any:
    """The one training configuration every variant shares (from-scratch CPU budget)."""
    from engine.train.trainer import TrainConfig

    return TrainConfig(
        out=str(out),
        model="synthetic",
        objective=objective,
        epochs=epochs,
        batch_size=batch_size,
        lr=1e-3,
        head_lr=1e-3,
        weight_decay=0.05,
        warmup=0.1,
        n_frames=8,
        seed=seed,
        patience=0,
        device="cpu",
        amp=False,
        resume=False,
        keep_last=1,
        tensorboard=False,
    )


@dataclass(frozen=True)
class BenchRun:
    """One cell of the table: a variant trained on one seed (picklable, so a worker process can run it)."""

    label: str
    objective: str
    seed: int
    spec: Any  # engine.train.synthetic.SyntheticSpec
    epochs: int
    batch_size: int
    out: str
    threads: int


@functools.lru_cache(maxsize=2)
def _splits(seed: int, spec: Any) -> tuple[Any, Any]:
    from engine.train.synthetic import make_splits

    return make_splits(seed, spec)


def run_one(run: BenchRun, *, progress: ProgressCallback | None = None, cancel: CancelToken | None = None) -> Any:
    """Train ``run`` from scratch and return ``(metrics, seconds)``; deterministic for its seed."""
    from engine.train.evaluate import evaluate
    from engine.train.objective import model_for_objective
    from engine.train.synthetic import synthetic_backbone
    from engine.train.trainer import fit

    if run.threads:
        torch.set_num_threads(run.threads)
    t0 = time.perf_counter()
    train_clips, test_clips = _splits(run.seed, run.spec)
    torch.manual_seed(run.seed)
    model = model_for_objective(
        synthetic_backbone(run.spec.size), run.objective, n_frames=run.spec.n_frames, seed=run.seed
    )
    config = bench_config(run.objective, run.seed, Path(run.out), epochs=run.epochs, batch_size=run.batch_size)
    fit(model, train_clips, None, config, progress=progress, cancel=cancel)
    metrics = evaluate(model, test_clips, cancel=cancel)
    return metrics, time.perf_counter() - t0


_WORKER: tuple[Any, CancelToken] | None = None  # in a worker process: (progress queue, stop token)


class _StopEvent(CancelToken):
    """A cancel token over the parent's multiprocessing Event, so its Ctrl-C or Cancel reaches the workers."""

    def __init__(self, event: Any) -> None:  # no super().__init__: it would make a private, unshared Event
        self._event = event


def _init_worker(updates: Any, stop: Any, parent: int) -> None:
    """Worker-process start: keep the parent's queue and stop event, and leave when the parent has gone.

    Why the watch: a parent killed outright (SIGKILL, SIGTERM, a closed terminal) runs no cleanup, and
    workers that never look up would train on for minutes at full CPU, orphaned."""
    global _WORKER
    _WORKER = (updates, _StopEvent(stop))

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(0.2)
        os._exit(1)

    threading.Thread(target=watch, name="parent-watch", daemon=True).start()


def _run_in_worker(run: BenchRun, index: int) -> Any:
    """Worker-process entry: ``run_one`` with progress sent to the parent's queue as ``(index, fraction)``."""
    assert _WORKER is not None, "_init_worker runs first in every worker"
    updates, cancel = _WORKER

    def progress(fraction: float, message: str) -> None:
        updates.put((index, fraction))

    return run_one(run, progress=progress, cancel=cancel)


def _parallel(
    runs: Sequence[BenchRun],
    workers: int,
    finished: Callable[[int, Any], None],
    progress: ProgressCallback | None,
    cancel: CancelToken | None,
) -> None:
    """Run ``runs`` in ``workers`` spawned processes (one torch thread each by default), reporting as they end.

    Why processes: the tiny model cannot keep two cores busy from one process (its ops are too small to split
    across threads), while two independent runs can; the table then takes about half the wall time."""
    context = multiprocessing.get_context("spawn")  # fork is unsafe once torch has started its thread pools
    fractions = [0.0] * len(runs)
    updates, stop = context.Queue(), context.Event()
    pool = ProcessPoolExecutor(
        workers, mp_context=context, initializer=_init_worker, initargs=(updates, stop, os.getpid())
    )
    with pool:
        pending = {pool.submit(_run_in_worker, run, i): i for i, run in enumerate(runs)}
        try:
            while pending:
                done, _ = wait(pending, timeout=0.5, return_when=FIRST_COMPLETED)
                with contextlib.suppress(queue.Empty):
                    while True:
                        i, fraction = updates.get_nowait()
                        fractions[i] = fraction
                for future in done:
                    i = pending.pop(future)
                    fractions[i] = 1.0
                    finished(i, future.result())
                report(progress, sum(fractions) / len(runs), f"{len(runs) - len(pending)} of {len(runs)} runs done")
                if cancel is not None and cancel.cancelled:
                    stop.set()
                    check_cancel(cancel)
        except BaseException:
            stop.set()
            for future in pending:
                future.cancel()
            raise


def run_train_bench(
    seeds: Sequence[int] = (0, 1),
    log: Callable[[str], None] = print,
    *,
    variants: Sequence[str] | None = None,
    epochs: int = 16,
    batch_size: int = 64,
    n_train: int = 3000,
    n_test: int = 500,
    out: str | Path | None = None,
    workers: int = 1,
    threads: int = 1,
    progress: ProgressCallback | None = None,
    cancel: CancelToken | None = None,
) -> dict[str, Any]:
    """Train every variant on every seed and return ``{"rows", "per_seed", "table", "seconds", "setup"}``.

    ``variants`` selects objectives by name (default: all six). ``log`` gets one line per finished run and the
    final table. ``out`` keeps the runs' folders (default: a temporary folder, removed afterwards). ``workers``
    > 1 trains that many runs at once in separate processes with ``threads`` torch threads each (0 = torch's
    default); every run is seeded, so the figures do not depend on how the runs are spread.
    """
    from engine.train.synthetic import SyntheticSpec

    chosen = [(label, obj) for label, obj in VARIANTS if variants is None or obj in variants]
    if not chosen:
        raise ValueError(f"no known variant in {list(variants or [])}; choose from {[o for _, o in VARIANTS]}")
    if workers < 1:
        raise ValueError(f"workers must be at least 1, got {workers}")
    spec = SyntheticSpec(n_train=n_train, n_test=n_test)
    started = time.perf_counter()
    results: dict[tuple[str, int], dict[str, float]] = {}
    with tempfile.TemporaryDirectory(prefix="scenefind-bench-train-") as tmp:
        root = Path(out) if out is not None else Path(tmp)
        runs = [
            BenchRun(label, obj, seed, spec, epochs, batch_size, str(root / f"{obj}-seed{seed}"), threads)
            for seed in seeds
            for label, obj in chosen
        ]

        def finished(i: int, outcome: Any) -> None:
            metrics, seconds = outcome
            run = runs[i]
            results[(run.objective, run.seed)] = metrics
            log(
                f"seed {run.seed} {run.label:<24} R@1 {metrics['t2v_R1']:5.1f}  "
                f"components {metrics['comp_components']:5.1f}"
                f"  binding {metrics['comp_binding']:5.1f}  ({seconds:.0f} s)"
            )

        if workers == 1 or len(runs) == 1:
            for i, run in enumerate(runs):
                check_cancel(cancel)
                part = wrap_progress(progress, i / len(runs), (i + 1) / len(runs))
                finished(i, run_one(run, progress=part, cancel=cancel))
        else:
            _parallel(runs, min(workers, len(runs)), finished, progress, cancel)
    per_seed = {obj: [results[(obj, seed)] for seed in seeds] for _, obj in chosen}
    rows = []
    for label, objective in chosen:
        row: dict[str, Any] = {"variant": label, "objective": objective}
        for key in COLUMNS:
            values = [m[key] for m in per_seed[objective] if key in m]
            row[key] = sum(values) / len(values) if values else math.nan
        rows.append(row)
    seconds = time.perf_counter() - started
    table = format_table(rows)
    log(table)
    log(
        f"{len(seeds)} seeds, {epochs} epochs, {n_train} training clips, {n_test} held-out test clips; "
        f"{workers} worker process(es); {seconds:.0f} s"
    )
    setup = {
        "seeds": list(seeds),
        "epochs": epochs,
        "batch_size": batch_size,
        "spec": replace(spec).__dict__,
        "workers": workers,
        "threads": threads or torch.get_num_threads(),
    }
    return {"rows": rows, "per_seed": per_seed, "table": table, "seconds": seconds, "setup": setup}


def format_table(rows: Sequence[dict[str, Any]]) -> str:
    """A Markdown table of the averaged rows, with deltas against the first row for the summary columns."""
    head = "| variant | " + " | ".join(HEADERS) + " |"
    lines = [head, "|" + "---|" * (len(HEADERS) + 1)]
    for row in rows:
        cells = [f"{row[k]:.1f}" if not math.isnan(row[k]) else "–" for k in COLUMNS]
        lines.append(f"| {row['variant']} | " + " | ".join(cells) + " |")
    if len(rows) > 1:
        base = rows[0]
        lines.append("")
        lines.append(f"Δ vs {base['variant']} (R@1 / components / binding):")
        for row in rows[1:]:
            deltas = [row[k] - base[k] for k in ("t2v_R1", "comp_components", "comp_binding")]
            lines.append(f"  {row['variant']:<24} " + " / ".join(f"{d:+.1f}" for d in deltas))
    return "\n".join(lines)


__all__ = ["VARIANTS", "BenchRun", "bench_config", "format_table", "run_one", "run_train_bench"]
