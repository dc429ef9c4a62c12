"""``scenefind bench train``: the synthetic compositional benchmark of the training objectives.

Why: it answers, at a scale a CPU trains in minutes, whether the objectives of losses.md improve compositional
understanding over plain InfoNCE, and at what cost in retrieval. Every variant trains the same tiny model
(``engine.train.synthetic``) from scratch with the same data, schedule and budget through the real trainer
(``engine.train.trainer.fit``); only the objective changes. The test set holds (colour, shape, verb) triples never
seen in training. The table reports R@1/5/10 and compositional accuracy per negative type, averaged over seeds,
exactly as it comes out: the data and budgets were fixed before any comparison and are not tuned per method.
"""

from __future__ import annotations

import math
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import torch

from engine.jobs import CancelToken, ProgressCallback, check_cancel, wrap_progress

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


def run_train_bench(
    seeds: Sequence[int] = (0, 1),
    log: Callable[[str], None] = print,
    *,
    variants: Sequence[str] | None = None,
    epochs: int = 8,
    batch_size: int = 64,
    n_train: int = 3000,
    n_test: int = 500,
    out: str | Path | None = None,
    progress: ProgressCallback | None = None,
    cancel: CancelToken | None = None,
) -> dict[str, Any]:
    """Train every variant on every seed and return ``{"rows", "per_seed", "table", "seconds", "setup"}``.

    ``variants`` selects objectives by name (default: all six). ``log`` gets one line per finished run and the
    final table. ``out`` keeps the runs' folders (default: a temporary folder, removed afterwards).
    """
    from engine.train.evaluate import evaluate
    from engine.train.model import build_model
    from engine.train.objective import SCORE_MODE
    from engine.train.synthetic import SyntheticBackbone, SyntheticSpec, make_splits
    from engine.train.trainer import fit

    chosen = [(label, obj) for label, obj in VARIANTS if variants is None or obj in variants]
    if not chosen:
        raise ValueError(f"no known variant in {list(variants or [])}; choose from {[o for _, o in VARIANTS]}")
    spec = SyntheticSpec(n_train=n_train, n_test=n_test)
    started = time.perf_counter()
    runs = len(chosen) * len(seeds)
    per_seed: dict[str, list[dict[str, float]]] = {obj: [] for _, obj in chosen}
    with tempfile.TemporaryDirectory(prefix="scenefind-bench-train-") as tmp:
        root = Path(out) if out is not None else Path(tmp)
        for s_index, seed in enumerate(seeds):
            train_clips, test_clips = make_splits(seed, spec)
            for v_index, (label, objective) in enumerate(chosen):
                check_cancel(cancel)
                run = s_index * len(chosen) + v_index
                t0 = time.perf_counter()
                torch.manual_seed(seed)
                mode = SCORE_MODE[objective]
                model = build_model(
                    SyntheticBackbone(image_size=spec.size),
                    n_frames=spec.n_frames,
                    concept_head=mode == "s3ma",
                    importance=objective == "component_ie",
                    emcl_k=32 if mode == "emcl" else None,
                    score_mode=mode,
                    seed=seed,
                )
                config = bench_config(
                    objective, seed, root / f"{objective}-seed{seed}", epochs=epochs, batch_size=batch_size
                )
                fit(
                    model,
                    train_clips,
                    None,
                    config,
                    progress=wrap_progress(progress, run / runs, (run + 1) / runs),
                    cancel=cancel,
                )
                metrics = evaluate(model, test_clips, cancel=cancel)
                per_seed[objective].append(metrics)
                log(
                    f"seed {seed} {label:<24} R@1 {metrics['t2v_R1']:5.1f}  "
                    f"components {metrics['comp_components']:5.1f}"
                    f"  binding {metrics['comp_binding']:5.1f}  ({time.perf_counter() - t0:.0f} s)"
                )
    rows = []
    for label, objective in chosen:
        runs_ = per_seed[objective]
        row: dict[str, Any] = {"variant": label, "objective": objective}
        for key in COLUMNS:
            values = [m[key] for m in runs_ if key in m]
            row[key] = sum(values) / len(values) if values else math.nan
        rows.append(row)
    seconds = time.perf_counter() - started
    table = format_table(rows)
    log(table)
    log(f"{len(seeds)} seeds, {epochs} epochs, {n_train} training clips, {n_test} held-out test clips; {seconds:.0f} s")
    setup = {
        "seeds": list(seeds),
        "epochs": epochs,
        "batch_size": batch_size,
        "spec": replace(spec).__dict__,
        "threads": torch.get_num_threads(),
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


__all__ = ["VARIANTS", "bench_config", "format_table", "run_train_bench"]
