"""The Ray cluster an indexing run uses: connecting to one, and starting a throwaway one on this machine.

Connecting checks the address first with a plain TCP connection under a short timeout, because
``ray.init`` on an address where nothing listens retries for minutes; the error then names the address.
``LocalRayCluster`` starts a head and extra node processes on loopback with ``ray start --block``, each in a
session of its own, and stops them by process group: it ends exactly the processes it started (never
``ray stop``, which would end every Ray process of the machine). Tests and ``bench index --ray local`` use it.
Ray is imported inside the functions: this module is only imported by runs that asked for Ray.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from types import ModuleType

from engine.indexing.ray_options import ADDRESS_FORMS

log = logging.getLogger(__name__)


class RayUnavailable(ConnectionError):
    """Ray cannot be used: not installed, the address is malformed or unreachable, or no worker fits."""


def import_ray() -> ModuleType:
    """``ray``, or ``RayUnavailable`` saying how to install it."""
    try:
        import ray
    except ImportError as exc:
        raise RayUnavailable(
            f"Ray is not installed ({exc}); install it with `pip install 'scenefind[ray]'` on this machine "
            "and on every worker node"
        ) from exc
    return ray


def _split(address: str) -> tuple[str, int]:
    host, sep, port = address.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise RayUnavailable(f"Ray address {address!r} is not valid; use {ADDRESS_FORMS}")
    return host.strip("[]"), int(port)


def _resolve_auto() -> str:
    """The address ``auto`` means: ``RAY_ADDRESS``, else the cluster ``ray start`` last started here."""
    env = os.environ.get("RAY_ADDRESS", "").strip()
    if env and env != "auto":
        return env
    try:
        from ray._private.utils import read_ray_address  # where `ray start` records the address

        found = read_ray_address()
    except Exception:  # a private helper moved: let ray.init look for itself
        return "auto"
    if not found:
        raise RayUnavailable(
            "Ray address 'auto': no Ray cluster was started on this machine (run `ray start --head`, or give "
            "the head's HOST:PORT)"
        )
    return found


def check_reachable(address: str, timeout_s: float) -> str:
    """The address to hand ``ray.init`` once something answers there; ``RayUnavailable`` naming it if not."""
    given = address.strip()
    target = _resolve_auto() if given == "auto" else given
    if target == "auto":
        return target
    host, port = _split(target.removeprefix("ray://"))
    try:
        with socket.create_connection((host, port), timeout=timeout_s):
            pass
    except OSError as exc:
        shown = given if given == target else f"{given} ({target})"
        raise RayUnavailable(
            f"cannot reach the Ray cluster at {shown}: {exc.strerror or exc} (is `ray start --head` running "
            f"there, and is the port open?)"
        ) from exc
    return target


def connect(address: str, *, timeout_s: float = 10.0) -> bool:
    """Join the cluster at ``address``; True when this call connected (so the caller disconnects after).

    A process already connected (a test, a notebook) keeps its connection and the address is not checked."""
    ray = import_ray()
    if ray.is_initialized():
        return False
    target = check_reachable(address, timeout_s)
    try:
        ray.init(
            address=target,
            logging_level=logging.WARNING,
            log_to_driver=False,  # worker logs stay in the cluster's log folder, not in our progress bar
            configure_logging=False,
        )
    except (ConnectionError, RuntimeError, ValueError, ImportError) as exc:
        hint = " (ray:// needs `pip install 'ray[client]'`)" if target.startswith("ray://") else ""
        raise RayUnavailable(f"cannot connect to the Ray cluster at {address}: {exc}{hint}") from exc
    return True


def disconnect(owned: bool) -> None:
    """Leave the cluster if ``connect`` joined it (never someone else's connection)."""
    if owned:
        ray = import_ray()
        ray.shutdown()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class LocalRayCluster:
    """A head plus ``nodes - 1`` more node processes on 127.0.0.1, each with ``cpus_per_node`` CPUs."""

    def __init__(self, nodes: int = 2, *, cpus_per_node: int = 1, object_store_mb: int = 100) -> None:
        if nodes < 1:
            raise ValueError(f"a local Ray cluster needs at least one node, not {nodes}")
        self.nodes = nodes
        self.cpus_per_node = cpus_per_node
        self.object_store_mb = object_store_mb
        self.address = ""
        self.temp_dir: Path | None = None
        self._procs: list[subprocess.Popen[bytes]] = []

    def __enter__(self) -> LocalRayCluster:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _ray_start(self, *args: str, timeout_s: float) -> None:
        """Run ``ray start --block ...`` in a session of its own; return once it says the node is up."""
        ray_cli = shutil.which("ray") or str(Path(sys.executable).with_name("ray"))
        assert self.temp_dir is not None
        log_file = open(self.temp_dir / f"node-{len(self._procs)}.log", "wb")  # noqa: SIM115 (the node's life)
        command = [
            ray_cli,
            "start",
            "--block",
            "--node-ip-address=127.0.0.1",
            f"--num-cpus={self.cpus_per_node}",
            "--num-gpus=0",
            f"--object-store-memory={self.object_store_mb * 1024 * 1024}",
            "--disable-usage-stats",
            *args,
        ]
        env = {**os.environ, "RAY_USAGE_STATS_ENABLED": "0"}
        proc = subprocess.Popen(command, stdout=log_file, stderr=subprocess.STDOUT, env=env, start_new_session=True)
        log_file.close()
        self._procs.append(proc)
        deadline = time.monotonic() + timeout_s
        log_path = self.temp_dir / f"node-{len(self._procs) - 1}.log"
        while time.monotonic() < deadline:
            text = log_path.read_text(errors="replace")
            if "Ray runtime started" in text:
                return
            if proc.poll() is not None:
                raise RayUnavailable(f"`ray start` exited with code {proc.returncode}: {text[-2000:]}")
            time.sleep(0.1)
        raise RayUnavailable(f"`ray start` did not start a node in {timeout_s:.0f} s; see {log_path}")

    def start(self, *, timeout_s: float = 120.0) -> LocalRayCluster:
        """Start the nodes (bounded by ``timeout_s`` each); on any failure stop what was started, then raise."""
        import_ray()
        self.temp_dir = Path(tempfile.mkdtemp(prefix="sf-ray-", dir="/tmp" if os.name == "posix" else None))
        port = free_port()
        self.address = f"127.0.0.1:{port}"
        try:
            self._ray_start(
                "--head",
                f"--port={port}",
                "--include-dashboard=false",
                f"--temp-dir={self.temp_dir}",
                timeout_s=timeout_s,
            )
            for _ in range(self.nodes - 1):
                self._ray_start(f"--address={self.address}", timeout_s=timeout_s)
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self, *, grace_s: float = 15.0) -> None:
        """End every process this cluster started, then delete its files.

        ``ray start --block`` shuts its node down (and reaps it) on SIGTERM; what is left of a process group
        after ``grace_s`` (a node stuck, or one whose starter died) is killed."""
        for proc in reversed(self._procs):  # extra nodes first, the head last
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + grace_s
        for proc in self._procs:
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=max(0.1, deadline - time.monotonic()))
        for proc in self._procs:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(proc.pid, signal.SIGKILL)  # the group this node's session started, nothing else
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=5)
        self._procs.clear()
        if self.temp_dir is not None:
            shutil.rmtree(self.temp_dir, ignore_errors=True)  # sockets, session files and logs
            self.temp_dir = None
