"""``scenefind train CONFIG | --data FILE ...`` and ``scenefind bench train``: arguments and handlers.

Kept out of ``engine/cli.py`` so the CLI stays small; nothing heavy is imported until a command runs. Exit codes
follow ``engine.cli``: 0 success, 2 usage or fatal error, 130 cancelled (a resumable checkpoint was saved; run
the same command again to continue).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from engine.cli_support import cancel_on_sigint, progress_bar

EXIT_OK, EXIT_ERROR, EXIT_CANCELLED = 0, 2, 130
_FLAGS = (  # (flag, TrainConfig field, type, help)
    ("--data", "data", str, "captions file (see engine.train.data)"),
    ("--negatives", "negatives", str, "hard-negatives file (see engine.train.negatives)"),
    ("--out", "out", str, "run folder for checkpoints, best/ and log.csv"),
    ("--objective", "objective", str, "infonce, component, component_ie, ceclip, s3ma or emcl"),
    ("--epochs", "epochs", int, "number of epochs"),
    ("--batch-size", "batch_size", int, "clips per micro-batch"),
    ("--grad-accum", "grad_accum", int, "micro-batches per optimiser step"),
    ("--lr", "lr", float, "learning rate of the towers"),
    ("--head-lr", "head_lr", float, "learning rate of the heads"),
    ("--frames", "n_frames", int, "frames per clip"),
    ("--patience", "patience", int, "epochs without better validation R@1 before stopping (0 = never)"),
    ("--seed", "seed", int, "random seed"),
    ("--device", "device", str, "auto, cpu, cuda, cuda:N or mps"),
)


def register(subparsers: Any) -> dict[str, Callable[[argparse.Namespace], int]]:
    """Add ``train`` to the ``scenefind`` sub-command parsers; returns ``{"train": handler}``."""
    p = subparsers.add_parser(
        "train",
        help="fine-tune the model on captioned clips with hard negatives",
        description="Train from a CONFIG file (TOML or JSON, any TrainConfig setting) and/or flags, which win "
        "over the file. A run resumes from its latest checkpoint; Ctrl-C saves one and stops.",
    )
    p.add_argument("config", nargs="?", type=Path, metavar="CONFIG", help="TOML or JSON training config")
    for flag, _, kind, text in _FLAGS:
        p.add_argument(flag, type=kind, default=None, help=text)
    p.add_argument("--freeze", choices=("none", "vision", "text", "towers"), default=None, help="freeze towers")
    p.add_argument("--heads-only", action="store_true", default=None, help="train only the heads")
    p.add_argument("--no-resume", dest="resume", action="store_false", default=None, help="start afresh")
    p.add_argument(
        "--nproc",
        type=int,
        default=None,
        metavar="N",
        help="train with N processes on this machine through torchrun (DDP: one per GPU, or gloo on the CPU); "
        "batch-size stays the global batch",
    )
    p.add_argument("--json", action="store_true", help="print the result as JSON")
    return {"train": cmd_train}


def register_bench(bench_subparsers: Any) -> dict[str, Callable[[argparse.Namespace], int]]:
    """Add ``train`` to the ``bench`` sub-parsers; returns ``{"train": handler}`` (key it under ``bench``)."""
    p = bench_subparsers.add_parser(
        "train",
        help="synthetic compositional benchmark of the training objectives (CPU, minutes)",
        description="Train a tiny video-text model from scratch on synthetic clips of moving shapes with each "
        "objective and print R@1/5/10 and compositional accuracy per negative type, averaged over seeds.",
    )
    p.add_argument("--seeds", default="0,1", help="comma-separated seeds (default 0,1)")
    p.add_argument("--variants", default=None, help="objectives to run, comma-separated (default all six)")
    p.add_argument("--epochs", type=int, default=None, help="epochs per run (default: the benchmark's)")
    p.add_argument("--threads", type=int, default=1, help="torch CPU threads per run (default 1; 0 = torch's default)")
    p.add_argument(
        "--workers",
        type=int,
        default=None,
        help="runs trained at once in separate processes (default: CPU cores / threads, at most 12)",
    )
    p.add_argument("--out", type=Path, default=None, help="keep the runs' checkpoints here")
    p.add_argument("--json", action="store_true", help="print the figures as JSON")
    return {"train": cmd_bench_train}


def _config(args: argparse.Namespace) -> Any:
    from engine.train.trainer import TrainConfig

    overrides = {field: getattr(args, flag.lstrip("-").replace("-", "_")) for flag, field, _, _ in _FLAGS}
    overrides = {k: v for k, v in overrides.items() if v is not None}
    if args.model:
        overrides["model"] = args.model
    if args.freeze is not None:
        overrides["freeze_vision"] = args.freeze in ("vision", "towers")
        overrides["freeze_text"] = args.freeze in ("text", "towers")
    for key in ("heads_only", "resume"):
        if getattr(args, key) is not None:
            overrides[key] = getattr(args, key)
    if args.config is not None:
        return TrainConfig.from_file(args.config, **overrides)
    return TrainConfig.from_dict(overrides, source="command line")


def _error(message: object) -> int:
    print(f"scenefind: error: {message}", file=sys.stderr)
    return EXIT_ERROR


def _worker_argv(args: argparse.Namespace) -> list[str]:
    """This ``train`` command line again, without ``--nproc``: what each torchrun worker runs."""
    argv = ["--model", args.model] if args.model else []
    argv += ["-v"] if getattr(args, "verbose", False) else []
    argv += ["--no-progress"] if getattr(args, "no_progress", False) else []
    argv.append("train")
    argv += [str(args.config)] if args.config is not None else []
    for flag, _, _, _ in _FLAGS:
        value = getattr(args, flag.lstrip("-").replace("-", "_"))
        argv += [flag, str(value)] if value is not None else []
    argv += ["--freeze", args.freeze] if args.freeze is not None else []
    argv += ["--heads-only"] if args.heads_only else []
    argv += ["--no-resume"] if args.resume is False else []
    argv += ["--json"] if args.json else []
    return argv


def _launch(args: argparse.Namespace, batch_size: int) -> int:
    """``--nproc N``: run this command in N processes through torchrun's launcher; each joins the process group."""
    from engine.train.distributed import Topology, check_batch_size, launch, launched_topology

    if args.nproc < 1:
        return _error(f"--nproc must be at least 1, got {args.nproc}")
    if launched_topology().distributed:
        return _error("--nproc starts the processes itself; leave it out when running under torchrun")
    try:
        check_batch_size(batch_size, Topology(world_size=args.nproc))
        codes = launch(args.nproc, _worker_argv(args))
    except ValueError as exc:
        return _error(exc)
    if not codes:
        return EXIT_OK
    return EXIT_CANCELLED if EXIT_CANCELLED in codes else next((c for c in codes if c > 0), EXIT_ERROR)


def cmd_train(args: argparse.Namespace) -> int:
    from engine.jobs import JobCancelled
    from engine.models.base import ModelUnavailable
    from engine.train.distributed import launched_topology
    from engine.train.trainer import EpochReport, train

    try:
        config = _config(args)
        main = launched_topology().is_main  # under torchrun only rank 0 shows progress and the result
    except ValueError as exc:
        return _error(exc)
    if getattr(args, "nproc", None) is not None and args.nproc != 1:
        return _launch(args, config.batch_size)

    def on_epoch(row: EpochReport) -> None:
        keys = ("t2v_R1", "t2v_R5", "comp_components")
        shown = "  ".join(f"{k} {row.metrics[k]:.1f}" for k in keys if k in row.metrics)
        print(f"epoch {row.epoch}: loss {row.train_loss:.4f}  {shown}{'  (best)' if row.best else ''}", file=sys.stderr)

    with (
        progress_bar(main and not args.no_progress) as progress,
        cancel_on_sigint(message="Stopping after the current step… (Ctrl-C again to abort)") as cancel,
    ):
        try:
            result = train(config, progress=progress, cancel=cancel, on_epoch=on_epoch)
        except JobCancelled as exc:
            if main:
                print(f"scenefind: {exc}", file=sys.stderr)
            return EXIT_CANCELLED
        except (ValueError, OSError, ModelUnavailable) as exc:
            return _error(exc)
    if not main:
        return EXIT_OK
    summary = {
        "checkpoint": str(result.checkpoint),
        "best_checkpoint": str(result.best_checkpoint),
        "best_t2v_R1": result.best_metric,
        "epochs": len(result.history),
        "stopped_early": result.stopped_early,
    }
    if args.json:
        print(json.dumps(summary, indent=2))
    else:
        print(f"best checkpoint: {summary['best_checkpoint']} (validation R@1 {result.best_metric})")
        print(f"index with it:   scenefind --model {summary['best_checkpoint']} index")
    return EXIT_OK


def cmd_bench_train(args: argparse.Namespace) -> int:
    import torch

    from engine.bench.train_bench import run_train_bench
    from engine.jobs import JobCancelled

    try:
        seeds = tuple(int(s) for s in args.seeds.split(",") if s.strip())
    except ValueError:
        return _error(f"--seeds {args.seeds!r}: write integers separated by commas, e.g. 0,1")
    if args.threads < 0 or (args.workers is not None and args.workers < 1):
        return _error("--threads must be ≥ 0 and --workers ≥ 1")
    if args.threads:
        torch.set_num_threads(args.threads)
    workers = args.workers or max(1, min(12, (os.cpu_count() or 1) // max(1, args.threads or torch.get_num_threads())))
    variants = [v.strip() for v in args.variants.split(",")] if args.variants else None
    extra = {"epochs": args.epochs} if args.epochs else {}
    log = (lambda line: print(line, file=sys.stderr)) if args.json else print
    started = time.perf_counter()
    with cancel_on_sigint(message="Stopping after the current step… (Ctrl-C again to abort)") as cancel:
        try:
            figures = run_train_bench(
                seeds,
                log,
                variants=variants,
                out=args.out,
                workers=workers,
                threads=args.threads,
                cancel=cancel,
                **extra,
            )
        except JobCancelled:
            return EXIT_CANCELLED
        except ValueError as exc:
            return _error(exc)
    figures["wall_s"] = time.perf_counter() - started
    if args.json:
        print(json.dumps({k: v for k, v in figures.items() if k != "table"}, indent=2, default=str))
    return EXIT_OK


__all__ = ["cmd_bench_train", "cmd_train", "register", "register_bench"]
