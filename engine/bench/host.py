"""The machine a benchmark runs on: its CPU, this process's resident memory, and what files take on its disk.

Figures are only comparable with the machine and its load beside them, and a memory figure only means
something when freed memory was handed back before measuring, so these live apart from any one benchmark.
"""

from __future__ import annotations

import contextlib
import ctypes
import gc
import platform
from pathlib import Path
from typing import Any


def rss_mb() -> dict[str, float] | None:
    """Resident memory of this process in MB from ``/proc/self/status``: ``total``, ``heap`` (anonymous: the
    HNSW graph) and ``mapped`` (file pages: the float16 rows re-scoring touched); None off Linux."""
    fields = {"VmRSS:": "total", "RssAnon:": "heap", "RssFile:": "mapped"}
    found: dict[str, float] = {}
    try:
        with open("/proc/self/status", encoding="ascii") as fh:
            for line in fh:
                parts = line.split()
                if parts and parts[0] in fields:
                    found[fields[parts[0]]] = int(parts[1]) / 1024
    except (OSError, ValueError, IndexError):
        return None
    return found if len(found) == len(fields) else None


def rss_figures(before: dict[str, float] | None, after: dict[str, float] | None, size: int) -> dict[str, Any]:
    """RSS growth in MB, total and split, and per million vectors."""
    if before is None or after is None:
        return dict.fromkeys(("rss_delta_mb", "rss_heap_delta_mb", "rss_mapped_delta_mb", "rss_mb_per_million"))
    delta = {part: after[part] - before[part] for part in after}
    return {
        "rss_delta_mb": round(delta["total"], 1),
        "rss_heap_delta_mb": round(delta["heap"], 1),
        "rss_mapped_delta_mb": round(delta["mapped"], 1),
        "rss_mb_per_million": round(delta["total"] * 1e6 / size, 1),
    }


def release_freed_memory() -> None:
    """Collect garbage and hand freed heap back to the OS (glibc ``malloc_trim``), so an RSS delta counts
    new allocations instead of reused ones; a no-op elsewhere."""
    gc.collect()
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6").malloc_trim(0)


def cpu_name() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as fh:
            for line in fh:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def disk_bytes(path: Path) -> int:
    """Bytes a file takes on disk: its allocated blocks, where the filesystem says (a vector file grown by
    doubling is sparse past its last row), never more than its length."""
    st = path.stat()
    blocks = getattr(st, "st_blocks", None)
    return min(st.st_size, blocks * 512) if blocks is not None else st.st_size
