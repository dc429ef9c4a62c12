"""``scenefind train CONFIG | --data FILE ...`` and ``scenefind negatives DATA``: training from a terminal.

``train`` fine-tunes the model from a config file and/or flags (under torchrun, or relaunched through it with
``--nproc``). ``negatives`` writes the component negatives and positives a training set's captions need: DATA
is a training file (CSV or JSON lines with video and caption, ``engine.train.data``) or an official annotation
file (any of ``engine.datasets``; captions only, so no videos are needed); the LLM is ``--llm FILE.gguf``, or
the default model downloaded on first use, or none with ``--no-llm`` (rule-based swaps only). It prints the
share of LLM proposals that validated, per component, and writes one JSON line per caption.

Nothing heavy is imported until a command runs. Exit codes follow ``engine.cli``: 0 success, 2 usage, unreadable
input or fatal error, 130 cancelled (a resumable checkpoint was saved, or finished captions are cached; run
the same command again to continue).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from engine.cli import EXIT_CANCELLED, EXIT_ERROR, EXIT_OK, Handler
from engine.cli.support import cancel_on_sigint, fail, progress_bar

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
    ("--patience", "patience", int, "epochs with no gain in validation R@1 (ties: R@5, R@10, MnR); 0 = never"),
    ("--seed", "seed", int, "random seed"),
    ("--time-reversal", "time_reversal", float, "weight of reversed clips as negatives of path captions; 0 = off"),
    ("--device", "device", str, "auto, cpu, cuda, cuda:N or mps"),
)


def register(subparsers: Any) -> dict[str, Handler]:
    """Add ``train`` and ``negatives`` to the ``scenefind`` sub-command parsers; return their handlers."""
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
    return {"train": cmd_train, **_register_negatives(subparsers)}


def _register_negatives(subparsers: Any) -> dict[str, Handler]:
    """Add ``negatives`` to the ``scenefind`` sub-command parsers; returns its handler."""
    n = subparsers.add_parser(
        "negatives",
        help="write LLM-proposed, parse-validated component negatives for a training set's captions",
        description="For every caption of DATA, write negatives that change one component (subject, verb, "
        "object, attribute) or swap two nouns (relation), and paraphrase positives. Results are cached, so "
        "an interrupted run resumes.",
    )
    n.add_argument("data", type=Path, metavar="DATA", help="training CSV/JSONL, or an official annotation file")
    n.add_argument("--llm", type=Path, metavar="GGUF", help="local GGUF model (default: download Qwen2.5-1.5B once)")
    n.add_argument("--no-llm", action="store_true", help="rule-based swaps from the dataset's vocabulary only")
    n.add_argument("--per-component", type=int, default=4, metavar="N", help="negatives per component (default 4)")
    n.add_argument("--positives", type=int, default=1, metavar="N", help="paraphrases per caption (default 1)")
    n.add_argument("--out", type=Path, metavar="FILE", help="output JSONL (default: DATA.negatives.jsonl beside DATA)")
    n.add_argument("--dataset", help="read DATA with this official loader (default: guessed when not a training file)")
    n.add_argument("--limit", type=int, metavar="N", help="only the first N distinct captions")
    n.add_argument("--seed", type=int, default=0, help="seed of sampling and rule-based swaps (default 0)")
    n.add_argument("--json", action="store_true", help="print the summary as JSON")
    return {"negatives": cmd_negatives}


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
        return fail(f"--nproc must be at least 1, got {args.nproc}")
    if launched_topology().distributed:
        return fail("--nproc starts the processes itself; leave it out when running under torchrun")
    try:
        check_batch_size(batch_size, Topology(world_size=args.nproc))
        codes = launch(args.nproc, _worker_argv(args))
    except ValueError as exc:
        return fail(exc)
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
        return fail(exc)
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
            return fail(exc)
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


def read_captions(path: Path, dataset: str | None = None) -> list[str]:
    """Distinct captions of a training file, or of an official annotation file, in file order."""
    from engine.datasets import LOADERS, CaptionPair, guess_dataset
    from engine.train.data import TrainingDataError, load_training_data

    if dataset is None:
        try:
            return list(dict.fromkeys(item.caption for item in load_training_data(path)))
        except TrainingDataError:
            dataset = guess_dataset(path)
            if dataset is None:
                raise
    if dataset not in LOADERS:
        raise ValueError(f"unknown dataset {dataset!r}; choose one of {', '.join(LOADERS)}")
    records = LOADERS[dataset](path)
    return list(dict.fromkeys(r.caption if isinstance(r, CaptionPair) else r.query for r in records))


def cmd_negatives(args: argparse.Namespace) -> int:
    from engine.datasets import AnnotationError
    from engine.jobs import JobCancelled
    from engine.train.components import SpacyModelMissing
    from engine.train.llm import LLMError, LocalLLM, default_model_cached
    from engine.train.negatives import generate_negatives, write_negatives

    if args.per_component < 1 or args.positives < 0:
        return fail("--per-component must be at least 1 and --positives at least 0")
    data = args.data.expanduser()
    out = args.out or data.with_name(f"{data.stem}.negatives.jsonl")
    try:
        captions = read_captions(data, args.dataset)
        if args.limit is not None:
            captions = captions[: max(0, args.limit)]
        show = not getattr(args, "no_progress", False)
        with cancel_on_sigint(message="Stopping… finished captions are cached (Ctrl-C again to abort)") as token:
            llm: LocalLLM | None = None
            if args.llm is not None:
                llm = LocalLLM(args.llm)
            elif not args.no_llm:
                with progress_bar(show and not default_model_cached()) as download_bar:
                    llm = LocalLLM.default(progress=download_bar, cancel=token)
            try:
                with progress_bar(show) as bar:
                    result = generate_negatives(
                        captions,
                        llm=llm,
                        per_component=args.per_component,
                        positives=args.positives,
                        seed=args.seed,
                        progress=bar,
                        cancel=token,
                    )
            finally:
                if llm is not None:
                    llm.close()
        write_negatives(result, out)
    except (JobCancelled, KeyboardInterrupt):
        print("Cancelled. Finished captions are cached; run again to resume.", file=sys.stderr)
        return EXIT_CANCELLED
    except (AnnotationError, LLMError, SpacyModelMissing, ValueError, OSError) as exc:
        return fail(exc)
    if args.json:
        print(json.dumps({**result.to_json(), "out": str(out)}, indent=2))
    else:
        print(result.table())
        print(f"wrote {out}")
    return EXIT_OK
