"""``RayOptions``: how an indexing run uses a Ray cluster, importable without Ray.

The CLI, the GUI and ``Library.index`` pass these around; only ``engine.indexing.ray_indexer`` (imported
when a run actually asks for Ray) imports Ray itself, so a local run never pays for it.
"""

from __future__ import annotations

from dataclasses import dataclass

ADDRESS_FORMS = "auto, HOST:PORT or ray://HOST:PORT"


@dataclass(frozen=True)
class RayOptions:
    """Where the Ray cluster is and how many workers of what size to run on it.

    ``workers`` 0 means as many as the cluster has room for (one per GPU on a GPU cluster, else one per
    ``cpus_per_worker`` CPUs). ``gpus_per_worker`` None means automatic: GPUs shared out evenly (at most one
    per worker, fractions allowed) when the cluster has any, none otherwise; 0 forces CPU workers.
    ``model`` names the encoder the workers build from the registry (empty: the library's settings).
    """

    address: str
    workers: int = 0
    gpus_per_worker: float | None = None
    cpus_per_worker: float = 1.0
    model: str = ""
    connect_timeout_s: float = 10.0
    start_timeout_s: float = 120.0
    max_restarts: int = -1  # a worker process that dies is always replaced (-1), or this many times
    max_task_retries: int = 2  # a video whose worker died is re-done this many times on the replacement
    attempts_per_video: int = 2  # ...and all that this many times (then on another worker) before it fails
    in_flight_per_worker: int = 2  # one running, one queued so a worker never waits for the writer

    def __post_init__(self) -> None:
        if not self.address.strip():
            raise ValueError(f"no Ray address given; use {ADDRESS_FORMS}")
        if self.workers < 0:
            raise ValueError(f"Ray workers must be 0 (as many as fit) or more, not {self.workers}")
        if self.gpus_per_worker is not None and not 0 <= self.gpus_per_worker <= 64:
            raise ValueError(f"GPUs per Ray worker must be between 0 and 64, not {self.gpus_per_worker}")
        if not 0 < self.cpus_per_worker <= 1024:
            raise ValueError(f"CPUs per Ray worker must be above 0, not {self.cpus_per_worker}")
        if self.max_restarts < -1 or self.max_task_retries < -1:
            raise ValueError("max_restarts and max_task_retries must be -1 (no limit) or more")
        if self.in_flight_per_worker < 1 or self.attempts_per_video < 1:
            raise ValueError("in_flight_per_worker and attempts_per_video must be at least 1")

    @classmethod
    def for_address(cls, address: str | None, **options: object) -> RayOptions | None:
        """Options for ``address``, or None (a local run) when it is empty, as in the default settings."""
        address = (address or "").strip()
        return cls(address, **options) if address else None  # type: ignore[arg-type]
