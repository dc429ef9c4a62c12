"""``RayIndexer``: an indexing run whose decoding and embedding happen on Ray workers.

Everything but the embedding is the local run's (``Indexer.run``): this process scans, decides the pending
videos, and is the one writer, committing each video through the same ``VideoWriter`` as a local run, so a
crash or a cancel leaves the library exactly as a local run would. Workers (``VideoEmbedder`` actors, GPU
ones when the cluster has GPUs, fractions allowed) read each video by its path on shared storage and send
its frame vectors back; the writer commits videos as their results arrive, in whatever order they finish.

Faults: a worker process that dies is replaced by Ray (``max_restarts``) and its videos are re-done there
(``max_task_retries``); a worker gone for good has its videos handed to the others, a few times at most, after
which a video is recorded as failed, like an undecodable file. The writer finishes a video at most once, so
nothing is lost or duplicated. Cancel kills the run's workers and commits nothing partial.
"""

from __future__ import annotations

import logging
import math
import time
from collections import Counter, deque
from dataclasses import dataclass, field
from typing import Any

from engine.indexing.pipeline import Indexer, IndexReport, VideoWriter
from engine.indexing.ray_cluster import RayUnavailable, connect, disconnect, import_ray
from engine.indexing.ray_options import RayOptions
from engine.indexing.ray_worker import EmbedResult, VideoEmbedder, WorkerInfo
from engine.jobs import CancelToken, ProgressCallback, check_cancel, report
from engine.library.catalog import Catalog, VideoRow
from engine.models.base import Encoder, ModelUnavailable
from engine.paths import LibraryPaths
from engine.settings import EngineSettings

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class WorkerPlan:
    """How many workers to start and what each asks Ray for."""

    count: int
    cpus: float
    gpus: float


def plan_workers(options: RayOptions, resources: dict[str, float], videos: int) -> WorkerPlan:
    """Size the workers to the cluster: GPUs shared out when there are any, never more workers than fit
    (an actor that does not fit would wait for resources forever) nor than there are videos."""
    total_cpus, total_gpus = float(resources.get("CPU", 0)), float(resources.get("GPU", 0))
    gpus = options.gpus_per_worker
    if gpus is None:
        wanted = options.workers or max(1, int(total_gpus))
        gpus = min(1.0, total_gpus / wanted) if total_gpus > 0 else 0.0
    gpus = math.floor(gpus * 10_000) / 10_000  # Ray's resource precision
    cpus = options.cpus_per_worker
    fit = int(total_cpus / cpus + 1e-9)
    if gpus > 0:
        fit = min(fit, int(total_gpus / gpus + 1e-9))
    if options.workers > fit:
        log.warning("asked for %d Ray workers but only %d fit on the cluster (%s)", options.workers, fit, resources)
    count = min(options.workers or fit, fit, max(1, videos))
    if count < 1:
        raise RayUnavailable(
            f"no Ray worker fits on the cluster: each needs {cpus:g} CPU and {gpus:g} GPU, and the cluster has "
            f"{total_cpus:g} CPU and {total_gpus:g} GPU"
        )
    return WorkerPlan(count, cpus, gpus)


@dataclass
class WorkerState:
    """One worker as the writer sees it; ``pids`` grows when Ray replaces a dead process."""

    actor: Any
    info: WorkerInfo
    in_flight: int = 0
    alive: bool = True  # False while Ray replaces its process (or for good): no new videos for it
    probing: bool = False
    pids: list[int] = field(default_factory=list)

    @property
    def pid(self) -> int:
        return self.pids[-1]

    @property
    def restarts(self) -> int:
        return len(self.pids) - 1


@dataclass
class _Task:
    video: VideoRow
    worker: int


class RayIndexer(Indexer):
    """``Indexer`` whose ``_embed_all`` farms videos out to Ray workers (see the module docstring)."""

    def __init__(
        self,
        paths: LibraryPaths,
        catalog: Catalog,
        encoder: Encoder,
        settings: EngineSettings,
        options: RayOptions,
    ) -> None:
        super().__init__(paths, catalog, encoder, settings)
        self.options = options
        self.model = options.model or settings.model
        self.workers: list[WorkerState] = []
        self.duplicates = 0  # results for videos already finished (ignored); stays 0 unless Ray repeats one
        self.started_s = 0.0  # how long the workers took to start (benchmarks report it apart)

    def run(self, *, progress: ProgressCallback | None = None, cancel: CancelToken | None = None) -> IndexReport:
        """Connect (a bad address fails here, before the library is touched), then run as locally."""
        report(progress, 0.0, f"Connecting to the Ray cluster at {self.options.address}")
        owned = connect(self.options.address, timeout_s=self.options.connect_timeout_s)
        try:
            return super().run(progress=progress, cancel=cancel)
        finally:
            disconnect(owned)

    def _embed_all(self, todo: list[VideoRow], writer: VideoWriter, cancel: CancelToken | None) -> None:
        ray = import_ray()
        from ray.exceptions import RayActorError

        plan = plan_workers(self.options, ray.cluster_resources(), len(todo))
        report(writer.progress, 0.0, f"Starting {plan.count} Ray workers ({plan.cpus:g} CPU, {plan.gpus:g} GPU each)")
        try:
            begun = time.perf_counter()
            self._start_workers(ray, plan, cancel)
            self.started_s = time.perf_counter() - begun
            pending: deque[VideoRow] = deque(todo)
            attempts: Counter[int] = Counter()
            in_flight: dict[Any, _Task] = {}
            probes: dict[Any, tuple[int, float]] = {}  # info() calls to workers whose task died: alive again?
            while pending or in_flight:
                check_cancel(cancel)
                self._submit(pending, in_flight)
                if not in_flight and not probes:
                    raise RayUnavailable(
                        f"every Ray worker is gone; {len(pending)} videos were not indexed (run again to resume)"
                    )
                ready, _ = ray.wait([*in_flight, *probes], num_returns=1, timeout=0.2)
                for ref in ready:
                    if ref in probes:
                        self._probed(ray, ref, probes.pop(ref)[0])
                        continue
                    task = in_flight.pop(ref)
                    worker = self.workers[task.worker]
                    worker.in_flight -= 1
                    try:
                        answer: EmbedResult = ray.get(ref)
                    except RayActorError as exc:  # the process died and Ray's retries for this video are spent
                        self._lost(task, exc, attempts, pending, writer)
                        if not worker.probing:
                            worker.alive, worker.probing = False, True
                            probes[worker.actor.info.remote()] = (task.worker, time.monotonic())
                        continue
                    if worker.pids[-1] != answer.pid:
                        worker.pids.append(answer.pid)  # Ray replaced the process and re-did the video
                    self._take(answer, task.video, writer)
                self._expire(ray, probes)
        finally:
            self._stop_workers(ray)

    def _start_workers(self, ray: Any, plan: WorkerPlan, cancel: CancelToken | None) -> None:
        """Create the actors and wait (bounded, cancellable) until each has built its encoder."""
        o = self.options
        remote = ray.remote(VideoEmbedder).options(
            num_cpus=plan.cpus,
            num_gpus=plan.gpus,
            max_restarts=o.max_restarts,
            max_task_retries=o.max_task_retries,
        )
        device = "cuda" if plan.gpus > 0 else "cpu"  # Ray sets CUDA_VISIBLE_DEVICES to the worker's share
        actors = [remote.remote(self.model, self.settings, device) for _ in range(plan.count)]
        try:
            started = self._await_workers(ray, actors, plan, cancel)
        except BaseException:  # a cancel, a worker that cannot start, another model: leave no actor behind
            for actor in actors:
                ray.kill(actor, no_restart=True)
            raise
        self.workers = [WorkerState(actor, info, pids=[info.pid]) for actor, info in started.items()]
        log.info("Ray workers: %s", ", ".join(f"{w.info.host}:{w.pid} ({w.info.device})" for w in self.workers))

    def _await_workers(
        self, ray: Any, actors: list[Any], plan: WorkerPlan, cancel: CancelToken | None
    ) -> dict[Any, WorkerInfo]:
        """The actors that started within ``start_timeout_s`` (the others are killed), checked for the model."""
        o = self.options
        waiting = {actor.info.remote(): actor for actor in actors}
        deadline = time.monotonic() + o.start_timeout_s
        started: dict[Any, WorkerInfo] = {}
        try:
            while waiting and time.monotonic() < deadline:
                check_cancel(cancel)
                ready, _ = ray.wait(list(waiting), num_returns=len(waiting), timeout=0.2)
                for ref in ready:
                    started[waiting.pop(ref)] = ray.get(ref)
        except ray.exceptions.RayError as exc:
            raise RayUnavailable(f"the Ray workers could not start: {exc}") from exc
        for actor in waiting.values():  # did not get its resources in time: carry on without it
            ray.kill(actor, no_restart=True)
        if not started:
            raise RayUnavailable(
                f"no Ray worker started within {o.start_timeout_s:.0f} s (each asks for {plan.cpus:g} CPU and "
                f"{plan.gpus:g} GPU; the cluster has {ray.cluster_resources()})"
            )
        if waiting:
            log.warning(
                "%d of %d Ray workers did not start in time; going on with the others", len(waiting), len(actors)
            )
        for info in started.values():
            if info.model_id != self.encoder.model_id:
                raise ModelUnavailable(
                    f"the Ray workers built {info.model_id!r} from {self.model!r} but this run indexes "
                    f"{self.encoder.model_id!r}; every node must see the same model files"
                )
        return started

    def _submit(self, pending: deque[VideoRow], in_flight: dict[Any, _Task]) -> None:
        """Keep every live worker busy with up to ``in_flight_per_worker`` videos, least loaded first."""
        limit = self.options.in_flight_per_worker
        while pending:
            free = [i for i, w in enumerate(self.workers) if w.alive and w.in_flight < limit]
            if not free:
                return
            index = min(free, key=lambda i: self.workers[i].in_flight)
            video = pending.popleft()
            worker = self.workers[index]
            in_flight[worker.actor.embed.remote(video)] = _Task(video, index)
            worker.in_flight += 1

    def _take(self, answer: EmbedResult, video: VideoRow, writer: VideoWriter) -> None:
        """Commit (or record the failure of) one worker's answer, once."""
        if video["id"] in writer.finished:
            self.duplicates += 1
            return
        if answer.info is not None:
            writer.record_info(video, answer.info)
        if answer.embedded is not None:
            writer.commit(answer.embedded)
        else:
            writer.fail(video, answer.error, no_video=answer.no_video)

    def _lost(
        self,
        task: _Task,
        exc: Exception,
        attempts: Counter[int],
        pending: deque[VideoRow],
        writer: VideoWriter,
    ) -> None:
        """A video whose worker died past Ray's retries: try it again (on whichever worker is free), a few
        times at most; then it is recorded as failed, as an undecodable file is (it may be what kills them)."""
        video = task.video
        attempts[video["id"]] += 1
        log.warning("Ray worker %s died while indexing %s: %s", self.workers[task.worker].pid, video["path"], exc)
        if attempts[video["id"]] < self.options.attempts_per_video:
            pending.appendleft(video)
        elif video["id"] not in writer.finished:
            tries = attempts[video["id"]] * (1 + max(0, self.options.max_task_retries))
            writer.fail(video, f"the Ray worker process died {tries} times while indexing it")

    def _probed(self, ray: Any, ref: Any, index: int) -> None:
        """A worker whose task died answered (Ray replaced it: back to work) or failed (gone for good)."""
        worker = self.workers[index]
        worker.probing = False
        try:
            info: WorkerInfo = ray.get(ref)
        except ray.exceptions.RayError as exc:
            log.warning("Ray worker %s is gone: %s", worker.pid, exc)
            return
        worker.alive = True
        if info.pid != worker.pids[-1]:
            worker.pids.append(info.pid)

    def _expire(self, ray: Any, probes: dict[Any, tuple[int, float]]) -> None:
        """A replacement that has not started within ``start_timeout_s`` (no room left for it) is given up."""
        now = time.monotonic()
        for ref, (index, since) in list(probes.items()):
            if now - since > self.options.start_timeout_s:
                del probes[ref]
                self.workers[index].probing = False
                ray.kill(self.workers[index].actor, no_restart=True)
                log.warning("Ray worker %d was not replaced within %.0f s", index, self.options.start_timeout_s)

    def _stop_workers(self, ray: Any) -> None:
        """Kill this run's workers (their queued videos go with them: nothing partial is committed)."""
        for worker in self.workers:
            try:
                ray.kill(worker.actor, no_restart=True)
            except Exception as exc:  # already gone, or the connection dropped: nothing left to stop
                log.debug("could not kill Ray worker %s: %s", worker.pid, exc)
