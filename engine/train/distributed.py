"""Multi-process training (DDP): the torchrun environment, the process group, the global batch, shared decisions.

Why the loss is computed over the *global* batch: a contrastive loss is not a sum of per-sample terms. Every
caption is contrasted with every clip of its batch, so a batch split over N processes is N smaller, easier
problems unless each process sees all of it. losses.md §3.2 says it for EMCL ("In training, all tensors are
all-gathered across GPUs, so B_t = B_v = B") and CE-CLIP's code does the same for its hard negatives (§4.1 item 5).

How the global batch is formed: ``batch_size`` is the global batch. Every process walks the same epoch order
(``engine.train.clips.epoch_order`` is a pure function of seed and epoch) and takes a *contiguous* share of each
global batch (:func:`share`: rank 0 the first clips, rank 1 the next, …; shares differ by at most one clip), so
gathering the shares in rank order gives back exactly the single-process batch, in its order. Only the
embeddings travel: :func:`global_batch` all-gathers them (``torch.distributed.nn.functional.all_gather``, so
gradients flow back to the share that produced them), and each process then computes the identical loss over
the whole batch. The per-batch flags that depend on the other clips (``Batch.drop``: a negative equal to a
positive caption of the batch, findings.md #3) are computed against the global batch (:func:`local_batch`).

Why the gradients equal a single process's: every rank computes the same global loss ``L``. The backward of
the all-gather sums, over ranks, the gradient each rank sends to a slice, so rank r's own embeddings receive
``N·∂L/∂e_r``; parameters used after the gather (logit scale, heads applied to the gathered batch) receive
``∂L/∂θ`` on every rank. DDP then averages over the N ranks: ``(1/N)·Σ_r N·∂L/∂e_r·∂e_r/∂θ = ∂L/∂θ`` and
``(1/N)·N·∂L/∂θ = ∂L/∂θ``. ``tests/engine/test_distributed_training.py`` checks this numerically.

State that is not a parameter (the EMCL ``M``, CE-CLIP's θ) is updated from the gathered, bitwise identical
inputs, so the ranks agree; DDP's ``broadcast_buffers`` additionally copies rank 0's buffers to every rank at the
start of each forward, so non-deterministic kernels can never make them drift for more than one step, and rank 0
is the one that evaluates and writes checkpoints.

With one process (no torchrun, or ``WORLD_SIZE=1``) every helper here is a no-op and ``torch.distributed`` is
never initialised.
"""

from __future__ import annotations

import contextlib
import logging
import os
import warnings
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, TypeVar

import torch
import torch.distributed as dist
from torch import Tensor, nn

from engine.train.clips import Batch, ClipSet, make_batch

log = logging.getLogger(__name__)
T = TypeVar("T")
# Rank 0 evaluates (and writes checkpoints) while the others wait in a collective; NCCL's default 10 minutes
# would kill a run whose validation takes longer.
TIMEOUT = timedelta(minutes=60)


@dataclass(frozen=True)
class Topology:
    """Where this process sits: its rank among ``world_size`` processes and its GPU index on the machine."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def distributed(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        """Rank 0 evaluates, writes checkpoints and logs, and reports progress."""
        return self.rank == 0


def launched_topology() -> Topology:
    """The topology torchrun describes in the environment (``WORLD_SIZE``, ``RANK``, ``LOCAL_RANK``)."""
    values = {}
    for name, default in (("WORLD_SIZE", 1), ("RANK", 0), ("LOCAL_RANK", 0)):
        text = os.environ.get(name, "").strip() or str(default)
        if not text.isdigit():
            raise ValueError(f"environment variable {name}={text!r} is not a non-negative integer (set by torchrun)")
        values[name] = int(text)
    world, rank = max(1, values["WORLD_SIZE"]), values["RANK"]
    if rank >= world:
        raise ValueError(f"RANK={rank} is not below WORLD_SIZE={world}: the torchrun environment is inconsistent")
    return Topology(rank, world, values["LOCAL_RANK"])


def _active() -> bool:
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def current() -> Topology:
    """This process's place in the initialised process group; a single process when there is none."""
    if not _active():
        return Topology()
    rank = dist.get_rank()
    return Topology(rank, dist.get_world_size(), int(os.environ.get("LOCAL_RANK", rank)))


def device_for(preference: str, topology: Topology) -> str:
    """The device this rank trains on: ``cuda:LOCAL_RANK`` when CUDA is asked for (or ``auto`` finds it), else CPU.

    DDP runs on CUDA (NCCL) or on the CPU (gloo); an explicit ``cuda:N`` is replaced by the rank's own GPU.
    """
    from engine.models.device import pick_device

    device = pick_device(preference)
    if not topology.distributed:
        return device
    if device.startswith("cuda"):
        if topology.local_rank >= torch.cuda.device_count():
            raise ValueError(
                f"LOCAL_RANK {topology.local_rank} has no GPU: this machine has {torch.cuda.device_count()}; "
                "start at most that many processes per machine (torchrun --nproc_per_node)"
            )
        return f"cuda:{topology.local_rank}"
    if device != "cpu":
        raise ValueError(f"multi-process training runs on CUDA GPUs (NCCL) or the CPU (gloo), not on {device!r}")
    return device


@contextlib.contextmanager
def session(device: str = "auto") -> Iterator[Topology]:
    """Join the process group torchrun describes for the span of the block; yields this process's topology.

    NCCL when the rank trains on a GPU, gloo on the CPU. A single process (no torchrun, ``WORLD_SIZE=1``)
    initialises nothing, and a group someone else already initialised is used as it is and left alone.
    """
    topology = launched_topology()
    if not topology.distributed or (dist.is_available() and dist.is_initialized()):
        yield current() if _active() else topology
        return
    if not dist.is_available():
        raise ValueError("this torch build has no torch.distributed, so it cannot train with several processes")
    target = device_for(device, topology)
    if target.startswith("cuda"):
        torch.cuda.set_device(target)
        dist.init_process_group("nccl", timeout=TIMEOUT, device_id=torch.device(target))
    else:
        dist.init_process_group("gloo", timeout=TIMEOUT)
    log.info("rank %d of %d joined the process group (%s)", topology.rank, topology.world_size, dist.get_backend())
    try:
        yield current()
    finally:
        dist.destroy_process_group()


# --- the global batch ---------------------------------------------------------------------------------------------


def check_batch_size(batch_size: int, topology: Topology) -> None:
    """``batch_size`` is the global batch: each of the processes takes an equal share of it."""
    if batch_size % topology.world_size:
        fits = batch_size - batch_size % topology.world_size or topology.world_size
        raise ValueError(
            f"batch_size {batch_size} is the global batch and must be divisible by the {topology.world_size} "
            f"training processes (each takes an equal share); use e.g. {fits} or {fits + topology.world_size}"
        )


def batches_per_epoch(n_clips: int, batch_size: int, world_size: int) -> int:
    """Global batches in an epoch: the last, shorter one only when every process gets at least one of its clips.

    (With one process that is every batch; with N, a last batch of fewer than N clips is skipped that epoch.)
    """
    full, rest = divmod(n_clips, batch_size)
    count = full + (1 if rest >= world_size else 0)
    if count == 0:
        raise ValueError(f"{n_clips} training clips cannot feed {world_size} processes one clip each")
    return count


def shard_sizes(n: int, world_size: int) -> list[int]:
    """How many of ``n`` clips each rank takes (as even as possible, the first ranks one more)."""
    base, extra = divmod(n, world_size)
    return [base + (rank < extra) for rank in range(world_size)]


def share(indices: Sequence[int], topology: Topology) -> list[int]:
    """This rank's contiguous share of a global batch; the shares in rank order are ``indices`` again."""
    sizes = shard_sizes(len(indices), topology.world_size)
    start = sum(sizes[: topology.rank])
    return list(indices[start : start + sizes[topology.rank]])


def local_batch(clips: ClipSet, indices: Sequence[int], *, seed: int, epoch: int, topology: Topology) -> Batch:
    """``make_batch`` of this rank's share, its ``drop`` flags taken against the captions of the *global* batch."""
    if not topology.distributed:
        return make_batch(clips, indices, seed=seed, epoch=epoch)
    return make_batch(clips, share(indices, topology), seed=seed, epoch=epoch, context=indices)


def _gather(x: Tensor, sizes: list[int]) -> Tensor:
    flag = x.dtype == torch.bool  # collectives do not all carry bool
    y = x.to(torch.uint8) if flag else x
    if y.shape[0] < max(sizes):
        y = torch.cat([y, y.new_zeros(max(sizes) - y.shape[0], *y.shape[1:])])
    if y.requires_grad:
        from torch.distributed.nn.functional import all_gather

        with warnings.catch_warnings():  # newer torch points to a private replacement; this one spans torch ≥ 2.3
            warnings.filterwarnings("ignore", "torch.distributed.nn.functional.all_gather is deprecated", FutureWarning)
            parts = list(all_gather(y))
    else:
        parts = [torch.empty_like(y) for _ in sizes]
        dist.all_gather(parts, y.contiguous())
    out = torch.cat([part[:size] for part, size in zip(parts, sizes, strict=True)])
    return out.bool() if flag else out


def global_batch(*tensors: Tensor) -> tuple[Tensor, ...]:
    """Per-sample tensors of this rank's share (dim 0) as the global batch: every rank's rows in rank order.

    Gradients flow back to the rank that produced each row (the backward sums over ranks; see the module
    docstring for why that, with DDP's averaging, is the single-process gradient). Shares may differ by a row;
    other dimensions must agree across ranks. Identity for a single process.
    """
    if not tensors or not _active():
        return tensors
    rows = tensors[0].shape[0]
    if any(t.shape[0] != rows for t in tensors):
        raise ValueError(f"global_batch needs tensors with equal first dimensions, got {[t.shape for t in tensors]}")
    count = torch.tensor([rows], dtype=torch.long, device=tensors[0].device)
    counts = [torch.zeros_like(count) for _ in range(dist.get_world_size())]
    dist.all_gather(counts, count)
    sizes = [int(c.item()) for c in counts]
    return tuple(_gather(t, sizes) for t in tensors)


# --- the wrapped model and shared decisions -----------------------------------------------------------------------


class _Step(nn.Module):
    """``fn(model, *inputs)`` as a module's forward, so DDP sees the whole training forward, loss included."""

    def __init__(self, model: nn.Module, fn: Callable[..., Any]) -> None:
        super().__init__()
        self.model, self.fn = model, fn

    def forward(self, *inputs: Any) -> Any:
        return self.fn(self.model, *inputs)


def data_parallel(model: nn.Module, fn: Callable[..., Any], *, find_unused: bool = False) -> nn.Module:
    """A module whose call runs ``fn(model, *inputs)``; under DDP, wrapped so the ranks' gradients are averaged.

    ``find_unused``: some trainable parameter may get no gradient from ``fn`` (DDP must then look for them each
    step). Buffers (EMCL ``M``, CE-CLIP θ) are broadcast from rank 0 before every forward (DDP's default,
    ``broadcast_buffers`` / ``forward_sync_buffers``).
    """
    step = _Step(model, fn)
    if not _active():
        return step
    from torch.nn.parallel import DistributedDataParallel

    return DistributedDataParallel(step, find_unused_parameters=find_unused)


def accumulating(module: nn.Module, sync: bool) -> contextlib.AbstractContextManager[Any]:
    """Wrap a micro-batch's forward and backward: without ``sync`` DDP keeps the gradients local (accumulation)."""
    no_sync = getattr(module, "no_sync", None)
    return no_sync() if not sync and no_sync is not None else contextlib.nullcontext()


def _device() -> torch.device:
    return torch.device("cuda", torch.cuda.current_device()) if dist.get_backend() == "nccl" else torch.device("cpu")


def any_rank(flag: bool) -> bool:
    """True on every rank when it is true on any (a cancel on one rank stops all at the same step)."""
    if not _active():
        return flag
    value = torch.tensor([int(flag)], device=_device())
    dist.all_reduce(value, op=dist.ReduceOp.MAX)
    return bool(value.item())


def global_max(value: int) -> int:
    """The largest ``value`` over the ranks (e.g. a token length every rank pads to before a gather)."""
    if not _active():
        return value
    box = torch.tensor([value], device=_device())
    dist.all_reduce(box, op=dist.ReduceOp.MAX)
    return int(box.item())


def broadcast(obj: T, src: int = 0) -> T:
    """Rank ``src``'s ``obj`` on every rank (picklable); ``obj`` itself for a single process."""
    if not _active():
        return obj
    box = [obj]
    dist.broadcast_object_list(box, src=src, device=_device())
    return box[0]


def barrier() -> None:
    """Wait until every rank gets here (e.g. until rank 0 has written a checkpoint)."""
    if _active():
        dist.barrier()


def launch(nproc: int, argv: Sequence[str], *, shutdown_timeout: int = 120) -> list[int]:
    """Run ``python -m engine.cli ARGV`` as ``nproc`` processes on this machine with torchrun's own launcher
    (``torch.distributed.run``, standalone rendezvous); returns the failed workers' exit codes (``[]``: success).

    Ctrl-C here is forwarded once to every worker (each in its own session), which stops after its step; the
    workers still running ``shutdown_timeout`` seconds later are killed.
    """
    from torch.distributed.elastic.multiprocessing.api import SignalException
    from torch.distributed.elastic.multiprocessing.errors import ChildFailedError
    from torch.distributed.run import parse_args, run

    if nproc < 1:
        raise ValueError(f"--nproc must be at least 1, got {nproc}")
    launcher = ["--standalone", f"--nproc-per-node={nproc}", f"--shutdown-timeout={shutdown_timeout}"]
    args = parse_args([*launcher, "-m", "engine.cli", *argv])
    try:
        run(args)
    except ChildFailedError as exc:
        return [failure.exitcode for failure in exc.failures.values()]
    except SignalException as exc:
        return [128 + int(exc.sigval)]
    return []


__all__ = [
    "TIMEOUT",
    "Topology",
    "accumulating",
    "any_rank",
    "barrier",
    "batches_per_epoch",
    "broadcast",
    "check_batch_size",
    "current",
    "data_parallel",
    "device_for",
    "global_batch",
    "launch",
    "launched_topology",
    "local_batch",
    "session",
    "shard_sizes",
    "share",
]
